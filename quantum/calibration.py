"""Per-qubit and per-edge calibration of a device: the numbers of a backend's ``Target``.

A :class:`DeviceCalibration` holds what IBM publishes per physical qubit (T1, T2, the
single-qubit gate's error and duration, the assignment errors) and per coupled pair (the
native two-qubit gate's error and duration). Gate errors are average gate infidelities of
the whole gate, relaxation during it included. The transpiled noise model
(:mod:`physnn.quantum.transpiled`) routes the circuit onto its coupling map and applies
these numbers gate by gate; without one (``HardwareConfig.calibration=None``) the config's
medians are put on every qubit and edge (:func:`~physnn.quantum.noise.median_calibration`).
"""

from __future__ import annotations

import dataclasses

from ..common.config import ConfigBlock, check_probability, check_range

__all__ = ["DeviceCalibration"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceCalibration(ConfigBlock):
    """Calibration data of every physical qubit and coupled pair of a device.

    Per-qubit tuples have one entry per physical qubit ``0..Q-1``; per-edge tuples one per
    entry of ``edges``.
    """

    edges: tuple[tuple[int, int], ...]
    """Directed qubit pairs on which the native two-qubit gate is calibrated (the coupling
    map; list both directions for a symmetric gate such as CZ)."""

    t1: tuple[float, ...] | None = None
    """Energy relaxation time per qubit [s]; None: no relaxation."""

    t2: tuple[float, ...] | None = None
    """Dephasing time per qubit [s] (``t2 <= 2 t1``); None: no relaxation."""

    single_qubit_error: tuple[float, ...]
    """Average gate infidelity of ``sx`` and ``x`` per qubit [1]."""

    single_qubit_time: tuple[float, ...]
    """Duration of ``sx`` and ``x`` per qubit [s]."""

    two_qubit_error: tuple[float, ...]
    """Average gate infidelity of the native two-qubit gate per edge [1]."""

    two_qubit_time: tuple[float, ...]
    """Duration of the native two-qubit gate per edge [s]."""

    p01: tuple[float, ...]
    """Probability to read 1 for a qubit in |0>, per qubit [1]."""

    p10: tuple[float, ...]
    """Probability to read 0 for a qubit in |1>, per qubit [1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list | tuple):  # lists (e.g. from JSON) become tuples
                items = tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
                object.__setattr__(self, field.name, items)
        size = len(self.single_qubit_error)
        if size < 1:
            raise ValueError(f"{owner}: single_qubit_error is empty; give one value per qubit")
        per_qubit = ["single_qubit_error", "single_qubit_time", "p01", "p10"]
        if (self.t1 is None) != (self.t2 is None):
            raise ValueError(f"{owner}: set both t1 and t2 or neither")
        if self.t1 is not None:
            per_qubit += ["t1", "t2"]
        for name in per_qubit:
            if len(getattr(self, name)) != size:
                raise ValueError(
                    f"{owner}.{name} has {len(getattr(self, name))} entries, expected one per "
                    f"qubit ({size}, the length of single_qubit_error)"
                )
        for name in ("two_qubit_error", "two_qubit_time"):
            if len(getattr(self, name)) != len(self.edges):
                raise ValueError(
                    f"{owner}.{name} has {len(getattr(self, name))} entries, expected one per "
                    f"edge ({len(self.edges)})"
                )
        for a, b in self.edges:
            if not (0 <= a < size and 0 <= b < size and a != b):
                raise ValueError(
                    f"{owner}.edges holds ({a}, {b}); edges join two distinct qubits "
                    f"in 0..{size - 1}"
                )
        slip = "times are in seconds: 84 ns is 84e-9"
        for name in ("single_qubit_time", "two_qubit_time"):
            for value in getattr(self, name):
                check_range(owner, name, value, 0.0, 1e-3, unit="s", hint=slip)
        for name in ("single_qubit_error", "two_qubit_error", "p01", "p10"):
            for value in getattr(self, name):
                check_probability(owner, name, value)
        for q, (p01, p10) in enumerate(zip(self.p01, self.p10, strict=True)):
            if p01 + p10 >= 1.0:
                raise ValueError(f"{owner}: p01 + p10 = {p01 + p10!r} on qubit {q} must be < 1")
        if self.t1 is not None and self.t2 is not None:
            for q, (t1, t2) in enumerate(zip(self.t1, self.t2, strict=True)):
                check_range(owner, "t1", t1, 0.0, 10.0, unit="s", low_inclusive=False, hint=slip)
                check_range(owner, "t2", t2, 0.0, 10.0, unit="s", low_inclusive=False, hint=slip)
                if t2 > 2 * t1:
                    raise ValueError(
                        f"{owner}: t2={t2!r} s exceeds 2*t1={2 * t1!r} s on qubit {q}; lower t2"
                    )

    @property
    def n_qubits(self) -> int:
        """Physical qubits of the device."""
        return len(self.single_qubit_error)
