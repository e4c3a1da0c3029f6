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

from .circuit import AmplitudeEncoding, CircuitSpec, expand
from .config import QuantumConfig

__all__ = ["CircuitResources", "circuit_resources"]


class CircuitResources(dict[str, float]):
    """Per-circuit resources: qubits, gate counts, depth and ASAP duration [s]."""


def circuit_resources(spec: CircuitSpec, config: QuantumConfig) -> CircuitResources:
    """Count gates and schedule ``spec`` as soon as possible with the config's gate times.

    Virtual RZ/P/SDG gates take no time when ``HardwareConfig.virtual_rz``; amplitude
    encoding on ``k`` qubits is costed as ``2^k - 1`` RY and ``2^k - 2`` CNOT gates in series
    (Mottonen et al., 2005).
    """
    hw = config.hardware
    virtual = {"rz", "p", "sdg"} if hw.virtual_rz else set()
    busy = [0.0] * spec.n_qubits
    layer = [0] * spec.n_qubits
    one = two = 0
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            k = op.n_qubits
            n_ry, n_cx = 2**k - 1, max(0, 2**k - 2)
            one, two = one + n_ry, two + n_cx
            qs = list(range(k))
            start = max(busy[q] for q in qs)
            depth = max(layer[q] for q in qs) + n_ry + n_cx
            for q in qs:
                busy[q] = start + n_ry * hw.single_qubit_gate_time + n_cx * hw.two_qubit_gate_time
                layer[q] = depth
            continue
        for gate in expand(op):
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
