"""Hardware gradients: the parameter-shift rule, as a Jacobian helper and as the backward pass
of a layer (:func:`shift_gradient`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch

from ..circuit import AmplitudeEncoding, CircuitSpec, Gate, Op, expand, gate_level_weights

SHIFT = math.pi / 2
"""Shift of the two-term rule [rad]: ``d f / d t = [f(t + pi/2) - f(t - pi/2)] / 2``."""

Estimate = Callable[[CircuitSpec, torch.Tensor, torch.Tensor], torch.Tensor]
"""``estimate(spec, x, weights) -> [B, R]``: the readout of ``spec`` for inputs ``x`` and
angles ``weights``, measured as hardware measures it (noise, shots)."""


def parameter_shift(
    fn: Callable[[torch.Tensor], torch.Tensor], weights: torch.Tensor, *, shift: float = SHIFT
) -> torch.Tensor:
    """Jacobian of ``fn`` with respect to ``weights`` by the parameter-shift rule.

    ``d f / d w_k = [f(w + s e_k) - f(w - s e_k)] / (2 sin s)``, exact for circuits in which
    every weight is the angle of one gate ``exp(-i w P / 2)`` with a Pauli ``P`` (Mitarai et
    al., PRA 98, 032309 (2018); Schuld et al., PRA 99, 032331 (2019)): what hardware runs.

    Returns:
        ``[*fn(weights).shape, n_weights]``.
    """
    if not 0 < abs(shift) < math.pi:
        raise ValueError(f"shift={shift!r} must be in (0, pi) in magnitude, e.g. pi/2")
    cols = []
    with torch.no_grad():
        for k in range(weights.numel()):
            step = torch.zeros_like(weights).flatten()
            step[k] = shift
            step = step.view_as(weights)
            cols.append((fn(weights + step) - fn(weights - step)) / (2 * math.sin(shift)))
    return torch.stack(cols, -1)


def weight_lift(spec: CircuitSpec, weights: torch.Tensor) -> tuple[CircuitSpec, torch.Tensor]:
    """``spec`` with one weight per weight-dependent gate
    (:func:`~physnn.quantum.circuit.gate_level_weights`) and the matrix ``lift``
    ``[gates, n_weights]`` of the chain rule: gate angles ``= lift @ weights``."""
    lifted, sources = gate_level_weights(spec)
    lift = torch.zeros(len(sources), weights.numel(), dtype=weights.dtype, device=weights.device)
    for row, (index, scale) in enumerate(sources):
        lift[row, index] = scale
    return lifted, lift


@dataclasses.dataclass(frozen=True)
class InputGate:
    """Where the angle of an input-dependent gate comes from: ``scale * x[index]``
    (``source="feature"``) or ``scale * (pi - x[i]) (pi - x[j])`` (``"pair"``)."""

    source: str
    index: int | tuple[int, int]
    scale: float


def gate_level_inputs(spec: CircuitSpec) -> tuple[CircuitSpec, list[InputGate]]:
    """``spec`` with one circuit input per input-dependent gate, and where each comes from.

    Gate ``j`` of the result reads column ``j`` of :func:`input_angles` with scale 1 (ZZ
    feature maps are expanded into their CNOT-phase-CNOT gates, the gates the noisy
    simulators apply), so shifting one column shifts one rotation: the two-term rule then
    gives ``dF/dtheta_j`` and the chain rule the input gradient.

    Raises:
        ValueError: with amplitude encoding, whose state preparation has no parameter-shift
            rule for its inputs.
    """
    ops: list[Op] = []
    sources: list[InputGate] = []
    for op in spec.ops:
        if isinstance(op, AmplitudeEncoding):
            raise ValueError(
                "amplitude encoding has no parameter-shift rule for its inputs, so "
                "SimulationConfig.gradient='parameter_shift' cannot give the gradient that a "
                "classical pre-layer or a layer below needs; detach the inputs, use an angle "
                "encoder (CircuitConfig.overflow='projection') or gradient='auto'"
            )
        for gate in expand(op):
            if gate.source in ("feature", "pair"):
                ops.append(Gate(gate.name, gate.qubits, "feature", len(sources), 1.0))
                sources.append(InputGate(gate.source, gate.index, gate.scale))
            else:
                ops.append(gate)
    lifted = dataclasses.replace(
        spec, ops=tuple(ops), n_features=len(sources), constant_feature=None
    )
    return lifted, sources


def input_angles(sources: list[InputGate], x: torch.Tensor) -> torch.Tensor:
    """Gate angles ``[B, len(sources)]`` [rad] of the input-dependent gates for circuit
    inputs ``x`` ``[B, n_features]`` (differentiable: autograd gives the chain rule)."""
    cols = []
    for src in sources:
        if src.source == "pair":
            assert isinstance(src.index, tuple)
            i, j = src.index
            cols.append(src.scale * (math.pi - x[:, i]) * (math.pi - x[:, j]))
        else:
            assert isinstance(src.index, int)
            cols.append(src.scale * x[:, src.index])
    return torch.stack(cols, 1) if cols else x.new_zeros(x.shape[0], 0)


class _ShiftRule(torch.autograd.Function):
    """Value: one hardware estimate; backward: the parameter-shift rule with every shifted
    circuit estimated the same way (own noise, own shots)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weights: torch.Tensor, estimate: Estimate, spec: CircuitSpec
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weights)
        ctx.estimate, ctx.spec = estimate, spec
        return estimate(spec, x, weights)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, weights = ctx.saved_tensors
        estimate, spec = ctx.estimate, ctx.spec
        lifted, lift = weight_lift(spec, weights)
        angles = lift @ weights
        grad_w = grad_x = None
        if ctx.needs_input_grad[1] and not lift.shape[0]:
            grad_w = torch.zeros_like(weights)
        elif ctx.needs_input_grad[1]:
            jac = parameter_shift(lambda a: estimate(lifted, x, a), angles)  # [B, R, gates]
            grad_w = torch.einsum("br,brg->g", grad.to(jac.dtype), jac) @ lift
        if ctx.needs_input_grad[0]:
            inputs, origins = gate_level_inputs(lifted)
            cols = input_angles(origins, x)
            shifted = torch.zeros_like(cols)
            for j, src in enumerate(origins):
                if src.source == "feature" and src.index == spec.constant_feature:
                    continue  # a constant angle of an imported circuit
                step = torch.zeros_like(cols)
                step[:, j] = SHIFT
                plus = estimate(inputs, cols + step, angles)
                minus = estimate(inputs, cols - step, angles)
                shifted[:, j] = ((plus - minus) / 2 * grad).sum(-1)
            with torch.enable_grad():
                leaf = x.detach().requires_grad_(True)
                (grad_x,) = torch.autograd.grad(input_angles(origins, leaf), leaf, shifted)
        return grad_x, grad_w, None, None


