"""Free-space propagation against invariants and independent references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import fresnel

from physnn.optical import functional as OF
from physnn.optical.functional import OpticalSamplingWarning, propagate

LAM = 1e-6


def gaussian(n: int, waist_px: float, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    idx = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    r2 = idx[:, None] ** 2 + idx[None, :] ** 2
    return torch.exp(-r2 / waist_px**2).to(dtype)


def energy(field: torch.Tensor) -> float:
    return float(field.abs().square().sum())


def direct_rs(field: np.ndarray, z: float, wavelength: float, pitch: float) -> np.ndarray:
    """Slow first Rayleigh-Sommerfeld sum: every output pixel from every input pixel."""
    n = field.shape[0]
    coords = np.arange(n) * pitch
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    out = np.zeros_like(field, dtype=np.complex128)
    k = 2 * np.pi / wavelength
    for i in range(n):
        for j in range(n):
            r = np.sqrt((yy[i, j] - yy) ** 2 + (xx[i, j] - xx) ** 2 + z**2)
            h = z / r**2 * (1 / (2 * np.pi * r) + 1 / (1j * wavelength)) * np.exp(1j * k * r)
            out[i, j] = np.sum(field * h) * pitch**2
    return out


def direct_asm(field: np.ndarray, z: float, wavelength: float, pitch: float) -> np.ndarray:
    """Band-limited angular spectrum with explicit DFT matrices (no FFT), zero-padded 2x,
    with the two-ellipse band limit."""
    n = field.shape[0]
    m = 2 * n
    k = np.arange(m)
    dft = np.exp(-2j * np.pi * np.outer(k, k) / m)
    padded = np.zeros((m, m), dtype=np.complex128)
    padded[:n, :n] = field
    spectrum = dft @ padded @ dft.T
    f = np.where(k < (m + 1) // 2, k, k - m) / (m * pitch)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    arg = 1 / wavelength**2 - fx**2 - fy**2
    h = np.where(
        arg >= 0,
        np.exp(2j * np.pi * z * np.sqrt(np.abs(arg))),
        np.exp(-2 * np.pi * abs(z) * np.sqrt(np.abs(arg))),
    )
    # Matsushima & Shimobaba 2009: a propagating wave is kept inside both ellipses
    # fx^2 / u^2 + lambda^2 fy^2 <= 1 and fy^2 / u^2 + lambda^2 fx^2 <= 1 (evanescent: kept)
    u = 1 / (wavelength * np.sqrt((2 * z / (m * pitch)) ** 2 + 1))
    lam2 = wavelength**2
    inside = (fx**2 / u**2 + lam2 * fy**2 <= 1) & (fy**2 / u**2 + lam2 * fx**2 <= 1)
    h = np.where(inside | (arg < 0), h, 0)
    out = np.conj(dft) @ (spectrum * h) @ np.conj(dft).T / m**2
    return out[:n, :n]


def test_asm_matches_explicit_dft_reference_complex128() -> None:
    torch.manual_seed(0)
    field = torch.randn(12, 12, dtype=torch.complex128)
    pitch, z = 0.6 * LAM, 7 * LAM
    got = propagate(field, z, wavelength=LAM, pitch=pitch).numpy()
    want = direct_asm(field.numpy(), z, LAM, pitch)
    assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want))


def test_asm_complex64_matches_float64_reference() -> None:
    torch.manual_seed(1)
    field = torch.randn(12, 12, dtype=torch.complex128)
    pitch, z = 0.8 * LAM, 20 * LAM
    got = propagate(field.to(torch.complex64), z, wavelength=LAM, pitch=pitch)
    want = direct_asm(field.numpy(), z, LAM, pitch)
    assert np.max(np.abs(got.numpy() - want)) <= 1e-5 * np.max(np.abs(want))


def test_rs_method_equals_slow_direct_sum() -> None:
    torch.manual_seed(2)
    field = torch.randn(10, 10, dtype=torch.complex128)
    pitch, z = 0.53 * LAM, 4 * LAM
    got = propagate(field, z, wavelength=LAM, pitch=pitch, method="rs").numpy()
    want = direct_rs(field.numpy(), z, LAM, pitch)
    assert np.max(np.abs(got - want)) <= 1e-12 * np.max(np.abs(want))


def test_asm_agrees_with_direct_rayleigh_sommerfeld_integral() -> None:
    """Two exact solutions of the Helmholtz equation for a well-sampled beam."""
    n, pitch, z = 24, LAM / 4, 3 * LAM
    field = gaussian(n, 3.0)
    got = propagate(field, z, wavelength=LAM, pitch=pitch).numpy()
    want = direct_rs(field.numpy(), z, LAM, pitch)
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert err < 2e-2


def test_square_aperture_matches_fresnel_integrals() -> None:
    """Fresnel diffraction of a square aperture (Goodman sec. 4.5.1) in its regime."""
    n, pitch = 512, 4 * LAM
    half = 40  # pixels -40..40: the aperture edges sit at +-40.5 pitch
    a = (half + 0.5) * pitch
    z = a**2 / (2 * LAM)  # Fresnel number 2
    x = (torch.arange(n, dtype=torch.float64) - n // 2) * pitch
    inside = (x.abs() <= half * pitch).to(torch.float64)
    field = (inside[:, None] * inside[None, :]).to(torch.complex128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpticalSamplingWarning)
        out = propagate(field, z, wavelength=LAM, pitch=pitch)
    got = out.abs().square().numpy()

    def one_axis(coord: np.ndarray) -> np.ndarray:
        scale = np.sqrt(2 / (LAM * z))
        s1, c1 = fresnel(scale * (-a - coord))
        s2, c2 = fresnel(scale * (a - coord))
        return ((c2 - c1) + 1j * (s2 - s1)) / np.sqrt(2j)

    u = one_axis(x.numpy())
    want = np.abs(np.outer(u, u)) ** 2
    centre = slice(n // 2 - 2 * half, n // 2 + 2 * half)
    err = np.max(np.abs(got[centre, centre] - want[centre, centre]))
    assert err <= 5e-3 * want.max()
    rel = np.linalg.norm(got[centre, centre] - want[centre, centre]) / np.linalg.norm(want)
    assert rel <= 3e-3


@pytest.mark.parametrize(("dtype", "tol"), [(torch.complex128, 1e-10), (torch.complex64, 1e-6)])
def test_free_space_conserves_energy(dtype: torch.dtype, tol: float) -> None:
    field = gaussian(64, 5.0, dtype)
    out = propagate(field, 10 * LAM, wavelength=LAM, pitch=LAM)
    assert abs(1 - energy(out) / energy(field)) <= tol


def test_rayleigh_sommerfeld_conserves_energy_to_sampling_accuracy() -> None:
    """The sampled RS kernel is not exactly unitary; at pitch lambda/2 it conserves to 1e-3."""
    field = gaussian(64, 5.0)
    out = propagate(field, 10 * LAM, wavelength=LAM, pitch=LAM / 2, method="rs")
    assert abs(1 - energy(out) / energy(field)) <= 1e-3


def test_phase_only_masks_conserve_energy() -> None:
    torch.manual_seed(7)
    field = torch.randn(16, 16, dtype=torch.complex128)
    phase = 10 * torch.rand(16, 16, dtype=torch.float64)
    masked = field * torch.polar(torch.ones_like(phase), phase)
    assert abs(1 - energy(masked) / energy(field)) <= 1e-12


def test_round_trip_returns_field() -> None:
    """+z then -z is the identity for a band-limited beam that stays inside the window."""
    idx = torch.arange(48, dtype=torch.float64)
    ramp = 0.3 * idx[None, :] + 0.2 * idx[:, None]
    field = gaussian(48, 4.0) * torch.polar(torch.ones(48, 48, dtype=torch.float64), ramp)
    forward = propagate(field, 15 * LAM, wavelength=LAM, pitch=LAM)
    back = propagate(forward, -15 * LAM, wavelength=LAM, pitch=LAM)
    assert (forward - field).abs().max() > 0.1 * field.abs().max()
    assert (back - field).abs().max() <= 1e-10 * field.abs().max()


@settings(max_examples=25, deadline=None)
@given(
    ratio=st.floats(0.1, 100.0),
    distance_ratio=st.floats(-50.0, 5000.0).filter(lambda d: abs(d) > 1e-3),
)
def test_never_nan_and_never_adds_energy(ratio: float, distance_ratio: float) -> None:
    torch.manual_seed(3)
    field = torch.randn(16, 16, dtype=torch.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OpticalSamplingWarning)
        out = propagate(field, distance_ratio * LAM, wavelength=LAM, pitch=ratio * LAM)
    assert torch.isfinite(out).all()
    assert energy(out) <= energy(field) * (1 + 1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_amplitude_masks_never_add_energy(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(16, 16, dtype=torch.complex128, generator=g)
    mask = torch.rand(16, 16, dtype=torch.float64, generator=g)
    out = propagate(field * mask, 5 * LAM, wavelength=LAM, pitch=LAM)
    assert energy(out) <= energy(field) * (1 + 1e-12)


def test_phase_gradients_match_finite_differences() -> None:
    torch.manual_seed(4)
    field = gaussian(8, 3.0)
    masks = OF.detector_layout(8, 2, fill=0.5).to(torch.float64)

    def loss(phase: torch.Tensor) -> torch.Tensor:
        out = propagate(
            field * torch.polar(torch.ones_like(phase), phase), 3 * LAM, wavelength=LAM, pitch=LAM
        )
        return OF.region_powers(out.abs().square(), masks)

    phase = torch.rand(8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (phase,), eps=1e-6, atol=1e-4, rtol=1e-4)


def test_padded_transfer_gradients_match_finite_differences() -> None:
    """apply_transfer's hand-written backward (the adjoint propagation) against finite
    differences, to first and second order, on a field and a batch; and its forward against
    a numpy zero-padded product written here."""
    rng = np.random.default_rng(5)
    h = torch.from_numpy(np.exp(2j * np.pi * rng.random((6, 5))))
    field = torch.from_numpy(rng.normal(size=(2, 3, 2)) + 1j * rng.normal(size=(2, 3, 2)))
    big = np.zeros((2, 6, 5), dtype=np.complex128)
    big[:, :3, :2] = field.numpy()
    want = np.fft.ifft2(np.fft.fft2(big) * h.numpy())[:, :3, :2]
    np.testing.assert_allclose(OF.apply_transfer(field, h).numpy(), want, atol=1e-13)
    u = field.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: OF.apply_transfer(v, h), (u,), fast_mode=True)
    assert torch.autograd.gradgradcheck(
        lambda v: OF.apply_transfer(v, h).abs().square(), (u,), fast_mode=True
    )


def test_integer_shift_ramp_equals_roll() -> None:
    field = gaussian(16, 2.0)
    h = OF.transfer_function((32, 32), 3 * LAM, wavelength=LAM, pitch=LAM, dtype=torch.complex128)
    plain = OF.apply_transfer(field, h)
    shifted = OF.apply_transfer(
        field, h * OF.shift_ramp((32, 32), torch.tensor([2 * LAM, -1 * LAM]), LAM, torch.complex128)
    )
    torch.testing.assert_close(shifted[2:, :-1], plain[:-2, 1:], atol=1e-8, rtol=0)


def test_transfer_functions_are_cached() -> None:
    a = OF.transfer_function((32, 32), 1e-3, wavelength=LAM * 500, pitch=LAM * 300)
    b = OF.transfer_function((32, 32), 1e-3, wavelength=LAM * 500, pitch=LAM * 300)
    assert a is b


def test_fraunhofer_far_field_of_square_aperture_is_sinc_squared() -> None:
    n, pitch, half = 256, 4 * LAM, 4
    x = torch.arange(n) - n // 2
    inside = (x.abs() <= half).to(torch.float64)
    field = (inside[:, None] * inside[None, :]).to(torch.complex128)
    width = (2 * half + 1) * pitch
    z = 50 * width**2 / LAM
    out, out_pitch = OF.fraunhofer(field, z, wavelength=LAM, pitch=pitch)
    xo = (torch.arange(n, dtype=torch.float64) - n // 2) * out_pitch
    # A pixelated aperture is the continuous square, sampled: the array factor of 9 pixels.
    phase = math.pi * pitch * xo / (LAM * z)
    array = torch.sin((2 * half + 1) * phase) / torch.sin(phase)
    array[n // 2] = 2 * half + 1
    got = out.abs().square()[n // 2]
    want = (array * (2 * half + 1) * pitch**2 / (LAM * z)).square()
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12 * float(want.max()))


def test_fraunhofer_warns_below_the_fraunhofer_distance_of_the_full_width() -> None:
    """The far-field condition is z >= 2 D^2 / lambda with D the full aperture width."""
    n, pitch = 64, 4 * LAM
    field = torch.zeros(n, n, dtype=torch.complex128)
    field[28:37, 28:37] = 1  # D = 9 pitch
    width = 9 * pitch
    with pytest.warns(OpticalSamplingWarning, match="Fraunhofer distance"):
        OF.fraunhofer(field, 1.0 * width**2 / LAM, wavelength=LAM, pitch=pitch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OpticalSamplingWarning)
        OF.fraunhofer(field, 2.5 * width**2 / LAM, wavelength=LAM, pitch=pitch)


def test_fresnel_methods_agree_in_the_paraxial_regime() -> None:
    n, pitch = 128, 8 * LAM
    field = gaussian(n, 6.0)
    z = 0.9 * 2 * n * pitch**2 / LAM
    asm = propagate(field, z, wavelength=LAM, pitch=pitch)
    tf = propagate(field, z, wavelength=LAM, pitch=pitch, method="fresnel")
    sfft, out_pitch = OF.fresnel_single_fft(field, z, wavelength=LAM, pitch=pitch)
    assert (asm - tf).abs().max() <= 1e-3 * asm.abs().max()
    # the one-FFT result lives on its own grid: compare total power and peak intensity
    assert abs(energy(sfft) * out_pitch**2 / (energy(field) * pitch**2) - 1) <= 1e-6
    peak_asm = float(asm.abs().square().max())
    assert abs(float(sfft.abs().square().max()) / peak_asm - 1) <= 1e-3
    # and both follow the Gaussian beam: peak intensity 1 / (1 + (z / z_R)^2) of the waist's
    z_r = math.pi * (6.0 * pitch) ** 2 / LAM
    assert abs(peak_asm * (1 + (z / z_r) ** 2) - 1) <= 1e-2


def test_lens_focuses_plane_wave_to_a_spot() -> None:
    n, pitch, f = 128, 2 * LAM, 400 * LAM
    lens = OF.lens_phase((n, n), f, wavelength=LAM, pitch=pitch, dtype=torch.complex128)
    aperture = gaussian(n, 30.0)
    out = propagate(aperture * lens, f, wavelength=LAM, pitch=pitch)
    intensity = out.abs().square()
    peak = divmod(int(intensity.argmax()), n)
    assert peak == (n // 2, n // 2)
    assert float(intensity.max()) > 50 * float(aperture.abs().square().max())


def test_four_f_with_open_fourier_plane_images_inverted() -> None:
    torch.manual_seed(5)
    field = torch.randn(16, 16, dtype=torch.complex128)
    out = OF.four_f(field, torch.ones(16, 16, dtype=torch.complex128))
    idx = (-torch.arange(16)) % 16
    torch.testing.assert_close(out, field[idx][:, idx])
    lowpass = torch.zeros(16, 16, dtype=torch.complex128)
    lowpass[8, 8] = 1
    dc = OF.four_f(field, lowpass)
    torch.testing.assert_close(dc, torch.full_like(field, field.mean()))


@pytest.mark.parametrize("n", [15, 16])
def test_four_f_inverts_about_the_optical_axis(n: int) -> None:
    """Pixel (r, c) images to (2 (n // 2) - r, 2 (n // 2) - c): the axis n // 2 stays put."""
    for r, c in ((n // 2, n // 2), (n // 2 - 3, n // 2 + 2)):
        field = torch.zeros(n, n, dtype=torch.complex128)
        field[r, c] = 1
        out = OF.four_f(field, torch.ones(n, n, dtype=torch.complex128))
        assert divmod(int(out.abs().argmax()), n) == (2 * (n // 2) - r, 2 * (n // 2) - c)
        assert float(out.abs().max()) == pytest.approx(1.0)


def test_phase_quantisation_levels_and_straight_through_gradient() -> None:
    phase = torch.linspace(-7, 7, 101, dtype=torch.float64, requires_grad=True)
    q = OF.quantize_phase(phase, 4)
    steps = q.detach() / (math.pi / 2)
    assert torch.allclose(steps, steps.round(), atol=1e-12)
    assert float(q.detach().min()) >= 0 and float(q.detach().max()) <= 2 * math.pi
    q.sum().backward()
    assert torch.equal(phase.grad, torch.ones_like(phase))


def test_lin2018_layout_is_three_four_three() -> None:
    masks = OF.detector_layout(200, 10)
    rows = sorted({int(m.nonzero()[:, 0].min()) for m in masks})
    counts = [sum(int(m.nonzero()[:, 0].min()) == r for m in masks) for r in rows]
    assert counts == [3, 4, 3]
    assert int(masks.sum(0).max()) == 1  # disjoint


def test_detector_noise_statistics() -> None:
    g = torch.Generator().manual_seed(6)
    n = torch.full((200_000,), 400.0, dtype=torch.float64)
    out = OF.detect(n, noise=True, read_noise=3.0, bits=None, full_scale=1e9, generator=g)
    assert abs(float(out.mean()) - 400) < 5 * math.sqrt(409 / n.numel())
    assert abs(float(out.var()) / 409 - 1) < 0.02
    q = OF.detect(n, noise=False, read_noise=0.0, bits=4, full_scale=300.0)
    assert torch.all(q == 300.0)  # clipped at full scale
    r = OF.detect(torch.linspace(0, 300, 50), noise=False, read_noise=0.0, bits=4, full_scale=300.0)
    codes = r / (300.0 / 15)
    assert torch.allclose(codes, codes.round(), atol=1e-5)


def test_bad_inputs_raise_with_fix() -> None:
    f = torch.ones(8, 8, dtype=torch.complex64)
    with pytest.raises(ValueError, match="wavelength"):
        propagate(f, 1e-3, wavelength=-1e-6, pitch=1e-6)
    with pytest.raises(ValueError, match="nanometres"):
        propagate(f, 1e-3, wavelength=532.0, pitch=1e-6)
    with pytest.raises(ValueError, match="pitch"):
        propagate(f, 1e-3, wavelength=1e-6, pitch=0.0)
    with pytest.raises(ValueError, match="distance"):
        propagate(f, 0.0, wavelength=1e-6, pitch=1e-6)
    with pytest.raises(TypeError, match="complex64"):
        propagate(f.real, 1e-3, wavelength=1e-6, pitch=1e-6)
    with pytest.raises(ValueError, match="padding"):
        propagate(f, 1e-3, wavelength=1e-6, pitch=1e-6, padding=0.5)
    with pytest.raises(ValueError, match="backwards"):
        propagate(f, -1e-5, wavelength=1e-6, pitch=0.5e-6, method="rs")
    with pytest.raises(ValueError, match="method"):
        propagate(f, 1e-5, wavelength=1e-6, pitch=1e-6, method="fft")
    with pytest.raises(ValueError, match=r"distance=-0\.001 m must be > 0.*method='asm'"):
        OF.fraunhofer(f, -1e-3, wavelength=1e-6, pitch=1e-6)
    with pytest.raises(ValueError, match="square"):
        OF.fresnel_single_fft(f[:, :6], 1e-3, wavelength=1e-6, pitch=1e-6)


def test_aliasing_sampling_warns_with_fix() -> None:
    f = torch.ones(8, 8, dtype=torch.complex64)
    with pytest.warns(OpticalSamplingWarning, match="padding"):
        propagate(f, 0.37, wavelength=1e-6, pitch=1.1e-6)
    with pytest.warns(OpticalSamplingWarning, match="wraps around"):
        propagate(f, 3e-3, wavelength=1e-6, pitch=4e-6, method="fresnel")
    with pytest.warns(OpticalSamplingWarning, match="Rayleigh-Sommerfeld kernel"):
        propagate(f, 1.1e-6, wavelength=1e-6, pitch=3.1e-6, method="rs")


def test_every_call_with_a_cached_out_of_regime_transfer_function_warns() -> None:
    f = torch.ones(8, 8, dtype=torch.complex64)
    for _ in range(2):  # the second call hits the transfer-function cache
        with pytest.warns(OpticalSamplingWarning, match="padding"):
            propagate(f, 0.37, wavelength=1e-6, pitch=1.1e-6)


def test_rs_kernel_aliasing_threshold_is_the_per_axis_nyquist_limit() -> None:
    """exp(i k r) sampled at pitch p aliases along x once x / (lambda r) > 1 / (2 p), first at
    the largest offset x = (N - 1) p between a lit and an output pixel of an N-pixel window,
    with y = 0: z_min = x sqrt(4 p^2 - lambda^2) / lambda."""
    n, pitch, lam = 16, 3.1e-6, 1e-6
    x = (n - 1) * pitch
    z_min = x * math.sqrt(4 * pitch**2 - lam**2) / lam
    grid, size = (2 * n, 2 * n), (n, n)
    assert OF.sampling_problems(grid, 0.99 * z_min, lam, pitch, "rs", size=size)
    assert not OF.sampling_problems(grid, 1.01 * z_min, lam, pitch, "rs", size=size)
    # a compact field in the middle of the window meets smaller offsets: no false alarm
    assert not OF.sampling_problems(
        grid, 0.99 * z_min, lam, pitch, "rs", size=size, extent=(6, 9, 6, 9)
    )
    # the Lin et al. (2018) geometry with 2x padding is (just) sampled well for its own method
    assert not OF.sampling_problems((400, 400), 30e-3, 0.75e-3, 0.4e-3, "rs")


def test_auto_picks_asm_near_and_rs_far() -> None:
    assert OF.choose_method((64, 64), 1e-5, 1e-6, 1e-6) == "asm"
    assert OF.choose_method((64, 64), 1.0, 1e-6, 1e-6) == "rs"


def test_fresnel_outside_paraxial_regime_warns() -> None:
    f = torch.ones(8, 8, dtype=torch.complex64)
    with pytest.warns(OpticalSamplingWarning) as record:
        propagate(f, 0.29, wavelength=1e-6, pitch=1.1e-6, method="fresnel")
    messages = " ".join(str(w.message) for w in record)
    assert "paraxial" in messages and "wraps around" in messages
