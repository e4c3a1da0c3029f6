"""The straight-through quantisers every backend uses.

Each rounds in the forward pass and passes the gradient through unchanged inside its range
(Bengio, Leonard & Courville 2013, "Estimating or propagating gradients through stochastic
neurons"); clipping passes no gradient outside the range. One convention everywhere:
``bits`` counts the sign bit, so a signed ``bits``-bit converter has ``2**(bits-1) - 1``
levels per sign and a symmetric grid around zero.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fake_quantize", "quantize", "quantize_codes", "quantize_step", "round_ste"]


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """``torch.round(x)`` with an identity gradient (added only when ``x`` requires grad)."""
    rounded = torch.round(x)
    if x.requires_grad:
        return x + (rounded - x).detach()
    return rounded


def quantize_codes(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Clip ``x`` to ``[-levels, levels]`` and round to integer codes (straight-through).

    Args:
        x: signal in code units (one unit per quantisation step).
        levels: largest code, ``2**(bits-1) - 1`` for a signed converter.
    """
    return round_ste(x.clamp(-levels, levels))


def quantize_step(x: torch.Tensor, step: float | torch.Tensor) -> torch.Tensor:
    """Round ``x`` to multiples of ``step`` (no clipping, straight-through)."""
    return round_ste(x / step) * step


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise ValueError(
            f"bits={bits!r} must be an int >= 2 (one sign bit plus at least one magnitude bit)"
        )
    return bits


def quantize(x: torch.Tensor, bits: int, bound: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Clip to ``[-bound, bound]`` and round to ``2**(bits-1) - 1`` levels per sign.

    Straight-through gradient inside the range; applying it twice changes nothing.

    Args:
        x: signal.
        bits: resolution including the sign [bit], >= 2.
        bound: full scale (> 0); a tensor broadcasts against ``x`` (one bound per sample
            or channel).
    """
    _check_bits(bits)
    if isinstance(bound, torch.Tensor):
        if not bool((bound > 0).all()) or not bool(torch.isfinite(bound).all()):
            raise ValueError("bound must be finite and > 0 everywhere")
    elif not (isinstance(bound, int | float) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound={bound!r} must be a finite number > 0")
    levels = 2 ** (bits - 1) - 1
    step = bound / levels
    return quantize_codes(x / step, levels) * step


def fake_quantize(x: torch.Tensor, bits: int, *, per_sample: bool = False) -> torch.Tensor:
    """Symmetric integer fake-quantisation with a max-abs scale, straight-through.

    Args:
        x: tensor to quantise.
        bits: precision including the sign [bit], 2..31.
        per_sample: one scale per entry of the first (batch) dimension, so a sample's result
            never depends on the other samples of its batch (as an integer accelerator with
            per-sample dynamic ranges computes it); False: one scale for the whole tensor
            (weights).

    Returns:
        ``x`` on the grid ``max|x| / (2**(bits-1) - 1)``; all-zero slices stay zero.
    """
    _check_bits(bits)
    mag = x.detach().abs()
    if per_sample and x.dim() > 1:
        bound = mag.flatten(1).amax(1).reshape(-1, *([1] * (x.dim() - 1)))
    else:
        bound = mag.amax()
    bound = bound.clamp_min(torch.finfo(x.dtype).tiny)
    levels = 2 ** (bits - 1) - 1
    q = torch.round(x.detach() * (levels / bound)) * (bound / levels)
    return x + (q - x).detach() if x.requires_grad else q
