"""Hardware cost model of quantum layers: gate counts, schedule duration, shots, energy.

Per circuit execution the duration is the as-soon-as-possible schedule of its gates with the
``HardwareConfig`` gate times; per forward pass a layer runs one circuit per sample, each
``shots`` times, and every shot costs circuit duration + readout + repetition delay (IBM's
default 250 us delay dominates: about 256 us per shot). Energy is that latency times the
system's wall power, an explicit, changeable assumption (``HardwareConfig.system_power``),
plus classical pre/post-processing MACs. Every :class:`~physnn.common.cost.Cost` a quantum
layer returns lists these assumptions.
"""

from __future__ import annotations

import math

from ..common.cost import Cost
from .circuit import AmplitudeEncoding, CircuitSpec, expand, preparation_gates
from .config import QuantumConfig

__all__ = [
    "CircuitResources",
    "circuit_resources",
    "execution_cost",
    "gradient_shots",
    "input_shift_count",
    "training_circuits",
    "weight_shift_count",
]


class CircuitResources(dict[str, float]):
    """Per-circuit resources: qubits, gate counts, depth and ASAP duration [s]."""


def circuit_resources(spec: CircuitSpec, config: QuantumConfig) -> CircuitResources:
    """Count gates and schedule ``spec`` as soon as possible with the config's gate times.

    With ``HardwareConfig.cost_layout="transpiled"`` (the default) these are the counts of
    the circuit routed to the device (:mod:`physnn.quantum.transpiled`: native basis, SWAPs
    included, virtual ``rz`` not counted, ALAP duration with the calibrated gate times).
    With ``cost_layout="all_to_all"`` the logical circuit is counted:
    virtual RZ/P/SDG gates take no time when ``HardwareConfig.virtual_rz``; amplitude
    encoding on ``k`` qubits is its state preparation, ``2^k - 1`` RY and ``2^k - 2`` CNOT
    gates (:func:`~physnn.quantum.circuit.preparation_gates`), the gates the noisy simulation
    applies.
    """
    hw = config.hardware
    if hw.cost_layout == "transpiled":
        from .transpiled import transpiled_program

        return CircuitResources(transpiled_program(spec, config).resources)
    virtual = {"rz", "p", "sdg"} if hw.virtual_rz else set()
    busy = [0.0] * spec.n_qubits
    layer = [0] * spec.n_qubits
    one = two = 0
    for op in spec.ops:
        gates = preparation_gates(op) if isinstance(op, AmplitudeEncoding) else expand(op)
        for gate in gates:
            qs = list(gate.qubits)
            if len(qs) == 2:
                two += 1
                duration = hw.two_qubit_gate_time
            else:
                one += gate.name not in virtual
                duration = 0.0 if gate.name in virtual else hw.single_qubit_gate_time
            start = max(busy[q] for q in qs)
            depth = max(layer[q] for q in qs) + 1
            for q in qs:
                busy[q] = start + duration
                layer[q] = depth
    return CircuitResources(
        qubits=spec.n_qubits,
        single_qubit_gates=one,
        two_qubit_gates=two,
        depth=max(layer),
        duration=max(busy),
    )


