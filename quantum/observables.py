"""Observables as a layer's readout: Pauli strings, weighted sums and qiskit ``SparsePauliOp``.

A layer given ``observables`` outputs ``<H_k>`` for each. The Pauli terms of all of them
are split into qubit-wise commuting groups (on every qubit the terms of a group act with the
same Pauli or with ``I``; Kandala et al., Nature 549, 242 (2017)); each group is one
measured circuit: the layer's circuit, then the group's basis change (``H`` for ``X``,
``S^dag H`` for ``Y``) and a computational-basis measurement, from which every term of the
group is the parity ``<P> = sum_b p(b) (-1)^{popcount(b & support(P))}``. With finite shots
each group gets its own ``MeasurementConfig.shots`` (hardware runs one circuit per group),
and readout errors and their mitigation act on each group's outcomes.

Labels follow qiskit's order: the rightmost letter acts on qubit 0; ``I`` on the other
wires selects a subset of wires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from .circuit import CircuitSpec, Gate
from .sim.measure import pauli_terms

__all__ = ["MeasuredObservables", "measured_observables", "with_basis"]


@dataclasses.dataclass(frozen=True)
class MeasuredObservables:
    """Observables compiled into measured groups.

    Attributes:
        labels: the distinct non-identity Pauli labels, group by group.
        bases: one basis per group, a label of ``I X Y Z`` (qiskit order) giving the Pauli
            measured on each qubit.
        sizes: number of labels in each group.
        coefficients: ``[len(labels), n_observables]`` real weights: ``<H_k> = sum_j
            coefficients[j, k] <P_j> + constants[k]``.
        constants: ``[n_observables]`` identity coefficients.
    """

    labels: tuple[str, ...]
    bases: tuple[str, ...]
    sizes: tuple[int, ...]
    coefficients: tuple[tuple[float, ...], ...]
    constants: tuple[float, ...]

    @property
    def count(self) -> int:
        """Number of observables (the layer's outputs)."""
        return len(self.constants)

    def parities(self, group: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``[2^n, size]`` signs ``(-1)^{popcount(b & support)}`` of the group's labels."""
        start = sum(self.sizes[:group])
        labels = self.labels[start : start + self.sizes[group]]
        n = len(self.bases[group])
        idx = torch.arange(2**n, device=device)
        cols = []
        for label in labels:
            mask = sum(1 << q for q, p in enumerate(label[::-1]) if p != "I")
            parity = torch.zeros_like(idx)
            masked = idx & mask
            for _ in range(n):
                parity ^= masked & 1
                masked = masked >> 1
            cols.append(1 - 2 * parity)
        return torch.stack(cols, 1).to(dtype)

    def combine(self, terms: torch.Tensor) -> torch.Tensor:
        """``<H_k>`` ``[B, n_observables]`` from the term expectations ``[B, len(labels)]``."""
        c = torch.tensor(self.coefficients, dtype=terms.dtype, device=terms.device)
        const = torch.tensor(self.constants, dtype=terms.dtype, device=terms.device)
        return terms @ c.view(len(self.labels), self.count) + const


def _compatible(basis: list[str], label: str) -> bool:
    return all(b == "I" or p == "I" or b == p for b, p in zip(basis, label, strict=True))


def measured_observables(observables: Sequence[object], n_qubits: int) -> MeasuredObservables:
    """Parse ``observables`` (each a Pauli string such as ``"ZZI"``, a list of ``(label,
    coefficient)`` or a qiskit ``SparsePauliOp``) and group their terms qubit-wise (first
    fit, in order of appearance).

    Raises:
        TypeError: when ``observables`` is not a sequence of observables.
        ValueError: for an empty list, a label of the wrong length or letters, or a
            complex coefficient (the observable must be Hermitian).
    """
    if isinstance(observables, str) or not isinstance(observables, Sequence):
        raise TypeError(
            f"observables={observables!r} must be a list of observables, e.g. ['ZI', 'IZ'] or "
            "[SparsePauliOp(['XX', 'ZZ'], [0.5, 1.0])]"
        )
    if not observables:
        raise ValueError("observables is empty: pass at least one observable")
    index: dict[str, int] = {}
    weights: list[dict[int, float]] = []
    constants: list[float] = []
    for k, observable in enumerate(observables):
        row: dict[int, float] = {}
        constant = 0.0
        for label, coeff in pauli_terms(observable, n_qubits):
            if abs(coeff.imag) > 1e-12 * max(1.0, abs(coeff.real)):
                raise ValueError(
                    f"observables[{k}] has the coefficient {coeff!r} on {label!r}; an "
                    "observable must be Hermitian: pass real coefficients"
                )
            label = label.upper()
            if set(label) == {"I"}:
                constant += coeff.real
                continue
            j = index.setdefault(label, len(index))
            row[j] = row.get(j, 0.0) + coeff.real
        weights.append(row)
        constants.append(constant)
    groups: list[tuple[list[str], list[str]]] = []  # (basis letters, labels)
    for label in index:
        for basis, members in groups:
            if _compatible(basis, label):
                basis[:] = [p if p != "I" else b for b, p in zip(basis, label, strict=True)]
                members.append(label)
                break
        else:
            groups.append((list(label), [label]))
    labels = tuple(label for _, members in groups for label in members)
    coefficients = tuple(
        tuple(weights[k].get(index[label], 0.0) for k in range(len(observables)))
        for label in labels
    )
    return MeasuredObservables(
        labels=labels,
        bases=tuple("".join(basis) for basis, _ in groups),
        sizes=tuple(len(members) for _, members in groups),
        coefficients=coefficients,
        constants=tuple(constants),
    )


def basis_gates(basis: str) -> list[Gate]:
    """The gates that turn a measurement of ``basis`` (qiskit order) into a Z measurement:
    ``H`` for ``X`` and ``S^dag`` then ``H`` for ``Y``."""
    gates: list[Gate] = []
    for q, p in enumerate(basis[::-1]):
        if p == "X":
            gates.append(Gate("h", (q,)))
        elif p == "Y":
            gates += [Gate("sdg", (q,)), Gate("h", (q,))]
    return gates


def with_basis(spec: CircuitSpec, basis: str) -> CircuitSpec:
    """``spec`` followed by the basis change of ``basis`` (the circuit a group measures)."""
    return dataclasses.replace(spec, ops=(*spec.ops, *basis_gates(basis)))
