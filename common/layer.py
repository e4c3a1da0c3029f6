"""The contract every physnn layer fulfils: :class:`PhysicalModule`.

A physical layer is an ``nn.Module`` that also derives from ``PhysicalModule[ConfigT]`` and
implements:

- ``from_torch(module, config=None, *, name="")`` (classmethod): build the physical layer
  for a torch module (transferring weights where the backend can);
- ``to_torch(weights="exact")``: the equivalent plain torch module. ``"exact"`` copies the
  torch weights the layer computes with (PIM, digital); ``"effective"`` gives the weights
  the physical layer realises (the programmed chip, the optical transfer matrix); layers
  whose parameters are not torch weights raise :class:`WeightsNotTransferredError` for both
  unless ``weights="shape"`` asks for an untrained module of the same shape;
- ``reconfigure(config, *, resample=False)``: re-target the layer to another config of its
  backend without retraining (the read-only ``config`` property cannot be assigned);
- ``cost(input_shape)``: analytic :class:`~physnn.common.cost.Cost` of one forward pass;
- ``output_shape(input_shape)``: output shape without running the layer;
- ``resample_noise()``: redraw the static randomness (a new chip from the same design);
- ``after_step()``: called by the training loop after each optimiser step (weight clipping,
  remapping...); does nothing by default.

The config is kept in the layer and travels in ``state_dict()`` as extra state, so a
state dict restores the configuration and, with the buffers, the same chip. Whether
``load_state_dict`` restores the saved config or keeps the current one is an explicit
choice: :func:`load_state_dict` takes ``config="saved" | "current"``; a plain
``module.load_state_dict`` restores the saved config and warns
(:class:`ConfigRestoredWarning`) when that differs from the current one.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import functools
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar

from torch import nn

from .atomic import load_state_dict_atomically
from .config import BackendConfig, check_choice
from .cost import Cost
from .rng import NoiseStreams

__all__ = [
    "ConfigRestoredWarning",
    "PhysicalModule",
    "WeightsMode",
    "WeightsNotTransferredError",
    "WeightsNotTransferredWarning",
    "load_state_dict",
]

ConfigT = TypeVar("ConfigT", bound=BackendConfig)
WeightsMode = Literal["exact", "effective", "shape"]
LoadConfig = Literal["saved", "current"]
_WEIGHTS_MODES: tuple[str, ...] = ("exact", "effective", "shape")
_LOAD_CONFIG: contextvars.ContextVar[str] = contextvars.ContextVar(
    "physnn_load_config", default="saved"
)


class WeightsNotTransferredWarning(UserWarning):
    """A converted or exported layer does not compute with the torch weights: train it."""


class WeightsNotTransferredError(ValueError):
    """``to_torch`` was asked for weights that a layer does not have as torch weights."""


class ConfigRestoredWarning(UserWarning):
    """``load_state_dict`` replaced a layer's current config by the saved one."""


