"""PIM cost model: structure, and calibration against NeuroSim 1.4 and IBM HERMES."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import physnn
from physnn.pim import PIMConv2d, PIMLinear, crossbar_cost, presets

# VGG-8 for CIFAR-10 as in DNN+NeuroSim: (in_channels, out_channels, output side) per 3x3 conv,
# then two fully connected layers.
VGG8_CONVS = [
    (3, 128, 32),
    (128, 128, 32),
    (128, 256, 16),
    (256, 256, 16),
    (256, 512, 8),
    (512, 512, 8),
]
VGG8_FCS = [(8192, 1024), (1024, 10)]


def vgg8_cost(preset: str) -> physnn.Cost:
    cfg = presets.get(preset)
    total = physnn.Cost()
    for c_in, c_out, side in VGG8_CONVS:
        total = total + crossbar_cost(cfg, 9 * c_in, c_out, side * side)
    for n_in, n_out in VGG8_FCS:
        total = total + crossbar_cost(cfg, n_in, n_out, 1)
    return total


def test_vgg8_on_neurosim_preset_within_2x_of_published_tops_per_watt() -> None:
    """NeuroSim 1.4, VGG-8, RRAM 22 nm: 11.25 TOPS/W (19.88 with 64 rows in parallel)."""
    cost = vgg8_cost("neurosim-rram")
    macs = sum(9 * i * o * s * s for i, o, s in VGG8_CONVS) + sum(i * o for i, o in VGG8_FCS)
    assert cost.macs == macs
    assert 11.25 / 2 <= cost.tops_per_watt <= 19.88 * 2


def test_hermes_core_within_2x_of_measured_efficiency_and_throughput() -> None:
    """HERMES (Le Gallo et al. 2023): 256x256 cores, 9.76 TOPS/W, 63.1 TOPS with 64 cores."""
    cost = crossbar_cost(presets.get("hermes"), 256, 256, 1)
    assert 9.76 / 2 <= cost.tops_per_watt <= 9.76 * 2
    tops = 64 * 2 * cost.macs / cost.latency / 1e12
    assert 63.1 / 2 <= tops <= 63.1 * 2


def test_layer_cost_is_crossbar_cost_per_mvm() -> None:
    cfg = presets.get("pcm", seed=0)
    conv = PIMConv2d(3, 8, 3, padding=1, config=cfg)
    per_position = crossbar_cost(cfg, 27, 8, 1)
    got = conv.cost((2, 3, 10, 10))
    assert got.energy == pytest.approx(per_position.energy * 200)
    assert got.macs == physnn.cost(nn.Conv2d(3, 8, 3, padding=1), (2, 3, 10, 10)).macs
    linear = PIMLinear(600, 300, config=cfg)
    assert linear.cost((5, 600)).energy == pytest.approx(crossbar_cost(cfg, 600, 300, 5).energy)


def test_cost_follows_the_periphery() -> None:
    pcm = presets.get("pcm")
    base = crossbar_cost(pcm, 512, 512, 1)
    serial = crossbar_cost(pcm.replace(dac=pcm.dac.replace(bit_serial=True)), 512, 512, 1)
    assert serial.resources["adc_conversions"] == 7 * base.resources["adc_conversions"]
    six_bit = crossbar_cost(pcm.replace(adc=pcm.adc.replace(bits=6)), 512, 512, 1)
    adc_energy = 512 * pcm.energy.adc_fom * (2**8 - 2**6)  # Walden: energy per step
    io_energy = 512 * (8 - 6) / 8 * pcm.energy.io_energy_per_byte  # fewer output bytes
    assert base.energy - six_bit.energy == pytest.approx(adc_energy + io_energy)
    tiled = crossbar_cost(pcm.replace(mapping=pcm.mapping.replace(tile_rows=128)), 512, 512, 1)
    assert tiled.resources["adc_conversions"] == 4 * base.resources["adc_conversions"]
    assert tiled.area > 0 and math.isfinite(tiled.latency)


def test_physnn_cost_of_converted_model_needs_no_forward() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    converted = physnn.convert(model, presets.get("pcm", seed=0))
    total = physnn.cost(converted, (4, 64))
    expected = crossbar_cost(presets.get("pcm"), 64, 32, 4) + crossbar_cost(
        presets.get("pcm"), 32, 10, 4
    )
    assert total.energy == pytest.approx(expected.energy)
    assert total.macs == 4 * (64 * 32 + 32 * 10)
