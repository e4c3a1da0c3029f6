"""Kernels that apply gates to batches of flat states: dense, fused chunks, signed
permutations (CNOT/CZ blocks)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


def _apply_flat(
    flat: torch.Tensor, n: int, qubits: Sequence[int], matrix: torch.Tensor
) -> torch.Tensor:
    """Apply a ``[D, D]`` or per-sample ``[B, D, D]`` matrix to ``qubits`` of flat states."""
    k = len(qubits)
    batch = max(flat.shape[0], matrix.shape[0] if matrix.dim() == 3 else 1)
    if k == 1:
        # Elementwise 2x2 products: a batched matmul of 2x2 blocks is several times slower
        # for per-sample matrices (the trajectory and density-matrix paths).
        q = qubits[0]
        view = flat.reshape(flat.shape[0], 2 ** (n - 1 - q), 2, 2**q)
        low, high = view[:, :, 0], view[:, :, 1]
        m = (matrix if matrix.dim() == 3 else matrix[None])[:, :, :, None, None]
        out = torch.stack(
            [m[:, 0, 0] * low + m[:, 0, 1] * high, m[:, 1, 0] * low + m[:, 1, 1] * high], 2
        )
        return out.reshape(batch, -1)
    axes = [n - q for q in reversed(qubits)]
    tail = list(range(n + 1 - k, n + 1))
    t = flat.reshape(flat.shape[0], *([2] * n)).movedim(axes, tail)
    shape = t.shape
    out = torch.matmul(t.reshape(shape[0], -1, 2**k), matrix.transpose(-1, -2))
    return out.reshape(batch, *shape[1:]).movedim(tail, axes).reshape(batch, -1)


def _check_state(state: torch.Tensor) -> int:
    if not isinstance(state, torch.Tensor) or not state.is_complex():
        got = state.dtype if isinstance(state, torch.Tensor) else type(state).__name__
        raise TypeError(
            f"state must be a complex tensor shaped [batch, 2, ..., 2], got {got}; "
            "start from zero_state()"
        )
    if state.dim() < 2 or any(s != 2 for s in state.shape[1:]):
        raise ValueError(f"state must be shaped [batch, 2, ..., 2], got {tuple(state.shape)}")
    return state.dim() - 1


def apply_gate(
    state: torch.Tensor, matrix: torch.Tensor, qubits: int | Sequence[int]
) -> torch.Tensor:
    """Apply a gate to a batch of states without building the ``2^n x 2^n`` matrix.

    Args:
        state: ``[batch, 2, ..., 2]`` complex states.
        matrix: ``[2^k, 2^k]`` (shared) or ``[batch, 2^k, 2^k]`` (per sample), indexed
            little-endian over ``qubits``.
        qubits: the ``k`` distinct qubits the gate acts on.

    Returns:
        The new states, same shape.
    """
    n = _check_state(state)
    qs = (qubits,) if isinstance(qubits, int) else tuple(qubits)
    if len(set(qs)) != len(qs) or any(not 0 <= q < n for q in qs):
        raise ValueError(f"qubits={qs} must be distinct and within 0..{n - 1}")
    d = 2 ** len(qs)
    if matrix.shape[-2:] != (d, d) or matrix.dim() not in (2, 3):
        raise ValueError(
            f"a gate on {len(qs)} qubit(s) needs a [{d}, {d}] or [batch, {d}, {d}] matrix, "
            f"got {tuple(matrix.shape)}"
        )
    out = _apply_flat(state.reshape(state.shape[0], -1), n, qs, matrix.to(state.dtype))
    return out.view(out.shape[0], *([2] * n))


# -- signed permutations (CNOT/CZ blocks) --------------------------------------------------


@functools.lru_cache(maxsize=256)
def _permutation(
    n: int, gates: tuple[tuple[str, int, int], ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gather index, inverse index and sign of a sequence of CX/CZ gates on ``n`` qubits."""
    idx = torch.arange(2**n)
    sign = torch.ones(2**n)
    for name, c, t in gates:
        base = torch.arange(2**n)
        if name == "cx":
            g_idx = base ^ (((base >> c) & 1) << t)
            idx, sign = idx[g_idx], sign[g_idx]
        else:
            sign = sign * (1 - 2 * (((base >> c) & 1) * ((base >> t) & 1))).to(sign.dtype)
    inverse = torch.empty_like(idx)
    inverse[idx] = torch.arange(2**n)
    has_sign = bool((sign != 1).any())
    return idx, inverse, (sign if has_sign else None)


