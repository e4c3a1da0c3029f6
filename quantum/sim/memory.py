"""Memory guard: estimate the working memory of a simulation before allocating it.

The estimate counts the simulator states alive at once. A forward pass keeps a few full
states in flight (the current state, a permuted copy for ``movedim`` and the matmul output:
``3`` copies); with autograd recording, every step that produces a new state also keeps its
input for the backward pass (``steps`` more copies). A density matrix of ``n`` qubits is a
``2n``-qubit vector; trajectories simulate ``batch * trajectories`` states. The budget and
the error are the backend-independent ones of :mod:`physnn.common.memory`.
"""

from __future__ import annotations

import torch

from ...common.memory import (
    MemoryBudgetError,
    available_bytes,
    check_budget,
    format_bytes,
    memory_limit,
)
from .gates import _complex_dtype

__all__ = [
    "SimulationMemoryError",
    "available_bytes",
    "check_memory",
    "forward_bytes",
    "memory_limit",
    "state_bytes",
]


class SimulationMemoryError(MemoryBudgetError):
    """A quantum simulation would exceed its memory budget (raised before allocating)."""


_LIVE_COPIES = 3
"""Full states alive at once in a forward step (state, permuted copy, matmul output)."""


def state_bytes(
    n_qubits: int, batch: int = 1, *, density: bool = False, dtype: torch.dtype = torch.complex64
) -> int:
    """Bytes of ``batch`` simulator states: ``2^n`` (``4^n`` for density) complex numbers each."""
    itemsize = torch.empty((), dtype=_complex_dtype(dtype)).element_size()
    return batch * (4**n_qubits if density else 2**n_qubits) * itemsize


def forward_bytes(
    n_qubits: int,
    batch: int,
    *,
    density: bool = False,
    dtype: torch.dtype = torch.complex64,
    steps: int = 0,
) -> int:
    """Estimated peak working memory [byte] of simulating ``batch`` states.

    Args:
        n_qubits: qubits of the circuit.
        batch: states simulated together (samples, times trajectories).
        density: density matrices (``4^n`` entries) instead of statevectors.
        dtype: real or complex dtype of the simulation.
        steps: state-producing steps whose inputs autograd keeps (0 without gradients).
    """
    return state_bytes(n_qubits, batch, density=density, dtype=dtype) * (_LIVE_COPIES + steps)


def check_memory(
    n_qubits: int,
    batch: int,
    limit: int,
    *,
    density: bool = False,
    dtype: torch.dtype = torch.complex64,
    steps: int = 0,
    trajectories: int = 1,
) -> int:
    """Raise :class:`SimulationMemoryError` with the estimate and a fix when a simulation
    would exceed ``limit`` bytes; return the estimate [byte] otherwise.

    Args:
        n_qubits: qubits of the circuit.
        batch: samples simulated together.
        limit: the byte budget (see :func:`memory_limit`).
        density: density matrices instead of statevectors.
        dtype: dtype of the simulation.
        steps: state-producing steps recorded for backward (0 without gradients).
        trajectories: noise trajectories per sample (each one statevector).
    """
    states = batch * trajectories
    need = forward_bytes(n_qubits, states, density=density, dtype=dtype, steps=steps)
    one = forward_bytes(n_qubits, trajectories, density=density, dtype=dtype, steps=steps)
    kind = "density matrices" if density else "statevectors"
    largest = limit // one
    fixes = [f"a batch of at most {largest}" if largest >= 1 else "fewer qubits"]
    if density:
        fixes.append("trajectories instead of a density matrix (NoiseConfig.method)")
    if trajectories > 1:
        fixes.append(f"fewer than {trajectories} trajectories (NoiseConfig.trajectories)")
    if steps:
        fixes.append("torch.no_grad() when no gradient is needed")
    per_sample = f" x {trajectories} trajectories" if trajectories > 1 else ""
    copy = format_bytes(state_bytes(n_qubits, states, density=density, dtype=dtype))
    return check_budget(
        need,
        limit,
        what=f"simulating {n_qubits} qubits with batch {batch}{per_sample} ({kind}, "
        f"{_complex_dtype(dtype)}; {_LIVE_COPIES + steps} copies of {copy})",
        fixes=fixes,
        error=SimulationMemoryError,
    )
