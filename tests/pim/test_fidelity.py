"""PIM fidelity against references written here (issue 11): bit-serial inputs with a finite
ADC, exact per-read noise, the reference scheme, training-mode slices, seeded streams,
learned input ranges and drift compensation measured through the chip."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import physnn
from physnn.common.testing import reset_streams
from physnn.common.train import fit
from physnn.pim import PIMGRU, PIMLSTM, DriftConfig, PIMConfig, PIMLinear, drift, presets


def noiseless(**blocks: object) -> PIMConfig:
    """The crossbar path with no noise (a zero drift exponent keeps it non-ideal)."""
    base = presets.get("ideal", seed=0)
    cfg = base.replace(drift=DriftConfig(model="constant", nu_mean=0.0, compensation="none"))
    return cfg.replace(**blocks) if blocks else cfg


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------- bit-serial (item 1)


def neurosim_reference(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    rows: int = 128,
    slices: int = 7,
    in_bits: int = 8,
    adc_bits: int = 5,
    bound: float = 16.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NeuroSim-style bit-serial MVM written from its definition, as an interval.

    Weights: sign and a ``slices``-bit magnitude code, one bit per 1-bit cell; inputs: sign
    and an ``in_bits``-bit magnitude code of ``x / max|x|`` applied one bit per cycle; each
    (row tile, slice, cycle) column sum goes through an ``adc_bits`` ADC (sign included) of
    full scale ``bound`` and is shift-and-added. A column sum exactly half-way between two
    codes may round either way under float rounding, so both roundings bound the result.
    """
    n_in = x.shape[1]
    x_levels, w_levels = 2**in_bits - 1, 2**slices - 1
    r = x.abs().amax(1, keepdim=True)
    x_code = torch.round(x / r * x_levels).to(torch.int64)
    scale = w.abs().max()
    w_code = torch.round(w.abs() / scale * w_levels).to(torch.int64) * torch.sign(w).long()
    adc_levels = 2 ** (adc_bits - 1) - 1
    low = torch.zeros(x.shape[0], w.shape[0], dtype=torch.float64)
    high = torch.zeros_like(low)
    for start in range(0, n_in, rows):
        xs, ws = x_code[:, start : start + rows], w_code[:, start : start + rows]
        for s in range(slices):
            w_bit = ((ws.abs() >> s) & 1) * torch.sign(ws)
            for b in range(in_bits):
                x_bit = ((xs.abs() >> b) & 1) * torch.sign(xs)
                partial = (x_bit @ w_bit.t()).double().clamp(-bound, bound)
                exact = partial * adc_levels / bound  # in code units; ties at .5
                tie = (exact - exact.floor()) == 0.5
                weight = (2.0**b / x_levels) * (2.0**s / w_levels) * bound / adc_levels
                down = torch.where(tie, exact.floor(), torch.round(exact))
                up = torch.where(tie, exact.ceil(), torch.round(exact))
                low += torch.minimum(down, up) * weight
                high += torch.maximum(down, up) * weight
    factor = (r * scale).double()
    return low * factor, high * factor


def test_bit_serial_neurosim_preset_matches_the_reference_interval() -> None:
    cfg = presets.get("neurosim-rram", seed=0)
    assert cfg.mapping.tile_rows == 128 and cfg.mapping.slices == 7 and cfg.adc.bits == 5
    assert cfg.dac.bits == 9 and cfg.dac.bit_serial and cfg.mapping.bits_per_cell == 1
    torch.manual_seed(0)
    linear = nn.Linear(256, 24, bias=False)
    x = torch.rand(16, 256) * 2 - 1
    got = run(PIMLinear.from_torch(linear, cfg), x).double()
    low, high = neurosim_reference(x, linear.weight.detach(), bound=cfg.adc.output_bound)
    tol = 1e-5 * float(high.abs().max())
    assert bool(((got >= low - tol) & (got <= high + tol)).all())
    assert float((high - low).abs().max()) < 0.2 * float(high.abs().max())  # a tight bound
    assert float(got.abs().max()) > 0


