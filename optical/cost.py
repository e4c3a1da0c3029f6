"""Analytic energy, latency and area of diffractive optical processors.

Per sample and per frame (every coefficient lives in :class:`~physnn.optical.config.
EnergyConfig` or :class:`~physnn.optical.config.DetectorConfig`):

- source: for a ``camera``, the photon budget ``detector.photons(n_regions)`` (by default
  shot-noise limited for the ADC bit depth) times the photon energy ``h c / lambda``; for a
  THz ``power`` detector, the source power ``detector.source_power(n_regions)`` (NEP
  limited: 1e4-1e6 times more) during the exposure; divided by the wall-plug efficiency;
- input modulator: ``modulator_power`` during the frame, whatever the number of pixels
  used (a DMD, an SLM or a THz modulator draws its power regardless);
- masks: ``mask_power`` of each reconfigurable layer during the frame (0 for printed ones);
- detector: ``readout_energy`` per camera pixel read (a region is its pixels) or per
  ``power`` detector;
- digital post-processing: ``digital_energy_per_op`` per operation.

``Cost.macs`` counts the equivalent digital MACs of the same function (what a digital layer
computing it would need), so that TOPS/W compares across paradigms;
``resources["connections"]`` keeps the dense neuron-to-neuron count of Lin et al. 2018
separately. Latency per frame is ``max(1 / modulator_frame_rate, exposure_time)`` plus the
time of flight through the stack; frames run one after another. Area is the layer aperture
``(size * pitch)^2``. Each term is reported separately in ``Cost.resources`` (keys ending in
``_energy`` are joules), as the published system figures use different conventions (ACCEL,
Nature 2023; Taichi, Science 2024).
"""

from __future__ import annotations

from ..common.cost import Cost
from .config import OpticalConfig

__all__ = ["PLANCK", "SPEED_OF_LIGHT", "optical_cost", "photon_energy"]

PLANCK = 6.62607015e-34
"""Planck constant [J s] (exact, SI 2019)."""

SPEED_OF_LIGHT = 299_792_458.0
"""Speed of light in vacuum [m/s] (exact)."""


def photon_energy(wavelength: float) -> float:
    """Energy of one photon ``h c / lambda`` [J] at ``wavelength`` [m]."""
    return PLANCK * SPEED_OF_LIGHT / wavelength


def optical_cost(
    config: OpticalConfig,
    *,
    samples: int,
    n_input_pixels: int,
    n_regions: int,
    n_pixels: int,
    n_layers: int,
    side: int,
    macs: int,
    connections: int,
    frames: int,
    digital_ops: int,
) -> Cost:
    """Cost of ``samples`` inferences, each taking ``frames`` optical frames.

    Args:
        config: the optical config holding every coefficient.
        samples: number of inferences (the batch).
        n_input_pixels: modulated input pixels per frame (reported; the modulator's power
            does not depend on it).
        n_regions: detector regions read per frame.
        n_pixels: camera pixels in those regions (read one by one).
        n_layers: diffractive layers in the stack.
        side: layer side [neurons].
        macs: equivalent digital MACs of all samples.
        connections: dense optical connections of all samples (Lin et al. 2018 count).
        frames: optical frames per inference.
        digital_ops: digital post-processing operations per inference.
    """
    e, g, det = config.energy, config.geometry, config.detector
    frame_time = max(1.0 / e.modulator_frame_rate, e.exposure_time)
    flight = sum(g.gaps[: n_layers + 1]) / SPEED_OF_LIGHT
    active = frames > 0 and n_regions > 0
    if not active:
        photons, source = 0.0, 0.0
    elif det.kind == "power":
        # gated to the detector's integration time (its NEP bandwidth is set by it)
        source = det.source_power(n_regions) * e.exposure_time
        photons = source / photon_energy(g.wavelength)
    else:
        photons = det.photons(n_regions)
        source = photons * photon_energy(g.wavelength)
    reads = n_regions if det.kind == "power" else n_pixels
    per_frame = {
        "source_energy": source / e.wall_plug_efficiency,
        "modulator_energy": e.modulator_power * frame_time if frames else 0.0,
        "mask_energy": n_layers * e.mask_power * frame_time,
        "readout_energy": reads * e.readout_energy,
    }
    n_frames = samples * frames
    resources = {key: value * n_frames for key, value in per_frame.items()}
    resources["digital_energy"] = samples * digital_ops * e.digital_energy_per_op
    resources["frames"] = float(n_frames)
    resources["detector_reads"] = float(n_frames * reads)
    resources["input_pixels"] = float(n_frames * n_input_pixels)
    resources["photons"] = photons * n_frames
    resources["connections"] = float(connections)
    resources["analog_area"] = (side * g.pitch) ** 2
    resources["periphery_area"] = 0.0
    energy = sum(v for k, v in resources.items() if k.endswith("_energy"))
    detector = (
        f"power detectors (NEP {det.nep:g} W/sqrt(Hz), {det.bandwidth:g} Hz)"
        if det.kind == "power"
        else f"a camera (QE {det.quantum_efficiency:g}, {det.read_noise:g} e- per pixel)"
    )
    assumptions = (
        (
            f"optical source: {photons:.3g} photons per frame at {g.wavelength:g} m for "
            f"{detector}, wall-plug efficiency {e.wall_plug_efficiency:g}",
            f"frame time {frame_time:.3g} s (modulator {e.modulator_frame_rate:g} Hz, "
            f"exposure {e.exposure_time:g} s)",
            "MACs: the equivalent digital MACs of the same function; connections: Lin "
            "et al. 2018's dense count",
            "area: the diffractive aperture only (source, modulator and detector not counted)",
        )
        if frames
        else ()
    )
    return Cost(
        energy=energy,
        latency=n_frames * (frame_time + flight),
        area=(side * g.pitch) ** 2,
        macs=macs,
        resources=resources,
        assumptions=assumptions,
    )
