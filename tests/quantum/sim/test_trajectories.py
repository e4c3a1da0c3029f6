"""Quantum-jump trajectories (quantum/sim/trajectories.py) against a dense density-matrix
reference written here from the definitions: gates as 2^n x 2^n matrices, channels as
Kraus sums after every non-virtual gate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physnn.quantum.circuit import CircuitBuilder, user_circuit
from physnn.quantum.sim import trajectories
from physnn.quantum.sim.channels import GateNoise
from physnn.quantum.sim.kernels import _apply_singles

N = 3
PAULI = [np.eye(2), np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
HADAMARD = np.array([[1, 1], [1, -1]]) / math.sqrt(2)


def _damping(gamma: float) -> list[np.ndarray]:
    """Amplitude damping (Nielsen & Chuang, Eq. 8.108)."""
    return [np.diag([1, math.sqrt(1 - gamma)]), np.array([[0, math.sqrt(gamma)], [0, 0]])]


def _depolarizing(p: float, qubits: int) -> list[np.ndarray]:
    """``rho -> (1 - p) rho + p I/d``: Pauli strings with weights p/d^2 (1 - p + p/d^2)."""
    ops = PAULI if qubits == 1 else [np.kron(b, a) for b in PAULI for a in PAULI]
    d2 = 4**qubits
    return [math.sqrt((1 - p + p / d2) if i == 0 else p / d2) * op for i, op in enumerate(ops)]


def _compose(first: list[np.ndarray], then: list[np.ndarray]) -> list[np.ndarray]:
    return [b @ a for b in then for a in first]


def _rotation(name: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle / 2), math.sin(angle / 2)
    if name == "ry":
        return np.array([[c, -s], [s, c]])
    if name == "rx":
        return np.array([[c, -1j * s], [-1j * s, c]])
    return np.diag([np.exp(-1j * angle / 2), np.exp(1j * angle / 2)])


def _embed(op: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """``op`` (little-endian over ``qubits``) as a 2^n x 2^n matrix, by its matrix elements."""
    full = np.zeros((2**n, 2**n), dtype=complex)
    for i in range(2**n):
        for j in range(2**n):
            if any((i >> q) & 1 != (j >> q) & 1 for q in range(n) if q not in qubits):
                continue
            row = sum(((i >> q) & 1) << k for k, q in enumerate(qubits))
            col = sum(((j >> q) & 1) << k for k, q in enumerate(qubits))
            full[i, j] = op[row, col]
    return full


def _circuit(b: CircuitBuilder) -> None:
    for q in range(N):
        b.ry(b.input(q), q)
    for q in range(N):
        b.rx(b.weight(), q)
        b.rz(b.weight(), q)
    b.cx(0, 1)
    b.cx(1, 2)
    b.cz(2, 0)
    for q in range(N):
        b.ry(b.weight(), q)
    b.cx(2, 1)


def _reference(
    spec_ops: list[tuple[str, tuple[int, ...], float]],
    one: list[np.ndarray],
    two: list[np.ndarray],
    each: list[np.ndarray],
) -> np.ndarray:
    """Outcome probabilities of the noisy circuit from the dense density matrix."""
    rho = np.zeros((2**N, 2**N), dtype=complex)
    rho[0, 0] = 1
    fixed = {
        "cx": np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]]),
        "cz": np.diag([1, 1, 1, -1]),
    }
    for name, qubits, angle in spec_ops:
        u = _embed(fixed[name] if name in fixed else _rotation(name, angle), qubits, N)
        rho = u @ rho @ u.conj().T
        if len(qubits) == 2:
            channels = [(qubits, two), *(((q,), each) for q in qubits)]
        else:
            channels = [] if name == "rz" else [(qubits, one)]
        for qs, kraus in channels:
            if kraus:
                ks = [_embed(k, qs, N) for k in kraus]
                rho = sum(k @ rho @ k.conj().T for k in ks)
    return np.real(np.diag(rho))


def _ops(x: list[float], w: list[float]) -> list[tuple[str, tuple[int, ...], float]]:
    spec = user_circuit(_circuit, N, N)
    out = []
    for gate in spec.ops:
        angle = 0.0
        if gate.source == "feature":
            angle = x[gate.index]
        elif gate.source == "weight":
            angle = w[gate.index]
        out.append((gate.name, gate.qubits, angle))
    return out


def _noise(one: list[np.ndarray], two: list[np.ndarray], each: list[np.ndarray]) -> GateNoise:
    def t(ops: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        return (torch.tensor(np.stack(ops), dtype=torch.complex128),) if ops else ()

    return GateNoise(t(one), t(two), t(each), frozenset({"rz"}))


def _mean_probabilities(
    noise: GateNoise, x: torch.Tensor, w: torch.Tensor, reps: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    spec = user_circuit(_circuit, N, N)
    g = torch.Generator().manual_seed(seed)
    psi = trajectories.run_trajectories(
        spec, x.expand(reps, -1), w, noise, dtype=torch.complex128, generator=g
    )
    probs = psi.abs().square()
    torch.testing.assert_close(probs.sum(1), torch.ones(reps, dtype=torch.float64))
    return probs.mean(0), probs.std(0) / math.sqrt(reps)


# strong noise, so that most trajectories jump (Pauli, |1> -> |0> and diagonal branches)
ONE = _compose(_depolarizing(0.1, 1), _damping(0.2))
TWO = _depolarizing(0.2, 2)
EACH = _damping(0.15)


@pytest.mark.parametrize("segments", [True, False])
def test_monomial_runs_average_to_the_density_matrix(
    segments: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drawn runs (one basis-state sample per run) reproduce the channel; with
    ``segments=False`` the step-by-step path of large circuits is used."""
    if not segments:
        monkeypatch.setattr(trajectories, "_SEGMENT_QUBITS", 0)
    x = torch.tensor([[0.3, 1.9, 2.6]], dtype=torch.float64)
    w = torch.tensor([0.4, -1.1, 2.0, 0.7, -0.3, 1.3, 0.9, -2.2, 0.5], dtype=torch.float64)
    want = _reference(_ops(x[0].tolist(), w.tolist()), ONE, TWO, EACH)
    mean, stderr = _mean_probabilities(_noise(ONE, TWO, EACH), x, w, 10000, seed=1)
    assert torch.all((mean - torch.tensor(want)).abs() < 4.5 * stderr + 1e-9), (mean, want)


