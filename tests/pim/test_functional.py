"""Pure PIM physics against analytic references and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physnn.pim import functional as PF


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(2, 12),
    bound=st.floats(0.1, 50.0),
    seed=st.integers(0, 10_000),
)
def test_adc_outputs_lie_on_code_grid_inside_full_scale(bits: int, bound: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    y = (torch.rand(500, generator=gen, dtype=torch.float64) - 0.5) * 6 * bound
    q = PF.adc(y, bits=bits, full_scale=bound)
    step = bound / (2 ** (bits - 1) - 1)
    codes = q / step
    assert torch.all(q.abs() <= bound * (1 + 1e-12))
    torch.testing.assert_close(codes, torch.round(codes), rtol=0, atol=1e-9)
    inside = y.abs() <= bound
    assert torch.all((q - y)[inside].abs() <= step / 2 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_dac_is_idempotent(bits: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(300, generator=gen, dtype=torch.float64) * 2
    once = PF.dac(x, bits)
    torch.testing.assert_close(PF.dac(once, bits), once, rtol=0, atol=1e-12)


def test_quantize_straight_through_gradient() -> None:
    x = torch.tensor([-3.0, -0.33, 0.2, 0.9, 4.0], requires_grad=True)
    PF.quantize(x, 4, 1.0).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("bits", [0, 1, 2.5, True])
def test_quantize_rejects_bad_bits(bits: object) -> None:
    with pytest.raises(ValueError, match="bits"):
        PF.quantize(torch.zeros(3), bits, 1.0)  # type: ignore[arg-type]


def test_pcm_programming_sigma_matches_nandakumar_fit() -> None:
    g = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.7])
    gc = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.0])  # clamped to [0, 1]
    expected = (0.26348 + 1.9650 * gc - 1.1731 * gc**2) * 1e-6
    torch.testing.assert_close(PF.pcm_programming_sigma(g, 25e-6), expected)
    # the fit scales with g_max
    torch.testing.assert_close(PF.pcm_programming_sigma(g, 50e-6), 2 * expected)


def test_pcm_drift_exponent_statistics() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    for g, g_max in ((0.05, 1.0), (0.3, 1.0), (1.0, 1.0), (0.3, 25e-6)):
        target = torch.full((n,), g * g_max, dtype=torch.float64)  # in siemens with g_max
        nu = PF.pcm_drift_exponents(target, gen, g_max=g_max)
        mu = min(max(-0.0155 * math.log(g) + 0.0244, 0.049), 0.1)
        sigma = min(max(-0.0125 * math.log(g) - 0.0059, 0.008), 0.045)
        # |N(mu, sigma)|: folded normal mean and variance
        z = mu / sigma
        cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        mean = sigma * math.sqrt(2 / math.pi) * math.exp(-(z**2) / 2) + mu * (1 - 2 * (1 - cdf))
        var = mu**2 + sigma**2 - mean**2
        assert abs(float(nu.mean()) - mean) < 5 * math.sqrt(var / n)
        assert abs(float(nu.std()) / math.sqrt(var) - 1) < 0.02
        assert torch.all(nu >= 0)


def test_drift_factor_power_law() -> None:
    nu = torch.tensor([0.0, 0.05, 0.1])
    for t in (0.0, 1.0, 86400.0, 3.15e7):
        expected = ((t + 20.0) / 20.0) ** (-nu)
        torch.testing.assert_close(PF.drift_factor(nu, t, 20.0), expected)


def test_pcm_read_noise_scale_formula() -> None:
    # around the cap 0.2 (g = 0.0083) and below the floor of g^0.65 (g = 2.4e-5)
    g = torch.tensor([0.0, 1e-6, 1e-4, 0.008, 0.0085, 0.01, 0.3, 1.0])
    t, t0, t_read = 86400.0, 20.0, 250e-9
    q_s = torch.clamp(0.0088 / torch.clamp(g**0.65, min=1e-3), max=0.2)
    expected = q_s * math.sqrt(math.log((t + t0 + t_read) / (2 * t_read)))
    torch.testing.assert_close(PF.pcm_read_noise_scale(g, t, t0, t_read), expected)
    # conductances in siemens with their g_max give the same relative noise
    got = PF.pcm_read_noise_scale(g * 25e-6, t, t0, t_read, g_max=25e-6)
    torch.testing.assert_close(got, expected)


def test_slice_weights_recombine_to_quantised_weight() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.rand(1000, generator=gen, dtype=torch.float64) * 2 - 1
    for bits_per_cell, slices in ((1, 7), (2, 3), (4, 1)):
        digits, coeff = PF.slice_weights(w, bits_per_cell, slices)
        levels = 2**bits_per_cell - 1
        total = (levels + 1) ** slices - 1
        assert digits.shape == (slices, 1000)
        on_grid = digits * levels
        torch.testing.assert_close(on_grid, torch.round(on_grid))
        assert torch.all(digits.abs() <= 1)
        recombined = (coeff[:, None] * digits).sum(0)
        expected = torch.sign(w) * torch.round(w.abs() * total) / total
        torch.testing.assert_close(recombined, expected)


def test_snap_to_levels_picks_nearest() -> None:
    levels = (1e-6, 5e-6, 20e-6)
    sigma = (0.1e-6, 0.2e-6, 0.3e-6)
    g = torch.tensor([0.0, 2.9e-6, 3.1e-6, 12e-6, 13e-6, 30e-6])
    snapped, sd = PF.snap_to_levels(g, levels, sigma)
    torch.testing.assert_close(snapped, torch.tensor([1e-6, 1e-6, 5e-6, 5e-6, 20e-6, 20e-6]))
    torch.testing.assert_close(sd, torch.tensor([0.1e-6, 0.1e-6, 0.2e-6, 0.2e-6, 0.3e-6, 0.3e-6]))


def test_sinh_iv_small_signal_is_ohmic() -> None:
    v = torch.tensor([1e-5, -2e-5])
    torch.testing.assert_close(PF.sinh_iv(v, 0.25), v, rtol=1e-6, atol=0)
    assert float(PF.sinh_iv(torch.tensor(0.5), 0.25)) > 0.5  # super-linear


# ---------------------------------------------------------------- crossbar circuit


def test_solve_crossbar_without_wires_is_matrix_product() -> None:
    rng = np.random.default_rng(0)
    g = rng.uniform(0, 25e-6, (7, 5))
    v = rng.uniform(-0.2, 0.2, (3, 7))
    np.testing.assert_allclose(PF.solve_crossbar(g, v, r_row=0.0, r_col=0.0), v @ g)
    # a tiny resistance converges to the same
    np.testing.assert_allclose(
        PF.solve_crossbar(g, v, r_row=1e-9, r_col=1e-9), v @ g, rtol=1e-8, atol=1e-16
    )


def test_solve_crossbar_single_device_is_series_circuit() -> None:
    g, v, r_row, r_col = 20e-6, 0.2, 500.0, 300.0
    got = PF.solve_crossbar(np.array([[g]]), np.array([v]), r_row=r_row, r_col=r_col)
    np.testing.assert_allclose(got, [v / (r_row + 1 / g + r_col)], rtol=1e-12)


@pytest.mark.parametrize(("r_row", "r_col"), [(400.0, 250.0), (400.0, 0.0), (0.0, 250.0)])
def test_solve_crossbar_one_row_two_devices_by_hand(r_row: float, r_col: float) -> None:
    g0, g1, v = 10e-6, 30e-6, 0.3
    branch0 = 1 / g0 + r_col
    branch1 = r_row + 1 / g1 + r_col
    parallel = 1 / (1 / branch0 + 1 / branch1)
    current = v / (r_row + parallel)
    node0 = v - r_row * current
    expected = [node0 / branch0, node0 / branch1]
    got = PF.solve_crossbar(np.array([[g0, g1]]), np.array([v]), r_row=r_row, r_col=r_col)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_solve_crossbar_is_linear_in_the_inputs() -> None:
    rng = np.random.default_rng(1)
    g = rng.uniform(0, 25e-6, (6, 4))
    a, b = rng.uniform(-0.2, 0.2, 6), rng.uniform(-0.2, 0.2, 6)
    solve = lambda v: PF.solve_crossbar(g, v, r_row=50.0, r_col=80.0)  # noqa: E731
    np.testing.assert_allclose(solve(2 * a - 3 * b), 2 * solve(a) - 3 * solve(b), atol=1e-15)
    # wire resistance only loses current
    assert np.all(np.abs(solve(np.abs(a))) <= np.abs(np.abs(a) @ g) + 1e-18)


def test_solve_crossbar_rejects_bad_input() -> None:
    g = np.ones((3, 2)) * 1e-6
    with pytest.raises(ValueError, match="shape"):
        PF.solve_crossbar(g, np.ones(4), r_row=1.0, r_col=1.0)
    with pytest.raises(ValueError, match="r_row"):
        PF.solve_crossbar(g, np.ones(3), r_row=-1.0, r_col=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        PF.solve_crossbar(-g, np.ones(3), r_row=1.0, r_col=1.0)


@pytest.mark.parametrize("r_wire", [0.1, 0.35, 1.0, 2.5])
def test_fast_ir_drop_agrees_with_exact_solver_64x64(r_wire: float) -> None:
    """Agreement stated in the docs: the fast model's error is <= 2 % of the IR-drop effect.

    Devices up to 25 uS with half of them off, inputs up to 0.2 V; presets use 0.35-1 ohm.
    """
    rng = np.random.default_rng(0)
    m = 64
    g = rng.uniform(0, 25e-6, (m, m)) * (rng.random((m, m)) < 0.5)
    v = rng.uniform(-0.2, 0.2, (16, m))
    exact = PF.solve_crossbar(g, v, r_row=r_wire, r_col=r_wire)
    ideal = v @ g
    fast = v @ PF.ir_drop_fast(torch.from_numpy(g), r_row=r_wire, r_col=r_wire).numpy()
    drop = np.linalg.norm(exact - ideal)
    assert drop > 1e-3 * np.linalg.norm(ideal)  # the effect is there
    assert np.linalg.norm(fast - exact) <= 0.02 * drop


def test_fast_ir_drop_is_exact_without_wires_and_for_one_device() -> None:
    g = torch.rand(5, 6, dtype=torch.float64) * 25e-6
    torch.testing.assert_close(PF.ir_drop_fast(g, r_row=0.0, r_col=0.0), g)
    one = torch.tensor([[20e-6]], dtype=torch.float64)
    got = PF.ir_drop_fast(one, r_row=500.0, r_col=300.0)
    torch.testing.assert_close(got, 1 / (1 / one + 800.0))
