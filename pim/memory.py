"""Memory guard of the crossbar simulation: estimate before allocating, refuse above budget.

A crossbar read (:meth:`physnn.pim.tile.CrossbarTile.forward`) of ``N`` input vectors
allocates, in the work dtype (float32, or float64):

- the input expanded per bit plane and padded to whole row tiles, ``X = P N T R`` values
  (``P = bits - 1`` planes of a bit-serial DAC on a chip read, else 1; ``T`` row tiles of
  ``R`` rows), plus a few copies of the plain input ``N n_in`` (DAC codes, planes);
- the partial sums of every plane, weight slice and row tile before the ADC,
  ``Y = P S T N n_out`` values (``S`` slices on a chip read, 1 in training), and the
  output-domain read-noise, ADC-error, output-noise and ADC tensors of the same shape
  (without autograd the read updates its own tensors in place, so fewer are alive);
- with autograd recording, the inputs the backward pass keeps (the DAC clip, the matmul
  operand, the ADC clip: ``X1 + X + Y`` more).

Programming the chip (:meth:`~physnn.pim.tile.CrossbarTile.program`: at construction, after
training, on ``reconfigure``) works on every device conductance at once, ``G = S 2 D n_in
n_out`` values (target, noise draw, device model, variation, faults, drift exponents), and
the fast IR-drop model (:func:`physnn.pim.functional.ir_drop_crossbar`) solves every tile
array in float64 with a dozen arrays of the tiled devices alive at once (each thread keeps
them for its last array shape, up to 64 MiB, between programmings); the reference
measurement of drift compensation reads the new chip with ``drift.calibration_samples``
inputs.

The counts are upper bounds checked against the real peak of what torch (and numpy)
allocate in ``tests/pim/test_memory.py``. The budget is ``PIMConfig.simulation``
(:class:`~physnn.common.memory.MemoryConfig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..common.memory import MemoryBudgetError, check_budget
from .config import PIMConfig
from .cost import tile_grid

if TYPE_CHECKING:
    from .tile import CrossbarTile

__all__ = ["check_program", "check_read", "program_bytes", "read_bytes"]

_READ_PARTIALS = 4
"""Partial-sum tensors ``Y`` alive at once in a read that autograd records (partial sums,
noise draw, scaled noise, noisy sum)."""

_READ_PARTIALS_OWNED = 2
"""Partial-sum tensors ``Y`` alive at once in a read without autograd, which updates its own
tensors in place (the partial sums and the noise draw they are added into; the tiles and
their stack in a multi-slice product)."""

_READ_INPUTS = 2
"""Plane-expanded inputs ``X`` alive at once (the planes, the padded or permuted copy)."""

_PLAIN_INPUTS = 3
"""Copies of the plain input ``N n_in`` alive at once (normalised input, DAC codes, a
temporary of the clip or of the plane split)."""

_WEIGHT_COPIES = 3
"""Copies of the tiled weights ``S T R n_out`` a training read makes (scaled, noisy,
padded; the matmul's own operand copy); a chip read reads the programmed weights in place
(at most the matmul's operand copy)."""

_PROGRAM_COPIES = 8
"""Device-conductance tensors ``G`` alive at once while programming (target, noise draw,
device model output, variation minimum, fault selection, drift exponents and temporaries)."""

_IR_DROP_ARRAYS = 16
"""Tiled float64 arrays of the fast IR-drop model alive at once (about 12: conductances, the
row and column ladder eliminations and drive responses, row and column solutions, the
round-trip and coupling terms), plus the float32 tiled and rebuilt device planes; 16 is an
upper bound."""


def _itemsize(dtype: torch.dtype) -> int:
    """Bytes per value of the chip arithmetic: float32 at least (see ``tile._work_dtype``)."""
    return 8 if dtype == torch.float64 else 4


def read_bytes(
    config: PIMConfig,
    *,
    n_in: int,
    n_out: int,
    batch: int,
    chip: bool,
    grad: bool,
    dtype: torch.dtype = torch.float32,
) -> int:
    """Estimated peak working memory [byte] of one crossbar read of ``batch`` vectors.

    Args:
        config: the accelerator.
        n_in: crossbar inputs (rows of the weight matrix).
        n_out: crossbar outputs.
        batch: input vectors read together (samples times positions of a convolution).
        chip: a read of the programmed chip (evaluation: bit planes, slices, read noise)
            rather than the hardware-aware training read.
        grad: autograd records the read.
        dtype: dtype of the inputs.
    """
    t_rows, rows, _, _ = tile_grid(n_in, n_out, config)
    dac = config.dac
    planes = dac.bits - 1 if dac.bits is not None and dac.bit_serial and chip else 1
    slices = config.mapping.slices if chip else 1
    item = _itemsize(dtype)
    plain = batch * n_in * item
    expanded = planes * batch * t_rows * rows * item
    partials = planes * slices * t_rows * batch * n_out * item
    weights = slices * t_rows * rows * n_out * item
    need = (
        (_READ_PARTIALS if grad else _READ_PARTIALS_OWNED) * partials
        + _READ_INPUTS * expanded
        + _PLAIN_INPUTS * plain
        + (1 if chip else _WEIGHT_COPIES) * weights
    )
    if grad:
        need += partials + expanded + plain
    return need


def program_bytes(config: PIMConfig, *, n_in: int, n_out: int, dtype: torch.dtype) -> int:
    """Estimated peak working memory [byte] of programming an ``n_in x n_out`` chip.

    Args:
        config: the accelerator.
        n_in: crossbar inputs.
        n_out: crossbar outputs.
        dtype: dtype of the chip's buffers.
    """
    m = config.mapping
    t_rows, rows, t_cols, cols = tile_grid(n_in, n_out, config)
    devices = m.slices * 2 * m.devices_per_polarity
    item = _itemsize(dtype)
    need = _PROGRAM_COPIES * devices * n_in * n_out * item
    if config.circuit.ir_drop == "fast":
        need += _IR_DROP_ARRAYS * devices * t_rows * rows * t_cols * cols * 8
    samples = config.drift.calibration_samples  # the reference read of drift compensation
    return need + read_bytes(
        config, n_in=n_in, n_out=n_out, batch=samples, chip=True, grad=False, dtype=dtype
    )


def _shape(tile: CrossbarTile) -> str:
    return f"a {tile.n_in}x{tile.n_out} crossbar ({tile.config.describe()})"


def check_read(tile: CrossbarTile, x: torch.Tensor) -> int:
    """Raise :class:`~physnn.common.memory.MemoryBudgetError` before a read of ``x [N,
    n_in]`` through ``tile`` whose estimate exceeds the config's budget; return the
    estimate [byte]."""
    cfg = tile.config
    chip = not tile.training
    grad = torch.is_grad_enabled() and (x.requires_grad or tile.training)
    batch = x.shape[0]

    def need(n: int) -> int:
        return read_bytes(
            cfg, n_in=tile.n_in, n_out=tile.n_out, batch=n, chip=chip, grad=grad, dtype=x.dtype
        )

    limit = cfg.simulation.budget(x.device)
    total = need(batch)
    if total <= limit:
        return total
    per_vector = need(1) - need(0)
    largest = max(0, (limit - need(0)) // per_vector)
    fixes = [
        f"a batch of at most {largest} input vectors (samples x positions)"
        if largest >= 1
        else "a smaller layer or smaller tiles (mapping.tile_rows / tile_cols)"
    ]
    if chip and cfg.dac.bit_serial and cfg.dac.bits is not None:
        fixes.append("dac.bit_serial=False (one read instead of one per input bit)")
    if chip and cfg.mapping.slices > 1:
        fixes.append(f"fewer than {cfg.mapping.slices} weight slices (mapping.slices)")
    if grad:
        fixes.append("torch.no_grad() when no gradient is needed")
    return check_budget(
        total,
        limit,
        what=f"reading {_shape(tile)} with {batch} input vectors",
        fixes=fixes,
        error=MemoryBudgetError,
    )


def check_program(tile: CrossbarTile) -> int:
    """Raise :class:`~physnn.common.memory.MemoryBudgetError` before programming ``tile``
    when the estimate exceeds the config's budget; return the estimate [byte]."""
    cfg = tile.config
    buffer = tile.conductance
    fixes = []
    if cfg.circuit.ir_drop == "fast":
        fixes.append('circuit.ir_drop="none" (the fast IR-drop model solves every array)')
    if cfg.mapping.slices > 1 or cfg.mapping.devices_per_polarity > 1:
        fixes.append("fewer weight slices or devices per weight (mapping)")
    fixes.append("a smaller layer")
    return check_budget(
        program_bytes(cfg, n_in=tile.n_in, n_out=tile.n_out, dtype=buffer.dtype),
        cfg.simulation.budget(buffer.device),
        what=f"programming {_shape(tile)}",
        fixes=fixes,
        error=MemoryBudgetError,
    )
