"""Noise and cost of the circuit as the device runs it: routed, native basis, calibrated.

With ``HardwareConfig.noise_layout="transpiled"`` a circuit is

1. exported with one symbolic ``Parameter`` per angle gate and transpiled once per circuit
   shape by qiskit's preset pass manager (:data:`OPTIMIZATION_LEVEL`, seed
   :data:`SEED`) to the device's target (:func:`~physnn.quantum.qiskit.preset_target`:
   coupling map, basis ``rz sx x`` + CZ/ECR/CX, the calibration's errors and durations),
   routing with SWAPs included. The transpiled gate list does not depend on the parameter
   values, so it is cached; every ``rz`` angle of the result is linear in the gate angles
   (``c + sum_k a_k theta_k``), evaluated from the bound values on each forward;
2. scheduled as late as possible (ALAP, as qiskit's ``ALAPScheduleAnalysis``): between two
   gates on a qubit, and after its last gate until the simultaneous final measurement, the
   qubit idles and relaxes with its own T1/T2 (thermal relaxation, Nielsen & Chuang,
   Sec. 8.3); a qubit still in ``|0>`` before its first gate is left alone (``|0>`` is the
   fixed point of relaxation);
3. simulated as a density matrix on the physical qubits the transpiled circuit touches:
   every physical gate is followed by depolarising noise and thermal relaxation of its
   qubits over its duration, with the depolarising parameter chosen per qubit and per edge
   so that the gate's total average infidelity equals the calibrated one
   (:func:`~physnn.quantum.noise.depolarizing_for_error`); virtual ``rz`` gates are
   noiseless and take no time (``HardwareConfig.virtual_rz``); each measured qubit has its
   own assignment errors (``NoiseConfig.amplitude_damping``/``phase_damping``, when set,
   are added after every physical gate on top of the calibration). Runs of single-qubit
   gates and channels on a qubit are fused into one 4x4 superoperator; above
   ``NoiseConfig.max_density_qubits`` physical qubits (``method="auto"``) the circuit is
   sampled by quantum-jump trajectories instead (:func:`sample_transpiled`).

The outcome probabilities are those of the logical qubits (the final layout is read from
the measurements), so the layer's readout, shots and mitigation work unchanged. qiskit is
imported lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import torch

from .calibration import DeviceCalibration
from .circuit import AmplitudeEncoding, CircuitSpec, Gate, expand, preparation_gates
from .config import QuantumConfig
from .noise import depolarizing_for_error, median_calibration
from .sim.channels import (
    amplitude_damping_kraus,
    compose_kraus,
    depolarizing_kraus,
    phase_damping_kraus,
    superoperator,
    thermal_relaxation_kraus,
)
from .sim.gates import _complex_dtype
from .sim.kernels import _apply_flat
from .sim.memory import check_memory, memory_limit
from .sim.statevector import preparation_angles
from .sim.trajectories import Ensemble, _sample_kraus

__all__ = [
    "OPTIMIZATION_LEVEL",
    "SEED",
    "TranspiledProgram",
    "angle_gates",
    "mitigate_transpiled",
    "parametrised_circuit",
    "run_transpiled",
    "sample_transpiled",
    "transpiled_program",
    "uses_density",
]

OPTIMIZATION_LEVEL = 3
"""qiskit preset pass-manager level of the transpilation (noise-aware layout, SABRE
routing, gate cancellation)."""

SEED = 0
"""``seed_transpiler`` of the transpilation (the routed circuit is reproducible)."""


def target_from_calibration(calibration: DeviceCalibration, config: QuantumConfig) -> Any:
    """The qiskit ``Target`` of a calibrated device.

    Basis ``rz`` (virtual when ``HardwareConfig.virtual_rz``), ``sx``, ``x`` with each
    qubit's duration and error, the native two-qubit gate (``HardwareConfig.two_qubit_gate``)
    on every calibrated edge with its duration and error, ``measure`` with the readout
    time and the mean assignment error of each qubit, and each qubit's T1/T2 as its
    ``QubitProperties``.
    """
    from qiskit.circuit import Measure, Parameter
    from qiskit.circuit.library import CXGate, CZGate, ECRGate, RZGate, SXGate, XGate
    from qiskit.providers import QubitProperties
    from qiskit.transpiler import InstructionProperties, Target

    hw, cal = config.hardware, calibration
    size = cal.n_qubits
    props = None
    if cal.t1 is not None and cal.t2 is not None:
        props = [QubitProperties(t1=a, t2=b) for a, b in zip(cal.t1, cal.t2, strict=True)]
    target = Target(num_qubits=size, dt=None, qubit_properties=props)
    one = {
        (q,): InstructionProperties(cal.single_qubit_time[q], cal.single_qubit_error[q])
        for q in range(size)
    }
    target.add_instruction(SXGate(), one)
    target.add_instruction(XGate(), dict(one))
    target.add_instruction(
        RZGate(Parameter("theta")),
        {
            (q,): InstructionProperties(0.0, 0.0) if hw.virtual_rz else one[(q,)]
            for q in range(size)
        },
    )
    gate = {"cz": CZGate(), "ecr": ECRGate(), "cx": CXGate()}[hw.two_qubit_gate]
    edges = {
        (a, b): InstructionProperties(time, error)
        for (a, b), time, error in zip(
            cal.edges, cal.two_qubit_time, cal.two_qubit_error, strict=True
        )
    }
    target.add_instruction(gate, edges)
    readout = {
        (q,): InstructionProperties(hw.readout_time, (cal.p01[q] + cal.p10[q]) / 2)
        for q in range(size)
    }
    target.add_instruction(Measure(), readout)
    return target


def angle_gates(spec: CircuitSpec) -> list[Gate]:
    """The physical gates of ``spec`` in time order (amplitude encodings as their state
    preparation)."""
    out: list[Gate] = []
    for op in spec.ops:
        out += preparation_gates(op) if isinstance(op, AmplitudeEncoding) else expand(op)
    return out


def parametrised_circuit(spec: CircuitSpec) -> tuple[Any, list[Gate]]:
    """The ``QuantumCircuit`` of ``spec`` with one ``Parameter`` ``g[k]`` per angle gate and
    final measurements, and the angle gates in parameter order."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    gates = angle_gates(spec)
    angled = [g for g in gates if g.source != "none"]
    params = ParameterVector("g", len(angled))
    qc = QuantumCircuit(spec.n_qubits)
    k = 0
    for gate in gates:
        if gate.source == "none":
            getattr(qc, gate.name)(*gate.qubits)
        else:
            getattr(qc, gate.name)(params[k], *gate.qubits)
            k += 1
    qc.measure_all()
    return qc, angled


