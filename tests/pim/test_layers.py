"""PIM layers: fidelity against torch and slow references, noise statistics, chip state."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import physnn
from physnn.common.testing import reset_streams
from physnn.pim import (
    PIMGRU,
    PIMLSTM,
    CrossbarTile,
    DriftConfig,
    PIMConfig,
    PIMConv1d,
    PIMConv2d,
    PIMLinear,
    drift,
    presets,
)


def noiseless(**blocks: object) -> PIMConfig:
    """A config that goes through the crossbar path (mapping, tiles) with no noise at all.

    A zero drift exponent marks the config as non-ideal without changing any value.
    """
    base = presets.get("ideal", seed=0)
    cfg = base.replace(drift=DriftConfig(model="constant", nu_mean=0.0, compensation="none"))
    return cfg.replace(**blocks) if blocks else cfg


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------- ideal equals torch


@pytest.mark.parametrize("preset", ["pcm", "hwa-rasch2023", "neurosim-rram"])
def test_ideal_context_equals_linear(preset: str) -> None:
    linear = nn.Linear(50, 20)
    layer = PIMLinear.from_torch(linear, presets.get(preset, seed=1))
    x = torch.randn(7, 50)
    with physnn.ideal():
        torch.testing.assert_close(run(layer, x), linear(x))


def test_noiseless_crossbar_spanning_tiles_equals_linear() -> None:
    cfg = noiseless(mapping=presets.get("ideal").mapping.replace(tile_rows=16, tile_cols=8))
    linear = nn.Linear(50, 20)
    layer = PIMLinear.from_torch(linear, cfg)
    assert layer.tile.w_eff.shape[1] == 4  # four row tiles
    x = torch.randn(9, 50)
    torch.testing.assert_close(run(layer, x), linear(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 5, 3, stride=2, padding=1),
        nn.Conv2d(2, 4, (3, 2), dilation=2, padding="same", padding_mode="reflect"),
        nn.Conv1d(3, 6, 4, stride=2, padding=2),
        nn.Conv1d(2, 3, 3, padding="same", padding_mode="circular", bias=False),
    ],
)
def test_noiseless_conv_equals_torch(conv: nn.Module) -> None:
    cls = PIMConv2d if isinstance(conv, nn.Conv2d) else PIMConv1d
    mapping = presets.get("ideal").mapping.replace(tile_rows=7)
    layer = cls.from_torch(conv, noiseless(mapping=mapping))
    x = (
        torch.randn(2, conv.in_channels, 9, 8)
        if cls is PIMConv2d
        else torch.randn(2, conv.in_channels, 11)
    )
    torch.testing.assert_close(run(layer, x), conv(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(run(layer, x[0]), conv(x[0]), rtol=1e-5, atol=1e-5)
    assert layer.output_shape(tuple(x.shape)) == tuple(conv(x).shape)


@pytest.mark.parametrize("rnn_type", [nn.LSTM, nn.GRU])
def test_noiseless_recurrent_equals_torch(rnn_type: type[nn.LSTM] | type[nn.GRU]) -> None:
    rnn = rnn_type(5, 6, num_layers=2, batch_first=True, bidirectional=True)
    model = physnn.convert(nn.Sequential(rnn), noiseless())
    pim = model[0]
    assert isinstance(pim, PIMLSTM if rnn_type is nn.LSTM else PIMGRU)
    x = torch.randn(3, 4, 5)
    got, want = run(pim, x), rnn(x)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    if rnn_type is nn.LSTM:
        torch.testing.assert_close(got[1][0], want[1][0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got[1][1], want[1][1], rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(got[1], want[1], rtol=1e-5, atol=1e-5)
    back = physnn.to_torch(model)[0]
    assert type(back) is rnn_type
    torch.testing.assert_close(back(x)[0], want[0])


def test_recurrent_cost_counts_torch_macs() -> None:
    rnn = nn.LSTM(5, 6, num_layers=2)
    pim = PIMLSTM.from_torch(rnn, presets.get("pcm", seed=0))
    assert pim.cost((4, 3, 5)).macs == physnn.cost(rnn, (4, 3, 5)).macs


# ---------------------------------------------------------------- converters, tiles, slices


def test_adc_per_tile_matches_slow_tile_loop() -> None:
    """Partial sums of each row tile are converted separately, then added digitally."""
    bits, bound, rows = 4, 2.0, 16
    ideal = presets.get("ideal")
    cfg = noiseless(
        mapping=ideal.mapping.replace(tile_rows=rows),
        adc=ideal.adc.replace(bits=bits, output_bound=bound),
    )
    linear = nn.Linear(40, 6, bias=False)
    layer = PIMLinear.from_torch(linear, cfg)
    x = torch.randn(5, 40)
    w = linear.weight.detach().t()
    scale = w.abs().max()
    r = x.abs().amax(-1, keepdim=True)  # dynamic input range
    xn, wn = x / r, w / scale
    step = bound / (2 ** (bits - 1) - 1)
    total = torch.zeros(5, 6)
    per_tile = math.ceil(40 / math.ceil(40 / rows))
    for start in range(0, 40, per_tile):
        partial = xn[:, start : start + per_tile] @ wn[start : start + per_tile]
        total += torch.round(partial.clamp(-bound, bound) / step) * step
    torch.testing.assert_close(run(layer, x), total * r * scale, rtol=1e-5, atol=1e-6)


def test_bit_serial_inputs_equal_parallel_inputs_with_ideal_adc() -> None:
    ideal = presets.get("ideal")
    parallel = noiseless(dac=ideal.dac.replace(bits=6))
    serial = noiseless(dac=ideal.dac.replace(bits=6, bit_serial=True))
    linear = nn.Linear(12, 5)
    x = torch.randn(8, 12)
    a = run(PIMLinear.from_torch(linear, parallel), x)
    b = run(PIMLinear.from_torch(linear, serial), x)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a, linear(x), atol=1e-4)  # the DAC did quantise


def test_bit_sliced_weights_equal_quantised_weights() -> None:
    bits_per_cell, slices = 2, 3
    cfg = noiseless(
        mapping=presets.get("ideal").mapping.replace(bits_per_cell=bits_per_cell, slices=slices)
    )
    linear = nn.Linear(10, 4)
    w = linear.weight.detach()
    scale = w.abs().max()
    total = (2**bits_per_cell) ** slices - 1
    wq = torch.sign(w) * torch.round(w.abs() / scale * total) / total * scale
    x = torch.randn(6, 10)
    got = run(PIMLinear.from_torch(linear, cfg), x)
    torch.testing.assert_close(got, F.linear(x, wq, linear.bias), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- noise statistics


def test_measured_output_noise_matches_config() -> None:
    sigma = 0.1
    ideal = presets.get("ideal")
    cfg = noiseless(
        read=ideal.read.replace(output_noise=sigma),
        dac=ideal.dac.replace(range_mode="fixed", input_bound=2.0),
    )
    linear = nn.Linear(30, 40)
    layer = PIMLinear.from_torch(linear, cfg).eval()
    x = torch.rand(500, 30)
    with torch.no_grad():
        err = torch.cat([layer(x) - linear(x) for _ in range(4)])
    scale = float(linear.weight.detach().abs().max()) * 2.0  # weight scale times input range
    measured = float(err.std()) / scale
    assert abs(measured / sigma - 1) < 0.03
    assert abs(float(err.mean())) / scale < 0.01


def test_measured_per_read_weight_noise_matches_config() -> None:
    sigma = 0.05
    ideal = presets.get("ideal")
    cfg = noiseless(
        read=ideal.read.replace(weight_noise=sigma),
        dac=ideal.dac.replace(range_mode="fixed", input_bound=1.0),
    )
    linear = nn.Linear(20, 30, bias=False)
    layer = PIMLinear.from_torch(linear, cfg).eval()
    eye = torch.eye(20)  # one-hot inputs read one weight row each
    with torch.no_grad():
        reads = torch.stack([layer(eye) for _ in range(200)])
    scale = float(linear.weight.detach().abs().max())
    deviation = (reads - linear.weight.detach().t()) / scale
    assert abs(float(deviation.std()) / sigma - 1) < 0.03
    # the noise is redrawn per forward: consecutive reads differ
    assert not torch.equal(reads[0], reads[1])


def test_pcm_programming_noise_through_layer_matches_anchor() -> None:
    pcm = presets.get("pcm", seed=3)
    cfg = pcm.replace(mapping=pcm.mapping.replace(scale="layer"))  # one scale: targets 1, 0.5
    layer = PIMLinear(100, 100, bias=False, config=cfg)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:50] = 1.0  # normalised target 1.0 -> g_max
        layer.weight[50:] = 0.5  # -> g_max / 2
    layer.program()
    g_pos = layer.tile.conductance[0, 0, 0]  # [in, out]; out = weight row
    for rows, g in ((slice(0, 50), 1.0), (slice(50, 100), 0.5)):
        expected = (0.26348 + 1.9650 * g - 1.1731 * g**2) * 1e-6
        got = g_pos[:, rows]
        assert abs(float(got.std()) / expected - 1) < 0.05
        assert abs(float(got.mean()) - g * 25e-6) < 5 * expected / math.sqrt(got.numel())


def test_pcm_drift_exponents_depend_on_the_target_not_the_programming_noise() -> None:
    """The anchor's nu(g) uses g = G_target / g_max: programming noise must not change nu."""
    pcm = presets.get("pcm", seed=4)
    noisy = pcm.replace(programming=pcm.programming.replace(model="gaussian", sigma_abs=5e-6))
    clean = pcm.replace(programming=pcm.programming.replace(model="none"))
    linear = nn.Linear(40, 30)
    a = PIMLinear.from_torch(linear, noisy, name="fc")
    b = PIMLinear.from_torch(linear, clean, name="fc")
    assert not torch.allclose(a.tile.conductance, b.tile.conductance)
    torch.testing.assert_close(a.tile.drift_nu, b.tile.drift_nu, rtol=0, atol=0)


