"""Physics of a diffractive stack: layer displacements, gap transfers, the field through the
stack and the detector readout.

The layers (:class:`~physnn.optical.layers.DiffractiveLayer`) hold masks and chip state;
this module propagates a field through a sequence of them on the simulation grid
(``geometry.samples`` samples per neuron, see :class:`~physnn.optical.config.
GeometryConfig`) and reads the detector plane out. It depends on the layers only through
the :class:`StackLayer` protocol.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from ..common.rng import NoiseStreams, is_ideal
from . import functional as OF
from .config import GeometryConfig, OpticalConfig

__all__ = [
    "StackLayer",
    "check_geometry",
    "displacements",
    "gap_transfers",
    "propagate_stack",
    "read_out",
    "simulation_grid",
]


class StackLayer(Protocol):
    """What the stack needs of a layer: its config, the gap after it, its displacement and
    its mask on the simulation grid."""

    config: OpticalConfig
    distance: float
    lateral_shift: torch.Tensor
    axial_shift: torch.Tensor
    streams: NoiseStreams
    training: bool

    def modulate(self, field: torch.Tensor, wavelength: float | None = None) -> torch.Tensor:
        """Multiply ``field`` (simulation grid) by the mask at ``wavelength`` [m]."""
        ...


def simulation_grid(geometry: GeometryConfig, size: int) -> tuple[int, tuple[int, int]]:
    """``(samples per side, padded FFT grid)`` of a plane of ``size`` neurons."""
    n = size * geometry.samples
    return n, OF.padded_shape((n, n), geometry.grid_padding())


@functools.lru_cache(maxsize=256)
def _geometry_problems(
    geometry: GeometryConfig, size: int, gaps: tuple[float, ...]
) -> tuple[str, ...]:
    n, grid = simulation_grid(geometry, size)
    problems: list[str] = []
    for gap in gaps:
        for lam in geometry.all_wavelengths:
            method: str = geometry.method
            if method == "auto":
                method = OF.choose_method(grid, gap, lam, geometry.simulation_pitch)
            for problem in OF.sampling_problems(
                grid,
                gap,
                lam,
                geometry.simulation_pitch,
                method,
                size=(n, n),
                boundary=geometry.boundary,
            ):
                if problem not in problems:
                    problems.append(problem)
    return tuple(problems)


def check_geometry(geometry: GeometryConfig, size: int, gaps: Sequence[float]) -> None:
    """Warn (:class:`~physnn.optical.functional.OpticalSamplingWarning`) when a gap of a
    plane filling ``size`` neurons is out of its sampling regime (cached per geometry;
    Python's warning filters keep repeats quiet)."""
    for problem in _geometry_problems(geometry, size, tuple(float(g) for g in gaps)):
        warnings.warn(problem, OF.OpticalSamplingWarning, stacklevel=3)


def displacements(
    layers: Sequence[StackLayer], training: bool
) -> tuple[list[torch.Tensor], list[float]] | None:
    """Per-layer lateral [m] and axial [m] displacements in force, or None when aligned.

    The static displacement of each layer, plus in training a fresh vaccination draw
    (Mengu et al., Nanophotonics 9, 4207, 2020): Gaussian with ``training_*_std`` and
    uniform in ``[-training_*_max, training_*_max]`` (the distribution of that paper).
    """
    if is_ideal():
        return None
    mis = [layer.config.misalignment for layer in layers]
    static = any(m.lateral_std > 0 or m.axial_std > 0 for m in mis)
    vaccine = training and any(m.vaccinates for m in mis)
    if not (static or vaccine):
        return None
    lateral, axial = [], []
    for layer, m in zip(layers, mis, strict=True):
        d = layer.lateral_shift
        dz = float(layer.axial_shift)
        if vaccine:
            g = layer.streams.dynamic("vaccination", d.device)
            gauss = torch.randn(3, generator=g, device=d.device, dtype=d.dtype)
            flat = 2 * torch.rand(3, generator=g, device=d.device, dtype=d.dtype) - 1
            d = d + m.training_lateral_std * gauss[:2] + m.training_lateral_max * flat[:2]
            dz += m.training_axial_std * float(gauss[2]) + m.training_axial_max * float(flat[2])
        lateral.append(d)
        axial.append(dz)
    return lateral, axial


def gap_transfers(
    layers: Sequence[StackLayer],
    first_distance: float,
    grid: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
    displaced: tuple[list[torch.Tensor], list[float]] | None,
    wavelength: float,
) -> list[torch.Tensor]:
    """Transfer functions of the ``len(layers) + 1`` gaps at ``wavelength``.

    Gap 0 spans ``first_distance`` (input plane to the first layer), gap ``k + 1`` the
    ``distance`` of layer ``k``. A layer displaced by ``d_k`` sees the field in its own
    coordinates; the propagation from layer k to k+1 therefore shifts the field by ``d_k -
    d_{k+1}`` (an exact spectral ramp) and covers ``z + dz_{k+1} - dz_k`` (the transfer
    function of that length).
    """
    g = layers[0].config.geometry
    pitch = g.simulation_pitch
    gaps = [first_distance, *(layer.distance for layer in layers)]
    ax = [0.0, *displaced[1], 0.0] if displaced is not None else [0.0] * (len(gaps) + 1)
    transfers = []
    for index, gap in enumerate(gaps):
        z = gap + ax[index + 1] - ax[index]
        method: str = g.method
        if method == "auto":
            method = OF.choose_method(grid, gap, wavelength, pitch)
        if z == gap:
            h = OF.transfer_function(
                grid,
                z,
                wavelength=wavelength,
                pitch=pitch,
                method=method,
                boundary=g.boundary,
                dtype=dtype,
                device=device,
            )
        else:
            # A displaced gap changes every draw: build it uncached, with the band limit of
            # its own length (as a gap of that length would be).
            h = OF.build_transfer(grid, z, wavelength, pitch, method, g.boundary, device).to(dtype)
        transfers.append(h)
    if displaced is not None:
        lateral = displaced[0]
        zero = torch.zeros_like(lateral[0])
        lat = [zero, *lateral, zero]
        for index in range(len(gaps)):
            ramp = OF.shift_ramp(grid, lat[index] - lat[index + 1], pitch, dtype)
            transfers[index] = transfers[index] * ramp
    return transfers


def propagate_stack(
    layers: Sequence[StackLayer],
    first_gap: Callable[[torch.Tensor], torch.Tensor],
    *,
    first_distance: float,
    samples: int,
    dtype: torch.dtype,
    device: torch.device,
    training: bool,
    record: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Intensity on the detector plane (simulation grid), averaged over the wavelengths.

    Args:
        layers: the diffractive layers in order.
        first_gap: maps the first gap's transfer function to the field on the first layer.
        first_distance: input plane to first layer [m].
        samples: simulation samples per side of the plane.
        dtype: complex dtype of the fields.
        device: their device.
        training: draw vaccination displacements (train mode).
        record: if given, receives the field arriving at each layer and at the detector
            plane at the design wavelength (``len(layers) + 1`` tensors).
    """
    g = layers[0].config.geometry
    size = samples // g.samples
    gaps = [first_distance, *(layer.distance for layer in layers)]
    check_geometry(g, size, gaps)
    grid = OF.padded_shape((samples, samples), g.grid_padding())
    # One displacement draw for every wavelength: they cross the same (mis)placed layers.
    displaced = displacements(layers, training)
    total: torch.Tensor | None = None
    for index, wavelength in enumerate(g.all_wavelengths):
        transfers = gap_transfers(
            layers, first_distance, grid, dtype, device, displaced, wavelength
        )
        field = first_gap(transfers[0])
        for layer, h in zip(layers, transfers[1:], strict=True):
            if record is not None and index == 0:
                record.append(field)
            field = OF.apply_transfer(layer.modulate(field, wavelength), h)
        if record is not None and index == 0:
            record.append(field)
        intensity = field.real.square() + field.imag.square()
        total = intensity if total is None else total + intensity
    assert total is not None
    n = len(g.all_wavelengths)
    return total if n == 1 else total / n


def read_out(
    powers: torch.Tensor,
    full_power: float,
    config: OpticalConfig,
    streams: NoiseStreams,
    pixels: torch.Tensor,
) -> torch.Tensor:
    """Detected region powers (same units as ``powers``) after detector noise and the ADC.

    Args:
        powers: optical power on each region ``[..., R]``, in units where a full-scale input
            carries ``full_power``.
        full_power: power of a full-scale input in those units.
        config: the optical config (detector kind, noise, ADC; exposure time).
        streams: the layer's random streams (``detector`` stream).
        pixels: camera pixels in each region ``[R]`` (one per neuron).

    A ``camera`` receives ``detector.photons(R)`` photons for a full-scale input and reads
    each region as its pixels: read noise ``sqrt(pixels) * read_noise``, dark electrons
    (subtracted as a dark frame, their shot noise stays) and a per-pixel ADC whose codes
    sum over the region (the rounding is applied to the sum with the pixel's step). A
    ``power`` detector receives ``detector.source_power(R)`` for a full-scale input and
    adds its NEP noise.
    """
    det = config.detector
    if is_ideal() or (not det.noise and det.bits is None):
        return powers
    n_regions = powers.shape[-1]
    g = streams.dynamic("detector", powers.device)
    npix = pixels.to(powers.dtype)
    if det.kind == "power":
        watts = det.source_power(n_regions) / full_power
        detected = OF.detect(
            powers * watts,
            noise=det.noise,
            read_noise=det.noise_power,
            bits=det.bits,
            full_scale=det.full_scale_power,
            shot_noise=False,
            generator=g,
        )
        return detected / watts
    electrons = det.quantum_efficiency * det.photons(n_regions) / full_power
    dark = det.dark_current * config.energy.exposure_time * npix
    counts = OF.detect(
        powers * electrons + dark,
        noise=det.noise,
        read_noise=det.read_noise * npix.sqrt(),
        bits=det.bits,
        full_scale=det.full_scale * npix,
        lsb=None if det.bits is None else det.full_scale / (2**det.bits - 1),
        generator=g,
    )
    return (counts - dark) / electrons