class PhysicalModule(nn.Module, abc.ABC, Generic[ConfigT]):
    """Mixin base of every backend layer (see module docstring for the contract).

    Subclasses call ``self._init_physical(config, name)`` in ``__init__`` and set the class
    variables ``config_type`` (the backend's config class) and ``transfers_weights``.
    Backends whose derived state depends on the config (a programmed chip, a noise model,
    static fabrication errors) override :meth:`_apply_config`.
    """

    config_type: ClassVar[type[BackendConfig]]
    transfers_weights: ClassVar[bool] = False

    _physnn_config: ConfigT
    streams: NoiseStreams

    @property
    def config(self) -> ConfigT:
        """The layer's config (read-only: change it with :meth:`reconfigure`)."""
        return self._physnn_config

    @config.setter
    def config(self, value: object) -> None:
        raise AttributeError(
            f"{type(self).__name__}.config is read-only; call layer.reconfigure(new_config) "
            "or physnn.reconfigure(model, ...) so that the layer rebuilds what depends on it"
        )

    @classmethod
    def check_config(cls, config: object) -> None:
        """Raise ``TypeError`` unless ``config`` is None or this layer's config type."""
        if config is not None and not isinstance(config, cls.config_type):
            raise TypeError(
                f"{cls.__name__} needs a {cls.config_type.__name__}, got "
                f"{type(config).__name__}; build one with physnn.{cls.config_type.backend}"
                ".presets.get(name)"
            )

    @classmethod
    def check_module(
        cls, module: object, torch_type: type[nn.Module], *, exact: bool = False
    ) -> None:
        """Raise ``TypeError`` unless ``module`` is a ``torch_type`` (exactly, if asked)."""
        ok = type(module) is torch_type if exact else isinstance(module, torch_type)
        if not ok:
            raise TypeError(
                f"{cls.__name__}.from_torch needs an nn.{torch_type.__name__}, got "
                f"{type(module).__name__}"
            )

    @staticmethod
    def check_weights_mode(weights: object) -> None:
        """Raise ``ValueError`` unless ``weights`` is a valid :data:`WeightsMode`."""
        check_choice("", "weights", str(weights), _WEIGHTS_MODES)

    def _init_physical(self, config: ConfigT | None, name: str = "") -> ConfigT:
        self.check_config(config)
        if config is None:
            config = self.config_type()  # type: ignore[assignment]
        assert config is not None
        self._physnn_config = config
        self.streams = NoiseStreams(config.seed, name)
        return config

    @property
    def layer_name(self) -> str:
        """Qualified name used to derive this layer's random streams."""
        return self.streams.name

    def reconfigure(self, config: ConfigT, *, resample: bool = False) -> None:
        """Re-target this layer to ``config`` (same backend) without retraining.

        Args:
            config: the new config; its type must be this layer's ``config_type``.
            resample: redraw the static randomness (a new chip) even where the new config's
                statistics would let the backend keep the current draws.

        The layer rebuilds everything derived from the config (PIM reprograms its chip,
        optics redraws static errors whose statistics changed, quantum rebuilds its noise
        model). On an error the previous config is restored.
        """
        if config is None:
            raise TypeError(
                f"{type(self).__name__}.reconfigure needs a {self.config_type.__name__}, "
                "got None; pass e.g. physnn."
                f"{self.config_type.backend}.presets.get(name)"
            )
        self.check_config(config)
        if not isinstance(resample, bool):
            raise TypeError(f"resample={resample!r} must be True or False")
        old, old_streams = self._physnn_config, self.streams
        self._physnn_config = config
        self.streams = NoiseStreams(config.seed, old_streams.name)
        try:
            self._apply_config(old, resample=resample)
        except Exception:
            self._physnn_config, self.streams = old, old_streams
            self._apply_config(config, resample=False)
            raise

    def _apply_config(self, old: ConfigT, *, resample: bool) -> None:
        """Rebuild state derived from the config after it changed from ``old``.

        The default only restarts the random streams when asked; backends with
        config-dependent state override it.
        """
        if resample:
            self.resample_noise()

    @classmethod
    @abc.abstractmethod
    def from_torch(
        cls, module: nn.Module, config: ConfigT | None = None, *, name: str = ""
    ) -> PhysicalModule[ConfigT]:
        """Build the physical counterpart of ``module``."""

    @abc.abstractmethod
    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        """Return the equivalent plain torch module (see the module docstring)."""

    def _no_torch_weights(self, weights: WeightsMode, torch_type: str) -> None:
        """Raise unless ``weights == "shape"`` (for layers without torch weights); warn then."""
        self.check_weights_mode(weights)
        if weights != "shape":
            raise WeightsNotTransferredError(
                f"{type(self).__name__} {self.layer_name or '<unnamed>'!s}: its parameters "
                f"({self.config_type.backend} phases/angles) are not torch weights, so there "
                f"is no {weights!r} {torch_type}; pass weights='shape' for an untrained "
                f"{torch_type} of the same shape, or keep the physical layer"
            )
        warnings.warn(
            f"{type(self).__name__} {self.layer_name or '<unnamed>'}: to_torch(weights='shape')"
            f" returns a freshly initialised {torch_type}; train it before use",
            WeightsNotTransferredWarning,
            stacklevel=3,
        )

    @abc.abstractmethod
    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Analytic cost of one forward pass on an input of ``input_shape``."""

    @abc.abstractmethod
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for ``input_shape``, without running the layer."""

    def classical_macs(self, input_shape: tuple[int, ...]) -> int:
        """MACs of one forward pass on ``input_shape`` that this layer computes digitally
        (classical pre/post-processing inside the physical layer); 0 by default."""
        return 0

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by where they live: ``"classical"`` (digital pre/post
        processing) and the substrate's own (``"physical"`` unless a backend names it)."""
        return {
            "physical": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "classical": 0,
        }

    def param_groups(self, lr: float, classical_lr: float | None = None) -> list[dict[str, Any]]:
        """Optimizer parameter groups of this layer (used by
        :func:`physnn.common.train.fit`): one group at ``lr`` by default; layers with
        classical pre/post-processing put it in a group at ``classical_lr`` (default ``lr``).
        """
        return [{"params": list(self.parameters()), "lr": lr}]

    def resample_noise(self) -> None:
        """Redraw static randomness; layers without static randomness restart their streams."""
        self.streams.reset()

    def after_step(self) -> None:
        """Hook run by :func:`physnn.common.train.fit` after each optimiser step."""

    def get_extra_state(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "name": self.streams.name}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or "config" not in state:
            raise ValueError(f"{type(self).__name__}: malformed extra state {state!r}")
        saved = self.config_type.from_dict(state["config"])
        name = str(state.get("name", ""))
        current: ConfigT | None = self.__dict__.get("_physnn_config")
        if _LOAD_CONFIG.get() == "current" and current is not None:
            self.streams = NoiseStreams(current.seed, name)
            if saved != current:
                self._apply_config(saved, resample=False)  # type: ignore[arg-type]
            return
        if current is not None and saved != current:
            warnings.warn(
                f"{type(self).__name__} {name or '<unnamed>'}: load_state_dict restored the "
                f"saved config ({saved.describe()}) over the current one "
                f"({current.describe()}), which differ in {_changed_fields(saved, current)}; "
                "use physnn.load_state_dict(model, state, config='current') to keep the "
                "current config",
                ConfigRestoredWarning,
                stacklevel=2,
            )
        self._physnn_config = saved  # type: ignore[assignment]
        self.streams = NoiseStreams(saved.seed, name)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """:meth:`torch.nn.Module.load_state_dict`, all or nothing: when it raises, the layer
        (weights, chip, config and streams) is exactly as it was before the call."""
        return load_state_dict_atomically(
            self,
            functools.partial(nn.Module.load_state_dict, self, strict=strict, assign=assign),
            state_dict,
        )

    def _physical_repr(self) -> str:
        return f"preset={self.config.describe()}"