def test_neurosim_preset_computes_and_passes_input_gradients() -> None:
    torch.manual_seed(1)
    linear = nn.Linear(64, 10)
    layer = PIMLinear.from_torch(linear, presets.get("neurosim-rram", seed=0)).eval()
    x = torch.rand(32, 64, requires_grad=True)
    y = layer(x)
    want = linear(x).detach()
    assert float((y.detach() - want).norm() / want.norm()) < 0.2
    y.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("preset", ["pcm", "noiseless"])
def test_bit_serial_error_is_close_to_parallel_error(preset: str) -> None:
    """Bit-serial with 8-bit converters must not be much worse than parallel 8-bit inputs."""
    base = presets.get("pcm", seed=0) if preset == "pcm" else noiseless()
    base = base.replace(dac=base.dac.replace(bits=8), adc=base.adc.replace(bits=8))
    serial = base.replace(dac=base.dac.replace(bit_serial=True))
    torch.manual_seed(2)
    linear = nn.Linear(128, 32)
    x = torch.rand(64, 128)
    want = linear(x).detach()
    errors = []
    for cfg in (base, serial):
        y = run(PIMLinear.from_torch(linear, cfg, name="fc"), x)
        errors.append(float((y - want).norm() / want.norm()))
    assert errors[1] < max(2 * errors[0], 0.05), errors


# ---------------------------------------------------------------- per-read noise (item 8)


def test_per_read_weight_noise_matches_direct_per_weight_monte_carlo() -> None:
    sigma, reps = 0.05, 400
    ideal = presets.get("ideal")
    cfg = noiseless(
        read=ideal.read.replace(weight_noise=sigma),
        dac=ideal.dac.replace(range_mode="fixed", input_bound=1.0),
    )
    torch.manual_seed(3)
    linear = nn.Linear(48, 20, bias=False)
    layer = PIMLinear.from_torch(linear, cfg).eval()
    x = torch.rand(8, 48) * 2 - 1
    with torch.no_grad():
        lib = torch.stack([layer(x) for _ in range(reps)])  # [reps, 8, 20]
    w = linear.weight.detach()
    scale = w.abs().max()
    gen = torch.Generator().manual_seed(4)
    # one fresh device draw per read and input vector: [reps, vectors, out, in]
    devices = w + sigma * scale * torch.randn(reps, 8, *w.shape, generator=gen)
    direct = torch.einsum("vi,rvoi->rvo", x, devices)
    var_lib, var_ref = lib.var(0), direct.var(0)
    assert abs(float(var_lib.mean() / var_ref.mean()) - 1) < 0.05
    # per input vector the variance follows that vector's energy
    per_lib, per_ref = var_lib.mean(1), var_ref.mean(1)
    torch.testing.assert_close(per_lib / per_ref, torch.ones(8), rtol=0.15, atol=0)
    torch.testing.assert_close(lib.mean(0), x @ w.t(), rtol=0, atol=float(var_ref.max()) ** 0.5)


def test_per_read_noise_is_independent_per_input_vector_and_batch_size() -> None:
    sigma = 0.05
    ideal = presets.get("ideal")
    cfg = noiseless(
        read=ideal.read.replace(weight_noise=sigma),
        dac=ideal.dac.replace(range_mode="fixed", input_bound=1.0),
    )
    torch.manual_seed(5)
    linear = nn.Linear(32, 16, bias=False)
    layer = PIMLinear.from_torch(linear, cfg).eval()
    v = torch.rand(1, 32)
    want = (v @ linear.weight.detach().t()).squeeze(0)
    with torch.no_grad():
        pair = torch.stack([layer(v.repeat(2, 1)) - want for _ in range(150)])  # [150, 2, 16]
        alone = torch.stack([layer(v)[0] - want for _ in range(150)])
        in_batch = torch.stack([layer(v.repeat(256, 1)) - want for _ in range(2)]).flatten(0, 1)
    a, b = pair[:, 0].flatten(), pair[:, 1].flatten()
    corr = float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))
    assert abs(corr) < 0.1  # each vector of a batch is its own read
    ratio = float(in_batch.var() / alone.var())
    assert abs(ratio - 1) < 0.15  # same statistics at batch 1 and batch 256


