"""Scalar diffraction, masks and detection as pure functions of tensors.

Fields are complex tensors shaped ``[..., H, W]`` sampled on a square grid of pitch
``pitch`` [m]; the batch dimensions broadcast. Propagation multiplies the zero-padded
spectrum by a transfer function ``H(fx, fy)`` that is cached per (padded shape, distance,
wavelength, pitch, method, dtype, device), so a network pays only its FFTs.

Physics:
    - ``asm``: band-limited angular spectrum, ``H = exp(i 2 pi z sqrt(1/lambda^2 - fx^2 -
      fy^2))`` with evanescent waves damped and, for linear (non-periodic) propagation, the
      two-ellipse band limit of Matsushima & Shimobaba (Opt. Express 17, 19662, 2009, sec. 3):
      a frequency is kept when ``fx^2 / ux^2 + lambda^2 fy^2 <= 1`` and ``fy^2 / uy^2 +
      lambda^2 fx^2 <= 1`` with ``u = 1 / (lambda sqrt((2 df z)^2 + 1))`` per axis (``df =
      1 / (M pitch)``, the frequency step of the ``M``-pixel padded grid). This keeps the
      transfer function sampled without aliasing; it does not stop light that leaves the
      padded window from wrapping around, which is what the padding is for (see
      :data:`LINEAR_PADDING`). Exact for band-limited fields that stay in the window.
    - ``rs``: first Rayleigh-Sommerfeld solution as an FFT convolution with the sampled
      impulse response ``h = z / r^2 (1 / (2 pi r) + 1 / (i lambda)) exp(i 2 pi r / lambda)
      pitch^2``, the formulation of Lin et al., Science 361, 1004 (2018).
    - ``fresnel``: paraxial transfer function ``exp(i k z) exp(-i pi lambda z (fx^2 +
      fy^2))`` (Goodman, Introduction to Fourier Optics, 3rd ed., eq. 4-21);
      :func:`fresnel_single_fft` and :func:`fraunhofer` give the one-FFT forms, whose output
      pitch is ``lambda z / (M pitch)``.
    - ``auto``: ``rs`` where its sampled kernel is in its regime on the grid (pitch fine
      enough for the kernel's local frequencies, distance beyond a few pitches), ``asm``
      elsewhere and backwards (:func:`choose_method`). Layers default to it: on the
      oversampled grid of a D2NN the RS convolution is the exact linear integral up to
      its quadrature, while the band limit drops the tails of the ASM kernel.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import torch

from ..common.config import check_choice, literal_choices
from ..common.quant import quantize_step

__all__ = [
    "LINEAR_PADDING",
    "PROPAGATION_METHODS",
    "Boundary",
    "OpticalSamplingWarning",
    "PropagationMethod",
    "apply_transfer",
    "asm_transfer",
    "band_limit",
    "build_transfer",
    "check_distance",
    "check_field",
    "choose_method",
    "detect",
    "detector_layout",
    "fft_size",
    "field_bandwidth",
    "field_extent",
    "four_f",
    "fraunhofer",
    "frequencies",
    "fresnel_single_fft",
    "lens_phase",
    "padded_shape",
    "pixel_sum",
    "propagate",
    "quantize_phase",
    "region_powers",
    "sampling_problems",
    "shift_ramp",
    "transfer_function",
    "upsample",
]

_COMPLEX = (torch.complex64, torch.complex128)


class OpticalSamplingWarning(UserWarning):
    """A sampling or approximation is outside its regime: the result may be wrong."""


def _check_positive(name: str, value: float, unit: str, hint: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number [{unit}], got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        msg = f"{name}={value!r} {unit} must be a finite number > 0"
        raise ValueError(f"{msg}; {hint}" if hint else msg)
    return float(value)


def _check_optics(wavelength: float, pitch: float) -> tuple[float, float]:
    wavelength = _check_positive("wavelength", wavelength, "m")
    pitch = _check_positive("pitch", pitch, "m")
    if not 1e-7 <= wavelength <= 1e-2:
        raise ValueError(
            f"wavelength={wavelength!r} m is outside [1e-07, 0.01] m; did you pass nanometres "
            "or millimetres? 532 nm is 532e-9"
        )
    if not 0.01 <= pitch / wavelength <= 1000:
        raise ValueError(
            f"pitch={pitch!r} m is {pitch / wavelength:g} wavelengths; use 0.01..1000 "
            "wavelengths (are pitch and wavelength both in metres?)"
        )
    return wavelength, pitch


def check_distance(distance: float) -> float:
    """``distance`` [m] as a float; raise unless it is non-zero, finite and within 100 m."""
    if isinstance(distance, bool) or not isinstance(distance, int | float):
        raise TypeError(f"distance must be a real number [m], got {type(distance).__name__}")
    if not math.isfinite(distance) or distance == 0 or abs(distance) > 100:
        raise ValueError(
            f"distance={distance!r} m must be non-zero, finite and within +-100 m "
            "(negative propagates backwards); lengths are in metres"
        )
    return float(distance)


def check_field(field: torch.Tensor, name: str = "field") -> None:
    """Raise unless ``field`` is a finite complex tensor with at least two dimensions."""
    if not isinstance(field, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(field).__name__}")
    if field.dtype not in _COMPLEX:
        raise TypeError(
            f"{name} must be complex64 or complex128, got {field.dtype}; convert an amplitude "
            "with field.to(torch.complex64) or encode a phase with torch.polar(ones, phase)"
        )
    if field.dim() < 2:
        raise ValueError(f"{name} must be shaped [..., H, W], got {tuple(field.shape)}")


PropagationMethod = Literal["asm", "rs", "fresnel", "auto"]
"""Methods accepted by :func:`propagate` and the geometry config."""

PROPAGATION_METHODS = literal_choices(PropagationMethod)

Boundary = Literal["linear", "periodic"]
"""``linear``: the field is zero outside its window (zero-padded FFT grid, band limit);
``periodic``: the field repeats with the window's period (no padding, no band limit)."""


