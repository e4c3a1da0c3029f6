"""The digital reference backend: plain torch arithmetic with a digital accelerator's costs.

Every comparison has a digital row. ``DigitalLinear``/``DigitalConv1d``/``DigitalConv2d``
are ``nn.Linear``/``nn.Conv*d`` subclasses (same state-dict keys) that carry a
:class:`DigitalConfig`; with ``bits < 32`` their forward fake-quantises weights and
activations to symmetric ``bits``-bit integers (straight-through gradients), as an integer
accelerator computes them.

Cost model per sample and layer (linear in the batch):

- energy = MACs * ``mac_energy`` + (weight + input + output bytes) * ``sram_energy_per_byte``
  (+ weight bytes * ``dram_energy_per_byte`` when ``weights_from_dram``): weights are read
  once per sample, a conservative no-reuse assumption;
- latency = MACs / (``peak_macs_per_second`` * ``utilization``);
- area = weight bits * ``sram_bit_area`` (on-chip weight storage).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any, cast

import torch
from torch import nn

from .backend import Backend, Capabilities, PresetRegistry, StressTest
from .config import BackendConfig, check_int, check_range
from .cost import Cost, count_macs, output_shape
from .layer import PhysicalLayer
from .rng import is_ideal

__all__ = [
    "BACKEND",
    "DigitalConfig",
    "DigitalConv1d",
    "DigitalConv2d",
    "DigitalLinear",
    "digital_cost",
    "fake_quantize",
    "presets",
    "with_precision",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitalConfig(BackendConfig):
    """A digital accelerator: operand precision and energy/latency coefficients.

    Defaults are the 45 nm figures of M. Horowitz, "Computing's energy problem (and what
    we can do about it)", ISSCC 2014, for 8-bit integer arithmetic.
    """

    backend = "digital"

    bits: int = 8
    """Operand precision [bit]; 32 means float32 arithmetic (no quantisation)."""

    mac_energy: float = 0.23e-12
    """Energy of one multiply-accumulate [J]; 8-bit int: 0.2 pJ mult + 0.03 pJ add
    (Horowitz 2014)."""

    sram_energy_per_byte: float = 1.25e-12
    """On-chip SRAM access energy [J/byte]; 10 pJ per 64-bit read of an 8 KB SRAM
    (Horowitz 2014)."""

    dram_energy_per_byte: float = 160e-12
    """Off-chip DRAM access energy [J/byte]; 1.3 nJ per 64-bit access (Horowitz 2014)."""

    weights_from_dram: bool = False
    """Fetch every weight from DRAM for each sample (no on-chip weight storage)."""

    peak_macs_per_second: float = 4.6e13
    """Peak throughput [MAC/s]; TPU v1: 65,536 8-bit MACs at 700 MHz (Jouppi et al.,
    ISCA 2017)."""

    utilization: float = 0.13
    """Achieved fraction of peak throughput; MLP workloads on TPU v1 reach about an eighth
    of peak (Jouppi et al., ISCA 2017, Table 3)."""

    sram_bit_area: float = 0.35e-12
    """Area of one SRAM bit cell [m^2]; about 0.35 um^2 for a 45 nm 6T cell (ITRS)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_int(owner, "bits", self.bits, 1, 32)
        check_range(
            owner,
            "mac_energy",
            self.mac_energy,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules: 0.23 pJ is 0.23e-12",
        )
        check_range(
            owner,
            "sram_energy_per_byte",
            self.sram_energy_per_byte,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules",
        )
        check_range(
            owner,
            "dram_energy_per_byte",
            self.dram_energy_per_byte,
            0,
            1e-6,
            unit="J",
            hint="energies are in joules",
        )
        check_range(
            owner,
            "peak_macs_per_second",
            self.peak_macs_per_second,
            0,
            None,
            low_inclusive=False,
            unit="MAC/s",
        )
        check_range(
            owner,
            "utilization",
            self.utilization,
            0,
            1,
            low_inclusive=False,
            hint="pass a fraction, not a percentage",
        )
        check_range(
            owner,
            "sram_bit_area",
            self.sram_bit_area,
            0,
            1e-9,
            unit="m^2",
            hint="areas are in square metres: 0.35 um^2 is 0.35e-12",
        )
        if not isinstance(self.weights_from_dram, bool):
            raise TypeError(f"{owner}.weights_from_dram must be a bool")

    def ideal(self) -> DigitalConfig:
        """Float32 arithmetic (no quantisation), same cost coefficients."""
        return self.replace(bits=32)