@dataclasses.dataclass
class _Local:
    """Single-qubit operations on one qubit, in order: ``("unitary", [2, 2])``,
    ``("rz", r)`` (the ``r``-th ``rz`` angle) and ``("channel", Kraus [K, 2, 2])``; the
    density path turns unitaries and channels into ``("const", superoperator [4, 4])``."""

    qubit: int
    items: list[tuple[str, Any]]


@dataclasses.dataclass
class _Two:
    """A two-qubit gate ``[4, 4]`` on ``(a, b)`` and its noise (Kraus ``[K, 4, 4]`` or None);
    the density path stores the composed ``[16, 16]`` superoperator as ``unitary``."""

    qubits: tuple[int, int]
    unitary: torch.Tensor
    kraus: torch.Tensor | None


@dataclasses.dataclass
class TranspiledProgram:
    """The transpiled circuit of a spec on a device, ready to simulate.

    Attributes:
        circuit: the transpiled ``QuantumCircuit`` (symbolic angles ``g[k]``).
        physical: device qubit of each simulated qubit (those the circuit touches).
        logical: simulated qubit measured as logical qubit ``j``.
        angle_gates: the logical angle gates, in the order of the parameters ``g[k]``.
        rz_constant: constant part of each ``rz`` angle ``[R]`` [rad].
        rz_matrix: ``[G, R]`` coefficients of the gate angles in each ``rz`` angle.
        steps: gates and channels in time order (Kraus form).
        readout: per simulated qubit assignment matrix ``[m, 2, 2]`` (row read, column true).
        resources: gate counts, depth and schedule duration [s] of one execution.
        jump_probability: upper bound of the probability of at least one noise jump [1].
    """

    circuit: Any
    physical: tuple[int, ...]
    logical: tuple[int, ...]
    angle_gates: tuple[Gate, ...]
    rz_constant: torch.Tensor
    rz_matrix: torch.Tensor
    steps: list[_Local | _Two]
    readout: torch.Tensor
    resources: dict[str, float]
    jump_probability: float
    _cast: dict[tuple[bool, torch.dtype, torch.device], Any] = dataclasses.field(
        default_factory=dict
    )

    def cast(self, density: bool, dtype: torch.dtype, device: torch.device) -> Any:
        """Steps (superoperators when ``density``), rz coefficients and readout in ``dtype``
        on ``device`` (cached)."""
        key = (density, dtype, device)
        if key not in self._cast:
            real = torch.float64 if dtype == torch.complex128 else torch.float32
            steps = [_superoperators(s) if density else s for s in self.steps]
            self._cast[key] = (
                [_to(s, dtype, device) for s in steps],
                self.rz_constant.to(device, real),
                self.rz_matrix.to(device, real),
                self.readout.to(device, real),
            )
        return self._cast[key]


