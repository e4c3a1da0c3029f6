"""Density-matrix simulation of a noisy circuit (vectorised ``rho`` on ``2n`` qubits)."""

from __future__ import annotations

import torch

from ..circuit import AmplitudeEncoding, CircuitSpec, Gate, expand, preparation_gates
from .channels import GateNoise, compose_kraus, superoperator
from .gates import _complex_dtype
from .kernels import _apply_flat, _permute
from .statevector import _gate_tensor, preparation_angles


def _gates(spec: CircuitSpec) -> list[Gate]:
    """The physical gates of ``spec`` in time order (amplitude encodings as their state
    preparation, so noise follows every gate; issue 13, item 3)."""
    out: list[Gate] = []
    for op in spec.ops:
        out += preparation_gates(op) if isinstance(op, AmplitudeEncoding) else expand(op)
    return out


def _preparation(spec: CircuitSpec, x: torch.Tensor) -> torch.Tensor | None:
    """State-preparation angles of the circuit's amplitude encoding (None without one)."""
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            return preparation_angles(op, x)
    return None


def run_density(
    spec: CircuitSpec,
    x: torch.Tensor,
    weights: torch.Tensor,
    noise: GateNoise,
    *,
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """Outcome probabilities ``[B, 2^n]`` of the noisy circuit by density-matrix evolution.

    Every gate is applied on its own (no fusion) and followed by ``noise``, the gates of an
    amplitude encoding's state preparation included.
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
    prepared = _preparation(spec, x)
    for op in _gates(spec):
        if len(op.qubits) == 1:
            q = op.qubits[0]
            u = _gate_tensor(op, x, weights, cdtype, prepared)
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
