"""Observables as the layer readout: against qiskit ``SparsePauliOp``/``Statevector``, an aer
density matrix with a noise model built here, the binomial law of measured parities and the
analytic effect of symmetric readout errors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
from qiskit.quantum_info import SparsePauliOp, Statevector

import physnn
from physnn.quantum import (
    CircuitConfig,
    HardwareConfig,
    MeasurementConfig,
    NoiseConfig,
    QuantumCircuitLayer,
    QuantumConfig,
    SimulationConfig,
)

HAMILTONIAN = SparsePauliOp(["XYZ", "ZZI", "IIX", "YIY", "III"], [0.5, -1.2, 0.3, 0.7, 2.0])
OBSERVABLES = ["ZII", "IXI", HAMILTONIAN, [("IZZ", 1.0), ("XIX", -0.5)]]


def _operator(observable: object) -> SparsePauliOp:
    if isinstance(observable, SparsePauliOp):
        return observable
    if isinstance(observable, str):
        return SparsePauliOp(observable)
    assert isinstance(observable, list)
    return SparsePauliOp.from_list(observable)


def _layer(n: int, observables: Sequence[object], **config: object) -> QuantumCircuitLayer:
    cfg = QuantumConfig(circuit=CircuitConfig(qubits=n, layers=2), seed=4).replace(**config)
    return QuantumCircuitLayer(n, n, config=cfg, dtype=torch.float64, observables=observables)


def test_exact_observables_equal_sparse_pauli_op_from_one_simulation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = _layer(3, OBSERVABLES)
    assert layer.out_features == len(OBSERVABLES)
    calls: list[int] = []
    simulate = layer._statevector

    def counting(*args: torch.Tensor) -> torch.Tensor:
        calls.append(args[0].shape[0])
        return simulate(*args)

    monkeypatch.setattr(layer, "_statevector", counting)
    x = torch.rand(5, 3, dtype=torch.float64)
    y = layer(x)
    assert calls == [5]  # one state simulation per input whatever the observables
    for b in range(5):
        state = Statevector(layer.to_qiskit(x[b]))
        want = [state.expectation_value(_operator(o)).real for o in OBSERVABLES]
        torch.testing.assert_close(y[b].detach(), torch.tensor(want, dtype=torch.float64))
    # the gradient flows through the exact path
    y.sum().backward()
    assert layer.weight.grad is not None and bool(layer.weight.grad.abs().sum() > 0)


def test_groups_are_measured_circuits_counted_by_the_cost() -> None:
    # ZZI and ZIZ commute qubit-wise (basis ZZZ); IXX and XXI too (XXX): two circuits
    observables = ["ZZI", "IXX", SparsePauliOp(["ZIZ", "XXI"], [0.5, -1.0])]
    # the logical circuits are counted (HardwareConfig.cost_layout="all_to_all")
    layer = _layer(
        3,
        observables,
        measurement=MeasurementConfig(shots=100),
        hardware=HardwareConfig(cost_layout="all_to_all"),
    )
    assert layer.observables is not None and layer.observables.bases == ("ZZZ", "XXX")
    cost = layer.cost((4, 3))
    assert cost.resources["circuit_executions"] == 4 * 2
    assert cost.resources["shots"] == 4 * 2 * 100
    plain = QuantumCircuitLayer(3, 3, config=layer.config, dtype=torch.float64)
    # the X group adds one H per qubit; every circuit has the layer's own gates
    assert cost.resources["single_qubit_gates"] == 4 * (
        2 * plain.cost((1, 3)).resources["single_qubit_gates"] + 3
    )
    step = layer.training_cost((4, 3), input_gradients=False)
    per_sample = 1 + 2 * layer.weight.numel()
    assert step.resources["circuit_executions"] == 4 * 2 * per_sample


def test_finite_shots_measure_each_group_with_its_own_shots() -> None:
    shots, rows = 200, 400
    layer = _layer(2, ["ZZ", "XX", "IZ"], measurement=MeasurementConfig(shots=shots))
    x = torch.rand(1, 2, dtype=torch.float64)
    state = Statevector(layer.to_qiskit(x[0]))
    exact = torch.tensor(
        [state.expectation_value(SparsePauliOp(p)).real for p in ("ZZ", "XX", "IZ")]
    )
    with torch.no_grad():
        y = layer(x.expand(rows, -1))
    binomial = ((1 - exact.square()) / shots).sqrt()  # std of a +-1 parity over S shots
    assert torch.all((y.mean(0) - exact).abs() < 5 * binomial / math.sqrt(rows))
    torch.testing.assert_close(y.std(0), binomial, rtol=0.15, atol=0)
    # ZZ and IZ come from the same shots (one group), XX from its own
    grid = (y + 1) / 2 * shots
    torch.testing.assert_close(grid, grid.round(), atol=1e-6, rtol=0)


def test_symmetric_readout_error_scales_each_term_by_its_weight_and_mitigation_undoes_it() -> None:
    p = 0.05
    terms = ["ZZZ", "IXI", "YIY"]
    read = _layer(3, terms, measurement=MeasurementConfig(p01=p, p10=p))
    x = torch.rand(2, 3, dtype=torch.float64)
    with torch.no_grad():
        y = read(x)
    for b in range(2):
        state = Statevector(read.to_qiskit(x[b]))
        for k, label in enumerate(terms):
            weight = sum(c != "I" for c in label)  # each measured bit flips with probability p
            want = (1 - 2 * p) ** weight * state.expectation_value(SparsePauliOp(label)).real
            assert float(y[b, k]) == pytest.approx(want, abs=1e-12)
    read.reconfigure(
        read.config.replace(measurement=MeasurementConfig(p01=p, p10=p, mitigate_readout=True))
    )
    clean = _layer(3, terms)
    with torch.no_grad():
        torch.testing.assert_close(read(x), clean(x))


def test_noisy_observables_equal_an_aer_density_matrix_of_the_measured_circuits() -> None:
    aer = pytest.importorskip("qiskit_aer")
    from qiskit import transpile
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    p1, p2 = 0.02, 0.06
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(p1, 1), ["ry", "rx", "h", "x"])
    noise.add_all_qubit_quantum_error(depolarizing_error(p2, 2), ["cx"])  # rz, sdg virtual
    sim = aer.AerSimulator(method="density_matrix", noise_model=noise)
    observables = ["ZZI", "IXX", SparsePauliOp(["ZIZ", "XXI"], [0.5, -1.0])]
    layer = _layer(
        3,
        observables,
        noise=NoiseConfig(depolarizing_1q=p1, depolarizing_2q=p2, method="density_matrix"),
    )
    x = torch.rand(2, 3, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
    for b in range(2):
        expectations: dict[str, float] = {}
        for basis, labels in (("ZZZ", ("ZZI", "ZIZ")), ("XXX", ("IXX", "XXI"))):
            qc = layer.to_qiskit(x[b])
            qc.remove_final_measurements()
            if basis == "XXX":
                qc.h(range(3))
            qc.save_density_matrix()
            rho = sim.run(transpile(qc, sim, optimization_level=0)).result().data()
            probs = rho["density_matrix"].probabilities()
            for label in labels:
                mask = sum(1 << q for q, c in enumerate(label[::-1]) if c != "I")
                expectations[label] = sum(
                    pr * (-1) ** bin(i & mask).count("1") for i, pr in enumerate(probs)
                )
        want = [
            expectations["ZZI"],
            expectations["IXX"],
            0.5 * expectations["ZIZ"] - expectations["XXI"],
        ]
        torch.testing.assert_close(y[b], torch.tensor(want, dtype=torch.float64), atol=1e-9, rtol=0)


def test_parameter_shift_through_observables_equals_autograd() -> None:
    exact = _layer(3, OBSERVABLES)
    shifted = _layer(3, OBSERVABLES, simulation=SimulationConfig(gradient="parameter_shift"))
    with torch.no_grad():
        shifted.weight.copy_(exact.weight)
    x = torch.rand(2, 3, dtype=torch.float64)
    grads = []
    for layer in (exact, shifted):
        layer(x).sum().backward()
        assert layer.weight.grad is not None
        grads.append(layer.weight.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-10, rtol=0)


def test_from_circuit_reads_observables() -> None:
    def circuit(b) -> None:  # type: ignore[no-untyped-def]
        b.ry(b.input(0), 0)
        b.cx(0, 1)
        b.rx(b.weight(), 1)

    layer = QuantumCircuitLayer.from_circuit(
        circuit, 2, 1, readout=["XZ", SparsePauliOp(["ZZ", "YI"], [1.0, 2.0])], dtype=torch.float64
    )
    x = torch.rand(3, 1, dtype=torch.float64)
    y = layer(x)
    for b in range(3):
        state = Statevector(layer.to_qiskit(x[b]))
        want = [
            state.expectation_value(SparsePauliOp("XZ")).real,
            state.expectation_value(SparsePauliOp(["ZZ", "YI"], [1.0, 2.0])).real,
        ]
        torch.testing.assert_close(y[b].detach(), torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize(
    ("observables", "config", "error", "match"),
    [
        (["ZZ"], {}, ValueError, "3 letters"),
        ([[("ZZI", 1j)]], {}, ValueError, "Hermitian"),
        ([], {}, ValueError, "empty"),
        ("ZZI", {}, TypeError, "list of observables"),
        (["ZZI"], {"circuit": CircuitConfig(qubits=3, readout="x")}, ValueError, "readout='z'"),
    ],
)
def test_bad_observables_say_what_to_pass(
    observables: object, config: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        _layer(3, observables, **config)  # type: ignore[arg-type]


def test_observable_layer_survives_state_dict_save_and_deepcopy() -> None:
    import copy

    from physnn.common.testing import assert_state_dict_roundtrip

    shots = MeasurementConfig(shots=64)
    layer = _layer(3, OBSERVABLES, measurement=shots)
    x = torch.rand(4, 3, dtype=torch.float64)
    assert_state_dict_roundtrip(layer, lambda: _layer(3, OBSERVABLES, measurement=shots), x)
    twin = copy.deepcopy(layer)
    assert twin.observables == layer.observables
    with torch.no_grad(), physnn.ideal():
        torch.testing.assert_close(twin(x), layer(x))