def test_shared_reference_device_has_one_state_per_row() -> None:
    """With scheme="reference" one device per row serves every column: one G_prog, one nu."""
    pcm = presets.get("pcm", seed=6)
    cfg = pcm.replace(mapping=pcm.mapping.replace(scheme="reference"))
    layer = PIMLinear(12, 9, config=cfg)
    for name in ("conductance", "drift_nu"):
        ref = getattr(layer.tile, name)[:, 1]  # [S, D, in, out]
        torch.testing.assert_close(ref, ref[..., :1].expand_as(ref), rtol=0, atol=0)
        assert ref[..., 0].std() > 0  # rows still differ


def test_drift_compensation_limits_error_growth() -> None:
    pcm = presets.get("pcm", seed=5)
    quiet = pcm.replace(
        read=pcm.read.replace(pcm_1f=False, output_noise=0.0),
        dac=pcm.dac.replace(bits=None),
        adc=pcm.adc.replace(bits=None),
    )
    linear = nn.Linear(64, 32)
    with torch.no_grad():
        linear.bias.zero_()
    x = torch.rand(256, 64, generator=torch.Generator().manual_seed(0))
    want = linear(x).detach()

    def errors(mode: str) -> tuple[float, float]:
        """Relative errors at 1 s and 1 year, averaged over four chips."""
        out = torch.zeros(2)
        for chip in "abcd":
            cfg = quiet.replace(drift=quiet.drift.replace(compensation=mode))
            layer = PIMLinear.from_torch(linear, cfg, name=chip)
            for i, t in enumerate((1.0, 3.15e7)):
                layer.drift(t)
                out[i] += float((run(layer, x) - want).norm() / want.norm()) / 4
        return float(out[0]), float(out[1])

    none0, none1 = errors("none")
    glob0, glob1 = errors("global")
    _, col1 = errors("column")
    assert none1 - none0 > 0.3  # uncompensated drift loses a third of the signal in a year
    assert glob1 - glob0 < 0.25 * (none1 - none0)
    assert col1 <= glob1 * 1.02


