"""Batched statevector and density-matrix simulation in pure torch.

Conventions:

- **Qubit ordering** is qiskit's little-endian one: qubit ``q`` is bit ``q`` of a basis-state
  index, so a flat state ``psi[b, i]`` has the same index as qiskit's ``Statevector``. In the
  tensor view ``[batch, 2, ..., 2]`` qubit ``q`` is dimension ``n - q`` (the last dimension
  is qubit 0), which is what ``psi.reshape(batch, 2**n)`` flattens to that index.
- A k-qubit gate matrix acting on ``qubits = (q_0, ..., q_{k-1})`` is indexed little-endian
  too: row/column ``sum_j b_{q_j} 2^j`` (qiskit's ``Operator`` convention), so ``cx`` on
  ``(control, target)`` is qiskit's ``CXGate``.
- Density matrices are simulated as ``2n``-qubit vectors ``vec(rho)[r * 2^n + c]``: column
  bits are qubits ``0..n-1`` and row bits ``n..2n-1``; a unitary ``U`` on qubit ``q`` acts as
  ``U`` on ``q + n`` and ``conj(U)`` on ``q``, a channel as its superoperator
  ``sum_k K_k (x) conj(K_k)`` on ``(q, q + n)``.

Gates take per-sample parameters: a matrix ``[2, 2]`` is shared by the batch, ``[B, 2, 2]``
holds one per sample (data encoding), and autograd flows through everything.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .circuit import AmplitudeEncoding, CircuitSpec, Gate, Op, ZZPhase, expand

__all__ = [
    "GateNoise",
    "amplitude_damping_kraus",
    "apply_channel",
    "apply_gate",
    "apply_readout_error",
    "build_noise",
    "check_memory",
    "compose_kraus",
    "density_probabilities",
    "depolarizing_kraus",
    "expectation_z",
    "gate_matrix",
    "marginal_probabilities",
    "parameter_shift",
    "phase_damping_kraus",
    "probabilities",
    "run_density",
    "run_statevector",
    "run_trajectories",
    "sample_frequencies",
    "state_bytes",
    "superoperator",
    "thermal_relaxation_kraus",
    "zero_state",
]

_PAULI = {
    "i": ((1, 0), (0, 1)),
    "x": ((0, 1), (1, 0)),
    "y": ((0, -1j), (1j, 0)),
    "z": ((1, 0), (0, -1)),
}
_FIXED: dict[str, tuple[tuple[complex, ...], ...]] = {
    "h": ((2**-0.5, 2**-0.5), (2**-0.5, -(2**-0.5))),
    "x": _PAULI["x"],
    "y": _PAULI["y"],
    "z": _PAULI["z"],
    "s": ((1, 0), (0, 1j)),
    "sdg": ((1, 0), (0, -1j)),
    "cx": ((1, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 0), (0, 1, 0, 0)),
    "cz": ((1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, -1)),
    "swap": ((1, 0, 0, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 0, 0, 1)),
}
ANGLE_GATES = ("rx", "ry", "rz", "p")


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.complex64, torch.complex128):
        return dtype
    if dtype == torch.float64:
        return torch.complex128
    if dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.complex64
    raise TypeError(f"dtype={dtype} is not a float or complex dtype; use torch.float32")


def gate_matrix(
    name: str,
    angle: torch.Tensor | float | None = None,
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Matrix of gate ``name`` (qiskit conventions), batched over ``angle``'s shape.

    Args:
        name: ``rx ry rz p`` (need ``angle``) or ``h x y z s sdg cx cz swap``.
        angle: rotation angle [rad], a float or a tensor of any shape ``S``.
        dtype: complex (or matching real) dtype of the result.
        device: device of the result when ``angle`` is not a tensor.

    Returns:
        ``[*S, 2, 2]`` for angle gates, ``[2, 2]`` or ``[4, 4]`` for fixed gates. ``RX(t) =
        exp(-i t X / 2)``, ``RY``, ``RZ`` likewise, ``P(t) = diag(1, e^{i t})``.
    """
    cdtype = _complex_dtype(dtype)
    if name in _FIXED:
        if angle is not None:
            raise ValueError(f"gate {name!r} takes no angle, got {angle!r}")
        return torch.tensor(_FIXED[name], dtype=cdtype, device=device)
    if name not in ANGLE_GATES:
        raise ValueError(
            f"unknown gate {name!r}; choose one of {', '.join((*ANGLE_GATES, *_FIXED))}"
        )
    if angle is None:
        raise ValueError(f"gate {name!r} needs an angle [rad]")
    real = torch.float64 if cdtype == torch.complex128 else torch.float32
    theta = torch.as_tensor(angle, device=device).to(real)
    zero = torch.zeros_like(theta)
    if name == "p":
        one = torch.ones_like(theta)
        re = torch.stack([one, zero, zero, torch.cos(theta)], -1)
        im = torch.stack([zero, zero, zero, torch.sin(theta)], -1)
    else:
        c, s = torch.cos(theta / 2), torch.sin(theta / 2)
        if name == "ry":
            re = torch.stack([c, -s, s, c], -1)
            im = torch.stack([zero, zero, zero, zero], -1)
        elif name == "rx":
            re = torch.stack([c, zero, zero, c], -1)
            im = torch.stack([zero, -s, -s, zero], -1)
        else:
            re = torch.stack([c, zero, zero, c], -1)
            im = torch.stack([-s, zero, zero, s], -1)
    return torch.complex(re, im).unflatten(-1, (2, 2))