def _changed_fields(a: BackendConfig, b: BackendConfig) -> str:
    """Names of the top-level fields in which two configs of one type differ."""
    names = [f for f, v in a.to_dict().items() if b.to_dict().get(f) != v]
    return ", ".join(names) or "nothing"


@contextlib.contextmanager
def _load_config(choice: str) -> Iterator[None]:
    token = _LOAD_CONFIG.set(choice)
    try:
        yield
    finally:
        _LOAD_CONFIG.reset(token)


def load_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, Any],
    *,
    config: LoadConfig,
    strict: bool = True,
) -> Any:
    """``model.load_state_dict(state_dict, strict=strict)`` with an explicit config choice.

    Args:
        model: a model holding physnn layers.
        state_dict: a state dict saved from a model of the same structure.
        config: ``"saved"`` restores each layer's config from the state dict (the same chip
            as saved); ``"current"`` keeps each layer's current config and rebuilds what
            depends on it, e.g. to evaluate saved weights under another preset.
        strict: as in :meth:`torch.nn.Module.load_state_dict`.

    Returns:
        torch's ``(missing_keys, unexpected_keys)`` named tuple.

    Raises:
        RuntimeError, ValueError: as torch does for missing, unexpected or mis-shaped keys,
            or for a saved config that is not valid; the model is then exactly as it was
            before the call (a plain ``model.load_state_dict`` on a container leaves the
            modules loaded before the failing one changed; a bare physnn layer's own
            ``load_state_dict`` is all or nothing too).
    """
    check_choice("load_state_dict", "config", config, ("saved", "current"))
    with _load_config(config), warnings.catch_warnings():
        if config == "saved":
            warnings.simplefilter("ignore", ConfigRestoredWarning)
        return load_state_dict_atomically(
            model, functools.partial(nn.Module.load_state_dict, model, strict=strict), state_dict
        )
