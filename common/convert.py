"""``convert()`` a torch model onto a backend, ``to_torch()`` back, and the conversion report."""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import nn

from .backend import get_backend, loaded_backends, resolve_config
from .config import BackendConfig
from .cost import COMPUTE_TYPES, count_macs, leaf_shapes
from .layer import PhysicalModule, WeightsMode, WeightsNotTransferredWarning
from .onnx import from_onnx, is_onnx_model

__all__ = [
    "ConversionReport",
    "ModuleFate",
    "conversion_report",
    "convert",
    "reconfigure",
    "to_torch",
]

ConfigSpec = BackendConfig | str
ConfigChooser = Callable[[str, nn.Module], BackendConfig | None]


@dataclasses.dataclass(frozen=True)
class ModuleFate:
    """What happened to one module during conversion.

    Attributes:
        name: qualified module name.
        before: torch type name.
        after: resulting type name (same as ``before`` when it stayed digital).
        fate: ``"converted"``, ``"reconfigured"`` (it was a physnn layer already and took the
            new config), ``"kept"`` (a physnn layer the chooser left as it is),
            ``"excluded"``, ``"kept digital"`` (the chooser returned None) or
            ``"unsupported"`` (no layer for it, or converting it would be wrong: see
            ``reason``).
        backend: ``backend:preset`` label, or ``"digital"``.
        weights_transferred: whether the physical layer computes with the torch weights.
        params_before: trainable parameters before.
        params_after: trainable parameters after.
        classical_params: of ``params_after``, those computed classically (digital pre/post
            processing inside a physical layer, or the whole module when it stayed digital).
        macs: MACs per forward on the report's input shape (None without one).
        reason: why a module stayed digital (or what else it is), empty when converted.
        fit_error: relative error of a layer whose parameters were fitted to the torch
            weights (``OpticalLinear.from_torch(fit=True)``), None otherwise.
        classical_macs: MACs a converted layer still computes digitally (classical
            pre/post-processing inside it) on the report's input shape.
    """

    name: str
    before: str
    after: str
    fate: str
    backend: str
    weights_transferred: bool
    params_before: int
    params_after: int
    classical_params: int
    macs: int | None
    reason: str = ""
    fit_error: float | None = None
    classical_macs: int = 0


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """Summary of a :func:`convert` call; ``print(report)`` shows a table."""

    modules: tuple[ModuleFate, ...]
    input_shape: tuple[int, ...] | None

    @property
    def converted(self) -> tuple[ModuleFate, ...]:
        return tuple(m for m in self.modules if m.fate in ("converted", "reconfigured"))

    @property
    def digital(self) -> tuple[ModuleFate, ...]:
        return tuple(m for m in self.modules if m.fate not in ("converted", "reconfigured"))

    @property
    def needs_training(self) -> bool:
        """True when some converted layer has parameters that were not transferred."""
        return any(not m.weights_transferred for m in self.converted)

    @property
    def params_before(self) -> int:
        return sum(m.params_before for m in self.modules)

    @property
    def params_after(self) -> int:
        return sum(m.params_after for m in self.modules)

    @property
    def classical_params(self) -> int:
        """Parameters of the converted model that are computed classically."""
        return sum(m.classical_params for m in self.modules)

    @property
    def digital_mac_share(self) -> float | None:
        """Fraction of the model's equivalent MACs computed digitally: those of the modules
        left digital plus the classical MACs inside converted layers (at most 1; None when
        no input shape was given)."""
        if any(m.macs is None for m in self.modules):
            return None
        total = sum(m.macs or 0 for m in self.modules)
        if total == 0:
            return 0.0
        digital = sum(m.macs or 0 for m in self.digital)
        digital += sum(m.classical_macs for m in self.converted)
        return min(1.0, digital / total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modules": [dataclasses.asdict(m) for m in self.modules],
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "digital_mac_share": self.digital_mac_share,
            "params_before": self.params_before,
            "params_after": self.params_after,
            "classical_params": self.classical_params,
            "needs_training": self.needs_training,
        }

    def __str__(self) -> str:
        head = (
            "module",
            "before",
            "after",
            "fate",
            "backend",
            "weights",
            "params",
            "classical",
            "MACs",
        )
        rows = [head]
        for m in self.modules:
            rows.append(
                (
                    m.name or "<root>",
                    m.before,
                    m.after,
                    m.fate,
                    m.backend,
                    "transferred"
                    if m.weights_transferred
                    else ("to train" if m.fit_error is None else f"fitted ({m.fit_error:.3g})"),
                    f"{m.params_before}->{m.params_after}",
                    str(m.classical_params),
                    "?" if m.macs is None else str(m.macs),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        share = self.digital_mac_share
        lines.append(
            f"parameters {self.params_before} -> {self.params_after} "
            f"({self.classical_params} classical); MACs left digital: "
            + ("unknown (pass input_shape)" if share is None else f"{100 * share:.1f} %")
        )
        if self.needs_training:
            lines.append("weights were NOT transferred to some layers: train the model")
        return "\n".join(lines)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _matches(name: str, module: nn.Module, exclude: Iterable[Any]) -> bool:
    for item in exclude:
        if isinstance(item, str) and fnmatch.fnmatchcase(name, item):
            return True
        if isinstance(item, type) and isinstance(module, item):
            return True
    return False


def _chooser(config: ConfigSpec | ConfigChooser) -> ConfigChooser:
    if isinstance(config, BackendConfig | str):
        resolved = resolve_config(config)
        return lambda name, module: resolved
    if callable(config):
        return config
    raise TypeError(
        f"config must be a backend config, a name like 'pim:pcm', or a callable "
        f"(name, module) -> config | None; got {type(config).__name__}"
    )


def convert(
    model: nn.Module | str | os.PathLike[str] | Any,
    config: ConfigSpec | ConfigChooser,
    *,
    exclude: Iterable[str | type[nn.Module]] = (),
    inplace: bool = False,
    input_shape: tuple[int, ...] | None = None,
    strict: bool = False,
) -> nn.Module:
    """Replace every supported module of ``model`` by its physical counterpart.

    Args:
        model: the torch model, or an ONNX model (a ``.onnx`` path or an
            ``onnx.ModelProto``, imported through onnx2torch: the ``physnn[onnx]`` extra).
        config: a backend config (``physnn.pim.presets.get("pcm")``), a spec string
            (``"pim:pcm"``), or a callable ``(qualified_name, module) -> config | None``
            choosing per module (None keeps it digital).
        exclude: qualified names (glob patterns allowed) or module types to keep digital.
        inplace: modify ``model`` itself instead of a deep copy.
        input_shape: example input shape; when given the report counts MACs per module and
            the share left digital.
        strict: raise ``TypeError`` for a compute module (Linear, Conv, recurrent) that the
            chosen backend cannot convert, instead of keeping it digital.

    Returns:
        The converted model. Its report is ``model.physnn_report`` (a
        :class:`ConversionReport`). A ``WeightsNotTransferredWarning`` is issued when
        converted layers have parameters that were not transferred and so must be trained.

    Each converted layer derives its random streams from its config's seed and its qualified
    name, so converting twice with the same seed gives the same chip.
    """
    if is_onnx_model(model):
        model = from_onnx(model)
        inplace = True  # a fresh module nobody else holds
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be an nn.Module, a '.onnx' path or an onnx.ModelProto, got "
            f"{type(model).__name__}"
        )
    if isinstance(exclude, str):
        exclude = (exclude,)
    exclude = tuple(exclude)
    for item in exclude:
        if not (isinstance(item, str) or (isinstance(item, type) and issubclass(item, nn.Module))):
            raise TypeError(f"exclude entries must be names or nn.Module types, got {item!r}")
    choose = _chooser(config)
    macs: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    if input_shape is not None:
        for name, module, shape in leaf_shapes(model, tuple(input_shape)):
            macs[name] = count_macs(module, shape)
            shapes[name] = shape
    root = model if inplace else copy.deepcopy(model)
    fates: list[ModuleFate] = []

    def record(
        name: str, module: nn.Module, new: nn.Module, fate: str, label: str, reason: str = ""
    ) -> None:
        transferred = isinstance(new, PhysicalModule) and new.transfers_weights
        after = _n_params(new)
        classical = (
            new.parameter_counts()["classical"] if isinstance(new, PhysicalModule) else after
        )
        fates.append(
            ModuleFate(
                name=name,
                before=type(module).__name__,
                after=type(new).__name__,
                fate=fate,
                backend=label,
                weights_transferred=transferred or fate not in ("converted", "reconfigured"),
                params_before=_n_params(module),
                params_after=after,
                classical_params=classical,
                macs=macs.get(name, 0) if input_shape is not None else None,
                reason=reason,
                fit_error=getattr(new, "fit_error", None),
                classical_macs=(
                    new.classical_macs(shapes[name])
                    if isinstance(new, PhysicalModule) and name in shapes
                    else 0
                ),
            )
        )

    tied = _tied_modules(root)
    done: dict[int, tuple[str, nn.Module]] = {}

    def convert_one(name: str, child: nn.Module) -> tuple[nn.Module, str, str, str]:
        """(new module, fate, backend label, reason) for one compute module."""
        cfg = choose(name, child)
        if cfg is not None and not isinstance(cfg, BackendConfig):
            raise TypeError(
                f"the config chooser returned {type(cfg).__name__} for {name!r}; "
                "return a backend config or None"
            )
        if cfg is None:
            return child, "kept digital", "digital", "the config chooser returned None"
        backend = get_backend(cfg)
        layer_type = backend.layer_for(child)
        reason = ""
        if layer_type is None:
            supported = ", ".join(t.__name__ for t in backend.layers)
            reason = (
                f"backend {backend.name!r} has no layer for {type(child).__name__} "
                f"(it converts {supported}"
                + (", not subclasses with their own forward)" if _subclass(child, backend) else ")")
            )
        elif id(child) in tied:
            reason = f"its weights are tied to {tied[id(child)]!r}; converting would untie them"
        if reason:
            if strict:
                raise TypeError(f"{name!r}: {reason}; exclude it or pass strict=False")
            return child, "unsupported", "digital", reason
        assert layer_type is not None
        return layer_type.from_torch(child, cfg, name=name), "converted", cfg.describe(), ""

    def walk(parent: nn.Module, prefix: str) -> None:
        # parent._modules, not named_children(): that skips a module's second name.
        for child_name, child in list(parent._modules.items()):
            if child is None:
                continue
            name = f"{prefix}.{child_name}" if prefix else child_name
            if id(child) in done:
                first, new = done[id(child)]
                setattr(parent, child_name, new)
                last = next(f for f in fates if f.name == first)
                fates.append(
                    dataclasses.replace(
                        last,
                        name=name,
                        reason=f"the same module as {first!r} (counted there)",
                        params_before=0,
                        params_after=0,
                        classical_params=0,
                        macs=macs.get(name, 0) if input_shape is not None else None,
                    )
                )
                continue
            if isinstance(child, PhysicalModule):
                cfg = choose(name, child)
                _reconvert(name, child, cfg)
                fate = "kept" if cfg is None else "reconfigured"
                record(name, child, child, fate, child.config.describe())
                done[id(child)] = (name, child)
                continue
            if _matches(name, child, exclude):
                if _has_compute(child):
                    record(name, child, child, "excluded", "digital", "excluded by the caller")
                continue
            if _has_compute(child):
                new, fate, label, reason = convert_one(name, child)
                if new is not child:
                    setattr(parent, child_name, new)
                record(name, child, new, fate, label, reason)
                done[id(child)] = (name, new)
            else:
                walk(child, name)

    if _has_compute(root) and not list(root.children()):
        raise TypeError(
            f"convert() got a bare {type(root).__name__}; convert a container, or use "
            "LayerClass.from_torch(module, config) for a single layer"
        )
    walk(root, "")
    report = ConversionReport(tuple(fates), tuple(input_shape) if input_shape else None)
    # A plain attribute (not a submodule or buffer): it survives deepcopy and torch.save.
    object.__setattr__(root, "physnn_report", report)
    if report.needs_training:
        names = ", ".join(m.name for m in report.converted if not m.weights_transferred)
        warnings.warn(
            f"converted layers ({names}) have their own parameters, not the torch weights: "
            "train the converted model before using it",
            WeightsNotTransferredWarning,
            stacklevel=2,
        )
    return root


def _reconvert(name: str, layer: PhysicalModule, cfg: BackendConfig | None) -> None:
    """``convert`` met a physnn layer: reconfigure it to ``cfg`` or say why it cannot."""
    if cfg is None:
        return
    if not isinstance(cfg, layer.config_type):
        raise TypeError(
            f"{name!r} is already a {type(layer).__name__} ({layer.config.describe()}); "
            f"convert cannot move it to {cfg.describe()}: convert the original torch model, "
            "or physnn.to_torch(model) first where its weights transfer"
        )
    layer.reconfigure(cfg)


def conversion_report(model: nn.Module) -> ConversionReport:
    """The :class:`ConversionReport` that :func:`convert` attached to ``model``."""
    report = model.__dict__.get("physnn_report")
    if not isinstance(report, ConversionReport):
        raise ValueError(f"{type(model).__name__} was not produced by physnn.convert()")
    return report


def _has_compute(module: nn.Module) -> bool:
    """True for modules that do MAC work: every type a registered backend replaces, and the
    torch layers with weights (Linear, Bilinear, every convolution, recurrent, attention)."""
    if isinstance(module, COMPUTE_TYPES):
        return True
    return any(get_backend(n).layer_for(module) is not None for n in loaded_backends())


def _subclass(module: nn.Module, backend: Any) -> bool:
    """True when ``module`` subclasses a type the backend converts (but was refused)."""
    return any(isinstance(module, t) and type(module) is not t for t in backend.layers)


def _tied_modules(root: nn.Module) -> dict[int, str]:
    """Compute modules that share a parameter with another module: id -> the other's name."""
    owners: dict[int, str] = {}
    tied: dict[int, str] = {}
    modules: dict[str, nn.Module] = dict(root.named_modules(remove_duplicate=True))
    for name, module in modules.items():
        for param in module.parameters(recurse=False):
            other = owners.setdefault(id(param), name)
            if other != name:
                tied[id(module)] = other
                tied[id(modules[other])] = name
    return tied


def to_torch(
    model: nn.Module, *, weights: WeightsMode = "exact", inplace: bool = False
) -> nn.Module:
    """Replace every physnn layer in ``model`` by its plain torch equivalent.

    Args:
        model: a converted model (or a single physnn layer).
        weights: ``"exact"``: the torch weights the layers compute with (PIM, digital);
            ``"effective"``: the weights the hardware realises (programmed conductances,
            an optical transfer matrix); ``"shape"``: an untrained module of the same shape
            for layers whose parameters are not torch weights (with a
            :class:`~physnn.common.layer.WeightsNotTransferredWarning`). Layers that cannot
            give the asked weights raise
            :class:`~physnn.common.layer.WeightsNotTransferredError` naming the layer.
        inplace: modify ``model`` itself instead of a deep copy.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    PhysicalModule.check_weights_mode(weights)
    if isinstance(model, PhysicalModule):
        return model.to_torch(weights)
    root = model if inplace else copy.deepcopy(model)

    def walk(parent: nn.Module) -> None:
        for child_name, child in list(parent.named_children()):
            if isinstance(child, PhysicalModule):
                setattr(parent, child_name, child.to_torch(weights))
            else:
                walk(child)

    walk(root)
    if "physnn_report" in root.__dict__:
        del root.__dict__["physnn_report"]
    return root


def reconfigure(
    model: nn.Module,
    config: ConfigSpec | Mapping[str, Any] | None = None,
    /,
    *,
    inplace: bool = False,
    resample: bool = False,
    **changes: Any,
) -> nn.Module:
    """Re-target a converted model to another config without retraining.

    Args:
        model: a model holding physnn layers (or one layer).
        config: a backend config or ``"backend:preset"`` spec (every physnn layer of that
            backend takes it), or a mapping of field changes; None with ``changes`` only.
        inplace: change ``model`` itself instead of a deep copy.
        resample: redraw static randomness (a new chip) in every reconfigured layer.
        **changes: field changes applied to each layer's own config, nested fields as
            ``adc_bits=4`` or ``{"adc.bits": 4}`` (see
            :meth:`~physnn.common.config.ConfigBlock.with_changes`).

    Returns:
        The reconfigured model (a copy unless ``inplace``).

    Example:
        >>> import torch.nn as nn, physnn
        >>> chip = physnn.convert(nn.Sequential(nn.Linear(4, 2)), "pim:ideal")
        >>> physnn.reconfigure(chip, "pim:pcm")[0].config.preset
        'pcm'
        >>> physnn.reconfigure(chip, adc_bits=4)[0].config.adc.bits
        4
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    edits: dict[str, Any] = dict(changes)
    target: BackendConfig | None = None
    if isinstance(config, Mapping):
        edits = {**dict(config), **edits}
    elif config is not None:
        target = resolve_config(config)
    if target is None and not edits:
        raise TypeError(
            "reconfigure needs a config, a 'backend:preset' spec or field changes, e.g. "
            "physnn.reconfigure(model, 'pim:hermes') or physnn.reconfigure(model, adc_bits=4)"
        )
    layers = [m for m in model.modules() if isinstance(m, PhysicalModule)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} holds no physnn layer; physnn.convert(model, spec) first"
        )
    if target is not None and not any(isinstance(target, m.config_type) for m in layers):
        found = sorted({m.config_type.backend for m in layers})
        raise ValueError(
            f"reconfigure to {target.describe()}: the model's physnn layers are "
            f"{', '.join(found)}; a model moves to another backend by converting the torch "
            "model again"
        )
    root = model if inplace else copy.deepcopy(model)
    for layer in (m for m in root.modules() if isinstance(m, PhysicalModule)):
        if target is not None and not isinstance(target, layer.config_type):
            continue
        base = target if target is not None else layer.config
        new = base.with_changes(edits) if edits else base
        if target is not None and new.seed is None and "seed" not in edits:
            new = new.replace(seed=layer.config.seed)  # a preset keeps the layer's seed
        layer.reconfigure(new, resample=resample)
    return root