# ---------------------------------------------------------------- item 5, 6, 7


def test_training_forward_with_slices_and_adc_errors_is_not_scaled() -> None:
    ideal = presets.get("ideal")
    cfg = noiseless(
        mapping=ideal.mapping.replace(bits_per_cell=1, slices=7),
        adc=ideal.adc.replace(gain_std=0.05, offset_std=0.01),
        hwa=ideal.hwa.replace(weight_noise=0.0),
    )
    torch.manual_seed(6)
    linear = nn.Linear(20, 8, bias=False)
    layer = PIMLinear.from_torch(linear, cfg).train()
    x = torch.rand(16, 20)
    y = layer(x).detach()
    want = linear(x).detach()
    ratio = float(y.norm() / want.norm())
    assert 0.9 < ratio < 1.1, ratio


def test_reference_scheme_one_device_per_row_and_column_tile() -> None:
    """The reference column of a tile is one device per row: one fault, one variation draw,
    one programming noise and drift exponent for all of that tile's columns."""
    pcm = presets.get("pcm", seed=6)
    cfg = pcm.replace(
        mapping=pcm.mapping.replace(scheme="reference", tile_cols=5),
        faults=pcm.faults.replace(stuck_off_rate=0.2, stuck_random_rate=0.2),
        programming=pcm.programming.replace(device_variation=0.1),
    )
    layer = PIMLinear(12, 10, config=cfg)  # two column tiles of 5
    tile = layer.tile
    for name in ("conductance", "drift_nu", "fault_mask", "fault_level", "device_g_max"):
        ref = getattr(tile, name)[:, 1]  # [S, D, in, out]
        for block in (slice(0, 5), slice(5, 10)):
            part = ref[..., block]
            assert torch.equal(part, part[..., :1].expand_as(part)), name
        assert not torch.equal(ref[..., 0], ref[..., 5]), name  # tiles have their own


def test_stuck_at_faults_are_independent_per_device_at_the_configured_rates() -> None:
    """Each device is stuck on its own: the counts of each kind are binomial around ``n``
    times its rate, neighbouring devices are stuck together at the squared total rate, and
    random levels are uniform between ``g_min`` and ``g_max`` (Kolmogorov-Smirnov)."""
    rates = {1: 0.02, 2: 0.01, 3: 0.03}  # stuck off, stuck on, at a random level
    pcm = presets.get("pcm", seed=11)
    cfg = pcm.replace(
        faults=pcm.faults.replace(stuck_off_rate=0.02, stuck_on_rate=0.01, stuck_random_rate=0.03)
    )
    tile = PIMLinear(256, 256, config=cfg).tile
    mask = tile.fault_mask.flatten().long()
    n = mask.numel()
    for code, rate in rates.items():
        count = int((mask == code).sum())
        assert abs(count - n * rate) < 5 * math.sqrt(n * rate * (1 - rate)), (code, count)
    p = sum(rates.values())
    stuck = (mask > 0).double()
    pairs = float((stuck[1:] * stuck[:-1]).sum())  # overlapping pairs: covariance terms too
    var = (n - 1) * p**2 * (1 - p**2) + 2 * (n - 2) * (p**3 - p**4)
    assert abs(pairs - (n - 1) * p**2) < 5 * math.sqrt(var), pairs
    g_min, g_max = cfg.mapping.g_min, cfg.mapping.g_max
    g = tile.conductance.flatten()
    assert bool((g[mask == 1] == g_min).all()) and bool((g[mask == 2] == g_max).all())
    u = ((g[mask == 3].double() - g_min) / (g_max - g_min)).sort().values
    m = u.numel()
    grid = torch.arange(1, m + 1, dtype=torch.float64) / m
    ks = float(torch.maximum(grid - u, u - (grid - 1 / m)).max())
    assert ks < 1.63 / math.sqrt(m), ks  # 1 % critical value