def shift_gradient(
    estimate: Estimate, spec: CircuitSpec, x: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``estimate(spec, x, weights)`` ``[B, R]`` whose gradient is the parameter-shift rule.

    The backward pass runs, per sample, two shifted circuits per weight-dependent gate
    (weights shared or scaled by several gates are shifted gate by gate, then combined by
    the chain rule, :func:`~physnn.quantum.circuit.gate_level_weights`) and, when ``x``
    needs a gradient, two per input-dependent gate (:func:`gate_level_inputs`); each is
    ``estimate``-d like the forward, so with noise and finite shots the gradient is the
    unbiased, shot-noisy one hardware measures (Mitarai et al., PRA 98, 032309 (2018)).

    Args:
        estimate: the hardware readout ``estimate(spec, x, weights) -> [B, R]``.
        spec: the circuit.
        x: circuit inputs ``[B, n_features]`` (scaled angles).
        weights: trainable angles ``[n_weights]`` [rad].

    Raises:
        ValueError: when ``x`` needs a gradient through amplitude encoding.
    """
    if x.requires_grad and torch.is_grad_enabled():
        gate_level_inputs(spec)  # refuses amplitude encoding before anything runs
    out = _ShiftRule.apply(x, weights, estimate, spec)
    assert isinstance(out, torch.Tensor)
    return out
