"""Backends, their capabilities, presets and the registry.

A backend bundles a config class, the layer class for each torch module type it replaces,
its named presets and a :class:`Capabilities` declaration. The built-in backends
(``digital``, ``pim``, ``optical``, ``quantum``) are registered lazily by import path, so
``import physnn`` imports none of them; third-party backends register through the
entry-point group ``physnn.backends`` (each entry point names a :class:`Backend` object).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING

from torch import nn

from .config import BackendConfig

if TYPE_CHECKING:
    from .cost import Cost
    from .layer import PhysicalModule

__all__ = [
    "Backend",
    "Baseline",
    "Capabilities",
    "PresetRegistry",
    "StressTest",
    "available_backends",
    "get_backend",
    "loaded_backends",
    "reference_cost_model",
    "register_backend",
    "resolve_config",
]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend can do, derived from what it registers (see :attr:`Backend.capabilities`).

    Attributes:
        module_types: torch module types the backend replaces (the keys of its layer map).
        transfers_weights: True when every converted layer computes with the torch weights
            (PIM, digital); False when physical layers have their own parameters that must
            be trained (optics, quantum).
        fine_tune_fraction: share of a study's training budget that this backend spends on
            fine-tuning the converted model (hardware-aware or quantisation-aware training)
            after training the torch model; 0 for backends that train from scratch.
        notes: free-text caveats shown in reports.
    """

    module_types: tuple[type[nn.Module], ...]
    transfers_weights: bool
    fine_tune_fraction: float
    notes: str


class PresetRegistry:
    """Named, cited config instances of one backend.

    Args:
        backend: backend name (used in messages).
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._configs: dict[str, BackendConfig] = {}
        self._citations: dict[str, str] = {}

    def register(self, name: str, config: BackendConfig, citation: str) -> BackendConfig:
        """Register ``config`` as preset ``name`` (its ``preset`` field is set to ``name``)."""
        if name in self._configs:
            raise ValueError(f"{self.backend} preset {name!r} is already registered")
        if not citation:
            raise ValueError(f"{self.backend} preset {name!r} needs a citation")
        config = config.replace(preset=name)
        self._configs[name] = config
        self._citations[name] = citation
        return config

    def get(self, name: str, **changes: object) -> BackendConfig:
        """Return preset ``name``, optionally with fields replaced (``seed=1``...)."""
        if name not in self._configs:
            raise ValueError(
                f"unknown {self.backend} preset {name!r}; choose one of {', '.join(self.names())}"
            )
        config = self._configs[name]
        return config.replace(**changes) if changes else config

    def names(self) -> list[str]:
        """Preset names in registration order."""
        return list(self._configs)

    def citation(self, name: str) -> str:
        """Where preset ``name``'s numbers come from."""
        self.get(name)
        return self._citations[name]


@dataclasses.dataclass(frozen=True)
class StressTest:
    """The backend's main robustness knob, swept by ``physnn compare``.

    Attributes:
        name: what is varied, e.g. ``"drift time"``, ``"misalignment"``, ``"shots"``.
        unit: its unit, e.g. ``"s"``, ``"m"``, ``""``.
        values: the default sweep, mildest first.
        apply: ``apply(model, value)`` returns a copy of the trained converted ``model`` as
            it behaves under stress ``value``, leaving ``model`` unchanged; evaluating it gives
            the realistic accuracy at that stress.
        log_scale: plot the sweep on a log axis.
    """

    name: str
    unit: str
    values: tuple[float, ...]
    apply: Callable[[nn.Module, float], nn.Module]
    log_scale: bool = False


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A classical model that ``physnn compare`` trains next to a backend's row.

    It answers "what does the physical part add?": the converted model with its physical
    computation replaced by a classical one of the same structure (for quantum, the circuit
    replaced by ``tanh``; Bowles, Ahmed & Schuld 2024), trained with the same budget.

    Attributes:
        name: short name shown in the row label, e.g. ``"tanh baseline"``.
        description: what the baseline is, for ``summary.md``.
        apply: ``apply(converted_model)`` returns the classical model (a copy; the argument
            is left unchanged).
    """

    name: str
    description: str
    apply: Callable[[nn.Module], nn.Module]


@dataclasses.dataclass(frozen=True)
class Backend:
    """One simulated substrate.

    Attributes:
        name: registry name (``"pim"``).
        config_type: its config class.
        layers: torch module type -> physical layer class replacing it.
        presets: its preset registry.
        default_preset: preset used when only the backend name is given.
        notes: free-text caveats shown in reports.
        stress: the robustness sweep ``physnn compare`` runs (None: no sweep).
        default_lr: learning rate ``physnn compare`` trains this backend's layers with.
        fine_tune_fraction: share of a study's training budget spent fine-tuning the
            converted model (weight-transferring backends; 0 trains from scratch).
        cost_model: ``cost_model(module, input_shape, config) -> Cost`` costing a plain
            torch module on this backend with one of its configs; the reference backend's
            prices what stays digital.
        baseline: the classical model ``physnn compare`` shows next to this backend's rows
            (None: none).
    """

    name: str
    config_type: type[BackendConfig]
    layers: Mapping[type[nn.Module], type[PhysicalModule]]
    presets: PresetRegistry
    default_preset: str
    notes: str = ""
    stress: StressTest | None = None
    default_lr: float = 1e-2
    fine_tune_fraction: float = 0.0
    cost_model: Callable[..., Cost] | None = None
    baseline: Baseline | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.fine_tune_fraction < 1.0:
            raise ValueError(
                f"Backend {self.name!r}: fine_tune_fraction={self.fine_tune_fraction!r} must "
                "be in [0, 1)"
            )
        if self.fine_tune_fraction > 0 and not self.capabilities.transfers_weights:
            raise ValueError(
                f"Backend {self.name!r} trains its own parameters, so it cannot fine-tune "
                "transferred weights; set fine_tune_fraction=0"
            )

    @property
    def capabilities(self) -> Capabilities:
        """What the backend supports, derived from its layer map and settings."""
        return Capabilities(
            module_types=tuple(self.layers),
            transfers_weights=all(layer.transfers_weights for layer in self.layers.values()),
            fine_tune_fraction=self.fine_tune_fraction,
            notes=self.notes,
        )

    def layer_for(self, module: nn.Module) -> type[PhysicalModule] | None:
        """The layer class replacing ``module``, or None.

        An exact type match first; a subclass of a registered torch type only when it keeps
        the torch type's ``forward`` (a subclass with its own forward computes something
        the physical layer would not, so it stays digital).
        """
        exact = self.layers.get(type(module))
        if exact is not None:
            return exact
        for torch_type, layer_type in self.layers.items():
            if (
                isinstance(module, torch_type)
                and not isinstance(module, layer_type)
                and type(module).forward is torch_type.forward
            ):
                return layer_type
        return None


_BUILTIN: dict[str, str] = {
    "digital": "physnn.digital.backend:BACKEND",
    "pim": "physnn.pim.backend:BACKEND",
    "optical": "physnn.optical.backend:BACKEND",
    "quantum": "physnn.quantum.backend:BACKEND",
}
_LOADED: dict[str, Backend] = {}
_ENTRY_POINTS_SCANNED = False


def register_backend(backend: Backend) -> None:
    """Register a backend object under ``backend.name`` (replacing a lazy entry)."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend expects a Backend, got {type(backend).__name__}")
    _LOADED[backend.name] = backend