def zero_state(
    batch: int,
    n_qubits: int,
    *,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``|0...0>`` for a batch, shaped ``[batch, 2, ..., 2]`` (``n_qubits`` twos)."""
    state = torch.zeros(batch, 2**n_qubits, dtype=_complex_dtype(dtype), device=device)
    state[:, 0] = 1
    return state.view(batch, *([2] * n_qubits))


def state_bytes(
    n_qubits: int, batch: int = 1, *, density: bool = False, dtype: torch.dtype = torch.complex64
) -> int:
    """Bytes of one simulator state: ``batch * 2^n`` (``4^n`` for density) complex numbers."""
    itemsize = torch.empty((), dtype=_complex_dtype(dtype)).element_size()
    return batch * (4**n_qubits if density else 2**n_qubits) * itemsize


def check_memory(
    n_qubits: int,
    batch: int,
    limit: int,
    *,
    density: bool = False,
    dtype: torch.dtype = torch.complex64,
) -> None:
    """Raise ``ValueError`` naming the memory needed when one state exceeds ``limit`` bytes."""
    need = state_bytes(n_qubits, batch, density=density, dtype=dtype)
    if need > limit:
        kind = "density matrix" if density else "statevector"
        raise ValueError(
            f"simulating {n_qubits} qubits with batch {batch} needs {need / 2**30:.3g} GiB for "
            f"one {kind} ({_complex_dtype(dtype)}), above the limit of {limit / 2**30:.3g} GiB "
            "(SimulationConfig.memory_limit); use fewer qubits, a smaller batch, trajectories "
            "instead of a density matrix, or raise memory_limit"
        )


def _apply_flat(
    flat: torch.Tensor, n: int, qubits: Sequence[int], matrix: torch.Tensor
) -> torch.Tensor:
    """Apply a ``[D, D]`` or per-sample ``[B, D, D]`` matrix to ``qubits`` of flat states."""
    k = len(qubits)
    batch = max(flat.shape[0], matrix.shape[0] if matrix.dim() == 3 else 1)
    if k == 1:
        q = qubits[0]
        view = flat.reshape(flat.shape[0], 2 ** (n - 1 - q), 2, 2**q)
        mat = matrix if matrix.dim() == 2 else matrix[:, None]
        return torch.matmul(mat, view).reshape(batch, -1)
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


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """Outcome probabilities ``|psi_i|^2``, shaped ``[batch, 2^n]`` (qiskit index order)."""
    flat = state.reshape(state.shape[0], -1)
    return flat.real.square() + flat.imag.square()


@functools.lru_cache(maxsize=64)
def _z_signs(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    idx = torch.arange(2**n, device=device)
    bits = (idx[:, None] >> torch.arange(n, device=device)) & 1
    return (1 - 2 * bits).to(dtype)


def expectation_z(probs: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """``<Z_q>`` for every qubit from probabilities ``[batch, 2^n]`` -> ``[batch, n]``."""
    return probs @ _z_signs(n_qubits, probs.dtype, probs.device)


def marginal_probabilities(probs: torch.Tensor, n_qubits: int, k: int) -> torch.Tensor:
    """Probabilities of the outcomes of qubits ``0..k-1`` -> ``[batch, 2^k]``."""
    return probs.reshape(probs.shape[0], 2 ** (n_qubits - k), 2**k).sum(1)


def apply_readout_error(probs: torch.Tensor, n_qubits: int, p01: float, p10: float) -> torch.Tensor:
    """Apply independent assignment errors to outcome probabilities.

    Each qubit's reported bit follows ``A = [[1 - p01, p10], [p01, 1 - p10]]`` (row: read
    value, column: true value), so ``<Z>`` becomes ``(1 - p01 - p10) <Z> + p10 - p01``.
    """
    for name, p in (("p01", p01), ("p10", p10)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}={p!r} is outside [0, 1]; pass a probability, e.g. 0.01")
    if p01 == 0 and p10 == 0:
        return probs
    a = torch.tensor([[1 - p01, p10], [p01, 1 - p10]], dtype=probs.dtype, device=probs.device)
    for q in range(n_qubits):
        probs = _apply_flat(probs, n_qubits, (q,), a)
    return probs


def sample_frequencies(
    probs: torch.Tensor, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Relative frequencies of ``shots`` measurements drawn from ``probs`` (multinomial).

    The multinomial over the ``2^n`` outcomes is drawn exactly by splitting the shots down
    the binary tree of outcome indices with one vectorised binomial per level, so the cost
    does not grow with ``shots``.

    Args:
        probs: ``[batch, 2^n]`` outcome probabilities (each row sums to 1).
        shots: measurements per row (>= 1).
        generator: random generator (None: torch's global RNG).
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ValueError(f"shots={shots!r} must be an int >= 1")
    if torch.any(probs < -1e-5) or torch.any(probs > 1 + 1e-5):
        raise ValueError(
            f"probs must lie in [0, 1], got values in [{float(probs.min()):.3g}, "
            f"{float(probs.max()):.3g}]; pass probabilities, not amplitudes"
        )
    p = probs.detach().to(torch.float64).clamp_min(0.0)
    p = p / p.sum(-1, keepdim=True)
    batch, size = p.shape
    n = round(math.log2(size))
    counts = torch.full((batch, 1), float(shots), dtype=torch.float64, device=p.device)
    for level in range(n):
        blocks = p.reshape(batch, 2 ** (level + 1), -1).sum(-1)
        left, right = blocks[:, 0::2], blocks[:, 1::2]
        total = left + right
        ratio = torch.where(total > 0, left / total.clamp_min(1e-300), torch.ones_like(total))
        first = torch.binomial(counts, ratio.clamp(0.0, 1.0), generator=generator)
        counts = torch.stack([first, counts - first], -1).reshape(batch, -1)
    return (counts / shots).to(probs.dtype)


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


# -- angles ---------------------------------------------------------------------------------


def _gate_tensor(
    gate: Gate, x: torch.Tensor, weights: torch.Tensor, cdtype: torch.dtype
) -> torch.Tensor:
    """Matrix of one gate: ``[2, 2]``/``[4, 4]`` (fixed or weight) or ``[B, 2, 2]`` (data)."""
    if gate.source == "none":
        return gate_matrix(gate.name, dtype=cdtype, device=x.device)
    stage = _Stage(gate.name, gate.source, gate.qubits, (gate.index,), (gate.scale,))
    return gate_matrix(gate.name, _stage_angles(stage, x, weights)[..., 0], dtype=cdtype)


def _amplitude_state(
    op: AmplitudeEncoding, x: torch.Tensor, n: int, cdtype: torch.dtype
) -> torch.Tensor:
    """Normalised, zero-padded amplitudes on qubits ``0..k-1`` (an all-zero sample -> |0>)."""
    amp = x[:, : op.n_features]
    norm = amp.norm(dim=1, keepdim=True)
    e0 = torch.zeros_like(amp)
    e0[:, 0] = 1
    amp = torch.where(norm > 0, amp / norm.clamp_min(torch.finfo(amp.dtype).tiny), e0)
    amp = torch.nn.functional.pad(amp, (0, 2**n - op.n_features))
    return amp.to(cdtype)


def _zz_phase(op: ZZPhase, x: torch.Tensor, n: int, cdtype: torch.dtype) -> torch.Tensor:
    """Per-sample diagonal ``exp(2i sum_ij phi_ij (b_i xor b_j))`` -> ``[B, 2^n]``."""
    idx = torch.arange(2**n, device=x.device)
    pairs = torch.tensor(op.pairs, device=x.device)
    xor = (((idx[None] >> pairs[:, :1]) ^ (idx[None] >> pairs[:, 1:])) & 1).to(x.dtype)
    phi = (math.pi - x[:, pairs[:, 0]]) * (math.pi - x[:, pairs[:, 1]])
    angle = (2 * phi) @ xor
    return torch.polar(torch.ones_like(angle), angle).to(cdtype)


# -- exact statevector ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Stage:
    """Same-named single-qubit gates with one angle source on distinct qubits."""

    name: str
    source: str
    qubits: tuple[int, ...]
    indices: tuple[int | tuple[int, int], ...]
    scales: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class _Segment:
    """One step of the compiled exact simulation."""

    kind: str  # "local", "perm", "zz", "amplitude"
    stages: tuple[_Stage, ...] = ()
    gates: tuple[tuple[str, int, int], ...] = ()
    op: Op | None = None


def _stages(gates: list[Gate]) -> tuple[_Stage, ...]:
    """Group a run of single-qubit gates into stages (ASAP level, name, source)."""
    level: dict[int, int] = {}
    groups: dict[tuple[int, str, str], list[Gate]] = {}
    for gate in gates:
        q = gate.qubits[0]
        level[q] = level.get(q, 0) + 1
        groups.setdefault((level[q], gate.name, gate.source), []).append(gate)
    return tuple(
        _Stage(
            name,
            source,
            tuple(g.qubits[0] for g in group),
            tuple(g.index for g in group),
            tuple(g.scale for g in group),
        )
        for (_, name, source), group in sorted(groups.items(), key=lambda item: item[0][0])
    )


@functools.lru_cache(maxsize=128)
def _compile(spec: CircuitSpec) -> tuple[_Segment, ...]:
    segments: list[_Segment] = []
    run: list[Gate] = []
    perm: list[tuple[str, int, int]] = []
    for op in spec.ops:
        if isinstance(op, Gate) and len(op.qubits) == 1:
            if perm:
                segments.append(_Segment("perm", gates=tuple(perm)))
                perm = []
            run.append(op)
            continue
        if run:
            segments.append(_Segment("local", stages=_stages(run)))
            run = []
        if isinstance(op, Gate):
            perm.append((op.name, op.qubits[0], op.qubits[1]))
            continue
        if perm:
            segments.append(_Segment("perm", gates=tuple(perm)))
            perm = []
        if isinstance(op, AmplitudeEncoding) and segments:
            raise ValueError("amplitude encoding must be the first operation of a circuit")
        segments.append(_Segment("zz" if isinstance(op, ZZPhase) else "amplitude", op=op))
    if run:
        segments.append(_Segment("local", stages=_stages(run)))
    if perm:
        segments.append(_Segment("perm", gates=tuple(perm)))
    return tuple(segments)


@functools.lru_cache(maxsize=1024)
def _constant(values: tuple[Any, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Index and scale tensors of compiled stages, built once per device."""
    return torch.tensor(values, dtype=dtype, device=device)


