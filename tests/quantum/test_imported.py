"""Layers imported from parametrised qiskit circuits, checked against qiskit ``Statevector``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import U1Gate, U2Gate, real_amplitudes
from qiskit.quantum_info import SparsePauliOp, Statevector

import physnn
from physnn.quantum import from_qiskit, presets

N = 3


def every_gate_circuit() -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """A circuit with every supported gate and angles linear in several parameters."""
    x, w = ParameterVector("x", 3), ParameterVector("w", 6)
    qc = QuantumCircuit(N)
    qc.h(0)
    qc.ry(x[0], 0)
    qc.rx(2 * x[1] + 0.3, 1)
    qc.rz(x[2] - w[0], 2)
    qc.p(w[1], 0)
    qc.u(w[2], x[0], 0.4, 1)
    qc.s(2)
    qc.t(1)
    qc.sdg(0)
    qc.z(1)
    qc.y(2)
    qc.x(0)
    qc.sx(1)
    qc.id(2)
    qc.barrier()
    qc.cx(0, 1)
    qc.cz(1, 2)
    qc.swap(0, 2)
    qc.cy(1, 0)
    qc.crx(w[3], 0, 1)
    qc.cry(x[1], 1, 2)
    qc.crz(0.5 * w[4] + x[2], 2, 0)
    qc.cp(w[5], 0, 2)
    qc.rxx(w[0], 0, 1)
    qc.ryy(x[0] + w[1], 1, 2)
    qc.rzz(w[2], 0, 2)
    qc.tdg(2)
    qc.sxdg(0)
    qc.append(U2Gate(x[1], -w[3]), [1])
    qc.append(U1Gate(w[4] - 0.2), [2])
    qc.measure_all()
    return qc, x, w


def z_expectations(
    qc: QuantumCircuit, x: ParameterVector, w: ParameterVector, xv: list[float], wv: list[float]
) -> np.ndarray:
    """``<Z_j>`` of the bound circuit by qiskit's Statevector (final measurements removed)."""
    bound = qc.remove_final_measurements(inplace=False).assign_parameters(
        {**dict(zip(x, xv, strict=True)), **dict(zip(w, wv, strict=True))}
    )
    sv = Statevector(bound)
    n = qc.num_qubits
    labels = ["I" * (n - 1 - j) + "Z" + "I" * j for j in range(n)]
    return np.array([sv.expectation_value(SparsePauliOp(lab)).real for lab in labels])


def test_imported_circuit_equals_statevector() -> None:
    qc, x, w = every_gate_circuit()
    layer = from_qiskit(qc, inputs=x, weights=w, dtype=torch.float64)
    assert layer.weight.numel() == 6 and layer.in_features == 3 and layer.out_features == N
    gen = torch.Generator().manual_seed(0)
    xs = torch.rand(5, 3, generator=gen, dtype=torch.float64) * 6 - 3
    with torch.no_grad():
        layer.weight.uniform_(-3, 3, generator=gen)
    out = layer(xs).detach().numpy()
    wv = layer.weight.detach().tolist()
    for b in range(5):
        ref = z_expectations(qc, x, w, xs[b].tolist(), wv)
        np.testing.assert_allclose(out[b], ref, atol=1e-12, rtol=0)


def test_imported_probabilities_equal_statevector() -> None:
    qc, x, w = every_gate_circuit()
    layer = from_qiskit(qc, inputs=x, weights=w, readout="probs", dtype=torch.float64)
    xs = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    probs = layer(xs)[0].detach().numpy()
    values = {**dict(zip(x, xs[0].tolist(), strict=True))}
    values.update(zip(w, layer.weight.tolist(), strict=True))
    ref = Statevector(qc.remove_final_measurements(inplace=False).assign_parameters(values))
    np.testing.assert_allclose(probs, ref.probabilities(), atol=1e-12, rtol=0)


def test_imported_gradients_equal_finite_differences_of_statevector() -> None:
    qc, x, w = every_gate_circuit()
    layer = from_qiskit(qc, inputs=x, weights=w, dtype=torch.float64)
    xs = torch.tensor([[0.7, -0.4, 1.9]], dtype=torch.float64, requires_grad=True)
    coeff = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    (layer(xs)[0] * coeff).sum().backward()
    assert layer.weight.grad is not None and xs.grad is not None
    xv, wv = xs.detach()[0].tolist(), layer.weight.detach().tolist()
    h = 1e-5

    def loss(xv_: list[float], wv_: list[float]) -> float:
        return float(z_expectations(qc, x, w, xv_, wv_) @ coeff.numpy())

    for k in range(len(wv)):
        up, down = list(wv), list(wv)
        up[k] += h
        down[k] -= h
        fd = (loss(xv, up) - loss(xv, down)) / (2 * h)
        assert abs(float(layer.weight.grad[k]) - fd) < 1e-7, k
    for k in range(len(xv)):
        up, down = list(xv), list(xv)
        up[k] += h
        down[k] -= h
        fd = (loss(up, wv) - loss(down, wv)) / (2 * h)
        assert abs(float(xs.grad[0, k]) - fd) < 1e-7, k


