"""Monte-Carlo quantum-jump trajectories of a noisy circuit.

``T`` trajectories of a sample are simulated as an :class:`Ensemble`: the distinct
states among them, each with the number of trajectories it stands for. All trajectories
start in one state; at every channel each of a state's copies draws its own branch, and
the copies that drew the same branches stay one state. Drawing ``T`` trajectories this way
is exactly drawing ``T`` independent ones, but the trajectories without a jump (most of
them on current hardware) are simulated once, so a sample costs about
``1 + T * P_jump`` statevector simulations instead of ``T`` (``P_jump``: the probability of
at least one jump, bounded by :func:`jump_probability`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import torch

from ..circuit import CircuitSpec, Gate
from .channels import GateNoise, compose_kraus, superoperator
from .density import _gates, _preparation
from .gates import _complex_dtype, gate_matrix
from .kernels import _apply_flat, _apply_singles, _permute
from .statevector import _constant, _Stage, _stage_angles

__all__ = [
    "Ensemble",
    "jump_probability",
    "run_trajectories",
    "sample_ensemble",
    "sample_trajectories",
]


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


def _draw_copies(
    cdf: torch.Tensor, counts: np.ndarray, generator: torch.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[r]`` independent draws of an index from each row of the cumulative weights
    ``cdf`` ``[R, K]`` (unnormalised, non-decreasing).

    Uniform draws lie in ``(0, 1]``, so no zero-weight index is chosen. Rows are drawn in
    groups of similar counts (within a factor 2) to bound the padding.

    Returns:
        ``(row [C], index [C])`` of the ``C = sum(counts)`` draws.
    """
    rows_out, index_out = [], []
    group = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    for level in np.unique(group):
        rows = np.nonzero(group == level)[0]
        wanted = counts[rows]
        top = int(wanted.max())
        sub = cdf if rows.size == cdf.shape[0] else cdf[torch.from_numpy(rows).to(cdf.device)]
        u = 1 - torch.rand(rows.size, top, generator=generator, dtype=cdf.dtype, device=cdf.device)
        index = torch.searchsorted(sub, u * sub[:, -1:]).clamp_max(cdf.shape[1] - 1)
        valid = np.arange(top)[None, :] < wanted[:, None]
        rows_out.append(np.broadcast_to(rows[:, None], valid.shape)[valid])
        index_out.append(index.cpu().numpy()[valid])
    return np.concatenate(rows_out), np.concatenate(index_out)


