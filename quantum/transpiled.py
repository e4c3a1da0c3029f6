"""Noise and cost of the circuit as the device runs it: routed, native basis, calibrated.

With ``HardwareConfig.noise_layout="transpiled"`` a circuit is

1. exported with one symbolic ``Parameter`` per angle gate and transpiled once per circuit
   shape by qiskit's preset pass manager (:data:`OPTIMIZATION_LEVEL`, seed
   :data:`SEED`) to the device's target (:func:`~physnn.quantum.qiskit.preset_target`:
   coupling map, basis ``rz sx x`` + CZ/ECR/CX, the calibration's errors and durations),
   routing with SWAPs included. The transpiled gate list does not depend on the parameter
   values, so it is cached; every ``rz`` angle of the result is linear in the gate angles
   (``c + sum_k a_k theta_k``), evaluated from the bound values on each forward;
2. scheduled as late as possible (ALAP, the scheduling IBM's runtime uses): between two
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
   own assignment errors. Runs of single-qubit gates and channels on a qubit are fused into
   one 4x4 superoperator.

The outcome probabilities are those of the logical qubits (the final layout is read from
the measurements), so the layer's readout, shots and mitigation work unchanged. qiskit is
imported lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch

from .calibration import DeviceCalibration, median_calibration
from .circuit import AmplitudeEncoding, CircuitSpec, Gate, expand, preparation_gates
from .config import QuantumConfig
from .noise import depolarizing_for_error
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

__all__ = [
    "OPTIMIZATION_LEVEL",
    "SEED",
    "TranspiledProgram",
    "angle_gates",
    "mitigate_transpiled",
    "parametrised_circuit",
    "run_transpiled",
    "transpiled_program",
]

OPTIMIZATION_LEVEL = 3
"""qiskit preset pass-manager level of the transpilation (noise-aware layout, SABRE
routing, gate cancellation)."""

SEED = 0
"""``seed_transpiler`` of the transpilation (the routed circuit is reproducible)."""


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
    """Single-qubit superoperators on one qubit: constants ``[4, 4]`` and ``rz`` phases
    (by the index of the ``rz`` angle), applied in order."""

    qubit: int
    items: list[tuple[str, Any]]


@dataclasses.dataclass
class _Two:
    """A two-qubit gate and its noise as one ``[16, 16]`` superoperator on ``(a, b)``."""

    qubits: tuple[int, int]
    superop: torch.Tensor


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
        steps: fused superoperators in time order.
        readout: per simulated qubit assignment matrix ``[m, 2, 2]`` (row read, column true).
        resources: gate counts, depth and schedule duration [s] of one execution.
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
    _cast: dict[tuple[torch.dtype, torch.device], Any] = dataclasses.field(default_factory=dict)

    def cast(self, dtype: torch.dtype, device: torch.device) -> Any:
        """Superoperators, rz coefficients and readout in ``dtype`` on ``device`` (cached)."""
        key = (dtype, device)
        if key not in self._cast:
            real = torch.float64 if dtype == torch.complex128 else torch.float32
            steps = [
                _Two(s.qubits, s.superop.to(device, dtype))
                if isinstance(s, _Two)
                else _Local(
                    s.qubit,
                    [(kind, v.to(device, dtype) if kind == "const" else v) for kind, v in s.items],
                )
                for s in self.steps
            ]
            self._cast[key] = (
                steps,
                self.rz_constant.to(device, real),
                self.rz_matrix.to(device, real),
                self.readout.to(device, real),
            )
        return self._cast[key]


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
                "use HardwareConfig.noise_layout='all_to_all' for this circuit"
            )
        coeffs[index[p]] = complex(slope).real
    constant = complex(value.bind(dict.fromkeys(params, 0.0)).numeric()).real
    return constant, coeffs


def _thermal(t1: float, t2: float, time: float) -> torch.Tensor:
    return superoperator(thermal_relaxation_kraus(t1, t2, time))


def _one_qubit_noise(
    cal: DeviceCalibration, q: int, config: QuantumConfig, error: float, time: float
) -> torch.Tensor:
    """Superoperator of the noise after a single-qubit gate on device qubit ``q``."""
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
    composed = compose_kraus(kraus)
    return torch.eye(4, dtype=torch.complex128) if composed is None else superoperator(composed)


def _two_qubit_noise(
    cal: DeviceCalibration, qs: tuple[int, int], config: QuantumConfig, edge: int
) -> torch.Tensor:
    """Superoperator ``[16, 16]`` of the noise after the two-qubit gate on edge ``edge``."""
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
    composed = compose_kraus(kraus)
    return torch.eye(16, dtype=torch.complex128) if composed is None else superoperator(composed)


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

    from .qiskit import target_from_calibration

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
                items.append(("const", superoperator(torch.tensor(Operator(op).data)[None])))
            if name != "rz" or not hw.virtual_rz:
                one += 1
                error = cal.single_qubit_error[q]
                items.append(("const", _one_qubit_noise(cal, q, config, error, duration(name, qs))))
        elif len(qs) == 2:
            two += 1
            for q in qs:
                flush(q)
            a, b = qs
            unitary = superoperator(torch.tensor(Operator(op).data)[None])
            noise = _two_qubit_noise(cal, (a, b), config, _edge(edges, qs))
            steps.append(_Two((compact[a], compact[b]), noise @ unitary))
        else:
            raise ValueError(f"the transpiler produced the {len(qs)}-qubit gate {name!r}")
        for q, idle in gap.items():
            if idle > 0 and cal.t1 is not None and cal.t2 is not None:
                pending.setdefault(q, []).append(("const", _thermal(cal.t1[q], cal.t2[q], idle)))
    for q in sorted(pending):
        flush(q)
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
    )


def _edge(edges: dict[tuple[int, ...], int], qs: tuple[int, ...]) -> int:
    if qs in edges:
        return edges[qs]
    if qs[::-1] in edges:
        return edges[qs[::-1]]
    raise ValueError(f"the transpiled circuit uses the uncalibrated pair {qs}")


def _merge(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Multiply neighbouring constant superoperators (later ones on the left)."""
    out: list[tuple[str, Any]] = []
    for kind, value in items:
        if kind == "const" and out and out[-1][0] == "const":
            out[-1] = ("const", value @ out[-1][1])
        else:
            out.append((kind, value))
    return out


