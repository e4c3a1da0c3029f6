"""Configuration of the optical backend: geometry, masks, errors, detector and energy.

Every block is a frozen, keyword-only dataclass; every field carries its SI unit in brackets
and, for device constants, the paper it comes from. :class:`OpticalConfig` bundles the
blocks; presets (``physnn.optical.presets``) are named instances of it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from ..common.config import (
    BackendConfig,
    ConfigBlock,
    check_choice,
    check_int,
    check_probability,
    check_range,
    literal_choices,
)
from ..common.memory import MemoryConfig
from .functional import LINEAR_PADDING, PROPAGATION_METHODS, Boundary, PropagationMethod

__all__ = [
    "PROPAGATION_METHODS",
    "Boundary",
    "DetectorConfig",
    "DetectorKind",
    "Encoding",
    "EnergyConfig",
    "FabricationConfig",
    "GeometryConfig",
    "MaskInit",
    "MisalignmentConfig",
    "ModulationConfig",
    "ModulationKind",
    "OpticalConfig",
    "PropagationMethod",
]

ModulationKind = Literal["phase", "amplitude", "complex"]
MaskInit = Literal["uniform", "small", "zero"]
DetectorKind = Literal["camera", "power"]
Encoding = Literal["amplitude", "phase"]

_MAX_PHOTONS = 1e24
"""Largest photon budget per region [photons] that detection in float32 represents safely."""

_NM_HINT = "lengths are in metres: did you pass nanometres or millimetres? 532 nm is 532e-9"


def _check_bool(owner: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}.{name} must be a bool, got {type(value).__name__} ({value!r})")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GeometryConfig(ConfigBlock):
    """The diffractive stack: wavelength, neuron pitch, layer size and spacing.

    Defaults are the MNIST classifier of Lin et al., "All-optical machine learning using
    diffractive deep neural networks", Science 361, 1004 (2018).
    """

    wavelength: float = 0.75e-3
    """Illumination wavelength [m]; 0.75 mm is 0.4 THz (Lin et al. 2018)."""

    pitch: float = 0.4e-3
    """Neuron (pixel) pitch of every layer and of the simulation grid [m]; 400 um in
    Lin et al. 2018."""

    size: int = 200
    """Neurons per side of each layer; the grid is ``size x size`` (200 in Lin et al. 2018)."""

    n_layers: int = 5
    """Number of diffractive (modulating) layers (5 in Lin et al. 2018)."""

    distance: float = 30e-3
    """Axial spacing between consecutive planes (input, layers, detector) [m]; 3 cm in
    Lin et al. 2018."""

    distances: tuple[float, ...] = ()
    """Per-gap spacings [m], ``n_layers + 1`` of them (input to layer 1, ..., last layer to
    detector); empty uses ``distance`` for every gap."""

    padding: float | None = None
    """Zero-padding factor of the FFT grid [-]: the padded grid has ``ceil(padding * n)``
    samples per side, rounded up to an FFT-friendly length (prime factors 2, 3, 5, 7). None
    (default) uses 2, which makes the convolution linear for any distance; below it light
    wraps around whenever the field fills the plane (a
    :class:`~physnn.optical.functional.OpticalSamplingWarning` says so)."""

    boundary: Boundary = "linear"
    """``linear``: light leaving the plane is lost (zero padding, Matsushima band limit);
    ``periodic``: the plane is one period of a periodic structure (no padding, no band
    limit); the periodic choice must be explicit, as it wraps light around."""

    oversample: int | None = None
    """Simulation samples per neuron per side [-]: each mask pixel (neuron) is a ``oversample
    x oversample`` block of the simulation grid (piecewise-constant pixels). None (default)
    chooses :attr:`default_oversample`, which keeps the field error of pixelated masks below
    5 % (issue 12: one sample per neuron errs by 14-23 % at the Lin 2018 geometry)."""

    wavelengths: tuple[float, ...] = ()
    """Further source wavelengths [m], mutually incoherent, each carrying the same power as
    ``wavelength``; the masks are fixed thicknesses designed at ``wavelength`` (one 2 pi
    period), so their phase wrapped into ``[0, 2 pi)`` scales as ``wavelength / lambda``
    (dispersion-free material). Empty: monochromatic."""

    method: PropagationMethod = "auto"
    """Propagation method: ``auto`` (default: ``rs`` wherever its sampled kernel is in its
    regime, else ``asm``; :func:`~physnn.optical.functional.choose_method`), ``asm``
    (band-limited angular spectrum, Matsushima & Shimobaba, Opt. Express 17, 19662, 2009),
    ``rs`` (Rayleigh-Sommerfeld convolution, the method of Lin et al. 2018) or ``fresnel``
    (Fresnel transfer function). At the Lin 2018 geometry on the default grid ``auto`` is
    ``rs``: 2.3 % field error against the converged integral where ``asm`` errs by 9 %."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(owner, "wavelength", self.wavelength, 1e-7, 1e-2, unit="m", hint=_NM_HINT)
        check_range(owner, "pitch", self.pitch, 1e-8, 0.1, unit="m", hint=_NM_HINT)
        ratio = self.pitch / self.wavelength
        if not 0.05 <= ratio <= 1000.0:
            # Name both fields and their values: the ratio alone is not a field the user set.
            raise ValueError(
                f"{owner}.pitch={self.pitch!r} m is {ratio:g} wavelengths "
                f"(wavelength={self.wavelength!r} m); pitch/wavelength must be in "
                "[0.05, 1000]: check that pitch and wavelength are both in metres"
            )
        check_int(owner, "size", self.size, 2, 4096)
        check_int(owner, "n_layers", self.n_layers, 1, 64)
        check_range(
            owner,
            "distance",
            self.distance,
            0.0,
            100.0,
            unit="m",
            low_inclusive=False,
            hint=_NM_HINT,
        )
        if not isinstance(self.distances, tuple):
            raise TypeError(f"{owner}.distances must be a tuple of floats [m], e.g. (3e-2,) * 6")
        if self.distances and len(self.distances) != self.n_layers + 1:
            raise ValueError(
                f"{owner}.distances has {len(self.distances)} gaps but n_layers="
                f"{self.n_layers} needs {self.n_layers + 1} (input, between layers, detector)"
            )
        for gap in self.distances:
            check_range(
                owner, "distances", gap, 0.0, 100.0, unit="m", low_inclusive=False, hint=_NM_HINT
            )
        check_choice(owner, "boundary", self.boundary, literal_choices(Boundary))
        if self.padding is not None:
            check_range(
                owner,
                "padding",
                self.padding,
                1.0,
                8.0,
                hint="padding is a factor of the grid size; None chooses it from the geometry",
            )
            if self.boundary == "periodic" and self.padding != 1:
                raise ValueError(
                    f"{owner}.padding={self.padding!r} with boundary='periodic': a periodic "
                    "plane is not padded; use padding=None or boundary='linear'"
                )
        if self.oversample is not None:
            check_int(owner, "oversample", self.oversample, 1, 16)
        check_choice(owner, "method", self.method, PROPAGATION_METHODS)
        if not isinstance(self.wavelengths, tuple):
            raise TypeError(f"{owner}.wavelengths must be a tuple of floats [m], e.g. (633e-9,)")
        for extra in self.wavelengths:
            check_range(owner, "wavelengths", extra, 1e-7, 1e-2, unit="m", hint=_NM_HINT)
            if not 0.05 <= self.pitch / extra <= 1000.0:
                raise ValueError(
                    f"{owner}.wavelengths holds {extra!r} m, for which pitch={self.pitch!r} m is "
                    f"{self.pitch / extra:g} wavelengths; every wavelength must make "
                    "pitch/wavelength lie in [0.05, 1000]: drop it or change the pitch"
                )

    @property
    def all_wavelengths(self) -> tuple[float, ...]:
        """The design wavelength followed by the further ones [m]."""
        return (self.wavelength, *self.wavelengths)

    @property
    def gaps(self) -> tuple[float, ...]:
        """The ``n_layers + 1`` gap distances [m] (``distances`` or ``distance`` each)."""
        return self.distances or (self.distance,) * (self.n_layers + 1)

    @property
    def default_oversample(self) -> int:
        """Samples per neuron when ``oversample`` is None: 3 for neurons wider than half the
        shortest wavelength, 1 for finer ones (whose grid already carries every
        propagating wave).

        A pixelated mask diffracts light up to the propagating limit; one sample per neuron
        misses it. At the Lin 2018 pitch (0.53 lambda) and spacing the field after a
        random-phase layer errs by 31 % with one sample and 2.3 % with 3 x 3 (the default
        method, ``rs``, padding 2) against a 15 x 15-sample Rayleigh-Sommerfeld reference
        (``tests/optical/test_sampling.py``); 5 x 5 samples would give 0.8 % at 2.8x the FFT
        work.
        """
        return 3 if 2 * self.pitch > min(self.all_wavelengths) else 1

    @property
    def samples(self) -> int:
        """Simulation samples per neuron per side (``oversample`` or the default)."""
        return self.default_oversample if self.oversample is None else self.oversample

    @property
    def simulation_pitch(self) -> float:
        """Pitch of the simulation grid ``pitch / samples`` [m]."""
        return self.pitch / self.samples

    def grid_padding(self) -> float:
        """Padding factor in force: ``padding``, 1 for periodic boundaries, else
        :data:`~physnn.optical.functional.LINEAR_PADDING` (2)."""
        if self.boundary == "periodic":
            return 1.0
        return LINEAR_PADDING if self.padding is None else self.padding


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModulationConfig(ConfigBlock):
    """What each layer modulates and, optionally, the material it is made of."""

    kind: ModulationKind = "phase"
    """``phase`` (phase-only, Lin et al. 2018), ``amplitude`` (amplitude-only, |t| <= 1) or
    ``complex`` (both, Mengu et al., IEEE JSTQE 26, 3700114, 2020)."""

    material: bool = False
    """Model a 3D-printed layer: phase ``phi`` sets the thickness ``h = phi lambda /
    (2 pi (n - 1))`` and the layer absorbs ``exp(-2 pi kappa h / lambda)`` (Lin et al.
    2018, supplementary section on the material)."""

    refractive_index: float = 1.7227
    """Real refractive index n of the layer material [-]; VeroBlackPlus RGD875 at 0.4 THz
    (Lin et al. 2018, supplementary materials)."""

    extinction: float = 0.031
    """Extinction coefficient kappa of the layer material [-]; VeroBlackPlus RGD875 at
    0.4 THz (Lin et al. 2018, supplementary materials)."""

    init: MaskInit = "uniform"
    """Initial phase of trainable masks: ``uniform`` in [0, 2 pi) (the default: a random
    diffuser spreads the light over the whole next layer, so every neuron gets a gradient
    from the first step, as in Lin et al. 2018), ``small`` (``N(0, 0.1 rad)``, nearly
    transparent layers: training starts from free-space propagation) or ``zero``."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "init", self.init, literal_choices(MaskInit))
        check_choice(owner, "kind", self.kind, literal_choices(ModulationKind))
        _check_bool(owner, "material", self.material)
        check_range(
            owner,
            "refractive_index",
            self.refractive_index,
            1.0,
            5.0,
            low_inclusive=False,
            hint="a solid layer has n > 1 (1.7227 for the Lin 2018 printing material)",
        )
        check_range(owner, "extinction", self.extinction, 0.0, 1.0)
        if self.material and self.kind != "phase":
            raise ValueError(
                f"{owner}.material=True models a phase layer through its thickness, but "
                f"kind={self.kind!r}; use kind='phase' with the material model"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class FabricationConfig(ConfigBlock):
    """Static errors of the masks as made: phase quantisation and phase (thickness) error."""

    phase_levels: int = 0
    """Number of phase levels in [0, 2 pi) the mask can take [-]; 0 means continuous.
    An 8-bit SLM has 256 (e.g. Holoeye PLUTO-2), a 3D printer with 16 um z-steps about
    65 over Lin's 1.04 mm 2 pi-thickness."""

    phase_error_std: float = 0.0
    """Standard deviation of the static per-neuron phase error [rad]; a thickness error
    ``dh`` gives ``2 pi (n - 1) dh / lambda`` (about 0.1 rad per 16 um at 0.4 THz)."""

    training_phase_error_std: float = 0.0
    """Phase error std drawn afresh at every training forward [rad], in place of the
    stored chip's error ("vaccination" against fabrication, as Mengu et al. 2020 do for
    misalignment): the design then never sees the chip it will be scored on. 0 trains on
    the stored chip (in-situ training of that very device)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(
            owner,
            "training_phase_error_std",
            self.training_phase_error_std,
            0.0,
            10.0,
            unit="rad",
            hint="the phase error is in radians, not degrees",
        )
        check_int(owner, "phase_levels", self.phase_levels, 0, 65536)
        if self.phase_levels == 1:
            raise ValueError(
                f"{owner}.phase_levels=1 leaves no modulation; use 0 (continuous) or >= 2"
            )
        check_range(
            owner,
            "phase_error_std",
            self.phase_error_std,
            0.0,
            10.0,
            unit="rad",
            hint="the phase error is in radians, not degrees",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MisalignmentConfig(ConfigBlock):
    """Placement errors of each layer and vaccinated training (Mengu et al., "Misalignment
    resilient diffractive optical networks", Nanophotonics 9, 4207, 2020)."""

    lateral_std: float = 0.0
    """Standard deviation of each layer's static lateral (x and y) displacement [m]."""

    axial_std: float = 0.0
    """Standard deviation of each layer's static axial (z) displacement [m]."""

    training_lateral_std: float = 0.0
    """Lateral displacement std sampled afresh at every training forward [m] ("vaccination",
    Mengu et al. 2020); 0 trains without it."""

    training_axial_std: float = 0.0
    """Axial displacement std sampled afresh at every training forward [m]."""

    training_lateral_max: float = 0.0
    """Half-width of a uniform lateral displacement ``U(-max, max)`` (x and y) sampled
    afresh at every training forward [m]: the distribution of Mengu et al. 2020; adds to
    the Gaussian one."""

    training_axial_max: float = 0.0
    """Half-width of a uniform axial displacement sampled at every training forward [m]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in (
            "lateral_std",
            "axial_std",
            "training_lateral_std",
            "training_axial_std",
            "training_lateral_max",
            "training_axial_max",
        ):
            check_range(owner, name, getattr(self, name), 0.0, 0.1, unit="m", hint=_NM_HINT)

    @property
    def vaccinates(self) -> bool:
        """True when training draws displacements afresh (any ``training_*`` field > 0)."""
        return any(
            getattr(self, name) > 0
            for name in (
                "training_lateral_std",
                "training_axial_std",
                "training_lateral_max",
                "training_axial_max",
            )
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectorConfig(ConfigBlock):
    """Detector plane: region layout, readout normalisation and noise.

    Two kinds of detector:

    - ``camera`` (visible/near-infrared sensors): a region is read as its actual pixels (one
      per neuron). Signals are photoelectrons ``QE * photons * P_k / P_full`` (``P_k`` the
      power on region k, ``P_full`` that of a full-scale input) plus dark electrons
      ``dark_current * exposure_time`` per pixel, subtracted after readout (a dark frame);
      shot noise (Poisson, Gaussian approximation) of both, read noise ``read_noise`` per
      pixel, and an ADC of ``bits`` per pixel over ``[0, full_well]``.
    - ``power`` (THz detectors: Schottky diodes, bolometers, Golay cells, specified by their
      noise-equivalent power): each region is one detector reading its power with
      additive noise of std ``nep * sqrt(bandwidth)`` [W] and an ADC over ``[0, 2**bits
      sigma]`` (noise = 1 LSB). At 0.4 THz and 300 K a mode holds about 15 thermal
      photons, so photon counting does not apply; the NEP includes that background.
    """

    kind: DetectorKind = "camera"
    """``camera`` (photon counting by pixels) or ``power`` (NEP-specified power detector)."""

    dark_current: float = 0.0
    """Dark current of a camera pixel [e-/s]; about 0.5 e-/s/pixel for a cooled sCMOS
    (Hamamatsu ORCA-Fusion class), 0 by default."""

    nep: float = 1e-10
    """Noise-equivalent power of a ``power`` detector [W/sqrt(Hz)]; room-temperature THz
    Schottky diodes and Golay cells are 1e-11 to 1e-10 (issue 12; VDI zero-bias
    detector data sheets)."""

    bandwidth: float = 5e5
    """Noise bandwidth of a ``power`` detector [Hz]; 1 / (2 * 1 us) for a 1 us
    integration."""

    region_fill: float = 0.5
    """Side of a detector region as a fraction of its cell in the region grid [-]."""

    differential: bool = False
    """Read each output as the difference of two regions (signed outputs)."""

    temperature: float = 10.0
    """Readout temperature [-]: logits are ``temperature * P_k / sum_j P_j`` (power shares),
    which makes softmax cross-entropy training work (Mengu et al., IEEE JSTQE 2020)."""

    noise: bool = True
    """Simulate shot noise and read noise (off in ``ideal``)."""

    quantum_efficiency: float = 0.6
    """Photoelectrons per incident photon [-]; about 0.6 for a visible CMOS sensor."""

    read_noise: float = 2.0
    """Read noise per camera pixel [e- rms]; about 2 e- for a scientific CMOS camera (a
    region of n pixels reads sqrt(n) times that)."""

    bits: int | None = 8
    """ADC resolution [bit]; None skips quantisation."""

    full_well: float | None = None
    """ADC full scale (saturation) of one region [e-]; None uses ``4**bits``, for which shot
    noise at full scale equals one LSB (shot-noise-limited ADC), or ``4**12`` when ``bits``
    is None (no ADC; the scale then only sets the default photon budget)."""

    photons_per_frame: float | None = None
    """Photons the source sends through a full-scale input per frame [photons] (an
    ``OpticalLinear`` inference takes two frames, ``x+`` and ``x-``); None
    uses the shot-noise-limited budget ``n_regions * full_well / (QE * optical_efficiency)``
    (every region can reach full scale)."""

    optical_efficiency: float = 0.1
    """Fraction of the source light that reaches the detector regions [-] (diffraction
    efficiency, absorption and stray light); used only for the default photon budget."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "kind", self.kind, literal_choices(DetectorKind))
        check_range(owner, "dark_current", self.dark_current, 0.0, 1e9, unit="e-/s")
        check_range(
            owner,
            "nep",
            self.nep,
            1e-18,
            1e-3,
            unit="W/sqrt(Hz)",
            hint="a THz detector has an NEP of about 1e-11..1e-10 W/sqrt(Hz)",
        )
        check_range(owner, "bandwidth", self.bandwidth, 0.0, 1e12, unit="Hz", low_inclusive=False)
        check_range(owner, "region_fill", self.region_fill, 0.0, 1.0, low_inclusive=False)
        _check_bool(owner, "differential", self.differential)
        _check_bool(owner, "noise", self.noise)
        check_range(owner, "temperature", self.temperature, 0.0, 1e4, low_inclusive=False)
        check_range(
            owner,
            "quantum_efficiency",
            self.quantum_efficiency,
            0.0,
            1.0,
            low_inclusive=False,
            hint="pass a fraction, not a percentage",
        )
        check_range(owner, "read_noise", self.read_noise, 0.0, 1e6, unit="e-")
        if self.bits is not None:
            check_int(owner, "bits", self.bits, 1, 24)
        if self.full_well is not None:
            check_range(
                owner, "full_well", self.full_well, 1.0, 1e12, unit="e-", low_inclusive=True
            )
        if self.photons_per_frame is not None:
            check_range(
                owner,
                "photons_per_frame",
                self.photons_per_frame,
                0.0,
                1e30,
                unit="photons",
                low_inclusive=False,
            )
        check_range(
            owner, "optical_efficiency", self.optical_efficiency, 0.0, 1.0, low_inclusive=False
        )
        budget = self.full_scale / (self.quantum_efficiency * self.optical_efficiency)
        if self.photons_per_frame is None and budget > _MAX_PHOTONS:
            # float32 detection of such counts overflows to inf and NaN (issue 15, item 4).
            raise ValueError(
                f"{owner}: the default photon budget full_scale / (quantum_efficiency * "
                f"optical_efficiency) = {budget:.3g} photons per region exceeds {_MAX_PHOTONS:g} "
                f"(quantum_efficiency={self.quantum_efficiency!r}, optical_efficiency="
                f"{self.optical_efficiency!r}); raise them or set photons_per_frame"
            )

    @property
    def full_scale(self) -> float:
        """ADC full scale [e-] (``full_well`` or the shot-noise-limited ``4**bits``; ``4**12``
        without ADC)."""
        if self.full_well is not None:
            return self.full_well
        return float(4 ** (self.bits if self.bits is not None else 12))

    def photons(self, n_regions: int) -> float:
        """Source photons per frame for a ``camera`` with ``n_regions`` regions [photons]."""
        if self.photons_per_frame is not None:
            return self.photons_per_frame
        return n_regions * self.full_scale / (self.quantum_efficiency * self.optical_efficiency)

    @property
    def noise_power(self) -> float:
        """Noise std of a ``power`` detector ``nep * sqrt(bandwidth)`` [W]."""
        return self.nep * math.sqrt(self.bandwidth)

    @property
    def full_scale_power(self) -> float:
        """ADC full scale of a ``power`` detector [W]: ``2**bits`` noise stds (``2**12``
        without ADC)."""
        return self.noise_power * 2 ** (self.bits if self.bits is not None else 12)

    def source_power(self, n_regions: int) -> float:
        """Source power a ``power`` detector needs [W]: every region can reach full scale
        (``n_regions * full_scale_power / optical_efficiency``)."""
        return n_regions * self.full_scale_power / self.optical_efficiency


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnergyConfig(ConfigBlock):
    """Coefficients of the energy and latency model (see :mod:`physnn.optical.cost`)."""

    wall_plug_efficiency: float = 1e-3
    """Optical power out per electrical power in of the source [-]; a 0.4 THz multiplier
    chain source delivers mW from W (about 1e-3)."""

    modulator_power: float = 1.0
    """Electrical power of the input modulator while it runs [W], whatever the number of
    pixels used; a DMD (TI DLP7000 class, 1024 x 768 mirrors) draws about 1 W. A DMD only
    modulates visible and near-infrared light: THz presets use a THz modulator instead."""

    modulator_frame_rate: float = 32.5e3
    """Input modulator frame rate [Hz]; DMD binary patterns at 32.5 kHz (ANCHORS, optical)."""

    mask_power: float = 0.0
    """Static power of each reconfigurable mask [W] (an SLM's driver, about 1-2 W); 0 for
    passive 3D-printed layers."""

    exposure_time: float = 1e-6
    """Detector integration time per frame [s]."""

    readout_energy: float = 1e-12
    """Energy to read one camera pixel, or one ``power`` detector, through its ADC [J]; a
    camera pixel readout costs about 1 pJ (ANCHORS, optical)."""

    digital_energy_per_op: float = 0.23e-12
    """Digital post-processing energy per operation (normalisation, differential
    subtraction, gain, bias) [J]; 8-bit MAC at 45 nm (Horowitz, ISSCC 2014)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(
            owner,
            "wall_plug_efficiency",
            self.wall_plug_efficiency,
            0.0,
            1.0,
            low_inclusive=False,
            hint="pass a fraction, not a percentage",
        )
        check_range(owner, "modulator_power", self.modulator_power, 0.0, 1e4, unit="W")
        for name in ("readout_energy", "digital_energy_per_op"):
            check_range(
                owner, name, getattr(self, name), 0.0, 1e-3, unit="J", hint="1 pJ is 1e-12 J"
            )
        check_range(
            owner,
            "modulator_frame_rate",
            self.modulator_frame_rate,
            0.0,
            1e12,
            unit="Hz",
            low_inclusive=False,
        )
        check_range(owner, "mask_power", self.mask_power, 0.0, 1e4, unit="W")
        check_range(
            owner, "exposure_time", self.exposure_time, 0.0, 10.0, unit="s", hint="1 us is 1e-6 s"
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class OpticalConfig(BackendConfig):
    """A diffractive optical processor: geometry, modulation, errors, detector, energy."""

    backend = "optical"

    geometry: GeometryConfig = dataclasses.field(default_factory=GeometryConfig)
    """Wavelength, pitch, layer size, number of layers, spacing and propagation method."""

    modulation: ModulationConfig = dataclasses.field(default_factory=ModulationConfig)
    """Mask type and material model."""

    fabrication: FabricationConfig = dataclasses.field(default_factory=FabricationConfig)
    """Phase quantisation and static phase error."""

    misalignment: MisalignmentConfig = dataclasses.field(default_factory=MisalignmentConfig)
    """Static layer displacements and vaccinated training."""

    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    """Detector regions, readout and noise."""

    energy: EnergyConfig = dataclasses.field(default_factory=EnergyConfig)
    """Energy and latency coefficients."""

    simulation: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)
    """Memory budget of a simulated forward pass (:mod:`physnn.optical.memory`)."""

    encoding: Encoding = "amplitude"
    """How an image enters the coherent network: ``amplitude`` (Lin et al. 2018) or
    ``phase`` (``exp(i pi x)``)."""

    input_fill: float = 0.5
    """Side of the image on the input plane as a fraction of the layer side [-]."""

    input_levels: int = 0
    """Grey levels of the input modulator (a DMD with time multiplexing, an SLM) [-];
    0 means continuous."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        for name, block_type in (
            ("geometry", GeometryConfig),
            ("modulation", ModulationConfig),
            ("fabrication", FabricationConfig),
            ("misalignment", MisalignmentConfig),
            ("detector", DetectorConfig),
            ("energy", EnergyConfig),
            ("simulation", MemoryConfig),
        ):
            if not isinstance(getattr(self, name), block_type):
                raise TypeError(
                    f"{owner}.{name} must be a {block_type.__name__}, got "
                    f"{type(getattr(self, name)).__name__}"
                )
        check_choice(owner, "encoding", self.encoding, literal_choices(Encoding))
        check_probability(owner, "input_fill", self.input_fill)
        if self.input_fill == 0:
            raise ValueError(f"{owner}.input_fill=0 leaves no room for the input; use (0, 1]")
        check_int(owner, "input_levels", self.input_levels, 0, 65536)
        if self.input_levels == 1:
            raise ValueError(f"{owner}.input_levels=1 cannot encode data; use 0 or >= 2")

    def ideal(self) -> OpticalConfig:
        """The same geometry with every nonideality off (continuous masks, perfect
        alignment, noiseless unquantised detector, continuous input)."""
        return self.replace(
            fabrication=FabricationConfig(),
            misalignment=MisalignmentConfig(),
            detector=self.detector.replace(noise=False, bits=None),
            input_levels=0,
        )
