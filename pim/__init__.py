"""physnn.pim: analog in-memory computing crossbars as torch layers.

Public surface: :class:`PIMConfig` (and its blocks), :class:`PIMLinear`, :class:`PIMConv1d`,
:class:`PIMConv2d`, :class:`PIMConv3d`, :class:`PIMLSTM`, :class:`PIMGRU`, :func:`drift`
(move a model's chips to a time after programming), :class:`CrossbarTile` (the chip of one
weight matrix), :mod:`presets`, :mod:`periphery` (DAC, bit planes, I-V, read noise, ADC) and
:mod:`functional` (device and circuit physics).
"""

from __future__ import annotations

from . import functional, periphery, presets, tile
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
from .layers import PIMGRU, PIMLSTM, PIMConv1d, PIMConv2d, PIMConv3d, PIMLinear, drift
from .tile import CrossbarTile

__all__ = [
    "PIMGRU",
    "PIMLSTM",
    "ADCConfig",
    "CircuitConfig",
    "CrossbarTile",
    "DACConfig",
    "DriftConfig",
    "EnergyConfig",
    "FaultConfig",
    "HWAConfig",
    "MappingConfig",
    "PIMConfig",
    "PIMConv1d",
    "PIMConv2d",
    "PIMConv3d",
    "PIMLinear",
    "ProgrammingConfig",
    "ReadNoiseConfig",
    "crossbar_cost",
    "drift",
    "functional",
    "periphery",
    "presets",
    "tile",
]
