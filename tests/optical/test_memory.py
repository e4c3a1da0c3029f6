"""The diffractive memory guard (issue 15, item 10): a forward above the budget is refused
before it propagates, with the estimate and a fix that works; the estimate is an upper
bound of the real peak (measured with an allocation meter) within 4x."""

from __future__ import annotations

import pytest
import torch

from physnn.common import memory
from physnn.common.memory import AllocationMeter, MemoryBudgetError
from physnn.optical import presets
from physnn.optical.config import OpticalConfig
from physnn.optical.layers import DiffractiveNetwork, OpticalLinear
from physnn.optical.memory import forward_bytes

MiB = 2**20


def _config() -> OpticalConfig:
    """24 x 24 neurons, 3 samples per neuron (72 x 72 fields on a 144 x 144 FFT grid)."""
    return presets.get("thz-compact").replace(seed=0)


def test_network_above_the_budget_is_refused_before_propagating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = DiffractiveNetwork(10, config=_config())
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 64 * MiB)
    images = torch.rand(128, 12, 12)
    with AllocationMeter() as meter, pytest.raises(MemoryBudgetError) as info:
        net(images)
    # only the encoded input exists (128 fields of 72 x 72 complex64), no padded field
    assert meter.peak <= 128 * 72 * 72 * 8 * 2
    message = str(info.value)
    assert (
        "DiffractiveNetwork: propagating 128 fields of 72x72 samples (FFT grid 144x144" in message
    )
    assert "limit of 0.0312 GiB" in message and "geometry.oversample" in message
    assert "torch.no_grad()" in message
    largest = int(message.split("a batch of at most ")[1].split(",")[0])
    assert 1 <= largest < 128
    assert net(images[:largest]).shape == (largest, 10)  # the suggested batch fits


def test_optical_linear_names_its_inputs_as_the_fix() -> None:
    """OpticalLinear propagates one field per input feature, whatever the batch (already
    when it is built: the initial gain is measured through the stack)."""
    config = _config().with_changes({"simulation.memory_limit": 2 * MiB})
    with pytest.raises(MemoryBudgetError, match=r"propagating 16 fields ") as info:
        OpticalLinear(16, 4, config=config)
    largest = int(str(info.value).split("at most ")[1].split(" input features")[0])
    assert 1 <= largest < 16
    with torch.no_grad():  # the suggestion is for the refused (gradient-free) propagation
        assert OpticalLinear(largest, 4, config=config)(torch.rand(3, largest)).shape == (3, 4)


def _peak(module: torch.nn.Module, x: torch.Tensor, *, grad: bool) -> int:
    module(x)  # transfer functions cached, as in every later forward
    with AllocationMeter() as meter:
        if grad:
            module(x).square().sum().backward()
        else:
            with torch.no_grad():
                module(x)
    return meter.peak


@pytest.mark.parametrize("grad", [False, True])
def test_network_estimate_bounds_the_real_peak(grad: bool) -> None:
    config = _config()
    net = DiffractiveNetwork(10, config=config).train(grad)
    peak = _peak(net, torch.rand(16, 12, 12), grad=grad)
    estimate = forward_bytes(config, size=24, batch=16, grad=grad)
    assert peak <= estimate <= 4 * peak, (estimate, peak)


def test_two_wavelengths_keep_twice_the_fields() -> None:
    base = _config()
    g = base.geometry
    config = base.replace(geometry=g.replace(wavelengths=(1.1 * g.wavelength,), oversample=2))
    net = DiffractiveNetwork(10, config=config).train()
    peak = _peak(net, torch.rand(8, 12, 12), grad=True)
    estimate = forward_bytes(config, size=24, batch=8, grad=True)
    assert peak <= estimate <= 4 * peak, (estimate, peak)


def test_optical_linear_estimate_bounds_the_real_peak() -> None:
    config = _config()
    layer = OpticalLinear(16, 4, config=config)
    peak = _peak(layer, torch.rand(8, 16), grad=True)
    estimate = forward_bytes(config, size=layer.size, batch=16, grad=True)
    assert peak <= estimate <= 4 * peak, (estimate, peak)
