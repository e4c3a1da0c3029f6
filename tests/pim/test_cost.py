"""PIM cost model: fitted calibrations, a prediction of a chip not used for fitting, and the
energy breakdown against hand computations from the cited coefficients.

Fitted (the coefficients were chosen to reproduce these): NeuroSim 1.4 VGG-8 on the
``neurosim-rram`` preset, IBM HERMES (Le Gallo et al., Nat. Electron. 6, 680, 2023) on the
``hermes`` preset. Predicted (not used for any coefficient): the analog-AI chip of Ambrogio
et al., Nature 620, 768, 2023.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import physnn
from physnn.pim import PIMConv2d, PIMLinear, crossbar_cost, presets
from physnn.pim.config import EnergyConfig

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

# HERMES-fitted coefficients as cited in the hermes preset (written out, not read back)
V_READ = 0.3  # [V]
T_PULSE = 128e-9  # 8-bit PWM full-scale pulse [s]
G_MAX = 25e-6  # [S]
MEAN_STATE, ACTIVITY = 0.25, 0.5  # assumptions of the analytic cost
ADC_FOM = 50e-15  # fitted [J per step]
DAC_ENERGY, ACCUMULATE, IO_PER_BYTE = 0.1e-12, 0.03e-12, 1e-12  # [J]
T_LSB, T_DIGITAL = 0.3e-9, 5e-9  # 300 ps per LSB (published), digital latency (fitted) [s]


def vgg8_cost(preset: str) -> physnn.Cost:
    cfg = presets.get(preset)
    total = physnn.Cost()
    for c_in, c_out, side in VGG8_CONVS:
        total = total + crossbar_cost(cfg, 9 * c_in, c_out, side * side)
    for n_in, n_out in VGG8_FCS:
        total = total + crossbar_cost(cfg, n_in, n_out, 1)
    return total


# --------------------------------------------------------------------------- fitted


def test_vgg8_on_neurosim_preset_inside_the_published_range() -> None:
    """Fitted: NeuroSim 1.4, VGG-8, RRAM 22 nm: 11.25 TOPS/W (19.88 with 64 rows in parallel)."""
    cost = vgg8_cost("neurosim-rram")
    macs = sum(9 * i * o * s * s for i, o, s in VGG8_CONVS) + sum(i * o for i, o in VGG8_FCS)
    assert cost.macs == macs
    assert 11.25 <= cost.tops_per_watt <= 19.88


def test_hermes_core_reproduces_its_fitted_efficiency_and_throughput() -> None:
    """Fitted: HERMES, 256x256 cores, 9.76 TOPS/W and 63.1 TOPS with 64 cores."""
    cost = crossbar_cost(presets.get("hermes"), 256, 256, 1)
    assert cost.tops_per_watt == pytest.approx(9.76, rel=0.05)
    tops = 64 * 2 * cost.macs / cost.latency / 1e12
    assert tops == pytest.approx(63.1, rel=0.05)


def test_hermes_breakdown_by_hand() -> None:
    """Every component of one 256x256 MVM from the cited coefficients."""
    cost = crossbar_cost(presets.get("hermes"), 256, 256, 1)
    devices = 256 * 256 * 4  # 2 polarities x 2 devices per polarity
    hand = {
        "cell_energy": devices * V_READ**2 * MEAN_STATE * G_MAX * T_PULSE * ACTIVITY,
        "dac_energy": 256 * DAC_ENERGY,
        "adc_energy": 256 * ADC_FOM * 2**8,
        "accumulation_energy": 256 * ACCUMULATE,
        "io_energy": (256 + 256) * IO_PER_BYTE,  # 8-bit inputs and outputs
    }
    for key, value in hand.items():
        assert cost.resources[key] == pytest.approx(value, rel=1e-12), key
    assert cost.energy == pytest.approx(sum(hand.values()), rel=1e-12)
    # a counting ADC counts 2^8 x 300 ps = 77 ns inside the 128 ns pulse
    assert cost.latency == pytest.approx(T_PULSE + T_DIGITAL, rel=1e-12)
    assert any("0.25 g_max" in a for a in cost.assumptions)
    assert any("activity 0.5" in a for a in cost.assumptions)


# --------------------------------------------------------------------------- predicted


def test_predicts_the_ibm_analog_ai_chip_within_2x_without_fitting_it() -> None:
    """Ambrogio et al., Nature 620, 768 (2023), abstract: 14 nm, 35 million PCM devices on 34
    tiles (512 x 2048 devices per tile), "up to 12.4 TOPS/W chip-sustained". Its geometry:
    512 rows x 512 weights per tile, 4 devices per weight (2 per polarity), 8-bit
    pulse-duration inputs, 8-bit outputs; every coefficient is the HERMES fit (same 14 nm PCM
    technology), none was tuned to this chip."""
    assert abs(34 * 512 * 2048 - 35e6) < 0.02 * 35e6
    hermes = presets.get("hermes")
    chip = hermes.replace(mapping=hermes.mapping.replace(tile_rows=512, tile_cols=512))
    cost = crossbar_cost(chip, 512, 512, 1)
    assert 12.4 / 2 <= cost.tops_per_watt <= 12.4 * 2
    devices = 512 * 512 * 4
    hand_energy = (
        devices * V_READ**2 * MEAN_STATE * G_MAX * T_PULSE * ACTIVITY
        + 512 * (DAC_ENERGY + ADC_FOM * 2**8 + ACCUMULATE)
        + (512 + 512) * IO_PER_BYTE
    )
    assert cost.tops_per_watt == pytest.approx(2 * 512 * 512 / hand_energy / 1e12, rel=1e-12)


def test_pcm_uses_the_hermes_calibration() -> None:
    """The default preset costs with the HERMES-fitted coefficients at HERMES's read voltage;
    on a 256x256 layer (one tile in both) it differs from hermes only by its one device per
    polarity, which halves the cell energy."""
    pcm, hermes = presets.get("pcm"), presets.get("hermes")
    assert pcm.energy == hermes.energy == EnergyConfig()
    assert pcm.circuit.v_read == hermes.circuit.v_read == V_READ
    a, b = crossbar_cost(pcm, 256, 256, 1), crossbar_cost(hermes, 256, 256, 1)
    assert a.resources["cell_energy"] == pytest.approx(b.resources["cell_energy"] / 2)
    for key in ("adc_energy", "dac_energy", "accumulation_energy", "io_energy"):
        assert a.resources[key] == pytest.approx(b.resources[key]), key
    cells = 256 * 256 * 4 * V_READ**2 * MEAN_STATE * G_MAX * T_PULSE * ACTIVITY
    rest = 256 * (DAC_ENERGY + ADC_FOM * 2**8 + ACCUMULATE) + 512 * IO_PER_BYTE
    ratio = (cells + rest) / (cells / 2 + rest)
    assert a.tops_per_watt / b.tops_per_watt == pytest.approx(ratio, rel=1e-12)
    assert ratio < 1.6


def test_every_preset_citation_says_what_was_fitted_and_what_is_predicted() -> None:
    for name in presets.names():
        text = presets.citation(name)
        assert "fitted" in text or "prediction" in text or "not a fit" in text, name
    assert "fitted" in presets.citation("hermes") and "Predicted" in presets.citation("hermes")
    assert "fitted" in presets.citation("neurosim-rram")


# --------------------------------------------------------------------------- from data


def test_cell_energy_from_conductances_and_inputs_by_hand() -> None:
    torch.manual_seed(0)
    cfg = presets.get("pcm")
    n_in, n_out, n_mvm = 6, 5, 4
    g = torch.rand(1, 2, 1, n_in, n_out, dtype=torch.float64) * G_MAX
    x = torch.rand(n_mvm, n_in, dtype=torch.float64) * 2 - 1
    cost = crossbar_cost(cfg, n_in, n_out, n_mvm, conductance=g, inputs=x)
    hand = 0.0
    for m in range(n_mvm):
        for i in range(n_in):
            width = round(abs(float(x[m, i])) * 127) / 127  # 8-bit PWM pulse width
            for p in range(2):
                for j in range(n_out):
                    hand += V_READ**2 * float(g[0, p, 0, i, j]) * width * T_PULSE
    assert cost.resources["cell_energy"] == pytest.approx(hand, rel=1e-12)
    assert cost.assumptions == ()


def test_bit_serial_cell_energy_counts_the_ones_of_each_code() -> None:
    base = presets.get("pcm")
    cfg = base.replace(dac=base.dac.replace(bit_serial=True))
    g = torch.full((1, 2, 1, 3, 2), 10e-6, dtype=torch.float64)
    x = torch.tensor([[1.0, -0.5, 3 / 127], [0.0, 0.25, -1.0]], dtype=torch.float64)
    cost = crossbar_cost(cfg, 3, 2, 2, conductance=g, inputs=x)
    ones = sum(bin(round(abs(float(v)) * 127)).count("1") for v in x.flatten())
    hand = V_READ**2 * T_PULSE * ones * 4 * 10e-6  # 4 devices per row
    assert cost.resources["cell_energy"] == pytest.approx(hand, rel=1e-12)
    assert cost.resources["adc_conversions"] == 2 * 2 * 7  # one per magnitude bit


def test_reference_devices_count_once_per_row_and_column_tile() -> None:
    base = presets.get("pcm")
    cfg = base.replace(mapping=base.mapping.replace(scheme="reference", tile_cols=4))
    n_in, n_out = 3, 8  # two column tiles of 4
    g = torch.zeros(1, 2, 1, n_in, n_out, dtype=torch.float64)
    g[0, 0] = 2e-6
    g[0, 1] = 12.5e-6  # the reference device, replicated over its tile's columns
    x = torch.ones(1, n_in, dtype=torch.float64)
    cost = crossbar_cost(cfg, n_in, n_out, 1, conductance=g, inputs=x)
    hand = V_READ**2 * T_PULSE * n_in * (n_out * 2e-6 + 2 * 12.5e-6)
    assert cost.resources["cell_energy"] == pytest.approx(hand, rel=1e-12)


def test_a_programmed_layer_costs_its_real_conductances() -> None:
    """Gaussian weights leave most devices far below 0.25 g_max: less cell energy."""
    torch.manual_seed(0)
    cfg = presets.get("pcm", seed=0)
    layer = PIMLinear(64, 32, config=cfg)
    x = torch.randn(16, 64)
    scaled = x / x.abs().amax(-1, keepdim=True)  # the dynamic input range of the preset
    g = layer.tile.conductance
    data = crossbar_cost(cfg, 64, 32, 16, conductance=g, inputs=scaled)
    analytic = crossbar_cost(cfg, 64, 32, 16)
    rows = g.double().sum((0, 1, 2, 4))
    widths = torch.round(scaled.double().abs() * 127) / 127
    hand = V_READ**2 * T_PULSE * float((widths @ rows).sum())
    assert data.resources["cell_energy"] == pytest.approx(hand, rel=1e-9)
    assert data.resources["cell_energy"] < analytic.resources["cell_energy"]
    assert data.resources["adc_energy"] == analytic.resources["adc_energy"]


# --------------------------------------------------------------------------- latency, area


@pytest.mark.parametrize("bits", [4, 8])
def test_adc_latency_depends_on_the_converter(bits: int) -> None:
    base = presets.get("pcm")
    t_adc, pulse = 1e-9, 20e-9

    def latency(arch: str, columns: int = 1) -> float:
        energy = base.energy.replace(
            adc_architecture=arch, adc_time=t_adc, read_pulse=pulse, columns_per_adc=columns
        )
        cfg = base.replace(adc=base.adc.replace(bits=bits), energy=energy)
        return crossbar_cost(cfg, 64, 64, 1).latency

    assert latency("sar") == pytest.approx(pulse + bits * t_adc + T_DIGITAL)  # bits cycles
    assert latency("sar", 8) == pytest.approx(pulse + 8 * bits * t_adc + T_DIGITAL)
    assert latency("flash") == pytest.approx(pulse + t_adc + T_DIGITAL)
    assert latency("counting") == pytest.approx(max(pulse, 2**bits * t_adc) + T_DIGITAL)
    with pytest.raises(ValueError, match="columns_per_adc=8"):
        base.energy.replace(adc_architecture="counting", columns_per_adc=8)


def test_reference_columns_are_counted_in_the_area() -> None:
    base = presets.get("pcm")
    e = base.energy
    ref = base.replace(mapping=base.mapping.replace(scheme="reference"))
    cost = crossbar_cost(ref, 512, 512, 1)
    cells = 512 * 512 + 512  # one device per weight plus the reference column
    hand = cells * e.cell_area + 512 * e.adc_area + 512 * e.dac_area
    assert cost.area == pytest.approx(hand, rel=1e-12)


# --------------------------------------------------------------------------- structure


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
    adc_energy = 512 * ADC_FOM * (2**8 - 2**6)  # Walden: energy per step
    io_energy = 512 * (8 - 6) / 8 * IO_PER_BYTE  # fewer output bytes
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


def test_bad_data_is_refused_with_the_fix() -> None:
    cfg = presets.get("pcm")
    with pytest.raises(ValueError, match=r"\[S, 2, D, n_in, n_out\]"):
        crossbar_cost(cfg, 4, 3, 1, conductance=torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="n_in=4"):
        crossbar_cost(cfg, 4, 3, 1, conductance=torch.zeros(1, 2, 1, 5, 3))
    with pytest.raises(ValueError, match="n_mvm=2"):
        crossbar_cost(cfg, 4, 3, 2, inputs=torch.zeros(3, 4))
    with pytest.raises(ValueError, match="finite"):
        crossbar_cost(cfg, 4, 3, 1, inputs=torch.full((1, 4), float("nan")))
