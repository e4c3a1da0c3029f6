"""physnn.pim: analog in-memory computing crossbars as torch layers.

Public surface: :class:`PIMConfig` (and its blocks), :class:`PIMLinear`, :class:`PIMConv1d`,
:class:`PIMConv2d`, :class:`PIMLSTM`, :class:`PIMGRU`, :func:`drift` (move a model's chips to
a time after programming), :mod:`presets` and :mod:`functional` (the pure physics).
"""

from __future__ import annotations

from . import functional, presets
from .config import (
    ADCConfig,
    CircuitConfig,
    DACConfig,
    DriftConfig,
    EnergyConfig,
    FaultConfig,
    HWAConfig,
    MappingConfig,
    PIMConfig,
    ProgrammingConfig,
    ReadNoiseConfig,
)
from .cost import crossbar_cost
from .layers import PIMGRU, PIMLSTM, PIMConv1d, PIMConv2d, PIMLinear, drift

__all__ = [
    "PIMGRU",
    "PIMLSTM",
    "ADCConfig",
    "CircuitConfig",
    "DACConfig",
    "DriftConfig",
    "EnergyConfig",
    "FaultConfig",
    "HWAConfig",
    "MappingConfig",
    "PIMConfig",
    "PIMConv1d",
    "PIMConv2d",
    "PIMLinear",
    "ProgrammingConfig",
    "ReadNoiseConfig",
    "crossbar_cost",
    "drift",
    "functional",
    "presets",
]