# ---------------------------------------------------------------- chip state


def faulty_config(seed: int) -> PIMConfig:
    pcm = presets.get("hwa-rasch2023", seed=seed)
    return pcm.replace(
        faults=pcm.faults.replace(stuck_off_rate=0.05, stuck_on_rate=0.02, stuck_random_rate=0.02),
        programming=pcm.programming.replace(device_variation=0.1),
        adc=pcm.adc.replace(gain_std=0.05, offset_std=0.02, noise=0.01),
    )


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4))


def test_state_dict_and_torch_save_reproduce_outputs_with_all_defects() -> None:
    model = physnn.convert(small_model(), faulty_config(1))
    drift(model, 3600.0)
    x = torch.rand(6, 12)
    reset_streams(model)
    buffer = io.BytesIO()
    torch.save(model, buffer)  # a saved model continues its noise streams where they were
    want = run(model, x)
    fresh = physnn.convert(small_model(), faulty_config(2))
    fresh.load_state_dict(model.state_dict())
    reset_streams(fresh)
    torch.testing.assert_close(run(fresh, x), want, rtol=0, atol=0)
    assert float(fresh[0].drift_time) == 3600.0
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(run(loaded, x), want, rtol=0, atol=0)
    assert set(nn.Linear(12, 10).state_dict()) <= set(model[0].state_dict())


