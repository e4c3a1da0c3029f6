"""Layers from parametrised ``qiskit.QuantumCircuit`` objects.

:func:`spec_from_qiskit` turns a circuit whose parameters are split into inputs and weights
into the :class:`~physnn.quantum.circuit.CircuitSpec` that the simulator, the noise models,
the cost model and the exporter read, so an imported circuit runs exactly like a built one.
qiskit is imported lazily inside the functions (``import physnn.quantum`` stays qiskit-free).

Every gate becomes gates of physnn's set (``rx ry rz p h x y sdg cx cz``), exactly up to a
global phase:

- an angle ``c + sum_k a_k p_k`` linear in the parameters becomes one rotation per term
  (rotations about one axis compose by adding angles); the constant ``c`` reads a constant
  circuit input fixed at 1 (:attr:`CircuitSpec.constant_feature`);
- ``u(t, f, l) = e^{i(f + l)/2} RZ(f) RY(t) RZ(l)``, ``z = sdg sdg``, ``s = sdg^3``,
  ``t = P(pi/4)``, ``sx = e^{i pi/4} RX(pi/2)``;
- ``swap`` is three CNOTs, ``cy = S_t CX S_t^dag``, ``crz(t) = RZ(t/2)_t CX RZ(-t/2)_t CX``
  (``cry`` likewise, ``crx = H_t CRZ H_t``), ``cp(l) = P(l/2)_c CX P(-l/2)_t CX P(l/2)_t``,
  ``rzz(t) = CX RZ(t)_b CX``, ``rxx = (H H) RZZ (H H)``, ``ryy = (S H)(S H) RZZ (H S^dag)(H S^dag)``
  in operator order (Barenco et al., PRA 52, 3457 (1995)).

Composite instructions are decomposed by qiskit first; barriers and final measurements are
ignored (the readout measures every qubit); anything else raises a ``ValueError`` naming the
instruction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .circuit import CircuitSpec, Gate, Op
from .layers import QuantumCircuitLayer

__all__ = ["SUPPORTED_GATES", "ImportedCircuitLayer", "from_qiskit", "spec_from_qiskit"]

_ROTATIONS = ("rx", "ry", "rz", "p")
_FIXED_1Q = ("h", "x", "y", "sdg")
SUPPORTED_GATES = (
    *_ROTATIONS,
    *_FIXED_1Q,
    "id",
    "z",
    "s",
    "t",
    "tdg",
    "sx",
    "sxdg",
    "u",
    "u1",
    "u2",
    "u3",
    "cx",
    "cz",
    "cy",
    "swap",
    "crx",
    "cry",
    "crz",
    "cp",
    "rxx",
    "ryy",
    "rzz",
)
"""qiskit instruction names :func:`spec_from_qiskit` converts (plus ``barrier`` and final
``measure``, which are ignored)."""

# One linear angle: (constant [rad], ((source, index, coefficient), ...)).
_Linear = tuple[float, tuple[tuple[str, int, float], ...]]


class _Converter:
    """Accumulates the physnn gates of one circuit."""

    def __init__(self, index: dict[Any, tuple[str, int]]) -> None:
        self.index = index
        self.ops: list[Op] = []
        self.uses_constant = False

    def linear(self, value: Any, gate: str) -> _Linear:
        """``value`` (a number or a ``ParameterExpression``) as constant + linear terms."""
        from qiskit.circuit import ParameterExpression

        if not isinstance(value, ParameterExpression):
            return float(value), ()
        params = list(value.parameters)
        unknown = [p.name for p in params if p not in self.index]
        if unknown:
            raise ValueError(
                f"gate {gate!r} uses parameters {unknown} that are in neither inputs nor "
                "weights; pass every circuit parameter in exactly one of them"
            )
        terms = []
        for p in params:
            slope = value.gradient(p)
            if isinstance(slope, ParameterExpression) and slope.parameters:
                raise ValueError(
                    f"gate {gate!r} has the angle {value}, not linear in {p.name}; only "
                    "angles c + sum_k a_k p_k are supported (add a parameter for the "
                    "non-linear feature and compute it before the layer)"
                )
            coeff = complex(slope)
            source, idx = self.index[p]
            terms.append((source, idx, coeff.real))
        constant = complex(value.bind(dict.fromkeys(params, 0.0)).numeric())
        return constant.real, tuple(terms)

    def rotation(self, name: str, angle: _Linear, qubit: int, factor: float = 1.0) -> None:
        """Rotations ``name`` by ``factor * angle`` on ``qubit``, one per non-zero term."""
        constant, terms = angle
        for source, idx, coeff in terms:
            if coeff * factor != 0.0:
                self.ops.append(Gate(name, (qubit,), source, idx, coeff * factor))
        if constant * factor != 0.0:
            self.uses_constant = True
            self.ops.append(Gate(name, (qubit,), "feature", -1, constant * factor))

    def fixed(self, name: str, *qubits: int) -> None:
        self.ops.append(Gate(name, tuple(qubits)))

    def convert(self, name: str, params: Sequence[Any], qs: Sequence[int]) -> None:
        """Append the physnn gates of qiskit instruction ``name``."""
        lin = [self.linear(p, name) for p in params]
        if name in _ROTATIONS:
            self.rotation(name, lin[0], qs[0])
        elif name in _FIXED_1Q:
            self.fixed(name, qs[0])
        elif name == "id":
            return
        elif name in ("z", "s"):
            for _ in range(2 if name == "z" else 3):
                self.fixed("sdg", qs[0])
        elif name in ("t", "tdg"):
            self.rotation("p", (math.pi / 4 * (1 if name == "t" else -1), ()), qs[0])
        elif name in ("sx", "sxdg"):
            self.rotation("rx", (math.pi / 2 * (1 if name == "sx" else -1), ()), qs[0])
        elif name in ("u", "u3", "u2", "u1"):
            if name == "u1":
                self.rotation("p", lin[0], qs[0])
                return
            theta, phi, lam = ((math.pi / 2, ()), *lin) if name == "u2" else lin
            self.rotation("rz", lam, qs[0])
            self.rotation("ry", theta, qs[0])
            self.rotation("rz", phi, qs[0])
        elif name in ("cx", "cz"):
            self.fixed(name, qs[0], qs[1])
        elif name == "cy":
            self.fixed("sdg", qs[1])
            self.fixed("cx", qs[0], qs[1])
            self.convert("s", (), (qs[1],))
        elif name == "swap":
            a, b = qs
            for c, t in ((a, b), (b, a), (a, b)):
                self.fixed("cx", c, t)
        elif name in ("crz", "cry", "crx"):
            c, t = qs
            axis = "ry" if name == "cry" else "rz"
            if name == "crx":
                self.fixed("h", t)
            self.rotation(axis, lin[0], t, 0.5)
            self.fixed("cx", c, t)
            self.rotation(axis, lin[0], t, -0.5)
            self.fixed("cx", c, t)
            if name == "crx":
                self.fixed("h", t)
        elif name == "cp":
            c, t = qs
            self.rotation("p", lin[0], c, 0.5)
            self.fixed("cx", c, t)
            self.rotation("p", lin[0], t, -0.5)
            self.fixed("cx", c, t)
            self.rotation("p", lin[0], t, 0.5)
        elif name in ("rzz", "rxx", "ryy"):
            a, b = qs
            for q in (a, b):
                if name == "ryy":
                    self.fixed("sdg", q)
                if name != "rzz":
                    self.fixed("h", q)
            self.fixed("cx", a, b)
            self.rotation("rz", lin[0], b)
            self.fixed("cx", a, b)
            for q in (a, b):
                if name != "rzz":
                    self.fixed("h", q)
                if name == "ryy":
                    self.convert("s", (), (q,))
        else:  # pragma: no cover - filtered by spec_from_qiskit
            raise AssertionError(name)


def _parameter_list(params: Any, what: str) -> list[Any]:
    from qiskit.circuit import Parameter, ParameterVector

    if isinstance(params, Parameter | ParameterVector):
        params = list(params)
    if not isinstance(params, Iterable) or isinstance(params, str):
        raise TypeError(f"{what} must be a list of qiskit Parameters or a ParameterVector")
    out = []
    for p in params:
        if isinstance(p, ParameterVector):
            out += list(p)
        elif isinstance(p, Parameter):
            out.append(p)
        else:
            raise TypeError(f"{what} must hold qiskit Parameters, got {p!r}")
    return out


def spec_from_qiskit(
    circuit: Any, inputs: Any, weights: Any, readout: str = "z"
) -> tuple[CircuitSpec, list[Any], list[Any]]:
    """The :class:`CircuitSpec` of a parametrised qiskit circuit.

    Args:
        circuit: a ``qiskit.QuantumCircuit``.
        inputs: the parameters bound to the layer input, in feature order (a list of
            ``Parameter`` or a ``ParameterVector``); feature ``i`` is the angle-valued
            ``x[..., i]`` [rad], with no ``input_scale``.
        weights: the trainable parameters, in the order of the layer's ``weight``.
        readout: ``"z"`` (``<Z_q>`` of every qubit) or ``"probs"``.

    Returns:
        ``(spec, inputs, weights)`` with the parameter lists flattened.

    Raises:
        ValueError: for an unsupported instruction (named), a parameter in neither or both
            lists, a circuit parameter left out, or an angle not linear in the parameters.
    """
    from qiskit import QuantumCircuit

    if not isinstance(circuit, QuantumCircuit):
        raise TypeError(f"circuit must be a qiskit.QuantumCircuit, got {type(circuit).__name__}")
    if readout not in ("z", "probs"):
        raise ValueError(f"readout={readout!r} must be 'z' or 'probs' for an imported circuit")
    ins, ws = _parameter_list(inputs, "inputs"), _parameter_list(weights, "weights")
    both = {p.name for p in ins} & {p.name for p in ws}
    if both:
        raise ValueError(f"parameters {sorted(both)} are in both inputs and weights")
    if not ins:
        raise ValueError("inputs is empty: a layer needs at least one input parameter")
    index = {p: ("feature", i) for i, p in enumerate(ins)}
    index.update({p: ("weight", i) for i, p in enumerate(ws)})
    missing = sorted(p.name for p in circuit.parameters if p not in index)
    if missing:
        raise ValueError(
            f"circuit parameters {missing} are in neither inputs nor weights; pass each in one"
        )
    known = {*SUPPORTED_GATES, "barrier", "measure"}
    for _ in range(10):
        composite = {
            inst.operation.name
            for inst in circuit.data
            if inst.operation.name not in known and getattr(inst.operation, "definition", None)
        }
        if not composite:
            break
        circuit = circuit.decompose(gates_to_decompose=sorted(composite))
    conv = _Converter(index)
    measured: set[int] = set()
    for inst in circuit.data:
        name = inst.operation.name
        qs = [circuit.find_bit(q).index for q in inst.qubits]
        if name == "barrier":
            continue
        if name == "measure":
            measured.update(qs)
            continue
        if name not in SUPPORTED_GATES:
            raise ValueError(
                f"instruction {name!r} on qubits {qs} is not supported; supported: "
                f"{', '.join(SUPPORTED_GATES)} (transpile the circuit to these, e.g. "
                "qiskit.transpile(circuit, basis_gates=['rz', 'ry', 'cx']))"
            )
        if measured & set(qs):
            raise ValueError(
                f"instruction {name!r} acts on qubits {sorted(measured & set(qs))} after they "
                "were measured; only final measurements are supported"
            )
        conv.convert(name, inst.operation.params, qs)
    n_features = len(ins) + (1 if conv.uses_constant else 0)
    ops = tuple(
        Gate(op.name, op.qubits, op.source, len(ins), op.scale)
        if isinstance(op, Gate) and op.index == -1
        else op
        for op in conv.ops
    )
    spec = CircuitSpec(
        circuit.num_qubits,
        n_features,
        len(ws),
        ops,
        readout,
        constant_feature=len(ins) if conv.uses_constant else None,
    )
    return spec, ins, ws


def bind_weights(layer: QuantumCircuitLayer, circuit: Any, weights: Sequence[Any]) -> Any:
    """``circuit`` with ``weights`` bound to ``layer.weight`` (inputs left as parameters)."""
    values = [float(w) for w in layer.weight.detach().cpu().double()]
    return circuit.assign_parameters(dict(zip(weights, values, strict=True)))


def with_constant(x: torch.Tensor, spec: CircuitSpec) -> torch.Tensor:
    """Append the constant circuit input 1 when ``spec`` reads one."""
    if spec.constant_feature is None:
        return x
    return torch.cat([x, x.new_ones(x.shape[0], 1)], 1)


def from_qiskit(
    circuit: Any,
    inputs: Any,
    weights: Any = (),
    *,
    readout: str | Sequence[object] = "z",
    config: Any = None,
    name: str = "",
    device: Any = None,
    dtype: Any = None,
) -> ImportedCircuitLayer:
    """A layer from a parametrised ``qiskit.QuantumCircuit`` whose parameters are split
    into ``inputs`` (bound to the layer input, angles [rad]) and trainable ``weights``
    (lists of ``Parameter`` or ``ParameterVector``), with the config's simulator, noise,
    shots, cost and export (see this module's docstring for the gate set).

    ``readout`` is ``"z"`` (``<Z_q>`` of every qubit), ``"probs"`` or a list of observables
    (Pauli strings, ``(label, coefficient)`` lists or ``SparsePauliOp``, in the circuit's
    qubit order): the layer then outputs one ``<H_k>`` per observable
    (:mod:`physnn.quantum.observables`).

    Example:
        >>> from qiskit import QuantumCircuit
        >>> from qiskit.circuit import ParameterVector
        >>> x, w = ParameterVector("x", 2), ParameterVector("w", 2)
        >>> qc = QuantumCircuit(2)
        >>> _ = qc.ry(x[0], 0), qc.rx(2 * x[1] + 0.1, 1), qc.cx(0, 1), qc.rzz(w[0], 0, 1)
        >>> _ = qc.ry(w[1] - x[0], 1)
        >>> from_qiskit(qc, inputs=x, weights=w).weight.shape
        torch.Size([2])
    """
    from .config import QuantumConfig

    observables = None if isinstance(readout, str) else readout
    spec, ins, ws = spec_from_qiskit(
        circuit, inputs, weights, readout if isinstance(readout, str) else "z"
    )
    cfg = config if config is not None else QuantumConfig()
    ImportedCircuitLayer.check_config(cfg)
    cfg = cfg.replace(circuit=cfg.circuit.replace(qubits=max(cfg.circuit.qubits, spec.n_qubits)))
    layer = ImportedCircuitLayer.__new__(ImportedCircuitLayer)
    layer.__dict__["_user_spec_pending"] = spec
    QuantumCircuitLayer.__init__(
        layer,
        len(ins),
        spec.n_qubits,
        config=cfg,
        name=name,
        device=device,
        dtype=dtype,
        observables=observables,
    )
    layer.qiskit_circuit = circuit
    layer.qiskit_inputs = tuple(ins)
    layer.qiskit_weights = tuple(ws)
    return layer


class ImportedCircuitLayer(QuantumCircuitLayer):
    """A layer whose circuit is a parametrised ``qiskit.QuantumCircuit``.

    Built by :func:`from_qiskit`. Inputs are the angles bound to the
    circuit's input parameters [rad] (``CircuitConfig.input_scale`` is not applied); the
    simulator, noise, shots, cost and transpilation are the ones of every quantum layer.

    Attributes:
        qiskit_circuit: the circuit as given.
        qiskit_inputs: its input parameters, in feature order.
        qiskit_weights: its trainable parameters, in the order of ``weight``.
    """

    qiskit_circuit: Any
    qiskit_inputs: tuple[Any, ...]
    qiskit_weights: tuple[Any, ...]

    def _prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs are angles: cast, and append the constant input 1 when gates read it."""
        return with_constant(x.to(self.weight.dtype), self.spec)

    def to_qiskit(self, x: torch.Tensor | None = None) -> Any:
        """The imported circuit with the trained weights bound; ``x`` (one sample
        ``[in_features]``) also binds the inputs, None leaves them as parameters."""
        circuit = bind_weights(self, self.qiskit_circuit, self.qiskit_weights)
        if x is None:
            return circuit
        if not isinstance(x, torch.Tensor) or x.dim() != 1 or x.shape[0] != self.in_features:
            raise ValueError(
                f"x must be one sample shaped [{self.in_features}], got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        values = [float(v) for v in x.detach().cpu().double()]
        return circuit.assign_parameters(dict(zip(self.qiskit_inputs, values, strict=True)))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, n_qubits={self.n_qubits}, "
            f"out_features={self.out_features}, circuit={self.qiskit_circuit.name!r}, "
            f"weights={self.spec.n_weights}, readout={self.spec.readout}, "
            f"{self._physical_repr()}"
        )
