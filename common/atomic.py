"""All-or-nothing ``load_state_dict``: a failed load leaves the model exactly as it was.

torch's ``Module.load_state_dict`` copies every tensor it can and reports the errors (shape
mismatches, missing or unexpected keys with ``strict=True``) only at the end, and a physnn
layer's extra state swaps its config and rebuilds its chip or noise model on the way. So a
failed load left a half-loaded model with another config (issue 15 item 7).
:func:`load_state_dict_atomically` takes a snapshot of the model first (every parameter and
buffer, by identity and value, and every module's other attributes: a physnn layer's config
and random streams, a tile's derived chip state) and restores it when the load raises, then
re-raises.

Tensors keep their identity (an optimiser holding the parameters still holds the model's
parameters after a rollback); their values, shapes and dtypes come back exactly.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["Snapshot", "load_state_dict_atomically"]

T = TypeVar("T")

_MODULE_INTERNALS = frozenset(
    {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "training"}
)
"""nn.Module bookkeeping restored through its own entries (the rest of ``__dict__``, hooks
included, is restored as a whole)."""


@dataclasses.dataclass
class _ModuleState:
    module: nn.Module
    tensors: dict[str, dict[str, tuple[torch.Tensor | None, torch.Tensor | None]]]
    attributes: dict[str, Any]
    training: bool


@dataclasses.dataclass
class Snapshot:
    """The restorable state of every submodule of a model (see the module docstring)."""

    states: list[_ModuleState]

    @classmethod
    def take(cls, model: nn.Module) -> Snapshot:
        """Snapshot every submodule of ``model``: parameters and buffers (object and value)
        and the other attributes (by value; hook tables by reference)."""
        states = []
        for module in model.modules():
            tensors = {
                kind: {
                    name: (t, None if t is None else t.detach().clone())
                    for name, t in getattr(module, kind).items()
                }
                for kind in ("_parameters", "_buffers")
            }
            attributes = {}
            for name, value in module.__dict__.items():
                if name in _MODULE_INTERNALS:
                    continue
                # Hook tables hold callables (possibly bound to the module): keep them by
                # reference; everything else (configs, streams, cached tensors) by value.
                hooks = "hook" in name and isinstance(value, dict)
                attributes[name] = copy.copy(value) if hooks else copy.deepcopy(value)
            states.append(_ModuleState(module, tensors, attributes, module.training))
        return cls(states)

    def restore(self) -> None:
        """Put every saved tensor (same object, saved value) and attribute back."""
        with torch.no_grad():
            for state in self.states:
                module = state.module
                for kind, saved in state.tensors.items():
                    table: dict[str, Any] = getattr(module, kind)
                    for name in [n for n in table if n not in saved]:
                        del table[name]
                    for name, (tensor, value) in saved.items():
                        if tensor is not None and value is not None:
                            tensor.data = value
                        table[name] = tensor
                for name in [
                    n
                    for n in module.__dict__
                    if n not in _MODULE_INTERNALS and n not in state.attributes
                ]:
                    del module.__dict__[name]
                module.__dict__.update(state.attributes)
                module.training = state.training


def load_state_dict_atomically(
    model: nn.Module,
    load: Callable[[Mapping[str, Any]], T],
    state_dict: Mapping[str, Any],
) -> T:
    """Run ``load(state_dict)`` on ``model``; if it raises, restore ``model`` and re-raise.

    Args:
        model: the model being loaded.
        load: the loading call, e.g. ``functools.partial(nn.Module.load_state_dict, model,
            strict=True)``.
        state_dict: the state dict.

    Returns:
        What ``load`` returns (torch's ``(missing_keys, unexpected_keys)``).
    """
    snapshot = Snapshot.take(model)
    try:
        return load(state_dict)
    except BaseException:
        snapshot.restore()
        raise
