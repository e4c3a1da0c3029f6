"""Honest ablations of hybrid quantum models: what does the circuit add?

Bowles, Ahmed & Schuld, "Better than classical? The subtle art of benchmarking quantum
machine learning models", arXiv:2403.07059 (2024), found that removing the circuit from
dressed hybrid models often leaves the accuracy unchanged. Both functions return copies of a
converted model (trained or not) to be trained with the same budget as the original:

- :func:`freeze_circuit`: the circuit's angles are fixed at their initial values, so only
  the classical ``pre``/``post`` maps, scale and bias learn (a random-feature circuit);
- :func:`without_circuit`: every :class:`~physnn.quantum.layers.QuantumLinear` becomes
  :class:`TanhSurrogate`, its classical parts with ``tanh`` where the circuit was.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .layers import QuantumCircuitLayer, QuantumLinear

__all__ = ["TanhSurrogate", "freeze_circuit", "without_circuit"]


def freeze_circuit(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose quantum layers' gate angles do not train."""
    out = copy.deepcopy(model)
    layers = [m for m in out.modules() if isinstance(m, QuantumCircuitLayer)]
    if not layers:
        raise ValueError("freeze_circuit: the model has no quantum layer; convert it first")
    for layer in layers:
        for p in layer.quantum_parameters():
            p.requires_grad_(False)
    return out


class TanhSurrogate(nn.Module):
    """A :class:`~physnn.quantum.layers.QuantumLinear` with its circuit replaced by ``tanh``.

    ``y = scale * post(tanh(pre(x))[:, :k]) + bias`` with the layer's own classical maps
    (``k`` the circuit's readout width); without ``pre`` the circuit input ``input_scale *
    x`` goes through ``tanh``. Readouts are ``<Z>``-like values in (-1, 1) in both cases.
    """

    def __init__(self, layer: QuantumLinear) -> None:
        super().__init__()
        if layer.spec.readout == "probs":
            raise ValueError(
                "TanhSurrogate replaces Pauli readouts; this layer reads probabilities "
                "(overflow='amplitude'): use overflow='projection'"
            )
        self.pre = copy.deepcopy(layer.pre)
        self.post = copy.deepcopy(layer.post)
        self.output_scale = nn.Parameter(layer.output_scale.detach().clone())
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone())
        self.input_scale = 1.0 if layer.pre is not None else layer.config.circuit.input_scale
        self.width = layer.readout_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1])
        if self.pre is not None:
            h = self.pre(h)
        r = torch.tanh(self.input_scale * h)
        r = r[:, : self.width] if self.post is None else self.post(r)
        y = r * self.output_scale
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, y.shape[-1])


def without_circuit(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``QuantumLinear`` replaced by :class:`TanhSurrogate`."""
    out = copy.deepcopy(model)
    found = False

    def walk(parent: nn.Module) -> None:
        nonlocal found
        for name, child in list(parent.named_children()):
            if isinstance(child, QuantumLinear):
                setattr(parent, name, TanhSurrogate(child))
                found = True
            else:
                walk(child)

    walk(out)
    if not found:
        raise ValueError("without_circuit: the model has no QuantumLinear; convert it first")
    return out