def test_non_monomial_channels_average_to_the_density_matrix() -> None:
    """Damping towards |+> (H K H) has non-diagonal effects: drawn from reduced density
    matrices, mixed with monomial two-qubit channels drawn in runs."""
    rotated = [HADAMARD @ k @ HADAMARD for k in _damping(0.3)]
    x = torch.tensor([[1.2, 0.1, 2.9]], dtype=torch.float64)
    w = torch.linspace(-2, 2, 9, dtype=torch.float64)
    want = _reference(_ops(x[0].tolist(), w.tolist()), rotated, TWO, EACH)
    mean, stderr = _mean_probabilities(_noise(rotated, TWO, EACH), x, w, 10000, seed=2)
    assert torch.all((mean - torch.tensor(want)).abs() < 4.5 * stderr + 1e-9), (mean, want)


def test_run_log_probability_gives_unbiased_gradients() -> None:
    """``E[grad f + f grad log P]`` over trajectories equals the finite-difference gradient
    of the exact noisy <Z_1> (damping after the CX chain: state-dependent branches)."""
    spec = user_circuit(_circuit, N, N)
    x = torch.tensor([[0.3, 1.9, 2.6]], dtype=torch.float64)
    w = torch.tensor([0.4, -1.1, 2.0, 0.7, -0.3, 1.3, 0.9, -2.2, 0.5], dtype=torch.float64)
    noise = _noise(_damping(0.2), [], _damping(0.3))
    sign = np.array([1.0 - 2.0 * ((i >> 1) & 1) for i in range(2**N)])

    def exact(weights: np.ndarray) -> float:
        return float(
            _reference(_ops(x[0].tolist(), list(weights)), _damping(0.2), [], _damping(0.3)) @ sign
        )

    chunks, reps = 12, 2000
    g = torch.Generator().manual_seed(3)
    grads = []
    for _ in range(chunks):
        weights = w.clone().requires_grad_()
        psi, log_prob = trajectories.sample_trajectories(
            spec, x.expand(reps, -1), weights, noise, dtype=torch.complex128, generator=g
        )
        f = psi.abs().square() @ torch.tensor(sign)
        baseline = f.detach().mean()
        (f + (f.detach() - baseline) * (log_prob - log_prob.detach())).mean().backward()
        assert weights.grad is not None
        grads.append(weights.grad)
    estimates = torch.stack(grads)
    mean, stderr = estimates.mean(0), estimates.std(0) / math.sqrt(chunks)
    h = 1e-6
    for k in range(len(w)):
        step = np.zeros(len(w))
        step[k] = h
        fd = (exact(w.numpy() + step) - exact(w.numpy() - step)) / (2 * h)
        assert abs(float(mean[k]) - fd) < 5 * float(stderr[k]) + 1e-6, (k, float(mean[k]), fd)


def test_layers_of_single_qubit_gates_equal_their_kronecker_product() -> None:
    n, batch = 5, 3
    gen = torch.Generator().manual_seed(0)
    flat = torch.randn(batch, 2**n, dtype=torch.complex128, generator=gen)
    gates = [
        (q, torch.randn(batch, 2, 2, dtype=torch.complex128, generator=gen)) for q in (0, 1, 3)
    ]
    gates += [(q, torch.randn(2, 2, dtype=torch.complex128, generator=gen)) for q in (4, 0, 2)]
    want = flat.clone()
    for q, mat in gates:
        for b in range(batch):
            m = mat[b] if mat.dim() == 3 else mat
            full = torch.tensor(_embed(m.numpy(), (q,), n))
            want[b] = full @ want[b]
    for fuse in (1, 2, 4):
        torch.testing.assert_close(_apply_singles(flat, n, gates, fuse), want)
