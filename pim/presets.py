"""Named, cited PIM configurations and a loader for measured device data.

``get(name, **changes)`` returns a preset (optionally with fields replaced, e.g. ``seed=0``);
``names()`` lists them; ``citation(name)`` says where the numbers come from.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..common.backend import PresetRegistry
from .config import (
    ADCConfig,
    CircuitConfig,
    DACConfig,
    DriftConfig,
    EnergyConfig,
    FaultConfig,
    HWAConfig,
    MappingConfig,
    PIMConfig,
    ProgrammingConfig,
    ReadNoiseConfig,
)

__all__ = ["citation", "from_csv", "get", "names", "registry"]

registry = PresetRegistry("pim")

_PCM = PIMConfig(
    mapping=MappingConfig(scale="column"),
    read=ReadNoiseConfig(output_noise=0.06),
    circuit=CircuitConfig(v_read=0.3),
    adc=ADCConfig(bits=8, output_bound=12.0),
)

registry.register(
    "ideal",
    PIMConfig().ideal(),
    "every nonideality off: equals torch; energy: the hermes-fitted coefficients at 0.2 V "
    "reads (a prediction for this geometry)",
)
registry.register(
    "pcm",
    _PCM,
    "PCM programming noise, drift and 1/f read noise: Nandakumar et al., ICECS 2019; Joshi "
    "et al., Nat. Commun. 11, 2473, 2020 (g_max 25 uS, global drift compensation); periphery: "
    "aihwkit inference defaults (output bound 12, output noise 0.06, dynamic input range) "
    "with 8-bit DAC and ADC; weights scaled per output column (each column's largest weight "
    "at g_max, rescaled digitally), which keeps LSTM gates of different ranges accurate; "
    "energy, latency and area: the coefficients fitted to HERMES (EnergyConfig defaults, see "
    "the hermes preset) at its 0.3 V reads (the read voltage only sets the energy here: the "
    "PCM model has no I-V nonlinearity), applied to this geometry: a prediction, not a fit. "
    "On a 256x256 layer (one tile in both) it is 1.6x as efficient as hermes: one device per "
    "polarity instead of two halves the cell energy; on 512x512 2.0x, as hermes's 256-row "
    "tiles also double the ADC conversions",
)
registry.register(
    "hwa-rasch2023",
    _PCM.replace(
        read=ReadNoiseConfig(weight_noise=0.0175, output_noise=0.04),
        circuit=CircuitConfig(v_read=0.3, ir_drop="fast", r_wire_row=0.07, r_wire_col=0.07),
        dac=DACConfig(bits=8, range_mode="learned"),
        adc=ADCConfig(bits=8, output_bound=10.0),
        hwa=HWAConfig(weight_noise=0.05, clip_sigma=2.5),
    ),
    "Rasch et al., Nat. Commun. 14, 5282, 2023 (HWA training): PCM model, 8-bit DAC/ADC, output "
    "bound 10, output noise 0.04, per-read weight noise 0.0175, IR drop, learned input "
    "ranges, weight clipping. Wire resistance 0.07 ohm per segment on rows and columns: "
    "aihwkit's IR-drop setting used by the paper (ir_drop_g_ratio = 1 / (0.35 ohm x 5 uS)) "
    "fixes r_wire x g_max = 1.75e-6, which is 0.07 ohm at this preset's g_max = 25 uS. "
    "Differences: aihwkit applies it to the output (column) wire only, with a polynomial "
    "drop profile of the mean input current, while physnn solves both wires of the tile "
    "with the differential pair's devices sharing the rows (within 2 % of exact nodal "
    "analysis). Energy: the hermes-fitted coefficients (a prediction)",
)
registry.register(
    "reram",
    PIMConfig(
        mapping=MappingConfig(g_max=40e-6, g_min=1e-6, scale="column"),
        programming=ProgrammingConfig(model="reram"),
        drift=DriftConfig(model="none", compensation="none"),
        read=ReadNoiseConfig(pcm_1f=False, weight_noise=0.01, output_noise=0.04),
        faults=FaultConfig(stuck_off_rate=0.005, stuck_on_rate=0.001),
        circuit=CircuitConfig(v_read=0.1),
        dac=DACConfig(bits=8, range_mode="dynamic"),
        adc=ADCConfig(bits=8, output_bound=12.0),
    ),
    "HfOx ReRAM after Wan et al., Nature 608, 504, 2022 (NeuRRAM): 1-40 uS window, "
    "write-verify programming with the conductance-dependent spread of its published figures "
    "and its relaxation over two days (the device model 'reram': aihwkit's fourth-order fits "
    "of those figures at 1 s, 1 day and 2 days; no mean drift, so no drift compensation); "
    "per-read weight noise 1 % of g_max (aihwkit's note on short-term ReRAM read noise); "
    "stuck-at rates representative of the literature (Chen et al., DATE 2015), not a fit: "
    "0.5 % stuck off, 0.1 % stuck on (a stuck-on device is a full-scale weight error; 0.2 % "
    "costs a small digits CNN about 6 pp without HWA, measured); weights scaled per output "
    "column; energy: the PCM coefficients fitted to HERMES at 0.1 V reads (a prediction, no "
    "ReRAM fit)",
)
registry.register(
    "neurosim-rram",
    PIMConfig(
        mapping=MappingConfig(
            g_max=1e-5,
            g_min=1e-7,
            bits_per_cell=1,
            slices=7,
            tile_rows=128,
            tile_cols=128,
        ),
        programming=ProgrammingConfig(model="none"),
        drift=DriftConfig(model="none", compensation="none"),
        read=ReadNoiseConfig(pcm_1f=False, output_noise=0.0),
        circuit=CircuitConfig(v_read=0.2),
        dac=DACConfig(bits=9, range_mode="dynamic", bit_serial=True),
        adc=ADCConfig(bits=5, output_bound=16.0),
        energy=EnergyConfig(
            read_pulse=2e-9,
            input_activity=0.5,
            mean_state=0.25,
            dac_energy=0.05e-12,
            adc_fom=8e-15,
            adc_architecture="sar",
            adc_time=0.4e-9,
            columns_per_adc=8,
            accumulate_energy=0.03e-12,
            io_energy_per_byte=0.5e-12,
            digital_latency=5e-9,
            cell_area=0.05e-12,
            adc_area=100e-12,
            dac_area=5e-12,
        ),
    ),
    "NeuroSim 1.4-like 22 nm RRAM macro (Peng et al., IEDM 2019; Lee et al., NeuroSim 1.4): "
    "128x128 sub-arrays, 1-bit cells with 8-bit signed weights (sign + 7 slices), bit-serial "
    "8-bit inputs, 4-bit ADC (plus sign) per input cycle with full scale 16 (one code per "
    "about one unit of the 1-bit column sum; a full scale of 32 loses 24 pp on a digits LSTM, "
    "measured), 8 columns per ADC (SAR, 0.4 ns per bit); fitted: the energy coefficients, "
    "chosen so a VGG-8 workload lands inside NeuroSim's 11.25-19.88 TOPS/W (13.8 TOPS/W); "
    "the latency and area are representative values, not fitted",
)
registry.register(
    "hermes",
    _PCM.replace(
        mapping=MappingConfig(devices_per_polarity=2, tile_rows=256, tile_cols=256),
        circuit=CircuitConfig(v_read=0.3),
        dac=DACConfig(bits=8, range_mode="dynamic"),
        adc=ADCConfig(bits=8, output_bound=12.0),
        energy=EnergyConfig(),
    ),
    "IBM HERMES-like core (Le Gallo et al., Nat. Electron. 6, 680, 2023; Khaddam-Aljameh et "
    "al., IEEE JSSC 57, 1027, 2022): 256x256 PCM, 4 devices per weight, 8-bit PWM inputs "
    "(128 ns), one CCO counting ADC per column (300 ps per LSB, published); fitted: "
    "adc_fom = 50 fJ per step so that one core gives the measured 9.76 TOPS/W under the "
    "analytic assumptions (mean state 0.25 g_max, input activity 0.5), and "
    "digital_latency = 5 ns so that an MVM takes 133 ns (63.1 TOPS on 64 cores, measured); "
    "the other coefficients are representative values. These are the EnergyConfig defaults. "
    "Predicted with them, not fitted: the analog-AI chip of Ambrogio et al., Nature 620, 768, "
    "2023 (512x2048-device tiles), within 2x of its 12.4 TOPS/W (tested)",
)


def get(name: str, **changes: Any) -> PIMConfig:
    """Preset ``name`` with optional field replacements (``get("pcm", seed=0)``)."""
    config = registry.get(name, **changes)
    assert isinstance(config, PIMConfig)
    return config


def names() -> list[str]:
    """Preset names."""
    return registry.names()


def citation(name: str) -> str:
    """Where preset ``name``'s numbers come from."""
    return registry.citation(name)