def _stage_angles(stage: _Stage, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Angles of a stage: ``[g]`` (weights) or ``[B, g]`` (data)."""
    if stage.source == "weight":
        idx = _constant(stage.indices, torch.int64, weights.device)
        angles = weights.index_select(0, idx)
    elif stage.source == "feature":
        angles = x.index_select(1, _constant(stage.indices, torch.int64, x.device))
    else:
        pairs = _constant(stage.indices, torch.int64, x.device)
        angles = (math.pi - x[:, pairs[:, 0]]) * (math.pi - x[:, pairs[:, 1]])
    if any(scale != 1.0 for scale in stage.scales):
        angles = angles * _constant(stage.scales, angles.dtype, angles.device)
    return angles


def _local_matrices(
    stages: tuple[_Stage, ...], n: int, x: torch.Tensor, weights: torch.Tensor, cdtype: torch.dtype
) -> torch.Tensor:
    """Product of the stages' gates per qubit: ``[1 or B, n, 2, 2]``."""
    total: torch.Tensor | None = None
    eye = torch.eye(2, dtype=cdtype, device=x.device).expand(1, n, 2, 2)
    for stage in stages:
        if stage.source == "none":
            mats = gate_matrix(stage.name, dtype=cdtype, device=x.device).expand(
                1, len(stage.qubits), 2, 2
            )
        else:
            angles = _stage_angles(stage, x, weights)
            mats = gate_matrix(stage.name, angles, dtype=cdtype)
            mats = mats[None] if mats.dim() == 3 else mats
        if stage.qubits == tuple(range(n)):
            full = mats
        else:
            qubits = _constant(stage.qubits, torch.int64, x.device)
            full = eye.expand(mats.shape[0], n, 2, 2).index_copy(1, qubits, mats)
        total = full if total is None else full @ total
    assert total is not None
    return total


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


def _product_state(vectors: torch.Tensor) -> torch.Tensor:
    """Flat state ``[B, 2^n]`` of the product of per-qubit vectors ``[B, n, 2]``."""
    flat = vectors[:, -1]
    for q in range(vectors.shape[1] - 2, -1, -1):
        flat = (flat[:, :, None] * vectors[:, q, None, :]).flatten(1)
    return flat


def run_statevector(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    *,
    dtype: torch.dtype = torch.complex64,
    fuse: int = 4,
) -> torch.Tensor:
    """Exact final states of ``spec`` for a batch of inputs, with fused gates.

    The circuit is compiled once into segments: runs of single-qubit gates become per-qubit
    2x2 products built with a few batched tensor operations; while the state is still a
    product state (before the first entangling gate) they act on ``n`` two-component vectors,
    afterwards the shared ones of up to ``fuse`` neighbouring qubits are applied as one
    Kronecker-product matrix. Runs of CNOT/CZ gates are one signed permutation.

    Args:
        spec: the circuit.
        x: scaled inputs ``[B, n_features]`` (real).
        weights: trainable angles ``[n_weights]`` [rad].
        dtype: complex dtype of the simulation.
        fuse: most neighbouring qubits fused into one matrix.

    Returns:
        Flat states ``[B, 2^n]`` in qiskit's index order.
    """
    n = spec.n_qubits
    cdtype = _complex_dtype(dtype)
    batch = x.shape[0]
    ground = torch.zeros(1, n, 2, dtype=cdtype, device=x.device)
    ground[:, :, 0] = 1
    vectors: torch.Tensor | None = ground
    flat: torch.Tensor | None = None
    for seg in _compile(spec):
        if seg.kind == "local":
            mats = _local_matrices(seg.stages, n, x, weights, cdtype)
            if vectors is not None:
                vectors = (mats @ vectors[..., None])[..., 0]
            else:
                assert flat is not None
                touched = sorted({q for st in seg.stages for q in st.qubits})
                flat = _apply_local(flat, n, mats, touched, fuse)
            continue
        if vectors is not None:
            flat, vectors = _product_state(vectors), None
        assert seg.op is not None or seg.kind == "perm"
        if seg.kind == "perm":
            assert flat is not None
            flat = _permute(flat, n, list(seg.gates))
        elif isinstance(seg.op, ZZPhase):
            assert flat is not None
            flat = flat * _zz_phase(seg.op, x, n, cdtype)
        else:
            assert isinstance(seg.op, AmplitudeEncoding)
            flat = _amplitude_state(seg.op, x, n, cdtype)
    if vectors is not None:
        flat = _product_state(vectors)
    assert flat is not None
    return flat.expand(batch, -1) if flat.shape[0] != batch else flat


# -- noise channels -------------------------------------------------------------------------


def _pauli(name: str) -> torch.Tensor:
    return torch.tensor(_PAULI[name], dtype=torch.complex128)


def _check_prob(name: str, value: float, high: float = 1.0) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= high):
        raise ValueError(f"{name}={value!r} is outside [0, {high:g}]; pass a probability")


