"""Memory guard of the diffractive simulation: estimate before allocating, refuse above budget.

A forward through a stack of ``L`` layers (:func:`physnn.optical.stack.propagate_stack`)
propagates ``B`` complex fields (images of a :class:`~physnn.optical.layers.
DiffractiveNetwork`, or one per input emitter of an :class:`~physnn.optical.layers.
OpticalLinear`) on the simulation grid of ``n = size * oversample`` samples per side, padded
to the FFT grid ``M`` (``geometry.padding``, 2 by default: ``M = 4 n^2``), for each of the
``W`` wavelengths. Each gap costs, alive at once, the field arriving from the previous gap
(a view of its padded inverse FFT), the modulated field, the padded FFT input and the
spectrum, then the spectrum and the new inverse FFT: three padded fields and one plain one.
With autograd recording, the field arriving at every layer (the padded buffer it is a view
of) and at the detector is kept for the backward pass, with the upsampled mask: ``W (L + 1)``
padded and ``W L`` plain fields more. The transfer functions add ``W (L + 1)`` padded grids
(batch-independent). The counts are upper bounds checked against the real peak of what
torch allocates in ``tests/optical/test_memory.py``. The budget is
``OpticalConfig.simulation`` (:class:`~physnn.common.memory.MemoryConfig`).
"""

from __future__ import annotations

import math

import torch

from ..common.memory import MemoryBudgetError, check_budget
from .config import OpticalConfig
from .stack import simulation_grid

__all__ = ["check_forward", "forward_bytes"]

_PADDED_LIVE = 3
"""Padded fields alive at once in one gap (previous inverse FFT, FFT input, spectrum)."""

_PLAIN_LIVE = 3
"""Plain fields ``[B, n, n]`` alive at once (encoded input, modulated field, detector
intensity and its accumulated sum, counted as one complex field each pair)."""


def forward_bytes(
    config: OpticalConfig,
    *,
    size: int,
    batch: int,
    grad: bool,
    dtype: torch.dtype = torch.complex64,
) -> int:
    """Estimated peak working memory [byte] of propagating ``batch`` fields through a stack.

    Args:
        config: the optical config (geometry: oversampling, padding, wavelengths, layers).
        size: neurons per side of the layers.
        batch: fields propagated together.
        grad: autograd records the forward.
        dtype: complex dtype of the fields.
    """
    g = config.geometry
    n, grid = simulation_grid(g, size)
    item = torch.empty((), dtype=dtype).element_size()
    padded = math.prod(grid) * item
    plain = n * n * item
    waves = len(g.all_wavelengths)
    layers = g.n_layers
    per_field = _PADDED_LIVE * padded + _PLAIN_LIVE * plain
    if grad:
        per_field += waves * ((layers + 1) * padded + layers * plain)
    transfers = waves * (layers + 1) * padded
    return batch * per_field + transfers


def check_forward(
    config: OpticalConfig,
    *,
    what: str,
    size: int,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    emitters: bool = False,
) -> int:
    """Raise :class:`~physnn.common.memory.MemoryBudgetError` before a forward whose
    estimate exceeds the config's budget; return the estimate [byte].

    Args:
        config: the optical config.
        what: the module, for the message (``"DiffractiveNetwork"``).
        size: neurons per side of the layers.
        batch: fields propagated together.
        device: where they are allocated.
        dtype: their complex dtype.
        emitters: the fields are the inputs of an OpticalLinear (one per input feature,
            independent of the batch) rather than a batch of images.
    """
    grad = torch.is_grad_enabled()
    g = config.geometry

    def need(count: int) -> int:
        return forward_bytes(config, size=size, batch=count, grad=grad, dtype=dtype)

    limit = config.simulation.budget(device)
    total = need(batch)
    if total <= limit:
        return total
    largest = max(0, (limit - need(0)) // (need(1) - need(0)))
    if emitters:
        fixes = [f"at most {largest} input features (one propagated field each)"]
    else:
        fixes = [f"a batch of at most {largest}" if largest >= 1 else "a smaller layer"]
    if g.samples > 1:
        fixes.append(f"fewer than {g.samples} samples per neuron (geometry.oversample)")
    if g.grid_padding() > 1:
        fixes.append(f"a padding below {g.grid_padding():g} (geometry.padding)")
    if len(g.all_wavelengths) > 1:
        fixes.append("fewer wavelengths (geometry.wavelengths)")
    if grad:
        fixes.append("torch.no_grad() when no gradient is needed")
    n, grid = simulation_grid(g, size)
    return check_budget(
        total,
        limit,
        what=f"{what}: propagating {batch} fields of {n}x{n} samples (FFT grid "
        f"{grid[0]}x{grid[1]}, {len(g.all_wavelengths)} wavelength(s), {g.n_layers} layers)",
        fixes=fixes,
        error=MemoryBudgetError,
    )
