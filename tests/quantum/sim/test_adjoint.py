"""Adjoint differentiation of the exact statevector (quantum/sim/adjoint.py) against autograd
and central finite differences written here; its memory against the recorded simulation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from physnn.quantum import CircuitConfig, QuantumCircuitLayer, QuantumConfig, QuantumLinear
from physnn.quantum.circuit import build_circuit
from physnn.quantum.config import SimulationConfig
from physnn.quantum.sim.adjoint import ADJOINT_STEPS, run_statevector_adjoint
from physnn.quantum.sim.memory import forward_bytes, state_bytes
from physnn.quantum.sim.statevector import recorded_states, run_statevector

CASES = [
    ("reupload", "hardware_efficient", 4),
    ("iqp", "strongly_entangling", 5),
    ("amplitude", "efficient_su2", 5),
    ("angle_x", "real_amplitudes", 6),
    ("angle_z", "hardware_efficient", 4),
]


def _problem(encoder: str, ansatz: str, n: int) -> tuple:
    features = 2**n if encoder == "amplitude" else n
    spec = build_circuit(
        CircuitConfig(qubits=n, encoder=encoder, ansatz=ansatz, layers=2), n, features
    )
    gen = torch.Generator().manual_seed(n)
    x = torch.rand(3, features, dtype=torch.float64, generator=gen) * 2 - 0.5
    w = torch.randn(spec.n_weights, dtype=torch.float64, generator=gen)
    observable = torch.randn(2**n, dtype=torch.float64, generator=gen)
    return spec, x, w, observable


@pytest.mark.parametrize(("encoder", "ansatz", "n"), CASES)
def test_adjoint_gradients_equal_autograd(encoder: str, ansatz: str, n: int) -> None:
    spec, x, w, observable = _problem(encoder, ansatz, n)
    grads = []
    for run in (run_statevector, run_statevector_adjoint):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        psi = run(spec, xs, ws, dtype=torch.complex128)
        (psi.abs().square() @ observable).sum().backward()
        grads.append((xs.grad, ws.grad))
    (gx_auto, gw_auto), (gx_adj, gw_adj) = grads
    torch.testing.assert_close(gw_adj, gw_auto, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx_adj, gx_auto, atol=1e-12, rtol=0)


@pytest.mark.parametrize(("encoder", "ansatz", "n"), CASES[:3])
def test_adjoint_gradients_equal_central_differences(encoder: str, ansatz: str, n: int) -> None:
    spec, x, w, observable = _problem(encoder, ansatz, n)

    def loss(xv: torch.Tensor, wv: torch.Tensor) -> float:
        psi = run_statevector(spec, xv, wv, dtype=torch.complex128)
        return float((psi.abs().square() @ observable).sum())

    xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
    psi = run_statevector_adjoint(spec, xs, ws, dtype=torch.complex128)
    (psi.abs().square() @ observable).sum().backward()
    assert xs.grad is not None and ws.grad is not None
    h = 1e-6
    for k in range(len(w)):
        e = torch.zeros_like(w)
        e[k] = h
        fd = (loss(x, w + e) - loss(x, w - e)) / (2 * h)
        assert float(ws.grad[k]) == pytest.approx(fd, abs=1e-7)
    for b, f in ((0, 0), (2, x.shape[1] - 1), (1, 1)):
        e = torch.zeros_like(x)
        e[b, f] = h
        fd = (loss(x + e, w) - loss(x - e, w)) / (2 * h)
        assert float(xs.grad[b, f]) == pytest.approx(fd, abs=1e-7)


def test_layer_gradient_modes_agree_through_classical_maps() -> None:
    grads = {}
    for mode in ("autograd", "adjoint"):
        config = QuantumConfig(
            circuit=CircuitConfig(qubits=4), simulation=SimulationConfig(gradient=mode), seed=1
        )
        layer = QuantumLinear(10, 6, config=config, dtype=torch.float64)
        x = torch.rand(5, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        x.requires_grad_()
        layer(x).square().sum().backward()
        grads[mode] = [x.grad] + [p.grad for p in layer.parameters()]
    for a, b in zip(grads["autograd"], grads["adjoint"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_bad_gradient_mode_is_named() -> None:
    with pytest.raises(ValueError, match="gradient"):
        SimulationConfig(gradient="backprop")  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [16, pytest.param(18, marks=pytest.mark.slow)])
def test_adjoint_keeps_one_state_for_backward_whatever_the_depth(n: int) -> None:
    """Autograd keeps a state per recorded step (measured with saved-tensor hooks), the
    adjoint pass only the final state; the memory guard's steps follow."""
    batch = 2
    spec = build_circuit(CircuitConfig(qubits=n, layers=2), n, n)
    x = torch.rand(batch, n)
    w = torch.randn(spec.n_weights, requires_grad=True)
    saved: dict[str, int] = {}
    for name, run in (("autograd", run_statevector), ("adjoint", run_statevector_adjoint)):
        storages: dict[int, int] = {}  # saved views of one storage count once

        def pack(t: torch.Tensor, storages: dict[int, int] = storages) -> torch.Tensor:
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            psi = run(spec, x, w)
        psi.abs().square().sum().backward()
        saved[name] = sum(storages.values())
    state = state_bytes(n, batch)
    assert saved["adjoint"] < 1.1 * state
    assert saved["autograd"] > 5 * state
    # the guard: the adjoint's steps do not grow with the depth, the recorded ones do
    deep = build_circuit(CircuitConfig(qubits=n, layers=8), n, n)
    assert recorded_states(deep) > recorded_states(spec) >= saved["autograd"] // state - 2
    adjoint_need = forward_bytes(n, 8, steps=ADJOINT_STEPS)
    assert adjoint_need < forward_bytes(n, 8, steps=recorded_states(deep))