def fft_size(n: int) -> int:
    """The smallest FFT length ``>= n`` whose prime factors are 2, 3, 5 and 7.

    FFT libraries transform such lengths fastest; a large prime factor falls back to a slow
    algorithm (a 318-sample axis, 2 x 3 x 53, costs 2.7x a 320-sample one with torch 2.13's
    MKL FFT on this project's CPU, measured).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be an int >= 1 (a number of samples)")
    m = n
    while True:
        rest = m
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return m
        m += 1


def padded_shape(shape: Sequence[int], padding: float) -> tuple[int, int]:
    """The FFT grid for a field of ``shape[-2:]``: ``ceil(padding * n)`` per axis, rounded
    up to an FFT-friendly length (:func:`fft_size`); ``padding=1`` keeps the field's own
    grid (a periodic window must not grow).

    Raises:
        ValueError: when ``padding < 1`` (the grid would be smaller than the field).
    """
    if isinstance(padding, bool) or not isinstance(padding, int | float):
        raise TypeError(f"padding must be a number (a factor of the grid size), got {padding!r}")
    n1, n2 = int(shape[-2]), int(shape[-1])
    if not math.isfinite(padding) or padding < 1:
        raise ValueError(
            f"padding={padding!r} makes the FFT grid smaller than the {n1}-pixel field; use "
            "padding >= 1 (a factor of the field size; None chooses it from the geometry)"
        )
    if padding == 1:
        return n1, n2
    return fft_size(math.ceil(padding * n1)), fft_size(math.ceil(padding * n2))


LINEAR_PADDING = 2.0
"""Default padding factor of linear propagation [-]. An output pixel of an ``N``-pixel window
sees source pixels at offsets up to ``N - 1``, so a grid of ``2N - 1`` or more samples makes
the circular convolution linear for any distance: exactly for the Rayleigh-Sommerfeld
kernel (sampled at the window's offsets), and for the band-limited angular spectrum up to
the slowly decaying tails of its kernel (the band limit keeps every wave within ``M pitch /
2``). A smaller grid is exact only for fields narrower than the window, which
:func:`sampling_problems` checks (a geometric cone would miss those tails: 11 % error at
1.3x padding where the cone "fits")."""


def choose_method(padded: Sequence[int], distance: float, wavelength: float, pitch: float) -> str:
    """The method ``auto`` resolves to: ``rs`` where the sampled Rayleigh-Sommerfeld kernel
    is in its regime on this grid for a field filling the window (no RS entry from
    :func:`sampling_problems`), else ``asm``; always ``asm`` backwards.

    On a grid that resolves the kernel (pitch <= lambda / 2, as the oversampled simulation
    grid of a D2NN does) the RS convolution on the 2x-padded grid is the linear integral up
    to its quadrature, while the band-limited angular spectrum drops the tails of its
    kernel: against a converged reference, a random-phase layer at the Lin 2018 geometry
    (3 x 3 samples per neuron, padding 2) errs by 2.3 % with ``rs`` and 9 % with ``asm``
    (``tests/optical/test_sampling.py``). Where the RS kernel aliases (coarse pitch, short
    distance) the angular spectrum is the well-sampled method.
    """
    if distance < 0:
        return "asm"
    return "asm" if sampling_problems(padded, distance, wavelength, pitch, "rs") else "rs"


def field_extent(field: torch.Tensor, *, tolerance: float = 1e-6) -> tuple[int, int, int, int]:
    """Pixel box ``(y0, y1, x0, x1)`` (inclusive) holding all but ``tolerance`` of the energy
    of ``field [..., H, W]`` (summed over the batch); the whole window for a dark field."""
    intensity = field.detach().abs().square().reshape(-1, *field.shape[-2:]).sum(0)
    box = []
    for axis in (1, 0):  # marginal along y (sum over x), then along x
        profile = intensity.sum(axis).to(torch.float64)
        total = float(profile.sum())
        n = profile.numel()
        if total <= 0:
            box += [0, n - 1]
            continue
        cum = torch.cumsum(profile, 0) / total
        low = int(torch.searchsorted(cum, torch.tensor(tolerance / 2, dtype=cum.dtype)))
        high = int(torch.searchsorted(cum, torch.tensor(1 - tolerance / 2, dtype=cum.dtype)))
        box += [min(low, n - 1), min(high, n - 1)]
    return box[0], box[1], box[2], box[3]


def field_bandwidth(
    spectrum: torch.Tensor, pitch: float, *, tolerance: float = 1e-6
) -> tuple[float, float]:
    """Per-axis frequency ``(fy, fx)`` [1/m] below which ``spectrum [..., M1, M2]`` (zero
    frequency first) holds all but ``tolerance`` of its energy."""
    power = spectrum.detach().abs().square().reshape(-1, *spectrum.shape[-2:]).sum(0)
    limits = []
    for axis, m in ((1, spectrum.shape[-2]), (0, spectrum.shape[-1])):
        profile = power.sum(axis).to(torch.float64)
        f = torch.fft.fftfreq(m, d=pitch, dtype=torch.float64, device=profile.device).abs()
        order = torch.argsort(f)
        total = float(profile.sum())
        if total <= 0:
            limits.append(0.0)
            continue
        cum = torch.cumsum(profile[order], 0) / total
        index = int(torch.searchsorted(cum, torch.tensor(1 - tolerance, dtype=cum.dtype)))
        limits.append(float(f[order][min(index, m - 1)]))
    return limits[0], limits[1]


def sampling_problems(
    padded: Sequence[int],
    distance: float,
    wavelength: float,
    pitch: float,
    method: str,
    *,
    size: Sequence[int] | None = None,
    extent: Sequence[int] | None = None,
    bandwidth: Sequence[float] | None = None,
    boundary: Boundary = "linear",
) -> list[str]:
    """Why ``method`` may give wrong results on this grid (empty when it is in its regime).

    Args:
        padded: FFT grid ``(M1, M2)``.
        distance: propagation distance [m].
        wavelength: wavelength [m].
        pitch: grid pitch [m].
        method: ``asm``, ``rs`` or ``fresnel`` (not ``auto``).
        size: the field's window ``(N1, N2)`` (default: ``padded / 2``).
        extent: the lit pixel box ``(y0, y1, x0, x1)`` of the field (default: the window),
            e.g. from :func:`field_extent`.
        bandwidth: the field's per-axis bandwidth ``(fy, fx)`` [1/m] (default: the grid's
            Nyquist frequency), e.g. from :func:`field_bandwidth`.
        boundary: ``linear`` or ``periodic`` (periodic fields cannot wrap around).

    The checks use what the field occupies: a compact, smooth field may be propagated far
    on a small grid, a field filling the window needs :data:`LINEAR_PADDING`.
    """
    m1, m2 = int(padded[0]), int(padded[1])
    n1, n2 = (m1 // 2, m2 // 2) if size is None else (int(size[0]), int(size[1]))
    y0, y1, x0, x1 = (0, n1 - 1, 0, n2 - 1) if extent is None else tuple(int(v) for v in extent)
    nyquist = 1 / (2 * pitch)
    f_field = (
        (nyquist, nyquist) if bandwidth is None else (float(bandwidth[0]), float(bandwidth[1]))
    )
    z = abs(distance)
    problems = []
    paraxial = method == "fresnel"
    if boundary == "linear" and method in ("asm", "fresnel"):
        for axis, (m, n, lo, hi, f) in enumerate(
            ((m1, n1, y0, y1, f_field[0]), (m2, n2, x0, x1, f_field[1]))
        ):
            # The steepest wave the field holds reaches ``reach`` pixels; the band limit keeps
            # reaches <= M / 2 (asm); it wraps into the window if it leaves the padded grid.
            sine = min(1.0, wavelength * f)
            if paraxial:
                reach = z * wavelength * f / pitch
            elif sine >= 1:
                reach = math.inf
            else:
                reach = z * sine / math.sqrt(1 - sine**2) / pitch
            if method == "asm":
                reach = min(reach, m / 2)
            room = min(m - 1 - hi, lo + m - n)
            if reach > room + 0.5:
                name = "y" if axis == 0 else "x"
                problems.append(
                    f"light spreads {reach:.0f} pixels along {name} over distance={distance:g} m "
                    f"but the {m}-pixel padded grid leaves {max(room, 0)}: it wraps around onto "
                    "the field; increase padding (None chooses it from the geometry) or pass "
                    "boundary='periodic' if the field is periodic"
                )
                break
    if method == "asm" and boundary == "linear":
        limit = min(
            1.0 / (wavelength * math.sqrt((2 * z / (m * pitch)) ** 2 + 1)) for m in (m1, m2)
        )
        needed = min(max(f_field), 1 / wavelength)
        if limit < 0.5 * needed:
            problems.append(
                f"the band-limited angular spectrum keeps only {100 * limit / needed:.0f} % of "
                f"the field's propagating bandwidth at distance={distance:g} m on a "
                f"{min(m1, m2)}-pixel grid; increase padding or use method='rs'"
            )
    elif method == "fresnel":
        if boundary == "periodic" and z > min(m1, m2) * pitch**2 / wavelength:
            problems.append(
                f"the Fresnel transfer function aliases beyond z = M pitch^2 / lambda = "
                f"{min(m1, m2) * pitch**2 / wavelength:g} m (distance={distance:g} m); use "
                "method='rs' or fresnel_single_fft"
            )
        # Paraxial phase error of the field's highest frequency (Taylor term f^4).
        f_max = min(max(f_field), 1 / wavelength)
        error = 2 * math.pi * z * wavelength**3 * f_max**4 / 8
        if error > math.pi / 4:
            problems.append(
                f"distance={distance:g} m is too long for the paraxial (Fresnel) transfer "
                f"function at pitch={pitch:g} m: its phase is {error:.2g} rad off at the "
                "field's highest frequency; use method='asm'"
            )
    elif method == "rs":
        if boundary == "linear":
            # The kernel holds offsets -(M // 2) .. (M + 1) // 2 - 1; an output pixel needs
            # the offsets to every lit pixel, up to N - 1 - lo forwards and hi backwards.
            for name, m, n, lo, hi in (("y", m1, n1, y0, y1), ("x", m2, n2, x0, x1)):
                if n - 1 - lo > (m + 1) // 2 - 1 or hi > m // 2:
                    problems.append(
                        f"the Rayleigh-Sommerfeld kernel on the {m}-pixel padded grid holds "
                        f"offsets up to {(m + 1) // 2 - 1} pixels along {name} but the field "
                        f"needs {max(n - 1 - lo, hi)}: it wraps around onto the field; "
                        "increase padding (None chooses 2)"
                    )
                    break
        # Local frequency of exp(i k r) along x is x / (lambda r), largest at y = 0: the
        # per-axis Nyquist limit binds at the largest offset between a lit pixel and an
        # output pixel (the window), not at the corner (a larger y only lowers x / r).
        # A kernel frequency f_loc above Nyquist folds to f_loc - 1 / p; it corrupts the
        # result only where the field has content, i.e. if f_loc > 1 / p - (its bandwidth).
        offset = max(y1, n1 - 1 - y0, x1, n2 - 1 - x0, 1) * pitch
        f_local = offset / (wavelength * math.hypot(offset, z))
        f_fold = 1 / pitch - max(f_field)
        if f_local > max(f_fold, nyquist):
            # the distance at which f_local = f_fold: offset / (lambda r) = f_fold
            needed = offset * math.sqrt(max(1 / (wavelength * f_fold) ** 2 - 1, 0.0))
            problems.append(
                f"the Rayleigh-Sommerfeld kernel aliases at distance={distance:g} m (needs z >= "
                f"{needed:g} m for pitch={pitch:g} m); use method='asm'"
            )
        # Point sampling of the kernel is a quadrature of the RS integral; it fails when the
        # kernel varies within a pixel (z of a few pitches): its spectrum then folds over
        # (evanescent tails above Nyquist, a gain near the band edge). The folded amplitude
        # at the field's highest frequency: exp(-2 pi z sqrt((1/p - f)^2 - 1/lambda^2)).
        f_max = max(f_field)
        mirror = max(1 / pitch - f_max, 0.0)
        decay = mirror**2 - 1 / wavelength**2
        # (a propagating mirror frequency, pitch > lambda / 2, is the window check above)
        evanescent = mirror * wavelength >= 1 - 1e-9
        folded = math.exp(-2 * math.pi * z * math.sqrt(max(decay, 0.0))) if evanescent else 0.0
        if folded > 1e-2 and z < 1e3 * pitch:
            problems.append(
                f"the point-sampled Rayleigh-Sommerfeld kernel is undersampled at distance="
                f"{distance:g} m with pitch={pitch:g} m: its folded spectrum reaches "
                f"{folded:.2g} of the field's band (energy gain, wrong field); use method='asm'"
            )
    return problems


def frequencies(
    padded: Sequence[int], pitch: float, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """FFT frequencies ``(fy [M1, 1], fx [1, M2])`` [1/m] of the padded grid (float64)."""
    fy = torch.fft.fftfreq(int(padded[0]), d=pitch, dtype=torch.float64, device=device)[:, None]
    fx = torch.fft.fftfreq(int(padded[1]), d=pitch, dtype=torch.float64, device=device)[None, :]
    return fy, fx


def band_limit(
    padded: Sequence[int], distance: float, wavelength: float, pitch: float
) -> torch.Tensor:
    """Boolean ``[M1, M2]``: the two-ellipse band limit of Matsushima & Shimobaba (2009).

    A wave of frequency ``(fx, fy)`` reaches ``x = z lambda fx / sqrt(1 - lambda^2 (fx^2 +
    fy^2))``; keeping ``|x| <= M2 pitch / 2`` (and likewise along y) is the ellipse
    ``fx^2 / ux^2 + lambda^2 fy^2 <= 1`` with ``ux = 1 / (lambda sqrt((2 z / (M2 pitch))^2 +
    1))``. Their intersection replaces the rectangle ``|fx| <= ux, |fy| <= uy``, which keeps
    near-grazing diagonal waves that alias.
    """
    fy, fx = frequencies(padded, pitch)
    z = abs(distance)
    uy = 1.0 / (wavelength * math.sqrt((2 * z / (int(padded[0]) * pitch)) ** 2 + 1))
    ux = 1.0 / (wavelength * math.sqrt((2 * z / (int(padded[1]) * pitch)) ** 2 + 1))
    lam2 = wavelength**2
    evanescent = lam2 * (fx**2 + fy**2) > 1  # they do not travel sideways: kept (damped)
    inside = (fx**2 / ux**2 + lam2 * fy**2 <= 1) & (fy**2 / uy**2 + lam2 * fx**2 <= 1)
    return inside | evanescent


def asm_transfer(
    padded: Sequence[int],
    distance: float,
    wavelength: float,
    pitch: float,
    device: torch.device | str = "cpu",
    *,
    band_limited: bool = True,
) -> torch.Tensor:
    """Angular-spectrum transfer function ``[M1, M2]`` (complex128, zero frequency first).

    Propagating waves get ``exp(i kz z)``; evanescent ones decay as ``exp(-|kz z|)`` in
    either direction so that backward propagation never amplifies them (no NaN or inf).
    ``band_limited`` applies :func:`band_limit` (linear propagation).
    """
    grid = (int(padded[0]), int(padded[1]))
    fy, fx = frequencies(grid, pitch, device)
    arg = 1.0 / wavelength**2 - fx**2 - fy**2
    root = torch.sqrt(arg.abs())
    phase = 2 * math.pi * distance * root
    h = torch.where(
        arg >= 0,
        torch.polar(torch.ones_like(phase), phase),
        torch.exp(-2 * math.pi * abs(distance) * root).to(torch.complex128),
    )
    if not band_limited:
        return h
    keep = band_limit(grid, distance, wavelength, pitch).to(h.device)
    return torch.where(keep, h, torch.zeros((), dtype=h.dtype, device=h.device))


def _rs(
    padded: tuple[int, int], z: float, wavelength: float, pitch: float, dev: torch.device
) -> torch.Tensor:
    if z < 0:
        raise ValueError(
            f"method='rs' propagates forwards only (distance={z!r} m); use method='asm' to "
            "propagate backwards"
        )

    def coords(m: int) -> torch.Tensor:
        idx = torch.arange(m, dtype=torch.float64, device=dev)
        return torch.where(idx < (m + 1) // 2, idx, idx - m) * pitch

    y = coords(padded[0])[:, None]
    x = coords(padded[1])[None, :]
    r = torch.sqrt(x**2 + y**2 + z**2)
    k = 2 * math.pi / wavelength
    amplitude = z / r**2 * (1 / (2 * math.pi * r) + 1 / (1j * wavelength))
    h = amplitude * torch.polar(torch.ones_like(r), k * r) * pitch**2
    return torch.fft.fft2(h)


def _fresnel(
    padded: tuple[int, int], z: float, wavelength: float, pitch: float, dev: torch.device
) -> torch.Tensor:
    fy, fx = frequencies(padded, pitch, dev)
    phase = 2 * math.pi * z / wavelength - math.pi * wavelength * z * (fx**2 + fy**2)
    return torch.polar(torch.ones_like(phase), phase)


@functools.lru_cache(maxsize=128)
def _cached_transfer(
    padded: tuple[int, int],
    distance: float,
    wavelength: float,
    pitch: float,
    method: str,
    boundary: str,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    return build_transfer(padded, distance, wavelength, pitch, method, boundary, device).to(dtype)


def build_transfer(
    padded: tuple[int, int],
    distance: float,
    wavelength: float,
    pitch: float,
    method: str,
    boundary: str,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Uncached complex128 transfer function of ``method`` (not ``auto``), for distances
    that change every call (misalignment); :func:`transfer_function` caches it."""
    device = torch.device(device)
    if method == "asm":
        h = asm_transfer(
            padded, distance, wavelength, pitch, device, band_limited=boundary == "linear"
        )
    elif method == "rs":
        h = _rs(padded, distance, wavelength, pitch, device)
    else:
        h = _fresnel(padded, distance, wavelength, pitch, device)
    return h


