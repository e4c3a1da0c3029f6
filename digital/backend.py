"""The ``digital`` backend object registered with physnn (loaded lazily by the registry)."""

from __future__ import annotations

from torch import nn

from ..common.backend import Backend, StressTest
from .config import DigitalConfig
from .cost import digital_cost
from .layers import DigitalConv1d, DigitalConv2d, DigitalLinear, with_precision
from .presets import registry

__all__ = ["BACKEND"]

BACKEND = Backend(
    name="digital",
    config_type=DigitalConfig,
    layers={nn.Linear: DigitalLinear, nn.Conv1d: DigitalConv1d, nn.Conv2d: DigitalConv2d},
    presets=registry,
    notes="reference: torch arithmetic, optionally integer-quantised",
    default_preset="int8",
    stress=StressTest(name="precision", unit="bit", values=(8, 6, 4, 3, 2), apply=with_precision),
    fine_tune_fraction=1 / 3,
    cost_model=digital_cost,
)
