"""DigitalConfig refuses what cannot run, at construction, naming the field and the fix."""

from __future__ import annotations

import math

import pytest
import torch

from physnn.digital import DigitalConfig, DigitalLinear


@pytest.mark.parametrize("bits", [-3, 0, 1])
def test_bits_below_two_are_refused_at_construction(bits: int) -> None:
    """Issue 15 item 4: ``bits=1`` constructed and gave NaN outputs."""
    with pytest.raises(ValueError, match=r"DigitalConfig\.bits=.*bits >= 2"):
        DigitalConfig(bits=bits)


@pytest.mark.parametrize(("field", "value"), [("bits", 33), ("bits", 8.0), ("bits", True)])
def test_other_bad_bits(field: str, value: object) -> None:
    with pytest.raises((ValueError, TypeError), match="bits"):
        DigitalConfig(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16, 24, 31, 32])
def test_every_allowed_precision_runs_finite(bits: int) -> None:
    torch.manual_seed(bits)
    layer = DigitalLinear(6, 4, config=DigitalConfig(bits=bits))
    x = torch.randn(5, 6, requires_grad=True)
    y = layer(x)
    y.square().sum().backward()
    assert torch.isfinite(y).all()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("mac_energy", 0.23, "joules"),
        ("utilization", 13.0, "fraction"),
        ("peak_macs_per_second", 0.0, "peak_macs_per_second"),
        ("sram_bit_area", 0.35, "square metres"),
        ("weights_from_dram", 1, "bool"),
    ],
)
def test_unit_slips_name_the_field_and_the_fix(field: str, value: object, hint: str) -> None:
    with pytest.raises((ValueError, TypeError), match=hint):
        DigitalConfig(**{field: value})  # type: ignore[arg-type]


def test_a_throughput_that_underflows_is_refused() -> None:
    """peak * utilization below 1 MAC/s would make the latency infinite (the thorough config
    fuzz found 1e-300 * 1e-300 dividing the latency by zero)."""
    with pytest.raises(ValueError, match="utilization"):
        DigitalConfig(peak_macs_per_second=2.0, utilization=1e-3)
    slow = DigitalConfig(peak_macs_per_second=1e3, utilization=1e-3)  # 1 MAC/s: allowed
    latency = DigitalLinear(4, 2, config=slow).cost((1, 4)).latency
    assert math.isfinite(latency) and latency >= 8.0  # 8 MACs at 1 MAC/s
