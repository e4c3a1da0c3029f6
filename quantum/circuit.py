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
    "Angle",
    "CircuitBuilder",
    "CircuitSpec",
    "Gate",
    "Op",
    "ZZPhase",
    "build_circuit",
    "entangling_pairs",
    "expand",
    "features_per_encoder",
    "gate_level_weights",
    "preparation_gates",
    "user_circuit",
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
        constant_feature: index of a circuit input that is always 1, read by gates with a
            constant angle (``scale`` [rad]) of an imported circuit; None when there is none.
    """

    n_qubits: int
    n_features: int
    n_weights: int
    ops: tuple[Op, ...]
    readout: str
    constant_feature: int | None = None


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


@dataclasses.dataclass(frozen=True)
class Angle:
    """An angle source for :class:`CircuitBuilder` gates: an input feature or a trainable
    weight, times ``scale`` (``2 * b.input(0)`` doubles it)."""

    source: str
    index: int
    scale: float = 1.0

    def __mul__(self, factor: float) -> Angle:
        return dataclasses.replace(self, scale=self.scale * float(factor))

    __rmul__ = __mul__


class CircuitBuilder:
    """Records a user-written circuit: call gate methods on wires in time order.

    Example:
        >>> def circuit(b: CircuitBuilder) -> None:
        ...     b.ry(b.input(0), 0)
        ...     b.ry(b.input(1), 1)
        ...     b.cx(0, 1)
        ...     b.rz(b.weight(), 1)
        ...     b.ry(b.weight(), 0)
        >>> user_circuit(circuit, n_qubits=2, n_features=2).n_weights
        2
    """

    def __init__(self, n_qubits: int, n_features: int) -> None:
        self.n_qubits = n_qubits
        self.n_features = n_features
        self.ops: list[Op] = []
        self.n_weights = 0

    def input(self, index: int) -> Angle:
        """Input feature ``index`` (times ``CircuitConfig.input_scale``) as an angle [rad]."""
        if not 0 <= index < self.n_features:
            raise ValueError(f"input({index}) is outside 0..{self.n_features - 1}")
        return Angle("feature", index)

    def weight(self) -> Angle:
        """A new trainable angle [rad] (weights are numbered in the order they are made)."""
        self.n_weights += 1
        return Angle("weight", self.n_weights - 1)

    def _wire(self, wire: int) -> int:
        if isinstance(wire, bool) or not isinstance(wire, int) or not 0 <= wire < self.n_qubits:
            raise ValueError(f"wire={wire!r} must be an int in 0..{self.n_qubits - 1}")
        return wire

    def _rotation(self, name: str, angle: Angle, wire: int) -> None:
        if not isinstance(angle, Angle):
            raise TypeError(
                f"{name} needs an angle from builder.input(i) or builder.weight(), got {angle!r}"
            )
        self.ops.append(Gate(name, (self._wire(wire),), angle.source, angle.index, angle.scale))

    def rx(self, angle: Angle, wire: int) -> None:
        """``RX(angle)`` on ``wire``."""
        self._rotation("rx", angle, wire)

    def ry(self, angle: Angle, wire: int) -> None:
        """``RY(angle)`` on ``wire``."""
        self._rotation("ry", angle, wire)

    def rz(self, angle: Angle, wire: int) -> None:
        """``RZ(angle)`` on ``wire``."""
        self._rotation("rz", angle, wire)

    def p(self, angle: Angle, wire: int) -> None:
        """Phase gate ``P(angle)`` on ``wire``."""
        self._rotation("p", angle, wire)

    def h(self, wire: int) -> None:
        """Hadamard on ``wire``."""
        self.ops.append(Gate("h", (self._wire(wire),)))

    def x(self, wire: int) -> None:
        """Pauli X on ``wire``."""
        self.ops.append(Gate("x", (self._wire(wire),)))

    def cx(self, control: int, target: int) -> None:
        """CNOT from ``control`` to ``target``."""
        self._two("cx", control, target)

    def cz(self, control: int, target: int) -> None:
        """Controlled Z."""
        self._two("cz", control, target)

    def _two(self, name: str, a: int, b: int) -> None:
        if self._wire(a) == self._wire(b):
            raise ValueError(f"{name} needs two distinct wires, got {a} and {b}")
        self.ops.append(Gate(name, (a, b)))


def user_circuit(build: object, n_qubits: int, n_features: int, readout: str = "z") -> CircuitSpec:
    """The :class:`CircuitSpec` of a user-written circuit ``build(builder)``.

    Args:
        build: a callable taking a :class:`CircuitBuilder` and applying gates to it.
        n_qubits: wires of the circuit.
        n_features: input features the circuit reads with ``builder.input(i)``.
        readout: ``"z"`` (``<Z_i>`` of every wire) or ``"probs"``.
    """
    if not callable(build):
        raise TypeError(f"build={build!r} must be a callable taking a CircuitBuilder")
    if readout not in ("z", "probs"):
        raise ValueError(f"readout={readout!r} must be 'z' or 'probs' for a user circuit")
    builder = CircuitBuilder(n_qubits, n_features)
    build(builder)
    return CircuitSpec(n_qubits, n_features, builder.n_weights, tuple(builder.ops), readout)


def gate_level_weights(spec: CircuitSpec) -> tuple[CircuitSpec, list[tuple[int, float]]]:
    """``spec`` with one weight per weight-dependent gate, and where each comes from.

    Gate ``j`` of the result reads weight ``j`` with scale 1; its angle is
    ``scale_j * w[index_j]`` for the ``(index_j, scale_j)`` returned. Every gate-level angle
    then sits in exactly one rotation, so the two-term parameter-shift rule is exact for it,
    and ``dF/dw_i = sum_{j: index_j = i} scale_j dF/dtheta_j`` (the chain rule for weights
    shared by several gates or scaled, as in imported circuits).
    """
    ops: list[Op] = []
    sources: list[tuple[int, float]] = []
    for op in spec.ops:
        if isinstance(op, Gate) and op.source == "weight":
            assert isinstance(op.index, int)
            ops.append(Gate(op.name, op.qubits, "weight", len(sources), 1.0))
            sources.append((op.index, op.scale))
        else:
            ops.append(op)
    lifted = dataclasses.replace(spec, ops=tuple(ops), n_weights=len(sources))
    return lifted, sources
