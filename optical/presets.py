"""Named, cited optical configurations.

``get(name, **changes)`` returns a preset (optionally with fields replaced, e.g. ``seed=1``);
``names()`` lists them; ``citation(name)`` says where the numbers come from.
"""

from __future__ import annotations

from ..common.backend import PresetRegistry
from .config import (
    DetectorConfig,
    EnergyConfig,
    FabricationConfig,
    GeometryConfig,
    ModulationConfig,
    OpticalConfig,
)

__all__ = ["citation", "get", "names", "registry"]

registry = PresetRegistry("optical")

_THZ_FABRICATION = FabricationConfig(phase_error_std=0.1)
# A 16 um thickness error of the printed layer: 2 pi (1.7227 - 1) 16e-6 / 0.75e-3 = 0.097 rad.

_THZ_DETECTOR = DetectorConfig(kind="power", nep=1e-10, bandwidth=5e5)
"""Room-temperature THz power detectors (Schottky diode / Golay cell class, NEP 1e-10
W/sqrt(Hz)) integrating 1 us; not a visible camera (issue 12, item 6)."""

_THZ_ENERGY = EnergyConfig(modulator_power=1.0, modulator_frame_rate=1e3)
"""An electronically addressed THz spatial modulator (metamaterial or photo-doped silicon
class) at an assumed 1 W and 1 kHz: a micromirror array cannot modulate 0.75 mm waves."""

_THZ_MATERIAL = ModulationConfig(material=True)
"""The printed layers absorb: VeroBlackPlus n = 1.7227, kappa = 0.031 at 0.4 THz (Lin et al.
2018, supplementary materials)."""

_COMPACT_DETECTOR = _THZ_DETECTOR.replace(optical_efficiency=0.005)
"""The THz detectors with the source sized for 0.5 % of its light to reach the regions: an
untrained random-phase 3-layer compact stack sends 0.2 to 0.9 % of an emitter's power to
them (``OpticalLinear.transmission_matrix``), 0.4 to 0.7 % after 52 training steps. With
the default 0.1 a 32 -> 10 layer read about one LSB of the 8-bit ADC and did not train."""

_COMPACT = OpticalConfig(
    geometry=GeometryConfig(size=24, n_layers=3, distance=3.6e-3),
    fabrication=_THZ_FABRICATION,
    detector=_COMPACT_DETECTOR,
    energy=_THZ_ENERGY,
)

registry.register(
    "thz-compact",
    _COMPACT,
    "Lin et al., Science 361, 1004 (2018): 0.4 THz, 400 um pitch, printed phase layers, with "
    "the plane shrunk to 24 x 24 neurons and the spacing scaled by the same 0.12 (3.6 mm); "
    "16 um printing thickness error (0.1 rad); THz power detectors of NEP 1e-10 W/sqrt(Hz) "
    "(1 us) and a THz input modulator (assumed 1 W, 1 kHz)",
)
registry.register(
    "lin2018-thz",
    OpticalConfig(
        fabrication=_THZ_FABRICATION,
        modulation=_THZ_MATERIAL,
        detector=_THZ_DETECTOR,
        energy=_THZ_ENERGY,
    ),
    "Lin et al., Science 361, 1004 (2018): 0.75 mm wavelength, 400 um pitch, 200 x 200 "
    "neurons, 5 printed phase layers 3 cm apart absorbing with the cited n = 1.7227 and "
    "kappa = 0.031, 10 detector regions; THz power detectors of NEP 1e-10 W/sqrt(Hz) and a "
    "THz input modulator (assumed 1 W, 1 kHz)",
)
registry.register(
    "slm-visible",
    OpticalConfig(
        geometry=GeometryConfig(
            wavelength=532e-9, pitch=8e-6, size=64, n_layers=3, distance=10e-3, padding=2.0
        ),
        fabrication=FabricationConfig(phase_levels=256, phase_error_std=0.02),
        detector=DetectorConfig(quantum_efficiency=0.7, read_noise=1.5, bits=10, dark_current=0.5),
        energy=EnergyConfig(wall_plug_efficiency=0.3, mask_power=2.0, exposure_time=10e-6),
        input_levels=256,
    ),
    "A reflective phase-SLM cascade at 532 nm: 8 um pixels and 8-bit phase (Holoeye PLUTO-2 "
    "class, about 2 W per panel), a DMD input at 32.5 kHz, a scientific CMOS camera "
    "(QE 0.7, 1.5 e- read noise); at layer spacing 10 mm the sampled propagation (auto: "
    "Rayleigh-Sommerfeld) is in its regime on the 2x-padded grid",
)
registry.register(
    "ideal",
    _COMPACT.ideal(),
    "The thz-compact geometry with every nonideality off (for tests and references)",
)


def get(name: str, **changes: object) -> OpticalConfig:
    """Preset ``name`` with optional field changes."""
    config = registry.get(name, **changes)
    assert isinstance(config, OpticalConfig)
    return config


def names() -> list[str]:
    """Preset names in registration order."""
    return registry.names()


def citation(name: str) -> str:
    """Where preset ``name``'s numbers come from."""
    return registry.citation(name)