def test_auto_uses_the_adjoint_method_when_recording_exceeds_the_budget() -> None:
    n = 14
    state = state_bytes(n, 1)
    circuit = CircuitConfig(qubits=n, layers=4)
    limit = (3 + ADJOINT_STEPS + 1) * state
    assert forward_bytes(n, 1, steps=recorded_states(build_circuit(circuit, n, n))) > limit
    config = QuantumConfig(circuit=circuit, simulation=SimulationConfig(memory_limit=limit))
    layer = QuantumCircuitLayer(n, n, config=config)
    out = layer(torch.rand(1, n))
    assert _has_adjoint(out)
    out.sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def _has_adjoint(out: torch.Tensor) -> bool:
    stack, seen = [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if "Adjoint" in type(fn).__name__:
            return True
        stack += [f for f, _ in fn.next_functions]
    return False


@pytest.mark.slow
def test_twenty_qubits_at_batch_eight_train_within_eight_gigabytes() -> None:
    """Peak resident memory of one training step (VmHWM reset before it) at n = 20."""
    script = textwrap.dedent(
        """
        import torch
        from physnn.quantum import CircuitConfig, QuantumCircuitLayer, QuantumConfig
        from physnn.quantum.config import SimulationConfig
        from physnn.quantum.sim.adjoint import ADJOINT_STEPS
        from physnn.quantum.sim.memory import forward_bytes

        def kib(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(field))

        n, batch = 20, 8
        config = QuantumConfig(circuit=CircuitConfig(qubits=n),
                               simulation=SimulationConfig(gradient="adjoint"))
        layer = QuantumCircuitLayer(n, n, config=config)
        layer(torch.rand(1, n)).sum().backward()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = kib("VmRSS:")
        layer(torch.rand(batch, n)).sum().backward()
        print((kib("VmHWM:") - base) * 1024, forward_bytes(n, batch, steps=ADJOINT_STEPS))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=900
    )
    peak, estimate = (int(v) for v in result.stdout.split())
    assert peak < 8 * 2**30
    assert peak <= estimate
