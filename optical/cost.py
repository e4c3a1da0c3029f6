"""Analytic energy, latency and area of diffractive optical processors.

Per sample and per frame (every coefficient lives in :class:`~physnn.optical.config.
EnergyConfig` or :class:`~physnn.optical.config.DetectorConfig`):

- source: the photon budget ``detector.photons(n_regions)`` (by default shot-noise limited
  for the ADC bit depth: every region can reach ``full_well = 4**bits`` electrons) times the
  photon energy ``h c / lambda``, divided by the wall-plug efficiency;
- input modulator (DMD/SLM): ``modulator_energy_per_pixel`` per input pixel;
- masks: ``mask_power`` of each reconfigurable layer during the frame (0 for printed ones);
- detector: ``readout_energy`` per region read (ADC included);
- digital post-processing: ``digital_energy_per_op`` per operation.

Latency per frame is ``max(1 / modulator_frame_rate, exposure_time)`` plus the time of
flight through the stack; frames run one after another. Area is the layer aperture
``(size * pitch)^2`` (layers are stacked along the optical axis). Each term is reported
separately in ``Cost.resources`` (keys ending in ``_energy`` are joules), as the published
system figures use different conventions (ACCEL, Nature 2023; Taichi, Science 2024).
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
    n_layers: int,
    side: int,
    macs: int,
    frames: int,
    digital_ops: int,
) -> Cost:
    """Cost of ``samples`` inferences, each taking ``frames`` optical frames.

    Args:
        config: the optical config holding every coefficient.
        samples: number of inferences (the batch).
        n_input_pixels: modulated input pixels per frame.
        n_regions: detector regions read per frame.
        n_layers: diffractive layers in the stack.
        side: layer side [neurons].
        macs: equivalent digital MACs of all samples.
        frames: optical frames per inference.
        digital_ops: digital post-processing operations per inference.
    """
    e, g, det = config.energy, config.geometry, config.detector
    frame_time = max(1.0 / e.modulator_frame_rate, e.exposure_time)
    flight = (n_layers + 1) * g.distance / SPEED_OF_LIGHT
    photons = det.photons(n_regions) if n_regions else 0.0
    per_frame = {
        "source_energy": photons * photon_energy(g.wavelength) / e.wall_plug_efficiency,
        "modulator_energy": n_input_pixels * e.modulator_energy_per_pixel,
        "mask_energy": n_layers * e.mask_power * frame_time,
        "readout_energy": n_regions * e.readout_energy,
    }
    n_frames = samples * frames
    resources = {key: value * n_frames for key, value in per_frame.items()}
    resources["digital_energy"] = samples * digital_ops * e.digital_energy_per_op
    resources["frames"] = float(n_frames)
    resources["detector_reads"] = float(n_frames * n_regions)
    resources["photons"] = photons * n_frames
    energy = sum(v for k, v in resources.items() if k.endswith("_energy"))
    assumptions = (
        (
            f"optical source: {photons:.3g} photons per frame at {g.wavelength:g} m, "
            f"wall-plug efficiency {e.wall_plug_efficiency:g}",
            f"frame time {frame_time:.3g} s (modulator {e.modulator_frame_rate:g} Hz, "
            f"exposure {e.exposure_time:g} s)",
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