def _resolve(
    padded: Sequence[int],
    distance: float,
    wavelength: float,
    pitch: float,
    method: str,
    boundary: str,
) -> tuple[tuple[int, int], float, float, float, str]:
    wavelength, pitch = _check_optics(wavelength, pitch)
    distance = check_distance(distance)
    check_choice("", "method", method, PROPAGATION_METHODS)
    check_choice("", "boundary", boundary, literal_choices(Boundary))
    grid = (int(padded[0]), int(padded[1]))
    if method == "auto":
        method = choose_method(grid, distance, wavelength, pitch)
    return grid, distance, wavelength, pitch, method


def transfer_function(
    padded: Sequence[int],
    distance: float,
    *,
    wavelength: float,
    pitch: float,
    method: str = "asm",
    boundary: Boundary = "linear",
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The cached transfer function ``[M1, M2]`` on the FFT grid (zero frequency first).

    Args:
        padded: FFT grid ``(M1, M2)`` (see :func:`padded_shape`).
        distance: propagation distance [m]; negative propagates backwards (``asm``,
            ``fresnel``).
        wavelength: wavelength [m].
        pitch: grid pitch [m].
        method: ``asm``, ``rs``, ``fresnel`` or ``auto``.
        boundary: ``linear`` (band-limited) or ``periodic`` (no band limit).
        dtype: complex dtype of the result.
        device: device of the result.

    Returns:
        A read-only-by-convention cached tensor: multiply, never modify it in place. No
        sampling check is made here: :func:`propagate` checks the field it propagates, and
        the layers check their geometry once (:func:`sampling_problems`).
    """
    grid, distance, wavelength, pitch, method = _resolve(
        padded, distance, wavelength, pitch, method, boundary
    )
    if dtype not in _COMPLEX:
        raise TypeError(f"dtype must be complex64 or complex128, got {dtype}")
    return _cached_transfer(
        grid, distance, wavelength, pitch, method, boundary, dtype, torch.device(device)
    )


def _padded_product(field: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    n1, n2 = field.shape[-2:]
    spectrum = torch.fft.fft2(field, s=transfer.shape[-2:])
    # In place: the product's backward needs only ``transfer``, never the spectrum.
    spectrum.mul_(transfer)
    return torch.fft.ifft2(spectrum)[..., :n1, :n2]


class _Transfer(torch.autograd.Function):
    """``crop(ifft2(H fft2(pad(u))))`` whose backward is the same product with ``conj(H)``.

    The padded product is linear and its adjoint is ``crop(ifft2(conj(H) fft2(pad(g))))``
    (``fft2`` and ``M1 M2 ifft2`` are adjoint), so the gradient costs the two FFTs of the
    forward and none of the zero-filled ``M1 x M2`` buffers and conjugated copies that
    autograd's chain of pad, FFT, product, FFT and crop builds. Calling itself in the
    backward keeps higher derivatives.
    """

    @staticmethod
    def forward(ctx: Any, field: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(transfer)
        return _padded_product(field, transfer)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (transfer,) = ctx.saved_tensors
        return _Transfer.apply(grad, torch.conj_physical(transfer)), None


def apply_transfer(field: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Propagate ``field`` ``[..., N1, N2]`` with a transfer function on its padded grid.

    The field is zero-padded at the end of each axis by ``torch.fft.fft2(s=...)``, the
    spectrum multiplied in place and the result cropped back to ``[..., N1, N2]``. For a
    constant ``[M1, M2]`` transfer function the backward pass is the adjoint propagation
    (two FFTs, see :class:`_Transfer`); a transfer function that requires a gradient or
    carries batch dimensions goes through autograd.
    """
    n1, n2 = field.shape[-2:]
    if field.numel() == 0:
        # An empty batch: MKL's FFT refuses zero-sized transforms (issue 15, item 9).
        return field * transfer[..., :n1, :n2]
    if transfer.dim() == 2 and not transfer.requires_grad:
        out: torch.Tensor = _Transfer.apply(field, transfer)
        return out
    return _padded_product(field, transfer)


def propagate(
    field: torch.Tensor,
    distance: float,
    *,
    wavelength: float,
    pitch: float,
    method: str = "asm",
    padding: float | None = None,
    boundary: Boundary = "linear",
) -> torch.Tensor:
    """Free-space propagation of a complex field over ``distance``.

    Args:
        field: complex field ``[..., H, W]``.
        distance: propagation distance [m] (negative: backwards, ``asm``/``fresnel`` only).
        wavelength: wavelength [m].
        pitch: grid pitch [m].
        method: ``asm`` (default), ``rs``, ``fresnel`` or ``auto`` (see module docstring).
        padding: FFT grid factor (>= 1). None (default): :data:`LINEAR_PADDING` for
            ``boundary="linear"``; 1 for ``"periodic"``.
        boundary: ``linear`` (the field is zero outside its window) or ``periodic`` (the
            window is one period: no padding, no band limit; e.g. Talbot self-imaging).

    Shape:
        ``[..., H, W] -> [..., H, W]`` (the window of the input; light leaving it is lost).

    Warns:
        OpticalSamplingWarning: when the method is outside its sampling regime for this
            field (its lit extent and bandwidth, see :func:`sampling_problems`).

    Example:
        >>> import torch
        >>> from physnn.optical.functional import propagate
        >>> u = torch.ones(1, 32, 32, dtype=torch.complex64)
        >>> propagate(u, 0.01, wavelength=0.75e-3, pitch=0.4e-3).shape
        torch.Size([1, 32, 32])
    """
    check_field(field)
    n1, n2 = field.shape[-2:]
    if boundary == "periodic":
        if padding not in (None, 1, 1.0):
            raise ValueError(
                f"padding={padding!r} with boundary='periodic': a periodic field is not "
                "padded; drop padding or use boundary='linear'"
            )
        padding = 1.0
    elif padding is None:
        padding = LINEAR_PADDING
    grid, distance, wavelength, pitch, method = _resolve(
        padded_shape(field.shape, padding), distance, wavelength, pitch, method, boundary
    )
    h = transfer_function(
        grid,
        distance,
        wavelength=wavelength,
        pitch=pitch,
        method=method,
        boundary=boundary,
        dtype=field.dtype,
        device=field.device,
    )
    if field.numel() == 0:
        return apply_transfer(field, h)
    spectrum = torch.fft.fft2(field, s=grid)
    problems = sampling_problems(
        grid,
        distance,
        wavelength,
        pitch,
        method,
        size=(n1, n2),
        extent=field_extent(field),
        bandwidth=field_bandwidth(spectrum, pitch),
        boundary=boundary,
    )
    for problem in problems:
        warnings.warn(problem, OpticalSamplingWarning, stacklevel=2)
    spectrum.mul_(h)
    return torch.fft.ifft2(spectrum)[..., :n1, :n2]


def upsample(values: torch.Tensor, factor: int) -> torch.Tensor:
    """Piecewise-constant upsampling ``[..., H, W] -> [..., factor H, factor W]``: each
    neuron (mask pixel, input pixel) becomes a ``factor x factor`` block of samples."""
    if factor == 1:
        return values
    return values.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def pixel_sum(values: torch.Tensor, factor: int) -> torch.Tensor:
    """Sum ``factor x factor`` blocks ``[..., factor H, factor W] -> [..., H, W]`` (the
    power a pixel of ``factor`` samples per side collects)."""
    if factor == 1:
        return values
    h, w = values.shape[-2] // factor, values.shape[-1] // factor
    blocks = values.reshape(*values.shape[:-2], h, factor, w, factor)
    return blocks.sum((-3, -1))


def shift_ramp(
    padded: Sequence[int], shift: torch.Tensor, pitch: float, dtype: torch.dtype
) -> torch.Tensor:
    """Spectral ramp ``exp(-i 2 pi (fy dy + fx dx))`` that shifts a field by ``shift``.

    Args:
        padded: FFT grid ``(M1, M2)``.
        shift: ``[..., 2]`` displacements ``(dy, dx)`` [m].
        pitch: grid pitch [m].
        dtype: complex dtype of the result.

    Returns:
        ``[..., M1, M2]``; multiplying a spectrum by it moves the field by ``+shift``
        (exact for band-limited fields; sub-pixel shifts included).
    """
    grid = (int(padded[0]), int(padded[1]))
    fy, fx = frequencies(grid, pitch, shift.device)
    s = shift.to(torch.float64)
    phase = -2 * math.pi * (fy * s[..., 0, None, None] + fx * s[..., 1, None, None])
    return torch.polar(torch.ones_like(phase), phase).to(dtype)


def _centered_coords(m: int, pitch: float, device: torch.device) -> torch.Tensor:
    return (torch.arange(m, dtype=torch.float64, device=device) - m // 2) * pitch


def _one_fft(
    field: torch.Tensor, distance: float, wavelength: float, pitch: float, chirp: bool
) -> tuple[torch.Tensor, float]:
    check_field(field)
    wavelength, pitch = _check_optics(wavelength, pitch)
    z = check_distance(distance)
    if z < 0:
        raise ValueError(
            f"distance={z!r} m must be > 0 for the one-FFT propagators; use "
            "propagate(..., method='asm') to propagate backwards"
        )
    m1, m2 = field.shape[-2:]
    if m1 != m2:
        raise ValueError(f"the one-FFT propagators need a square field, got {tuple(field.shape)}")
    dev = field.device
    y = _centered_coords(m1, pitch, dev)[:, None]
    x = _centered_coords(m2, pitch, dev)[None, :]
    k = 2 * math.pi / wavelength
    u = field
    if chirp:
        u = u * torch.polar(torch.ones_like(x * y), k / (2 * z) * (x**2 + y**2)).to(field.dtype)
    spectrum = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(u, dim=(-2, -1))), (-2, -1))
    out_pitch = wavelength * z / (m1 * pitch)
    yo = _centered_coords(m1, out_pitch, dev)[:, None]
    xo = _centered_coords(m2, out_pitch, dev)[None, :]
    phase = k * z + k / (2 * z) * (xo**2 + yo**2)
    prefactor = torch.polar(torch.ones_like(phase), phase) / (1j * wavelength * z) * pitch**2
    return spectrum * prefactor.to(field.dtype), out_pitch


