"""Noise that follows the routed circuit (issue 13, item 5), checked against qiskit-aer.

The reference is built here from the calibration numbers and their definitions: the test
transpiles the circuit with qiskit itself, schedules it with qiskit's ALAP analysis, puts
per-qubit and per-edge depolarising + thermal-relaxation errors on every gate of an aer
``NoiseModel`` (the depolarising parameter solved from qiskit's ``average_gate_fidelity`` so
the gate's total infidelity is the calibrated one), inserts thermal relaxation over every
idle gap, and applies each qubit's assignment matrix to aer's exact density-matrix
probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Measure, Parameter, ParameterVector
from qiskit.circuit.library import CZGate, ECRGate, RZGate, SXGate, XGate
from qiskit.providers import QubitProperties
from qiskit.quantum_info import Kraus, average_gate_fidelity
from qiskit.transpiler import (
    CouplingMap,
    InstructionDurations,
    InstructionProperties,
    PassManager,
    Target,
)
from qiskit.transpiler.passes import ALAPScheduleAnalysis

import physnn
from physnn.quantum import HardwareConfig, QuantumCircuitLayer, QuantumLinear, from_qiskit, presets
from physnn.quantum.calibration import DeviceCalibration
from physnn.quantum.qiskit import transpile_report

aer = pytest.importorskip("qiskit_aer")
noise = pytest.importorskip("qiskit_aer.noise")

# A five-qubit line with a different calibration on every qubit and edge.
T1 = (120e-6, 95e-6, 210e-6, 60e-6, 150e-6)
T2 = (80e-6, 110e-6, 190e-6, 45e-6, 60e-6)
SX_ERROR = (2e-4, 5e-4, 3e-4, 8e-4, 1.5e-3)
SX_TIME = (32e-9, 36e-9, 32e-9, 40e-9, 32e-9)
LINE = ((0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3))
TWO_ERROR = (4e-3, 4e-3, 9e-3, 9e-3, 2e-2, 2e-2, 6e-3, 6e-3)
TWO_TIME = (68e-9, 68e-9, 84e-9, 84e-9, 120e-9, 120e-9, 76e-9, 76e-9)
P01 = (0.01, 0.02, 0.005, 0.04, 0.015)
P10 = (0.02, 0.03, 0.01, 0.06, 0.025)
READOUT_TIME = 1.2e-6


def line_calibration() -> DeviceCalibration:
    return DeviceCalibration(
        edges=LINE,
        t1=T1,
        t2=T2,
        single_qubit_error=SX_ERROR,
        single_qubit_time=SX_TIME,
        two_qubit_error=TWO_ERROR,
        two_qubit_time=TWO_TIME,
        p01=P01,
        p10=P10,
    )


def make_target(
    t1: tuple[float, ...],
    t2: tuple[float, ...],
    sx: list[tuple[float, float]],
    edges: dict[tuple[int, int], tuple[float, float]],
    readout: list[float],
    gate: str,
) -> Target:
    """A qiskit Target: sx/x (time, error) per qubit, virtual rz, the two-qubit gate per
    edge, measure with the mean assignment error."""
    n = len(t1)
    props = [QubitProperties(t1=a, t2=b) for a, b in zip(t1, t2, strict=True)]
    target = Target(num_qubits=n, qubit_properties=props)
    one = {(q,): InstructionProperties(*sx[q]) for q in range(n)}
    target.add_instruction(SXGate(), one)
    target.add_instruction(XGate(), dict(one))
    target.add_instruction(
        RZGate(Parameter("theta")), {(q,): InstructionProperties(0.0, 0.0) for q in range(n)}
    )
    two = CZGate() if gate == "cz" else ECRGate()
    target.add_instruction(two, {e: InstructionProperties(*v) for e, v in edges.items()})
    target.add_instruction(
        Measure(), {(q,): InstructionProperties(READOUT_TIME, readout[q]) for q in range(n)}
    )
    return target


def depolarizing_for(error: float, relaxation: Kraus, n: int) -> float:
    """The depolarising parameter p with ``1 - F_avg(relaxation o depolarising(p)) = error``
    (F_avg is affine in p: solved from p = 0 and p = 1)."""
    base = 1 - average_gate_fidelity(relaxation)
    full = 1 - average_gate_fidelity(Kraus(noise.depolarizing_error(1.0, n)).compose(relaxation))
    return (error - base) / (full - base)


def thermal(t1: float, t2: float, time: float) -> Kraus:
    return Kraus(noise.thermal_relaxation_error(t1, t2, time))


def gate_error(p: float, relaxation: Kraus, n: int) -> object:
    """Depolarising ``p`` then ``relaxation`` as one Kraus channel (aer's probabilistic
    mixtures drop terms below 1e-8, which moves probabilities by ~1e-9)."""
    return noise.QuantumError(Kraus(noise.depolarizing_error(p, n)).compose(relaxation))


def aer_probabilities(
    tqc: QuantumCircuit,
    values: dict[Parameter, float],
    t1: tuple[float, ...],
    t2: tuple[float, ...],
    sx: list[tuple[float, float]],
    edges: dict[tuple[int, int], tuple[float, float]],
    p01: tuple[float, ...],
    p10: tuple[float, ...],
    gate: str,
) -> np.ndarray:
    """Outcome probabilities of the logical qubits of the transpiled circuit ``tqc`` on the
    calibrated device, by aer's density-matrix simulator."""
    model = noise.NoiseModel(basis_gates=["rz", "sx", "x", gate])
    used = {tqc.find_bit(q).index for inst in tqc.data for q in inst.qubits}
    used_edges = {
        tuple(tqc.find_bit(q).index for q in inst.qubits)
        for inst in tqc.data
        if inst.operation.name == gate
    }
    for q, (time, error) in enumerate(sx):
        if q not in used:
            continue
        relax = thermal(t1[q], t2[q], time)
        p = depolarizing_for(error, relax, 1)
        model.add_quantum_error(gate_error(p, relax, 1), ["sx", "x"], [q], warnings=False)
    for (a, b), (time, error) in edges.items():
        if (a, b) not in used_edges:
            continue
        relax = thermal(t1[b], t2[b], time).tensor(thermal(t1[a], t2[a], time))
        p = depolarizing_for(error, relax, 2)
        model.add_quantum_error(gate_error(p, relax, 2), gate, [a, b], warnings=False)
    # idle gaps from qiskit's ALAP schedule (virtual rz: no time)
    durations = [("rz", [q], 0.0, "s") for q in range(tqc.num_qubits)]
    durations += [(g, [q], sx[q][0], "s") for q in range(len(sx)) for g in ("sx", "x")]
    durations += [(gate, list(e), v[0], "s") for e, v in edges.items()]
    durations += [("measure", [q], READOUT_TIME, "s") for q in range(tqc.num_qubits)]
    pm = PassManager([ALAPScheduleAnalysis(InstructionDurations(durations))])
    scheduled = pm.run(tqc)
    starts = scheduled.op_start_times
    ops = []
    measured = {}
    for inst, start in zip(scheduled.data, starts, strict=True):
        qs = [scheduled.find_bit(q).index for q in inst.qubits]
        if inst.operation.name == "measure":
            measured[scheduled.find_bit(inst.clbits[0]).index] = qs[0]
        elif inst.operation.name != "barrier":
            ops.append((inst, qs, start))
    end = min(
        start
        for inst, start in zip(scheduled.data, starts, strict=True)
        if inst.operation.name == "measure"
    )
    next_start: dict[tuple[int, int], float] = {}
    last: dict[int, float] = {}
    for i in range(len(ops) - 1, -1, -1):
        _, qs, start = ops[i]
        for q in qs:
            next_start[(i, q)] = last.get(q, end)
            last[q] = start
    noisy = QuantumCircuit(tqc.num_qubits)
    for i, (inst, qs, start) in enumerate(ops):
        noisy.append(inst.operation, qs)
        name = inst.operation.name
        duration = 0.0 if name == "rz" else (sx[qs[0]][0] if len(qs) == 1 else edges[tuple(qs)][0])
        for q in qs:
            gap = next_start[(i, q)] - (start + duration)
            if gap > 1e-15:
                noisy.append(thermal(t1[q], t2[q], gap), [q])
    logical = [measured[j] for j in range(len(measured))]
    noisy.save_probabilities(logical)
    bound = noisy.assign_parameters({p: values[p] for p in noisy.parameters})
    sim = aer.AerSimulator(method="density_matrix", noise_model=model, fusion_enable=False)
    probs = np.asarray(sim.run(bound).result().data()["probabilities"])
    assignment = np.ones((1, 1))
    for j in reversed(range(len(logical))):
        q = logical[j]
        matrix = np.array([[1 - p01[q], p10[q]], [p01[q], 1 - p10[q]]])
        assignment = np.kron(assignment, matrix)
    return assignment @ probs


