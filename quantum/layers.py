"""Quantum layers: :class:`QuantumCircuitLayer` (alias :data:`VQC`) and :class:`QuantumLinear`.

A layer holds its trainable angles (``weight`` [rad]), the circuit layout and the gate-noise
model built from its config (rebuilt by :meth:`~QuantumCircuitLayer.reconfigure`); the
physics is in :mod:`physnn.quantum.sim`. What happens on a forward pass:

1. inputs are scaled by ``CircuitConfig.input_scale`` (not for amplitude encoding); a
   ``QuantumLinear``'s classical ``pre`` output is first bounded by ``sigmoid``;
2. the memory the simulation needs is estimated and refused above the budget
   (``SimulationConfig.memory_limit`` / ``memory_fraction``);
3. the circuit is simulated exactly (fused statevector); with
   ``HardwareConfig.noise_layout="transpiled"`` as routed to the device with its
   calibration and idle relaxation (:mod:`physnn.quantum.transpiled`, readout errors
   included); otherwise with gate noise after every
   physical gate (state preparation included) by a density matrix
   (``n <= NoiseConfig.max_density_qubits`` with ``method="auto"``) or by quantum-jump
   trajectories (:meth:`~QuantumCircuitLayer.trajectory_count` per sample: one per shot
   in evaluation by default, ``train_trajectories`` while training; identical
   trajectories are simulated once; gradients include the score-function term);
4. readout assignment errors are applied to the outcome probabilities;
5. Pauli expectations or probabilities are read out; with finite ``shots`` (spread over the
   trajectories) the value is a multinomial sample, while the gradient is that of the
   expectation (what the parameter-shift rule estimates on hardware); with
   ``MeasurementConfig.mitigate_readout`` the confusion matrix is inverted first. With
   ``SimulationConfig.gradient="parameter_shift"`` the backward pass instead runs the
   shifted circuits through steps 3-5 with their own noise and shots
   (:func:`~physnn.quantum.sim.gradients.shift_gradient`): the gradient hardware measures.

Inside :func:`physnn.ideal` steps 3-5 are exact and noiseless.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch
from torch import nn

from ..common.config import BackendConfig
from ..common.cost import Cost
from ..common.layer import PhysicalModule, WeightsMode
from ..common.rng import is_ideal
from . import functional as qf
from .circuit import (
    AmplitudeEncoding,
    CircuitSpec,
    build_circuit,
    expand,
    user_circuit,
)
from .config import CircuitConfig, QuantumConfig
from .cost import (
    CircuitResources,
    circuit_resources,
    execution_cost,
    input_shift_count,
    training_circuits,
    weight_shift_count,
)
from .noise import gate_noise
from .observables import measured_observables, with_basis
from .sim.adjoint import ADJOINT_STEPS, run_statevector_adjoint
from .sim.gradients import shift_gradient, weight_lift
from .sim.memory import memory_limit
from .sim.statevector import recorded_states
from .sim.trajectories import Ensemble, sample_ensemble

__all__ = ["VQC", "QuantumCircuitLayer", "QuantumLinear"]


def _check_input(owner: str, x: Any, in_features: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: input must be a real floating tensor, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"{owner}: input has shape {tuple(x.shape)}, expected (*, {in_features}) "
            f"({in_features} features)"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{owner}: input contains NaN or inf")
    return x


class QuantumCircuitLayer(PhysicalModule[QuantumConfig]):
    """A variational quantum circuit: encoder, trainable ansatz and readout.

    Args:
        in_features: input features, encoded by ``config.circuit.encoder``.
        n_qubits: qubits of the circuit (default ``config.circuit.qubits``).
        config: the quantum config (default: ``QuantumConfig()``, exact and noiseless).
        name: qualified name, used to derive the layer's random streams.
        device: torch device.
        dtype: real dtype of the angles (float32 simulates in complex64, float64 in
            complex128).
        observables: a list of observables read instead of ``CircuitConfig.readout``
            (which must stay ``"z"``): Pauli strings such as ``"ZZI"`` (qiskit order: the
            rightmost letter is qubit 0; ``I`` elsewhere selects a subset of wires), lists
            of ``(label, coefficient)`` or qiskit ``SparsePauliOp`` (Hamiltonians); see
            :mod:`physnn.quantum.observables` for how they are measured.

    Shape:
        ``(*, in_features) -> (*, out_features)`` with ``out_features = n_qubits`` for Pauli
        readouts (``out[..., j] = <P_j>``), ``2**n_qubits`` for ``probs`` and the number of
        observables for ``observables`` (``out[..., k] = <H_k>``).

    Example:
        >>> import torch
        >>> from physnn.quantum import QuantumCircuitLayer
        >>> layer = QuantumCircuitLayer(4, 4)
        >>> layer(torch.rand(2, 4)).shape
        torch.Size([2, 4])
    """

    config_type = QuantumConfig
    transfers_weights = False

    def __init__(
        self,
        in_features: int,
        n_qubits: int | None = None,
        *,
        config: QuantumConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
        observables: Sequence[object] | None = None,
    ) -> None:
        super().__init__()
        cfg = self._init_physical(config, name)
        assert isinstance(cfg, QuantumConfig)
        self.in_features = in_features
        self.circuit_inputs = in_features
        self.n_qubits = cfg.circuit.qubits if n_qubits is None else n_qubits
        self._check_sizes()
        self._user_spec = self.__dict__.pop("_user_spec_pending", None)
        self.observables = (
            None if observables is None else measured_observables(observables, self.n_qubits)
        )
        """The observables read out, grouped for measurement (None: the config's readout)."""
        self._rebuild()
        sim = cfg.simulation
        qf.check_memory(self.n_qubits, 1, memory_limit(sim.memory_limit, sim.memory_fraction))
        if self.observables is not None:
            self.readout_features = self.observables.count
        elif self.spec.readout == "probs":
            self.readout_features = 2**self.n_qubits
        else:
            self.readout_features = self.n_qubits
        self.out_features = self.readout_features
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype={dtype} must be a real floating dtype, e.g. torch.float32")
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(self.spec.n_weights, **factory))
        """Trainable rotation angles [rad], in circuit order."""
        self.reset_parameters()

    def _check_sizes(self) -> None:
        for arg, value in (("in_features", self.in_features), ("n_qubits", self.n_qubits)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {arg}={value!r} must be an int >= 1")
        if self.n_qubits > self.config.circuit.qubits:
            raise ValueError(
                f"{type(self).__name__}: n_qubits={self.n_qubits} exceeds the qubit budget "
                f"CircuitConfig.qubits={self.config.circuit.qubits}; raise the budget"
            )

    def reset_parameters(self) -> None:
        """Angles uniform in [-pi, pi) (the layer's ``init`` stream when seeded)."""
        g = self.streams.static("init", self.weight.device)
        with torch.no_grad():
            self.weight.uniform_(-math.pi, math.pi, generator=g)

    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        self._rebuild()

    def _apply_config(self, old: QuantumConfig, *, resample: bool) -> None:
        """Rebuild the circuit layout and the gate-noise model for the new config."""
        self._rebuild()
        if resample:
            self.resample_noise()

    def _normalise_config(self, config: QuantumConfig) -> QuantumConfig:
        """The config the layer runs with (``QuantumLinear`` plans its circuit here)."""
        return config

    def _rebuild(self) -> None:
        """Derive the circuit, its noise model and trajectory count from the config."""
        cfg = self._normalise_config(self.config)
        user = self.__dict__.get("_user_spec")
        spec = (
            user
            if user is not None
            else build_circuit(cfg.circuit, self.n_qubits, self.circuit_inputs)
        )
        weight = self._parameters.get("weight")
        if weight is not None and spec.n_weights != weight.numel():
            raise ValueError(
                f"{type(self).__name__}: the circuit of {cfg.describe()} has {spec.n_weights} "
                f"angles, this layer has {weight.numel()}; reconfigure changes noise, shots, "
                "hardware and simulation, not the ansatz layout (qubits, ansatz, layers): "
                "build a new layer for another circuit"
            )
        if self.__dict__.get("observables") is not None and spec.readout != "z":
            raise ValueError(
                f"{type(self).__name__}: observables replace the readout, but "
                f"CircuitConfig.readout={spec.readout!r} adds its own basis change; leave "
                "readout='z' (an X or Y readout is the observables 'X'/'Y' on each wire)"
            )
        self._physnn_config = cfg
        self.spec = spec
        self.gate_noise = gate_noise(cfg)
        """Kraus sets applied after each gate (rebuilt by :meth:`reconfigure`)."""
        self.jump_probability = (
            qf.jump_probability(spec, self.gate_noise) if cfg.noise.active else 0.0
        )
        if cfg.noise.active and cfg.hardware.noise_layout == "transpiled":
            from .transpiled import transpiled_program

            self.jump_probability = transpiled_program(spec, cfg).jump_probability
        """Upper bound of the probability of at least one noise jump per circuit [1]."""

    @classmethod
    def from_circuit(
        cls,
        build: Any,
        n_qubits: int,
        n_features: int,
        *,
        readout: str | Sequence[object] = "z",
        config: QuantumConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> QuantumCircuitLayer:
        """A layer from a user-written circuit ``build(builder)`` (see
        :class:`~physnn.quantum.circuit.CircuitBuilder`), with the config's simulator,
        noise, shots, cost and qiskit export; ``readout`` is ``"z"``, ``"probs"`` or a list
        of observables (see the class's ``observables``).

        Example:
            >>> def circuit(b):
            ...     b.ry(b.input(0), 0)
            ...     b.cx(0, 1)
            ...     b.ry(b.weight(), 1)
            >>> QuantumCircuitLayer.from_circuit(circuit, 2, 1).weight.shape
            torch.Size([1])
        """
        observables = None if isinstance(readout, str) else readout
        basis = readout if isinstance(readout, str) else "z"
        spec = user_circuit(build, n_qubits, n_features, basis)
        cfg = config if config is not None else QuantumConfig()
        cls.check_config(cfg)
        cfg = cfg.replace(circuit=cfg.circuit.replace(qubits=max(cfg.circuit.qubits, n_qubits)))
        layer = cls.__new__(cls)
        layer.__dict__["_user_spec_pending"] = spec
        QuantumCircuitLayer.__init__(
            layer,
            n_features,
            n_qubits,
            config=cfg,
            name=name,
            device=device,
            dtype=dtype,
            observables=observables,
        )
        return layer

    # -- simulation -------------------------------------------------------------------------

    def _noisy(self) -> bool:
        return self.config.noise.active and not is_ideal()

    def _uses_density(self) -> bool:
        noise = self.config.noise
        if noise.method == "auto":
            return self.n_qubits <= noise.max_density_qubits
        return noise.method == "density_matrix"

    def trajectory_count(self) -> int:
        """Noise trajectories ``T`` averaged per sample [1].

        ``NoiseConfig.train_trajectories`` while training with gradients, else
        ``NoiseConfig.trajectories``; by default one per shot (``MeasurementConfig.shots``,
        or the reference ``HardwareConfig.shots_for_exact`` without shots), at most
        ``NoiseConfig.max_trajectories`` when set, and never more than the shots. With one
        per shot the measured counts are exactly a multinomial sample of the density
        matrix's probabilities, and without shots the expectation's extra variance
        ``Var_traj / T`` is at most the binomial shot noise ``(1 - <Z>^2) / T`` of ``T``
        shots (law of total variance); see :meth:`Ensemble.shot_counts
        <physnn.quantum.sim.trajectories.Ensemble.shot_counts>` for fewer.
        """
        cfg = self.config
        shots = cfg.measurement.shots
        if self.training and torch.is_grad_enabled():
            count = cfg.noise.train_trajectories
        elif cfg.noise.trajectories is not None:
            count = cfg.noise.trajectories
        else:
            count = cfg.hardware.shots_for_exact if shots is None else shots
            if cfg.noise.max_trajectories is not None:
                count = min(count, cfg.noise.max_trajectories)
        return max(1, min(count, shots) if shots is not None else count)

    def trajectory_rows(self, count: int) -> int:
        """Bound of the mean number of distinct states (statevector simulations) that
        ``count`` trajectories of one sample take [1]: the trajectories without a jump
        share one, ``min(count, 1 + ceil(count * P_jump))`` with ``P_jump`` the bound
        :attr:`jump_probability`."""
        return min(count, 1 + math.ceil(count * self.jump_probability))

    def _prepare_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Circuit inputs in the angles' dtype, times ``input_scale`` unless amplitude-encoded."""
        x = x.to(self.weight.dtype)
        if not any(isinstance(op, AmplitudeEncoding) for op in self.spec.ops):
            x = x * self.config.circuit.input_scale
        return x

    def _check_memory(
        self, batch: int, *, density: bool, device: torch.device, trajectories: int = 1
    ) -> None:
        sim = self.config.simulation
        grad = torch.is_grad_enabled()
        steps = 0
        if grad:
            gates = sum(len(expand(op)) for op in self.spec.ops) + 1
            if density or self._noisy():
                steps = 3 * gates
            else:
                adjoint = self._adjoint(batch, device)
                steps = ADJOINT_STEPS if adjoint else recorded_states(self.spec, sim.fuse_qubits)
        qf.check_memory(
            self.n_qubits,
            batch,
            memory_limit(sim.memory_limit, sim.memory_fraction, device),
            density=density,
            dtype=self.weight.dtype,
            steps=steps,
            trajectories=trajectories,
        )

    def _adjoint(self, batch: int, device: torch.device) -> bool:
        """Whether the exact path is differentiated by the adjoint method: as configured
        (``SimulationConfig.gradient``), with ``"auto"`` when the recorded simulation of
        ``batch`` samples would exceed the memory budget."""
        sim = self.config.simulation
        if sim.gradient != "auto":
            return sim.gradient == "adjoint"
        if not torch.is_grad_enabled():
            return False
        steps = recorded_states(self.spec, sim.fuse_qubits)
        need = qf.forward_bytes(self.n_qubits, batch, dtype=self.weight.dtype, steps=steps)
        return need > memory_limit(sim.memory_limit, sim.memory_fraction, device)

    def _statevector(
        self, x: torch.Tensor, spec: CircuitSpec, weight: torch.Tensor
    ) -> torch.Tensor:
        """Exact final states ``[B, 2^n]`` of ``spec`` for prepared inputs ``x``."""
        adjoint = self._adjoint(x.shape[0], x.device)
        run = run_statevector_adjoint if adjoint else qf.run_statevector
        fuse = self.config.simulation.fuse_qubits
        return run(spec, x, weight, dtype=weight.dtype, fuse=fuse)

    def _simulate(self, x: torch.Tensor) -> Ensemble:
        """Outcome probabilities of the layer's circuit for circuit inputs ``x`` (see
        :meth:`_run`)."""
        return self._run(self._prepare_inputs(x), self.spec, self.weight)

    def _run(self, x: torch.Tensor, spec: CircuitSpec, weight: torch.Tensor) -> Ensemble:
        """Outcome probabilities ``[R, 2^n]`` of ``spec`` with angles ``weight`` for prepared
        inputs ``x`` (the layer's own circuit, or a shifted copy of it), readout error
        included unless ideal: one row per sample for exact and density-matrix
        simulation, else the distinct ones of ``trajectory_count()`` trajectories per sample
        with their counts.

        Trajectory probabilities carry the score-function surrogate: their values are the
        trajectories' own, their gradient averages to the exact one.
        """
        cfg = self.config
        dtype = weight.dtype
        batch = x.shape[0]
        if cfg.hardware.noise_layout == "transpiled" and not is_ideal():
            from .transpiled import run_transpiled, sample_transpiled, uses_density

            if uses_density(spec, cfg):
                return Ensemble.exact(run_transpiled(spec, x, weight, cfg, dtype=dtype))
            ensemble = sample_transpiled(
                spec,
                x,
                weight,
                cfg,
                trajectories=self.trajectory_count(),
                dtype=dtype,
                generator=self.streams.dynamic("noise", x.device),
            )
            return ensemble.surrogate()
        if not self._noisy():
            self._check_memory(batch, density=False, device=x.device)
            outcomes = Ensemble.exact(qf.probabilities(self._statevector(x, spec, weight)))
        elif self._uses_density():
            self._check_memory(batch, density=True, device=x.device)
            probs = qf.run_density(spec, x, weight, self.gate_noise, dtype=dtype)
            outcomes = Ensemble.exact(probs)
        else:
            count = self.trajectory_count()
            rows = self.trajectory_rows(count)
            self._check_memory(batch, density=False, device=x.device, trajectories=rows)
            ensemble = sample_ensemble(
                spec,
                x,
                weight,
                self.gate_noise,
                trajectories=count,
                dtype=dtype,
                generator=self.streams.dynamic("noise", x.device),
            )
            outcomes = ensemble.replace(qf.probabilities(ensemble.values)).surrogate()
        m = cfg.measurement
        if not is_ideal() and (m.p01 > 0 or m.p10 > 0):
            outcomes = dataclasses.replace(outcomes, readout=(m.p01, m.p10))
        return outcomes

    def outcome_probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of the ``2^n`` measurement outcomes ``[B, 2^n]`` for circuit inputs
        ``x`` ``[B, in_features]`` (gate noise and readout error included unless ideal;
        with trajectories, the average over ``trajectory_count()`` of them)."""
        return self._simulate(x).probabilities()

    def expectation(
        self, x: torch.Tensor, observable: object, *, variance: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``<H>`` ``[B]`` (and ``Var H`` with ``variance=True``) of an observable after the
        circuit, for circuit inputs ``x`` ``[B, circuit_inputs]``.

        Args:
            x: circuit inputs (a ``QuantumLinear``'s after its ``pre`` projection).
            observable: a Pauli string (``"ZZI"``, qiskit order: the rightmost letter is
                qubit 0; ``I`` elsewhere selects a subset of wires), a list of
                ``(label, coefficient)`` or a qiskit ``SparsePauliOp``.
            variance: also return ``<H^2> - <H>^2``.

        One state simulation per input whatever the number of terms. Exact expectations
        (no shots); with gate noise the average over ``trajectory_count()`` trajectories
        (the density-matrix path keeps no state: use ``NoiseConfig.method="trajectories"``).
        """
        x = _check_input(type(self).__name__, x, self.circuit_inputs).reshape(
            -1, self.circuit_inputs
        )
        dtype = self.weight.dtype
        inputs = self._prepare_inputs(x)
        if not self._noisy():
            psi = self._statevector(inputs, self.spec, self.weight)
            mean, var = qf.pauli_expectation(psi, self.n_qubits, observable)
        elif self.config.hardware.noise_layout == "transpiled":
            raise NotImplementedError(
                f"{type(self).__name__}.expectation: the transpiled-noise path keeps only "
                "outcome probabilities; use HardwareConfig.noise_layout='all_to_all' with "
                "NoiseConfig.method='trajectories' for observables"
            )
        elif self._uses_density():
            raise NotImplementedError(
                f"{type(self).__name__}.expectation: the density-matrix path keeps only outcome "
                "probabilities; set NoiseConfig.method='trajectories' for observables"
            )
        else:
            ensemble = sample_ensemble(
                self.spec,
                inputs,
                self.weight,
                self.gate_noise,
                trajectories=self.trajectory_count(),
                dtype=dtype,
                generator=self.streams.dynamic("noise", x.device),
            )
            mean, var = qf.pauli_expectation(ensemble.values, self.n_qubits, observable)
            moments = ensemble.replace(torch.stack([mean, var + mean.square()], -1))
            mean, second = moments.surrogate().mean().unbind(-1)
            var = second - mean.square()
        return (mean, var) if variance else mean

    def _readout(self, probs: torch.Tensor) -> torch.Tensor:
        """The configured readout from outcome probabilities; with observables the
        probabilities themselves (each group's parities are read from them)."""
        if self.observables is not None:
            return probs
        if self.spec.readout == "probs":
            k = min(self.n_qubits, max(1, math.ceil(math.log2(self.readout_features))))
            return qf.marginal_probabilities(probs, self.n_qubits, k)[:, : self.readout_features]
        return qf.expectation_z(probs, self.n_qubits)[:, : self.readout_features]

    def _mitigate(self, probs: torch.Tensor) -> torch.Tensor:
        m = self.config.measurement
        if not m.mitigate_readout or is_ideal():
            return probs
        if self.config.hardware.noise_layout == "transpiled":
            from .transpiled import mitigate_transpiled

            return mitigate_transpiled(probs, self.spec, self.config)
        return qf.mitigate_readout_error(probs, self.n_qubits, m.p01, m.p10)

    def _measure(self, x: torch.Tensor) -> torch.Tensor:
        """The readout ``[B, readout_features]`` for (unscaled) circuit inputs ``x``,
        differentiated as ``SimulationConfig.gradient`` says."""
        if x.shape[0] == 0:
            return x.new_zeros(0, self.readout_features, dtype=self.weight.dtype)
        x = self._prepare_inputs(x)
        estimate = self._estimate if self.observables is None else self._observe
        if self.config.simulation.gradient == "parameter_shift":
            return shift_gradient(estimate, self.spec, x, self.weight)
        return estimate(self.spec, x, self.weight)

    def _observe(self, spec: CircuitSpec, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``<H_k>`` ``[B, n_observables]`` of ``spec`` for prepared inputs ``x``.

        Exact, noiseless and without shots: ``<psi|H_k|psi>`` from one state simulation per
        input whatever the number of observables. Otherwise as hardware measures them: one
        circuit per qubit-wise commuting group (its basis change appended), simulated with
        its gate noise and readout error and measured with its own shots; each term is a
        parity of the group's (mitigated) outcomes.
        """
        obs = self.observables
        assert obs is not None
        m = self.config.measurement
        exact = not self._noisy() and self.config.hardware.noise_layout != "transpiled"
        if is_ideal() or (exact and m.shots is None and m.p01 == 0 and m.p10 == 0):
            self._check_memory(x.shape[0], density=False, device=x.device)
            psi = self._statevector(x, spec, weight)
            terms = [qf.pauli_expectation(psi, self.n_qubits, label)[0] for label in obs.labels]
            stacked = torch.stack(terms, 1) if terms else psi.real.new_zeros(x.shape[0], 0)
            return obs.combine(stacked)
        parts = [
            self._estimate(with_basis(spec, basis), x, weight)
            @ obs.parities(g, weight.dtype, weight.device)
            for g, basis in enumerate(obs.bases)
        ]
        return obs.combine(torch.cat(parts, 1) if parts else x.new_zeros(x.shape[0], 0))

    def _estimate(self, spec: CircuitSpec, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The readout of ``spec`` for prepared inputs ``x`` as measured: exact values, or
        with finite shots a sample of them (the gradient then flows through the exact
        values)."""
        outcomes = self._run(x, spec, weight)
        values = self._readout(self._mitigate(outcomes.probabilities()))
        shots = self.config.measurement.shots
        if shots is not None and not is_ideal():
            gen = self.streams.dynamic("shots", outcomes.values.device)
            frequencies = outcomes.shot_counts(shots, gen) / shots
            estimate = self._readout(self._mitigate(frequencies.to(values.dtype)))
            values = values + (estimate - values).detach()
        return values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_input(type(self).__name__, x, self.in_features)
        lead = x.shape[:-1]
        out = self._measure(x.reshape(-1, self.in_features))
        return out.reshape(*lead, out.shape[-1])

    # -- contract ---------------------------------------------------------------------------

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> QuantumCircuitLayer:
        """A circuit with ``module.out_features`` qubits read out in Z (angles untrained)."""
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        return cls(
            module.in_features,
            module.out_features,
            config=cast("QuantumConfig | None", config),  # checked above
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Linear:
        """Gate angles are not torch weights: raises :class:`WeightsNotTransferredError`
        unless ``weights="shape"``, which warns and returns an untrained ``nn.Linear`` of
        the same shape."""
        self._no_torch_weights(weights, "nn.Linear")
        return nn.Linear(
            self.in_features,
            self.out_features,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], self.out_features)

    def circuit_resources(self) -> CircuitResources:
        """Qubits, gate counts, depth and ASAP duration [s] of one circuit execution."""
        return circuit_resources(self.spec, self.config)

    def _classical_macs(self) -> int:
        return 0

    def classical_macs(self, input_shape: tuple[int, ...]) -> int:
        """MACs of the classical projections, scale and bias on a batch of ``input_shape``."""
        batch = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
        return batch * self._classical_macs()

    def measured_circuits(self) -> list[CircuitSpec]:
        """The circuits hardware runs per input: the layer's, or with ``observables`` one per
        qubit-wise commuting group, its basis change appended."""
        if self.observables is None:
            return [self.spec]
        return [with_basis(self.spec, basis) for basis in self.observables.bases]

    def _executions(
        self,
        circuits: int,
        *,
        macs: int,
        classical_macs: int,
        shots: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> Cost:
        """Cost of ``circuits`` executions of each of :meth:`measured_circuits`."""
        total = Cost()
        for k, spec in enumerate(self.measured_circuits()):
            total = total + execution_cost(
                self.config,
                circuit_resources(spec, self.config),
                circuits=circuits,
                macs=macs if k == 0 else 0,
                classical_macs=classical_macs if k == 0 else 0,
                shots=shots,
                notes=notes,
            )
        return total

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Hardware cost of one forward pass on a batch shaped ``input_shape``: one circuit
        per sample, or one per sample and group of ``observables`` (see
        :func:`~physnn.quantum.cost.execution_cost`)."""
        batch = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
        return self._executions(
            batch,
            macs=batch * self.in_features * self.out_features,
            classical_macs=self.classical_macs(input_shape),
        )

    def training_cost(
        self,
        input_shape: tuple[int, ...],
        *,
        input_gradients: bool | None = None,
        gradient_shots: int | None = None,
    ) -> Cost:
        """Hardware cost of one parameter-shift training step on a batch of ``input_shape``.

        Hardware has no backpropagation: per sample the step runs the forward circuit, two
        shifted circuits per angle and, when the gradient must reach what feeds the circuit
        (a classical ``pre`` or a quantum layer below), two per input-dependent gate
        (:func:`~physnn.quantum.cost.training_circuits`): the circuits a backward pass with
        ``SimulationConfig.gradient="parameter_shift"`` simulates, each once per group of
        ``observables``.

        Args:
            input_shape: batch shape ``(*, in_features)``.
            input_gradients: count the input-gradient circuits (default: when the layer
                has a classical ``pre``; pass True for a layer stacked on trainable ones).
            gradient_shots: shots per shifted circuit (default the forward's); see
                :func:`~physnn.quantum.cost.gradient_shots` for the shots a gradient of a
                given size needs.

        Raises:
            ValueError: for input gradients through amplitude encoding.
        """
        batch = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
        if input_gradients is None:
            input_gradients = getattr(self, "pre", None) is not None
        shifts = input_shift_count(self.spec) if input_gradients else 0
        forward = self.cost(input_shape)
        gradient = self._executions(
            batch * (training_circuits(weight_shift_count(self.spec), shifts) - 1),
            macs=0,
            classical_macs=2 * batch * self._classical_macs(),
            shots=gradient_shots,
            notes=(
                f"quantum: parameter shift, 2 circuits per weight-dependent gate "
                f"({weight_shift_count(self.spec)}) and per input-dependent gate ({shifts})",
            ),
        )
        return forward + gradient

    def parameter_shift_jacobian(
        self, x: torch.Tensor, *, shots: int | None = None
    ) -> torch.Tensor:
        """Jacobian of the noiseless circuit readout ``[B, readout, n_weights]`` with respect
        to the angles by the parameter-shift rule (the gradient hardware would estimate).

        Args:
            x: circuit inputs ``[B, circuit_inputs]``.
            shots: measure every shifted circuit ``shots`` times (the layer's ``shots``
                stream), as hardware does; None uses exact expectations. Each entry is then
                unbiased with variance at most ``1 / (2 shots)`` for ``<Z>`` readouts.

        Each weight-dependent gate is shifted on its own and the columns are summed with
        the gates' scales (chain rule), so weights shared by several gates or scaled (user
        and imported circuits) are exact too
        (:func:`~physnn.quantum.circuit.gate_level_weights`).
        """
        if self.observables is not None:
            raise NotImplementedError(
                f"{type(self).__name__}.parameter_shift_jacobian reads the config's readout; "
                "for observables use SimulationConfig(gradient='parameter_shift') and "
                "torch.autograd (the backward pass is the parameter-shift rule)"
            )
        x = _check_input(type(self).__name__, x, self.circuit_inputs)
        x = self._prepare_inputs(x.reshape(-1, self.circuit_inputs))
        fuse = self.config.simulation.fuse_qubits
        gen = self.streams.dynamic("shots", x.device) if shots is not None else None
        weight = self.weight.detach()
        spec, lift = weight_lift(self.spec, weight)

        def readout(angles: torch.Tensor) -> torch.Tensor:
            psi = qf.run_statevector(spec, x, angles, dtype=angles.dtype, fuse=fuse)
            probs = qf.probabilities(psi)
            if shots is not None:
                probs = qf.sample_frequencies(probs, shots, gen)
            return self._readout(probs)

        if not lift.shape[0]:
            return readout(lift @ weight)[..., None] * weight[:0]
        return qf.parameter_shift(readout, lift @ weight) @ lift

    # -- interop ----------------------------------------------------------------------------

    def to_qiskit(self, x: torch.Tensor | None = None) -> Any:
        """The ``qiskit.QuantumCircuit`` for one input sample (see
        :func:`physnn.quantum.qiskit.to_qiskit`)."""
        from .qiskit import to_qiskit

        return to_qiskit(self, x)

    def quantum_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters that are gate angles on the quantum processor."""
        yield self.weight

    def classical_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters computed classically (pre/post-processing)."""
        quantum = {id(p) for p in self.quantum_parameters()}
        yield from (p for p in self.parameters() if id(p) not in quantum)

    def parameter_counts(self) -> dict[str, int]:
        """``{"quantum": ..., "classical": ...}`` trainable parameter counts."""
        return {
            "quantum": sum(p.numel() for p in self.quantum_parameters()),
            "classical": sum(p.numel() for p in self.classical_parameters()),
        }

    def extra_repr(self) -> str:
        c = self.config.circuit
        return (
            f"in_features={self.in_features}, n_qubits={self.n_qubits}, "
            f"out_features={self.out_features}, encoder={self.spec_encoder}, "
            f"ansatz={c.ansatz}, layers={c.layers}, readout={self.spec.readout}, "
            f"{self._physical_repr()}"
        )

    @property
    def spec_encoder(self) -> str:
        """The encoder actually used by the circuit."""
        first = self.spec.ops[0] if self.spec.ops else None
        return "amplitude" if isinstance(first, AmplitudeEncoding) else self.config.circuit.encoder


VQC = QuantumCircuitLayer
"""Alias: a variational quantum classifier/circuit layer."""


class QuantumLinear(QuantumCircuitLayer):
    """Drop-in replacement of ``nn.Linear``: encoder, ansatz and readout sized to the shape.

    Sizing against the qubit budget ``q = config.circuit.qubits``:

    - input: the configured encoder when ``in_features`` fits it on ``q`` qubits; otherwise
      amplitude encoding on ``ceil(log2(in_features))`` qubits (``overflow="amplitude"``)
      or a classical ``pre`` projection to ``q`` features (``overflow="projection"``);
    - output: Pauli expectations of qubits ``0..out_features-1`` when ``out_features <= q``;
      otherwise the probabilities of the first ``out_features`` outcomes of
      ``ceil(log2(out_features))`` qubits (``"amplitude"``) or a classical ``post``
      projection from ``q`` expectations (``"projection"``);
    - then a classical per-output ``output_scale`` and ``bias``: ``y = scale * r + bias``.

    :meth:`parameter_counts` separates classical from quantum parameters so no comparison
    mistakes classical capacity for quantum.

    Args:
        in_features: input width.
        out_features: output width.
        bias: learn a classical additive bias.
        config: quantum config (default ``QuantumConfig()``).
        name: qualified name (random streams).
        device: torch device.
        dtype: real dtype of the parameters.

    Shape:
        ``(*, in_features) -> (*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: QuantumConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        cfg = config if config is not None else QuantumConfig()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"QuantumLinear: {arg}={value!r} must be an int >= 1")
        circuit, n_qubits, n_inputs, pre, post = _plan(cfg.circuit, in_features, out_features)
        super().__init__(
            n_inputs,
            n_qubits,
            config=cfg.replace(circuit=circuit),
            name=name,
            device=device,
            dtype=dtype,
        )
        self.in_features = in_features
        self.out_features = out_features
        self._linear_widths = (in_features, out_features)
        factory = {"device": device, "dtype": dtype}
        self.pre = nn.Linear(in_features, n_inputs, **factory) if pre else None
        self.readout_features = n_qubits if post else out_features
        self.post = nn.Linear(n_qubits, out_features, **factory) if post else None
        self.output_scale = nn.Parameter(torch.empty(out_features, **factory))
        """Classical per-output scale of the readout."""
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        """Classical per-output bias."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Angles uniform in [-pi, pi); classical maps like ``nn.Linear``; scale 1 (Pauli) or
        the outcome count (probabilities); bias 0."""
        super().reset_parameters()
        if not hasattr(self, "output_scale"):
            return
        g = self.streams.static("init_classical", self.weight.device)
        with torch.no_grad():
            for lin in (self.pre, self.post):
                if lin is not None:
                    bound = 1 / math.sqrt(lin.in_features)
                    lin.weight.uniform_(-bound, bound, generator=g)
                    assert lin.bias is not None
                    lin.bias.uniform_(-bound, bound, generator=g)
            probs = self.spec.readout == "probs" and self.post is None
            k = max(1, math.ceil(math.log2(self.readout_features)))
            self.output_scale.fill_(float(2**k) if probs else 1.0)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_input(type(self).__name__, x, self.in_features)
        lead = x.shape[:-1]
        h = x.reshape(-1, self.in_features)
        if self.pre is not None:
            h = self.pre(h)
            if self.config.circuit.squash == "sigmoid":
                h = torch.sigmoid(h)
        r = self._measure(h)
        if self.post is not None:
            r = self.post(r)
        y = r * self.output_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> QuantumLinear:
        """A quantum layer of ``module``'s shape; its parameters must be trained."""
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        return cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            config=cast("QuantumConfig | None", config),  # checked above
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Linear:
        """Raises :class:`WeightsNotTransferredError` unless ``weights="shape"`` (then an
        untrained ``nn.Linear`` of the same shape, with a warning)."""
        self._no_torch_weights(weights, "nn.Linear")
        return nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )

    def _normalise_config(self, config: QuantumConfig) -> QuantumConfig:
        """Plan the circuit of ``config`` for this layer's widths; the plan must keep the
        layer's qubits, circuit inputs and classical maps."""
        widths = self.__dict__.get("_linear_widths")
        if widths is None:
            return config
        circuit, n_qubits, n_inputs, pre, post = _plan(config.circuit, *widths)
        have = (self.n_qubits, self.circuit_inputs, self.pre is not None, self.post is not None)
        if (n_qubits, n_inputs, pre, post) != have:
            raise ValueError(
                f"QuantumLinear: {config.describe()} plans {n_qubits} qubits with "
                f"{n_inputs} circuit inputs (pre={pre}, post={post}) for "
                f"{widths[0]}->{widths[1]}, this layer has {have[0]} qubits, {have[1]} inputs "
                f"(pre={have[2]}, post={have[3]}); keep CircuitConfig.qubits/overflow/encoder "
                "when reconfiguring, or convert the torch model again"
            )
        return config.replace(circuit=circuit)

    def param_groups(self, lr: float, classical_lr: float | None = None) -> list[dict[str, Any]]:
        """Optimizer parameter groups: gate angles at ``lr``, classical maps, scale and bias
        at ``classical_lr`` (default ``lr``); angles are O(1) rad while classical weights
        are O(1/sqrt(width)), so they usually want different rates (issue 13, item 6)."""
        return [
            {"params": list(self.quantum_parameters()), "lr": lr},
            {
                "params": list(self.classical_parameters()),
                "lr": lr if classical_lr is None else classical_lr,
            },
        ]

    def _classical_macs(self) -> int:
        macs = 2 * self.out_features
        for lin in (self.pre, self.post):
            if lin is not None:
                macs += lin.in_features * lin.out_features
        return macs

    def extra_repr(self) -> str:
        counts = self.parameter_counts()
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, n_qubits={self.n_qubits}, "
            f"encoder={self.spec_encoder}, readout={self.spec.readout}, "
            f"pre={'classical' if self.pre is not None else 'none'}, "
            f"post={'classical' if self.post is not None else 'none'}, "
            f"quantum_params={counts['quantum']}, classical_params={counts['classical']}, "
            f"{self._physical_repr()}"
        )


def _plan(
    circuit: CircuitConfig, in_features: int, out_features: int
) -> tuple[CircuitConfig, int, int, bool, bool]:
    """Choose encoder, readout and qubit count of a ``QuantumLinear``.

    Returns:
        ``(circuit config, n_qubits, circuit inputs, classical pre?, classical post?)``.
    """
    budget = circuit.qubits
    encoder, readout = circuit.encoder, circuit.readout
    amplitude_ok = circuit.overflow == "amplitude"

    def log2ceil(v: int) -> int:
        return max(1, math.ceil(math.log2(v)))

    pre = False
    n_inputs = in_features
    if encoder == "amplitude":
        n_in = log2ceil(in_features)
    elif in_features <= budget:
        n_in = in_features
    elif amplitude_ok and log2ceil(in_features) <= budget:
        encoder, n_in = "amplitude", log2ceil(in_features)
    else:
        pre, n_inputs, n_in = True, budget, budget
    if encoder == "amplitude" and n_in > budget:
        pre, n_inputs, n_in = True, 2**budget, budget
    post = False
    if readout == "probs":
        n_out = log2ceil(out_features)
    elif out_features <= budget:
        n_out = out_features
    elif amplitude_ok and log2ceil(out_features) <= budget:
        readout, n_out = "probs", log2ceil(out_features)
    else:
        post, n_out = True, budget
    if readout == "probs" and n_out > budget:
        readout, post, n_out = "z", True, budget
    n_qubits = max(n_in, n_out)
    return circuit.replace(encoder=encoder, readout=readout), n_qubits, n_inputs, pre, post
