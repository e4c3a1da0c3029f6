"""Measurement: outcome probabilities, Pauli-Z expectations, marginals, readout error,
shot sampling."""

from __future__ import annotations

import functools
import math

import torch

from .kernels import _apply_flat


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


def mitigate_readout_error(
    probs: torch.Tensor, n_qubits: int, p01: float, p10: float
) -> torch.Tensor:
    """Undo independent assignment errors: apply ``A^-1`` on every qubit (confusion-matrix
    inversion, e.g. qiskit-experiments' local readout mitigator).

    The result is a quasi-probability vector (it may have small negative entries with
    sampled frequencies); ``<Z>`` becomes ``(<Z>_read - p10 + p01) / (1 - p01 - p10)``.
    """
    if not p01 + p10 < 1.0:
        raise ValueError(f"p01 + p10 = {p01 + p10!r} must be < 1 for A to be invertible")
    if p01 == 0 and p10 == 0:
        return probs
    det = 1 - p01 - p10
    inverse = torch.tensor(
        [[(1 - p10) / det, -p10 / det], [-p01 / det, (1 - p01) / det]],
        dtype=probs.dtype,
        device=probs.device,
    )
    for q in range(n_qubits):
        probs = _apply_flat(probs, n_qubits, (q,), inverse)
    return probs


def sample_frequencies(
    probs: torch.Tensor, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Relative frequencies of ``shots`` measurements drawn from ``probs`` (multinomial).

    Args:
        probs: ``[batch, 2^n]`` outcome probabilities (each row sums to 1).
        shots: measurements per row (>= 1).
        generator: random generator (None: torch's global RNG).
    """
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ValueError(f"shots={shots!r} must be an int >= 1")
    per_row = torch.full((probs.shape[0],), float(shots), dtype=torch.float64, device=probs.device)
    return (sample_counts(probs, per_row, generator) / shots).to(probs.dtype)


def sample_counts(
    probs: torch.Tensor, shots: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Outcome counts ``[batch, 2^n]`` (float64) of ``shots[b]`` measurements of row ``b``.

    The multinomial over the ``2^n`` outcomes is drawn exactly by splitting the shots down
    the binary tree of outcome indices with one vectorised binomial per level, so the cost
    does not grow with the shots.

    Args:
        probs: ``[batch, 2^n]`` outcome probabilities (each row sums to 1).
        shots: ``[batch]`` whole numbers of measurements (>= 0) per row.
        generator: random generator (None: torch's global RNG).
    """
    if torch.any(probs < -1e-5) or torch.any(probs > 1 + 1e-5):
        raise ValueError(
            f"probs must lie in [0, 1], got values in [{float(probs.min()):.3g}, "
            f"{float(probs.max()):.3g}]; pass probabilities, not amplitudes"
        )
    if shots.shape != probs.shape[:1] or torch.any(shots < 0) or torch.any(shots != shots.round()):
        raise ValueError(
            f"shots must be whole numbers >= 0 shaped [{probs.shape[0]}], one per row of probs"
        )
    p = probs.detach().to(torch.float64).clamp_min(0.0)
    p = p / p.sum(-1, keepdim=True)
    batch, size = p.shape
    n = round(math.log2(size))
    counts = shots.detach().to(torch.float64)[:, None]
    for level in range(n):
        blocks = p.reshape(batch, 2 ** (level + 1), -1).sum(-1)
        left, right = blocks[:, 0::2], blocks[:, 1::2]
        total = left + right
        ratio = torch.where(total > 0, left / total.clamp_min(1e-300), torch.ones_like(total))
        first = torch.binomial(counts, ratio.clamp(0.0, 1.0), generator=generator)
        counts = torch.stack([first, counts - first], -1).reshape(batch, -1)
    return counts


def pauli_terms(observable: object, n_qubits: int) -> list[tuple[str, complex]]:
    """``[(label, coefficient)]`` of a Pauli string, a list of ``(label, coeff)`` or a qiskit
    ``SparsePauliOp`` (anything with ``to_list()``); labels in qiskit's order (the rightmost
    letter acts on qubit 0), ``n_qubits`` letters of ``I X Y Z``."""
    if isinstance(observable, str):
        terms: list[tuple[str, complex]] = [(observable, 1.0)]
    elif hasattr(observable, "to_list"):
        terms = [(str(lab), complex(c)) for lab, c in observable.to_list()]
    else:
        try:
            terms = [(str(lab), complex(c)) for lab, c in observable]  # type: ignore[attr-defined]
        except (TypeError, ValueError) as bad:
            raise TypeError(
                f"observable={observable!r} must be a Pauli string such as 'ZZI', a list of "
                "(label, coefficient) or a qiskit SparsePauliOp"
            ) from bad
    for label, _ in terms:
        if len(label) != n_qubits or set(label.upper()) - set("IXYZ"):
            raise ValueError(
                f"Pauli label {label!r} must have {n_qubits} letters of I, X, Y, Z (qiskit "
                "order: the rightmost letter is qubit 0); pad with I for a subset of wires"
            )
    return terms


def apply_pauli_sum(
    flat: torch.Tensor, n_qubits: int, terms: list[tuple[str, complex]]
) -> torch.Tensor:
    """``H psi`` for ``H = sum_k c_k P_k`` on flat states ``[B, 2^n]``.

    ``P |b> = i^{n_Y} (-1)^{popcount(b & z)} |b ^ x>`` with ``x`` the X/Y and ``z`` the Z/Y
    qubits of ``P`` (``Y = i X Z``).
    """
    idx = torch.arange(2**n_qubits, device=flat.device)
    out = torch.zeros_like(flat)
    for label, coeff in terms:
        letters = label.upper()[::-1]  # letters[q] acts on qubit q
        x_mask = sum(1 << q for q, p in enumerate(letters) if p in "XY")
        z_mask = sum(1 << q for q, p in enumerate(letters) if p in "ZY")
        n_y = letters.count("Y")
        parity = torch.zeros_like(idx)
        masked = idx & z_mask
        while bool(masked.any()):
            parity ^= masked & 1
            masked = masked >> 1
        sign = (1 - 2 * parity).to(flat.real.dtype)
        phase = coeff * (1j**n_y)
        # (P psi)[b ^ x] = phase * sign[b] * psi[b]  <=>  (P psi)[c] = phase sign[c^x] psi[c^x]
        src = idx ^ x_mask
        out = out + phase * sign[src] * flat[:, src]
    return out


def pauli_expectation(
    flat: torch.Tensor, n_qubits: int, observable: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """``<H>`` and ``Var H = <H^2> - <H>^2`` ``[B]`` of Hermitian ``H`` on pure states: one
    application ``phi = H psi``, then ``<H> = <psi|phi>`` and ``<H^2> = <phi|phi>``."""
    terms = pauli_terms(observable, n_qubits)
    phi = apply_pauli_sum(flat, n_qubits, terms)
    mean = (flat.conj() * phi).sum(-1).real
    second = (phi.real.square() + phi.imag.square()).sum(-1)
    return mean, second - mean.square()
