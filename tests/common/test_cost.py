"""Cost records, analytic MAC counts and the cost tracker."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import physnn
from physnn import Cost, CostTracker, cost
from physnn.common.cost import count_macs, leaf_shapes
from physnn.common.testing import assert_cost_additive
from physnn.digital import presets as digital_presets


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_acceptance_mlp_macs_energy_and_batch_scaling() -> None:
    one = cost(mlp(), (1, 64))
    eight = cost(mlp(), (8, 64))
    assert one.macs == 64 * 32 + 32 * 10 == 2368
    assert one.energy > 0 and one.latency > 0
    assert eight.macs == 8 * one.macs
    assert eight.energy == pytest.approx(8 * one.energy, rel=1e-12)
    assert eight.latency == pytest.approx(8 * one.latency, rel=1e-12)
    assert eight.area == one.area


def test_energy_follows_the_digital_model_by_hand() -> None:
    cfg = digital_presets.get("int8")
    c = cost(nn.Linear(64, 32), (1, 64))
    weights = 64 * 32 + 32
    by_hand = 2048 * cfg.mac_energy + (weights + 64 + 32) * cfg.sram_energy_per_byte
    assert c.energy == pytest.approx(by_hand, rel=1e-12)
    assert c.latency == pytest.approx(2048 / (cfg.peak_macs_per_second * cfg.utilization))


def slow_conv_macs(conv: nn.Conv2d, shape: tuple[int, int, int, int]) -> int:
    # Direct count: run the convolution and count one MAC per kernel tap per output.
    out = conv(torch.zeros(shape))
    kh, kw = conv.kernel_size
    return out.numel() * (conv.in_channels // conv.groups) * kh * kw


@given(
    cin=st.integers(1, 4),
    cout=st.integers(1, 4),
    k=st.integers(1, 3),
    stride=st.integers(1, 2),
    pad=st.integers(0, 2),
    size=st.integers(4, 9),
)
def test_conv_macs_match_direct_count(
    cin: int, cout: int, k: int, stride: int, pad: int, size: int
) -> None:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad)
    shape = (2, cin, size, size + 1)
    assert count_macs(conv, shape) == slow_conv_macs(conv, shape)


def test_lstm_macs() -> None:
    lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True)
    # 4 gates x hidden x (input + hidden) per step, per sample; layer 2 sees width 7.
    want = 3 * 10 * (4 * 7 * (5 + 7) + 4 * 7 * (7 + 7))
    assert count_macs(lstm, (3, 10, 5)) == want


def test_cnn_cost_with_flatten_and_pooling() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 10),
    )
    c = cost(model, (2, 1, 8, 8))
    assert c.macs == 2 * (4 * 8 * 8 * 9) + 2 * 64 * 10


class Residual(nn.Module):
    """A model that is not a Sequential: shapes are traced."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)) + x)


def test_traced_model_costs_match_sequential_counting() -> None:
    c = cost(Residual(), (4, 8))
    assert c.macs == 4 * (64 + 24)
    names = [n for n, _, _ in leaf_shapes(Residual(), (4, 8))]
    assert names == ["a", "b"]
    assert_cost_additive(Residual(), (4, 8))


def test_cost_addition_and_scaling() -> None:
    a = Cost(energy=1.0, latency=2.0, area=3.0, macs=4, resources={"adc": 1}, assumptions=("x",))
    b = Cost(energy=0.5, latency=0.5, area=1.0, macs=1, resources={"adc": 2, "shots": 3})
    s = a + b
    assert (s.energy, s.latency, s.area, s.macs) == (1.5, 2.5, 4.0, 5)
    assert dict(s.resources) == {"adc": 3, "shots": 3}
    assert s.assumptions == ("x",)
    assert sum([a, b]) == s
    k = a.scale(3)
    assert (k.energy, k.latency, k.area, k.macs, k.resources["adc"]) == (3.0, 6.0, 3.0, 12, 3)
    assert a.tops_per_watt == pytest.approx(2 * 4 / 1.0 / 1e12)


@pytest.mark.parametrize("field", ["energy", "latency", "area"])
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_cost_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        Cost(**{field: value})


@pytest.mark.parametrize("shape", [(), (0, 64), (1.5, 64), "64"])
def test_cost_rejects_bad_shapes(shape: object) -> None:
    with pytest.raises((TypeError, ValueError), match="input_shape"):
        cost(mlp(), shape)  # type: ignore[arg-type]


def test_cost_rejects_non_modules() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        cost("model", (1, 2))  # type: ignore[arg-type]


def test_tracker_records_real_forward_passes() -> None:
    model = mlp()
    with CostTracker(model) as tracker:
        model(torch.rand(8, 64))
        model(torch.rand(2, 64))
    assert tracker.total.macs == 10 * 2368
    assert set(tracker.per_layer) == {"0", "1", "2"}
    assert tracker.per_layer["1"].macs == 0
    assert tracker.per_layer["0"].macs == 10 * 64 * 32
    assert tracker.total.energy == pytest.approx(cost(model, (10, 64)).energy)
    assert tracker.total.area == pytest.approx(cost(model, (1, 64)).area)
    # Hooks are removed on exit.
    model(torch.rand(1, 64))
    assert tracker.total.macs == 10 * 2368


def test_public_names_import() -> None:
    from physnn import CostTracker as CT
    from physnn import convert, to_torch

    assert callable(convert) and callable(to_torch) and CT is CostTracker
    with pytest.raises(AttributeError, match="no attribute"):
        physnn.not_a_name  # noqa: B018


def test_tracker_on_a_bare_physical_layer_records_only_that_layer() -> None:
    from physnn.common.cost import CostTracker
    from physnn.pim import PIMLinear
    from physnn.pim import presets as pim_presets

    layer = PIMLinear.from_torch(nn.Linear(6, 4), pim_presets.get("pcm", seed=0))
    layer.eval()
    with CostTracker(layer) as tracker:
        layer(torch.rand(3, 6))
    assert [name for name, _ in tracker.records] == [""]
    assert tracker.total.energy == layer.cost((3, 6)).energy
