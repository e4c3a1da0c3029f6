"""SimulationConfig(gradient="parameter_shift"): the layer's backward pass from shifted circuits.

References: the exact autograd gradient of the simulator (itself checked against qiskit in
test_layers.py), the shot-noise law of the two-term rule, and a circuit count of the
backward pass against ``training_cost``.
"""

from __future__ import annotations

import math

import pytest
import torch

from physnn.quantum import (
    CircuitConfig,
    MeasurementConfig,
    NoiseConfig,
    QuantumCircuitLayer,
    QuantumConfig,
    QuantumLinear,
    SimulationConfig,
    presets,
)
from physnn.quantum.circuit import CircuitBuilder, CircuitSpec

SHIFT = SimulationConfig(gradient="parameter_shift")


def _pair(config: QuantumConfig, n: int, **kwargs: object) -> tuple[QuantumCircuitLayer, ...]:
    """The same circuit differentiated by autograd and by parameter shift."""
    exact = QuantumCircuitLayer(n, n, config=config, dtype=torch.float64, **kwargs)
    shifted = QuantumCircuitLayer(
        n, n, config=config.replace(simulation=SHIFT), dtype=torch.float64, **kwargs
    )
    with torch.no_grad():
        shifted.weight.copy_(exact.weight)
    return exact, shifted