def depolarizing_kraus(p: float, n_qubits: int = 1) -> torch.Tensor:
    """Kraus operators ``[4^n, 2^n, 2^n]`` of ``rho -> (1 - p) rho + p Tr[rho] I / 2^n``.

    This is qiskit's ``depolarizing_error(p, n)`` convention: ``p`` may reach
    ``4^n / (4^n - 1)``; the average gate infidelity is ``p (2^n - 1) / 2^n``.
    """
    if n_qubits not in (1, 2):
        raise ValueError(f"n_qubits={n_qubits!r} must be 1 or 2")
    _check_prob("p", p, 4**n_qubits / (4**n_qubits - 1))
    paulis = [_pauli(s) for s in "ixyz"]
    ops = paulis if n_qubits == 1 else [torch.kron(b, a) for b in paulis for a in paulis]
    d2 = 4**n_qubits
    weights = torch.full((d2,), p / d2, dtype=torch.float64)
    weights[0] = 1 - p + p / d2
    return torch.stack(ops) * weights.sqrt()[:, None, None]


def amplitude_damping_kraus(gamma: float) -> torch.Tensor:
    """Kraus operators ``[2, 2, 2]`` of amplitude damping: ``|1> -> |0>`` with probability
    ``gamma`` (Nielsen & Chuang, Eq. 8.108)."""
    _check_prob("gamma", gamma)
    g = math.sqrt(gamma)
    return torch.tensor(
        [[[1, 0], [0, math.sqrt(1 - gamma)]], [[0, g], [0, 0]]], dtype=torch.complex128
    )