def routed_circuit() -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """Three qubits coupled pairwise (a triangle: needs a SWAP on a line), every angle its
    own parameter."""
    x, w = ParameterVector("x", 3), ParameterVector("w", 6)
    qc = QuantumCircuit(3)
    for q in range(3):
        qc.ry(x[q], q)
        qc.rz(w[q], q)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.cx(2, 0)
    for q in range(3):
        qc.ry(w[3 + q], q)
    qc.h(1)
    return qc, x, w


@pytest.mark.parametrize("gate", ["cz", "ecr"])
def test_transpiled_noise_equals_aer_on_a_calibrated_line(gate: str) -> None:
    qc, x, w = routed_circuit()
    config = presets.get("heron").replace(
        hardware=HardwareConfig(
            noise_layout="transpiled",
            calibration=line_calibration(),
            two_qubit_gate=gate,
            readout_time=READOUT_TIME,
        )
    )
    layer = from_qiskit(qc, x, w, config=config, dtype=torch.float64)
    xs = torch.tensor([[0.3, 2.1, -1.0], [1.7, -0.4, 0.9]], dtype=torch.float64)
    with torch.no_grad():
        got = layer.outcome_probabilities(xs).numpy()
    sx = list(zip(SX_TIME, SX_ERROR, strict=True))
    edges = {e: (t, err) for e, t, err in zip(LINE, TWO_TIME, TWO_ERROR, strict=True)}
    readout = [(a + b) / 2 for a, b in zip(P01, P10, strict=True)]
    target = make_target(T1, T2, sx, edges, readout, gate)
    measured = qc.copy()
    measured.measure_all()
    tqc = transpile(measured, target=target, optimization_level=3, seed_transpiler=0)
    assert tqc.count_ops().get("swap", 0) == 0 and tqc.count_ops()[gate] > 3  # routed
    weights = layer.weight.tolist()
    for b in range(2):
        values = dict(zip(x, xs[b].tolist(), strict=True)) | dict(zip(w, weights, strict=True))
        ref = aer_probabilities(tqc, values, T1, T2, sx, edges, P01, P10, gate)
        np.testing.assert_allclose(got[b], ref, atol=1e-10, rtol=0)
    # the cost and the report count the routed two-qubit gates qiskit produced
    assert layer.cost((1, 3)).resources["two_qubit_gates"] == tqc.count_ops()[gate]
    assert transpile_report(layer).two_qubit_gates == tqc.count_ops()[gate]
    assert layer.circuit_resources()["two_qubit_gates"] > 3  # all-to-all would be 3 CNOTs
    with physnn.ideal():
        ideal = layer.outcome_probabilities(xs)
    assert float((ideal.detach() - torch.as_tensor(got)).abs().max()) > 1e-3