def test_reference_scheme_one_bit_cells_hold_two_levels() -> None:
    ideal = presets.get("ideal")
    cfg = noiseless(mapping=ideal.mapping.replace(scheme="reference", bits_per_cell=1, slices=4))
    torch.manual_seed(7)
    layer = PIMLinear(16, 6, config=cfg)
    g = layer.tile.conductance[:, 0]  # the weight cells
    m = cfg.mapping
    on = torch.isclose(g, torch.tensor(m.g_max), rtol=1e-6, atol=0)
    off = torch.isclose(g, torch.tensor(m.g_min), rtol=0, atol=1e-12)
    assert bool((on | off).all()) and bool(on.any()) and bool(off.any())
    # offset-binary recombination: w = 2 q((w + 1) / 2) - 1 on 2**4 - 1 steps
    w = layer.weight.detach()
    scale = w.abs().max()
    q = torch.round((w / scale + 1) / 2 * 15) / 15
    x = torch.randn(5, 16)
    torch.testing.assert_close(
        run(layer, x), x @ ((2 * q - 1) * scale).t() + layer.bias, rtol=1e-5, atol=1e-5
    )


def test_two_seeded_layers_built_directly_have_distinct_chips() -> None:
    cfg = presets.get("pcm", seed=0)
    a, b = PIMLinear(16, 8, config=cfg), PIMLinear(16, 8, config=cfg)
    with torch.no_grad():
        b.weight.copy_(a.weight)
    b.program()
    assert not torch.equal(a.tile.conductance, b.tile.conductance)
    # naming them makes the draws explicit and reproducible
    c, d = PIMLinear(16, 8, config=cfg, name="fc"), PIMLinear(16, 8, config=cfg, name="fc")
    with torch.no_grad():
        d.weight.copy_(c.weight)
    d.program()
    assert torch.equal(c.tile.conductance, d.tile.conductance)


# ---------------------------------------------------------------- learned ranges (item 3)


def hwa_learned(seed: int = 0) -> PIMConfig:
    return presets.get("hwa-rasch2023", seed=seed)


def test_learned_range_of_the_hidden_crossbar_initialises_from_nonzero_data() -> None:
    lstm = PIMLSTM(6, 8, config=hwa_learned()).train()
    x = torch.randn(5, 4, 6)
    lstm(x)
    hh = lstm.tiles["hh_l0"]
    assert bool(hh.input_range_ready)
    assert float(hh.input_range) > 0.01  # from h_1.. (not h_0 = 0)


def test_learned_range_decays_only_while_few_inputs_clip() -> None:
    layer = PIMLinear(10, 4, config=hwa_learned()).train()
    x = torch.randn(64, 10)
    layer(x)  # initialises at max|x|: nothing clips
    r0 = float(layer.tile.input_range)
    layer.after_step()
    r1 = float(layer.tile.input_range)
    assert r1 == pytest.approx(r0 * (1 - 0.01))
    layer(x * 100)  # nearly everything clips
    layer.after_step()
    assert float(layer.tile.input_range) == pytest.approx(r1)


def test_fit_calls_after_step_once_per_crossbar_per_step() -> None:
    calls: dict[int, int] = {}
    model = physnn.convert(
        nn.Sequential(nn.GRU(4, 5, batch_first=True)), hwa_learned(), strict=True
    )
    gru = model[0]
    assert isinstance(gru, PIMGRU)
    tiles = list(gru.tiles.values())
    for tile in tiles:
        original = tile.after_step

        def counted(
            *args: object, _tile: object = tile, _f: object = original, **kw: object
        ) -> None:
            calls[id(_tile)] = calls.get(id(_tile), 0) + 1
            _f(*args, **kw)  # type: ignore[operator]

        tile.after_step = counted  # type: ignore[method-assign]

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = model
            self.out = nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.rnn(x)[0][:, -1])

    x, y = torch.randn(32, 6, 4), torch.randint(0, 3, (32,))
    fit(Head(), (x, y), epochs=1, batch_size=16, progress=False)
    assert sorted(calls.values()) == [2] * len(tiles)  # two optimiser steps