def transpiled_program(spec: CircuitSpec, config: QuantumConfig) -> TranspiledProgram:
    """The cached :class:`TranspiledProgram` of ``spec`` on ``config``'s device.

    The cache key is the circuit layout and the config with the fields that cannot change
    the transpiled circuit or its noise (shots, simulation limits, seed) reset.

    Raises:
        ImportError: when qiskit is not installed.
    """
    try:
        import qiskit  # noqa: F401
    except ImportError as missing:
        raise ImportError(
            "HardwareConfig.noise_layout='transpiled' needs qiskit (pip install qiskit); "
            "use noise_layout='all_to_all' without it"
        ) from missing
    key = QuantumConfig(
        noise=config.noise,
        hardware=config.hardware,
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


def run_transpiled(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    config: QuantumConfig,
    *,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Outcome probabilities ``[B, 2^n]`` of the logical qubits of ``spec`` run on the device
    as transpiled, gate noise, idle relaxation and readout errors included.

    Args:
        spec: the circuit.
        x: circuit inputs ``[B, n_features]`` (scaled as for the other simulators).
        weights: trainable angles ``[n_weights]`` [rad].
        config: the config whose device (calibration, coupling, basis) and noise are used.
        dtype: complex dtype of the simulation.
    """
    program = transpiled_program(spec, config)
    cdtype = _complex_dtype(dtype)
    m = len(program.physical)
    batch = x.shape[0]
    sim = config.simulation
    check_memory(
        m,
        batch,
        memory_limit(sim.memory_limit, sim.memory_fraction, x.device),
        density=True,
        dtype=cdtype,
        steps=len(program.steps) if torch.is_grad_enabled() else 0,
    )
    steps, rz_constant, rz_matrix, readout = program.cast(cdtype, x.device)
    theta = _angles(program.angle_gates, spec, x, weights).to(rz_matrix.dtype)
    phases = rz_constant + theta @ rz_matrix
    rz_cache: dict[int, torch.Tensor] = {}

    def rz_superop(r: int) -> torch.Tensor:
        """``RZ(phi) (x) conj(RZ(phi))`` as its diagonal ``[B, 4]``: ``(1, e^-i phi,
        e^i phi, 1)`` on ``vec(rho)[2 r + c]``."""
        if r not in rz_cache:
            phi = phases[:, r]
            zero = torch.zeros_like(phi)
            angle = torch.stack([zero, -phi, phi, zero], -1)
            rz_cache[r] = torch.polar(torch.ones_like(angle), angle).to(cdtype)
        return rz_cache[r]

    size = 2**m
    vec = torch.zeros(1, size * size, dtype=cdtype, device=x.device)
    vec[:, 0] = 1
    for step in steps:
        if isinstance(step, _Two):
            a, b = step.qubits
            vec = _apply_flat(vec, 2 * m, (a, b, a + m, b + m), step.superop)
            continue
        total: torch.Tensor | None = None
        for kind, value in step.items:
            if kind == "const":
                total = value if total is None else value @ total
            else:
                d = rz_superop(value)
                total = torch.diag_embed(d) if total is None else d[..., :, None] * total
        assert total is not None
        q = step.qubit
        vec = _apply_flat(vec, 2 * m, (q, q + m), total)
    diag = torch.arange(size, device=x.device) * (size + 1)
    probs = vec[:, diag].real
    for q in range(m):
        probs = _apply_flat(probs, m, (q,), readout[q])
    view = probs.reshape(probs.shape[0], *([2] * m))
    ancillas = [m - c for c in range(m) if c not in program.logical]
    if ancillas:
        view = view.sum(ancillas)
    remaining = [c for c in range(m - 1, -1, -1) if c in program.logical]
    order = [1 + remaining.index(program.logical[j]) for j in range(spec.n_qubits - 1, -1, -1)]
    out = view.permute(0, *order).reshape(view.shape[0], 2**spec.n_qubits)
    return out.expand(batch, -1) if out.shape[0] != batch else out


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