def test_the_cost_counts_the_routed_circuit_by_default() -> None:
    """Issue 13, item 5: with the all-to-all noise model (the presets' default) the cost
    still counts the circuit routed to the device, as qiskit transpiles it in the test;
    ``cost_layout="all_to_all"`` counts the logical circuit (3 CNOTs)."""
    qc, x, w = routed_circuit()
    hardware = HardwareConfig(calibration=line_calibration(), readout_time=READOUT_TIME)
    config = presets.get("heron").replace(hardware=hardware)
    assert config.hardware.noise_layout == "all_to_all"
    layer = from_qiskit(qc, x, w, config=config, dtype=torch.float64)
    sx = list(zip(SX_TIME, SX_ERROR, strict=True))
    edges = {e: (t, err) for e, t, err in zip(LINE, TWO_TIME, TWO_ERROR, strict=True)}
    readout = [(a + b) / 2 for a, b in zip(P01, P10, strict=True)]
    measured = qc.copy()
    measured.measure_all()
    target = make_target(T1, T2, sx, edges, readout, "cz")
    tqc = transpile(measured, target=target, optimization_level=3, seed_transpiler=0)
    assert layer.cost((2, 3)).resources["two_qubit_gates"] == 2 * tqc.count_ops()["cz"]
    logical = from_qiskit(
        qc, x, w, config=config.with_changes({"hardware.cost_layout": "all_to_all"})
    )
    assert logical.cost((2, 3)).resources["two_qubit_gates"] == 2 * 3