# ---------------------------------------------------------------- compensation (item 10)


def test_drift_compensation_is_measured_through_the_noisy_chip() -> None:
    """The global factor equals mean|x W(0)| / mean|x W(t)| for the weights the chip
    realises at each time (with their frozen 1/f noise), read here with one-hot inputs."""
    pcm = presets.get("pcm", seed=11)
    quiet = pcm.replace(
        read=pcm.read.replace(output_noise=0.0),
        dac=pcm.dac.replace(bits=None, range_mode="fixed", input_bound=1.0),
        adc=pcm.adc.replace(bits=None),
    )
    torch.manual_seed(8)
    linear = nn.Linear(40, 30, bias=False)
    eye = torch.eye(40)
    raw = PIMLinear.from_torch(
        linear, quiet.replace(drift=quiet.drift.replace(compensation="none")), name="fc"
    )
    comp = PIMLinear.from_torch(
        linear,
        quiet.replace(drift=quiet.drift.replace(calibration_samples=8192)),
        name="fc",
    )
    w0 = run(raw, eye)
    x = torch.rand(8192, 40, generator=torch.Generator().manual_seed(9)) * 2 - 1
    t = 86400.0 * 30
    raw.drift(t)
    comp.drift(t)
    wt = run(raw, eye)
    factor = float((x @ w0).abs().mean() / (x @ wt).abs().mean())
    torch.testing.assert_close(run(comp, eye), wt * factor, rtol=0.01, atol=1e-6)
    assert factor > 1.05  # a month of drift is visible


# ---------------------------------------------------------------- stale chips (item 4)


def mlp() -> nn.Module:
    torch.manual_seed(10)
    return nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4))


def chip(model: nn.Module, seed: int = 1) -> nn.Module:
    return physnn.convert(model, presets.get("pcm", seed=seed))


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    reset_streams(model)
    return run(model, x)


X = torch.rand(6, 12, generator=torch.Generator().manual_seed(11))


def assert_current(model: nn.Module, seed: int = 1) -> None:
    """``model`` computes what a model freshly converted from its current weights computes."""
    reference = chip(physnn.to_torch(model), seed)
    drift(reference, float(model[0].drift_time))
    torch.testing.assert_close(outputs(model, X), outputs(reference, X), rtol=0, atol=0)


def scaled(model: nn.Module) -> nn.Module:
    other = mlp()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.7)
    return other


def test_stale_chip_load_state_dict_strict_and_not_strict() -> None:
    model = chip(mlp())
    outputs(model, X)
    model.load_state_dict(scaled(mlp()).state_dict(), strict=True)  # a plain torch state dict
    assert_current(model)
    model = chip(mlp())
    outputs(model, X)
    sd = {k: v for k, v in scaled(mlp()).state_dict().items() if k.startswith("0.")}
    model.load_state_dict(sd, strict=False)
    assert_current(model)


def test_stale_chip_weight_data_assignment_and_in_place_edit() -> None:
    model = chip(mlp())
    outputs(model, X)
    model[0].weight.data = model[0].weight.data * 0.5
    assert_current(model)
    model[2].weight.data.mul_(-1.3)
    assert_current(model)