def from_csv(path: str | Path, base: PIMConfig | str = "pcm") -> PIMConfig:
    """A config whose programming model is a user's measured device levels and spread.

    The CSV has a header with the columns ``conductance`` and ``sigma`` (both in siemens),
    one row per programmable level. Targets snap to the nearest level and get that level's
    spread; ``g_min``/``g_max`` become the smallest/largest level.

    Args:
        path: CSV file.
        base: config (or preset name) supplying everything else.

    Example CSV::

        conductance,sigma
        1e-6,0.3e-6
        10e-6,0.6e-6
        20e-6,0.8e-6
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"device CSV {str(path)!r} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"conductance", "sigma"} <= set(rows[0]):
        found = sorted(rows[0]) if rows else []
        raise ValueError(
            f"{path}: needs a header with columns 'conductance' and 'sigma' [S]; found {found}"
        )
    try:
        pairs = sorted((float(r["conductance"]), float(r["sigma"])) for r in rows)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value ({exc}); give values in siemens") from exc
    levels = tuple(p[0] for p in pairs)
    sigma = tuple(p[1] for p in pairs)
    cfg = get(base) if isinstance(base, str) else base
    return cfg.replace(
        preset=None,
        mapping=cfg.mapping.replace(g_min=levels[0], g_max=levels[-1]),
        programming=ProgrammingConfig(model="measured", levels=levels, level_sigma=sigma),
    )
