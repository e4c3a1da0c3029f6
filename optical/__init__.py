"""physnn.optical: diffractive optical neural networks with real propagation physics.

Free-space propagation (band-limited angular spectrum, Rayleigh-Sommerfeld, Fresnel,
Fraunhofer) in :mod:`physnn.optical.functional`; trainable diffractive layers, the D2NN
classifier and the ``nn.Linear`` drop-in :class:`OpticalLinear`; fabrication, misalignment
and detector nonidealities; an energy/latency/area model. Never imports qiskit.
"""

from . import functional, presets, stack, tools
from .config import (
    DetectorConfig,
    EnergyConfig,
    FabricationConfig,
    GeometryConfig,
    MisalignmentConfig,
    ModulationConfig,
    OpticalConfig,
)
from .cost import optical_cost
from .functional import OpticalSamplingWarning, propagate
from .layers import (
    ChipAccuracy,
    DiffractiveLayer,
    DiffractiveNetwork,
    OpticalLinear,
    fresh_chips,
    realistic_accuracy,
    set_misalignment,
)

__all__ = [
    "ChipAccuracy",
    "DetectorConfig",
    "DiffractiveLayer",
    "DiffractiveNetwork",
    "EnergyConfig",
    "FabricationConfig",
    "GeometryConfig",
    "MisalignmentConfig",
    "ModulationConfig",
    "OpticalConfig",
    "OpticalLinear",
    "OpticalSamplingWarning",
    "fresh_chips",
    "functional",
    "optical_cost",
    "presets",
    "propagate",
    "realistic_accuracy",
    "set_misalignment",
    "stack",
    "tools",
]