def test_same_seed_same_chip_and_added_layer_changes_no_draws() -> None:
    a = physnn.convert(small_model(), faulty_config(4))
    b = physnn.convert(small_model(), faulty_config(4))
    bigger = small_model()
    bigger.add_module("3", nn.Linear(4, 3))
    c = physnn.convert(bigger, faulty_config(4))
    for name in ("conductance", "fault_mask", "drift_nu", "device_g_max", "adc_gain"):
        for idx in (0, 2):
            assert torch.equal(getattr(a[idx].tile, name), getattr(b[idx].tile, name))
            assert torch.equal(getattr(a[idx].tile, name), getattr(c[idx].tile, name))
    assert (a[0].tile.fault_mask > 0).any()
    other = physnn.convert(small_model(), faulty_config(5))
    assert not torch.equal(a[0].tile.conductance, other[0].tile.conductance)


def test_changed_weights_are_reprogrammed_lazily() -> None:
    layer = PIMLinear(8, 3, config=noiseless())
    x = torch.randn(4, 8)
    before = run(layer, x)
    with torch.no_grad():
        layer.weight.mul_(2.0)
    after = run(layer, x)
    torch.testing.assert_close(after, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)


def test_dtype_conversion_keeps_the_chip() -> None:
    layer = PIMLinear(8, 3, config=presets.get("pcm", seed=0))
    layer.drift(100.0)
    conductance = layer.tile.conductance.clone()
    layer.double()
    assert layer.tile.conductance.dtype == torch.float64
    assert float(layer.drift_time) == 100.0
    torch.testing.assert_close(layer.tile.conductance, conductance.double())
    assert torch.isfinite(run(layer, torch.rand(2, 8, dtype=torch.float64))).all()


def test_resample_noise_draws_a_new_chip_from_the_same_weights() -> None:
    layer = PIMLinear(16, 8, config=faulty_config(0))
    mask = layer.tile.fault_mask.clone()
    g = layer.tile.conductance.clone()
    layer.resample_noise()
    assert torch.equal(layer.tile.fault_mask, mask)  # same seed: same chip
    torch.testing.assert_close(layer.tile.conductance, g)
    unseeded = PIMLinear(16, 8, config=faulty_config(0).replace(seed=None))
    before = unseeded.tile.conductance.clone()
    unseeded.resample_noise()
    assert not torch.equal(unseeded.tile.conductance, before)


# ---------------------------------------------------------------- training (HWA)


def test_training_forward_injects_noise_and_learns_input_range() -> None:
    layer = PIMLinear(10, 4, config=presets.get("hwa-rasch2023", seed=0)).train()
    x = torch.randn(32, 10)
    a, b = layer(x), layer(x)
    assert not torch.equal(a, b)
    assert float(layer.tile.input_range.detach()) == pytest.approx(float(x.abs().max()))
    (layer(x * 5) ** 2).sum().backward()  # inputs beyond the range pull it up
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert layer.tile.input_range.grad is not None and float(layer.tile.input_range.grad) != 0.0


