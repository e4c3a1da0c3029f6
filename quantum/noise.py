"""The gate-noise model of a config, and gate errors converted so that totals match.

A published gate error ``r`` is the average gate infidelity of the whole physical gate,
relaxation during the gate included (IBM's randomized-benchmarking errors). The simulator
applies, after every gate, a depolarising channel and thermal relaxation of each touched
qubit over the gate's duration, so the depolarising parameter must carry only the part of
``r`` that relaxation does not already explain (issue 13, item 4). With Pauli transfer
matrices ``R`` the process fidelity is ``F_pro = tr(R) / d^2``; depolarising with parameter
``p`` scales every non-identity Pauli by ``1 - p``, so the composition has
``tr(R) = 1 + (1 - p)(tr(R_relax) - 1)``; the average gate fidelity is
``F_avg = (d F_pro + 1) / (d + 1)`` (Nielsen, Phys. Lett. A 303, 249 (2002)).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from .calibration import DeviceCalibration
from .config import QuantumConfig
from .sim.channels import GateNoise, build_noise

__all__ = [
    "Times",
    "depolarizing_for_error",
    "gate_infidelity",
    "gate_noise",
    "median_calibration",
    "relaxation_ptm_trace",
]


Times = float | Sequence[float] | None
"""A relaxation time [s]: one for every qubit, one per qubit of the gate, or None."""


def _per_qubit(value: float | Sequence[float], n_qubits: int) -> list[float]:
    if isinstance(value, int | float):
        return [float(value)] * n_qubits
    values = [float(v) for v in value]
    if len(values) != n_qubits:
        raise ValueError(f"{values!r} must hold one time per qubit ({n_qubits})")
    return values


def relaxation_ptm_trace(t1: Times, t2: Times, time: float, n_qubits: int) -> float:
    """Trace of the Pauli transfer matrix of thermal relaxation of ``n_qubits`` qubits over
    ``time`` [s]: ``prod_q (1 + 2 exp(-t/T2_q) + exp(-t/T1_q))`` (``4^n`` without
    relaxation); ``t1``/``t2`` are shared or given per qubit of the gate."""
    if t1 is None or t2 is None:
        return 4.0**n_qubits
    return math.prod(
        1.0 + 2.0 * math.exp(-time / b) + math.exp(-time / a)
        for a, b in zip(_per_qubit(t1, n_qubits), _per_qubit(t2, n_qubits), strict=True)
    )


def depolarizing_for_error(
    error: float,
    n_qubits: int,
    *,
    t1: Times = None,
    t2: Times = None,
    time: float = 0.0,
    owner: str = "depolarizing_for_error",
) -> float:
    """Depolarising parameter ``p`` that, followed by relaxation of every qubit over ``time``,
    gives the average gate infidelity ``error`` [1].

    Without relaxation this is ``p = error * d / (d - 1)``. When relaxation alone exceeds
    ``error`` the parameter is 0 and a ``UserWarning`` names the gap.

    Args:
        error: published average gate infidelity (e.g. 3.9e-3 for Heron's CZ).
        n_qubits: 1 or 2.
        t1: energy relaxation time [s] (None: no relaxation), shared or per qubit.
        t2: dephasing time [s], shared or per qubit.
        time: gate duration [s].
        owner: name used in the warning.
    """
    if n_qubits not in (1, 2):
        raise ValueError(f"n_qubits={n_qubits!r} must be 1 or 2")
    if not 0.0 <= error < 1.0:
        raise ValueError(f"error={error!r} must be an infidelity in [0, 1), e.g. 3.9e-3")
    d = 2**n_qubits
    f_pro = 1.0 - error * (d + 1) / d
    relax = relaxation_ptm_trace(t1, t2, time, n_qubits)
    lam = (d * d * f_pro - 1.0) / (relax - 1.0)
    if lam > 1.0:
        relax_error = (1.0 - relax / d**2) * d / (d + 1)
        warnings.warn(
            f"{owner}: relaxation over {time:g} s alone gives a {n_qubits}-qubit infidelity "
            f"of {relax_error:.3g}, above the gate error {error:.3g}; depolarising set to 0",
            UserWarning,
            stacklevel=2,
        )
        return 0.0
    return 1.0 - lam


def gate_infidelity(
    depolarizing: float,
    n_qubits: int,
    *,
    t1: Times = None,
    t2: Times = None,
    time: float = 0.0,
) -> float:
    """Average gate infidelity [1] of depolarising ``depolarizing`` followed by relaxation of
    every qubit over ``time`` [s] (the inverse of :func:`depolarizing_for_error`)."""
    d = 2**n_qubits
    trace = 1.0 + (1.0 - depolarizing) * (relaxation_ptm_trace(t1, t2, time, n_qubits) - 1.0)
    return (1.0 - trace / d**2) * d / (d + 1)


def gate_noise(config: QuantumConfig) -> GateNoise:
    """The Kraus sets the simulator applies after each gate for ``config``."""
    nc, hw = config.noise, config.hardware
    return build_noise(
        depolarizing_1q=nc.depolarizing_1q,
        depolarizing_2q=nc.depolarizing_2q,
        amplitude_damping=nc.amplitude_damping,
        phase_damping=nc.phase_damping,
        t1=nc.t1,
        t2=nc.t2,
        single_qubit_gate_time=hw.single_qubit_gate_time,
        two_qubit_gate_time=hw.two_qubit_gate_time,
        virtual_rz=hw.virtual_rz,
    )


def _coupling_edges(coupling: str, n_qubits: int) -> tuple[int, list[tuple[int, int]]]:
    """Qubit count and directed edges of IBM's heavy-hex lattice of the smallest odd
    distance that holds ``n_qubits``, or of all-to-all coupling."""
    from qiskit.transpiler import CouplingMap

    if coupling == "heavy_hex":
        distance = 3
        while CouplingMap.from_heavy_hex(distance).size() < n_qubits:
            distance += 2
        cmap = CouplingMap.from_heavy_hex(distance)
    else:
        cmap = CouplingMap.from_full(max(n_qubits, 2))
    return cmap.size(), [(int(a), int(b)) for a, b in cmap.get_edges()]


def median_calibration(config: QuantumConfig, n_qubits: int) -> DeviceCalibration:
    """The config's calibration, or its medians on every qubit and edge of the coupling
    map ``HardwareConfig.coupling`` sized for ``n_qubits``.

    Gate errors are the total infidelities of the config's gates (depolarising plus
    relaxation over the gate, :func:`gate_infidelity`), i.e. the
    published medians the presets were built from.
    """
    hw, nc, m = config.hardware, config.noise, config.measurement
    if hw.calibration is not None:
        if hw.calibration.n_qubits < n_qubits:
            raise ValueError(
                f"HardwareConfig.calibration describes {hw.calibration.n_qubits} qubits, the "
                f"circuit needs {n_qubits}; use a larger device or fewer qubits"
            )
        return hw.calibration
    size, edges = _coupling_edges(hw.coupling, n_qubits)
    relax = {"t1": nc.t1, "t2": nc.t2}
    one = gate_infidelity(nc.depolarizing_1q, 1, time=hw.single_qubit_gate_time, **relax)
    two = gate_infidelity(nc.depolarizing_2q, 2, time=hw.two_qubit_gate_time, **relax)
    return DeviceCalibration(
        edges=tuple(edges),
        t1=None if nc.t1 is None else (nc.t1,) * size,
        t2=None if nc.t2 is None else (nc.t2,) * size,
        single_qubit_error=(min(one, 1.0),) * size,
        single_qubit_time=(hw.single_qubit_gate_time,) * size,
        two_qubit_error=(min(two, 1.0),) * len(edges),
        two_qubit_time=(hw.two_qubit_gate_time,) * len(edges),
        p01=(m.p01,) * size,
        p10=(m.p10,) * size,
    )
