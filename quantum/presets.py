"""Named, cited quantum configs: ``get(name)``, ``names()``, ``citation(name)``.

Device presets use the medians of IBM devices recorded in qiskit-ibm-runtime's fake
backends (ANCHORS.md). A reported gate error is the average infidelity of the whole gate,
relaxation during it included, so the depolarising parameter carries only what T1/T2
relaxation over the gate's duration does not explain
(:func:`~physnn.quantum.noise.depolarizing_for_error`): the simulated gate's total
infidelity equals the published one. Readout errors are taken as symmetric.

The presets' cost counts the circuit routed to the device in its native basis
(``HardwareConfig.cost_layout="transpiled"``), while their noise model simulates the logical
circuit (``HardwareConfig.noise_layout="all_to_all"``: medians on every qubit, no routing,
idle qubits do not relax). The noise of the device as it runs the
circuit, routed onto the heavy-hex coupling map in the native basis with idle relaxation
(:mod:`~physnn.quantum.transpiled`), is one change away:
``physnn.reconfigure(model, {"hardware.noise_layout": "transpiled"})``. It stays opt-in
because it is slower to train above 4 qubits: a training step of the default
``QuantumLinear(64, 10)`` at batch 32 took 6.7-10.8x the all-to-all step at 6 and 8 qubits
on heron and eagle (trajectories drawn channel by channel through 2-3x more physical gates
plus idle channels; min of 3 steps, same process, loaded 2-core machine), while at 4 qubits
it took 0.5x (the fused density matrix). ``physnn compare --quick --backends quantum``
took 441 s with ``heron`` transpiled against 64 s as shipped (run back to back), so the
device presets keep ``all_to_all``.
"""

from __future__ import annotations

from ..common.backend import PresetRegistry
from ..common.config import BackendConfig
from .config import (
    HardwareConfig,
    MeasurementConfig,
    NoiseConfig,
    QuantumConfig,
    TwoQubitGateName,
)
from .noise import depolarizing_for_error

__all__ = ["citation", "get", "names", "registry"]

registry = PresetRegistry("quantum")


def _device(
    *,
    sx_time: float,
    sx_error: float,
    two_time: float,
    two_error: float,
    readout_time: float,
    readout_error: float,
    t1: float,
    t2: float,
    shots: int,
    two_qubit_gate: TwoQubitGateName = "cz",
) -> QuantumConfig:
    return QuantumConfig(
        measurement=MeasurementConfig(shots=shots, p01=readout_error, p10=readout_error),
        noise=NoiseConfig(
            depolarizing_1q=depolarizing_for_error(sx_error, 1, t1=t1, t2=t2, time=sx_time),
            depolarizing_2q=depolarizing_for_error(two_error, 2, t1=t1, t2=t2, time=two_time),
            t1=t1,
            t2=t2,
        ),
        hardware=HardwareConfig(
            single_qubit_gate_time=sx_time,
            two_qubit_gate_time=two_time,
            readout_time=readout_time,
            two_qubit_gate=two_qubit_gate,
        ),
    )


registry.register(
    "ideal",
    QuantumConfig(),
    "exact statevector expectations, no noise; timing and power of IBM Heron (FakeFez "
    "medians, qiskit-ibm-runtime) for the cost model",
)
registry.register(
    "shots",
    QuantumConfig(measurement=MeasurementConfig(shots=1024)),
    "noiseless gates with 1024 shots per circuit (qiskit's Sampler default is 1024)",
)
registry.register(
    "heron",
    _device(
        sx_time=24e-9,
        sx_error=2.3e-4,
        two_time=84e-9,
        two_error=3.9e-3,
        readout_time=1.56e-6,
        readout_error=7.6e-3,
        t1=145e-6,
        t2=88e-6,
        shots=1024,
    ),
    "IBM Heron r2 ibm_fez medians (qiskit-ibm-runtime FakeFez): CZ 84 ns / 3.9e-3, "
    "SX 24 ns / 2.3e-4, readout 1.56 us / 7.6e-3, T1 145 us, T2 88 us; 1024 shots",
)
registry.register(
    "torino",
    _device(
        sx_time=32e-9,
        sx_error=2.7e-4,
        two_time=68e-9,
        two_error=4.2e-3,
        readout_time=1.56e-6,
        readout_error=2.3e-2,
        t1=185e-6,
        t2=141e-6,
        shots=1024,
    ),
    "IBM Heron r1 ibm_torino medians (qiskit-ibm-runtime FakeTorino): CZ 68 ns / 4.2e-3, "
    "SX 32 ns / 2.7e-4, readout 1.56 us / 2.3e-2, T1 185 us, T2 141 us; 1024 shots",
)
registry.register(
    "eagle",
    _device(
        sx_time=60e-9,
        sx_error=2.4e-4,
        two_time=660e-9,
        two_error=7.7e-3,
        readout_time=1.30e-6,
        readout_error=2.0e-2,
        t1=232e-6,
        t2=150e-6,
        shots=1024,
        two_qubit_gate="ecr",
    ),
    "IBM Eagle r3 ibm_brisbane medians (qiskit-ibm-runtime FakeBrisbane): ECR 660 ns / "
    "7.7e-3, SX 60 ns / 2.4e-4, readout 1.30 us / 2.0e-2, T1 232 us, T2 150 us; 1024 shots",
)


def get(name: str, **changes: object) -> QuantumConfig:
    """Preset ``name`` (optionally with top-level fields replaced, e.g. ``seed=1``)."""
    config: BackendConfig = registry.get(name, **changes)
    assert isinstance(config, QuantumConfig)
    return config


def names() -> list[str]:
    """Preset names in registration order."""
    return registry.names()


def citation(name: str) -> str:
    """Where preset ``name``'s numbers come from."""
    return registry.citation(name)
