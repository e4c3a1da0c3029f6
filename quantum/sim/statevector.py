"""Exact, fused statevector simulation of a compiled circuit."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch

from ..circuit import AmplitudeEncoding, CircuitSpec, Gate, Op, ZZPhase
from .gates import _complex_dtype, gate_matrix
from .kernels import _apply_local, _permute

# -- angles ---------------------------------------------------------------------------------


def _gate_tensor(
    gate: Gate,
    x: torch.Tensor,
    weights: torch.Tensor,
    cdtype: torch.dtype,
    prepared: torch.Tensor | None = None,
) -> torch.Tensor:
    """Matrix of one gate: ``[2, 2]``/``[4, 4]`` (fixed or weight) or ``[B, 2, 2]`` (data;
    ``prepared`` holds the state-preparation angles of an amplitude encoding)."""
    if gate.source == "none":
        return gate_matrix(gate.name, dtype=cdtype, device=x.device)
    if gate.source == "preparation":
        assert prepared is not None and isinstance(gate.index, int)
        return gate_matrix(gate.name, prepared[:, gate.index], dtype=cdtype)
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


def _safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``atan2(y, x)`` that is 0 with a zero gradient where ``x = y = 0`` (zero padding)."""
    zero = (x == 0) & (y == 0)
    return torch.where(zero, torch.zeros_like(x), torch.atan2(y, torch.where(zero, 1.0, x)))


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last dimension with a zero gradient at 0."""
    sq = v.square().sum(-1)
    zero = sq == 0
    return torch.where(zero, torch.zeros_like(sq), torch.where(zero, 1.0, sq).sqrt())


def preparation_angles(op: AmplitudeEncoding, x: torch.Tensor) -> torch.Tensor:
    """RY angles ``[B, 2^k - 1]`` [rad] of the gates of
    :func:`~physnn.quantum.circuit.preparation_gates` that prepare ``x`` (normalised,
    zero-padded; an all-zero sample gives ``|0>``).

    Level ``j`` (target qubit ``t = k-1-j``) needs, for every pattern ``c`` of the qubits
    above, ``theta_c = 2 atan2(|a_{c,1}|, |a_{c,0}|)`` with ``a_{c,b}`` the amplitudes with
    bit ``t = b`` (signed amplitudes at ``t = 0``, which also sets the signs); the Gray-code
    CNOT ladder realises ``theta = S alpha`` with ``S_ci = (-1)^popcount(c & gray(i))``, so
    ``alpha = S^T theta / 2^j``.
    """
    k = op.n_qubits
    amp = _amplitude_state(op, x, k, x.dtype if not x.is_complex() else x.real.dtype).real
    batch = amp.shape[0]
    out = []
    for j in range(k):
        t = k - 1 - j
        view = amp.reshape(batch, 2**j, 2, 2**t)
        if t == 0:
            theta = 2 * _safe_atan2(view[:, :, 1, 0], view[:, :, 0, 0])
        else:
            theta = 2 * _safe_atan2(_safe_norm(view[:, :, 1]), _safe_norm(view[:, :, 0]))
        gray = [i ^ (i >> 1) for i in range(2**j)]
        signs = torch.tensor(
            [[(-1.0) ** bin(c & g).count("1") for g in gray] for c in range(2**j)],
            dtype=theta.dtype,
            device=theta.device,
        )
        out.append(theta @ signs / 2**j)
    return torch.cat(out, 1)


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


def recorded_states(spec: CircuitSpec, fuse: int = 4) -> int:
    """Full states autograd keeps for the backward pass of :func:`run_statevector`.

    While the state is a product state nothing of full size is kept; afterwards each
    fused chunk of shared gates keeps its input, per-sample gates (data encoding) keep one
    input per qubit, a ZZ phase keeps the state and the phases, an amplitude encoding its
    amplitudes; CX/CZ permutations keep only indices.
    """
    count, product = 0, True
    for seg in _compile(spec):
        if seg.kind == "local":
            if product:
                continue
            touched = sorted({q for st in seg.stages for q in st.qubits})
            if any(st.source not in ("weight", "none") for st in seg.stages):
                count += len(touched)
            else:
                while touched:
                    touched = [q for q in touched if q >= touched[0] + fuse]
                    count += 1
            continue
        if product:
            count, product = count + 1, False
        count += {"perm": 0, "zz": 2, "amplitude": 1}[seg.kind]
    return count


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
