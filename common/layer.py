"""The contract every physnn layer fulfils.

A physical layer is an ``nn.Module`` that also derives from :class:`PhysicalLayer` and
implements:

- ``from_torch(module, config=None, *, name="")`` (classmethod): build the physical layer
  for a torch module (transferring weights where the backend can);
- ``to_torch()``: the equivalent plain torch module (weights copied back where they map);
- ``cost(input_shape)``: analytic :class:`~physnn.common.cost.Cost` of one forward pass;
- ``output_shape(input_shape)``: output shape without running the layer;
- ``resample_noise()``: redraw the static randomness (a new chip from the same design);
- ``after_step()``: called by the training loop after each optimiser step (weight clipping,
  remapping...); does nothing by default.

The config is kept in the layer and travels in ``state_dict()`` as extra state, so a
state dict restores the configuration and, with the buffers, the same chip.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from torch import nn

from .config import BackendConfig
from .cost import Cost
from .rng import NoiseStreams

__all__ = ["PhysicalLayer"]


class PhysicalLayer(nn.Module, abc.ABC):
    """Mixin base of every backend layer (see module docstring for the contract).

    Subclasses call ``self._init_physical(config, name)`` in ``__init__`` and set the class
    variables ``config_type`` (the backend's config class) and ``transfers_weights``.
    """

    config_type: ClassVar[type[BackendConfig]]
    transfers_weights: ClassVar[bool] = False

    config: BackendConfig
    streams: NoiseStreams

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

    def _init_physical(self, config: BackendConfig | None, name: str = "") -> BackendConfig:
        self.check_config(config)
        if config is None:
            config = self.config_type()
        self.config = config
        self.streams = NoiseStreams(config.seed, name)
        return config

    @property
    def layer_name(self) -> str:
        """Qualified name used to derive this layer's random streams."""
        return self.streams.name

    @classmethod
    @abc.abstractmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> PhysicalLayer:
        """Build the physical counterpart of ``module``."""

    @abc.abstractmethod
    def to_torch(self) -> nn.Module:
        """Return the equivalent plain torch module."""

    @abc.abstractmethod
    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Analytic cost of one forward pass on an input of ``input_shape``."""

    @abc.abstractmethod
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape for ``input_shape``, without running the layer."""

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by where they live: ``"classical"`` (digital pre/post
        processing) and the substrate's own (``"physical"`` unless a backend names it)."""
        return {
            "physical": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "classical": 0,
        }

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
        self.config = self.config_type.from_dict(state["config"])
        self.streams = NoiseStreams(self.config.seed, str(state.get("name", "")))

    def _physical_repr(self) -> str:
        return f"preset={self.config.describe()}"