def fresnel_single_fft(
    field: torch.Tensor, distance: float, *, wavelength: float, pitch: float
) -> tuple[torch.Tensor, float]:
    """Fresnel diffraction integral with one FFT (Goodman eq. 4-17), for long distances.

    Args:
        field: square complex field ``[..., M, M]`` centred at index ``M // 2``.
        distance: distance > 0 [m].
        wavelength: wavelength [m].
        pitch: input pitch [m].

    Returns:
        ``(output field, output pitch = lambda z / (M pitch) [m])``.
    """
    return _one_fft(field, distance, wavelength, pitch, chirp=True)


def fraunhofer(
    field: torch.Tensor, distance: float, *, wavelength: float, pitch: float
) -> tuple[torch.Tensor, float]:
    """Far-field (Fraunhofer) diffraction, valid for ``z >> D^2 / lambda`` (Goodman eq. 4-25).

    Args:
        field: square complex field ``[..., M, M]`` centred at index ``M // 2``.
        distance: distance > 0 [m].
        wavelength: wavelength [m].
        pitch: input pitch [m].

    Returns:
        ``(output field, output pitch = lambda z / (M pitch) [m])``.

    Warns:
        OpticalSamplingWarning: below the Fraunhofer distance ``2 D^2 / lambda`` of the lit
            part of the field (width ``D``).
    """
    check_field(field)
    lit = (field.detach().abs().reshape(-1, *field.shape[-2:]).amax(0) > 0).nonzero()
    if len(lit):
        extent = int((lit.max(0).values - lit.min(0).values + 1).max())
        # The Fraunhofer distance 2 D^2 / lambda takes the full width D of the lit aperture.
        width = extent * pitch
        if 0 < distance < 2 * width**2 / wavelength:
            warnings.warn(
                f"distance={distance:g} m is below the Fraunhofer distance 2 D^2 / lambda = "
                f"{2 * width**2 / wavelength:g} m of this field (D = {width:g} m, its lit "
                "width); use fresnel_single_fft or propagate",
                OpticalSamplingWarning,
                stacklevel=2,
            )
    return _one_fft(field, distance, wavelength, pitch, chirp=False)