def _scan_entry_points() -> None:
    global _ENTRY_POINTS_SCANNED
    if _ENTRY_POINTS_SCANNED:
        return
    _ENTRY_POINTS_SCANNED = True
    for ep in metadata.entry_points(group="physnn.backends"):
        _BUILTIN.setdefault(ep.name, ep.value)


def _load(path: str) -> Backend:
    module_name, _, attr = path.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, Backend):
        raise TypeError(f"{path} is a {type(obj).__name__}, not a physnn Backend")
    return obj


def available_backends() -> list[str]:
    """Names of every registered backend (built-in, registered and entry points)."""
    _scan_entry_points()
    return list(dict.fromkeys([*_BUILTIN, *_LOADED]))


def loaded_backends() -> list[str]:
    """Names of the backends already imported (or registered in-process); asking them
    imports nothing new."""
    return list(_LOADED)


def get_backend(config_or_name: BackendConfig | str) -> Backend:
    """Return the backend for a config, a name (``"pim"``) or ``"pim:pcm"``."""
    if isinstance(config_or_name, BackendConfig):
        name = config_or_name.backend
    elif isinstance(config_or_name, str):
        name = config_or_name.partition(":")[0]
    else:
        raise TypeError(
            f"expected a backend config or name, got {type(config_or_name).__name__}; "
            f"valid names: {', '.join(available_backends())}"
        )
    if name in _LOADED:
        return _LOADED[name]
    _scan_entry_points()
    if name not in _BUILTIN:
        raise ValueError(
            f"unknown backend {name!r}; valid backends: {', '.join(available_backends())}"
        )
    backend = _load(_BUILTIN[name])
    _LOADED[name] = backend
    return backend


REFERENCE_BACKEND = "digital"
"""The backend whose ``cost_model`` prices modules that stay plain torch."""


def reference_cost_model(
    config: BackendConfig | str | None = None,
) -> tuple[Callable[..., Cost], BackendConfig]:
    """The cost model for plain torch modules and the config it prices with.

    Args:
        config: a config or ``"backend:preset"`` of a backend with a ``cost_model``, a preset
            name of the reference backend (``"int8"``), or None for its default preset.
    """
    if isinstance(config, str) and ":" not in config:
        config = f"{REFERENCE_BACKEND}:{config}"
    resolved = resolve_config(config if config is not None else REFERENCE_BACKEND)
    model = get_backend(resolved).cost_model
    if model is None:
        raise ValueError(
            f"backend {resolved.backend!r} has no cost model for plain torch modules; pass a "
            f"{REFERENCE_BACKEND} config or preset name (e.g. 'int8')"
        )
    return model, resolved


def resolve_config(spec: BackendConfig | str) -> BackendConfig:
    """Turn ``"pim"``, ``"pim:pcm"`` or a config into a config."""
    if isinstance(spec, BackendConfig):
        return spec
    backend = get_backend(spec)
    _, _, preset = spec.partition(":")
    return backend.presets.get(preset or backend.default_preset)