def _superoperators(step: _Local | _Two) -> _Local | _Two:
    """A step with unitaries and channels as (merged) superoperators."""
    if isinstance(step, _Two):
        sup = superoperator(step.unitary[None])
        if step.kraus is not None:
            sup = superoperator(step.kraus) @ sup
        return _Two(step.qubits, sup, None)
    items: list[tuple[str, Any]] = []
    for kind, value in step.items:
        if kind == "rz":
            items.append((kind, value))
            continue
        sup = superoperator(value[None] if kind == "unitary" else value)
        if items and items[-1][0] == "const":
            items[-1] = ("const", sup @ items[-1][1])
        else:
            items.append(("const", sup))
    return _Local(step.qubit, items)


def _to(step: _Local | _Two, dtype: torch.dtype, device: torch.device) -> _Local | _Two:
    if isinstance(step, _Two):
        kraus = None if step.kraus is None else step.kraus.to(device, dtype)
        return _Two(step.qubits, step.unitary.to(device, dtype), kraus)
    items = [(k, v if k == "rz" else v.to(device, dtype)) for k, v in step.items]
    return _Local(step.qubit, items)


def _jump_loss(kraus: torch.Tensor) -> float:
    """Largest probability of leaving the no-jump branch ``K_0``: ``1 - min eig K_0^H K_0``."""
    k0 = kraus[0]
    return float(1.0 - torch.linalg.eigvalsh(k0.mH @ k0).min())


def _linear_angle(value: Any, index: dict[Any, int], size: int) -> tuple[float, list[float]]:
    """Constant and coefficients of an ``rz`` angle in the gate angles ``g[k]``."""
    from qiskit.circuit import ParameterExpression

    coeffs = [0.0] * size
    if not isinstance(value, ParameterExpression):
        return float(value), coeffs
    params = list(value.parameters)
    for p in params:
        slope = value.gradient(p)
        if isinstance(slope, ParameterExpression) and slope.parameters:
            raise ValueError(
                f"the transpiler produced the angle {value}, not linear in the gate angles; "
                "use HardwareConfig.noise_layout='all_to_all' and cost_layout='all_to_all' "
                "for this circuit"
            )
        coeffs[index[p]] = complex(slope).real
    constant = complex(value.bind(dict.fromkeys(params, 0.0)).numeric()).real
    return constant, coeffs


