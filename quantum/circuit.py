"""Circuit layouts: encoders, ansatzes and readout basis changes as a list of gate records.

A circuit is a tuple of operations (:class:`Gate`, :class:`ZZPhase`,
:class:`AmplitudeEncoding`) that the simulator (:mod:`physnn.quantum.functional`), the cost
model and the qiskit exporter all read, so the three never disagree about what was run.

Angles come from one of four sources: a trainable weight ``weights[index]``, a scaled input
feature ``x[index]`` (``x`` is the layer input times ``CircuitConfig.input_scale``), the
ZZ-feature-map product ``(pi - x[i]) (pi - x[j])``, or no angle for fixed gates. The gate's
``scale`` multiplies the source value.

Qubit ordering follows qiskit (little-endian): qubit 0 is the least significant bit of a
basis-state index.
"""

from __future__ import annotations

import dataclasses
import math

from .config import ENCODERS, ENTANGLEMENTS, CircuitConfig

__all__ = [
    "AmplitudeEncoding",
    "CircuitSpec",
    "Gate",
    "Op",
    "ZZPhase",
    "build_circuit",
    "entangling_pairs",
    "expand",
    "features_per_encoder",
    "preparation_gates",
]


@dataclasses.dataclass(frozen=True)
class Gate:
    """One gate.

    Attributes:
        name: ``rx ry rz p`` (angle gates), ``h x sdg`` (fixed) or ``cx cz`` (two-qubit,
            ``qubits = (control, target)``).
        qubits: the qubits it acts on.
        source: ``"weight"``, ``"feature"``, ``"pair"``, ``"preparation"`` (an angle of an
            amplitude encoding's state preparation) or ``"none"``.
        index: weight or feature index; ``(i, j)`` for ``"pair"``.
        scale: multiplies the source value to give the angle [rad].
    """

    name: str
    qubits: tuple[int, ...]
    source: str = "none"
    index: int | tuple[int, int] = 0
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class ZZPhase:
    """The two-qubit part of the ZZ feature map: for each pair ``CX(i,j) P(2 phi_ij)_j CX(i,j)``.

    With ``phi_ij = (pi - x_i)(pi - x_j)`` this multiplies basis state ``b`` by
    ``exp(2i phi_ij (b_i XOR b_j))`` (Havlicek et al., Nature 567, 209 (2019); qiskit's
    ``zz_feature_map``).
    """

    pairs: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class AmplitudeEncoding:
    """Prepare ``sum_i x_i |i> / |x|`` on qubits ``0..n_qubits-1`` (features zero-padded).

    Real amplitudes are prepared by a cascade of uniformly controlled RY rotations
    (Mottonen et al., Quant. Inf. Comp. 5, 467 (2005)): ``2^k - 1`` RY and ``2^k - 2`` CNOT
    gates on ``k`` qubits, the counts the cost model uses.
    """

    n_features: int
    n_qubits: int


Op = Gate | ZZPhase | AmplitudeEncoding


@dataclasses.dataclass(frozen=True)
class CircuitSpec:
    """A built circuit.

    Attributes:
        n_qubits: qubits used.
        n_features: input features consumed.
        n_weights: trainable angles.
        ops: the operations, in time order.
        readout: ``"z"``, ``"x"``, ``"y"`` or ``"probs"`` (basis changes are already in
            ``ops``; every readout ends with a computational-basis measurement).
    """

    n_qubits: int
    n_features: int
    n_weights: int
    ops: tuple[Op, ...]
    readout: str


def entangling_pairs(n_qubits: int, pattern: str) -> list[tuple[int, int]]:
    """(control, target) pairs of one entangling block of ``pattern`` on ``n_qubits``."""
    if pattern not in ENTANGLEMENTS:
        raise ValueError(f"entanglement={pattern!r} is not one of {', '.join(ENTANGLEMENTS)}")
    linear = [(i, i + 1) for i in range(n_qubits - 1)]
    if pattern == "linear":
        return linear
    if pattern == "reverse_linear":
        return linear[::-1]
    if pattern == "full":
        return [(i, j) for i in range(n_qubits) for j in range(i + 1, n_qubits)]
    return linear + ([(n_qubits - 1, 0)] if n_qubits > 2 else [])


