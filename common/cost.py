"""Energy, latency and area: the :class:`Cost` record, ``cost()`` and :class:`CostTracker`.

All quantities are in SI base units: energy [J], latency [s], area [m^2]. ``macs`` counts
multiply-accumulates of the equivalent digital layer, so TOPS/W = 2 * macs / energy / 1e12.

Costs add (``a + b``): energies, latencies (layers run one after another), areas
(each layer has its own hardware), MACs and resource counts add. ``cost.scale(k)`` repeats a
workload ``k`` times on the same hardware: everything but ``area`` is multiplied by ``k``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

import torch
from torch import nn

__all__ = [
    "Cost",
    "CostTracker",
    "cost",
    "count_macs",
    "leaf_shapes",
    "output_shape",
]


@dataclasses.dataclass(frozen=True)
class Cost:
    """Analytic cost of running a workload on some hardware.

    Attributes:
        energy: energy [J].
        latency: latency [s].
        area: hardware area [m^2].
        macs: multiply-accumulates of the equivalent digital computation.
        resources: paradigm-specific counts (``adc_conversions``, ``detector_reads``,
            ``shots``, ``two_qubit_gates``...), added key by key.
        assumptions: human-readable assumptions behind the numbers (e.g. a quantum
            system's wall power); kept (deduplicated, in order) when costs are added.
    """

    energy: float = 0.0
    latency: float = 0.0
    area: float = 0.0
    macs: int = 0
    resources: Mapping[str, float] = dataclasses.field(default_factory=dict)
    assumptions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("energy", "latency", "area"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"Cost.{name}={value!r} must be a finite number >= 0")
        if isinstance(self.macs, bool) or not isinstance(self.macs, int) or self.macs < 0:
            raise ValueError(f"Cost.macs={self.macs!r} must be an int >= 0")
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        resources = dict(self.resources)
        for key, value in other.resources.items():
            resources[key] = resources.get(key, 0) + value
        return Cost(
            energy=self.energy + other.energy,
            latency=self.latency + other.latency,
            area=self.area + other.area,
            macs=self.macs + other.macs,
            resources=resources,
            assumptions=tuple(dict.fromkeys(self.assumptions + other.assumptions)),
        )

    def __radd__(self, other: object) -> Cost:
        # Lets ``sum(costs)`` start from the integer 0.
        if other == 0:
            return self
        return NotImplemented

    def scale(self, factor: int) -> Cost:
        """Repeat the workload ``factor`` times on the same hardware (area unchanged)."""
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 0:
            raise ValueError(f"factor={factor!r} must be an int >= 0")
        return Cost(
            energy=self.energy * factor,
            latency=self.latency * factor,
            area=self.area,
            macs=self.macs * factor,
            resources={k: v * factor for k, v in self.resources.items()},
            assumptions=self.assumptions,
        )

    @property
    def tops_per_watt(self) -> float:
        """Throughput efficiency 2 * macs / energy / 1e12 [TOPS/W] (inf for zero energy)."""
        return math.inf if self.energy == 0 else 2 * self.macs / self.energy / 1e12

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "energy": self.energy,
            "latency": self.latency,
            "area": self.area,
            "macs": self.macs,
            "resources": dict(self.resources),
            "assumptions": list(self.assumptions),
        }

    def __str__(self) -> str:
        extra = ", ".join(f"{k}={v:g}" for k, v in self.resources.items())
        return (
            f"Cost(energy={self.energy:.3e} J, latency={self.latency:.3e} s, "
            f"area={self.area:.3e} m^2, macs={self.macs}" + (f", {extra}" if extra else "") + ")"
        )


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Exact multiply-accumulates of a torch Linear, Bilinear, convolution (any dimension,
    transposed included), RNN, LSTM, GRU or multi-head attention forward.

    Other modules (activations, pooling, normalisation) count 0 MACs.

    Args:
        module: the torch module.
        input_shape: its input shape, batch included (``(batch, features)`` for Linear,
            ``(batch, channels, *spatial)`` for Conv, ``(batch, time, features)`` or
            ``(time, batch, features)`` for recurrent layers per ``batch_first``).
    """
    shape = tuple(int(s) for s in input_shape)
    if isinstance(module, nn.Linear):
        return math.prod(shape[:-1]) * module.in_features * module.out_features
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            # Each input element is scattered through a kernel into out_channels/groups maps.
            return math.prod(shape) * (module.out_channels // module.groups) * kernel
        out = output_shape(module, shape)
        assert out is not None
        return math.prod(out) * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Bilinear):
        return (
            math.prod(shape[:-1]) * module.in1_features * module.in2_features * module.out_features
        )
    if isinstance(module, nn.MultiheadAttention):
        return _attention_macs(module, shape)
    if isinstance(module, nn.RNNBase):
        gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
        steps = math.prod(shape[:-1]) if len(shape) > 1 else 1
        dirs = 2 if module.bidirectional else 1
        hidden = module.hidden_size
        proj = module.proj_size or hidden
        total = 0
        in_size = module.input_size
        for _ in range(module.num_layers):
            per_dir = gates * hidden * (in_size + proj) + (hidden * proj if module.proj_size else 0)
            total += steps * dirs * per_dir
            in_size = proj * dirs
        return total
    return 0


def _attention_macs(module: nn.MultiheadAttention, shape: tuple[int, ...]) -> int:
    """Self-attention MACs for a query of ``shape`` (keys and values the same sequence):
    the q/k/v and output projections plus the two score/value products."""
    if len(shape) == 3:
        tokens, batch_tokens = (shape[1], shape[0]) if module.batch_first else (shape[0], shape[1])
        n = tokens * batch_tokens
        seq = tokens
    else:
        n = seq = shape[0]
    e = module.embed_dim
    projections = n * (e * e + e * module.kdim + e * module.vdim + e * e)
    return projections + 2 * n * seq * e


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _conv_spatial(module: nn.modules.conv._ConvNd, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Output spatial size of any torch convolution (transposed ones included), per
    torch's documented formulas."""
    nd = len(module.kernel_size)
    spatial = shape[-nd:]
    k, st, d = module.kernel_size, module.stride, module.dilation
    if module.transposed:
        pad = _as_tuple(module.padding, nd)
        return tuple(
            (s - 1) * ss - 2 * pp + dd * (kk - 1) + op + 1
            for s, ss, pp, dd, kk, op in zip(
                spatial, st, pad, d, k, module.output_padding, strict=True
            )
        )
    if module.padding == "same":
        return spatial
    pad = (0,) * nd if module.padding == "valid" else _as_tuple(module.padding, nd)
    return tuple(
        _conv_out(s, kk, ss, pp, dd)
        for s, kk, ss, pp, dd in zip(spatial, k, st, pad, d, strict=True)
    )


def _as_tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (int(value),) * n


_SHAPE_PRESERVING: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.GELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.SiLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Dropout,
    nn.Identity,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.LayerNorm,
)


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Output shape of ``module`` for ``input_shape`` from its hyper-parameters alone.

    Returns None when the module's output shape cannot be derived analytically (a custom
    container with its own ``forward``), in which case :func:`leaf_shapes` traces it.
    """
    shape = tuple(int(s) for s in input_shape)
    own = getattr(module, "output_shape", None)
    if callable(own):
        result = own(shape)
        return tuple(result) if result is not None else None
    if isinstance(module, nn.Linear):
        return (*shape[:-1], module.out_features)
    if isinstance(module, nn.modules.conv._ConvNd):
        return (
            *shape[: -len(module.kernel_size) - 1],
            module.out_channels,
            *_conv_spatial(module, shape),
        )
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        k = _as_tuple(module.kernel_size, 2)
        st = _as_tuple(module.stride if module.stride is not None else module.kernel_size, 2)
        p = _as_tuple(module.padding, 2)
        spatial = tuple(
            _conv_out(s, kk, ss, pp, 1) for s, kk, ss, pp in zip(shape[-2:], k, st, p, strict=True)
        )
        return (*shape[:-2], *spatial)
    if isinstance(module, nn.Flatten):
        start = module.start_dim % len(shape)
        end = module.end_dim % len(shape)
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])
    if isinstance(module, nn.Unflatten):
        dim = module.dim % len(shape)
        return (*shape[:dim], *module.unflattened_size, *shape[dim + 1 :])
    if isinstance(module, _SHAPE_PRESERVING):
        return shape
    if type(module) is nn.Sequential:
        for child in module:
            next_shape = output_shape(child, shape)
            if next_shape is None:
                return None
            shape = next_shape
        return shape
    return None


COMPUTE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.RNNBase,
    nn.MultiheadAttention,
)
"""torch modules that do MAC work (:func:`count_macs` counts them exactly)."""


def _is_costed_leaf(module: nn.Module) -> bool:
    # Attention uses its out_proj's weights directly, never calling it: cost it whole.
    return (
        callable(getattr(module, "cost", None))
        or isinstance(module, nn.MultiheadAttention)
        or not any(True for _ in module.children())
    )


def _analytic_leaf_shapes(
    module: nn.Module,
    prefix: str,
    shape: tuple[int, ...],
    out: list[tuple[str, nn.Module, tuple[int, ...]]],
) -> tuple[int, ...] | None:
    if _is_costed_leaf(module):
        out.append((prefix, module, shape))
        return output_shape(module, shape)
    if type(module) is not nn.Sequential:
        return None
    for name, child in module.named_children():
        child_shape = _analytic_leaf_shapes(
            child, f"{prefix}.{name}" if prefix else name, shape, out
        )
        if child_shape is None:
            return None
        shape = child_shape
    return shape


def _traced_leaf_shapes(
    model: nn.Module, input_shape: tuple[int, ...]
) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Record each costed leaf's input shape with one pass of shape-only meta tensors.

    The model is deep-copied to torch's ``meta`` device, so no arithmetic is performed and
    no noise is drawn; modules whose forward cannot run on meta tensors (e.g. ones that use
    numpy) are traced with a zero input under :func:`physnn.ideal` instead.
    """
    from .rng import ideal

    names = {id(m): n for n, m in model.named_modules()}
    records: list[tuple[str, nn.Module, tuple[int, ...]]] = []

    def trace(target: nn.Module, x: torch.Tensor, originals: Mapping[int, nn.Module]) -> None:
        handles = []
        for name, mod in target.named_modules():
            if _is_costed_leaf(mod) and not _inside_costed(target, name):
                orig = originals[id(mod)]

                def hook(m: nn.Module, args: tuple[Any, ...], o: nn.Module = orig) -> None:
                    records.append((names[id(o)], o, tuple(args[0].shape)))

                handles.append(mod.register_forward_pre_hook(hook))
        try:
            with torch.no_grad(), ideal():
                target(x)
        finally:
            for h in handles:
                h.remove()

    try:
        meta = copy.deepcopy(model).to("meta")
        mapping = {id(m): o for m, o in zip(meta.modules(), model.modules(), strict=True)}
        trace(meta, torch.zeros(input_shape, device="meta"), mapping)
    except (NotImplementedError, RuntimeError, TypeError):
        records.clear()
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        trace(model, torch.zeros(input_shape, device=device), {id(m): m for m in model.modules()})
    return records


