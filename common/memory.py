"""Memory budgets: how much a forward pass may allocate, and the error raised before it does.

Every backend estimates the peak working memory of a forward pass from the shapes it is
about to allocate (quantum: simulator states, :mod:`physnn.quantum.sim.memory`; PIM: the
bit-plane inputs and per-tile partial sums of a crossbar read, :mod:`physnn.pim.memory`;
optics: the padded complex fields, :mod:`physnn.optical.memory`) and calls
:func:`check_budget`, which raises :class:`MemoryBudgetError` naming the estimate, the limit
and the fixes when the estimate exceeds the budget. The budget of a backend config is its
``simulation`` block (:class:`MemoryConfig`): ``memory_limit`` [byte], or
``memory_fraction`` of the memory available when the forward starts
(:func:`available_bytes`).
"""

from __future__ import annotations

import dataclasses
import os
import time
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .config import ConfigBlock, check_int, check_range

__all__ = [
    "AllocationMeter",
    "MemoryBudgetError",
    "MemoryConfig",
    "available_bytes",
    "check_budget",
    "format_bytes",
    "memory_limit",
]


class MemoryBudgetError(MemoryError, ValueError):
    """A forward pass would exceed its memory budget (raised before allocating)."""


_FRESH = 0.5
"""Seconds a reading of the available memory is reused: reading ``/proc/meminfo`` costs
about as much as a small crossbar read, and a training loop asks before every forward."""

_READINGS: dict[str, tuple[float, int]] = {}


def available_bytes(device: torch.device | str | None = None) -> int:
    """Memory available now [byte]: free memory of a CUDA device, else the host's
    ``MemAvailable`` (``/proc/meminfo``; free physical pages where that file is missing).
    A reading is reused for half a second."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    key = str(dev)
    now = time.monotonic()
    reading = _READINGS.get(key)
    if reading is not None and now - reading[0] < _FRESH:
        return reading[1]
    free = _read_available(dev)
    _READINGS[key] = (now, free)
    return free


def _read_available(dev: torch.device) -> int:
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


def format_bytes(n: float) -> str:
    """``n`` bytes in GiB with three significant digits (``"1.5 GiB"``)."""
    return f"{n / 2**30:.3g} GiB"


def check_budget(
    need: int,
    limit: int,
    *,
    what: str,
    fixes: Sequence[str],
    error: type[MemoryBudgetError] = MemoryBudgetError,
) -> int:
    """Return ``need`` [byte] when it fits ``limit`` [byte]; else raise ``error`` naming both.

    Args:
        need: the estimated peak working memory [byte].
        limit: the budget (see :func:`memory_limit`).
        what: what would be computed, e.g. ``"a 784x256 crossbar read of 64 vectors"``.
        fixes: changes that reduce the estimate, most useful first; the last fix offered is
            always raising the budget (``simulation.memory_limit`` / ``memory_fraction``).
        error: the error class (a subclass of :class:`MemoryBudgetError`).
    """
    if need <= limit:
        return need
    offers = [*fixes, "or raise simulation.memory_limit / memory_fraction of the config"]
    raise error(
        f"{what} needs about {format_bytes(need)}, above the limit of {format_bytes(limit)}; "
        f"use {', '.join(offers)}"
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MemoryConfig(ConfigBlock):
    """Memory budget of one forward pass of the classical simulation."""

    memory_limit: int | None = None
    """Largest estimated working memory of one forward pass [byte]; larger requests raise
    with the estimate and a fix. None allows ``memory_fraction`` of the memory available
    when the forward starts (free RAM, or free memory of the CUDA device)."""

    memory_fraction: float = 0.5
    """Share of the available memory a forward pass may use when ``memory_limit`` is None
    [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.memory_limit is not None:
            check_int(owner, "memory_limit", self.memory_limit, 2**20, 2**50)
        check_range(
            owner,
            "memory_fraction",
            self.memory_fraction,
            1e-3,
            1.0,
            hint="pass a fraction of the available memory such as 0.5",
        )

    def budget(self, device: torch.device | str | None = None) -> int:
        """The byte budget of a forward pass on ``device`` now (see :func:`memory_limit`)."""
        return memory_limit(self.memory_limit, self.memory_fraction, device)


class AllocationMeter(TorchDispatchMode):
    """Measure the peak bytes of the tensor storages torch allocates inside a ``with`` block.

    Every new storage an operator returns inside the block is counted once, from its
    allocation until it is freed, whoever holds it (the caller, autograd's saved tensors);
    views and in-place results (which share an input's storage) and tensors created before
    the block are not counted. Use it to
    check a memory estimate or to choose ``simulation.memory_limit``::

        with AllocationMeter() as meter:
            model(x).sum().backward()
        print(meter.peak)

    Memory that operators allocate internally without returning it (BLAS or FFT
    workspaces) and numpy arrays are not seen.

    Attributes:
        current: bytes counted and not yet freed [byte].
        peak: the largest ``current`` seen [byte].
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: dict[int, int] = {}

    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            # views and in-place results share an input's storage: nothing was allocated
            if size == 0 or key in self._live or key in inputs:
                continue
            self._live[key] = size
            self.current += size
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)
        return out
