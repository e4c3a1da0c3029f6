"""The optical backend object registered as ``"optical"``."""

from __future__ import annotations

import copy

from torch import nn

from ..common.backend import Backend, StressTest
from .config import OpticalConfig
from .layers import OpticalLinear, set_misalignment
from .presets import registry

__all__ = ["BACKEND", "misalign"]


def misalign(model: nn.Module, lateral_std: float) -> nn.Module:
    """A copy of ``model`` whose optical layers are displaced laterally by ``N(0, std)`` [m],
    drawn as static error from each layer's misalignment stream.

    ``model`` itself is left untouched (the ``StressTest.apply`` contract). Use
    :func:`~physnn.optical.set_misalignment` to misalign a model in place.
    """
    return set_misalignment(copy.deepcopy(model), lateral_std)


BACKEND = Backend(
    name="optical",
    config_type=OpticalConfig,
    layers={nn.Linear: OpticalLinear},
    presets=registry,
    notes=(
        "diffractive masks are trained (or fitted with OpticalLinear.from_torch("
        "fit=True)); nn.Linear becomes a spatially incoherent diffractive processor"
    ),
    default_preset="thz-compact",
    stress=StressTest(
        name="misalignment",
        unit="m",
        # Fractions of the 400 um neuron pitch of the default preset: 0 to 1 pitch.
        values=(0.0, 50e-6, 100e-6, 200e-6, 400e-6),
        apply=misalign,
    ),
)
