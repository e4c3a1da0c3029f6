"""Memory guard: estimate the working memory of a simulation before allocating it.

The estimate counts the simulator states alive at once. A forward pass keeps a few full
states in flight (the current state, a permuted copy for ``movedim`` and the matmul output:
``3`` copies); with autograd recording, every step that produces a new state also keeps its
input for the backward pass (``steps`` more copies). A density matrix of ``n`` qubits is a
``2n``-qubit vector; trajectories simulate ``batch * trajectories`` states.
"""

from __future__ import annotations

import os

import torch

from .gates import _complex_dtype

__all__ = [
    "SimulationMemoryError",
    "available_bytes",
    "check_memory",
    "forward_bytes",
    "memory_limit",
    "state_bytes",
]


class SimulationMemoryError(MemoryError, ValueError):
    """A simulation would exceed its memory budget (raised before allocating)."""


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


def available_bytes(device: torch.device | str | None = None) -> int:
    """Memory available now [byte]: free memory of a CUDA device, else the host's
    ``MemAvailable`` (``/proc/meminfo``; free physical pages where that file is missing)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def memory_limit(
    limit: int | None, fraction: float, device: torch.device | str | None = None
) -> int:
    """The byte budget of a forward pass: ``limit``, or ``fraction`` of what is available."""
    if limit is not None:
        return limit
    return int(fraction * available_bytes(device))


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
    if need <= limit:
        return need
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
    fixes.append("or raise SimulationConfig.memory_limit / memory_fraction")
    per_sample = f" x {trajectories} trajectories" if trajectories > 1 else ""
    raise SimulationMemoryError(
        f"simulating {n_qubits} qubits with batch {batch}{per_sample} ({kind}, "
        f"{_complex_dtype(dtype)}) needs about {need / 2**30:.3g} GiB ({_LIVE_COPIES + steps} "
        f"copies of {state_bytes(n_qubits, states, density=density, dtype=dtype) / 2**30:.3g}"
        f" GiB), above the limit of {limit / 2**30:.3g} GiB; use {', '.join(fixes)}"
    )