def execution_cost(
    config: QuantumConfig,
    resources: CircuitResources,
    *,
    circuits: int,
    macs: int,
    classical_macs: int,
    shots: int | None = None,
    notes: tuple[str, ...] = (),
) -> Cost:
    """Cost of running ``circuits`` circuit executions of ``resources`` on the QPU.

    Every execution takes ``shots`` shots (default: the config's, or
    ``HardwareConfig.shots_for_exact`` when the simulation is exact); every shot lasts
    circuit duration + readout + repetition delay. Energy = latency x system power +
    ``classical_macs`` x classical energy per MAC.
    """
    hw = config.hardware
    exact = config.measurement.shots is None
    if shots is None:
        shots = hw.shots_for_exact if exact else config.measurement.shots
    assert shots is not None
    per_shot = resources["duration"] + hw.readout_time + hw.repetition_delay
    latency = circuits * shots * per_shot
    energy = latency * hw.system_power + classical_macs * hw.classical_energy_per_mac
    shots_note = " (assumed: the simulation is exact)" if exact else ""
    return Cost(
        energy=energy,
        latency=latency,
        macs=macs,
        resources={
            "circuit_executions": circuits,
            "shots": circuits * shots,
            "two_qubit_gates": circuits * resources["two_qubit_gates"],
            "single_qubit_gates": circuits * resources["single_qubit_gates"],
            "classical_macs": classical_macs,
        },
        assumptions=(
            f"quantum: {shots} shots per circuit{shots_note}",
            f"quantum: each shot = circuit {resources['duration']:.3g} s + readout "
            f"{hw.readout_time:.3g} s + repetition delay {hw.repetition_delay:.3g} s",
            f"quantum: energy = latency x system power {hw.system_power:g} W + classical "
            f"MACs x {hw.classical_energy_per_mac:.3g} J",
            *notes,
        ),
    )


def input_shift_count(spec: CircuitSpec) -> int:
    """Shifted circuit pairs for the gradient with respect to the circuit inputs.

    Every gate whose angle depends on an input needs its own pair of shifted circuits (a
    re-uploaded feature once per upload): the pair gives the derivative with respect to the
    gate's angle, and the chain rule, computed classically, the derivatives with respect to
    every input the angle depends on (a ZZ-feature-map phase ``2 (pi - x_i)(pi - x_j)`` is
    one pair for both ``x_i`` and ``x_j``). These are the circuits
    ``SimulationConfig.gradient="parameter_shift"`` runs
    (:func:`~physnn.quantum.sim.gradients.gate_level_inputs`).

    Raises:
        ValueError: with amplitude encoding, whose state preparation has no
            parameter-shift rule for its inputs.
    """
    count = 0
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            raise ValueError(
                "amplitude encoding has no parameter-shift rule for its inputs, so hardware "
                "cannot give the gradient a classical pre-layer or a stacked quantum layer "
                "needs; use an angle encoder (CircuitConfig.overflow='projection')"
            )
        for gate in expand(op):
            if gate.source == "feature" and gate.index == spec.constant_feature:
                continue
            count += gate.source in ("feature", "pair")
    return count


def weight_shift_count(spec: CircuitSpec) -> int:
    """Shifted circuit pairs for the gradient with respect to the weights: one per gate whose
    angle is ``scale * w`` (a weight shared by ``k`` gates, as in imported circuits and
    decomposed controlled rotations, needs ``k`` pairs by the product rule; the two-term
    rule of ``exp(-i scale w P / 2)`` shifts ``w`` by ``pi / (2 scale)``)."""
    return sum(1 for op in spec.ops for gate in expand(op) if gate.source == "weight")


def training_circuits(n_weights: int, input_shifts: int) -> int:
    """Circuits per sample of one parameter-shift step: the forward, two shifted circuits
    per weight-dependent gate ``n_weights`` (Mitarai et al., PRA 98, 032309 (2018)) and two
    per input-dependent gate."""
    return 1 + 2 * n_weights + 2 * input_shifts


def gradient_shots(gradient: float, snr: float = 1.0) -> int:
    """Shots per shifted circuit for a parameter-shift gradient ``gradient`` of a Pauli
    expectation to reach signal-to-noise ``snr``.

    The estimate ``(f+ - f-) / 2`` of ``+-1`` outcomes has variance at most
    ``2 / (4 S)``, so ``S >= snr^2 / (2 gradient^2)``.
    """
    if not (math.isfinite(gradient) and gradient != 0):
        raise ValueError(f"gradient={gradient!r} must be a finite non-zero magnitude")
    if not (math.isfinite(snr) and snr > 0):
        raise ValueError(f"snr={snr!r} must be > 0")
    return max(1, math.ceil(snr**2 / (2 * gradient**2)))
