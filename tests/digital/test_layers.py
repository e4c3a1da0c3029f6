"""The digital reference backend."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import physnn
from physnn.common.quant import fake_quantize
from physnn.common.testing import assert_matches_torch_when_ideal, check_backend
from physnn.digital import (
    DigitalConfig,
    DigitalConv1d,
    DigitalConv2d,
    DigitalLinear,
    presets,
)


def test_conformance_suite_all_presets() -> None:
    check_backend("digital")


@given(bits=st.integers(2, 12), seed=st.integers(0, 1000))
def test_fake_quantize_on_grid_idempotent_and_straight_through(bits: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(50, generator=g, dtype=torch.float64, requires_grad=True)
    q = fake_quantize(x, bits)
    step = x.detach().abs().max() / (2 ** (bits - 1) - 1)
    codes = q.detach() / step
    torch.testing.assert_close(codes, codes.round(), atol=1e-9, rtol=0)
    assert (q.detach() - x.detach()).abs().max() <= step / 2 + 1e-12
    torch.testing.assert_close(fake_quantize(q.detach(), bits), q.detach())
    q.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.ones_like(x))


def test_int8_layer_quantises_and_ideal_matches_torch() -> None:
    lin = nn.Linear(16, 8)
    layer = DigitalLinear.from_torch(lin, presets.get("int8"))
    x = torch.rand(4, 16)
    assert not torch.equal(layer(x), lin(x))
    torch.testing.assert_close(layer(x), lin(x), atol=0.05, rtol=0.05)
    assert_matches_torch_when_ideal(layer, lin, x)
    fp32 = DigitalLinear.from_torch(lin, presets.get("fp32"))
    torch.testing.assert_close(fp32(x), lin(x))


def test_conv_layer_matches_torch_and_state_dict_keys() -> None:
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=True)
    layer = DigitalConv2d.from_torch(conv, presets.get("fp32"))
    x = torch.rand(2, 2, 5, 5)
    torch.testing.assert_close(layer(x), conv(x))
    assert set(layer.state_dict()) == set(conv.state_dict()) | {"_extra_state"}
    assert "preset=digital:fp32" in repr(layer)
    assert type(layer.to_torch()) is nn.Conv2d
    with pytest.raises(TypeError, match=r"nn\.Conv2d"):
        DigitalConv2d.from_torch(nn.Conv1d(1, 1, 1))


def test_state_dict_restores_config() -> None:
    a = DigitalLinear(4, 2, config=presets.get("fp32"))
    b = DigitalLinear(4, 2)
    b.load_state_dict(a.state_dict())
    assert b.config == a.config and torch.equal(b.weight, a.weight)


def test_bad_config_and_input() -> None:
    with pytest.raises(ValueError, match=r"mac_energy=0\.23 J .*0\.23e-12"):
        DigitalConfig(mac_energy=0.23)
    with pytest.raises(ValueError, match="utilization"):
        DigitalConfig(utilization=13.0)
    with pytest.raises(TypeError, match="DigitalConfig"):
        DigitalLinear(2, 2, config=object())  # type: ignore[arg-type]
    layer = DigitalLinear(3, 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        layer(torch.tensor([[1.0, float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="expected 3"):
        layer(torch.rand(2, 4))


def test_presets_are_cited_and_gpu_is_less_efficient_than_asic() -> None:
    for name in presets.names():
        assert presets.citation(name)
    model = nn.Sequential(nn.Linear(64, 64))
    gpu = physnn.cost(physnn.convert(model, "digital:gpu-a100"), (1, 64))
    asic = physnn.cost(physnn.convert(model, "digital:int8"), (1, 64))
    # A100 board-level ~1.6 TOPS/W vs a 45 nm int8 datapath with SRAM reads.
    assert gpu.tops_per_watt == pytest.approx(2 / (400 / 312e12) / 1e12, rel=1e-9)
    assert asic.macs == gpu.macs


def _int_grid_reference(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Slow per-sample symmetric quantiser written from its definition (independent of
    physnn.common.quant): each sample's own max-abs over ``2**(bits-1) - 1`` levels."""
    levels = 2 ** (bits - 1) - 1
    rows = []
    for sample in x:
        scale = float(sample.abs().max()) / levels
        rows.append(torch.round(sample / scale) * scale if scale > 0 else sample)
    return torch.stack(rows)


def test_int4_outputs_are_independent_of_batch_size_and_composition() -> None:
    """Issue 15 item 3: one bright image in the batch must not change the others' outputs
    (one batch-wide scale gave 90.5 % accuracy at batch 1 and 10.3 % at batch 512)."""
    torch.manual_seed(3)
    layer = DigitalLinear(16, 5, config=DigitalConfig(bits=4)).eval()
    x = torch.rand(64, 16)
    bright = torch.full((1, 16), 1000.0)
    with torch.no_grad():
        alone = torch.cat([layer(x[i : i + 1]) for i in range(len(x))])
        batched = layer(x)
        with_bright = layer(torch.cat([x[:20], bright, x[20:]]))
        shuffled = torch.randperm(len(x))
        permuted = layer(x[shuffled])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        torch.cat([with_bright[:20], with_bright[21:]]), alone, rtol=0, atol=1e-6
    )
    torch.testing.assert_close(permuted, alone[shuffled], rtol=0, atol=1e-6)
    # And the arithmetic is the integer grid: per-sample activations, per-tensor weights.
    w = layer.weight.detach()
    want = nn.functional.linear(
        _int_grid_reference(x, 4),
        _int_grid_reference(w.reshape(1, -1), 4).reshape(w.shape),
        layer.bias,
    )
    torch.testing.assert_close(batched, want, rtol=1e-5, atol=1e-5)


def test_int4_conv_is_batch_independent() -> None:
    torch.manual_seed(4)
    conv = DigitalConv2d.from_torch(nn.Conv2d(1, 3, 3), DigitalConfig(bits=4)).eval()
    x = torch.rand(8, 1, 6, 6)
    with torch.no_grad():
        alone = torch.cat([conv(x[i : i + 1]) for i in range(len(x))])
        mixed = conv(torch.cat([x, torch.full((1, 1, 6, 6), 500.0)]))[:-1]
    torch.testing.assert_close(mixed, alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(0, 6), (3, 0, 6), (0, 2, 6)])
def test_empty_batches_give_empty_outputs(shape: tuple[int, ...]) -> None:
    """Issue 15 item 9: an empty batch crashed digital int8."""
    layer = DigitalLinear(6, 4)
    y = layer(torch.zeros(shape))
    assert y.shape == (*shape[:-1], 4)
    conv = DigitalConv1d.from_torch(nn.Conv1d(2, 3, 3))
    assert conv(torch.zeros(0, 2, 7)).shape == (0, 3, 5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_runs_in_a_half_model_and_is_refused_clearly_otherwise(
    dtype: torch.dtype,
) -> None:
    """Issue 15 item 9: fp16/bf16 inputs work (in a model of that dtype) or are refused."""
    torch.manual_seed(5)
    layer = DigitalLinear(6, 4)
    x = torch.randn(3, 6)
    with pytest.raises(TypeError, match=r"input dtype .* differs .* cast"):
        layer(x.to(dtype))
    half = DigitalLinear(6, 4, dtype=dtype)
    with torch.no_grad():
        half.weight.copy_(layer.weight.to(dtype))
        half.bias.copy_(layer.bias.to(dtype))
        y = half(x.to(dtype))
        want = layer(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    # Half precision rounds again after the int8 grid: agree to the half format's precision.
    torch.testing.assert_close(y.float(), want, rtol=0.05, atol=0.05)
