"""Configuration of the quantum backend: circuit, measurement, noise, hardware and simulation.

Every block is a frozen, keyword-only dataclass validated in ``__post_init__``. Units are SI
base units (seconds, watts, bytes); gate errors and readout errors are probabilities.

Hardware defaults are the medians of IBM's 156-qubit Heron r2 device ``ibm_fez`` as
recorded in qiskit-ibm-runtime's ``FakeFez`` snapshot (see ``ANCHORS.md``): CZ 84 ns with
error 3.9e-3, SX 24 ns with error 2.3e-4, readout 1.56 us with error 7.6e-3, T1 145 us and
T2 88 us, repetition delay 250 us.
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
from .calibration import DeviceCalibration

__all__ = [
    "ANSATZES",
    "COUPLINGS",
    "ENCODERS",
    "ENTANGLEMENTS",
    "GRADIENTS",
    "METHODS",
    "NOISE_LAYOUTS",
    "OVERFLOWS",
    "READOUTS",
    "SQUASHES",
    "TWO_QUBIT_GATES",
    "AnsatzName",
    "CircuitConfig",
    "CouplingName",
    "EncoderName",
    "EntanglementName",
    "GradientName",
    "HardwareConfig",
    "MeasurementConfig",
    "MethodName",
    "NoiseConfig",
    "NoiseLayoutName",
    "OverflowName",
    "QuantumConfig",
    "ReadoutName",
    "SimulationConfig",
    "SquashName",
    "TwoQubitGateName",
]

EncoderName = Literal["angle_x", "angle_y", "angle_z", "amplitude", "iqp", "reupload"]
"""Data encoders: single-qubit angle encodings, amplitude encoding, the IQP/ZZ feature map of
Havlicek et al., Nature 567, 209 (2019), and data re-uploading (Perez-Salinas et al.,
Quantum 4, 226 (2020)): the angle encoding repeated before every ansatz layer."""
ENCODERS = literal_choices(EncoderName)

AnsatzName = Literal[
    "hardware_efficient", "strongly_entangling", "real_amplitudes", "efficient_su2"
]
"""Trainable circuits: RY-RZ + CNOT layers (Kandala et al., Nature 549, 242 (2017)),
strongly entangling layers (Schuld et al., PRA 101, 032308 (2020)) and qiskit's
``real_amplitudes``/``efficient_su2`` layouts."""
ANSATZES = literal_choices(AnsatzName)

EntanglementName = Literal["ring", "linear", "reverse_linear", "full"]
"""CNOT patterns: ``ring`` CNOT(i, i+1 mod n) (on 2 qubits the single CNOT(0, 1));
``linear`` CNOT(i, i+1); ``reverse_linear`` the linear chain from the last pair to the first
(qiskit's default for real_amplitudes); ``full`` CNOT(i, j) for every i < j."""
ENTANGLEMENTS = literal_choices(EntanglementName)

ReadoutName = Literal["z", "x", "y", "probs"]
"""Readouts: Pauli expectation on every qubit in the Z, X or Y basis, or outcome
probabilities."""
READOUTS = literal_choices(ReadoutName)

OverflowName = Literal["projection", "amplitude"]
"""What :class:`~physnn.quantum.layers.QuantumLinear` does when a width exceeds the qubit
budget: ``projection`` (default, the dressed circuit of Mari et al., Quantum 4, 340 (2020))
adds declared classical linear maps to and from the qubit count; ``amplitude`` encodes
inputs as amplitudes and reads outputs as outcome probabilities (no classical weights)."""
OVERFLOWS = literal_choices(OverflowName)

SquashName = Literal["sigmoid", "none"]
"""Bounding of a classical ``pre`` projection's outputs before they become rotation angles:
``sigmoid`` maps ``h`` to the angle ``input_scale * sigmoid(h)`` (in (0, pi) by default, the
range of inputs in [0, 1]), ``none`` feeds ``input_scale * h`` unbounded. A symmetric bound
such as ``pi * tanh(h)`` would lose the sign of ``h``: ``<Z>`` after ``RY(t)`` is
``cos(t)``, an even function."""
SQUASHES = literal_choices(SquashName)

TwoQubitGateName = Literal["cz", "ecr", "cx"]
"""Native two-qubit gate of the device (IBM Heron: CZ; Eagle: ECR)."""
TWO_QUBIT_GATES = literal_choices(TwoQubitGateName)

CouplingName = Literal["heavy_hex", "all_to_all"]
"""Qubit connectivity of the device: IBM's heavy-hex lattice or all-to-all."""
COUPLINGS = literal_choices(CouplingName)

NoiseLayoutName = Literal["all_to_all", "transpiled"]
"""Which circuit the noise or the cost model follows: ``all_to_all``, the logical circuit
(every rotation one physical gate, every CNOT one two-qubit gate, medians on every qubit),
or ``transpiled``, the circuit routed to the device's coupling map and basis by qiskit's
transpiler, with per-qubit and per-edge calibration and idle relaxation
(:mod:`physnn.quantum.transpiled`)."""
NOISE_LAYOUTS = literal_choices(NoiseLayoutName)

MethodName = Literal["auto", "density_matrix", "trajectories"]
"""Noisy simulation method (see :class:`NoiseConfig`)."""
METHODS = literal_choices(MethodName)

GradientName = Literal["auto", "autograd", "adjoint", "parameter_shift"]
"""How a layer is differentiated (see :class:`SimulationConfig`)."""
GRADIENTS = literal_choices(GradientName)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CircuitConfig(ConfigBlock):
    """The variational circuit: qubit budget, encoder, ansatz and readout."""

    qubits: int = 8
    """Qubit budget of one layer [qubits]; a layer uses at most this many."""

    encoder: EncoderName = "reupload"
    """Data encoder, one of :data:`ENCODERS`; the default re-uploads the angle encoding
    before every ansatz layer, which makes the model a truncated Fourier series in the
    inputs (Schuld, Sweke & Meyer, PRA 103, 032430 (2021))."""

    ansatz: AnsatzName = "hardware_efficient"
    """Trainable circuit, one of :data:`ANSATZES`."""

    layers: int = 2
    """Ansatz repetitions (qiskit's ``reps``) [layers]."""

    entanglement: EntanglementName = "reverse_linear"
    """CNOT pattern of the ansatz, one of :data:`ENTANGLEMENTS`. The default chain maps onto
    heavy-hex and square coupling maps without SWAPs, and, run from the last pair to the
    first, spreads each ``Z_i`` over two qubits per layer instead of ``i + 1`` (``linear``
    turns ``Z_i`` into ``Z_0 ... Z_i``, a product of ``i + 1`` small factors): on digits
    70 % against 55 % after 3 epochs."""

    readout: ReadoutName = "z"
    """Measured quantity, one of :data:`READOUTS`."""

    input_scale: float = math.pi
    """Rotation angle per unit of input [rad]; inputs in [0, 1] map to [0, pi]."""

    encoder_reps: int = 2
    """Repetitions of the IQP/ZZ feature map (qiskit's ``ZZFeatureMap(reps=2)``) [reps]."""

    overflow: OverflowName = "projection"
    """Strategy of ``QuantumLinear`` for widths above the qubit budget, one of
    :data:`OVERFLOWS`."""

    squash: SquashName = "sigmoid"
    """Bounding of ``QuantumLinear``'s classical ``pre`` outputs, one of :data:`SQUASHES`;
    unbounded angles spread over many turns and stall training (issue 13, item 6)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_int(owner, "qubits", self.qubits, 1, 30)
        check_choice(owner, "encoder", self.encoder, ENCODERS)
        check_choice(owner, "ansatz", self.ansatz, ANSATZES)
        check_int(owner, "layers", self.layers, 0, 1000)
        check_choice(owner, "entanglement", self.entanglement, ENTANGLEMENTS)
        check_choice(owner, "readout", self.readout, READOUTS)
        check_range(
            owner,
            "input_scale",
            self.input_scale,
            -100.0,
            100.0,
            unit="rad",
            hint="the scale is in radians per unit of input, e.g. math.pi",
        )
        check_int(owner, "encoder_reps", self.encoder_reps, 1, 100)
        check_choice(owner, "overflow", self.overflow, OVERFLOWS)
        check_choice(owner, "squash", self.squash, SQUASHES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeasurementConfig(ConfigBlock):
    """Shots and readout (assignment) errors."""

    shots: int | None = None
    """Measurement repetitions per circuit [1]; None computes exact expectation values."""

    p01: float = 0.0
    """Probability to read 1 when the qubit is in |0> (assignment error) [1]."""

    p10: float = 0.0
    """Probability to read 0 when the qubit is in |1> (assignment error) [1]."""

    mitigate_readout: bool = False
    """Invert the per-qubit confusion matrix on the measured probabilities (readout-error
    mitigation; costs nothing on the QPU beyond calibrating ``p01``/``p10``)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.mitigate_readout, bool):
            raise TypeError(
                f"{owner}.mitigate_readout must be a bool, got {self.mitigate_readout!r}"
            )
        if self.shots is not None:
            check_int(owner, "shots", self.shots, 1, 10**9)
        check_probability(owner, "p01", self.p01)
        check_probability(owner, "p10", self.p10)
        if self.p01 + self.p10 >= 1.0:
            raise ValueError(
                f"{owner}: p01 + p10 = {self.p01 + self.p10!r} must be < 1, otherwise readout "
                "carries no information; pass error probabilities such as 0.01"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoiseConfig(ConfigBlock):
    """Gate noise, composed after every gate on the qubits it acts on.

    After each physical gate the simulator applies, in this order: the depolarising channel
    ``rho -> (1 - p) rho + p Tr_q[rho] (x) I/d`` (qiskit's ``depolarizing_error``
    convention), amplitude damping, phase damping, and thermal relaxation over the gate's
    duration (Nielsen & Chuang, Sec. 8.3). Virtual RZ/P gates (``HardwareConfig.virtual_rz``)
    are noiseless and instantaneous (McKay et al., PRA 96, 022330 (2017)).
    """

    depolarizing_1q: float = 0.0
    """Depolarising parameter p of every single-qubit gate (average infidelity p/2) [1]."""

    depolarizing_2q: float = 0.0
    """Two-qubit depolarising parameter p of every CNOT/CZ (average infidelity 3p/4) [1]."""

    amplitude_damping: float = 0.0
    """Amplitude damping probability gamma per gate and qubit [1]."""

    phase_damping: float = 0.0
    """Phase damping probability lambda per gate and qubit [1]."""

    t1: float | None = None
    """Energy relaxation time T1 [s]; None disables thermal relaxation."""

    t2: float | None = None
    """Dephasing time T2 [s] (T2 <= 2 T1); None disables thermal relaxation."""

    method: MethodName = "auto"
    """``density_matrix``, ``trajectories`` (Monte-Carlo quantum jumps, see
    ``trajectories``) or ``auto`` (density matrix up to ``max_density_qubits``)."""

    max_density_qubits: int = 4
    """Largest circuit simulated with a density matrix by ``method="auto"`` [qubits]."""

    trajectories: int | None = None
    """Noise trajectories ``T`` averaged per sample and forward in evaluation [1]; the
    shots are spread across them. None takes one per shot (``MeasurementConfig.shots``,
    or ``HardwareConfig.shots_for_exact`` without shots), capped at ``max_trajectories``:
    the measured counts are then exactly those of the density matrix, and an exact
    expectation has at most the variance of ``shots_for_exact`` shots. With ``T`` below
    the shots ``S``, ``<Z>`` has the extra variance ``Var_traj (1/T - 1/S)``, up to
    ``S/T - 1`` times the shot noise (near ``|<Z>| = 1``, where a jump is the only
    spread). Trajectories that draw the same branches are simulated once (the jump-free
    ones, most of them, share one state), so a sample costs about ``1 + T * P_jump``
    statevector simulations (``P_jump``: probability of at least one jump)."""

    max_trajectories: int | None = None
    """Cap of the automatic trajectory count [1]; None: no cap (one trajectory per shot).
    A cap ``T`` below the shots trades the extra variance above for a cost of about
    ``1 + T * P_jump`` simulations per sample."""

    train_trajectories: int = 1
    """Trajectories per sample while the module trains with gradients [1]. The gradient
    stays unbiased (score-function term) and only its variance grows, which stochastic
    gradient descent absorbs; evaluation (``eval()`` or ``torch.no_grad()``) uses
    ``trajectories``."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_probability(owner, "depolarizing_1q", self.depolarizing_1q)
        check_range(
            owner,
            "depolarizing_2q",
            self.depolarizing_2q,
            0.0,
            16.0 / 15.0,
            hint="pass the depolarising parameter, a fraction such as 0.005",
        )
        check_probability(owner, "amplitude_damping", self.amplitude_damping)
        check_probability(owner, "phase_damping", self.phase_damping)
        if (self.t1 is None) != (self.t2 is None):
            raise ValueError(
                f"{owner}: set both t1 and t2 (thermal relaxation) or neither; got "
                f"t1={self.t1!r}, t2={self.t2!r}"
            )
        if self.t1 is not None and self.t2 is not None:
            hint = "times are in seconds: 145 us is 145e-6"
            check_range(owner, "t1", self.t1, 0.0, 10.0, unit="s", low_inclusive=False, hint=hint)
            check_range(owner, "t2", self.t2, 0.0, 10.0, unit="s", low_inclusive=False, hint=hint)
            if self.t2 > 2 * self.t1:
                raise ValueError(
                    f"{owner}: t2={self.t2!r} s exceeds 2*t1={2 * self.t1!r} s, which no "
                    "physical qubit allows; lower t2 or raise t1"
                )
        check_choice(owner, "method", self.method, METHODS)
        check_int(owner, "max_density_qubits", self.max_density_qubits, 0, 14)
        if self.trajectories is not None:
            check_int(owner, "trajectories", self.trajectories, 1, 10**6)
        if self.max_trajectories is not None:
            check_int(owner, "max_trajectories", self.max_trajectories, 1, 10**6)
        check_int(owner, "train_trajectories", self.train_trajectories, 1, 10**6)

    @property
    def active(self) -> bool:
        """True when any gate noise is configured."""
        return (
            self.depolarizing_1q > 0
            or self.depolarizing_2q > 0
            or self.amplitude_damping > 0
            or self.phase_damping > 0
            or self.t1 is not None
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class HardwareConfig(ConfigBlock):
    """Timing and power assumptions of the cost model (defaults: IBM Heron, FakeFez)."""

    single_qubit_gate_time: float = 24e-9
    """Duration of a physical single-qubit gate [s]; SX on FakeFez, 24 ns."""

    two_qubit_gate_time: float = 84e-9
    """Duration of a CNOT/CZ [s]; CZ on FakeFez, 84 ns (CNOT = H CZ H, H virtual-Z + SX)."""

    readout_time: float = 1.56e-6
    """Duration of a measurement [s]; FakeFez median 1.56 us."""

    repetition_delay: float = 250e-6
    """Wait between shots for qubit reset [s]; IBM's default ``rep_delay`` of 250 us."""

    two_qubit_gate: TwoQubitGateName = "cz"
    """Native two-qubit gate, one of :data:`TWO_QUBIT_GATES` (transpilation target)."""

    coupling: CouplingName = "heavy_hex"
    """Connectivity, one of :data:`COUPLINGS` (transpilation target)."""

    virtual_rz: bool = True
    """RZ and phase gates are frame changes: no time, no error (McKay et al., PRA 96,
    022330 (2017))."""

    system_power: float = 25e3
    """Wall power of the QPU with cryostat and control electronics [W]; order 25 kW for a
    superconducting system (secondary sources; change it for your system)."""

    shots_for_exact: int = 1024
    """Shots per circuit assumed by the cost model when the simulation is exact
    (``MeasurementConfig.shots=None``) [1]."""

    classical_energy_per_mac: float = 0.23e-12
    """Energy of a classical multiply-accumulate in pre/post-processing [J]; 8-bit
    integer MAC at 45 nm (Horowitz, ISSCC 2014)."""

    noise_layout: NoiseLayoutName = "all_to_all"
    """Circuit the noise model follows, one of :data:`NOISE_LAYOUTS`. ``transpiled`` is
    the device as it runs the circuit, and 6-11x slower to train at 6-8 qubits
    (:mod:`~physnn.quantum.presets`)."""

    cost_layout: NoiseLayoutName = "transpiled"
    """Circuit the cost model counts, one of :data:`NOISE_LAYOUTS`: by default the one
    routed to the device (``coupling`` or ``calibration``) in its native basis, whose gate
    counts and schedule are what the hardware runs (on heavy-hex 1.75-3.5x the logical
    two-qubit gates); ``all_to_all`` counts the logical circuit."""

    calibration: DeviceCalibration | None = None
    """Per-qubit and per-edge calibration of the device (its coupling map replaces
    ``coupling``); None puts the medians of this config on every qubit and edge. Used with
    ``noise_layout="transpiled"``; :func:`~physnn.quantum.qiskit.config_from_backend`
    reads one from a qiskit backend."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        slip = "times are in seconds: 84 ns is 84e-9"
        for name in ("single_qubit_gate_time", "two_qubit_gate_time", "readout_time"):
            check_range(owner, name, getattr(self, name), 0.0, 1e-3, unit="s", hint=slip)
        check_range(owner, "repetition_delay", self.repetition_delay, 0.0, 1.0, unit="s", hint=slip)
        check_choice(owner, "two_qubit_gate", self.two_qubit_gate, TWO_QUBIT_GATES)
        check_choice(owner, "coupling", self.coupling, COUPLINGS)
        if not isinstance(self.virtual_rz, bool):
            raise TypeError(f"{owner}.virtual_rz must be a bool, got {self.virtual_rz!r}")
        check_range(
            owner,
            "system_power",
            self.system_power,
            0.0,
            1e8,
            unit="W",
            hint="power is in watts: 25 kW is 25e3",
        )
        check_int(owner, "shots_for_exact", self.shots_for_exact, 1, 10**9)
        check_choice(owner, "noise_layout", self.noise_layout, NOISE_LAYOUTS)
        check_choice(owner, "cost_layout", self.cost_layout, NOISE_LAYOUTS)
        if self.calibration is not None and not isinstance(self.calibration, DeviceCalibration):
            raise TypeError(
                f"{owner}.calibration must be a DeviceCalibration or None, got "
                f"{type(self.calibration).__name__}"
            )
        check_range(
            owner,
            "classical_energy_per_mac",
            self.classical_energy_per_mac,
            0.0,
            1e-6,
            unit="J",
            hint="energies are in joules: 0.23 pJ is 0.23e-12",
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimulationConfig(MemoryConfig):
    """Limits of the classical simulation: the memory budget of a forward pass
    (``memory_limit``, ``memory_fraction``; see :class:`~physnn.common.memory.MemoryConfig`)
    and gate fusion."""

    fuse_qubits: int = 4
    """Single-qubit gates on up to this many neighbouring qubits are fused into one
    2^k x 2^k matrix in exact simulation [qubits]."""

    gradient: GradientName = "auto"
    """Differentiation of a layer, one of :data:`GRADIENTS`. For the exact (noiseless)
    statevector: ``autograd`` records the fused simulation (fastest; keeps one state per
    fused step), ``adjoint`` recomputes the states backwards from the final one (Jones &
    Gacon, arXiv:2009.02823 (2020); a few states whatever the depth, about 4x slower at 20
    qubits), ``auto`` the adjoint method when the recorded simulation would exceed the
    memory budget (``memory_limit`` / ``memory_fraction``); noisy paths are recorded.
    ``parameter_shift`` is the gradient hardware measures: the backward pass runs two
    shifted circuits per weight-dependent gate and sample (and two per input-dependent
    gate when the inputs need a gradient; amplitude encoding then raises), each simulated
    like the forward, with the same noise and its own ``MeasurementConfig.shots``, so the
    gradient is unbiased with shot noise (Mitarai et al., PRA 98, 032309 (2018)); what it
    costs on hardware is ``training_cost``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_int(owner, "fuse_qubits", self.fuse_qubits, 1, 8)
        check_choice(owner, "gradient", self.gradient, GRADIENTS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantumConfig(BackendConfig):
    """A variational quantum circuit on a (simulated) superconducting processor."""

    backend = "quantum"

    circuit: CircuitConfig = dataclasses.field(default_factory=CircuitConfig)
    """The circuit layout."""

    measurement: MeasurementConfig = dataclasses.field(default_factory=MeasurementConfig)
    """Shots and readout errors."""

    noise: NoiseConfig = dataclasses.field(default_factory=NoiseConfig)
    """Gate noise."""

    hardware: HardwareConfig = dataclasses.field(default_factory=HardwareConfig)
    """Timing and power assumptions of the cost model."""

    simulation: SimulationConfig = dataclasses.field(default_factory=SimulationConfig)
    """Simulator limits."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        for name, block in (
            ("circuit", CircuitConfig),
            ("measurement", MeasurementConfig),
            ("noise", NoiseConfig),
            ("hardware", HardwareConfig),
            ("simulation", SimulationConfig),
        ):
            if not isinstance(getattr(self, name), block):
                raise TypeError(
                    f"{owner}.{name} must be a {block.__name__}, got "
                    f"{type(getattr(self, name)).__name__}"
                )

    def ideal(self) -> QuantumConfig:
        """Exact expectations: no shots, no gate noise, no readout error."""
        return self.replace(
            measurement=MeasurementConfig(), noise=NoiseConfig(), preset=self.preset
        )