presets = PresetRegistry("digital")
presets.register(
    "int8",
    DigitalConfig(),
    "Horowitz, ISSCC 2014 (45 nm energies); Jouppi et al., ISCA 2017 (TPU v1 throughput)",
)
presets.register(
    "fp32",
    DigitalConfig(bits=32, mac_energy=4.6e-12, peak_macs_per_second=4.6e13 / 4),
    "Horowitz, ISSCC 2014: 32-bit float mult 3.7 pJ + add 0.9 pJ at 45 nm",
)
presets.register(
    "gpu-a100",
    DigitalConfig(
        bits=8,
        mac_energy=400.0 / 312e12,
        sram_energy_per_byte=0.0,
        dram_energy_per_byte=0.0,
        peak_macs_per_second=312e12,
        utilization=0.3,
        sram_bit_area=0.0,
    ),
    "NVIDIA A100 datasheet: 624 dense INT8 TOPS at 400 W board power (1.28 pJ per MAC, "
    "memory included); 30 % utilisation assumed",
)


def fake_quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric per-tensor quantisation to signed ``bits``-bit integers, straight-through.

    Args:
        x: tensor to quantise.
        bits: precision [bit], 2..31; the grid is ``max|x| / (2**(bits-1) - 1)``.

    Returns:
        ``x`` rounded to the grid in the forward pass, with identity gradient.
    """
    levels = 2 ** (bits - 1) - 1
    scale = x.detach().abs().amax().clamp_min(torch.finfo(x.dtype).tiny) / levels
    q = torch.round(x / scale) * scale
    return x + (q - x).detach()


def _quantized(config: DigitalConfig) -> bool:
    return config.bits < 32 and not is_ideal()


def digital_cost(
    module: nn.Module, input_shape: tuple[int, ...], config: DigitalConfig | str | None = None
) -> Cost:
    """Cost of a torch module on a digital accelerator (see the module docstring).

    Args:
        module: a torch module (Linear, Conv1d/2d, RNN/LSTM/GRU are costed; others are free).
        input_shape: input shape with the batch.
        config: a :class:`DigitalConfig`, a preset name, or None for ``int8``.
    """
    resolved = presets.get(config or "int8") if not isinstance(config, DigitalConfig) else config
    assert isinstance(resolved, DigitalConfig)
    config = resolved
    macs = count_macs(module, input_shape)
    if macs == 0:
        return Cost()
    n_weights = sum(p.numel() for p in module.parameters())
    out = output_shape(module, input_shape)
    out_numel = math.prod(out) if out is not None else 0
    byte = config.bits / 8
    batch = input_shape[0]
    weight_bytes = n_weights * byte * batch
    act_bytes = (math.prod(input_shape) + out_numel) * byte
    energy = macs * config.mac_energy + (weight_bytes + act_bytes) * config.sram_energy_per_byte
    if config.weights_from_dram:
        energy += weight_bytes * config.dram_energy_per_byte
    return Cost(
        energy=energy,
        latency=macs / (config.peak_macs_per_second * config.utilization),
        area=n_weights * config.bits * config.sram_bit_area,
        macs=macs,
        resources={"memory_bytes": weight_bytes + act_bytes},
    )


class _DigitalMixin(PhysicalLayer):
    config_type = DigitalConfig
    transfers_weights = True
    config: DigitalConfig

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        return digital_cost(self, input_shape, self.config)

    def _operands(self, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not torch.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}: input contains NaN or inf")
        if _quantized(self.config):
            return fake_quantize(x, self.config.bits), fake_quantize(weight, self.config.bits)
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
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> DigitalLinear:
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        layer = cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            config=cast("DigitalConfig | None", config),  # checked above
            name=name,
            device=module.weight.device,
            dtype=module.weight.dtype,
        )
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    def to_torch(self) -> nn.Linear:
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
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> _DigitalConv:
        cls.check_module(module, cls.torch_type, exact=True)
        cls.check_config(config)
        layer = copy_conv(module, cls)
        layer._init_physical(config, name)
        return layer

    def to_torch(self) -> nn.Module:
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
            module.config = module.config.replace(bits=int(bits))
    return model


BACKEND = Backend(
    name="digital",
    config_type=DigitalConfig,
    layers={nn.Linear: DigitalLinear, nn.Conv1d: DigitalConv1d, nn.Conv2d: DigitalConv2d},
    presets=presets,
    capabilities=Capabilities(
        module_types=(nn.Linear, nn.Conv1d, nn.Conv2d),
        transfers_weights=True,
        trainable=True,
        notes="reference: torch arithmetic, optionally integer-quantised",
    ),
    default_preset="int8",
    stress=StressTest(name="precision", unit="bit", values=(8, 6, 4, 3, 2), apply=with_precision),
)