def _inside_costed(root: nn.Module, name: str) -> bool:
    """True when module ``name`` sits inside a costed module (``root`` itself included)."""
    parts = name.split(".") if name else []
    if parts and callable(getattr(root, "cost", None)):
        return True
    mod = root
    for part in parts[:-1]:
        mod = getattr(mod, part)
        if mod is not root and callable(getattr(mod, "cost", None)):
            return True
    return False


def leaf_shapes(
    model: nn.Module, input_shape: tuple[int, ...]
) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """List ``(qualified name, module, input shape)`` for every costed leaf of ``model``.

    A costed leaf is a module with its own ``cost`` method (every physnn layer) or a module
    without children. ``nn.Sequential`` models are walked analytically; other models are
    traced once with shape-only meta tensors.
    """
    shape = _check_shape("input_shape", input_shape)
    records: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    if _analytic_leaf_shapes(model, "", shape, records) is None:
        records = _traced_leaf_shapes(model, shape)
    return records


def _check_shape(name: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, tuple | list) or not shape:
        raise TypeError(f"{name}={shape!r} must be a non-empty tuple of ints, e.g. (1, 64)")
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ValueError(f"{name}={tuple(shape)!r} must contain positive ints, e.g. (1, 64)")
    return tuple(shape)


def _leaf_cost(module: nn.Module, shape: tuple[int, ...], digital: Any) -> Cost:
    own = getattr(module, "cost", None)
    if callable(own):
        result = own(shape)
        if not isinstance(result, Cost):
            raise TypeError(f"{type(module).__name__}.cost() returned {type(result).__name__}")
        return result
    from .backend import reference_cost_model

    model, config = reference_cost_model(digital)
    return model(module, shape, config)