def _one_qubit_noise(
    cal: DeviceCalibration, q: int, config: QuantumConfig, error: float, time: float
) -> torch.Tensor | None:
    """Kraus set of the noise after a single-qubit gate on device qubit ``q`` (None: none)."""
    nc = config.noise
    t1 = None if cal.t1 is None else cal.t1[q]
    t2 = None if cal.t2 is None else cal.t2[q]
    kraus = []
    p = depolarizing_for_error(error, 1, t1=t1, t2=t2, time=time, owner=f"qubit {q}")
    if p > 0:
        kraus.append(depolarizing_kraus(min(p, 4 / 3), 1))
    if nc.amplitude_damping > 0:
        kraus.append(amplitude_damping_kraus(nc.amplitude_damping))
    if nc.phase_damping > 0:
        kraus.append(phase_damping_kraus(nc.phase_damping))
    if t1 is not None and t2 is not None:
        kraus.append(thermal_relaxation_kraus(t1, t2, time))
    return compose_kraus(kraus)


def _two_qubit_noise(
    cal: DeviceCalibration, qs: tuple[int, int], config: QuantumConfig, edge: int
) -> torch.Tensor | None:
    """Kraus set ``[K, 4, 4]`` of the noise after the two-qubit gate on edge ``edge``."""
    nc = config.noise
    a, b = qs
    time, error = cal.two_qubit_time[edge], cal.two_qubit_error[edge]
    t1 = None if cal.t1 is None else (cal.t1[a], cal.t1[b])
    t2 = None if cal.t2 is None else (cal.t2[a], cal.t2[b])
    eye = torch.eye(2, dtype=torch.complex128)
    kraus = []
    p = depolarizing_for_error(error, 2, t1=t1, t2=t2, time=time, owner=f"edge {qs}")
    if p > 0:
        kraus.append(depolarizing_kraus(min(p, 16 / 15), 2))
    each: list[list[torch.Tensor]] = [[], []]
    for i, q in enumerate(qs):
        if nc.amplitude_damping > 0:
            each[i].append(amplitude_damping_kraus(nc.amplitude_damping))
        if nc.phase_damping > 0:
            each[i].append(phase_damping_kraus(nc.phase_damping))
        if cal.t1 is not None and cal.t2 is not None:
            each[i].append(thermal_relaxation_kraus(cal.t1[q], cal.t2[q], time))
    for i, sets in enumerate(each):
        for k in sets:
            kraus.append(
                torch.stack([torch.kron(eye, m) if i == 0 else torch.kron(m, eye) for m in k])
            )
    return compose_kraus(kraus)


def _alap_gaps(ops: list[tuple[tuple[int, ...], float]]) -> tuple[list[dict[int, float]], float]:
    """Idle time after each op on each of its qubits in an ALAP schedule [s], and the
    schedule's duration: every qubit's last gate ends when the final measurement starts."""
    busy: dict[int, float] = {}
    gaps: list[dict[int, float]] = [{} for _ in ops]
    for i in range(len(ops) - 1, -1, -1):
        qs, duration = ops[i]
        start = max(busy.get(q, 0.0) for q in qs)
        for q in qs:
            gaps[i][q] = start - busy.get(q, 0.0)
            busy[q] = start + duration
    return gaps, max(busy.values(), default=0.0)


