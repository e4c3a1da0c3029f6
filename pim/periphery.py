"""Crossbar periphery as pure functions: input DAC, bit-serial planes, device I-V, read noise
drawn in the output domain, and the output ADC.

Signals are normalised as in aihwkit: a full-scale input is ``1`` (the DAC range), a weight
of ``1`` is the largest weight at ``g_max``, so a tile's normalised output is ``x_n @ W_n``.
:class:`~physnn.pim.tile.CrossbarTile` calls these in data-path order
(DAC -> planes -> I-V -> array -> read noise -> ADC -> shift-and-add).
"""

from __future__ import annotations

import torch

from ..common.quant import quantize, quantize_codes, round_ste

__all__ = ["adc", "adc_codes", "bit_planes", "dac", "dac_codes", "read_noise_variance", "sinh_iv"]


def dac(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Input DAC on normalised inputs: clip to ``[-1, 1]``, ``2**(bits-1) - 1`` levels per sign.

    Idempotent: ``dac(dac(x, b), b) == dac(x, b)``.
    """
    return quantize(x, bits, 1.0)


def dac_codes(
    x: torch.Tensor,
    bits: int,
    input_range: float | torch.Tensor = 1.0,
    *,
    inside: bool = False,
) -> torch.Tensor:
    """Integer DAC codes of inputs ``x`` for the range ``input_range``: clip ``x / input_range``
    to ``[-1, 1]``, ``2**(bits-1) - 1`` levels per sign (straight-through gradient inside the
    range).

    Args:
        x: inputs (in the units of ``input_range``).
        bits: DAC resolution including the sign [bit].
        input_range: the input mapped to full scale (a tensor broadcasts against ``x``: one
            range per input vector).
        inside: the caller guarantees ``|x| <= input_range`` (a dynamic range, each
            vector's largest ``|x|``), so the clipping pass is skipped (it would change
            nothing: a value a rounding error above full scale still rounds to the top code).

    Returns:
        Codes in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` (integer-valued floats).
    """
    levels = 2 ** (bits - 1) - 1
    # x / (range / levels), not x * (levels / range): levels / tiny overflows to inf
    scaled = x / (input_range / levels)
    return _codes_of_fresh(scaled, levels, clip=not inside)


def bit_planes(codes: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split signed DAC codes into magnitude bit planes applied one per cycle (NeuroSim).

    Plane ``b`` is ``sign(code) * bit_b(|code|)`` in ``{-1, 0, 1}``: every cycle drives a row
    at full read amplitude or not at all, so each plane reaches the ADC at full scale
    (Peng et al., IEDM 2019). Shift-and-add recombines ``sum_b weight_b plane_b`` with
    ``weight_b = 2**b / (2**(bits-1) - 1)``, which equals the normalised input ``code / levels``.

    Args:
        codes: DAC codes ``[...]`` (from :func:`dac_codes`).
        bits: DAC resolution including the sign [bit]; ``bits - 1`` planes.

    Returns:
        ``(planes [bits-1, ...], weights [bits-1])`` (no gradient: a bit is not differentiable).
    """
    magnitude = codes.detach().abs()
    sign = torch.sign(codes.detach())
    powers = 2.0 ** torch.arange(bits - 1, device=codes.device, dtype=codes.dtype)
    shape = (-1,) + (1,) * codes.dim()
    planes = torch.remainder(torch.div(magnitude, powers.view(shape), rounding_mode="floor"), 2)
    return sign * planes, powers / (2 ** (bits - 1) - 1)


def sinh_iv(v: torch.Tensor, v0: float) -> torch.Tensor:
    """Device current per unit conductance ``v0 sinh(v / v0)`` [A/S] for voltage ``v`` [V].

    Memristive devices conduct super-linearly (Strukov & Williams, Appl. Phys. A 94, 515,
    2009); the small-signal conductance equals ``G``.
    """
    return v0 * torch.sinh(v / v0)


def read_noise_variance(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Variance of per-read weight noise in the output domain, per input vector and output.

    Each read perturbs every device by an independent ``N(0, sigma_ij^2)``; for one input
    vector ``x`` the output error ``x @ dW`` is then exactly normal with variance
    ``(x^2) @ sigma^2`` per output, so one normal per output (not one per weight) draws it
    exactly. Every input vector of a batch is its own read (aihwkit redraws ``w_noise`` per
    vector): the statistics do not depend on the batch size. Independent normal errors added
    before the ADC (output noise) sum into one normal with the summed variance.

    Args:
        x: the inputs of the read ``[..., N, rows]`` (no gradient flows through the noise).
        sigma: per-weight noise std ``[..., rows, out]`` or one float for every weight [1].

    Returns:
        ``[..., N, out]``, or ``[..., N, 1]`` for a float ``sigma`` (same for every output).
    """
    x2 = x.detach().square()
    if isinstance(sigma, torch.Tensor):
        return x2 @ sigma.square()
    return x2.sum(-1, keepdim=True) * (sigma * sigma)


def adc(y: torch.Tensor, *, bits: int, full_scale: float) -> torch.Tensor:
    """Output ADC: clip to ``[-full_scale, full_scale]`` and round to the code grid.

    Outputs are integer multiples of ``full_scale / (2**(bits-1) - 1)`` inside full scale
    (straight-through gradient inside the range).
    """
    return quantize(y, bits, full_scale)


def adc_codes(y_steps: torch.Tensor, bits: int, *, owned: bool = False) -> torch.Tensor:
    """Output ADC on signals already in units of its step ``full_scale / (2**(bits-1) - 1)``:
    clip to ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` and round to integer codes
    (straight-through gradient inside the range); ``adc(y) == adc_codes(y / step) * step``.

    Args:
        y_steps: signals [ADC steps].
        bits: ADC resolution including the sign [bit].
        owned: the caller owns ``y_steps`` and no longer needs it: without a gradient it is
            overwritten with the codes (no new memory).
    """
    levels = 2 ** (bits - 1) - 1
    return _codes_of_fresh(y_steps, levels, clip=True) if owned else quantize_codes(y_steps, levels)


def _codes_of_fresh(x: torch.Tensor, levels: int, *, clip: bool) -> torch.Tensor:
    """:func:`~physnn.common.quant.quantize_codes` (``clip``) or
    :func:`~physnn.common.quant.round_ste` of a tensor the caller owns: computed in place
    when no gradient is recorded (the same rounding, without two more passes over new
    memory), else by the straight-through quantisers."""
    if x.requires_grad:
        return quantize_codes(x, levels) if clip else round_ste(x)
    return (x.clamp_(-levels, levels) if clip else x).round_()