def phase_damping_kraus(lam: float) -> torch.Tensor:
    """Kraus operators ``[2, 2, 2]`` of phase damping: coherences shrink by ``sqrt(1 - lam)``
    (Nielsen & Chuang, Eq. 8.127)."""
    _check_prob("lam", lam)
    return torch.tensor(
        [[[1, 0], [0, math.sqrt(1 - lam)]], [[0, 0], [0, math.sqrt(lam)]]], dtype=torch.complex128
    )


def thermal_relaxation_kraus(t1: float, t2: float, time: float) -> torch.Tensor:
    """Kraus operators ``[4, 2, 2]`` of relaxation to ``|0>`` during ``time`` [s].

    Populations decay as ``exp(-time / t1)`` and coherences as ``exp(-time / t2)``: amplitude
    damping with ``gamma = 1 - exp(-time/t1)`` followed by phase damping with
    ``1 - lam = exp(-2 time/t2 + time/t1)`` (needs ``t2 <= 2 t1``), the channel of qiskit's
    ``thermal_relaxation_error`` at zero excited-state population.
    """
    if not (t1 > 0 and t2 > 0 and time >= 0):
        raise ValueError(f"need t1 > 0, t2 > 0 and time >= 0 [s], got {t1!r}, {t2!r}, {time!r}")
    if t2 > 2 * t1:
        raise ValueError(f"t2={t2!r} s must be <= 2 * t1 = {2 * t1!r} s")
    gamma = -math.expm1(-time / t1)
    lam = min(1.0, max(0.0, -math.expm1(-2 * time / t2 + time / t1)))
    ad, pd = amplitude_damping_kraus(gamma), phase_damping_kraus(lam)
    return torch.stack([b @ a for b in pd for a in ad])