def _group(parent: np.ndarray, choices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(parent, choices [C, m])`` rows of the drawn copies: ``(parent [R'],
    choices [R', m], count [R'])``, sorted by parent."""
    keys, count = np.unique(np.column_stack([parent, choices]), axis=0, return_counts=True)
    return keys[:, 0], keys[:, 1:], count


def _split_counts(
    weight: torch.Tensor, counts: np.ndarray, generator: torch.Generator | None
) -> np.ndarray:
    """Multinomial split ``[R, K]`` of ``counts[r]`` copies over the branches of weights
    ``weight`` ``[R, K]`` (unnormalised), drawn as one binomial per branch: branch ``k`` takes
    ``Binomial(remaining, p_k / (1 - p_1 - ... - p_{k-1}))`` of the remaining copies."""
    p = weight.double().clamp_min(0.0)
    p = p / p.sum(1, keepdim=True)
    remaining = torch.from_numpy(counts).to(p.device, torch.float64)
    rest = torch.ones_like(remaining)
    out = []
    for k in range(p.shape[1] - 1):
        share = (p[:, k] / rest.clamp_min(1e-300)).clamp(0.0, 1.0)
        taken = torch.binomial(remaining, share, generator=generator)
        out.append(taken)
        remaining, rest = remaining - taken, rest - p[:, k]
    out.append(remaining)
    return torch.stack(out, 1).cpu().numpy().astype(np.int64)


def _sample_kraus(
    flat: torch.Tensor,
    n: int,
    qubits: tuple[int, ...],
    kraus: torch.Tensor,
    generator: torch.Generator | None,
    counts: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None, np.ndarray | None]:
    """One quantum-jump step of any channel: apply ``K_k / |K_k psi|`` with probability
    ``|K_k psi|^2`` (from the reduced density matrix of the touched qubits).

    With ``counts`` (trajectories per row, see :class:`Ensemble`) each copy draws its own
    branch and the copies of a row that drew the same branch become one row.

    Returns:
        ``(states, log |K_k psi|^2 of the chosen branches, parent row of each new row,
        its count)``; parent and count are None when every row keeps one copy in place.
    """
    weight = torch.einsum("kij,bji->bk", kraus.mH @ kraus, _reduced(flat, n, qubits)).real
    cdf = weight.detach().clamp_min(0.0).cumsum(-1)
    parent = count = None
    if counts is None or bool((counts == 1).all()):
        choice_np = _draw_copies(cdf, np.ones(flat.shape[0], dtype=np.int64), generator)[1]
        rows = torch.arange(flat.shape[0], device=flat.device)
    else:
        split = _split_counts(weight.detach(), counts, generator)
        parent, choice_np = np.nonzero(split)
        count = split[parent, choice_np]
        rows = torch.from_numpy(parent).to(flat.device)
        flat = flat.index_select(0, rows)
    choice = torch.from_numpy(choice_np).to(flat.device)
    norm = weight[rows, choice].clamp_min(torch.finfo(weight.dtype).tiny).sqrt()
    out = _apply_flat(flat, n, qubits, kraus[choice] / norm[:, None, None].to(kraus.dtype))
    return out, 2 * norm.log(), parent, count


_WALK_TABLE = 2**16
"""Largest ``copies x branches`` table a run's branch draw builds per channel; above it
the draw searches the cumulative probabilities per local basis state instead."""

_SEGMENT_QUBITS = 12
"""Largest circuit whose runs apply their common branches as one cached gather [qubits]
(the cache holds a few index and factor vectors of ``2^n`` entries per run layout)."""


@dataclasses.dataclass(frozen=True)
class _Monomial:
    """A Kraus set whose operators have at most one non-zero entry per column (every
    channel of :func:`~physnn.quantum.sim.channels.build_noise`: Paulis times diagonals,
    and ``|0><1|`` jumps), as tables over the local basis states ``j`` of its qubits.

    Such operators map basis states to basis states without interference, so the branch
    probabilities are ``P(k) = sum_j p_j weight[j, k]``: drawing a basis state ``j`` from the
    state's outcome distribution and then ``k`` from ``weight[j]`` draws the branch exactly,
    and ``target[k, j]`` is where ``j`` goes, which lets later channels of the same run be
    drawn from the same basis state.
    """

    kraus: torch.Tensor
    """``[K, d, d]`` operators in the simulation's dtype and device."""
    prob: np.ndarray
    """``[d, K]`` branch probabilities ``|K_k e_j|^2`` of local basis state ``j``."""
    cdf: np.ndarray
    """``[d, K]`` their cumulative sum over ``k`` (ends at 1: trace preserving)."""
    jump_cdf: np.ndarray
    """``[d, K]`` cumulative probabilities of the branches other than :attr:`base`."""
    target: np.ndarray
    """``[K, d]`` row of the non-zero entry of column ``j`` of ``K_k`` (``j`` if none)."""
    base: int
    """The most probable operator that is a generalised permutation (one non-zero per row
    and column; the no-jump branch), or -1 when there is none."""
    gather: tuple[tuple[int, ...], tuple[complex, ...]]
    """The base operator as ``(K e)[r] = value[r] * e[source[r]]``: ``(source, value)``."""


def _monomial(kraus: torch.Tensor, cdtype: torch.dtype, device: torch.device) -> _Monomial | None:
    """Tables of a monomial Kraus set, None when an operator has two non-zeros in a column."""
    weight = kraus.abs().square()  # [K, d (row), d (column)]
    if bool(((weight > 0).sum(1) > 1).any()):
        return None
    nonzero = weight.flatten(1).sum(1) > 0
    kraus, weight = kraus[nonzero], weight[nonzero]
    column = weight.sum(1).T.numpy()  # [d, K]
    prob = column / column.sum(1, keepdims=True)
    cdf = np.cumsum(prob, 1)
    target = np.where(
        weight.sum(1).numpy() > 0, weight.argmax(1).numpy(), np.arange(weight.shape[-1])
    )
    permutation = ((weight > 0).sum(2) == 1).all(1) & ((weight > 0).sum(1) == 1).all(1)
    score = np.where(permutation.numpy(), column.mean(0), -1.0)
    base = int(score.argmax()) if score.max() >= 0 else -1
    source = weight[base].argmax(1) if base >= 0 else torch.zeros(0, dtype=torch.int64)
    value = kraus[base][torch.arange(len(source)), source] if base >= 0 else kraus[:0, 0, 0]
    gather = (tuple(source.tolist()), tuple(complex(v) for v in value.tolist()))
    jump = prob.copy()
    if base >= 0:
        jump[:, base] = 0.0
    jump_cdf = np.cumsum(jump, 1)
    return _Monomial(kraus.to(cdtype).to(device), prob, cdf, jump_cdf, target, base, gather)


def _local(basis: np.ndarray, qubits: tuple[int, ...]) -> np.ndarray:
    """Local basis index (little-endian over ``qubits``) of full basis states ``basis``."""
    local = np.zeros_like(basis)
    for i, q in enumerate(qubits):
        local |= ((basis >> q) & 1) << i
    return local


def _move(basis: np.ndarray, qubits: tuple[int, ...], local: np.ndarray) -> np.ndarray:
    """``basis`` with the bits of ``qubits`` replaced by the local index ``local``."""
    for i, q in enumerate(qubits):
        basis = (basis & ~(1 << q)) | (((local >> i) & 1) << q)
    return basis


def _through_gate(basis: np.ndarray, gate: tuple[str, int, int]) -> np.ndarray:
    """Where a run's CX or CZ step ``(name, control, target)`` takes the basis states
    ``basis`` (a CZ changes only phases)."""
    name, c, t = gate
    return basis ^ (((basis >> c) & 1) << t) if name == "cx" else basis


_Key = tuple[str, int, int] | tuple[tuple[int, ...], tuple[tuple[int, ...], tuple[complex, ...]]]
"""A run step in a segment layout: a CX/CZ ``(name, control, target)`` or the base
operator of a channel ``(qubits, (source, value))``."""


@functools.lru_cache(maxsize=512)
def _segment(
    n: int, layout: tuple[_Key, ...], cdtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of the steps ``layout`` as ``(S psi)[j] = factor[j] psi[index[j]]``:
    ``(index [2^n], factor [2^n])`` (every step is a generalised permutation)."""
    full = np.arange(2**n)
    index, factor = full.copy(), np.ones(2**n, dtype=np.complex128)
    for step in layout:
        if isinstance(step[0], str):
            name, c, t = step
            source = _through_gate(full, (name, c, t))
            value = np.ones(2**n) if name == "cx" else 1.0 - 2.0 * ((full >> c) & (full >> t) & 1)
        else:
            qubits, (local_source, local_value) = step
            local = _local(full, qubits)
            source = _move(full, qubits, np.asarray(local_source)[local])
            value = np.asarray(local_value)[local]
        index, factor = index[source], value * factor[source]
    return (
        torch.from_numpy(index).to(device),
        torch.from_numpy(factor).to(cdtype).to(device),
    )


def _apply_segment(flat: torch.Tensor, n: int, layout: tuple[_Key, ...]) -> torch.Tensor:
    if not layout:
        return flat
    index, factor = _segment(n, layout, flat.dtype, flat.device)
    return flat.index_select(1, index) * factor


class _Run:
    """Consecutive monomial operations (CX/CZ gates and monomial noise channels) waiting to
    be applied; their branches are drawn together when the run is flushed, from one basis
    state drawn from the run's initial state and carried through the run (exact, see
    :class:`_Monomial`).

    Single-qubit gates on qubits the run does not touch commute with it and are applied
    before it; a gate on a touched qubit flushes the run first. Up to
    :data:`_SEGMENT_QUBITS` qubits, the states whose branches are all the base ones (most
    of them: jumps are rare) get the whole run as one cached gather, and only the others
    are stepped through their jumps.
    """

    def __init__(self, n: int, generator: torch.Generator | None) -> None:
        self.n = n
        self.generator = generator
        self.ops: list[tuple[str, int, int] | tuple[tuple[int, ...], _Monomial]] = []
        self.qubits: set[int] = set()

    def gate(self, name: str, control: int, target: int) -> None:
        self.ops.append((name, control, target))
        self.qubits.update((control, target))

    def channel(self, qubits: tuple[int, ...], channel: _Monomial) -> None:
        self.ops.append((qubits, channel))
        self.qubits.update(qubits)

    def _draw(
        self, flat: torch.Tensor, counts: np.ndarray, bases: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Branches of the run's channels (in order) for ``counts[r]`` copies of each row.

        Rows of one copy draw a basis state and walk it through the run; rows of several
        (up to :data:`_SEGMENT_QUBITS` qubits, every channel with a base branch) draw the
        number of jump-free copies and the others' first jump (:meth:`_first_jumps`).

        Returns:
            ``(jump-free copies per row [R], row of each other copy [J], its branches
            [J, channels])``.
        """
        probs = flat.detach().abs().square().double()
        base_count = np.zeros(flat.shape[0], dtype=np.int64)
        single = counts == 1
        if self.n > _SEGMENT_QUBITS or bool((bases < 0).any()):
            single[:] = True
        rows_out, choices_out = [], []
        for rows, first in ((np.nonzero(single)[0], False), (np.nonzero(~single)[0], True)):
            if not rows.size:
                continue
            sub = probs if rows.size == probs.shape[0] else probs[torch.from_numpy(rows)]
            if first:
                free, row, basis, start = self._first_jumps(sub, counts[rows])
            else:
                row, basis = _draw_copies(sub.cumsum(1), counts[rows], self.generator)
                start, free = None, np.zeros(rows.size, dtype=np.int64)
            choices = self._walk(basis, start, probs.device)
            if start is None:
                jumped = (choices != bases).any(1)
                free += np.bincount(row[~jumped], minlength=rows.size)
                row, choices = row[jumped], choices[jumped]
            base_count[rows] = free
            rows_out.append(rows[row])
            choices_out.append(choices)
        width = len(bases)
        if not rows_out:
            return base_count, np.zeros(0, dtype=np.int64), np.zeros((0, width), dtype=np.int64)
        return base_count, np.concatenate(rows_out), np.concatenate(choices_out)

    def _first_jumps(
        self, probs: torch.Tensor, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Jump-free copies and first jumps of ``counts[r]`` copies of each row.

        Along the jump-free path every basis state ``j`` moves deterministically (the base
        operators are generalised permutations), so the probability ``F[j, k]`` that a copy
        starting in ``j`` first jumps at channel ``k`` and the jump-free probability
        ``P0[j]`` are products of the channels' base weights. A row's jump-free copies are
        ``Binomial(count, sum_j p_j P0[j])``; each other copy draws ``(j, k)`` from
        ``p_j F[j, k]``, exactly the law of a copy conditioned on a jump.

        Returns:
            ``(jump-free copies [R], row [J], initial basis state [J], first jump [J])``.
        """
        size = 2**self.n
        basis = np.arange(size)
        alive = np.ones(size)
        first: list[np.ndarray] = []
        for op in self.ops:
            if isinstance(op[0], str):
                basis = _through_gate(basis, op)
                continue
            qubits, channel = op
            local = _local(basis, qubits)
            stay = channel.prob[local, channel.base]
            first.append(alive * (1 - stay))
            alive = alive * stay
            basis = _move(basis, qubits, channel.target[channel.base, local])
        table = torch.from_numpy(np.stack(first, 1)).to(probs.device)  # [2^n, channels]
        free_prob = probs @ torch.from_numpy(alive).to(probs.device)
        total = torch.from_numpy(counts).to(probs.device, torch.float64)
        free = torch.binomial(total, free_prob.clamp(0.0, 1.0), generator=self.generator)
        joint = (probs[:, :, None] * table).flatten(1).cumsum(1)
        jumps = (total - free).cpu().numpy().astype(np.int64)
        jumps[joint[:, -1].cpu().numpy() <= 0] = 0
        row, index = _draw_copies(joint, jumps, self.generator)
        width = table.shape[1]
        return counts - jumps, row, index // width, index % width

    def _walk(
        self, basis: np.ndarray, start: np.ndarray | None, device: torch.device
    ) -> np.ndarray:
        """Branches ``[C, channels]`` of copies starting in ``basis`` ``[C]``: each channel's
        branch drawn from ``|K_k e_j|^2`` of the copy's current basis state ``j`` (the basis
        state moves with the run's CX gates and branches). With ``start`` the copies take
        the base branch before channel ``start[c]`` and a jump (any other branch) there."""
        channels = sum(1 for op in self.ops if not isinstance(op[0], str))
        # draws in (0, 1], so that no zero-probability branch is chosen
        u = torch.rand(channels, basis.size, generator=self.generator, device=device)
        draws = 1 - u.double().cpu().numpy()
        choices = np.zeros((basis.size, channels), dtype=np.int64)
        column = 0
        for op in self.ops:
            if isinstance(op[0], str):
                basis = _through_gate(basis, op)
                continue
            qubits, channel = op
            local = _local(basis, qubits)
            jump = None if start is None else start == column
            if basis.size * channel.cdf.shape[1] <= _WALK_TABLE:
                cdf = channel.cdf[local]  # [C, K]
                if jump is not None:
                    cdf = np.where(jump[:, None], channel.jump_cdf[local], cdf)
                choice = (cdf < draws[column, :, None] * cdf[:, -1:]).sum(1)
            else:  # one search per local basis state and table
                choice = np.zeros(basis.size, dtype=np.int64)
                for j in np.unique(local):
                    at = local == j
                    groups = [(channel.cdf[j], at)]
                    if jump is not None:
                        groups = [(channel.cdf[j], at & ~jump), (channel.jump_cdf[j], at & jump)]
                    for table, pick in groups:
                        choice[pick] = np.searchsorted(table, draws[column, pick] * table[-1])
            np.minimum(choice, channel.cdf.shape[1] - 1, out=choice)
            if start is not None:
                choice[start > column] = channel.base
            choices[:, column] = choice
            basis = _move(basis, qubits, channel.target[choice, local])
            column += 1
        return choices

    def _stepwise(self, flat: torch.Tensor, choices: np.ndarray, segments: bool) -> torch.Tensor:
        """Apply the run with the drawn branches, step by step; with ``segments`` the
        stretches in which every state takes the base branch are one cached gather."""
        layout: list[_Key] = []
        column = 0
        for op in self.ops:
            if isinstance(op[0], str):
                layout.append(op)
                continue
            qubits, channel = op
            choice = choices[:, column]
            column += 1
            if segments and bool((choice == channel.base).all()):
                layout.append((qubits, channel.gather))
                continue
            flat, layout = self._apply_layout(flat, layout, segments), []
            flat = self._apply_branches(flat, qubits, channel, choice)
        return self._apply_layout(flat, layout, segments)

    def _jumped(self, flat: torch.Tensor, choices: np.ndarray) -> torch.Tensor:
        """Apply the run to rows whose branches ``choices`` leave the base ones at a few
        channels: the rows are grouped by their next jump, and each group's stretch of base
        branches up to it is one cached gather (a row costs about one gather per jump
        instead of one step per channel)."""
        columns: list[int] = []
        monomials: list[_Monomial] = []
        for i, op in enumerate(self.ops):
            if isinstance(op[1], _Monomial):
                columns.append(i)
                monomials.append(op[1])
        bases = np.array([channel.base for channel in monomials])

        def base_layout(start: int, stop: int) -> tuple[_Key, ...]:
            layout: list[_Key] = []
            for op in self.ops[start:stop]:
                if isinstance(op[1], _Monomial):
                    layout.append((op[0], op[1].gather))
                else:
                    layout.append(op)
            return tuple(layout)

        def walk(state: torch.Tensor, branches: np.ndarray, column: int) -> torch.Tensor:
            start = columns[column - 1] + 1 if column else 0
            off = branches[:, column:] != bases[column:]
            if not off.any():
                return _apply_segment(state, self.n, base_layout(start, len(self.ops)))
            nxt = np.where(off.any(1), column + off.argmax(1), -1)
            parts, order = [], []
            for k in np.unique(nxt):
                at = np.nonzero(nxt == k)[0]
                sub = state if at.size == state.shape[0] else state[torch.from_numpy(at)]
                if k < 0:
                    sub = _apply_segment(sub, self.n, base_layout(start, len(self.ops)))
                else:
                    qubits = self.ops[columns[k]][0]
                    assert isinstance(qubits, tuple)
                    sub = _apply_segment(sub, self.n, base_layout(start, columns[k]))
                    chosen = torch.from_numpy(branches[at, k]).to(state.device)
                    kraus = monomials[k].kraus[chosen]
                    sub = walk(_apply_flat(sub, self.n, qubits, kraus), branches[at], k + 1)
                if at.size == state.shape[0]:
                    return sub
                parts.append(sub)
                order.append(at)
            inverse = torch.from_numpy(np.argsort(np.concatenate(order))).to(state.device)
            return torch.cat(parts).index_select(0, inverse)

        return walk(flat, choices, 0)

    def _apply_branches(
        self, flat: torch.Tensor, qubits: tuple[int, ...], channel: _Monomial, choice: np.ndarray
    ) -> torch.Tensor:
        """Apply ``K_choice[r]`` to each row ``r``: the most common branch as one shared
        matrix to every row, the others per row to the rows that took them."""
        values, counts = np.unique(choice, return_counts=True)
        common = int(values[counts.argmax()])
        out = _apply_flat(flat, self.n, qubits, channel.kraus[common])
        other = np.nonzero(choice != common)[0]
        if other.size:
            rows = torch.from_numpy(other).to(flat.device)
            chosen = torch.from_numpy(choice[other]).to(flat.device)
            sub = _apply_flat(flat.index_select(0, rows), self.n, qubits, channel.kraus[chosen])
            out = out.index_copy(0, rows, sub)
        return out

    def _apply_layout(self, flat: torch.Tensor, layout: list[_Key], segments: bool) -> torch.Tensor:
        if segments:
            return _apply_segment(flat, self.n, tuple(layout))
        return _permute(flat, self.n, layout) if layout else flat  # type: ignore[arg-type]

    def flush(
        self, flat: torch.Tensor, counts: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None, np.ndarray]:
        """Apply the run to normalised states ``flat`` standing for ``counts`` trajectories
        each (see :class:`Ensemble`).

        Returns:
            ``(states, log_prob, parent, counts)``: the normalised new states, the
            log-probability ``log |K_run psi|^2`` of their drawn branches (None if the run
            has no channel), the row each new state came from (None: same rows in place)
            and the trajectories each stands for.
        """
        channels = [op[1] for op in self.ops if isinstance(op[1], _Monomial)]
        if not channels:
            flat = _permute(flat, self.n, self.ops)  # type: ignore[arg-type]
            self.ops, self.qubits = [], set()
            return flat, None, None, counts
        bases = np.array([channel.base for channel in channels])
        base_count, jump_row, jump_choices = self._draw(flat, counts, bases)
        segments = self.n <= _SEGMENT_QUBITS and bool((bases >= 0).all())
        parent: np.ndarray | None = None
        if bool((counts == 1).all()):
            # one copy per row: the rows stay in place (the jumped ones are redone)
            if not segments:
                every = np.broadcast_to(bases, (flat.shape[0], bases.size)).copy()
                every[jump_row] = jump_choices
                out = self._stepwise(flat, every, segments=False)
            else:
                out = self._stepwise(flat, bases[None], segments=True)
                if jump_row.size:
                    rows = torch.from_numpy(jump_row).to(flat.device)
                    sub = self._jumped(flat.index_select(0, rows), jump_choices)
                    out = out.index_copy(0, rows, sub)
        else:
            kept = np.nonzero(base_count)[0]
            moved, branches, moved_count = _group(jump_row, jump_choices)
            parent = np.concatenate([kept, moved])
            counts = np.concatenate([base_count[kept], moved_count])
            if not segments:
                every = np.concatenate([np.broadcast_to(bases, (kept.size, bases.size)), branches])
                rows = torch.from_numpy(parent).to(flat.device)
                out = self._stepwise(flat.index_select(0, rows), every, segments=False)
            else:
                stay = flat if kept.size == flat.shape[0] else flat[torch.from_numpy(kept)]
                parts = [self._stepwise(stay, bases[None], segments=True)]
                if moved.size:
                    rows = torch.from_numpy(moved).to(flat.device)
                    parts.append(self._jumped(flat.index_select(0, rows), branches))
                out = torch.cat(parts)
        self.ops, self.qubits = [], set()
        norm2 = out.real.square().sum(1) + out.imag.square().sum(1)
        norm2 = norm2.clamp_min(torch.finfo(norm2.dtype).tiny)
        return out / norm2.sqrt()[:, None].to(out.dtype), norm2.log(), parent, counts


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


def _phase_covariant(kraus: torch.Tensor) -> bool:
    """Whether the single-qubit channel ``kraus`` ``[K, 2, 2]`` commutes with Z rotations
    (checked on the superoperator at a generic angle)."""
    rz = torch.diag(torch.tensor([np.exp(-0.6j), np.exp(0.6j)], dtype=kraus.dtype))
    rotation = torch.kron(rz, rz.conj())
    channel = superoperator(kraus)
    return bool(torch.allclose(channel @ rotation, rotation @ channel, atol=1e-12))


_Channels = dict[int, tuple[torch.Tensor | None, "_Monomial | None", bool]]


def _channels(noise: GateNoise, cdtype: torch.dtype, device: torch.device) -> _Channels:
    """The composed channel after a single-qubit gate (key 1) and after a CX/CZ (key 2):
    ``(Kraus operators, monomial tables, phase covariant)``, cached per noise model."""
    sets = (*noise.one_qubit, *noise.two_qubit, *noise.two_qubit_each)
    key = (
        tuple((k.shape, k.detach().cpu().numpy().tobytes()) for k in sets),
        (len(noise.one_qubit), len(noise.two_qubit)),
        cdtype,
        device,
    )
    if key not in _CHANNEL_CACHE:
        if len(_CHANNEL_CACHE) >= 32:
            _CHANNEL_CACHE.pop(next(iter(_CHANNEL_CACHE)))
        _CHANNEL_CACHE[key] = _build_channels(noise, cdtype, device)
    return _CHANNEL_CACHE[key]


_CHANNEL_CACHE: dict[object, _Channels] = {}


def _build_channels(noise: GateNoise, cdtype: torch.dtype, device: torch.device) -> _Channels:
    eye = torch.eye(2, dtype=torch.complex128)
    per_qubit = [torch.kron(eye, k) for k in noise.two_qubit_each]
    per_qubit += [torch.kron(k, eye) for k in noise.two_qubit_each]
    one = compose_kraus(noise.one_qubit)
    two = compose_kraus([*noise.two_qubit, *per_qubit])
    out: _Channels = {}
    for size, k in ((1, one), (2, two)):
        if k is None:
            out[size] = (None, None, True)
        else:
            covariant = size == 2 or _phase_covariant(k)
            out[size] = (k.to(cdtype).to(device), _monomial(k, cdtype, device), covariant)
    return out


def _gate_matrices(
    gates: list[Gate],
    x: torch.Tensor,
    weights: torch.Tensor,
    cdtype: torch.dtype,
    prepared: torch.Tensor | None,
) -> list[torch.Tensor]:
    """Matrices of the single-qubit ``gates`` (``[2, 2]`` shared or ``[B, 2, 2]`` per sample),
    built with one batched call per gate name and angle source (None for two-qubit gates)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, gate in enumerate(gates):
        if len(gate.qubits) == 1:
            groups.setdefault((gate.name, gate.source), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(gates)
    for (name, source), members in groups.items():
        if source == "none":
            fixed = gate_matrix(name, dtype=cdtype, device=x.device)
            for i in members:
                out[i] = fixed
            continue
        if source == "preparation":
            assert prepared is not None
            cols = [gates[i].index for i in members]
            angles = prepared[:, _constant(tuple(cols), torch.int64, x.device)]
        else:
            stage = _Stage(
                name,
                source,
                tuple(gates[i].qubits[0] for i in members),
                tuple(gates[i].index for i in members),
                tuple(gates[i].scale for i in members),
            )
            angles = _stage_angles(stage, x, weights)
        mats = gate_matrix(name, angles, dtype=cdtype)
        for j, i in enumerate(members):
            out[i] = mats[..., j, :, :]
    return out  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """``T`` trajectories per sample as distinct rows with multiplicities.

    Row ``r`` stands for ``counts[r]`` identical trajectories of sample ``origin[r]``; the
    rows of a sample are contiguous (sorted by ``origin``) and their counts add up to
    ``trajectories``. The average over a sample's trajectories of a per-row quantity is
    :meth:`mean`; :meth:`surrogate` adds the score-function term to its gradient and
    :meth:`shot_counts` measures the trajectories with shots spread across them.
    """

    values: torch.Tensor
    """Per-row values ``[R, ...]``: flat states from :func:`sample_ensemble`, outcome
    probabilities in the layers."""
    log_prob: torch.Tensor
    """Differentiable ``log P(path)`` of each row's branches ``[R]``."""
    counts: torch.Tensor
    """Trajectories each row stands for ``[R]`` (int64)."""
    origin: torch.Tensor
    """Sample of each row ``[R]`` (int64, non-decreasing)."""
    batch: int
    """Number of samples ``B``."""
    trajectories: int
    """Trajectories per sample ``T``."""
    readout: tuple[float, float] = (0.0, 0.0)
    """Assignment errors ``(p01, p10)`` of every qubit applied when the outcome
    probabilities :attr:`values` are measured (:meth:`probabilities`, :meth:`shot_counts`;
    see :func:`~physnn.quantum.sim.measure.apply_readout_error`)."""

    @classmethod
    def exact(cls, values: torch.Tensor) -> Ensemble:
        """One row per sample standing for its exact (density-matrix) value ``[B, ...]``."""
        batch = values.shape[0]
        index = torch.arange(batch, device=values.device)
        zero = torch.zeros(batch, dtype=values.real.dtype, device=values.device)
        return cls(values, zero, torch.ones_like(index), index, batch, 1)

    def replace(self, values: torch.Tensor) -> Ensemble:
        """The same trajectories with other per-row values ``[R, ...]``."""
        return dataclasses.replace(self, values=values)

    def mean(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """Average over each sample's ``T`` trajectories ``[B, ...]`` of ``values``
        (default :attr:`values`)."""
        values = self.values if values is None else values
        weight = (self.counts.to(values.dtype) / self.trajectories).view(
            -1, *[1] * (values.dim() - 1)
        )
        out = values.new_zeros(self.batch, *values.shape[1:])
        return out.index_add(0, self.origin, values * weight)

    def probabilities(self) -> torch.Tensor:
        """Measured outcome probabilities ``[B, D]``: the average of :attr:`values` over
        each sample's trajectories, with the readout errors."""
        from .measure import apply_readout_error

        mean = self.mean()
        return apply_readout_error(mean, round(math.log2(mean.shape[1])), *self.readout)

    def surrogate(self) -> Ensemble:
        """The values with the score-function term in their gradient: the value is
        unchanged, the gradient adds ``(f - b) grad log P`` with the leave-one-out baseline
        ``b`` (the mean of the sample's other ``T - 1`` trajectories, independent of this
        one), so :meth:`mean` has the unbiased gradient ``E[grad f + f grad log P]``."""
        if not self.log_prob.requires_grad:
            return self
        f = self.values.detach()
        total = self.mean(f)[self.origin] * self.trajectories
        count = self.trajectories
        baseline = (total - f) / (count - 1) if count > 1 else torch.zeros_like(f)
        score = (self.log_prob - self.log_prob.detach()).view(-1, *[1] * (f.dim() - 1))
        return self.replace(self.values + (f - baseline) * score.to(f.dtype))

    def shot_counts(self, shots: int, generator: torch.Generator | None) -> torch.Tensor:
        """Outcome counts ``[B, D]`` of ``shots`` measurements per sample of the outcome
        probabilities :attr:`values` ``[R, D]``, spread over the ``T <= shots``
        trajectories: each gets ``shots // T``, and ``shots % T`` of them (drawn without
        replacement) one more.

        With ``T = shots`` (one trajectory per shot) the counts are exactly a multinomial
        sample of the average (density-matrix) probabilities. With fewer, ``<Z>`` has the
        extra variance ``Var_traj(z) (1/T - 1/shots)``, at most ``(shots/T - 1)`` times the
        shot noise ``(1 - z^2) / shots`` (law of total variance: ``Var_traj <= 1 - z^2``).
        """
        from .measure import apply_readout_error, sample_counts

        count = self.trajectories
        if count > shots:
            raise ValueError(
                f"trajectories={count} exceeds shots={shots}; use at most one per shot"
            )
        device = self.values.device
        each = self.counts * (shots // count)
        extra = shots % count
        if extra:
            rank = torch.rand(self.batch, count, generator=generator, device=device).argsort(1)
            chosen = rank[:, :extra] + torch.arange(self.batch, device=device)[:, None] * count
            row = torch.searchsorted(self.counts.cumsum(0), chosen.flatten(), right=True)
            each = each + torch.bincount(row, minlength=each.shape[0])
        size = self.values.shape[1]
        n = round(math.log2(size))
        out = torch.zeros(self.batch, size, dtype=torch.float64, device=device)
        one = each == 1  # most rows with one shot per trajectory: one categorical draw each
        if bool(one.any()):
            rows = one.nonzero()[:, 0]
            cdf = self.values.detach()[rows].clamp_min(0.0).cumsum(1)
            index = _draw_copies(cdf, np.ones(rows.shape[0], dtype=np.int64), generator)[1]
            where = torch.from_numpy(index).to(device)
            p01, p10 = self.readout
            if p01 > 0 or p10 > 0:  # each reported bit flips with its assignment error
                u = torch.rand(n, where.shape[0], generator=generator, device=device)
                for q in range(n):
                    bit = (where >> q) & 1
                    flip = u[q] < torch.where(bit == 1, p10, p01)
                    where = where ^ (flip.long() << q)
            out.index_put_(
                (self.origin[rows], where), torch.ones_like(where, dtype=out.dtype), True
            )
        if not bool(one.all()):
            rows = (~one).nonzero()[:, 0]
            probs = apply_readout_error(self.values[rows], n, *self.readout)
            out.index_add_(
                0, self.origin[rows], sample_counts(probs, each[rows].double(), generator)
            )
        return out


def sample_trajectories(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
    fuse: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`run_trajectories`, also returning each trajectory's log-probability.

    The log-probability ``log P(path) = sum log |K_k psi|^2`` ``[B]`` is differentiable: the
    unbiased gradient of an average ``E[f]`` over trajectories is
    ``E[grad f + f grad log P]`` (the score-function term matters for state-dependent
    channels such as amplitude damping and relaxation; issue 13, item 2). See
    :func:`sample_ensemble` for the algorithm.

    Returns:
        ``(states [B, 2^n], log_prob [B])``.
    """
    ensemble = sample_ensemble(
        spec, x, weights, noise, trajectories=1, dtype=dtype, generator=generator, fuse=fuse
    )
    return ensemble.values, ensemble.log_prob


def sample_ensemble(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    trajectories: int,
    dtype: torch.dtype = torch.complex64,
    generator: torch.Generator | None = None,
    fuse: int = 4,
) -> Ensemble:
    """``trajectories`` independent quantum-jump trajectories of each row of ``x``, as the
    distinct states among them with their counts (see the module docstring).

    Channels whose Kraus operators are monomial (every channel of
    :func:`~physnn.quantum.sim.channels.build_noise`) wait in a run with the CX/CZ gates
    around them and are drawn together from one basis-state sample per trajectory when a
    single-qubit gate needs one of their qubits (:class:`_Run`); other channels are drawn
    on their own from the reduced density matrix of their qubits. Both draw the branches
    from the same distribution. Single-qubit gates wait until the state is needed and are
    then applied layer by layer as Kronecker products of up to ``fuse`` neighbouring
    qubits.

    Cost: each row costs one statevector simulation from where it branched; a sample has
    on average at most ``1 + trajectories * P_jump`` rows at the end
    (:func:`jump_probability`).

    Returns:
        The :class:`Ensemble` of flat normalised states ``[R, 2^n]``.
    """
    n = spec.n_qubits
    cdtype = _complex_dtype(dtype)
    batch = x.shape[0]
    flat = torch.zeros(batch, 2**n, dtype=cdtype, device=x.device)
    flat[:, 0] = 1
    channels = _channels(noise, cdtype, x.device)
    one = channels[1][0]
    log_prob = torch.zeros(batch, dtype=weights.dtype, device=x.device)
    counts = np.full(batch, trajectories, dtype=np.int64)
    origin = torch.arange(batch, device=x.device)
    in_place = True  # origin is still arange(batch)
    run = _Run(n, generator)
    # gates ready to be applied (their qubits untouched by the run queued before them)
    ready: list[tuple[int, torch.Tensor]] = []

    def branch(step: torch.Tensor | None, parent: np.ndarray | None) -> None:
        """Carry the rows' sample and log-probability to the new rows."""
        nonlocal log_prob, origin, in_place
        if parent is not None:
            rows = torch.from_numpy(parent).to(x.device)
            origin, log_prob, in_place = origin[rows], log_prob[rows], False
        if step is not None:
            log_prob = log_prob + step.to(log_prob.dtype)

    def per_row(mat: torch.Tensor) -> torch.Tensor:
        """A per-sample gate matrix ``[B, 2, 2]`` for the current rows."""
        if mat.dim() == 2 or mat.shape[0] == 1 or in_place:
            return mat
        return mat.index_select(0, origin)

    def settle(state: torch.Tensor) -> torch.Tensor:
        """Apply the ready gates, then the run."""
        nonlocal ready, counts
        if ready:
            gates = [(q, per_row(mat)) for q, mat in ready]
            state, ready = _apply_singles(state, n, gates, fuse), []
        state, step, parent, counts = run.flush(state, counts)
        branch(step, parent)
        return state

    def channel(state: torch.Tensor, qubits: tuple[int, ...]) -> torch.Tensor:
        nonlocal counts
        kraus, monomial, _ = channels[len(qubits)]
        if kraus is None:
            return state
        if monomial is not None:
            run.channel(qubits, monomial)
            return state
        state = settle(state)
        state, step, parent, new = _sample_kraus(state, n, qubits, kraus, generator, counts)
        counts = counts if new is None else new
        branch(step, parent)
        return state

    # Single-qubit gates wait per qubit until the next operation on that qubit, so runs of
    # gates become one matrix. A virtual RZ/P after a noisy gate joins it before the channel
    # when the channel commutes with Z rotations (phase covariance: depolarising, amplitude
    # and phase damping, relaxation to |0>), which leaves the channel unchanged.
    covariant = channels[1][2]
    pending: dict[int, tuple[torch.Tensor, bool]] = {}

    def flush(state: torch.Tensor, q: int) -> torch.Tensor:
        mat, noisy = pending.pop(q)
        if q in run.qubits:
            state = settle(state)
        ready.append((q, mat))
        return channel(state, (q,)) if noisy else state

    gates = _gates(spec)
    mats = _gate_matrices(gates, x, weights, cdtype, _preparation(spec, x))
    for op, gate in zip(gates, mats, strict=True):
        if len(op.qubits) == 1:
            q = op.qubits[0]
            physical = one is not None and op.name not in noise.virtual
            if q in pending and pending[q][1] and (physical or not covariant):
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
        run.gate(op.name, op.qubits[0], op.qubits[1])
        flat = channel(flat, op.qubits)
    for q in sorted(pending):
        flat = flush(flat, q)
    flat = settle(flat)
    if flat.shape[0] != origin.shape[0]:
        flat = flat.expand(origin.shape[0], -1)
    order = torch.argsort(origin, stable=True)
    return Ensemble(
        flat[order],
        log_prob[order],
        torch.from_numpy(counts).to(x.device)[order],
        origin[order],
        batch,
        trajectories,
    )
