"""Configuration of an analog in-memory-computing (PIM) crossbar accelerator.

:class:`PIMConfig` groups one frozen block per physical mechanism. Every field carries its
unit in brackets (``[S]`` siemens, ``[ohm]``, ``[V]``, ``[s]``, ``[J]``, ``[m^2]``; ``[1]``
for dimensionless quantities). Normalised quantities follow aihwkit's convention: weights are
mapped to ``[-1, 1]`` (``1`` = the layer's or column's largest weight at ``g_max``), inputs to
``[-1, 1]`` of the DAC range, so a tile's normalised output is ``x_n @ W_n``.
"""

from __future__ import annotations

import dataclasses
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
from .devices import device_names

MappingScheme = Literal["differential", "reference"]
WeightScale = Literal["layer", "column"]
Compensation = Literal["none", "global", "column"]
IRDropModel = Literal["none", "fast"]
RangeMode = Literal["fixed", "dynamic", "learned"]
DriftModel = Literal["none", "pcm", "constant"]

__all__ = [
    "ADCArchitecture",
    "ADCConfig",
    "CircuitConfig",
    "ColumnLayout",
    "DACConfig",
    "DriftConfig",
    "EnergyConfig",
    "FaultConfig",
    "HWAConfig",
    "MappingConfig",
    "PIMConfig",
    "ProgrammingConfig",
    "ReadNoiseConfig",
]

_S_HINT = "conductances are in siemens: 25 uS is 25e-6"
_T_HINT = "times are in seconds: 250 ns is 250e-9, one day is 86400"
_J_HINT = "energies are in joules: 1 pJ is 1e-12"
_A_HINT = "areas are in square metres: 1 um^2 is 1e-12"
_F_HINT = "pass a fraction: 0.05 is 5 %"
_OUT_HINT = "normalised tile-output units: aihwkit uses output noise 0.04-0.06 and bound 10-12"


