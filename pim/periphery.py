"""Crossbar periphery as pure functions: input DAC, bit-serial planes, device I-V, read noise
drawn in the output domain, and the output ADC.

Signals are normalised as in aihwkit: a full-scale input is ``1`` (the DAC range), a weight
of ``1`` is the largest weight at ``g_max``, so a tile's normalised output is ``x_n @ W_n``.
:class:`~physnn.pim.tile.CrossbarTile` calls these in data-path order
(DAC -> planes -> I-V -> array -> read noise -> ADC -> shift-and-add).
"""

from __future__ import annotations

import torch

from ..common.quant import quantize, quantize_codes

__all__ = ["adc", "bit_planes", "dac", "dac_codes", "read_noise", "sinh_iv"]


def dac(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Input DAC on normalised inputs: clip to ``[-1, 1]``, ``2**(bits-1) - 1`` levels per sign.

    Idempotent: ``dac(dac(x, b), b) == dac(x, b)``.
    """
    return quantize(x, bits, 1.0)


def dac_codes(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer DAC codes of normalised inputs ``x``: clip to ``[-1, 1]``, ``2**(bits-1) - 1``
    levels per sign (straight-through gradient inside the range).

    Args:
        x: normalised inputs [1].
        bits: DAC resolution including the sign [bit].

    Returns:
        Codes in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` (integer-valued floats).
    """
    levels = 2 ** (bits - 1) - 1
    return quantize_codes(x * levels, levels)


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


def read_noise(
    y: torch.Tensor,
    x: torch.Tensor,
    sigma: float | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add per-read weight noise, drawn exactly in the output domain.

    Each read perturbs every device by an independent ``N(0, sigma_ij^2)``; for one input
    vector ``x`` the output error ``x @ dW`` is then exactly normal with variance
    ``(x^2) @ sigma^2`` per output. One normal per output (not per weight) is drawn, and every
    input vector of a batch is its own read (aihwkit redraws ``w_noise`` per vector), so the
    statistics do not depend on the batch size.

    Args:
        y: noiseless outputs ``[..., N, out]``.
        x: the inputs that produced them ``[..., N, rows]`` (leading dims broadcast with ``y``).
        sigma: per-weight noise std ``[..., rows, out]`` or one float for every weight [1].
        generator: random generator (None: torch's global RNG).

    Returns:
        ``y`` plus the read noise.
    """
    x2 = x.detach().square()
    if isinstance(sigma, torch.Tensor):
        var = x2 @ sigma.square()
    else:
        var = x2.sum(-1, keepdim=True) * (sigma * sigma)
    noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    return y + var.sqrt() * noise


def adc(y: torch.Tensor, *, bits: int, full_scale: float) -> torch.Tensor:
    """Output ADC: clip to ``[-full_scale, full_scale]`` and round to the code grid.

    Outputs are integer multiples of ``full_scale / (2**(bits-1) - 1)`` inside full scale
    (straight-through gradient inside the range).
    """
    return quantize(y, bits, full_scale)
