"""Noise channels as Kraus sets, superoperators and the per-gate noise model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from .gates import _PAULI
from .kernels import _apply_flat

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


def compose_kraus(sets: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """Kraus operators of the channels ``sets`` applied in order (None for no channel)."""
    out: torch.Tensor | None = None
    for kraus in sets:
        out = kraus if out is None else (kraus[:, None] @ out[None]).flatten(0, 1)
    return out