def _optional_bits(owner: str, name: str, value: int | None, high: int = 16) -> None:
    if value is not None:
        check_int(owner, name, value, 1, high)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MappingConfig(ConfigBlock):
    """How weights become conductances and how a layer is split into crossbar tiles.

    Weights are scaled by the largest absolute weight of the layer (``scale="layer"``) or of
    each output column (``scale="column"``) so that it maps to ``g_max`` (Joshi et al., Nat.
    Commun. 11, 2473, 2020). ``scheme="differential"`` uses a pair of devices per weight
    (``G+ - G-``); ``"reference"`` uses one device per weight and one shared reference device
    per row programmed to mid-range (Le Gallo et al., J. Phys. D 51, 283001, 2018).
    """

    g_max: float = 25e-6
    """Largest programmable conductance [S]; 25 uS for the PCM model (Nandakumar et al.,
    ICECS 2019)."""

    g_min: float = 0.0
    """Smallest conductance, the RESET state [S]."""

    scheme: MappingScheme = "differential"
    """``"differential"`` (device pair per weight) or ``"reference"`` (one device per weight
    plus a mid-range reference device per row)."""

    devices_per_polarity: int = 1
    """Devices programmed to the same target and read together per weight polarity [1];
    HERMES uses 2 (8T4R unit cell; Le Gallo et al., Nat. Electron. 6, 680, 2023)."""

    scale: WeightScale = "layer"
    """Weight-to-conductance scale: ``"layer"`` (one max per layer) or ``"column"``."""

    bits_per_cell: int | None = None
    """Finite conductance levels per cell, ``2**bits_per_cell`` levels [bit]; None means
    analog (continuous) programming."""

    slices: int = 1
    """Cells per weight polarity holding successive digits of the weight, recombined by
    digital shift-and-add [1] (NeuroSim: 8-bit weights on 1-bit cells use 8 slices; Peng et
    al., IEDM 2019). Needs ``bits_per_cell``."""

    tile_rows: int = 512
    """Rows (inputs) of one crossbar tile [1]; aihwkit's default maximum is 512."""

    tile_cols: int = 512
    """Columns (outputs) of one crossbar tile [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(owner, "g_max", self.g_max, 1e-9, 1e-2, unit="S", hint=_S_HINT)
        check_range(owner, "g_min", self.g_min, 0.0, 1e-2, unit="S", hint=_S_HINT)
        if self.g_min >= self.g_max:
            raise ValueError(
                f"{owner}: g_min={self.g_min!r} S must be below g_max={self.g_max!r} S; "
                "swap them or lower g_min"
            )
        check_choice(owner, "scheme", self.scheme, literal_choices(MappingScheme))
        check_int(owner, "devices_per_polarity", self.devices_per_polarity, 1, 16)
        check_choice(owner, "scale", self.scale, literal_choices(WeightScale))
        _optional_bits(owner, "bits_per_cell", self.bits_per_cell, 8)
        check_int(owner, "slices", self.slices, 1, 16)
        if self.slices > 1 and self.bits_per_cell is None:
            raise ValueError(
                f"{owner}: slices={self.slices} needs bits_per_cell (digits per cell); set "
                "bits_per_cell=1 for binary cells or slices=1 for analog cells"
            )
        check_int(owner, "tile_rows", self.tile_rows, 1, 1 << 16)
        check_int(owner, "tile_cols", self.tile_cols, 1, 1 << 16)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProgrammingConfig(ConfigBlock):
    """Programming (write) noise and device-to-device variation, drawn once per chip.

    ``model="pcm"`` is the statistical PCM model of Nandakumar et al., ICECS 2019 (also Joshi
    et al. 2020): ``sigma = (0.26348 + 1.9650 g - 1.1731 g^2) uS * g_max / 25 uS`` for the
    normalised target ``g = G / g_max``. ``model="reram"`` is HfOx ReRAM after write-verify
    with the conductance-dependent spread and the relaxation over two days of Wan et al.,
    Nature 608, 504, 2022 (:class:`~physnn.pim.devices.ReRAMDevice`). ``model="gaussian"``
    adds ``sqrt(sigma_abs^2 + (sigma_rel G)^2)``: a state-independent plus a
    state-proportional spread.
    ``model="measured"`` snaps every target to the nearest of a device's measured ``levels``
    and adds that level's measured spread ``level_sigma`` (see
    :func:`physnn.pim.presets.from_csv`).
    """

    model: str = "pcm"
    """A registered device model (:mod:`physnn.pim.devices`): ``"none"``, ``"pcm"``,
    ``"reram"``, ``"gaussian"``, ``"measured"`` or one added with ``register_device``."""

    levels: tuple[float, ...] = ()
    """Measured programmable conductance levels, ascending, ``model="measured"`` [S]."""

    level_sigma: tuple[float, ...] = ()
    """Measured programming spread of each level, ``model="measured"`` [S]."""

    sigma_abs: float = 0.0
    """State-independent programming noise, ``model="gaussian"`` [S]."""

    sigma_rel: float = 0.0
    """State-proportional programming noise relative to the target, ``"gaussian"`` [1]."""

    device_variation: float = 0.0
    """Relative spread of each device's largest reachable conductance [1]; targets above a
    device's own maximum saturate there (device-to-device variation)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "model", self.model, device_names())
        if not isinstance(self.levels, tuple) or not isinstance(self.level_sigma, tuple):
            raise TypeError(
                f"{owner}.levels and level_sigma must be tuples of floats [S], got "
                f"{type(self.levels).__name__} and {type(self.level_sigma).__name__}; "
                "wrap them in tuple(...)"
            )
        for i, (g, sd) in enumerate(zip(self.levels, self.level_sigma, strict=False)):
            check_range(owner, f"levels[{i}]", g, 0.0, 1e-2, unit="S", hint=_S_HINT)
            check_range(owner, f"level_sigma[{i}]", sd, 0.0, 1e-2, unit="S", hint=_S_HINT)
        if self.model == "measured":
            if len(self.levels) < 2 or len(self.levels) != len(self.level_sigma):
                raise ValueError(
                    f"{owner}: model='measured' needs >= 2 levels and one level_sigma per "
                    f"level, got {len(self.levels)} levels and {len(self.level_sigma)} sigmas"
                )
            if any(b <= a for a, b in zip(self.levels, self.levels[1:], strict=False)):
                raise ValueError(
                    f"{owner}.levels must be strictly ascending, got {self.levels}; sort the "
                    "levels (with their level_sigma) and drop duplicates"
                )
        check_range(owner, "sigma_abs", self.sigma_abs, 0.0, 1e-3, unit="S", hint=_S_HINT)
        check_range(owner, "sigma_rel", self.sigma_rel, 0.0, 1.0, hint=_F_HINT)
        check_range(owner, "device_variation", self.device_variation, 0.0, 1.0, hint=_F_HINT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DriftConfig(ConfigBlock):
    """Conductance drift ``G(t) = G_prog ((t + t0) / t0)^-nu`` and its compensation.

    ``model="pcm"``: ``nu ~ |N(mu(g), sigma(g))|`` with the state-dependent fits of
    Nandakumar et al., ICECS 2019 (see :func:`physnn.pim.functional.pcm_drift_exponents`).
    ``model="constant"``: ``nu ~ |N(nu_mean, nu_std)|`` for every device. Compensation follows
    Joshi et al. 2020: the output on a fixed calibration input is measured after programming
    and at time t, and outputs are rescaled by the ratio of mean absolute values, for the whole
    layer (``"global"``) or per output column (``"column"``).
    """

    model: DriftModel = "pcm"
    """``"none"``, ``"pcm"`` or ``"constant"``."""

    nu_mean: float = 0.05
    """Mean drift exponent for ``model="constant"`` [1]."""

    nu_std: float = 0.0
    """Spread of the drift exponent for ``model="constant"`` [1]."""

    t0: float = 20.0
    """Reference time after programming at which ``G = G_prog`` [s] (Joshi 2020: 20 s)."""

    compensation: Compensation = "global"
    """``"none"``, ``"global"`` or ``"column"``."""

    calibration_samples: int = 128
    """Random calibration inputs used to measure the compensation factor [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_choice(owner, "model", self.model, literal_choices(DriftModel))
        nu_hint = "drift exponents are dimensionless, about 0.005 (ReRAM) to 0.1 (PCM)"
        check_range(owner, "nu_mean", self.nu_mean, 0.0, 1.0, hint=nu_hint)
        check_range(owner, "nu_std", self.nu_std, 0.0, 1.0, hint=nu_hint)
        check_range(owner, "t0", self.t0, 0.0, 1e6, low_inclusive=False, unit="s", hint=_T_HINT)
        check_choice(owner, "compensation", self.compensation, literal_choices(Compensation))
        check_int(owner, "calibration_samples", self.calibration_samples, 1, 1 << 16)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadNoiseConfig(ConfigBlock):
    """Noise drawn anew on every read (every forward pass), vectorised over the batch.

    ``pcm_1f``: 1/f read noise of PCM accumulated up to the inference time t, relative std
    ``Q_s sqrt(ln((t + t0 + t_read) / (2 t_read)))`` with
    ``Q_s = min(0.0088 / max(g_prog^0.65, 1e-3), 0.2)`` for the normalised programmed
    conductance ``g_prog = G_prog / g_max`` (Nandakumar et al., ICECS 2019).
    ``weight_noise`` and ``output_noise`` are aihwkit's per-MVM ``w_noise`` and ``out_noise``
    in normalised units (Rasch et al., Nat. Commun. 14, 5282, 2023). Weight noise is i.i.d.
    per device and read and is drawn exactly in the output domain (variance
    ``(x^2) @ sigma^2``, one normal per output), with every input vector of a batch its own
    read, as aihwkit redraws ``w_noise`` per vector; output noise is drawn per output. The
    accumulated 1/f noise is low-frequency: it is drawn once per drift time and frozen in the
    effective weights (as aihwkit's ``drift_analog_weights``).
    """

    pcm_1f: bool = True
    """Apply the PCM 1/f read-noise model."""

    t_read: float = 250e-9
    """Duration of one read [s] (Nandakumar 2019: 250 ns)."""

    weight_noise: float = 0.0
    """Additive per-read weight noise, std relative to the largest weight [1]."""

    output_noise: float = 0.04
    """Additive output noise, std in normalised tile-output units [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.pcm_1f, bool):
            raise TypeError(f"{owner}.pcm_1f must be a bool, got {self.pcm_1f!r}")
        check_range(owner, "t_read", self.t_read, 1e-12, 1e-3, unit="s", hint=_T_HINT)
        check_range(owner, "weight_noise", self.weight_noise, 0.0, 1.0, hint=_F_HINT)
        check_range(owner, "output_noise", self.output_noise, 0.0, 10.0, hint=_OUT_HINT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FaultConfig(ConfigBlock):
    """Stuck-at device faults, drawn once per chip and kept as masks.

    Rates are fractions of devices (Chen et al., "RRAM defect modeling and failure analysis",
    DATE 2015 report stuck-at faults of the order of 1-10 %).
    """

    stuck_off_rate: float = 0.0
    """Fraction of devices stuck at ``g_min`` [1]."""

    stuck_on_rate: float = 0.0
    """Fraction of devices stuck at ``g_max`` [1]."""

    stuck_random_rate: float = 0.0
    """Fraction of devices stuck at a uniformly random conductance in ``[g_min, g_max]`` [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("stuck_off_rate", "stuck_on_rate", "stuck_random_rate"):
            check_probability(owner, name, getattr(self, name))
        total = self.stuck_off_rate + self.stuck_on_rate + self.stuck_random_rate
        if total > 1.0:
            raise ValueError(
                f"{owner}: stuck_off_rate={self.stuck_off_rate!r}, stuck_on_rate="
                f"{self.stuck_on_rate!r} and stuck_random_rate={self.stuck_random_rate!r} add "
                f"up to {total:g} > 1; lower them so that they sum to at most 1"
            )


ColumnLayout = Literal["adjacent", "blocked"]
"""Order of the device columns of a crossbar tile (see :class:`CircuitConfig`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class CircuitConfig(ConfigBlock):
    """Read voltage, wire resistance (IR drop) and device I-V nonlinearity.

    ``ir_drop="fast"`` uses the precomputed effective-conductance model of
    :func:`physnn.pim.functional.ir_drop_crossbar`: the devices of a weight (both polarities,
    every device per polarity) share the row wires of one array, in the column order of
    ``column_layout``; it is validated against exact nodal solutions of the whole array
    (:func:`physnn.pim.functional.solve_crossbar`). ``iv_v0`` enables the sinh I-V model
    ``I = G v0 sinh(V / v0)`` of memristive devices (Strukov & Williams, Appl. Phys. A 94,
    515, 2009; used by NeuroSim and MemTorch).
    """

    v_read: float = 0.2
    """Read voltage of a full-scale input [V] (PCM read at 0.2 V; Joshi 2020)."""

    ir_drop: IRDropModel = "none"
    """``"none"`` or ``"fast"``."""

    r_wire_row: float = 1.0
    """Row (word-line) wire resistance per cell segment [ohm]."""

    r_wire_col: float = 1.0
    """Column (bit-line) wire resistance per cell segment [ohm]."""

    column_layout: ColumnLayout = "adjacent"
    """Order of the device columns in a tile: ``"adjacent"`` (the devices of one weight in
    neighbouring columns, ``G+ G- G+ G- ...``) or ``"blocked"`` (all ``G+`` columns, then
    all ``G-`` columns); a reference scheme's reference column comes last."""

    iv_v0: float | None = None
    """Characteristic voltage of the sinh I-V nonlinearity [V]; None for ohmic devices."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(owner, "v_read", self.v_read, 1e-3, 10.0, unit="V", hint="volts: 0.2 V")
        check_choice(owner, "ir_drop", self.ir_drop, literal_choices(IRDropModel))
        hint = "resistances are in ohm per cell segment (about 0.1-10 ohm)"
        check_range(owner, "r_wire_row", self.r_wire_row, 0.0, 1e4, unit="ohm", hint=hint)
        check_range(owner, "r_wire_col", self.r_wire_col, 0.0, 1e4, unit="ohm", hint=hint)
        check_choice(owner, "column_layout", self.column_layout, literal_choices(ColumnLayout))
        if self.iv_v0 is not None:
            check_range(owner, "iv_v0", self.iv_v0, 1e-3, 10.0, unit="V", hint="volts")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DACConfig(ConfigBlock):
    """Input digital-to-analog conversion.

    Inputs are divided by the input range (``"fixed"``: ``input_bound``; ``"dynamic"``: the
    per-sample absolute maximum, aihwkit's ``NoiseManagementType.ABS_MAX``; ``"learned"``: a
    trained scalar initialised from the first training batch, Rasch et al. 2023), clipped to
    ``[-1, 1]`` and rounded to ``2**(bits-1) - 1`` levels per sign. ``bit_serial`` applies the
    magnitude bits one cycle at a time with one ADC conversion per cycle, combined by
    shift-and-add (NeuroSim; Peng et al., IEDM 2019).
    """

    bits: int | None = 8
    """Input resolution including sign [bit]; None for an ideal DAC (continuous, unclipped)."""

    range_mode: RangeMode = "dynamic"
    """``"fixed"``, ``"dynamic"`` or ``"learned"``."""

    input_bound: float = 1.0
    """Input range for ``"fixed"``, initial range for ``"learned"`` before data is seen
    [input units]."""

    bit_serial: bool = False
    """Apply inputs bit by bit (one ADC conversion per input bit)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _optional_bits(owner, "bits", self.bits)
        if self.bits == 1:
            raise ValueError(f"{owner}: bits=1 leaves no magnitude bit; use bits >= 2")
        check_choice(owner, "range_mode", self.range_mode, literal_choices(RangeMode))
        check_range(
            owner,
            "input_bound",
            self.input_bound,
            0.0,
            1e6,
            low_inclusive=False,
            hint="the input range is in the units of the layer's input, e.g. 1.0",
        )
        if not isinstance(self.bit_serial, bool):
            raise TypeError(f"{owner}.bit_serial must be a bool, got {self.bit_serial!r}")
        if self.bit_serial and self.bits is None:
            raise ValueError(f"{owner}: bit_serial=True needs bits; set bits=8 for example")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ADCConfig(ConfigBlock):
    """Output analog-to-digital conversion of each tile's column outputs.

    The normalised output is clipped to ``[-output_bound, output_bound]`` and rounded to
    ``2**(bits-1) - 1`` levels per sign. Each column's converter has a static gain error
    ``1 + N(0, gain_std)`` and offset ``N(0, offset_std)`` and adds ``noise`` per conversion.
    The bound follows aihwkit's inference defaults (bound 12; Rasch et al. 2023); the
    resolution is 8 bits as in the ``pcm`` preset (aihwkit's default is 9 bits).
    """

    bits: int | None = 8
    """Output resolution including sign [bit]; None for an ideal ADC (continuous, unclipped)."""

    output_bound: float = 12.0
    """Full scale in normalised tile-output units [1]."""

    gain_std: float = 0.0
    """Per-column relative gain error [1]."""

    offset_std: float = 0.0
    """Per-column offset error in normalised output units [1]."""

    noise: float = 0.0
    """Per-conversion noise in normalised output units [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _optional_bits(owner, "bits", self.bits)
        if self.bits == 1:
            raise ValueError(f"{owner}: bits=1 leaves no magnitude bit; use bits >= 2")
        check_range(
            owner,
            "output_bound",
            self.output_bound,
            0.0,
            1e6,
            low_inclusive=False,
            hint=_OUT_HINT,
        )
        check_range(owner, "gain_std", self.gain_std, 0.0, 1.0, hint=_F_HINT)
        check_range(owner, "offset_std", self.offset_std, 0.0, 100.0, hint=_OUT_HINT)
        check_range(owner, "noise", self.noise, 0.0, 100.0, hint=_OUT_HINT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HWAConfig(ConfigBlock):
    """Hardware-aware training (Rasch et al., Nat. Commun. 14, 5282, 2023).

    In training mode the forward injects additive weight noise (``weight_noise`` times the
    largest weight, one matrix redrawn per mini-batch as in Rasch et al.; measured on the
    digits MLP, a per-vector redraw recovered 0.6 pp less of the drift loss), the output
    noise and DAC/ADC quantisation of the config (straight-through gradients); after each
    optimiser step weights are clipped to ``clip_sigma`` standard deviations of the layer
    and a learned input range decays by ``input_range_decay`` while more than
    ``input_range_min_inside`` of the inputs seen since the last step fell inside it
    (aihwkit's ``InputRangeParameter``: decay 0.01, ``input_min_percentage`` 0.95). A
    learned range starts at the largest absolute value of the first non-zero training inputs
    it sees; until then (a model converted and read without training) the layer reads with a
    dynamic range. The backward pass is ideal. Training uses the continuous weights and
    parallel (not bit-serial) inputs; weight slicing, finite levels, drift and the device
    noise models apply to the programmed chip at inference.
    """

    weight_noise: float = 0.05
    """Training weight-noise std relative to the largest weight [1]."""

    clip_sigma: float | None = 2.5
    """Clip weights to this many layer standard deviations after each step [1]; None: off."""

    input_range_decay: float = 0.01
    """Relative shrink of a learned input range per optimiser step [1]."""

    input_range_min_inside: float = 0.95
    """Decay a learned input range only while more than this fraction of inputs is inside
    it [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(owner, "weight_noise", self.weight_noise, 0.0, 1.0, hint=_F_HINT)
        if self.clip_sigma is not None:
            check_range(
                owner,
                "clip_sigma",
                self.clip_sigma,
                0.0,
                100.0,
                low_inclusive=False,
                hint="a number of standard deviations such as 2.5; None turns clipping off",
            )
        check_range(owner, "input_range_decay", self.input_range_decay, 0.0, 1.0, hint=_F_HINT)
        check_probability(owner, "input_range_min_inside", self.input_range_min_inside)


ADCArchitecture = Literal["sar", "flash", "counting"]
"""How an ADC converts, which sets its conversion time (see :class:`EnergyConfig`)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnergyConfig(ConfigBlock):
    """Coefficients of the energy, latency and area model (see :mod:`physnn.pim.cost`).

    Defaults are the ``hermes`` calibration of a 14 nm PCM core (IBM HERMES: Le Gallo et al.,
    Nat. Electron. 6, 680, 2023; Khaddam-Aljameh et al., IEEE JSSC 57, 1027, 2022: 256x256
    cores, 8-bit PWM inputs, one CCO-based counting ADC per column at 300 ps per LSB).
    ``adc_fom`` was fitted so that one core gives the measured 9.76 TOPS/W and
    ``digital_latency`` so that an MVM takes the measured 133 ns (63.1 TOPS on 64 cores); the
    other coefficients are representative values (not fitted). ``input_activity`` and
    ``mean_state`` are assumptions of the analytic cost only: a cost computed from the
    programmed conductances and real inputs (``crossbar_cost(..., conductance=, inputs=)``)
    does not use them.
    """

    read_pulse: float = 128e-9
    """Duration of a full-scale input pulse (PWM) or of one bit-serial cycle [s]."""

    input_activity: float = 0.5
    """Assumed mean normalised input magnitude of a PWM pulse, or fraction of ones of a
    bit-serial plane, when the cost has no input data [1]."""

    mean_state: float = 0.25
    """Assumed mean device conductance as a fraction of ``g_max`` when the cost has no
    conductance data [1]."""

    dac_energy: float = 0.1e-12
    """Energy of one input (row) conversion per cycle [J]."""

    adc_fom: float = 50e-15
    """Walden figure of merit, energy per conversion step: ``E = adc_fom * 2**bits`` [J]
    (fitted to HERMES; state-of-the-art SAR/CCO ADCs: 1-50 fJ/step, Murmann, ADC Performance
    Survey 1997-2023)."""

    adc_architecture: ADCArchitecture = "counting"
    """``"sar"`` (successive approximation: ``bits`` steps of ``adc_time`` after the read),
    ``"flash"`` (one step of ``adc_time`` after the read) or ``"counting"`` (a CCO or ramp
    converter counting ``2**bits`` periods of ``adc_time`` while the read pulse integrates
    the column current: the read takes the longer of the two; needs ``columns_per_adc=1``)."""

    adc_time: float = 0.3e-9
    """One conversion step [s]: a SAR bit decision, a flash conversion, or one LSB period of
    a counting converter (HERMES: 300 ps per LSB)."""

    columns_per_adc: int = 1
    """Columns sharing one ADC (time-multiplexed) [1]."""

    accumulate_energy: float = 0.03e-12
    """Energy of one digital addition of partial sums or scaling [J] (Horowitz, ISSCC 2014:
    32-bit add 0.1 pJ at 45 nm; 8-16 bit at 14-22 nm about 0.03 pJ)."""

    io_energy_per_byte: float = 1.0e-12
    """Energy to move one byte of input or output between the tile and local memory [J]."""

    digital_latency: float = 5e-9
    """Latency of the digital post-processing per MVM [s]."""

    cell_area: float = 0.1e-12
    """Area of one memory cell with its access devices [m^2]."""

    adc_area: float = 200e-12
    """Area of one ADC [m^2]."""

    dac_area: float = 20e-12
    """Area of one row driver / DAC [m^2]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_range(owner, "read_pulse", self.read_pulse, 1e-12, 1e-3, unit="s", hint=_T_HINT)
        check_range(owner, "input_activity", self.input_activity, 0.0, 1.0, hint=_F_HINT)
        check_range(owner, "mean_state", self.mean_state, 0.0, 1.0, hint=_F_HINT)
        for name in ("dac_energy", "adc_fom", "accumulate_energy", "io_energy_per_byte"):
            check_range(owner, name, getattr(self, name), 0.0, 1e-9, unit="J", hint=_J_HINT)
        check_choice(
            owner, "adc_architecture", self.adc_architecture, literal_choices(ADCArchitecture)
        )
        check_range(owner, "adc_time", self.adc_time, 0.0, 1e-3, unit="s", hint=_T_HINT)
        check_int(owner, "columns_per_adc", self.columns_per_adc, 1, 1 << 16)
        if self.adc_architecture == "counting" and self.columns_per_adc != 1:
            raise ValueError(
                f"{owner}: a counting ADC integrates its column during the read, so it cannot "
                f"be shared by columns_per_adc={self.columns_per_adc} columns; set "
                "columns_per_adc=1 or adc_architecture='sar'"
            )
        check_range(
            owner, "digital_latency", self.digital_latency, 0.0, 1e-3, unit="s", hint=_T_HINT
        )
        for name in ("cell_area", "adc_area", "dac_area"):
            check_range(owner, name, getattr(self, name), 0.0, 1e-6, unit="m^2", hint=_A_HINT)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PIMConfig(BackendConfig):
    """An analog in-memory-computing accelerator: devices, periphery, training and costs.

    Build one from a preset (``physnn.pim.presets.get("pcm")``) and change blocks with
    ``replace``::

        cfg = presets.get("pcm")
        cfg = cfg.replace(adc=cfg.adc.replace(bits=6), seed=0)
    """

    backend = "pim"

    mapping: MappingConfig = dataclasses.field(default_factory=MappingConfig)
    """Weight-to-conductance mapping and tiling."""

    programming: ProgrammingConfig = dataclasses.field(default_factory=ProgrammingConfig)
    """Programming noise and device variation."""

    drift: DriftConfig = dataclasses.field(default_factory=DriftConfig)
    """Conductance drift and compensation."""

    read: ReadNoiseConfig = dataclasses.field(default_factory=ReadNoiseConfig)
    """Per-read noise."""

    faults: FaultConfig = dataclasses.field(default_factory=FaultConfig)
    """Stuck-at faults."""

    circuit: CircuitConfig = dataclasses.field(default_factory=CircuitConfig)
    """Read voltage, IR drop and I-V nonlinearity."""

    dac: DACConfig = dataclasses.field(default_factory=DACConfig)
    """Input conversion."""

    adc: ADCConfig = dataclasses.field(default_factory=ADCConfig)
    """Output conversion."""

    hwa: HWAConfig = dataclasses.field(default_factory=HWAConfig)
    """Hardware-aware training."""

    energy: EnergyConfig = dataclasses.field(default_factory=EnergyConfig)
    """Energy, latency and area coefficients."""

    simulation: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)
    """Memory budget of a simulated read or programming step (:mod:`physnn.pim.memory`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        blocks = {
            "mapping": MappingConfig,
            "programming": ProgrammingConfig,
            "drift": DriftConfig,
            "read": ReadNoiseConfig,
            "faults": FaultConfig,
            "circuit": CircuitConfig,
            "dac": DACConfig,
            "adc": ADCConfig,
            "hwa": HWAConfig,
            "energy": EnergyConfig,
            "simulation": MemoryConfig,
        }
        for name, block_type in blocks.items():
            value = getattr(self, name)
            if not isinstance(value, block_type):
                raise TypeError(
                    f"{owner}.{name} must be a {block_type.__name__}, got {type(value).__name__}"
                )

    def ideal(self) -> PIMConfig:
        """The same accelerator with every nonideality off (cost coefficients kept)."""
        return self.replace(
            mapping=self.mapping.replace(bits_per_cell=None, slices=1),
            programming=ProgrammingConfig(model="none"),
            drift=self.drift.replace(model="none", compensation="none"),
            read=self.read.replace(pcm_1f=False, weight_noise=0.0, output_noise=0.0),
            faults=FaultConfig(),
            circuit=self.circuit.replace(ir_drop="none", iv_v0=None),
            dac=self.dac.replace(bits=None, bit_serial=False),
            adc=self.adc.replace(bits=None, gain_std=0.0, offset_std=0.0, noise=0.0),
            hwa=self.hwa.replace(weight_noise=0.0, clip_sigma=None),
        )

    @property
    def is_ideal(self) -> bool:
        """True when no nonideality is active (the layer computes one ``F.linear``)."""
        ideal = self.ideal()
        return dataclasses.replace(ideal, preset=self.preset, seed=self.seed) == self
