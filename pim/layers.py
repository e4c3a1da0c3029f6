"""Crossbar layers: ``PIMLinear``, ``PIMConv1d/2d/3d``, ``PIMLSTM``, ``PIMGRU``.

Each layer keeps torch's parameters (same names and shapes, so a torch state dict loads) and
one :class:`~physnn.pim.tile.CrossbarTile` per weight matrix: the chip those weights are
programmed onto. The layers are thin: shapes, im2col, recurrences and biases here; programming,
drift and the analog read in the tile; converters and noise in
:mod:`physnn.pim.periphery`.

Modes:
    - ``train()``: hardware-aware training (Rasch et al., Nat. Commun. 14, 5282, 2023):
      weight and output noise injection and DAC/ADC quantisation with straight-through
      gradients on the floating-point weights; ``after_step()`` clips weights and lets a
      learned input range decay.
    - ``eval()``: the programmed chip at its drift time; per-read noise drawn per input vector.
    - inside ``physnn.ideal()`` or with an ideal config: exactly ``nn.Linear``/``nn.Conv``/RNN.

A chip whose weights changed since programming (training, ``load_state_dict``, manual edits,
copies) is reprogrammed from the current weights on its next read (see
:mod:`physnn.pim.tile`); ``reconfigure`` rebuilds it for the new config.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..common.config import BackendConfig
from ..common.cost import Cost
from ..common.layer import PhysicalModule, WeightsMode
from ..common.rng import is_ideal
from .config import PIMConfig
from .cost import crossbar_cost
from .tile import CrossbarTile, check_time, unnamed_layer_name

__all__ = [
    "PIMGRU",
    "PIMLSTM",
    "PIMConv1d",
    "PIMConv2d",
    "PIMConv3d",
    "PIMLinear",
    "drift",
]

_HALF = (torch.float16, torch.bfloat16)


_CONVERTING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "physnn_pim_converting", default=False
)
"""Inside :func:`_converting` (in this thread or task only, like ``physnn.ideal()``),
constructors draw the chip's defects but leave programming to ``from_torch``, which
programs the copied weights once."""


@contextlib.contextmanager
def _converting() -> Iterator[None]:
    token = _CONVERTING.set(True)
    try:
        yield
    finally:
        _CONVERTING.reset(token)


def _new_chip(tile: CrossbarTile, matrix: torch.Tensor) -> None:
    """Draw a new tile's defects and program ``matrix`` (unless ``from_torch`` will)."""
    tile.draw_defects()
    if not _CONVERTING.get():
        tile.program(matrix)


