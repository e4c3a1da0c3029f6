"""qiskit interoperability: export, transpilation report, noise from a device, aer models.

physnn imports qiskit only lazily, inside functions (here, in
:mod:`~physnn.quantum.transpiled` and :mod:`~physnn.quantum.imported`), so
``import physnn.quantum`` stays qiskit-free. qiskit-aer is optional: only
:func:`aer_noise_model` needs it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .calibration import DeviceCalibration
from .circuit import AmplitudeEncoding, CircuitSpec, Gate, expand, preparation_gates
from .config import HardwareConfig, MeasurementConfig, NoiseConfig, QuantumConfig
from .noise import depolarizing_for_error, median_calibration
from .transpiled import (
    OPTIMIZATION_LEVEL,
    SEED,
    parametrised_circuit,
    target_from_calibration,
    transpiled_program,
)

if TYPE_CHECKING:
    from .layers import QuantumCircuitLayer

__all__ = [
    "TranspileReport",
    "aer_noise_model",
    "calibration_from_backend",
    "config_from_backend",
    "preset_target",
    "spec_to_qiskit",
    "target_from_calibration",
    "to_qiskit",
    "transpile_report",
]


def _value(gate: Gate, x: Sequence[Any], weights: Sequence[Any]) -> Any:
    if gate.source == "weight":
        assert isinstance(gate.index, int)
        return gate.scale * weights[gate.index]
    if gate.source == "feature":
        assert isinstance(gate.index, int)
        return gate.scale * x[gate.index]
    assert isinstance(gate.index, tuple)
    i, j = gate.index
    return gate.scale * (math.pi - x[i]) * (math.pi - x[j])


def spec_to_qiskit(spec: CircuitSpec, x: Sequence[Any], weights: Sequence[Any]) -> Any:
    """Build the ``qiskit.QuantumCircuit`` of ``spec``.

    Args:
        spec: the circuit layout.
        x: scaled input features (floats, or qiskit parameters for a parametrised circuit).
        weights: trainable angles [rad] (floats or parameters).

    Returns:
        A ``QuantumCircuit`` on ``spec.n_qubits`` qubits without measurements; physnn qubit
        ``q`` is qiskit qubit ``q``. Amplitude encoding is exported as the RY/CNOT state
        preparation that physnn simulates and costs.
    """
    from qiskit import QuantumCircuit

    from .sim.statevector import preparation_angles

    qc = QuantumCircuit(spec.n_qubits)
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            values = torch.tensor([[float(v) for v in x[: op.n_features]]], dtype=torch.float64)
            angles = preparation_angles(op, values)[0].tolist()
            for gate in preparation_gates(op):
                if gate.name == "ry":
                    assert isinstance(gate.index, int)
                    qc.ry(angles[gate.index], *gate.qubits)
                else:
                    qc.cx(*gate.qubits)
            continue
        for gate in expand(op):
            if gate.source == "none":
                getattr(qc, gate.name)(*gate.qubits)
            else:
                getattr(qc, gate.name)(_value(gate, x, weights), *gate.qubits)
    return qc


def to_qiskit(layer: QuantumCircuitLayer, x: torch.Tensor | None = None) -> Any:
    """The circuit of ``layer`` for one input sample, trained angles bound.

    Args:
        layer: a :class:`~physnn.quantum.layers.QuantumCircuitLayer` (or ``QuantumLinear``).
        x: one input sample ``[in_features]`` of the circuit, i.e. after any classical
            pre-projection; None returns a circuit parametrised by ``x[i]`` (not possible
            with amplitude encoding).

    Returns:
        ``QuantumCircuit``; with the default ``z`` readout, ``<Z_j>`` of its ``Statevector``
        equals ``layer(x)[j]`` of the ideal layer (``QuantumLinear``: before scale and bias).
    """
    from qiskit.circuit import ParameterVector

    spec = layer.spec
    weights = [float(w) for w in layer.weight.detach().cpu().double()]
    scale = layer.config.circuit.input_scale
    if x is None:
        if any(isinstance(op, AmplitudeEncoding) for op in spec.ops):
            raise ValueError("amplitude encoding needs a concrete input x to export")
        params = ParameterVector("x", spec.n_features)
        return spec_to_qiskit(spec, [scale * p for p in params], weights)
    if not isinstance(x, torch.Tensor) or x.dim() != 1 or x.shape[0] != spec.n_features:
        raise ValueError(
            f"x must be one sample shaped [{spec.n_features}], got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    values = [float(v) for v in x.detach().cpu().double()]
    if not any(isinstance(op, AmplitudeEncoding) for op in spec.ops):
        values = [scale * v for v in values]
    return spec_to_qiskit(spec, values, weights)


@dataclasses.dataclass(frozen=True)
class TranspileReport:
    """Resources of a circuit transpiled to a device.

    Attributes:
        backend: device name.
        qubits: physical qubits used.
        depth: circuit depth after transpilation.
        two_qubit_gates: two-qubit gate count.
        ops: gate counts by name.
        duration: estimated schedule duration including the final measurements [s] (None
            when the target has no durations).
        success_probability: product of ``1 - error`` over every gate and one readout per
            measured qubit (None without error data): a rough fidelity estimate.
    """

    backend: str
    qubits: int
    depth: int
    two_qubit_gates: int
    ops: dict[str, int]
    duration: float | None
    success_probability: float | None


def _target_of(backend: Any) -> Any:
    target = getattr(backend, "target", None)
    return target if target is not None else backend


def preset_target(config: QuantumConfig, n_qubits: int) -> Any:
    """A qiskit ``Target`` of the device ``config`` describes, with at least ``n_qubits``.

    The device is ``HardwareConfig.calibration`` when set, otherwise the config's medians on
    every qubit and edge of ``HardwareConfig.coupling`` (IBM's heavy-hex lattice of the
    smallest odd distance that holds the circuit, or all-to-all;
    :func:`~physnn.quantum.noise.median_calibration`); see
    :func:`target_from_calibration`.
    """
    return target_from_calibration(median_calibration(config, n_qubits), config)


def transpile_report(
    layer: QuantumCircuitLayer,
    backend: Any = None,
    x: torch.Tensor | None = None,
    *,
    optimization_level: int | None = None,
    seed: int | None = None,
) -> TranspileReport:
    """Transpile ``layer``'s circuit to ``backend`` and report depth, gates, time, fidelity.

    Args:
        layer: the quantum layer.
        backend: a qiskit ``BackendV2`` (e.g. a fake IBM device) or a ``Target``; None
            uses the layer's own device (:func:`preset_target`: coupling map, basis,
            durations and errors of its config or calibration).
        x: input sample bound before transpiling (the transpiler may then merge gates);
            None transpiles the circuit with one symbolic parameter per angle gate, as the
            transpiled noise model and cost do (:mod:`physnn.quantum.transpiled`; with the
            layer's device and the default level and seed it is the very same circuit).
        optimization_level: qiskit preset pass-manager level (default
            :data:`~physnn.quantum.transpiled.OPTIMIZATION_LEVEL`).
        seed: transpiler seed (default :data:`~physnn.quantum.transpiled.SEED`).
    """
    from qiskit import transpile

    level = OPTIMIZATION_LEVEL if optimization_level is None else optimization_level
    seed = SEED if seed is None else seed
    if x is None:
        qc, _ = parametrised_circuit(layer.spec)
    else:
        qc = layer.to_qiskit(x)
        qc.measure_all()
    own_device = backend is None
    if backend is None:
        backend = preset_target(layer.config, qc.num_qubits)
    target = _target_of(backend)
    if x is None and own_device and (level, seed) == (OPTIMIZATION_LEVEL, SEED):
        tqc = transpiled_program(layer.spec, layer.config).circuit
    else:
        tqc = transpile(qc, target=target, optimization_level=level, seed_transpiler=seed)
    ops = {str(k): int(v) for k, v in tqc.count_ops().items()}
    # barriers (measure_all adds one over every qubit) and measurements are not gates
    two = sum(
        1
        for inst in tqc.data
        if inst.operation.num_qubits == 2 and inst.operation.name not in ("barrier", "measure")
    )
    duration: float | None
    try:
        duration = float(tqc.estimate_duration(target, unit="s"))
    except Exception:
        duration = None
    success = 1.0
    have_errors = False
    for inst in tqc.data:
        name = inst.operation.name
        if name == "barrier":
            continue
        qargs = tuple(tqc.find_bit(q).index for q in inst.qubits)
        try:
            props = target[name][qargs]
        except KeyError:
            continue
        if props is not None and props.error is not None:
            success *= 1.0 - props.error
            have_errors = True
    used = {tqc.find_bit(q).index for inst in tqc.data for q in inst.qubits}
    return TranspileReport(
        backend=str(getattr(backend, "name", None) or f"{layer.config.describe()} target"),
        qubits=len(used),
        depth=int(tqc.depth()),
        two_qubit_gates=two,
        ops=ops,
        duration=duration,
        success_probability=success if have_errors else None,
    )


def _median_property(target: Any, names: Sequence[str], attr: str) -> tuple[str, float] | None:
    for name in names:
        if name in target.operation_names:
            values = [
                getattr(p, attr)
                for p in target[name].values()
                if p is not None and getattr(p, attr) is not None
            ]
            if values:
                return name, float(statistics.median(values))
    return None


def _capped(name: str, value: float, cap: float, why: str) -> float:
    """``min(value, cap)``, warning when the device's median has to be capped."""
    if value > cap:
        warnings.warn(
            f"config_from_backend: device median {name}={value:g} exceeds {cap:g} ({why}); "
            f"using {cap:g}",
            UserWarning,
            stacklevel=3,
        )
        return cap
    return value


def calibration_from_backend(backend: Any) -> DeviceCalibration:
    """The per-qubit and per-edge calibration of a qiskit device.

    Per qubit: ``sx`` (or ``x``) error and duration, T1/T2 from the qubit properties, the
    ``measure`` error as symmetric assignment errors; per edge: the ``cz``/``ecr``/``cx``
    error and duration. Missing entries take the device's median; values the channels
    cannot express (T2 > 2 T1, readout error above 0.49) are capped with one
    ``UserWarning`` naming how many were.

    Args:
        backend: a qiskit ``BackendV2`` or ``Target``.

    Raises:
        ValueError: when the device has no single- or two-qubit gate physnn can map.
    """
    target = _target_of(backend)
    size = int(target.num_qubits)
    one = next((g for g in ("sx", "x") if g in target.operation_names), None)
    two = next((g for g in ("cz", "ecr", "cx") if g in target.operation_names), None)
    if one is None or two is None:
        raise ValueError(
            f"the device offers {sorted(target.operation_names)}; a calibration needs sx or x "
            "and one of cz, ecr, cx"
        )

    def values(name: str, qargs: list[tuple[int, ...]], attr: str) -> list[float]:
        props = target[name]
        raw = [getattr(props.get(q), attr, None) if props.get(q) else None for q in qargs]
        known = [float(v) for v in raw if v is not None]
        median = statistics.median(known) if known else 0.0
        return [median if v is None else float(v) for v in raw]

    qubits: list[tuple[int, ...]] = [(q,) for q in range(size)]
    edges: list[tuple[int, ...]] = [
        tuple(int(q) for q in e) for e in target[two] if e is not None and len(e) == 2
    ]
    capped = 0
    qprops = list(getattr(target, "qubit_properties", None) or [])
    t1s = [float(getattr(p, "t1", None) or 0.0) for p in qprops]
    t2s = [float(getattr(p, "t2", None) or 0.0) for p in qprops]
    t1: tuple[float, ...] | None = None
    t2: tuple[float, ...] | None = None
    if len(qprops) == size and all(v > 0 for v in t1s + t2s):
        capped += sum(b > 2 * a for a, b in zip(t1s, t2s, strict=True))
        t1 = tuple(t1s)
        t2 = tuple(min(b, 2 * a) for a, b in zip(t1s, t2s, strict=True))
    readout = values("measure", qubits, "error") if "measure" in target.operation_names else []
    readout = readout or [0.0] * size
    capped += sum(r > 0.49 for r in readout)
    readout = [min(r, 0.49) for r in readout]
    if capped:
        warnings.warn(
            f"calibration_from_backend: capped {capped} values the channels cannot express "
            "(T2 > 2 T1, readout error above 0.49)",
            UserWarning,
            stacklevel=2,
        )
    return DeviceCalibration(
        edges=tuple((e[0], e[1]) for e in edges),
        t1=t1,
        t2=t2,
        single_qubit_error=tuple(min(v, 1.0 - 1e-9) for v in values(one, qubits, "error")),
        single_qubit_time=tuple(values(one, qubits, "duration")),
        two_qubit_error=tuple(min(v, 1.0 - 1e-9) for v in values(two, edges, "error")),
        two_qubit_time=tuple(values(two, edges, "duration")),
        p01=tuple(readout),
        p10=tuple(readout),
    )


def config_from_backend(
    backend: Any, base: QuantumConfig | None = None, *, calibration: bool = False
) -> QuantumConfig:
    """A config whose noise, readout and timing are the medians of a qiskit device.

    Single-qubit error from ``sx`` (or ``x``), two-qubit error from ``cz``/``ecr``/``cx``,
    readout error from ``measure``, T1/T2 medians from the qubit properties, converted with
    :func:`~physnn.quantum.noise.depolarizing_for_error`, so that depolarising plus T1/T2
    relaxation over the gate's median duration has the device's median gate error. Medians
    outside what the channels can express (readout error above 0.49, depolarising
    parameters above their maxima, T2 > 2 T1) are capped with a ``UserWarning`` naming the value.

    Args:
        backend: a qiskit ``BackendV2`` or ``Target`` (e.g. ``GenericBackendV2(5)``, or
            ``FakeFez()`` from qiskit-ibm-runtime when installed).
        base: config to update (default: ``QuantumConfig()``).
        calibration: also keep every qubit's and edge's own numbers
            (:func:`calibration_from_backend`), with the device's native two-qubit gate and
            ``HardwareConfig.noise_layout="transpiled"``, so the circuit is routed onto the
            device's coupling map and each gate gets its own errors.
    """
    target = _target_of(backend)
    base = base if base is not None else QuantumConfig()
    one_err = _median_property(target, ("sx", "x", "rx"), "error")
    two_err = _median_property(target, ("cz", "ecr", "cx"), "error")
    one_dur = _median_property(target, ("sx", "x", "rx"), "duration")
    two_dur = _median_property(target, ("cz", "ecr", "cx"), "duration")
    ro_err = _median_property(target, ("measure",), "error")
    ro_dur = _median_property(target, ("measure",), "duration")
    qprops = [p for p in (getattr(target, "qubit_properties", None) or []) if p is not None]
    t1s = [p.t1 for p in qprops if getattr(p, "t1", None)]
    t2s = [p.t2 for p in qprops if getattr(p, "t2", None)]
    t1 = float(statistics.median(t1s)) if t1s else None
    t2 = float(statistics.median(t2s)) if t2s else None
    if t1 is not None and t2 is not None:
        t2 = _capped("t2", t2, 2 * t1, "T2 <= 2 T1 for a physical qubit")
    else:
        t1 = t2 = None
    hw: HardwareConfig = base.hardware
    hw = hw.replace(
        single_qubit_gate_time=one_dur[1] if one_dur else hw.single_qubit_gate_time,
        two_qubit_gate_time=two_dur[1] if two_dur else hw.two_qubit_gate_time,
        readout_time=ro_dur[1] if ro_dur else hw.readout_time,
    )
    times = {1: one_dur[1] if one_dur else 0.0, 2: two_dur[1] if two_dur else 0.0}

    def depolarizing(err: tuple[str, float] | None, n: int, cap: float, why: str) -> float:
        if err is None:
            return 0.0
        error = min(err[1], 1.0 - 1e-9)
        p = depolarizing_for_error(
            error, n, t1=t1, t2=t2, time=times[n], owner="config_from_backend"
        )
        return _capped(f"depolarizing_{n}q", p, cap, why)

    noise = NoiseConfig(
        depolarizing_1q=depolarizing(one_err, 1, 1.0, "fully depolarising 1-qubit channel"),
        depolarizing_2q=depolarizing(two_err, 2, 16 / 15, "its maximum for 2 qubits"),
        t1=t1,
        t2=t2,
        method=base.noise.method,
        max_density_qubits=base.noise.max_density_qubits,
        trajectories=base.noise.trajectories,
        max_trajectories=base.noise.max_trajectories,
        train_trajectories=base.noise.train_trajectories,
    )
    p_ro = (
        _capped("readout error", ro_err[1], 0.49, "an assignment error must stay below 1/2")
        if ro_err
        else 0.0
    )
    measurement = MeasurementConfig(shots=base.measurement.shots, p01=p_ro, p10=p_ro)
    if calibration:
        cal = calibration_from_backend(backend)
        gate = next(g for g in ("cz", "ecr", "cx") if g in target.operation_names)
        hw = hw.replace(calibration=cal, noise_layout="transpiled", two_qubit_gate=gate)
    return base.replace(hardware=hw, noise=noise, measurement=measurement, preset=None)


def aer_noise_model(config: QuantumConfig) -> Any:
    """The qiskit-aer ``NoiseModel`` of ``config``'s gate noise (for cross-checks) with
    ``HardwareConfig.noise_layout="all_to_all"``: the same errors on every qubit, no idle
    relaxation (the transpiled model's reference is built in
    ``tests/quantum/test_transpiled_noise.py``).

    Gates ``rx ry h x`` get the single-qubit errors (``rz p sdg`` too when
    ``virtual_rz=False``), ``cx cz`` the two-qubit ones, composed in physnn's order;
    readout errors go on ``measure``.

    Raises:
        ImportError: when qiskit-aer is not installed (``pip install qiskit-aer``).
    """
    try:
        from qiskit_aer.noise import (
            NoiseModel,
            ReadoutError,
            amplitude_damping_error,
            depolarizing_error,
            phase_damping_error,
            thermal_relaxation_error,
        )
    except ImportError as missing:
        raise ImportError("aer_noise_model needs qiskit-aer: pip install qiskit-aer") from missing
    nc, hw = config.noise, config.hardware
    one: list[Any] = []
    each: list[Any] = []
    two: list[Any] = []
    if nc.depolarizing_1q > 0:
        one.append(depolarizing_error(nc.depolarizing_1q, 1))
    if nc.depolarizing_2q > 0:
        two.append(depolarizing_error(nc.depolarizing_2q, 2))
    for target in (one, each):
        if nc.amplitude_damping > 0:
            target.append(amplitude_damping_error(nc.amplitude_damping))
        if nc.phase_damping > 0:
            target.append(phase_damping_error(nc.phase_damping))
    if nc.t1 is not None and nc.t2 is not None:
        one.append(thermal_relaxation_error(nc.t1, nc.t2, hw.single_qubit_gate_time))
        each.append(thermal_relaxation_error(nc.t1, nc.t2, hw.two_qubit_gate_time))
    model = NoiseModel(basis_gates=["rx", "ry", "rz", "p", "h", "x", "sdg", "cx", "cz"])
    one_names = ["rx", "ry", "h", "x"] + ([] if hw.virtual_rz else ["rz", "p", "sdg"])
    if one:
        err = one[0]
        for e in one[1:]:
            err = err.compose(e)
        model.add_all_qubit_quantum_error(err, one_names)
    if two or each:
        pair = [e.tensor(e) for e in each]
        chain = two + pair
        err = chain[0]
        for e in chain[1:]:
            err = err.compose(e)
        model.add_all_qubit_quantum_error(err, ["cx", "cz"])
    m = config.measurement
    if m.p01 > 0 or m.p10 > 0:
        model.add_all_qubit_readout_error(ReadoutError([[1 - m.p01, m.p01], [m.p10, 1 - m.p10]]))
    return model
