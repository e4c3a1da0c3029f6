"""Monte-Carlo quantum-jump trajectories of a noisy circuit."""

from __future__ import annotations

import torch

from ..circuit import CircuitSpec, Gate
from .channels import GateNoise, compose_kraus
from .density import _gates, _preparation
from .gates import _complex_dtype
from .kernels import _apply_flat, _permute
from .statevector import _gate_tensor

__all__ = ["jump_probability", "run_trajectories", "sample_trajectories"]


def _reduced(flat: torch.Tensor, n: int, qubits: tuple[int, ...]) -> torch.Tensor:
    """Reduced density matrices ``[B, 2^k, 2^k]`` of ``qubits`` (little-endian) of pure states."""
    k = len(qubits)
    if k == 1:
        q = qubits[0]
        view = flat.reshape(flat.shape[0], 2 ** (n - 1 - q), 2, 2**q)
        low, high = view[:, :, 0], view[:, :, 1]
        r00 = (low.real.square() + low.imag.square()).sum((1, 2))
        r11 = (high.real.square() + high.imag.square()).sum((1, 2))
        r01 = (low * high.conj()).sum((1, 2))
        top = torch.stack([r00.to(r01.dtype), r01], -1)
        bottom = torch.stack([r01.conj(), r11.to(r01.dtype)], -1)
        return torch.stack([top, bottom], -2)
    axes = [n - q for q in reversed(qubits)]
    tail = list(range(n + 1 - k, n + 1))
    t = flat.reshape(flat.shape[0], *([2] * n)).movedim(axes, tail).reshape(flat.shape[0], -1, 2**k)
    return t.transpose(1, 2) @ t.conj()