def superoperator(kraus: torch.Tensor) -> torch.Tensor:
    """``sum_k K_k (x) conj(K_k)``: the channel acting on ``vec(rho)[r * d + c]``."""
    return torch.einsum("kij,kab->iajb", kraus, kraus.conj()).reshape(
        kraus.shape[-1] ** 2, kraus.shape[-1] ** 2
    )


def apply_channel(
    rho: torch.Tensor, kraus: torch.Tensor, qubits: int | Sequence[int]
) -> torch.Tensor:
    """Apply a channel with Kraus operators ``[K, 2^k, 2^k]`` to density matrices.

    Args:
        rho: ``[batch, 2^n, 2^n]`` density matrices.
        kraus: Kraus operators indexed little-endian over ``qubits``.
        qubits: the ``k`` qubits the channel acts on.
    """
    n = round(math.log2(rho.shape[-1]))
    qs = (qubits,) if isinstance(qubits, int) else tuple(qubits)
    sup = superoperator(kraus.to(rho.dtype))
    flat = _apply_flat(rho.reshape(rho.shape[0], -1), 2 * n, (*qs, *(q + n for q in qs)), sup)
    return flat.reshape(rho.shape)


@dataclasses.dataclass(frozen=True)
class GateNoise:
    """Kraus sets applied after each gate (see :func:`build_noise`).

    Attributes:
        one_qubit: ``[K, 2, 2]`` sets applied after every physical single-qubit gate.
        two_qubit: ``[K, 4, 4]`` sets applied to ``(control, target)`` after every CX/CZ.
        two_qubit_each: ``[K, 2, 2]`` sets applied to each qubit of a CX/CZ.
        virtual: gate names that are noiseless frame changes.
    """

    one_qubit: tuple[torch.Tensor, ...]
    two_qubit: tuple[torch.Tensor, ...]
    two_qubit_each: tuple[torch.Tensor, ...]
    virtual: frozenset[str]