def lens_phase(
    shape: Sequence[int],
    focal_length: float,
    *,
    wavelength: float,
    pitch: float,
    dtype: torch.dtype = torch.complex64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Thin-lens transmission ``exp(-i pi (x^2 + y^2) / (lambda f))`` (Goodman eq. 5-10).

    Args:
        shape: grid ``(H, W)``, centred at ``(H // 2, W // 2)``.
        focal_length: focal length [m] (negative: diverging lens).
        wavelength: wavelength [m].
        pitch: grid pitch [m].
        dtype: complex dtype.
        device: device.
    """
    wavelength, pitch = _check_optics(wavelength, pitch)
    f = check_distance(focal_length)
    dev = torch.device(device)
    y = _centered_coords(int(shape[0]), pitch, dev)[:, None]
    x = _centered_coords(int(shape[1]), pitch, dev)[None, :]
    phase = -math.pi * (x**2 + y**2) / (wavelength * f)
    return torch.polar(torch.ones_like(phase), phase).to(dtype)


def four_f(field: torch.Tensor, fourier_mask: torch.Tensor) -> torch.Tensor:
    """A 4f system (two lenses of equal focal length) with a mask in the Fourier plane.

    The Fourier plane holds the centred spectrum (pixel ``(M // 2, M // 2)`` is the optical
    axis); frequency ``f`` sits at ``x = lambda f_lens f``. The output is the filtered image,
    inverted (``x -> -x``) as a 4f relay images with magnification -1 (Goodman sec. 8.3).

    Args:
        field: complex field ``[..., H, W]``.
        fourier_mask: complex or real transmission ``[H, W]`` of the Fourier-plane mask.
    """
    check_field(field)
    if fourier_mask.shape[-2:] != field.shape[-2:]:
        raise ValueError(
            f"fourier_mask shape {tuple(fourier_mask.shape)} must match the field's last two "
            f"dimensions {tuple(field.shape[-2:])}"
        )
    spectrum = torch.fft.fftshift(torch.fft.fft2(field), dim=(-2, -1)) * fourier_mask
    filtered = torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1)))
    # Invert about the optical axis at index M // 2: n -> 2 (M // 2) - n, i.e. a flip followed
    # by a one-pixel roll for even M and a plain flip for odd M.
    shifts = (1 - field.shape[-2] % 2, 1 - field.shape[-1] % 2)
    return torch.roll(torch.flip(filtered, dims=(-2, -1)), shifts=shifts, dims=(-2, -1))


def quantize_phase(phase: torch.Tensor, levels: int) -> torch.Tensor:
    """Wrap ``phase`` [rad] into ``[0, 2 pi)`` and round to ``levels`` equal steps (STE).

    Args:
        phase: phase [rad].
        levels: number of levels (>= 2), e.g. 256 for an 8-bit SLM.
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels={levels!r} must be an int >= 2 (0 means continuous elsewhere)")
    wrapped = torch.remainder(phase, 2 * math.pi)
    return quantize_step(wrapped, 2 * math.pi / levels)


@functools.lru_cache(maxsize=64)
def _layout(size: int, n_regions: int, fill: float) -> torch.Tensor:
    rows = max(1, round(math.sqrt(n_regions)))
    base, extra = divmod(n_regions, rows)
    # Extra regions go to the middle rows: 10 regions give the 3-4-3 layout of Lin 2018.
    start = (rows - extra) // 2
    counts = [base + (1 if start <= r < start + extra else 0) for r in range(rows)]
    cell = size // max(rows, max(counts))
    side = max(1, round(cell * fill))
    if cell < 1:
        raise ValueError(
            f"a {size}x{size} detector plane cannot hold {n_regions} regions; use a larger "
            "geometry.size or fewer outputs"
        )
    masks = torch.zeros(n_regions, size, size, dtype=torch.bool)
    top = (size - rows * cell) // 2
    k = 0
    for r, count in enumerate(counts):
        left = (size - count * cell) // 2
        y0 = top + r * cell + (cell - side) // 2
        for c in range(count):
            x0 = left + c * cell + (cell - side) // 2
            masks[k, y0 : y0 + side, x0 : x0 + side] = True
            k += 1
    return masks


def detector_layout(size: int, n_regions: int, *, fill: float = 0.5) -> torch.Tensor:
    """Square detector regions on a ``size x size`` plane, in centred rows.

    ``round(sqrt(n))`` rows; the remainder goes to the middle rows, so 10 regions form the
    3-4-3 layout of Lin et al. (2018). Each region is ``fill`` of its cell's side.

    Returns:
        Boolean masks ``[n_regions, size, size]`` (disjoint), row-major order.
    """
    if isinstance(n_regions, bool) or not isinstance(n_regions, int) or n_regions < 1:
        raise ValueError(f"n_regions={n_regions!r} must be an int >= 1")
    if not 0 < fill <= 1:
        raise ValueError(f"fill={fill!r} must be in (0, 1]")
    return _layout(int(size), n_regions, float(fill)).clone()


def region_powers(intensity: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Integrate ``intensity [..., H, W]`` over region ``masks [R, H, W]`` -> ``[..., R]``."""
    weights = masks.to(intensity.dtype).flatten(1)
    return intensity.flatten(-2) @ weights.T


def detect(
    signal: torch.Tensor,
    *,
    noise: bool,
    read_noise: float | torch.Tensor,
    bits: int | None,
    full_scale: float | torch.Tensor,
    shot_noise: bool = True,
    lsb: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Detector readout of mean signals ``signal`` (photoelectrons [e-], or watts for a
    power detector with ``shot_noise=False``).

    Shot noise is Poisson; its Gaussian approximation ``N(n, n)`` (reparametrised, so
    gradients flow) is exact to O(1/sqrt(n)); read (or NEP) noise is ``N(0,
    read_noise^2)``; the ADC clips to ``[0, full_scale]`` and rounds to steps of ``lsb``
    (default ``full_scale / (2**bits - 1)``), straight-through. ``read_noise`` and
    ``full_scale`` broadcast against ``signal`` (per-region values).

    Returns:
        Detected signal, same shape and unit.
    """
    out = signal
    if noise:
        eps = torch.randn(
            signal.shape, generator=generator, device=signal.device, dtype=signal.dtype
        )
        var = (signal.clamp_min(0) if shot_noise else torch.zeros_like(signal)) + read_noise**2
        # sqrt has an infinite slope at 0: a dark region without read noise (var == 0) gets a
        # zero std with a zero gradient instead of inf * 0 = NaN (issue 15, item 4).
        tiny = torch.finfo(var.dtype).tiny
        std = torch.where(var > 0, var.clamp_min(tiny).sqrt(), torch.zeros_like(var))
        out = out + std * eps
    if bits is not None:
        full = torch.as_tensor(full_scale, dtype=out.dtype, device=out.device)
        clipped = torch.minimum(out.clamp_min(0.0), full)
        step = float(full_scale) / (2**bits - 1) if lsb is None else lsb
        out = quantize_step(clipped, step)
    return out