def test_composite_library_circuit_is_decomposed() -> None:
    ansatz = real_amplitudes(N, reps=2)
    x = ParameterVector("x", N)
    qc = QuantumCircuit(N)
    for q in range(N):
        qc.ry(x[q], q)
    qc.append(ansatz.to_gate(), range(N))
    layer = from_qiskit(qc, inputs=x, weights=list(ansatz.parameters), dtype=torch.float64)
    assert layer.weight.numel() == ansatz.num_parameters
    xs = torch.tensor([[0.1, 1.2, -0.8]], dtype=torch.float64)
    ref = z_expectations(qc, x, ansatz.parameters, xs[0].tolist(), layer.weight.tolist())
    np.testing.assert_allclose(layer(xs)[0].detach().numpy(), ref, atol=1e-12, rtol=0)


def test_instructions_with_a_definition_are_decomposed() -> None:
    x, w = ParameterVector("x", 2), ParameterVector("w", 1)
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.rx(x[1], 1)
    qc.ecr(0, 1)
    qc.rzx(w[0], 1, 0)
    layer = from_qiskit(qc, inputs=x, weights=w, dtype=torch.float64)
    xs = torch.tensor([[0.4, -2.1]], dtype=torch.float64)
    ref = z_expectations(qc, x, w, xs[0].tolist(), layer.weight.tolist())
    np.testing.assert_allclose(layer(xs)[0].detach().numpy(), ref, atol=1e-12, rtol=0)


def test_imported_layer_under_noise_cost_export_and_reload() -> None:
    qc, x, w = every_gate_circuit()
    logical = presets.get("heron", seed=1).with_changes({"hardware.cost_layout": "all_to_all"})
    noisy = from_qiskit(qc, inputs=x, weights=w, config=logical)
    xs = torch.rand(4, 3)
    out = noisy(xs)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    # two-qubit gates by their textbook decompositions: cx, cz, cy 1 each; swap 3;
    # crx, cry, crz, cp, rxx, ryy, rzz 2 each
    assert noisy.cost((4, 3)).resources["two_qubit_gates"] == 4 * (3 + 3 + 7 * 2)
    exported = noisy.to_qiskit(xs[0])
    assert not exported.parameters
    with physnn.ideal():
        ideal = noisy(xs[:1])[0].detach().double().numpy()
    ref = z_expectations(qc, x, w, xs[0].double().tolist(), noisy.weight.double().tolist())
    np.testing.assert_allclose(ideal, ref, atol=1e-5, rtol=0)
    assert set(noisy.to_qiskit().parameters) == set(x)
    twin = copy.deepcopy(noisy)
    twin.load_state_dict(noisy.state_dict())
    with physnn.ideal():
        torch.testing.assert_close(twin(xs), noisy(xs))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda qc, x, w: qc.append(Gate("pulse", 1, []), [0]), "'pulse'"),
        (lambda qc, x, w: qc.reset(0), "'reset'"),
        (lambda qc, x, w: qc.ry(x[0] * w[0], 0), "not linear"),
        (lambda qc, x, w: qc.ry(Parameter("free"), 0), "neither inputs nor weights"),
    ],
)
def test_unsupported_circuits_raise_naming_the_problem(build: object, message: str) -> None:
    x, w = ParameterVector("x", 1), ParameterVector("w", 1)
    qc = QuantumCircuit(2)
    qc.rx(x[0], 0)
    qc.rz(w[0], 1)
    build(qc, x, w)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        from_qiskit(qc, inputs=x, weights=w)


def test_parameter_in_both_lists_and_mid_circuit_measurement_raise() -> None:
    x = ParameterVector("x", 2)
    qc = QuantumCircuit(2, 2)
    qc.rx(x[0], 0)
    qc.rx(x[1], 1)
    with pytest.raises(ValueError, match="both inputs and weights"):
        from_qiskit(qc, inputs=x, weights=[x[1]])
    qc.measure(0, 0)
    qc.h(0)
    with pytest.raises(ValueError, match="after they were measured"):
        from_qiskit(qc, inputs=x)