def build_noise(
    *,
    depolarizing_1q: float = 0.0,
    depolarizing_2q: float = 0.0,
    amplitude_damping: float = 0.0,
    phase_damping: float = 0.0,
    t1: float | None = None,
    t2: float | None = None,
    single_qubit_gate_time: float = 0.0,
    two_qubit_gate_time: float = 0.0,
    virtual_rz: bool = True,
) -> GateNoise:
    """Per-gate noise: depolarising, then amplitude and phase damping, then thermal
    relaxation over the gate's duration, on the qubits the gate touches."""
    one: list[torch.Tensor] = []
    each: list[torch.Tensor] = []
    two: list[torch.Tensor] = []
    if depolarizing_1q > 0:
        one.append(depolarizing_kraus(depolarizing_1q, 1))
    if depolarizing_2q > 0:
        two.append(depolarizing_kraus(depolarizing_2q, 2))
    for target in (one, each):
        if amplitude_damping > 0:
            target.append(amplitude_damping_kraus(amplitude_damping))
        if phase_damping > 0:
            target.append(phase_damping_kraus(phase_damping))
    if t1 is not None and t2 is not None:
        one.append(thermal_relaxation_kraus(t1, t2, single_qubit_gate_time))
        each.append(thermal_relaxation_kraus(t1, t2, two_qubit_gate_time))
    virtual = frozenset({"rz", "p", "sdg"}) if virtual_rz else frozenset()
    return GateNoise(tuple(one), tuple(two), tuple(each), virtual)


def _gates(spec: CircuitSpec) -> list[Op]:
    out: list[Op] = []
    for op in spec.ops:
        out += [op] if isinstance(op, AmplitudeEncoding) else expand(op)
    return out