@functools.lru_cache(maxsize=64)
def _program(spec: CircuitSpec, config: QuantumConfig) -> TranspiledProgram:
    from qiskit import transpile
    from qiskit.quantum_info import Operator

    cal = median_calibration(config, spec.n_qubits)
    hw = config.hardware
    target = target_from_calibration(cal, config)
    qc, angled = parametrised_circuit(spec)
    tqc = transpile(qc, target=target, optimization_level=OPTIMIZATION_LEVEL, seed_transpiler=SEED)
    index = {p: int(p.index) for p in qc.parameters}  # g[k] -> angle gate k
    edges = {tuple(e): i for i, e in enumerate(cal.edges)}
    ops: list[tuple[str, tuple[int, ...], Any]] = []
    logical: dict[int, int] = {}
    for inst in tqc.data:
        name = inst.operation.name
        qs = tuple(tqc.find_bit(q).index for q in inst.qubits)
        if name == "barrier":
            continue
        if name == "measure":
            logical[tqc.find_bit(inst.clbits[0]).index] = qs[0]
            continue
        ops.append((name, qs, inst.operation))
    used = sorted({q for _, qs, _ in ops for q in qs} | set(logical.values()))
    compact = {q: i for i, q in enumerate(used)}

    def duration(name: str, qs: tuple[int, ...]) -> float:
        if name == "rz" and hw.virtual_rz:
            return 0.0
        if len(qs) == 1:
            return cal.single_qubit_time[qs[0]]
        return cal.two_qubit_time[_edge(edges, qs)]

    gaps, total = _alap_gaps([(qs, duration(name, qs)) for name, qs, _ in ops])
    constants: list[float] = []
    columns: list[list[float]] = []
    steps: list[_Local | _Two] = []
    pending: dict[int, list[tuple[str, Any]]] = {}
    one = two = 0

    def flush(q: int) -> None:
        items = pending.pop(q, [])
        if items:
            steps.append(_Local(compact[q], _merge(items)))

    for (name, qs, op), gap in zip(ops, gaps, strict=True):
        if len(qs) == 1:
            q = qs[0]
            items = pending.setdefault(q, [])
            if name == "rz":
                c, coeffs = _linear_angle(op.params[0], index, len(angled))
                constants.append(c)
                columns.append(coeffs)
                items.append(("rz", len(constants) - 1))
            elif op.params:
                raise ValueError(
                    f"the transpiler produced the parametrised gate {name!r}; only rz may "
                    "carry angles on the device basis"
                )
            else:
                items.append(("unitary", torch.tensor(Operator(op).data)))
            if name != "rz" or not hw.virtual_rz:
                one += 1
                error = cal.single_qubit_error[q]
                kraus = _one_qubit_noise(cal, q, config, error, duration(name, qs))
                if kraus is not None:
                    items.append(("channel", kraus))
        elif len(qs) == 2:
            two += 1
            for q in qs:
                flush(q)
            a, b = qs
            unitary = torch.tensor(Operator(op).data)
            noise = _two_qubit_noise(cal, (a, b), config, _edge(edges, qs))
            steps.append(_Two((compact[a], compact[b]), unitary, noise))
        else:
            raise ValueError(f"the transpiler produced the {len(qs)}-qubit gate {name!r}")
        for q, idle in gap.items():
            if idle > 0 and cal.t1 is not None and cal.t2 is not None:
                idle_kraus = thermal_relaxation_kraus(cal.t1[q], cal.t2[q], idle)
                pending.setdefault(q, []).append(("channel", idle_kraus))
    for q in sorted(pending):
        flush(q)
    channels = [s.kraus for s in steps if isinstance(s, _Two) and s.kraus is not None]
    channels += [v for s in steps if isinstance(s, _Local) for k, v in s.items if k == "channel"]
    readout = torch.stack(
        [
            torch.tensor(
                [[1 - cal.p01[q], cal.p10[q]], [cal.p01[q], 1 - cal.p10[q]]], dtype=torch.float64
            )
            for q in used
        ]
    )
    depth = tqc.depth(
        filter_function=lambda inst: inst.operation.name not in ("barrier", "measure")
    )
    return TranspiledProgram(
        circuit=tqc,
        physical=tuple(used),
        logical=tuple(compact[logical[j]] for j in range(spec.n_qubits)),
        angle_gates=tuple(angled),
        rz_constant=torch.tensor(constants, dtype=torch.float64),
        rz_matrix=torch.tensor(columns, dtype=torch.float64).reshape(-1, len(angled)).T,
        steps=steps,
        readout=readout,
        resources={
            "qubits": len(used),
            "single_qubit_gates": one,
            "two_qubit_gates": two,
            "depth": depth,
            "duration": total,
        },
        jump_probability=1.0 - math.prod(1.0 - _jump_loss(k) for k in channels),
    )