def test_training_cost_counts_every_weight_dependent_gate() -> None:
    qc, x, w = every_gate_circuit()
    layer = from_qiskit(qc, inputs=x, weights=w)
    # gates whose angle depends on a weight after the textbook decompositions: rz(x2 - w0),
    # p(w1), u's ry(w2), crx(w3) 2, crz(w4/2 + x2) 2, cp(w5) 3, rxx(w0), ryy(x0 + w1),
    # rzz(w2), u2's rz(-w3), u1(w4 - 0.2): 15 shifted pairs
    step = layer.training_cost((4, 3), input_gradients=False)
    assert step.resources["circuit_executions"] == 4 * (1 + 2 * 15)


def test_parameter_shift_jacobian_of_shared_and_scaled_weights() -> None:
    """Weights shared by several gates and scaled (``w0`` in ``rz(x2 - w0)`` and ``rxx``;
    ``w4 / 2`` in ``crz``): the gate-by-gate parameter shift equals the central finite
    difference of qiskit's Statevector."""
    qc, x, w = every_gate_circuit()
    layer = from_qiskit(qc, inputs=x, weights=w, dtype=torch.float64)
    xs = torch.tensor([[0.7, -0.4, 1.9]], dtype=torch.float64)
    jac = layer.parameter_shift_jacobian(xs)[0].numpy()  # [readout, weights]
    xv, wv = xs[0].tolist(), layer.weight.detach().tolist()
    h = 1e-5
    for k in range(len(wv)):
        up, down = list(wv), list(wv)
        up[k] += h
        down[k] -= h
        fd = (z_expectations(qc, x, w, xv, up) - z_expectations(qc, x, w, xv, down)) / (2 * h)
        np.testing.assert_allclose(jac[:, k], fd, atol=1e-7, rtol=0)


def test_parameter_shift_training_gradient_equals_finite_differences_of_statevector() -> None:
    """``SimulationConfig(gradient="parameter_shift")`` on shared, scaled and constant
    angles: the backward pass to weights and inputs equals central finite differences."""
    from physnn.quantum import QuantumConfig, SimulationConfig

    qc, x, w = every_gate_circuit()
    config = QuantumConfig(simulation=SimulationConfig(gradient="parameter_shift"))
    layer = from_qiskit(qc, inputs=x, weights=w, config=config, dtype=torch.float64)
    xs = torch.tensor([[0.7, -0.4, 1.9]], dtype=torch.float64, requires_grad=True)
    g = np.array([1.0, -0.5, 0.25])
    (layer(xs) * torch.tensor(g)).sum().backward()
    assert layer.weight.grad is not None and xs.grad is not None
    xv, wv = xs[0].tolist(), layer.weight.detach().tolist()
    h = 1e-5

    def loss(xv: list[float], wv: list[float]) -> float:
        return float(z_expectations(qc, x, w, xv, wv) @ g)

    for k in range(len(wv)):
        up, down = list(wv), list(wv)
        up[k] += h
        down[k] -= h
        fd = (loss(xv, up) - loss(xv, down)) / (2 * h)
        assert float(layer.weight.grad[k]) == pytest.approx(fd, abs=1e-7)
    for i in range(len(xv)):
        up, down = list(xv), list(xv)
        up[i] += h
        down[i] -= h
        fd = (loss(up, wv) - loss(down, wv)) / (2 * h)
        assert float(xs.grad[0, i]) == pytest.approx(fd, abs=1e-7)


def test_imported_layer_reads_observables() -> None:
    qc, x, w = every_gate_circuit()
    hamiltonian = SparsePauliOp(["XZY", "ZZI", "IYX"], [0.4, -1.0, 0.8])
    layer = from_qiskit(qc, inputs=x, weights=w, readout=[hamiltonian, "IZI"], dtype=torch.float64)
    assert layer.out_features == 2
    xs = torch.tensor([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]], dtype=torch.float64)
    out = layer(xs).detach().numpy()
    for b in range(2):
        values = dict(zip(x, xs[b].tolist(), strict=True))
        values.update(zip(w, layer.weight.tolist(), strict=True))
        sv = Statevector(qc.remove_final_measurements(inplace=False).assign_parameters(values))
        ref = [
            sv.expectation_value(hamiltonian).real,
            sv.expectation_value(SparsePauliOp("IZI")).real,
        ]
        np.testing.assert_allclose(out[b], ref, atol=1e-12, rtol=0)