def run_density(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Outcome probabilities ``[B, 2^n]`` of the noisy circuit by density-matrix evolution.

    Every gate is applied on its own (no fusion) and followed by ``noise``. Amplitude
    encoding prepares its state ideally.
    """
    n = spec.n_qubits
    size = 2**n
    cdtype = _complex_dtype(dtype)
    vec = torch.zeros(1, size * size, dtype=cdtype, device=x.device)
    vec[:, 0] = 1
    sup_one, sup_two, sup_each = (
        [] if k is None else [superoperator(k).to(cdtype).to(x.device)]
        for k in (
            compose_kraus(noise.one_qubit),
            compose_kraus(noise.two_qubit),
            compose_kraus(noise.two_qubit_each),
        )
    )
    for op in _gates(spec):
        if isinstance(op, AmplitudeEncoding):
            psi = _amplitude_state(op, x, n, cdtype)
            vec = (psi[:, :, None] * psi.conj()[:, None, :]).flatten(1)
            continue
        assert isinstance(op, Gate)
        if len(op.qubits) == 1:
            q = op.qubits[0]
            u = _gate_tensor(op, x, weights, cdtype)
            vec = _apply_flat(_apply_flat(vec, 2 * n, (q + n,), u), 2 * n, (q,), u.conj())
            for sup in sup_one if op.name not in noise.virtual else []:
                vec = _apply_flat(vec, 2 * n, (q, q + n), sup)
        else:
            c, t = op.qubits
            vec = _permute(vec, 2 * n, [(op.name, c + n, t + n), (op.name, c, t)])
            for sup in sup_two:
                vec = _apply_flat(vec, 2 * n, (c, t, c + n, t + n), sup)
            for sup in sup_each:
                for q in (c, t):
                    vec = _apply_flat(vec, 2 * n, (q, q + n), sup)
    diag = torch.arange(size, device=x.device) * (size + 1)
    probs = vec[:, diag].real
    return probs.expand(x.shape[0], -1) if probs.shape[0] != x.shape[0] else probs


def density_probabilities(rho: torch.Tensor) -> torch.Tensor:
    """Diagonal of density matrices ``[B, 2^n, 2^n]`` -> ``[B, 2^n]`` (real)."""
    return torch.diagonal(rho, dim1=-2, dim2=-1).real


def compose_kraus(sets: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """Kraus operators of the channels ``sets`` applied in order (None for no channel)."""
    out: torch.Tensor | None = None
    for kraus in sets:
        out = kraus if out is None else (kraus[:, None] @ out[None]).flatten(0, 1)
    return out


def _reduced(flat: torch.Tensor, n: int, qubits: tuple[int, ...]) -> torch.Tensor:
    """Reduced density matrices ``[B, 2^k, 2^k]`` of ``qubits`` (little-endian) of pure states."""
    k = len(qubits)
    if k == 1:
        q = qubits[0]
        view = flat.reshape(flat.shape[0], 2 ** (n - 1 - q), 2, 2**q)
        return torch.einsum("blir,bljr->bij", view, view.conj())
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
) -> torch.Tensor:
    """One quantum-jump step: apply ``K_k / |K_k psi|`` with probability ``|K_k psi|^2``.

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
    return _apply_flat(flat, n, qubits, chosen / norm[:, None, None].to(kraus.dtype))


def run_trajectories(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One Monte-Carlo (quantum-jump) trajectory of the noisy circuit per sample.

    The average of ``|psi|^2`` over trajectories equals the density-matrix probabilities
    (Dalibard, Castin & Molmer, PRL 68, 580 (1992)); each call draws new jumps.

    Returns:
        Flat normalised states ``[B, 2^n]``.
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
    # Single-qubit gates wait per qubit until the next operation on that qubit, so runs of
    # gates become one matrix. A virtual RZ/P after a noisy gate joins it before the channel:
    # every single-qubit channel here (depolarising, amplitude and phase damping, relaxation
    # to |0>) commutes with Z rotations (phase covariance), so the channel is unchanged.
    pending: dict[int, tuple[torch.Tensor, bool]] = {}

    def flush(state: torch.Tensor, q: int) -> torch.Tensor:
        mat, noisy = pending.pop(q)
        if not noisy:
            return _apply_flat(state, n, (q,), mat)
        assert one is not None
        fused = one @ mat if mat.dim() == 2 else one[None] @ mat[:, None]
        return _sample_kraus(state, n, (q,), fused, generator)

    for op in _gates(spec):
        if isinstance(op, AmplitudeEncoding):
            flat = _amplitude_state(op, x, n, cdtype)
            continue
        assert isinstance(op, Gate)
        if len(op.qubits) == 1:
            q = op.qubits[0]
            gate = _gate_tensor(op, x, weights, cdtype)
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
            flat = _sample_kraus(flat, n, op.qubits, two, generator, two_effects)
    for q in sorted(pending):
        flat = flush(flat, q)
    return flat.expand(batch, -1) if flat.shape[0] != batch else flat


def parameter_shift(
    fn: Callable[[torch.Tensor], torch.Tensor], weights: torch.Tensor, *, shift: float = math.pi / 2
) -> torch.Tensor:
    """Jacobian of ``fn`` with respect to ``weights`` by the parameter-shift rule.

    ``d f / d w_k = [f(w + s e_k) - f(w - s e_k)] / (2 sin s)``, exact for circuits in which
    every weight is the angle of one gate ``exp(-i w P / 2)`` with a Pauli ``P`` (Mitarai et
    al., PRA 98, 032309 (2018); Schuld et al., PRA 99, 032331 (2019)): what hardware runs.

    Returns:
        ``[*fn(weights).shape, n_weights]``.
    """
    if not 0 < abs(shift) < math.pi:
        raise ValueError(f"shift={shift!r} must be in (0, pi) in magnitude, e.g. pi/2")
    cols = []
    with torch.no_grad():
        for k in range(weights.numel()):
            step = torch.zeros_like(weights).flatten()
            step[k] = shift
            step = step.view_as(weights)
            cols.append((fn(weights + step) - fn(weights - step)) / (2 * math.sin(shift)))
    return torch.stack(cols, -1)
