"""physnn.quantum: variational quantum circuits as torch layers.

Exact fused statevector simulation, density-matrix and trajectory noise, shots, qiskit
export (``physnn.quantum.qiskit``, the only module importing qiskit) and a hardware cost
model. Qubit order is qiskit's little-endian one.
"""

from . import functional, presets
from .circuit import CircuitSpec, build_circuit
from .config import (
    CircuitConfig,
    HardwareConfig,
    MeasurementConfig,
    NoiseConfig,
    QuantumConfig,
    SimulationConfig,
)
from .cost import CircuitResources, circuit_resources
from .layers import VQC, QuantumCircuitLayer, QuantumLinear

__all__ = [
    "VQC",
    "CircuitConfig",
    "CircuitResources",
    "CircuitSpec",
    "HardwareConfig",
    "MeasurementConfig",
    "NoiseConfig",
    "QuantumCircuitLayer",
    "QuantumConfig",
    "QuantumLinear",
    "SimulationConfig",
    "build_circuit",
    "circuit_resources",
    "functional",
    "presets",
]