def test_heron_preset_transpiled_equals_aer_with_published_medians() -> None:
    """The preset's own device: heavy-hex of distance 3, the published FakeFez medians on
    every qubit and edge (CZ 84 ns / 3.9e-3, SX 24 ns / 2.3e-4, readout 7.6e-3, T1 145 us,
    T2 88 us), for the default dressed layer's circuit on 4 qubits."""
    config = presets.get("heron").replace(
        hardware=presets.get("heron").hardware.replace(noise_layout="transpiled")
    )
    config = config.replace(circuit=config.circuit.replace(qubits=4))
    layer = QuantumCircuitLayer(4, 4, config=config, dtype=torch.float64)
    xs = torch.rand(1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = layer.outcome_probabilities(xs)[0].numpy()
    cmap = CouplingMap.from_heavy_hex(3)
    size = cmap.size()
    t1, t2 = (145e-6,) * size, (88e-6,) * size
    sx = [(24e-9, 2.3e-4)] * size
    edges = {tuple(e): (84e-9, 3.9e-3) for e in cmap.get_edges()}
    target = make_target(t1, t2, sx, edges, [7.6e-3] * size, "cz")
    # the layer's circuit, one parameter per angle gate (the scaled inputs and weights)
    from physnn.quantum.transpiled import parametrised_circuit

    qc, gates = parametrised_circuit(layer.spec)
    tqc = transpile(qc, target=target, optimization_level=3, seed_transpiler=0)
    scaled = (xs[0] * config.circuit.input_scale).tolist()
    angles = [
        g.scale * (layer.weight[g.index].item() if g.source == "weight" else scaled[g.index])
        for g in gates
    ]
    values = dict(zip(sorted(qc.parameters, key=lambda p: p.index), angles, strict=True))
    ro = (7.6e-3,) * size
    ref = aer_probabilities(tqc, values, t1, t2, sx, edges, ro, ro, "cz")
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("qubits", [4, 6])  # density matrix, trajectories
def test_transpiled_training_step_has_gradients_and_shots(qubits: int) -> None:
    config = presets.get("heron", seed=0)
    config = config.replace(hardware=config.hardware.replace(noise_layout="transpiled"))
    circuit = config.circuit.replace(qubits=qubits)
    layer = QuantumLinear(8, 3, config=config.replace(circuit=circuit))
    y = layer(torch.rand(5, 8))
    y.sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert float(layer.weight.grad.abs().sum()) > 0
    # shots: outcomes on the 2/shots grid of <Z>
    r = layer._measure(torch.rand(3, qubits)).detach() * 1024
    torch.testing.assert_close(r, r.round(), atol=1e-3, rtol=0)


def test_transpiled_layout_round_trips_and_needs_a_large_enough_device() -> None:
    config = presets.get("heron").replace(
        hardware=HardwareConfig(noise_layout="transpiled", calibration=line_calibration())
    )
    assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="describes 5 qubits"):
        QuantumCircuitLayer(6, 6, config=config.replace(circuit=config.circuit.replace(qubits=6)))(
            torch.rand(1, 6)
        )
    with pytest.raises(ValueError, match="one per qubit"):
        DeviceCalibration(**{**line_calibration().to_dict(), "p01": (0.01,)})


