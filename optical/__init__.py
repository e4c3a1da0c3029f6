"""physnn.optical: diffractive optical neural networks with real propagation physics.

Free-space propagation (band-limited angular spectrum, Rayleigh-Sommerfeld, Fresnel,
Fraunhofer) in :mod:`physnn.optical.functional`; trainable diffractive layers, the D2NN
classifier and the ``nn.Linear`` drop-in :class:`OpticalLinear`; fabrication, misalignment
and detector nonidealities; an energy/latency/area model. Never imports qiskit.
"""

from . import functional, presets
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
from .layers import DiffractiveLayer, DiffractiveNetwork, OpticalLinear, set_misalignment

__all__ = [
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
    "functional",
    "optical_cost",
    "presets",
    "propagate",
    "set_misalignment",
]