def test_after_step_clips_weights_to_sigma() -> None:
    layer = PIMLinear(50, 20, config=presets.get("pcm", seed=0))
    with torch.no_grad():
        layer.weight[0, 0] = 100.0
    bound = 2.5 * float(layer.weight.detach().std())  # clipping uses the std before the step
    inside = layer.weight.detach().abs() <= bound
    kept = layer.weight.detach()[inside].clone()
    layer.after_step()
    assert float(layer.weight.detach().abs().max()) == pytest.approx(bound)
    torch.testing.assert_close(layer.weight.detach()[inside], kept)


# ---------------------------------------------------------------- drift verb and bad input


def test_drift_reaches_every_crossbar_and_rejects_bad_times() -> None:
    model = physnn.convert(
        nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 3)), presets.get("pcm", seed=0)
    )
    drift(model, 86400.0)
    times = [m.drift_time for m in model.modules() if isinstance(m, CrossbarTile)]
    assert len(times) == 3 and all(t == 86400.0 for t in times)
    for bad in (-1.0, math.nan, math.inf, "1 day"):
        with pytest.raises(ValueError, match="seconds"):
            drift(model, bad)  # type: ignore[arg-type]


def test_bad_inputs_raise_clear_errors() -> None:
    cfg = presets.get("pcm", seed=0)
    layer = PIMLinear(4, 2, config=cfg)
    with pytest.raises(ValueError, match="NaN"):
        run(layer, torch.tensor([[math.nan, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="features"):
        run(layer, torch.rand(2, 5))
    with torch.no_grad():
        layer.weight[0, 0] = math.inf
    with pytest.raises(ValueError, match="weights"):
        layer.program()
    with pytest.raises(TypeError, match="proj_size"):
        PIMLSTM.from_torch(nn.LSTM(4, 4, proj_size=2), cfg)
    with pytest.raises(TypeError, match="PIMConfig"):
        PIMLinear(4, 2, config=physnn.get_backend("digital").presets.get("int8"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"nn\.Linear"):
        PIMLinear.from_torch(nn.Conv1d(1, 1, 1), cfg)
    with pytest.raises(ValueError, match="in_features"):
        PIMLinear(0, 2, config=cfg)


def test_strict_convert_rejects_unsupported_modules() -> None:
    model = nn.Sequential(nn.RNN(3, 3))
    with pytest.raises(TypeError, match="no layer for RNN"):
        physnn.convert(model, "pim:pcm", strict=True)
    kept = physnn.convert(copy.deepcopy(model), "pim:pcm")
    assert kept.physnn_report.modules[0].fate == "unsupported"


# ---------------------------------------------------------------- mapping variants


@pytest.mark.parametrize(
    "mapping",
    [
        {"scheme": "reference"},
        {"scale": "column"},
        {"devices_per_polarity": 3, "g_min": 1e-6},
    ],
)
def test_noiseless_mapping_variants_equal_linear(mapping: dict[str, object]) -> None:
    cfg = noiseless(mapping=presets.get("ideal").mapping.replace(**mapping))
    linear = nn.Linear(20, 7)
    x = torch.randn(5, 20)
    torch.testing.assert_close(
        run(PIMLinear.from_torch(linear, cfg), x), linear(x), rtol=1e-5, atol=1e-5
    )


def test_sinh_nonlinearity_is_ohmic_at_large_v0_and_superlinear_below() -> None:
    ideal = presets.get("ideal")
    fixed = ideal.dac.replace(range_mode="fixed", input_bound=1.0)
    linear = nn.Linear(6, 3, bias=False)
    x = torch.rand(4, 6)
    ohmic = noiseless(dac=fixed, circuit=ideal.circuit.replace(iv_v0=10.0))
    torch.testing.assert_close(
        run(PIMLinear.from_torch(linear, ohmic), x), linear(x), rtol=1e-3, atol=1e-4
    )
    v0 = 0.1  # below the 0.2 V read voltage: strongly nonlinear
    strong = noiseless(dac=fixed, circuit=ideal.circuit.replace(iv_v0=v0))
    v = 0.2 * x  # volts on each row
    want = F.linear(v0 * torch.sinh(v / v0) / 0.2, linear.weight)
    torch.testing.assert_close(
        run(PIMLinear.from_torch(linear, strong), x), want, rtol=1e-5, atol=1e-6
    )


def test_adc_gain_and_offset_errors_are_static_per_column() -> None:
    ideal = presets.get("ideal", seed=0)
    cfg = noiseless(adc=ideal.adc.replace(gain_std=0.1, offset_std=0.05))
    layer = PIMLinear(8, 400, bias=False, config=cfg.replace(seed=2))
    assert abs(float(layer.tile.adc_gain.std()) / 0.1 - 1) < 0.15
    assert abs(float(layer.tile.adc_offset.std()) / 0.05 - 1) < 0.15
    x = torch.rand(3, 8)
    torch.testing.assert_close(run(layer, x), run(layer, x), rtol=0, atol=0)


@pytest.mark.gpu
def test_layer_runs_on_cuda() -> None:
    linear = nn.Linear(30, 10)
    layer = PIMLinear.from_torch(linear, presets.get("hwa-rasch2023", seed=0)).cuda()
    x = torch.rand(16, 30)
    with physnn.ideal():
        torch.testing.assert_close(run(layer, x.cuda()).cpu(), linear(x), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(run(layer, x.cuda())).all()
    drift(layer, 86400.0)
    assert torch.isfinite(run(layer, x.cuda())).all()


def test_pcm_1f_read_noise_is_frozen_per_drift_time_with_the_anchor_statistics() -> None:
    """The accumulated 1/f noise at t = 1 day follows the anchor's model on the drifted
    devices; it is low-frequency, so repeated reads at one drift time see the same draw."""
    pcm = presets.get("pcm", seed=9)
    cfg = pcm.replace(
        read=pcm.read.replace(output_noise=0.0),
        drift=pcm.drift.replace(compensation="none"),
        dac=pcm.dac.replace(bits=None, range_mode="fixed", input_bound=1.0),
        adc=pcm.adc.replace(bits=None),
    )
    linear = nn.Linear(64, 64, bias=False)
    layer = PIMLinear.from_torch(linear, cfg).eval()
    t, t0, t_read, g_max = 86400.0, 20.0, 250e-9, 25e-6
    layer.drift(t)
    g_prog = layer.tile.conductance[0, :, 0]  # [2, in, out]
    g_t = g_prog * ((t + t0) / t0) ** (-layer.tile.drift_nu[0, :, 0])
    q_s = torch.clamp(0.0088 / torch.clamp((g_prog / g_max) ** 0.65, min=1e-3), max=0.2)
    sd = g_t.abs() * q_s * math.sqrt(math.log((t + t0 + t_read) / (2 * t_read)))
    scale = float(linear.weight.detach().abs().max())
    expected_sd = (sd**2).sum(0).sqrt() / g_max * scale  # [in, out]
    mean_w = ((g_t[0] - g_t[1]) / g_max) * scale
    eye = torch.eye(64)
    first, second = run(layer, eye), run(layer, eye)
    torch.testing.assert_close(first, second, rtol=0, atol=0)  # frozen: no per-read redraw
    live = expected_sd > 0  # devices programmed to exactly 0 S carry no 1/f noise
    z = (first - mean_w)[live] / expected_sd[live]
    assert abs(float(z.std()) - 1) < 0.05
    assert abs(float(z.mean())) < 0.05
    layer.drift(2 * t)  # a later drift time: a new low-frequency draw
    later = run(layer, eye)
    g_later = g_prog * ((2 * t + t0) / t0) ** (-layer.tile.drift_nu[0, :, 0])
    mean_later = ((g_later[0] - g_later[1]) / g_max) * scale
    assert float(((later - mean_later) - (first - mean_w)).abs().max()) > 0