def test_calibration_from_backend_keeps_every_qubit_and_edge() -> None:
    from qiskit.providers.fake_provider import GenericBackendV2

    from physnn.quantum.qiskit import config_from_backend

    backend = GenericBackendV2(num_qubits=5, seed=1)
    # GenericBackendV2 draws calibrations at random: relaxation exceeds some gate errors
    with pytest.warns(UserWarning, match="relaxation over"):
        config = config_from_backend(backend, calibration=True)
    cal = config.hardware.calibration
    assert cal is not None and config.hardware.noise_layout == "transpiled"
    target = backend.target
    two = config.hardware.two_qubit_gate
    assert set(cal.edges) == {tuple(e) for e in target[two]}
    for q in range(5):
        assert cal.single_qubit_error[q] == target["sx"][(q,)].error
        assert cal.single_qubit_time[q] == target["sx"][(q,)].duration
        assert cal.p01[q] == cal.p10[q] == target["measure"][(q,)].error
        assert cal.t1 is not None and cal.t1[q] == target.qubit_properties[q].t1
    for e, err in zip(cal.edges, cal.two_qubit_error, strict=True):
        assert err == target[two][e].error
    small = config.replace(circuit=config.circuit.replace(qubits=3))
    with pytest.warns(UserWarning, match="relaxation over"):  # per-gate depolarising of 0
        layer = QuantumCircuitLayer(3, 3, config=small)
    assert layer(torch.rand(2, 3)).abs().max() <= 1


@pytest.mark.slow
def test_transpiled_trajectories_converge_to_aer_with_unbiased_gradients() -> None:
    """Quantum-jump trajectories of the routed circuit: the mean over T trajectories is
    within 5 standard errors of aer's density matrix (a trajectory's probability lies in
    [0, 1], so its variance is at most p (1 - p)), and the gradient (score-function term
    included) is within 5 standard errors of aer's central finite difference."""
    qc, x, w = routed_circuit()
    config = presets.get("heron", seed=4).replace(
        hardware=HardwareConfig(
            noise_layout="transpiled",
            calibration=line_calibration(),
            readout_time=READOUT_TIME,
        ),
    )
    config = config.replace(noise=config.noise.replace(method="trajectories", trajectories=1000))
    layer = from_qiskit(qc, x, w, config=config, dtype=torch.float64)
    layer.eval()
    xs = torch.tensor([[0.3, 2.1, -1.0]], dtype=torch.float64)
    sx = list(zip(SX_TIME, SX_ERROR, strict=True))
    edges = {e: (t, err) for e, t, err in zip(LINE, TWO_TIME, TWO_ERROR, strict=True)}
    readout = [(a + b) / 2 for a, b in zip(P01, P10, strict=True)]
    target = make_target(T1, T2, sx, edges, readout, "cz")
    measured = qc.copy()
    measured.measure_all()
    tqc = transpile(measured, target=target, optimization_level=3, seed_transpiler=0)
    weights = layer.weight.tolist()
    sign = torch.tensor([1.0 - 2 * ((i >> 1) & 1) for i in range(8)], dtype=torch.float64)

    def reference(ws: list[float]) -> np.ndarray:
        values = dict(zip(x, xs[0].tolist(), strict=True)) | dict(zip(w, ws, strict=True))
        return aer_probabilities(tqc, values, T1, T2, sx, edges, P01, P10, "cz")

    exact = reference(weights)
    chunks, grads = [], []
    for _ in range(8):
        layer.zero_grad()
        probs = layer.outcome_probabilities(xs)[0]
        (probs @ sign).backward()  # <Z_1>
        chunks.append(probs.detach().numpy())
        grads.append(float(layer.weight.grad[4]))
    mean = np.mean(chunks, 0)
    bound = 5 * np.sqrt(exact * (1 - exact) / 8000) + 1e-12
    assert np.all(np.abs(mean - exact) <= bound), (mean - exact, bound)
    h = 1e-4
    up, down = list(weights), list(weights)
    up[4] += h
    down[4] -= h
    fd = float((reference(up) - reference(down)) @ sign.numpy()) / (2 * h)
    sem = np.std(grads, ddof=1) / np.sqrt(len(grads))
    assert abs(np.mean(grads) - fd) <= 5 * sem + 1e-3, (np.mean(grads), fd, sem)