def _edge(edges: dict[tuple[int, ...], int], qs: tuple[int, ...]) -> int:
    if qs in edges:
        return edges[qs]
    if qs[::-1] in edges:
        return edges[qs[::-1]]
    raise ValueError(f"the transpiled circuit uses the uncalibrated pair {qs}")


def _merge(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Multiply neighbouring unitaries and compose neighbouring channels; a unitary
    followed by a channel joins it (``K_k U``)."""
    out: list[tuple[str, Any]] = []
    for kind, value in items:
        last = out[-1][0] if out else None
        if kind == "unitary" and last == "unitary":
            out[-1] = ("unitary", value @ out[-1][1])
        elif kind == "channel" and last in ("unitary", "channel"):
            previous = out[-1][1][None] if last == "unitary" else out[-1][1]
            composed = compose_kraus([previous, value])
            out[-1] = ("channel", composed)
        else:
            out.append((kind, value))
    return out


def transpiled_program(spec: CircuitSpec, config: QuantumConfig) -> TranspiledProgram:
    """The cached :class:`TranspiledProgram` of ``spec`` on ``config``'s device.

    The cache key is the circuit layout and the config with the fields that cannot change
    the transpiled circuit or its noise (shots, simulation limits, seed, which of the noise
    and cost layouts asks) reset.

    Raises:
        ImportError: when qiskit is not installed.
    """
    try:
        import qiskit  # noqa: F401
    except ImportError as missing:
        raise ImportError(
            "HardwareConfig.noise_layout='transpiled' and cost_layout='transpiled' need "
            "qiskit (pip install qiskit); use 'all_to_all' for both without it"
        ) from missing
    key = QuantumConfig(
        noise=config.noise,
        # which model asks (the noise simulation or the cost) does not change the program
        hardware=config.hardware.replace(noise_layout="transpiled", cost_layout="transpiled"),
        measurement=config.measurement.replace(shots=None, mitigate_readout=False),
    )
    return _program(spec, key)


def _angles(
    gates: tuple[Gate, ...], spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Angles ``[B, G]`` [rad] of the logical angle gates for inputs ``x``."""
    batch = x.shape[0]
    prepared = None
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            prepared = preparation_angles(op, x)
    columns = []
    for gate in gates:
        if gate.source == "weight":
            assert isinstance(gate.index, int)
            col = (gate.scale * weights[gate.index]).expand(batch)
        elif gate.source == "feature":
            assert isinstance(gate.index, int)
            col = gate.scale * x[:, gate.index]
        elif gate.source == "pair":
            assert isinstance(gate.index, tuple)
            i, j = gate.index
            col = gate.scale * (math.pi - x[:, i]) * (math.pi - x[:, j])
        else:
            assert prepared is not None and isinstance(gate.index, int)
            col = prepared[:, gate.index]
        columns.append(col.to(weights.dtype))
    if not columns:
        return x.new_zeros(batch, 0, dtype=weights.dtype)
    return torch.stack(columns, 1)


def uses_density(spec: CircuitSpec, config: QuantumConfig) -> bool:
    """Whether the transpiled circuit is simulated with a density matrix:
    ``NoiseConfig.method``, with ``auto`` meaning up to ``max_density_qubits`` physical
    qubits (routing may add qubits to the circuit's own)."""
    method = config.noise.method
    if method == "auto":
        qubits = len(transpiled_program(spec, config).physical)
        return qubits <= config.noise.max_density_qubits
    return method == "density_matrix"


def _phases(
    program: TranspiledProgram,
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    rz_constant: torch.Tensor,
    rz_matrix: torch.Tensor,
) -> torch.Tensor:
    """The ``rz`` angles ``[B, R]`` [rad] for the bound gate angles."""
    theta = _angles(program.angle_gates, spec, x, weights).to(rz_matrix.dtype)
    return rz_constant + theta @ rz_matrix


def _logical(
    probs: torch.Tensor, program: TranspiledProgram, readout: torch.Tensor, n: int
) -> torch.Tensor:
    """Physical outcome probabilities ``[B, 2^m]`` -> logical ones ``[B, 2^n]``, each
    measured qubit's assignment errors applied and routing-only qubits summed out."""
    m = len(program.physical)
    for q in range(m):
        probs = _apply_flat(probs, m, (q,), readout[q])
    view = probs.reshape(probs.shape[0], *([2] * m))
    ancillas = [m - c for c in range(m) if c not in program.logical]
    if ancillas:
        view = view.sum(ancillas)
    remaining = [c for c in range(m - 1, -1, -1) if c in program.logical]
    order = [1 + remaining.index(program.logical[j]) for j in range(n - 1, -1, -1)]
    return view.permute(0, *order).reshape(view.shape[0], 2**n)


def _check(
    program: TranspiledProgram,
    config: QuantumConfig,
    x: torch.Tensor,
    density: bool,
    cdtype: Any,
    rows: int = 1,
) -> None:
    """Refuse a simulation of ``rows`` states per row of ``x`` above the memory budget."""
    sim = config.simulation
    check_memory(
        len(program.physical),
        x.shape[0] * rows,
        memory_limit(sim.memory_limit, sim.memory_fraction, x.device),
        density=density,
        dtype=cdtype,
        steps=len(program.steps) if torch.is_grad_enabled() else 0,
    )


def run_transpiled(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    config: QuantumConfig,
    *,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Outcome probabilities ``[B, 2^n]`` of the logical qubits of ``spec`` run on the device
    as transpiled, by density-matrix evolution: gate noise, idle relaxation and readout
    errors included.

    Args:
        spec: the circuit.
        x: circuit inputs ``[B, n_features]`` (scaled as for the other simulators).
        weights: trainable angles ``[n_weights]`` [rad].
        config: the config whose device (calibration, coupling, basis) and noise are used.
        dtype: complex dtype of the simulation.
    """
    program = transpiled_program(spec, config)
    cdtype = _complex_dtype(dtype)
    _check(program, config, x, True, cdtype)
    m = len(program.physical)
    steps, rz_constant, rz_matrix, readout = program.cast(True, cdtype, x.device)
    phases = _phases(program, spec, x, weights, rz_constant, rz_matrix)
    size = 2**m
    vec = torch.zeros(1, size * size, dtype=cdtype, device=x.device)
    vec[:, 0] = 1
    for step in steps:
        if isinstance(step, _Two):
            a, b = step.qubits
            vec = _apply_flat(vec, 2 * m, (a, b, a + m, b + m), step.unitary)
            continue
        total: torch.Tensor | None = None
        for kind, value in step.items:
            if kind == "const":
                total = value if total is None else value @ total
                continue
            # RZ(phi) (x) conj(RZ(phi)) is diag(1, e^-i phi, e^i phi, 1) on vec(rho)[2 r + c]
            phi = phases[:, value]
            zero = torch.zeros_like(phi)
            d = torch.polar(
                torch.ones_like(phi)[:, None].expand(-1, 4),
                torch.stack([zero, -phi, phi, zero], -1),
            )
            d = d.to(cdtype)
            total = torch.diag_embed(d) if total is None else d[..., :, None] * total
        assert total is not None
        q = step.qubit
        vec = _apply_flat(vec, 2 * m, (q, q + m), total)
    diag = torch.arange(size, device=x.device) * (size + 1)
    out = _logical(vec[:, diag].real, program, readout, spec.n_qubits)
    return out.expand(x.shape[0], -1) if out.shape[0] != x.shape[0] else out


def sample_transpiled(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    config: QuantumConfig,
    *,
    trajectories: int = 1,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
) -> Ensemble:
    """``trajectories`` quantum-jump trajectories of the transpiled noisy circuit per row of
    ``x``, as the distinct ones with their counts
    (:class:`~physnn.quantum.sim.trajectories.Ensemble`; the jump-free trajectories share
    one state, so a sample costs about ``1 + trajectories * P_jump`` simulations).

    Every channel (gate noise, idle relaxation) draws a Kraus branch from the state
    (Dalibard, Castin & Molmer, PRL 68, 580 (1992)) for each copy of a row; the average of
    the returned probabilities over a sample's trajectories is :func:`run_transpiled`'s.

    Returns:
        The ensemble of logical outcome probabilities ``[R, 2^n]`` with readout errors; its
        log-probability of each row's branches is differentiable (the score-function term
        of an unbiased gradient).
    """
    program = transpiled_program(spec, config)
    cdtype = _complex_dtype(dtype)
    rows = min(trajectories, 1 + math.ceil(trajectories * program.jump_probability))
    _check(program, config, x, False, cdtype, rows)
    m = len(program.physical)
    steps, rz_constant, rz_matrix, readout = program.cast(False, cdtype, x.device)
    phases = _phases(program, spec, x, weights, rz_constant, rz_matrix)
    batch = x.shape[0]
    flat = torch.zeros(batch, 2**m, dtype=cdtype, device=x.device)
    flat[:, 0] = 1
    log_prob = torch.zeros(batch, dtype=phases.dtype, device=x.device)
    counts = np.full(batch, trajectories, dtype=np.int64)
    origin = torch.arange(batch, device=x.device)

    def sample(state: torch.Tensor, qubits: tuple[int, ...], kraus: torch.Tensor) -> torch.Tensor:
        nonlocal log_prob, counts, origin, phases
        state, step, parent, new = _sample_kraus(state, m, qubits, kraus, generator, counts)
        if parent is not None and new is not None:
            rows = torch.from_numpy(parent).to(x.device)
            log_prob, origin, phases, counts = log_prob[rows], origin[rows], phases[rows], new
        log_prob = log_prob + step.to(log_prob.dtype)
        return state

    for step in steps:
        if isinstance(step, _Two):
            flat = _apply_flat(flat, m, step.qubits, step.unitary)
            if step.kraus is not None:
                flat = sample(flat, step.qubits, step.kraus)
            continue
        q = step.qubit
        pending: torch.Tensor | None = None
        for kind, value in step.items:
            if kind == "channel":
                if pending is not None:
                    flat, pending = _apply_flat(flat, m, (q,), pending), None
                flat = sample(flat, (q,), value)
                continue
            if kind == "rz":
                half = phases[:, value] / 2
                diag = torch.polar(
                    torch.ones_like(half)[:, None].expand(-1, 2), torch.stack([-half, half], -1)
                )
                value = torch.diag_embed(diag.to(cdtype))
            pending = value if pending is None else value @ pending
        if pending is not None:
            flat = _apply_flat(flat, m, (q,), pending)
    probs = flat.real.square() + flat.imag.square()
    order = torch.argsort(origin, stable=True)
    return Ensemble(
        _logical(probs, program, readout, spec.n_qubits)[order],
        log_prob[order],
        torch.from_numpy(counts).to(x.device)[order],
        origin[order],
        batch,
        trajectories,
    )


def mitigate_transpiled(
    probs: torch.Tensor, spec: CircuitSpec, config: QuantumConfig
) -> torch.Tensor:
    """Invert each measured qubit's own confusion matrix on logical outcome probabilities
    ``[B, 2^n]`` (per-qubit readout-error mitigation; quasi-probabilities)."""
    program = transpiled_program(spec, config)
    inverse = torch.linalg.inv(program.readout).to(probs.device, probs.dtype)
    for j, c in enumerate(program.logical):
        probs = _apply_flat(probs, spec.n_qubits, (j,), inverse[c])
    return probs
