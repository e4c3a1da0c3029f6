"""physnn.quantum: variational quantum circuits as torch layers.

Exact fused statevector simulation (``physnn.quantum.sim``, facade
``physnn.quantum.functional``), density-matrix and trajectory noise, shots, readout
mitigation, observables, qiskit export and transpilation to the preset's device
(``physnn.quantum.qiskit``), noise on the routed circuit with per-qubit and per-edge
calibration (``physnn.quantum.transpiled``, ``physnn.quantum.calibration``), layers from
users' qiskit circuits (``physnn.quantum.imported``; qiskit is imported lazily in all three),
a hardware cost model and the ablations of ``physnn.quantum.ablation``. Qubit order is
qiskit's little-endian one.
"""

from . import functional, presets
from .calibration import DeviceCalibration
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
from .imported import ImportedCircuitLayer, from_qiskit
from .layers import VQC, QuantumCircuitLayer, QuantumLinear

__all__ = [
    "VQC",
    "CircuitConfig",
    "CircuitResources",
    "CircuitSpec",
    "DeviceCalibration",
    "HardwareConfig",
    "ImportedCircuitLayer",
    "MeasurementConfig",
    "NoiseConfig",
    "QuantumCircuitLayer",
    "QuantumConfig",
    "QuantumLinear",
    "SimulationConfig",
    "build_circuit",
    "circuit_resources",
    "from_qiskit",
    "functional",
    "presets",
]