def _check_int(arg: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{arg}={value!r} must be a positive int")


def _check_finite(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise ``ValueError`` when the output is not finite (one reduction in the normal case)."""
    if torch.isfinite(y.sum()) or torch.isfinite(y).all():
        return
    if not torch.isfinite(x).all():
        raise ValueError(f"{type(layer).__name__}: input contains NaN or inf")
    raise ValueError(f"{type(layer).__name__}: weights or input range are not finite")


class _PIMLayer(PhysicalModule[PIMConfig]):
    """What every crossbar layer shares: its tiles, config changes, drift and state dicts."""

    config_type = PIMConfig
    transfers_weights = True
    _ideal_config: bool

    @abc.abstractmethod
    def _crossbars(self) -> Iterator[tuple[CrossbarTile, torch.Tensor, torch.Tensor]]:
        """``(tile, weight matrix [out, in], weight parameter)`` for every crossbar."""

    def _init_pim(self, config: PIMConfig | None, name: str) -> PIMConfig:
        if not name and config is not None and config.seed is not None:
            name = unnamed_layer_name(type(self).__name__)
        cfg = self._init_physical(config, name)
        self._ideal_config = cfg.is_ideal
        return cfg

    def parameter_counts(self) -> dict[str, int]:
        """Weights live on the crossbars; biases and learned input ranges are digital."""
        counts = {"physical": 0, "classical": 0}
        for name, p in self.named_parameters():
            if p.requires_grad:
                key = "physical" if name.rpartition(".")[2].startswith("weight") else "classical"
                counts[key] += p.numel()
        return counts

    def _ideal(self) -> bool:
        return is_ideal() or self._ideal_config

    def _check_dtype(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        if x.dtype != weight.dtype:
            raise TypeError(
                f"{type(self).__name__}: input dtype {x.dtype} differs from the layer's "
                f"{weight.dtype}; cast the input (x.to({weight.dtype})) or the layer "
                f"(layer.to({x.dtype}))"
            )
        if not x.dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__}: input must be floating point, got {x.dtype}")

    # ------------------------------------------------------------------ chip verbs
    def program(self) -> None:
        """Program the current weights onto the chip (drift time reset to 0)."""
        for tile, matrix, _ in self._crossbars():
            tile.program(matrix)

    def drift(self, t: float) -> None:
        """Move every crossbar to ``t`` seconds after programming (compensated per config)."""
        t = check_time(t)
        for tile, matrix, _ in self._crossbars():
            tile.drift(t, matrix)

    @property
    def drift_time(self) -> float:
        """Seconds since programming [s]."""
        return max(tile.drift_time for tile, _, _ in self._crossbars())

    def resample_noise(self) -> None:
        """A new chip from the same design: redraw faults, variation, ADC errors and
        programming noise (at the same drift time). With a seed the draws repeat."""
        super().resample_noise()
        for tile, matrix, _ in self._crossbars():
            tile.draw_defects()
            tile.program(matrix, keep_time=True)

    def after_step(self) -> None:
        """Clip weights (HWA) and let learned input ranges decay, once per crossbar."""
        for tile, _, weight in self._crossbars():
            tile.after_step(weight, clip=not self._ideal_config)

    def _apply_config(self, old: PIMConfig, *, resample: bool) -> None:
        self._ideal_config = self.config.is_ideal
        for tile, matrix, _ in self._crossbars():
            tile.rebuild(self.config, self.streams, matrix)

    # ------------------------------------------------------------------ state dict
    def set_extra_state(self, state: Any) -> None:
        super().set_extra_state(state)
        saved = self.config_type.from_dict(state["config"])
        self._ideal_config = self.config.is_ideal
        for tile, matrix, _ in self._crossbars():
            if tile.config != self.config:
                tile.rebuild(self.config, self.streams, matrix)
            else:
                tile.bind(self.config, self.streams)
            # a saved chip is this chip only when it was saved under the resulting config
            tile.load_saved_chip = self.config == saved

    def _load_from_state_dict(
        self,
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        # a plain torch state dict (no config, no chip) loads: the current config is kept and
        # the chip is reprogrammed from the loaded weights on the next read
        key = prefix + "_extra_state"
        if key in missing_keys:
            missing_keys.remove(key)

    def _mvm_cost(self, n_mvm: int) -> Cost:
        total = Cost()
        for tile, _, _ in self._crossbars():
            total = total + crossbar_cost(self.config, tile.n_in, tile.n_out, n_mvm)
        return total

    def _chip_repr(self) -> str:
        return f"{self._physical_repr()}, t={self.drift_time:g}s"


class PIMLinear(_PIMLayer, nn.Linear):
    """``nn.Linear`` computed on analog crossbar tiles.

    Args:
        in_features: input width (crossbar rows).
        out_features: output width (crossbar columns).
        bias: learn an additive bias (applied digitally).
        config: the accelerator (default: ``PIMConfig()``, the ``pcm`` device model).
        name: qualified name, seeds this layer's random streams (an unnamed seeded layer gets
            a process-unique name, so two such layers never share draws).
        device: torch device.
        dtype: torch dtype.

    Shape:
        ``(*, in_features) -> (*, out_features)``.

    Physics:
        See :mod:`physnn.pim.tile` and :class:`~physnn.pim.config.PIMConfig`.

    Examples:
        >>> import torch, physnn.pim as pim
        >>> layer = pim.PIMLinear(64, 10, config=pim.presets.get("pcm", seed=0))
        >>> layer.eval()(torch.rand(8, 64)).shape
        torch.Size([8, 10])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        _check_int("in_features", in_features)
        _check_int("out_features", out_features)
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        cfg = self._init_pim(config, name)
        self.tile = CrossbarTile(
            in_features, out_features, cfg, self.streams, device=device, dtype=self.weight.dtype
        )
        _new_chip(self.tile, self.weight)

    def _crossbars(self) -> Iterator[tuple[CrossbarTile, torch.Tensor, torch.Tensor]]:
        yield self.tile, self.weight, self.weight

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> PIMLinear:
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        with _converting():
            layer = cls(
                module.in_features,
                module.out_features,
                module.bias is not None,
                config=config,  # type: ignore[arg-type]
                name=name,
                device=module.weight.device,
                dtype=module.weight.dtype,
            )
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            if module.bias is not None and layer.bias is not None:
                layer.bias.copy_(module.bias)
        layer.program()
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Linear:
        self.check_weights_mode(weights)
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        if weights == "shape":
            return linear
        with torch.no_grad():
            w = self.weight if weights == "exact" else self.tile.effective_matrix(self.weight)
            linear.weight.copy_(w)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], self.out_features)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        return self._mvm_cost(math.prod(input_shape[:-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                f"{self.in_features} (input shape {tuple(x.shape)})"
            )
        self._check_dtype(x, self.weight)
        if self._ideal():
            y = F.linear(x, self.weight, self.bias)
        else:
            y = self.tile(x.reshape(-1, self.in_features), self.weight, self.bias)
            y = y.reshape(*x.shape[:-1], self.out_features)
        _check_finite(self, x, y)
        return y

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, {self._chip_repr()}"


class _PIMConvNd(_PIMLayer):
    """Convolution lowered to crossbar MVMs by unfolding (im2col), for 1, 2 or 3 spatial dims.

    Grouped and depthwise convolutions map onto one crossbar as a block-diagonal matrix
    (off-block devices programmed to zero weight, which costs cells and carries their
    programming noise, as on a chip that maps them so).
    """

    torch_type: ClassVar[type[nn.Conv1d] | type[nn.Conv2d] | type[nn.Conv3d]]
    _nd: ClassVar[int]
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    bias: torch.Tensor | None
    weight: torch.Tensor
    padding: str | tuple[int, ...]
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: str | int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros",
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        self.torch_type.__init__(
            self,  # type: ignore[arg-type]
            in_channels,
            out_channels,
            kernel_size,  # type: ignore[arg-type]
            stride,  # type: ignore[arg-type]
            padding,  # type: ignore[arg-type]
            dilation,  # type: ignore[arg-type]
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype,
        )
        cfg = self._init_pim(config, name)
        n_in = self.in_channels * math.prod(self.kernel_size)
        self.tile = CrossbarTile(
            n_in, self.out_channels, cfg, self.streams, device=device, dtype=self.weight.dtype
        )
        _new_chip(self.tile, self._matrix())

    def _matrix(self) -> torch.Tensor:
        """The weight as one crossbar matrix ``[out, in_channels * prod(kernel)]``."""
        flat = self.weight.flatten(1)
        if self.groups == 1:
            return flat
        return torch.block_diag(*flat.chunk(self.groups, 0))

    def _crossbars(self) -> Iterator[tuple[CrossbarTile, torch.Tensor, torch.Tensor]]:
        yield self.tile, self._matrix(), self.weight

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> _PIMConvNd:
        cls.check_module(module, cls.torch_type, exact=True)
        cls.check_config(config)
        assert isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
        with _converting():
            layer = cls(
                module.in_channels,
                module.out_channels,
                module.kernel_size,
                stride=module.stride,
                padding=module.padding,
                dilation=module.dilation,
                groups=module.groups,
                bias=module.bias is not None,
                padding_mode=module.padding_mode,
                config=config,  # type: ignore[arg-type]
                name=name,
                device=module.weight.device,
                dtype=module.weight.dtype,
            )
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            if module.bias is not None and layer.bias is not None:
                layer.bias.copy_(module.bias)
        layer.program()
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        self.check_weights_mode(weights)
        conv = self.torch_type(
            self.in_channels,
            self.out_channels,
            self.kernel_size,  # type: ignore[arg-type]
            stride=self.stride,  # type: ignore[arg-type]
            padding=self.padding,  # type: ignore[arg-type]
            dilation=self.dilation,  # type: ignore[arg-type]
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        if weights == "shape":
            return conv
        with torch.no_grad():
            w: torch.Tensor
            if weights == "exact":
                w = self.weight
            else:
                full = self.tile.effective_matrix(self._matrix())
                per = self.in_channels // self.groups * math.prod(self.kernel_size)
                out = self.out_channels // self.groups
                blocks = [
                    full[g * out : (g + 1) * out, g * per : (g + 1) * per]
                    for g in range(self.groups)
                ]
                w = torch.cat(blocks).reshape(self.weight.shape)
            conv.weight.copy_(w)
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def _pad_amounts(self) -> list[int]:
        """``F.pad`` amounts (last spatial dim first) for the layer's padding."""
        amounts: list[int] = []
        for i in reversed(range(self._nd)):
            if self.padding == "valid":
                left = right = 0
            elif self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                left, right = total // 2, total - total // 2
            else:
                assert isinstance(self.padding, tuple)
                left = right = self.padding[i]
            amounts += [left, right]
        return amounts

    def _spatial_out(self, size: tuple[int, ...]) -> tuple[int, ...]:
        pads = self._pad_amounts()
        out = []
        for i in range(self._nd):
            padded = size[i] + pads[2 * (self._nd - 1 - i)] + pads[2 * (self._nd - 1 - i) + 1]
            reach = self.dilation[i] * (self.kernel_size[i] - 1) + 1
            out.append((padded - reach) // self.stride[i] + 1)
        return tuple(out)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        nd = self._nd
        spatial = self._spatial_out(tuple(input_shape[-nd:]))
        return (*input_shape[: -nd - 1], self.out_channels, *spatial)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        out = self.output_shape(input_shape)
        positions = math.prod(out[-self._nd :]) * math.prod(out[: -self._nd - 1])
        return self._mvm_cost(positions)

    def _columns(self, x: torch.Tensor) -> torch.Tensor:
        """im2col of a padded ``[B, C, *S]`` input: ``[B, *L, C * prod(kernel)]``."""
        nd = self._nd
        for i in range(nd):
            reach = self.dilation[i] * (self.kernel_size[i] - 1) + 1
            x = x.unfold(2 + i, reach, self.stride[i])
        index: tuple[Any, ...] = (..., *(slice(None, None, d) for d in self.dilation))
        x = x[index]  # [B, C, *L, *k]
        order = (0, *range(2, 2 + nd), 1, *range(2 + nd, 2 + 2 * nd))
        x = x.permute(order)
        return x.reshape(*x.shape[: 1 + nd], self.in_channels * math.prod(self.kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nd = self._nd
        if x.dim() not in (nd + 1, nd + 2):
            raise ValueError(
                f"{type(self).__name__}: expected a {nd + 2}-D (batched) or {nd + 1}-D input, "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[-nd - 1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-nd - 1]} channels, expected "
                f"{self.in_channels} (input shape {tuple(x.shape)})"
            )
        self._check_dtype(x, self.weight)
        unbatched = x.dim() == nd + 1
        xb = x.unsqueeze(0) if unbatched else x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        padded = F.pad(xb, self._pad_amounts(), mode=mode)
        if self._ideal():
            conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
            y = conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        else:
            cols = self._columns(padded)  # [B, *L, n_in]
            spatial = cols.shape[1:-1]
            flat = self.tile(cols.reshape(-1, cols.shape[-1]), self._matrix(), self.bias)
            y = flat.reshape(xb.shape[0], *spatial, self.out_channels)
            y = y.permute(0, nd + 1, *range(1, nd + 1))
        _check_finite(self, x, y)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return f"{self.torch_type.extra_repr(self)}, {self._chip_repr()}"  # type: ignore[arg-type]


class PIMConv1d(_PIMConvNd, nn.Conv1d):
    """``nn.Conv1d`` on crossbar tiles (im2col); same arguments as ``nn.Conv1d``.

    Shape:
        ``(N, C_in, L) -> (N, C_out, L_out)``.
    """

    torch_type = nn.Conv1d
    _nd = 1


class PIMConv2d(_PIMConvNd, nn.Conv2d):
    """``nn.Conv2d`` on crossbar tiles (im2col); same arguments as ``nn.Conv2d``.

    Shape:
        ``(N, C_in, H, W) -> (N, C_out, H_out, W_out)``.
    """

    torch_type = nn.Conv2d
    _nd = 2


class PIMConv3d(_PIMConvNd, nn.Conv3d):
    """``nn.Conv3d`` on crossbar tiles (im2col); same arguments as ``nn.Conv3d``.

    Shape:
        ``(N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out)``.
    """

    torch_type = nn.Conv3d
    _nd = 3


class _PIMRecurrent(_PIMLayer):
    """LSTM/GRU whose input and hidden matrices are crossbars.

    Parameters carry ``nn.LSTM``/``nn.GRU``'s names (``weight_ih_l0``, ``bias_hh_l0_reverse``,
    ...), so a torch state dict loads; each matrix has its tile in ``tiles`` (keys
    ``ih_l0``, ``hh_l0_reverse``, ...). Per layer and direction, ``ih`` maps ``x_t`` (all time
    steps in one batched MVM) and ``hh`` maps ``h_{t-1}``; the gate nonlinearities, the cell
    update and the biases stay digital. ``proj_size`` is not supported.
    """

    mode: ClassVar[str]
    gates: ClassVar[int]
    torch_type: ClassVar[type[nn.LSTM] | type[nn.GRU]]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        config: PIMConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.check_config(config)
        nn.Module.__init__(self)
        _check_int("input_size", input_size)
        _check_int("hidden_size", hidden_size)
        _check_int("num_layers", num_layers)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} must be in [0, 1)")
        cfg = self._init_pim(config, name)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        rows = self.gates * hidden_size
        self.tiles = nn.ModuleDict()
        for layer, suffix in self._suffixes():
            dirs = 2 if bidirectional else 1
            in_size = input_size if layer == 0 else hidden_size * dirs
            for part, width in (("ih", in_size), ("hh", hidden_size)):
                setattr(
                    self, f"weight_{part}_{suffix}", nn.Parameter(torch.empty(rows, width, **kw))
                )
                if bias:
                    setattr(self, f"bias_{part}_{suffix}", nn.Parameter(torch.empty(rows, **kw)))
        self.reset_parameters()
        for _, suffix in self._suffixes():
            for part in ("ih", "hh"):
                weight = getattr(self, f"weight_{part}_{suffix}")
                key = f"{part}_{suffix}"
                tile = CrossbarTile(
                    weight.shape[1],
                    rows,
                    cfg,
                    self.streams,
                    key=f"{key}.",
                    device=device,
                    dtype=weight.dtype,
                )
                _new_chip(tile, weight)
                self.tiles[key] = tile

    def _suffixes(self) -> Iterator[tuple[int, str]]:
        for layer in range(self.num_layers):
            for direction in range(2 if self.bidirectional else 1):
                yield layer, f"l{layer}" + ("_reverse" if direction else "")

    def reset_parameters(self) -> None:
        """``nn.LSTM``/``nn.GRU``'s initialisation: ``U(-1/sqrt(H), 1/sqrt(H))``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters(recurse=False):
                if name.startswith(("weight_", "bias_")):
                    p.uniform_(-bound, bound)

    def _weight(self, part: str, suffix: str) -> torch.Tensor:
        weight = getattr(self, f"weight_{part}_{suffix}")
        assert isinstance(weight, torch.Tensor)
        return weight

    def _tile(self, part: str, suffix: str) -> CrossbarTile:
        tile = self.tiles[f"{part}_{suffix}"]
        assert isinstance(tile, CrossbarTile)
        return tile

    def _crossbars(self) -> Iterator[tuple[CrossbarTile, torch.Tensor, torch.Tensor]]:
        for _, suffix in self._suffixes():
            for part in ("ih", "hh"):
                weight = self._weight(part, suffix)
                yield self._tile(part, suffix), weight, weight

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> _PIMRecurrent:
        cls.check_module(module, cls.torch_type, exact=True)
        assert isinstance(module, nn.LSTM | nn.GRU)
        if getattr(module, "proj_size", 0):
            raise TypeError(f"{cls.__name__}: LSTM proj_size > 0 is not supported")
        cls.check_config(config)
        with _converting():
            layer = cls(
                module.input_size,
                module.hidden_size,
                module.num_layers,
                module.bias,
                module.batch_first,
                float(module.dropout),
                module.bidirectional,
                config=config,  # type: ignore[arg-type]
                name=name,
                device=module.weight_ih_l0.device,
                dtype=module.weight_ih_l0.dtype,
            )
        with torch.no_grad():
            for key, p in layer.named_parameters(recurse=False):
                p.copy_(getattr(module, key))
        layer.program()
        return layer

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        self.check_weights_mode(weights)
        ref = self._weight("ih", "l0")
        rnn = self.torch_type(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            batch_first=self.batch_first,
            dropout=self.dropout,
            bidirectional=self.bidirectional,
            device=ref.device,
            dtype=ref.dtype,
        )
        if weights == "shape":
            return rnn
        with torch.no_grad():
            for key, p in self.named_parameters(recurse=False):
                getattr(rnn, key).copy_(p)
            if weights == "effective":
                for _, suffix in self._suffixes():
                    for part in ("ih", "hh"):
                        w = self._tile(part, suffix).effective_matrix(self._weight(part, suffix))
                        getattr(rnn, f"weight_{part}_{suffix}").copy_(w)
        return rnn

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        dirs = 2 if self.bidirectional else 1
        return (*input_shape[:-1], dirs * self.hidden_size)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        steps = math.prod(input_shape[:-1]) if len(input_shape) > 1 else 1
        return self._mvm_cost(steps)

    def _matmul(self, part: str, suffix: str, x: torch.Tensor) -> torch.Tensor:
        weight = self._weight(part, suffix)
        bias = getattr(self, f"bias_{part}_{suffix}") if self.bias else None
        if self._ideal():
            return F.linear(x, weight, bias)
        flat = self._tile(part, suffix)(x.reshape(-1, x.shape[-1]), weight, bias)
        return flat.reshape(*x.shape[:-1], weight.shape[0])

    @abc.abstractmethod
    def _cell(
        self, gx: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One step: input gates ``gx``, hidden gates ``gh``, state ``h`` (and ``c``)."""

    def forward(self, x: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
        if x.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected a 2-D or 3-D input, got {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input has {x.shape[-1]} features, expected "
                f"{self.input_size} (input shape {tuple(x.shape)})"
            )
        self._check_dtype(x, self._weight("ih", "l0"))
        if not torch.isfinite(x).all():
            raise ValueError(f"{type(self).__name__}: input contains NaN or inf")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, _ = x.shape
        dirs = 2 if self.bidirectional else 1
        h0, c0 = self._initial(hx, batch, x, unbatched)
        layer_input = x
        h_n, c_n = [], []
        suffixes = list(self._suffixes())
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(dirs):
                idx = layer * dirs + direction
                suffix = suffixes[idx][1]
                gx = self._matmul("ih", suffix, layer_input)  # all steps in one MVM batch
                h = h0[idx]
                c = c0[idx] if c0 is not None else None
                order = range(steps - 1, -1, -1) if direction else range(steps)
                seq: list[torch.Tensor] = [h] * steps
                for t in order:
                    h, c = self._cell(gx[t], self._matmul("hh", suffix, h), h, c)
                    seq[t] = h
                outputs.append(torch.stack(seq) if steps else layer_input[..., :0])
                h_n.append(h)
                if c is not None:
                    c_n.append(c)
            layer_input = torch.cat(outputs, -1) if dirs == 2 else outputs[0]
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        out = layer_input
        hn = torch.stack(h_n)
        if unbatched:
            out, hn = out.squeeze(1), hn.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        _check_finite(self, x, out)
        if self.mode == "LSTM":
            cn = torch.stack(c_n)
            return out, (hn, cn.squeeze(1) if unbatched else cn)
        return out, hn

    def _check_state(self, name: str, value: Any, shape: tuple[int, ...], x: torch.Tensor) -> None:
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"{type(self).__name__}: {name} must have shape {shape} "
                "(num_layers * directions, batch, hidden_size), got "
                f"{got}"
            )
        if value.dtype != x.dtype or value.device != x.device:
            raise TypeError(
                f"{type(self).__name__}: {name} is {value.dtype} on {value.device}, the input "
                f"{x.dtype} on {x.device}; cast it with .to(x)"
            )

    def _initial(
        self, hx: Any, batch: int, x: torch.Tensor, unbatched: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dirs = 2 if self.bidirectional else 1
        shape = (self.num_layers * dirs, batch, self.hidden_size)
        want = (shape[0], shape[2]) if unbatched else shape
        if hx is None:
            zeros = torch.zeros(shape, device=x.device, dtype=x.dtype)
            return zeros, (zeros if self.mode == "LSTM" else None)
        if self.mode == "LSTM":
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise ValueError(
                    f"{type(self).__name__}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}"
                )
            h0, c0 = hx
            self._check_state("h_0", h0, want, x)
            self._check_state("c_0", c0, want, x)
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            return h0, c0
        self._check_state("h_0", hx, want, x)
        return (hx.unsqueeze(1) if unbatched else hx), None

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, {self._chip_repr()}"
        )


class PIMLSTM(_PIMRecurrent):
    """``nn.LSTM`` with crossbar input/hidden matrices; same arguments (no ``proj_size``).

    Shape:
        as ``nn.LSTM``: returns ``output, (h_n, c_n)``.
    """

    mode = "LSTM"
    gates = 4
    torch_type = nn.LSTM

    def _cell(
        self, gx: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert c is not None
        i, f, g, o = (gx + gh).chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PIMGRU(_PIMRecurrent):
    """``nn.GRU`` with crossbar input/hidden matrices; same arguments.

    Shape:
        as ``nn.GRU``: returns ``output, h_n``.
    """

    mode = "GRU"
    gates = 3
    torch_type = nn.GRU

    def _cell(
        self, gx: torch.Tensor, gh: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        xr, xz, xn = gx.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None


def drift(model: nn.Module, t: float) -> nn.Module:
    """Move every PIM crossbar of ``model`` to ``t`` seconds after programming.

    Drift compensation (the config's ``drift.compensation``) is applied as configured.

    Returns:
        ``model`` (changed in place).
    """
    t = check_time(t)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    for module in model.modules():
        if isinstance(module, _PIMLayer):
            module.drift(t)
    return model