def cost(model: nn.Module, input_shape: tuple[int, ...], *, digital: Any = None) -> Cost:
    """Analytic cost of one forward pass of ``model`` on a batch shaped ``input_shape``.

    Physical layers use their backend's cost model; modules left as plain torch are costed
    with the digital reference backend (``digital`` may be a
    :class:`~physnn.digital.DigitalConfig`, a preset name, or None for the default).

    Args:
        model: any ``nn.Module``.
        input_shape: shape of the input batch, e.g. ``(batch, features)``.
        digital: digital reference config for modules that stay digital.

    Returns:
        The summed :class:`Cost`; MACs of Linear and Conv layers are exact.

    Example:
        >>> import torch.nn as nn
        >>> from physnn import cost
        >>> cost(nn.Linear(64, 10), (1, 64)).macs
        640
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    total = Cost()
    for _, module, shape in leaf_shapes(model, input_shape):
        total = total + _leaf_cost(module, shape, digital)
    return total


class CostTracker:
    """Record the cost of real forward passes, per layer and in total.

    Use as a context manager around forward passes of ``model``; each costed leaf's cost is
    computed from the input shape it actually received::

        with CostTracker(model) as tracker:
            model(x)
        tracker.total, tracker.per_layer["0"]

    Args:
        model: the model whose layers are tracked.
        digital: digital reference config for modules that stay digital.
    """

    def __init__(self, model: nn.Module, *, digital: Any = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.digital = digital
        self.records: list[tuple[str, Cost]] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if args and isinstance(args[0], torch.Tensor):
                self.records.append((name, _leaf_cost(module, tuple(args[0].shape), self.digital)))

        return hook

    def __enter__(self) -> CostTracker:
        self.records.clear()
        for name, module in self.model.named_modules():
            if _is_costed_leaf(module) and not _inside_costed(self.model, name):
                self._handles.append(module.register_forward_pre_hook(self._hook(name)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def per_layer(self) -> dict[str, Cost]:
        """Cost per qualified layer name, summed over every recorded forward.

        Area is hardware, not work: each layer's area is counted once, however many
        forward passes ran.
        """
        out: dict[str, Cost] = {}
        for name, c in self.records:
            if name in out:
                summed = out[name] + c
                out[name] = dataclasses.replace(summed, area=max(out[name].area, c.area))
            else:
                out[name] = c
        return out

    @property
    def total(self) -> Cost:
        """Cost of every recorded forward pass together (each layer's area once)."""
        return sum(self.per_layer.values(), Cost())

    def __iter__(self) -> Iterator[tuple[str, Cost]]:
        return iter(self.records)