def features_per_encoder(encoder: str, n_qubits: int) -> int:
    """Largest number of input features ``encoder`` accepts on ``n_qubits`` qubits."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder={encoder!r} is not one of {', '.join(ENCODERS)}")
    return 2**n_qubits if encoder == "amplitude" else n_qubits


def _angle_layer(axis: str, n_features: int) -> list[Op]:
    return [Gate(axis, (i,), "feature", i) for i in range(n_features)]


class _Weights:
    """Hands out consecutive weight indices."""

    def __init__(self) -> None:
        self.count = 0

    def gate(self, name: str, qubit: int) -> Gate:
        self.count += 1
        return Gate(name, (qubit,), "weight", self.count - 1)


def _encoder_ops(config: CircuitConfig, n_features: int) -> list[Op]:
    enc = config.encoder
    if enc == "amplitude":
        return [AmplitudeEncoding(n_features, max(1, math.ceil(math.log2(n_features))))]
    if enc == "angle_x":
        return _angle_layer("rx", n_features)
    if enc in ("angle_y", "reupload"):
        return _angle_layer("ry", n_features)
    if enc == "angle_z":
        return [Gate("h", (i,)) for i in range(n_features)] + _angle_layer("rz", n_features)
    # iqp: qiskit's zz_feature_map(feature_dimension=n_features, reps, entanglement="full")
    ops: list[Op] = []
    pairs = tuple(entangling_pairs(n_features, "full"))
    for _ in range(config.encoder_reps):
        ops += [Gate("h", (i,)) for i in range(n_features)]
        ops += [Gate("p", (i,), "feature", i, 2.0) for i in range(n_features)]
        if pairs:
            ops.append(ZZPhase(pairs))
    return ops


def _ansatz_ops(config: CircuitConfig, n_qubits: int, n_features: int) -> tuple[list[Op], int]:
    w = _Weights()
    ops: list[Op] = []
    reupload = config.encoder == "reupload"
    ent = entangling_pairs(n_qubits, config.entanglement)
    cnots = [Gate("cx", pair) for pair in ent]
    for layer in range(config.layers):
        if reupload and layer > 0:
            ops += _angle_layer("ry", n_features)
        if config.ansatz == "hardware_efficient":
            for q in range(n_qubits):
                ops += [w.gate("ry", q), w.gate("rz", q)]
            ops += cnots
        elif config.ansatz == "strongly_entangling":
            for q in range(n_qubits):
                ops += [w.gate("rz", q), w.gate("ry", q), w.gate("rz", q)]
            if n_qubits > 1:
                r = layer % (n_qubits - 1) + 1
                ops += [Gate("cx", (q, (q + r) % n_qubits)) for q in range(n_qubits)]
        elif config.ansatz == "real_amplitudes":
            ops += [w.gate("ry", q) for q in range(n_qubits)]
            ops += cnots
        else:  # efficient_su2
            ops += [w.gate("ry", q) for q in range(n_qubits)]
            ops += [w.gate("rz", q) for q in range(n_qubits)]
            ops += cnots
    if config.ansatz == "real_amplitudes":
        ops += [w.gate("ry", q) for q in range(n_qubits)]
    elif config.ansatz == "efficient_su2":
        ops += [w.gate("ry", q) for q in range(n_qubits)]
        ops += [w.gate("rz", q) for q in range(n_qubits)]
    return ops, w.count


def build_circuit(config: CircuitConfig, n_qubits: int, n_features: int) -> CircuitSpec:
    """Lay out encoder, ansatz and readout basis change on ``n_qubits`` qubits.

    Args:
        config: circuit config (encoder, ansatz, layers, entanglement, readout).
        n_qubits: qubits of the circuit (may be below ``config.qubits``).
        n_features: input features; angle-type encoders put feature ``i`` on qubit ``i``.

    Raises:
        ValueError: when the features do not fit the encoder on ``n_qubits`` qubits.
    """
    if isinstance(n_qubits, bool) or not isinstance(n_qubits, int) or n_qubits < 1:
        raise ValueError(f"n_qubits={n_qubits!r} must be an int >= 1")
    limit = features_per_encoder(config.encoder, n_qubits)
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features={n_features!r} must be an int >= 1")
    if n_features > limit:
        fix = (
            f"use at least {math.ceil(math.log2(n_features))} qubits"
            if config.encoder == "amplitude"
            else f"use {n_features} qubits or encoder='amplitude' "
            f"(needs {math.ceil(math.log2(n_features))} qubits)"
        )
        raise ValueError(
            f"encoder {config.encoder!r} takes at most {limit} features on {n_qubits} qubits, "
            f"got {n_features}; {fix}"
        )
    ops = _encoder_ops(config, n_features)
    ansatz, n_weights = _ansatz_ops(config, n_qubits, n_features)
    ops += ansatz
    if config.readout == "x":
        ops += [Gate("h", (q,)) for q in range(n_qubits)]
    elif config.readout == "y":
        ops += [g for q in range(n_qubits) for g in (Gate("sdg", (q,)), Gate("h", (q,)))]
    return CircuitSpec(n_qubits, n_features, n_weights, tuple(ops), config.readout)


def preparation_gates(op: AmplitudeEncoding) -> list[Gate]:
    """The physical gates of an amplitude encoding: uniformly controlled RY rotations.

    Qubit ``t = k-1`` gets one RY; qubit ``t < k-1`` a rotation uniformly controlled by the
    ``j = k-1-t`` qubits above it, decomposed into ``2^j`` RY and ``2^j`` CNOT gates whose
    controls follow the Gray code (Mottonen et al., Quant. Inf. Comp. 5, 467 (2005)):
    ``2^k - 1`` RY and ``2^k - 2`` CNOT in all. RY ``i`` takes angle ``i`` of
    :func:`physnn.quantum.sim.statevector.preparation_angles` (``source="preparation"``).
    """
    k = op.n_qubits
    gates: list[Gate] = []
    for j in range(k):
        target = k - 1 - j
        offset = 2**j - 1
        for i in range(2**j):
            gates.append(Gate("ry", (target,), "preparation", offset + i))
            if j > 0:
                changed = (i ^ (i >> 1)) ^ (((i + 1) % 2**j) ^ (((i + 1) % 2**j) >> 1))
                gates.append(Gate("cx", (target + changed.bit_length(), target)))
    return gates


def expand(op: Op) -> list[Gate]:
    """Primitive gates of ``op`` (amplitude encoding has none: it is a state preparation)."""
    if isinstance(op, Gate):
        return [op]
    if isinstance(op, ZZPhase):
        return [
            g
            for i, j in op.pairs
            for g in (Gate("cx", (i, j)), Gate("p", (j,), "pair", (i, j), 2.0), Gate("cx", (i, j)))
        ]
    return []