def test_stale_chip_reconfigure_and_drifted_reprogram() -> None:
    model = chip(mlp())
    drift(model, 3600.0)
    before = outputs(model, X)
    moved = physnn.reconfigure(model, {"adc.bits": 4})
    assert not torch.equal(outputs(moved, X), before)
    direct = physnn.convert(
        physnn.to_torch(model),
        presets.get("pcm", seed=1).replace(adc=presets.get("pcm").adc.replace(bits=4)),
    )
    drift(direct, 3600.0)
    torch.testing.assert_close(outputs(moved, X), outputs(direct, X), rtol=0, atol=0)


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save", "state_dict"])
def test_copies_after_fit_compute_with_the_trained_weights(how: str) -> None:
    import copy
    import io
    import pickle

    model = chip(mlp())
    outputs(model, X)  # the chip is programmed from the pre-training weights
    x, y = torch.rand(64, 12), torch.randint(0, 4, (64,))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    if how == "deepcopy":
        copied = copy.deepcopy(model)
    elif how == "pickle":
        copied = pickle.loads(pickle.dumps(model))
    elif how == "torch.save":
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        copied = torch.load(buffer, weights_only=False)
    else:
        copied = chip(mlp(), seed=1)
        copied.load_state_dict(model.state_dict())
    assert_current(copied)
    assert_current(model)


# ---------------------------------------------------------------- recurrent contract (item 6)


@pytest.mark.parametrize("rnn_type", [nn.LSTM, nn.GRU])
def test_recurrent_state_dict_uses_torch_keys_and_loads_a_torch_state_dict(
    rnn_type: type[nn.LSTM] | type[nn.GRU],
) -> None:
    torch.manual_seed(12)
    rnn = rnn_type(5, 6, num_layers=2, bidirectional=True)
    pim_type = PIMLSTM if rnn_type is nn.LSTM else PIMGRU
    layer = pim_type(5, 6, num_layers=2, bidirectional=True, config=noiseless())
    assert set(rnn.state_dict()) <= set(layer.state_dict())
    layer.load_state_dict(rnn.state_dict())  # strict: the chip is reprogrammed from them
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(run(layer, x)[0], rnn(x)[0], rtol=1e-5, atol=1e-5)


def test_cost_tracker_on_a_bare_recurrent_layer_counts_once() -> None:
    for layer in (PIMLSTM(5, 6, config=presets.get("pcm", seed=0)), PIMGRU(5, 6)):
        x = torch.randn(4, 3, 5)
        with physnn.CostTracker(layer) as tracker:
            run(layer, x)
        want = layer.cost(tuple(x.shape))
        assert tracker.total.macs == want.macs
        assert tracker.total.energy == pytest.approx(want.energy)
        assert tracker.total.area == pytest.approx(want.area)


