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
    # Adam moves a phase by about lr [rad] per step: in the 52 steps of a quick study 0.01
    # travels half a radian of a 2 pi period. Measured after 52 steps on 400 digits: one
    # OpticalLinear(64, 10) reaches 0.53 at lr 0.01 and 0.81 at 0.05; an optical 32 -> 10
    # output layer trained on the ideal chip 0.81 (0.01), 0.87 (0.05) and 0.43 (0.2).
    default_lr=5e-2,
    stress=StressTest(
        name="misalignment",
        unit="m",
        # Fractions of the 400 um neuron pitch of the default preset: 0 to 1 pitch.
        values=(0.0, 50e-6, 100e-6, 200e-6, 400e-6),
        apply=misalign,
    ),
)
