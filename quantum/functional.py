"""Batched statevector and density-matrix simulation in pure torch (facade of
:mod:`physnn.quantum.sim`).

Conventions:

- **Qubit ordering** is qiskit's little-endian one: qubit ``q`` is bit ``q`` of a basis-state
  index, so a flat state ``psi[b, i]`` has the same index as qiskit's ``Statevector``. In the
  tensor view ``[batch, 2, ..., 2]`` qubit ``q`` is dimension ``n - q`` (the last dimension
  is qubit 0), which is what ``psi.reshape(batch, 2**n)`` flattens to that index.
- A k-qubit gate matrix acting on ``qubits = (q_0, ..., q_{k-1})`` is indexed little-endian
  too: row/column ``sum_j b_{q_j} 2^j`` (qiskit's ``Operator`` convention), so ``cx`` on
  ``(control, target)`` is qiskit's ``CXGate``.
- Density matrices are simulated as ``2n``-qubit vectors ``vec(rho)[r * 2^n + c]``: column
  bits are qubits ``0..n-1`` and row bits ``n..2n-1``; a unitary ``U`` on qubit ``q`` acts as
  ``U`` on ``q + n`` and ``conj(U)`` on ``q``, a channel as its superoperator
  ``sum_k K_k (x) conj(K_k)`` on ``(q, q + n)``.

Gates take per-sample parameters: a matrix ``[2, 2]`` is shared by the batch, ``[B, 2, 2]``
holds one per sample (data encoding), and autograd flows through everything.
"""

from __future__ import annotations

from .sim.channels import (
    GateNoise,
    amplitude_damping_kraus,
    apply_channel,
    build_noise,
    compose_kraus,
    depolarizing_kraus,
    phase_damping_kraus,
    superoperator,
    thermal_relaxation_kraus,
)
from .sim.density import density_probabilities, run_density
from .sim.gates import ANGLE_GATES, gate_matrix, zero_state
from .sim.gradients import parameter_shift
from .sim.kernels import apply_gate
from .sim.measure import (
    apply_readout_error,
    expectation_z,
    marginal_probabilities,
    mitigate_readout_error,
    pauli_expectation,
    probabilities,
    sample_counts,
    sample_frequencies,
)
from .sim.memory import SimulationMemoryError, check_memory, forward_bytes, state_bytes
from .sim.statevector import run_statevector
from .sim.trajectories import jump_probability, run_trajectories, sample_trajectories

__all__ = [
    "ANGLE_GATES",
    "GateNoise",
    "SimulationMemoryError",
    "amplitude_damping_kraus",
    "apply_channel",
    "apply_gate",
    "apply_readout_error",
    "build_noise",
    "check_memory",
    "compose_kraus",
    "density_probabilities",
    "depolarizing_kraus",
    "expectation_z",
    "forward_bytes",
    "gate_matrix",
    "jump_probability",
    "marginal_probabilities",
    "mitigate_readout_error",
    "parameter_shift",
    "pauli_expectation",
    "phase_damping_kraus",
    "probabilities",
    "run_density",
    "run_statevector",
    "run_trajectories",
    "sample_counts",
    "sample_frequencies",
    "sample_trajectories",
    "state_bytes",
    "superoperator",
    "thermal_relaxation_kraus",
    "zero_state",
]
