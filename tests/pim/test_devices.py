"""Device models against their published statistics, with the formulas written here.

ReRAM (``model="reram"``): the spread of HfOx ReRAM conductances around the write-verify
target at 1 s, 1 day and 2 days after programming in Wan et al., Nature 608, 504, 2022, as
fourth-order polynomials of ``g = G_target / g_max`` at ``g_max = 40 uS`` (the fits aihwkit's
``ReRamWan2022NoiseModel`` made of the published figures), interpolated linearly in ``log t``.
"""

from __future__ import annotations

import math

import pytest
import torch

from physnn.pim import PIMLinear, presets
from physnn.pim.config import CircuitConfig, FaultConfig, MappingConfig, ReadNoiseConfig
from physnn.pim.devices import get_device

G_MAX = 40e-6
WAN_1S = (0.348, 16.030, -43.853, 45.393, -16.815)  # uS, ascending powers of g
WAN_1D = (0.701, 22.086, -50.773, 47.095, -16.458)
WAN_2D = (0.782, 20.274, -43.507, 37.062, -11.934)
N = 200_000


def wan_sigma(g: float, coeff: tuple[float, ...]) -> float:
    """Spread [S] at normalised target ``g`` for polynomial coefficients [uS]."""
    return sum(c * g**i for i, c in enumerate(coeff)) * 1e-6


def program_and_relax(g: float, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``N`` devices at target ``g * G_MAX``: programmed, then relaxed to ``t`` [s]."""
    device = get_device("reram")
    cfg = presets.get("reram").programming
    target = torch.full((N,), g * G_MAX, dtype=torch.float64)
    gen = torch.Generator().manual_seed(int(g * 1000 + t) % 2**31)
    prog = device.program(target, cfg, G_MAX, torch.randn(N, generator=gen, dtype=torch.float64))
    noise = torch.randn(N, generator=gen, dtype=torch.float64)
    return prog, device.relax(prog, target, t, cfg, G_MAX, noise)


@pytest.mark.parametrize("g", [0.5, 0.75, 1.0])
def test_reram_programming_and_relaxation_spread_match_wan_2022(g: float) -> None:
    for t, coeff in ((1.0, WAN_1S), (86400.0, WAN_1D), (172800.0, WAN_2D), (1e7, WAN_2D)):
        prog, relaxed = program_and_relax(g, t)
        sigma = wan_sigma(g, coeff)
        dev = relaxed - g * G_MAX
        # std of a normal sample: relative standard error 1 / sqrt(2 N) = 0.16 %
        assert float(dev.std()) == pytest.approx(sigma, rel=0.01), (g, t)
        assert abs(float(dev.mean())) < 5 * sigma / math.sqrt(N)  # no mean shift
        assert float((prog - g * G_MAX).std()) == pytest.approx(wan_sigma(g, WAN_1S), rel=0.01)


def test_reram_spread_is_interpolated_in_log_time() -> None:
    t, g = 3600.0, 0.75
    frac = math.log(t) / math.log(86400.0)  # between the 1 s and 1 day fits
    coeff = tuple((1 - frac) * a + frac * b for a, b in zip(WAN_1S, WAN_1D, strict=True))
    _, relaxed = program_and_relax(g, t)
    assert float((relaxed - g * G_MAX).std()) == pytest.approx(wan_sigma(g, coeff), rel=0.01)


def test_reram_preset_chip_relaxes_with_the_published_spread() -> None:
    """Through a layer: all weights 1 put every pair at (40 uS, 20 uS); the effective weight
    error is the pair's spread over the 20 uS window, at programming and one day later."""
    base = presets.get("reram", seed=3)
    cfg = base.replace(
        mapping=MappingConfig(g_max=G_MAX, g_min=20e-6, scale="column"),
        faults=FaultConfig(),
        read=ReadNoiseConfig(pcm_1f=False, output_noise=0.0),
        circuit=CircuitConfig(),
    )
    layer = PIMLinear(256, 256, bias=False, config=cfg)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    layer.program()
    for t, coeff in ((0.0, WAN_1S), (86400.0, WAN_1D)):
        layer.drift(t)
        err = layer.to_torch("effective").weight.detach() - 1.0
        pair = math.hypot(wan_sigma(1.0, coeff), wan_sigma(0.5, coeff)) / 20e-6
        assert float(err.std()) == pytest.approx(pair, rel=0.02), t
        assert abs(float(err.mean())) < 5 * pair / 256