def test_empty_batches_return_empty_outputs() -> None:
    cfg = presets.get("pcm", seed=0)
    lin = PIMLinear(5, 3, config=cfg)
    assert run(lin, torch.zeros(0, 5)).shape == (0, 3)
    conv = physnn.convert(nn.Sequential(nn.Conv2d(2, 3, 3)), cfg)
    assert run(conv, torch.zeros(0, 2, 6, 6)).shape == (0, 3, 4, 4)
    lstm = PIMLSTM(5, 4, config=cfg)
    out, (h, c) = run(lstm, torch.zeros(7, 0, 5))
    assert out.shape == (7, 0, 4) and h.shape == (1, 0, 4) and c.shape == (1, 0, 4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_layers_work_and_mismatched_inputs_are_refused(dtype: torch.dtype) -> None:
    torch.manual_seed(13)
    linear = nn.Linear(8, 4)
    layer = PIMLinear.from_torch(linear, presets.get("pcm", seed=0))
    with pytest.raises(TypeError, match="dtype"):
        run(layer, torch.rand(3, 8, dtype=dtype))
    half = layer.to(dtype)
    x = torch.rand(3, 8)
    x[0] = 0.0  # an all-zero row under a dynamic input range
    y = run(half, x.to(dtype))
    assert y.dtype == dtype and torch.isfinite(y).all()
    want = linear(x)
    assert float((y.float() - want).norm() / want.norm()) < 0.2


def test_lstm_hx_shapes_are_checked() -> None:
    lstm = PIMLSTM(5, 4, num_layers=2, config=presets.get("pcm", seed=0))
    x = torch.randn(3, 2, 5)
    good = torch.zeros(2, 2, 4)
    with pytest.raises(ValueError, match="h_0 must have shape"):
        lstm(x, (torch.zeros(1, 2, 4), good))
    with pytest.raises(ValueError, match="tuple"):
        lstm(x, good)
    gru = PIMGRU(5, 4, config=presets.get("pcm", seed=0))
    with pytest.raises(ValueError, match="h_0 must have shape"):
        gru(x, torch.zeros(1, 3, 4))
    out, hn = gru(x, torch.zeros(1, 2, 4))
    assert out.shape == (3, 2, 4) and hn.shape == (1, 2, 4)
    assert math.isfinite(float(out.sum()))


# ---------------------------------------------------------------- convolutions and to_torch


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=1),
        nn.Conv2d(4, 6, 3, groups=2, padding="same"),
        nn.Conv1d(4, 4, 3, groups=4, padding=1, padding_mode="replicate"),  # depthwise
    ],
)
def test_noiseless_nd_grouped_and_depthwise_convs_equal_torch(conv: nn.Module) -> None:
    model = physnn.convert(nn.Sequential(conv), noiseless(), strict=True)
    assert model.physnn_report.modules[0].fate == "converted"
    x = torch.randn(2, conv.in_channels, *([5] * (conv.weight.dim() - 2)))
    torch.testing.assert_close(run(model, x), conv(x), rtol=1e-5, atol=1e-5)
    assert model[0].output_shape(tuple(x.shape)) == tuple(conv(x).shape)
    back = physnn.to_torch(model, weights="effective")[0]
    torch.testing.assert_close(back.weight, conv.weight, rtol=1e-5, atol=1e-6)


def test_effective_weights_reproduce_the_programmed_chip() -> None:
    """``to_torch(weights="effective")`` gives the weights the noisy, drifted chip realises."""
    pcm = presets.get("pcm", seed=3)
    cfg = pcm.replace(
        read=pcm.read.replace(output_noise=0.0),
        dac=pcm.dac.replace(bits=None),
        adc=pcm.adc.replace(bits=None),
    )
    torch.manual_seed(14)
    model = physnn.convert(nn.Sequential(nn.Linear(10, 6), nn.Tanh(), nn.LSTM(6, 3)), cfg)
    drift(model, 86400.0)
    effective = physnn.to_torch(model, weights="effective")
    exact = physnn.to_torch(model)
    x = torch.rand(4, 2, 10)
    got = run(model, x)[0]
    torch.testing.assert_close(effective(x)[0], got, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(exact(x)[0], got, atol=1e-4)


# ---------------------------------------------------------------- device models (structure)


def test_a_new_device_model_is_one_class() -> None:
    from physnn.pim import devices
    from physnn.pim.config import ProgrammingConfig

    class Offset(devices.DeviceModel):
        """Every device lands 1 uS above its target (a systematic, noiseless error)."""

        name = "test-offset"
        noisy = False

        def program(
            self,
            target: torch.Tensor,
            programming: ProgrammingConfig,
            g_max: float,
            noise: torch.Tensor,
        ) -> torch.Tensor:
            return target + 1e-6

    with pytest.raises(ValueError, match="test-offset"):
        ProgrammingConfig(model="test-offset")
    devices.register_device(Offset())
    cfg = noiseless(programming=ProgrammingConfig(model="test-offset"))
    layer = PIMLinear(6, 4, config=cfg)
    g = layer.tile.conductance  # one polarity of each pair targets g_min, the other > g_min
    assert float(g.min()) == pytest.approx(cfg.mapping.g_min + 1e-6, rel=1e-5)
    assert float(g.max()) == pytest.approx(cfg.mapping.g_max + 1e-6, rel=1e-5)
    with pytest.raises(ValueError, match="register_device"):
        devices.get_device("no-such-device")