def _sample_kraus(
    flat: torch.Tensor,
    n: int,
    qubits: tuple[int, ...],
    kraus: torch.Tensor,
    generator: torch.Generator | None,
    effects: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One quantum-jump step: apply ``K_k / |K_k psi|`` with probability ``|K_k psi|^2``.

    Returns the new states and ``log |K_k psi|^2`` of the chosen branch ``[B]`` (differentiable,
    for the score-function term of the gradient).

    The branch probabilities ``tr(K_k^dag K_k rho_q)`` come from the reduced density matrix
    of the touched qubits, so only the chosen operator is applied to the full state. The
    operators may be shared ``[K, d, d]`` or per sample ``[B, K, d, d]`` (a data-dependent
    gate folded into them); the branch is drawn by inverse transform sampling.
    """
    if effects is None:
        effects = kraus.mH @ kraus
    rho = _reduced(flat, n, qubits)
    spec = "kij,bji->bk" if kraus.dim() == 3 else "bkij,bji->bk"
    weight = torch.einsum(spec, effects, rho).real
    cdf = weight.detach().clamp_min(0.0).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, dtype=cdf.dtype, device=cdf.device)
    choice = (cdf < u * cdf[:, -1:]).sum(-1).clamp_max(cdf.shape[1] - 1)
    rows = torch.arange(flat.shape[0], device=flat.device)
    norm = weight[rows, choice].clamp_min(torch.finfo(weight.dtype).tiny).sqrt()
    chosen = kraus[choice] if kraus.dim() == 3 else kraus[rows, choice]
    out = _apply_flat(flat, n, qubits, chosen / norm[:, None, None].to(kraus.dtype))
    return out, 2 * norm.log()


def _no_jump_loss(kraus: torch.Tensor | None) -> float:
    """Largest probability of leaving the no-jump branch ``K_0``: ``1 - min eig K_0^dag K_0``."""
    if kraus is None:
        return 0.0
    k0 = kraus[0]
    return float(1.0 - torch.linalg.eigvalsh(k0.mH @ k0).min())


def jump_probability(spec: CircuitSpec, noise: GateNoise) -> float:
    """Upper bound of the probability that a trajectory of ``spec`` has at least one jump.

    Each noisy gate leaves the no-jump branch with probability at most
    ``p = 1 - min eig(K_0^dag K_0)``; with ``g`` such gates, ``P <= 1 - prod (1 - p)``.
    """
    eye = torch.eye(2, dtype=torch.complex128)
    each = [torch.kron(eye, k) for k in noise.two_qubit_each]
    each += [torch.kron(k, eye) for k in noise.two_qubit_each]
    p_one = _no_jump_loss(compose_kraus(noise.one_qubit))
    p_two = _no_jump_loss(compose_kraus([*noise.two_qubit, *each]))
    stay = 1.0
    for op in _gates(spec):
        if isinstance(op, Gate) and len(op.qubits) == 2:
            stay *= 1.0 - p_two
        elif isinstance(op, Gate) and op.name not in noise.virtual:
            stay *= 1.0 - p_one
    return 1.0 - stay


def run_trajectories(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One Monte-Carlo (quantum-jump) trajectory of the noisy circuit per row of ``x``.

    The average of ``|psi|^2`` over trajectories equals the density-matrix probabilities
    (Dalibard, Castin & Molmer, PRL 68, 580 (1992)); each call draws new jumps. Repeat the
    rows of ``x`` to average several trajectories per sample.

    Returns:
        Flat normalised states ``[B, 2^n]``.
    """
    return sample_trajectories(spec, x, weights, noise, dtype=dtype, generator=generator)[0]


def sample_trajectories(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`run_trajectories`, also returning each trajectory's log-probability.

    The log-probability ``log P(path) = sum log |K_k psi|^2`` ``[B]`` is differentiable: the
    unbiased gradient of an average ``E[f]`` over trajectories is
    ``E[grad f + f grad log P]`` (the score-function term matters for state-dependent
    channels such as amplitude damping and relaxation; issue 13, item 2).

    Returns:
        ``(states [B, 2^n], log_prob [B])``.
    """
    n = spec.n_qubits
    cdtype = _complex_dtype(dtype)
    batch = x.shape[0]
    flat = torch.zeros(batch, 2**n, dtype=cdtype, device=x.device)
    flat[:, 0] = 1
    eye = torch.eye(2, dtype=torch.complex128)
    per_qubit = [torch.kron(eye, k) for k in noise.two_qubit_each]
    per_qubit += [torch.kron(k, eye) for k in noise.two_qubit_each]
    one, two = (
        None if k is None else k.to(cdtype).to(x.device)
        for k in (
            compose_kraus(noise.one_qubit),
            compose_kraus([*noise.two_qubit, *per_qubit]),
        )
    )
    two_effects = None if two is None else two.mH @ two
    log_prob = torch.zeros(batch, dtype=weights.dtype, device=x.device)
    # Single-qubit gates wait per qubit until the next operation on that qubit, so runs of
    # gates become one matrix. A virtual RZ/P after a noisy gate joins it before the channel:
    # every single-qubit channel here (depolarising, amplitude and phase damping, relaxation
    # to |0>) commutes with Z rotations (phase covariance), so the channel is unchanged.
    pending: dict[int, tuple[torch.Tensor, bool]] = {}

    def flush(state: torch.Tensor, q: int) -> torch.Tensor:
        nonlocal log_prob
        mat, noisy = pending.pop(q)
        if not noisy:
            return _apply_flat(state, n, (q,), mat)
        assert one is not None
        fused = one @ mat if mat.dim() == 2 else one[None] @ mat[:, None]
        state, step = _sample_kraus(state, n, (q,), fused, generator)
        log_prob = log_prob + step.to(log_prob.dtype)
        return state

    prepared = _preparation(spec, x)
    for op in _gates(spec):
        if len(op.qubits) == 1:
            q = op.qubits[0]
            gate = _gate_tensor(op, x, weights, cdtype, prepared)
            physical = one is not None and op.name not in noise.virtual
            if q in pending and pending[q][1] and physical:
                flat = flush(flat, q)
            if q in pending:
                mat, noisy = pending[q]
                pending[q] = (gate @ mat, noisy or physical)
            else:
                pending[q] = (gate, physical)
            continue
        for q in op.qubits:
            if q in pending:
                flat = flush(flat, q)
        flat = _permute(flat, n, [(op.name, op.qubits[0], op.qubits[1])])
        if two is not None:
            flat, step = _sample_kraus(flat, n, op.qubits, two, generator, two_effects)
            log_prob = log_prob + step.to(log_prob.dtype)
    for q in sorted(pending):
        flat = flush(flat, q)
    return (flat.expand(batch, -1) if flat.shape[0] != batch else flat), log_prob