def test_per_qubit_readout_mitigation_recovers_the_ideal_readout() -> None:
    """Only assignment errors, different on every qubit: inverting each measured qubit's own
    confusion matrix gives back qiskit Statevector's <Z_j> exactly (no shots)."""
    from qiskit.quantum_info import SparsePauliOp, Statevector

    zero = (0.0,) * 5
    readout_only = DeviceCalibration(
        edges=LINE,
        single_qubit_error=zero,
        single_qubit_time=SX_TIME,
        two_qubit_error=(0.0,) * len(LINE),
        two_qubit_time=TWO_TIME,
        p01=P01,
        p10=P10,
    )
    config = presets.get("heron").replace(
        hardware=HardwareConfig(noise_layout="transpiled", calibration=readout_only)
    )
    config = config.replace(
        measurement=config.measurement.replace(shots=None, mitigate_readout=True)
    )
    qc, x, w = routed_circuit()
    layer = from_qiskit(qc, x, w, config=config, dtype=torch.float64)
    xs = torch.tensor([[0.3, 2.1, -1.0]], dtype=torch.float64)
    got = layer(xs)[0].detach().numpy()
    values = dict(zip(x, xs[0].tolist(), strict=True)) | dict(
        zip(w, layer.weight.tolist(), strict=True)
    )
    sv = Statevector(qc.assign_parameters(values))
    want = [
        sv.expectation_value(SparsePauliOp("I" * (2 - j) + "Z" + "I" * j)).real for j in range(3)
    ]
    np.testing.assert_allclose(got, want, atol=1e-12, rtol=0)
    unmitigated = layer.config.replace(
        measurement=layer.config.measurement.replace(mitigate_readout=False)
    )
    layer.reconfigure(unmitigated)
    assert np.abs(layer(xs)[0].detach().numpy() - want).max() > 1e-3


def test_reconfigure_to_the_transpiled_device_and_reload() -> None:
    """The way a user switches a trained model to the routed device: physnn.reconfigure
    with a nested change, then a state-dict round trip (config restored) and a copy."""
    from torch import nn

    from physnn.common.testing import assert_state_dict_roundtrip

    base = presets.get("heron", seed=3)
    config = base.replace(circuit=base.circuit.replace(qubits=3))
    original = QuantumLinear(5, 3, config=config, name="q")
    model = nn.Sequential(original)
    routed = physnn.reconfigure(model, {"hardware.noise_layout": "transpiled"})
    layer = routed[0]
    assert isinstance(layer, QuantumLinear)
    assert layer.config.hardware.noise_layout == "transpiled"
    assert original.config.hardware.noise_layout == "all_to_all"
    assert layer.circuit_resources()["two_qubit_gates"] == transpile_report(layer).two_qubit_gates
    xs = torch.rand(4, 5)
    assert not torch.allclose(layer(xs), original(xs))

    def rebuild() -> nn.Module:
        fresh = nn.Sequential(QuantumLinear(5, 3, config=config.replace(seed=9), name="q"))
        return physnn.reconfigure(fresh, {"hardware.noise_layout": "transpiled"})

    assert_state_dict_roundtrip(routed, rebuild, xs)