class _Permute(torch.autograd.Function):
    """``out = sign * x[:, idx]`` with the cheap inverse gather as its backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        idx: torch.Tensor,
        inverse: torch.Tensor,
        sign: torch.Tensor | None,
    ) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        ctx.sign = sign  # type: ignore[attr-defined]
        out = x.index_select(1, idx)
        return out * sign if sign is not None else out

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor, None, None, None]:
        (inverse,) = ctx.saved_tensors  # type: ignore[attr-defined]
        sign = ctx.sign  # type: ignore[attr-defined]
        if sign is not None:
            grad = grad * sign
        return grad.index_select(1, inverse), None, None, None


def _permute(flat: torch.Tensor, n: int, gates: list[tuple[str, int, int]]) -> torch.Tensor:
    idx, inverse, sign = _permutation(n, tuple(gates))
    dev = flat.device
    real = flat.real.dtype if flat.is_complex() else flat.dtype
    sign_t = sign.to(dev, real) if sign is not None else None
    out: torch.Tensor = _Permute.apply(flat, idx.to(dev), inverse.to(dev), sign_t)
    return out


def _chunk_matmul(flat: torch.Tensor, kron: torch.Tensor, q0: int) -> torch.Tensor:
    """Apply ``kron`` ``[D, D]`` to the qubits ``q0..q0+log2(D)-1`` of flat states."""
    size = kron.shape[0]
    if q0 == 0:
        # A contiguous right operand keeps complex GEMM on its fast path (4x on CPU).
        return torch.mm(flat.reshape(-1, size), kron.T.contiguous()).view(flat.shape[0], -1)
    return torch.matmul(kron, flat.reshape(-1, size, 2**q0)).view(flat.shape[0], -1)


class _ApplyChunk(torch.autograd.Function):
    """``kron`` on neighbouring qubits; analytic backward: ``K^H`` on the gradient states
    and ``grad_K = sum_m g_m x_m^H`` as one GEMM over the batch."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, flat: torch.Tensor, kron: torch.Tensor, q0: int
    ) -> torch.Tensor:
        ctx.save_for_backward(flat, kron)
        ctx.q0 = q0  # type: ignore[attr-defined]
        return _chunk_matmul(flat, kron, q0)

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        flat, kron = ctx.saved_tensors  # type: ignore[attr-defined]
        q0: int = ctx.q0  # type: ignore[attr-defined]
        size = kron.shape[0]
        grad = grad.contiguous()
        grad_flat = grad_kron = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            grad_flat = _chunk_matmul(grad, kron.mH.contiguous(), q0)
        if ctx.needs_input_grad[1]:  # type: ignore[attr-defined]
            g = grad.reshape(-1, size, 2**q0).transpose(0, 1).reshape(size, -1)
            x = flat.expand(grad.shape[0], -1).reshape(-1, size, 2**q0)
            grad_kron = g @ x.transpose(0, 1).reshape(size, -1).mH
        return grad_flat, grad_kron, None


def _apply_local(
    flat: torch.Tensor, n: int, mats: torch.Tensor, touched: list[int], fuse: int
) -> torch.Tensor:
    """Apply per-qubit matrices ``[1 or B, n, 2, 2]`` on the ``touched`` qubits."""
    if mats.shape[0] > 1:
        for q in touched:
            flat = _apply_flat(flat, n, (q,), mats[:, q])
        return flat
    shared = mats[0]
    while touched:
        q0 = touched[0]
        width = min(fuse, n - q0)
        touched = [q for q in touched if q >= q0 + width]
        kron = shared[q0 + width - 1]
        for q in range(q0 + width - 2, q0 - 1, -1):
            kron = torch.kron(kron, shared[q])
        out: torch.Tensor = _ApplyChunk.apply(flat, kron, q0)
        flat = out
    return flat


def _batched_kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``kron(a[i], b[i])`` for matrices ``[1 or B, p, p]`` and ``[1 or B, r, r]``."""
    p, r = a.shape[-1], b.shape[-1]
    out = a[:, :, None, :, None] * b[:, None, :, None, :]
    return out.reshape(out.shape[0], p * r, p * r)


def _apply_block(flat: torch.Tensor, n: int, kron: torch.Tensor, q0: int) -> torch.Tensor:
    """Apply ``kron`` ``[1 or B, D, D]`` to the qubits ``q0..q0+log2(D)-1`` of flat states."""
    size = kron.shape[-1]
    batch = max(flat.shape[0], kron.shape[0])
    if q0 == 0:
        rows = flat.reshape(flat.shape[0], -1, size)
        return torch.matmul(rows, kron.transpose(-1, -2)).reshape(batch, -1)
    view = flat.reshape(flat.shape[0], -1, size, 2**q0)
    return torch.matmul(kron[:, None], view).reshape(batch, -1)


def _apply_singles(
    flat: torch.Tensor, n: int, gates: Sequence[tuple[int, torch.Tensor]], fuse: int
) -> torch.Tensor:
    """Apply single-qubit matrices ``(qubit, [2, 2] or [B, 2, 2])`` in order.

    Gates on distinct qubits commute, so each layer of them is applied as Kronecker
    products over spans of up to ``fuse`` neighbouring qubits (identity on untouched qubits
    inside a span), one batched matmul per span instead of one kernel per qubit.
    """
    layers: list[dict[int, torch.Tensor]] = []
    for q, mat in gates:
        if not layers or q in layers[-1]:
            layers.append({})
        layer = layers[-1]
        layer[q] = mat if mat.dim() == 3 else mat[None]
    for layer in layers:
        touched = sorted(layer)
        while touched:
            q0 = touched[0]
            span = [q for q in touched if q < q0 + fuse]
            touched = touched[len(span) :]
            if len(span) == 1:
                flat = _apply_flat(
                    flat, n, (q0,), layer[q0] if layer[q0].shape[0] > 1 else layer[q0][0]
                )
                continue
            eye = torch.eye(2, dtype=flat.dtype, device=flat.device)[None]
            kron = layer[span[-1]]
            for q in range(span[-1] - 1, q0 - 1, -1):
                kron = _batched_kron(kron, layer.get(q, eye))
            flat = _apply_block(flat, n, kron, q0)
    return flat