def _grads(
    layer: QuantumCircuitLayer, x: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    leaf = x.clone().requires_grad_(True)
    layer.zero_grad()
    (layer(leaf) * g).sum().backward()
    assert layer.weight.grad is not None and leaf.grad is not None
    return layer.weight.grad.clone(), leaf.grad.clone()


@pytest.mark.parametrize(
    ("encoder", "ansatz", "readout"),
    [
        ("reupload", "hardware_efficient", "z"),
        ("iqp", "strongly_entangling", "x"),
        ("angle_z", "efficient_su2", "probs"),
    ],
)
def test_exact_parameter_shift_equals_autograd(encoder: str, ansatz: str, readout: str) -> None:
    circuit = CircuitConfig(qubits=3, encoder=encoder, ansatz=ansatz, readout=readout)
    exact, shifted = _pair(QuantumConfig(circuit=circuit), 3)
    x = torch.rand(4, 3, dtype=torch.float64)
    g = torch.randn(4, exact.out_features, dtype=torch.float64)
    torch.testing.assert_close(shifted(x), exact(x), atol=1e-12, rtol=0)
    for want, got in zip(_grads(exact, x, g), _grads(shifted, x, g), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_shared_and_scaled_weights_are_shifted_gate_by_gate() -> None:
    def circuit(b: CircuitBuilder) -> None:
        w = b.weight()
        b.ry(b.input(0), 0)
        b.ry(2 * b.input(1), 1)
        b.rx(w, 0)
        b.cx(0, 1)
        b.rz(-0.5 * w, 1)
        b.ry(b.weight(), 1)
        b.cz(1, 0)
        b.ry(3 * w, 0)

    exact = QuantumCircuitLayer.from_circuit(circuit, 2, 2, dtype=torch.float64)
    shifted = QuantumCircuitLayer.from_circuit(
        circuit, 2, 2, config=QuantumConfig(simulation=SHIFT), dtype=torch.float64
    )
    with torch.no_grad():
        shifted.weight.copy_(exact.weight)
    x = torch.rand(3, 2, dtype=torch.float64)
    g = torch.randn(3, 2, dtype=torch.float64)
    for want, got in zip(_grads(exact, x, g), _grads(shifted, x, g), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def test_noisy_parameter_shift_equals_the_gradient_of_the_noisy_expectation() -> None:
    # gate noise after each gate does not depend on the angles, so the two-term rule is
    # exact for the noisy expectation (density-matrix path, no shots)
    noise = NoiseConfig(depolarizing_1q=0.02, depolarizing_2q=0.05, amplitude_damping=0.03)
    config = QuantumConfig(circuit=CircuitConfig(qubits=3), noise=noise)
    exact, shifted = _pair(config, 3)
    x = torch.rand(2, 3, dtype=torch.float64)
    g = torch.randn(2, 3, dtype=torch.float64)
    for want, got in zip(_grads(exact, x, g), _grads(shifted, x, g), strict=True):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def _input_gradients(shots: int, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row input gradients of ``<Z_0>`` for ``rows`` copies of one sample with ``shots``,
    and the exact one."""
    circuit = CircuitConfig(qubits=2, layers=1, encoder="angle_y")
    base = QuantumConfig(circuit=circuit, seed=seed)
    exact, _ = _pair(base, 2)
    sampled = QuantumCircuitLayer(
        2,
        2,
        config=base.replace(simulation=SHIFT, measurement=MeasurementConfig(shots=shots)),
        dtype=torch.float64,
    )
    with torch.no_grad():
        sampled.weight.copy_(exact.weight)
    x = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    _, want = _grads(exact, x, g)
    _, got = _grads(sampled, x.expand(rows, -1), g.expand(rows, -1))
    return got, want[0]


def test_finite_shot_gradient_is_unbiased_and_its_variance_scales_as_one_over_shots() -> None:
    rows = 400
    few, exact = _input_gradients(100, rows, seed=1)
    many, same = _input_gradients(400, rows, seed=1)
    torch.testing.assert_close(same, exact)
    for sample in (few, many):
        standard_error = sample.std(0) / math.sqrt(rows)
        assert torch.all((sample.mean(0) - exact).abs() < 5 * standard_error)
    ratio = few.var(0) / many.var(0)  # 4 for a variance ~ 1 / shots
    assert torch.all((ratio > 2.8) & (ratio < 5.6)), ratio
    # <Z> from counts lies on the 2/shots grid: (f+ - f-) / 2 times input_scale on pi/shots
    grid = few * 100 / math.pi
    torch.testing.assert_close(grid, grid.round(), atol=1e-6, rtol=0)


def test_finite_shot_weight_gradient_mean_equals_the_exact_gradient() -> None:
    config = QuantumConfig(circuit=CircuitConfig(qubits=2, layers=1), seed=5)
    exact, _ = _pair(config, 2)
    sampled = QuantumCircuitLayer(
        2,
        2,
        config=config.replace(simulation=SHIFT, measurement=MeasurementConfig(shots=200)),
        dtype=torch.float64,
    )
    with torch.no_grad():
        sampled.weight.copy_(exact.weight)
    x = torch.rand(1, 2, dtype=torch.float64)
    g = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    want, _ = _grads(exact, x, g)
    rows = 10  # each repeat: the mean of 10 independent per-sample gradients
    repeats = torch.stack(
        [_grads(sampled, x.expand(rows, -1), g.expand(rows, -1))[0] / rows for _ in range(40)]
    )
    standard_error = repeats.std(0) / math.sqrt(repeats.shape[0])
    assert torch.all(repeats.std(0) > 0)  # shot noise reaches the gradient
    assert torch.all((repeats.mean(0) - want).abs() < 5 * standard_error)


def test_parameter_shift_with_shots_trains() -> None:
    config = QuantumConfig(
        circuit=CircuitConfig(qubits=2, layers=2),
        measurement=MeasurementConfig(shots=512),
        simulation=SHIFT,
        seed=0,
    )
    layer = QuantumCircuitLayer(2, 2, config=config, dtype=torch.float64)
    x = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], dtype=torch.float64)
    target = torch.tensor([[0.8, -0.6], [-0.7, 0.5], [0.2, 0.9]], dtype=torch.float64)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)

    def loss() -> torch.Tensor:
        return (layer(x) - target).square().mean()

    with torch.no_grad():
        start = float(loss())
    for _ in range(25):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        end = float(loss())
    assert end < 0.5 * start, (start, end)


def test_backward_runs_the_circuits_training_cost_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    config = QuantumConfig(circuit=CircuitConfig(qubits=3, encoder="iqp"), simulation=SHIFT)
    layer = QuantumLinear(5, 2, config=config)  # classical pre: input gradients needed
    assert layer.pre is not None
    rows: list[int] = []
    run = layer._run

    def counting(x: torch.Tensor, spec: CircuitSpec, weight: torch.Tensor) -> torch.Tensor:
        rows.append(x.shape[0])
        return run(x, spec, weight)

    monkeypatch.setattr(layer, "_run", counting)
    layer(torch.rand(4, 5)).sum().backward()
    step = layer.training_cost((4, 5))
    assert sum(rows) == step.resources["circuit_executions"]
    assert layer.pre.weight.grad is not None and bool(layer.pre.weight.grad.abs().sum() > 0)


def test_amplitude_inputs_have_no_shift_rule() -> None:
    circuit = CircuitConfig(qubits=3, overflow="amplitude")
    layer = QuantumLinear(8, 2, config=QuantumConfig(circuit=circuit, simulation=SHIFT))
    x = torch.rand(2, 8)
    layer(x).sum().backward()  # weights only: fine
    assert layer.weight.grad is not None
    with pytest.raises(ValueError, match="no parameter-shift rule for its inputs"):
        layer(x.requires_grad_(True))


@pytest.mark.parametrize("preset", presets.names())
def test_every_preset_trains_by_parameter_shift(preset: str) -> None:
    config = presets.get(preset, seed=0)
    config = config.replace(circuit=CircuitConfig(qubits=2, layers=1), simulation=SHIFT)
    layer = QuantumLinear(3, 2, config=config)  # 3 features > 2 qubits: classical pre
    x = torch.rand(2, 3)
    layer(x).sum().backward()
    for p in layer.parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    assert layer.pre is not None and bool(layer.pre.weight.grad.abs().sum() > 0)


def test_parameter_shift_through_noise_trajectories() -> None:
    config = presets.get("heron", seed=0)
    config = config.replace(
        circuit=CircuitConfig(qubits=5, layers=1),
        noise=config.noise.replace(trajectories=8),
        simulation=SHIFT,
    )
    layer = QuantumCircuitLayer(5, 5, config=config)
    assert not layer._uses_density()
    x = torch.rand(1, 5, requires_grad=True)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and bool(torch.isfinite(layer.weight.grad).all())
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)
