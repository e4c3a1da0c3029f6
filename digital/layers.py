"""Layers of the digital reference backend.

``DigitalLinear``/``DigitalConv1d``/``DigitalConv2d`` are ``nn.Linear``/``nn.Conv*d``
subclasses (same state-dict keys) that carry a :class:`DigitalConfig`; with ``bits < 32``
their forward fake-quantises weights (one scale per tensor) and activations (one scale per
sample, so no result depends on the rest of its batch) to symmetric ``bits``-bit integers
with straight-through gradients, as an integer accelerator computes them.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..common.cost import Cost, output_shape
from ..common.layer import PhysicalModule, WeightsMode
from ..common.quant import fake_quantize
from ..common.rng import is_ideal
from .config import DigitalConfig
from .cost import digital_cost

__all__ = ["DigitalConv1d", "DigitalConv2d", "DigitalLinear", "copy_conv", "with_precision"]


def _quantized(config: DigitalConfig) -> bool:
    return config.bits < 32 and not is_ideal()


class _DigitalMixin(PhysicalModule[DigitalConfig]):
    config_type = DigitalConfig
    transfers_weights = True

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        return digital_cost(self, input_shape, self.config)

    def _operands(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: input must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != weight.dtype:
            raise TypeError(
                f"{name}: input dtype {x.dtype} differs from the layer's {weight.dtype}; cast "
                f"the input (x.to({weight.dtype})) or the model (model.to({x.dtype}))"
            )
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: input contains NaN or inf")
        if x.numel() == 0:
            # An empty batch gives an empty output (there is no sample to take a scale from).
            return x, weight
        if _quantized(self.config):
            bits = self.config.bits
            return fake_quantize(x, bits, per_sample=True), fake_quantize(weight, bits)
        return x, weight

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._physical_repr()}"


class DigitalLinear(_DigitalMixin, nn.Linear):
    """``nn.Linear`` on a digital accelerator (optionally integer-quantised).

    Args:
        in_features: input width.
        out_features: output width.
        bias: learn an additive bias.
        config: accelerator config (default: the ``int8`` preset's values).
        name: qualified name (for random streams; the digital backend draws none).
        device: torch device.
        dtype: torch dtype.

    Shape:
        ``(*, in_features) -> (*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: DigitalConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_physical(config, name)

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: DigitalConfig | None = None, *, name: str = ""
    ) -> DigitalLinear:
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        layer = cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            config=config,
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Linear:
        """``nn.Linear`` with this layer's weights (the same for every ``weights`` mode)."""
        self.check_weights_mode(weights)
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        linear.load_state_dict({k: v for k, v in self.state_dict().items() if k != "_extra_state"})
        return linear

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                f"{self.in_features} (input shape {tuple(x.shape)})"
            )
        x, w = self._operands(x, self.weight)
        return nn.functional.linear(x, w, self.bias)


class _DigitalConv(_DigitalMixin):
    torch_type: type[nn.Conv1d] | type[nn.Conv2d]

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: DigitalConfig | None = None, *, name: str = ""
    ) -> _DigitalConv:
        cls.check_module(module, cls.torch_type, exact=True)
        cls.check_config(config)
        layer = copy_conv(module, cls)
        layer._init_physical(config, name)
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        """The torch conv with this layer's weights (the same for every ``weights`` mode)."""
        self.check_weights_mode(weights)
        return copy_conv(self, self.torch_type)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        out = output_shape(self.to_torch(), input_shape)
        assert out is not None
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(self, nn.Conv1d | nn.Conv2d)
        x, w = self._operands(x, self.weight)
        return self._conv_forward(x, w, self.bias)


def copy_conv(module: Any, target: type[Any]) -> Any:
    """A new module of type ``target`` with ``module``'s conv hyper-parameters and weights."""
    assert isinstance(module, nn.Conv1d | nn.Conv2d)
    new: Any = object.__new__(target)
    torch_type: Any = nn.Conv1d if isinstance(module, nn.Conv1d) else nn.Conv2d
    torch_type.__init__(
        new,
        module.in_channels,
        module.out_channels,
        module.kernel_size,
        stride=module.stride,
        padding=module.padding,
        dilation=module.dilation,
        groups=module.groups,
        bias=module.bias is not None,
        padding_mode=module.padding_mode,
        device=module.weight.device,
        dtype=module.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(module.weight)
        if module.bias is not None:
            new.bias.copy_(module.bias)
    return new


class DigitalConv1d(_DigitalConv, nn.Conv1d):
    """``nn.Conv1d`` on a digital accelerator; build with :meth:`from_torch`."""

    torch_type = nn.Conv1d


class DigitalConv2d(_DigitalConv, nn.Conv2d):
    """``nn.Conv2d`` on a digital accelerator; build with :meth:`from_torch`."""

    torch_type = nn.Conv2d


def with_precision(model: nn.Module, bits: float) -> nn.Module:
    """A copy of ``model`` whose digital layers compute with ``bits``-bit arithmetic."""
    if bits != int(bits) or not 2 <= bits <= 32:
        raise ValueError(f"bits={bits!r} must be a whole number in 2..32")
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, _DigitalMixin):
            module.reconfigure(module.config.replace(bits=int(bits)))
    return model
