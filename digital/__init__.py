"""The digital reference backend: plain torch arithmetic with a digital accelerator's costs.

Every comparison has a digital row. See :mod:`physnn.digital.layers` for the layers,
:mod:`physnn.digital.cost` for the cited cost model and :mod:`physnn.digital.presets` for
the named accelerators.
"""

from __future__ import annotations

from . import presets
from .config import DigitalConfig
from .cost import digital_cost
from .layers import DigitalConv1d, DigitalConv2d, DigitalLinear, with_precision

__all__ = [
    "DigitalConfig",
    "DigitalConv1d",
    "DigitalConv2d",
    "DigitalLinear",
    "digital_cost",
    "presets",
    "with_precision",
]
