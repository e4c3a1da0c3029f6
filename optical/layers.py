"""Diffractive layers, the D2NN classifier and the ``nn.Linear`` drop-in.

- :class:`DiffractiveLayer`: a trainable mask (phase, amplitude or complex; optionally a
  3D-printed material) followed by free-space propagation to the next plane.
- :class:`DiffractiveNetwork`: a coherent D2NN classifier (Lin et al., Science 361, 1004,
  2018): image encoded on the input plane, ``n_layers`` diffractive layers, detector regions
  integrated to logits.
- :class:`OpticalLinear`: a spatially incoherent diffractive processor computing a linear map
  (Rahman et al., "Universal linear intensity transformations using spatially incoherent
  diffractive processors", Light Sci. Appl. 12, 195, 2023). Each input feature drives one
  mutually incoherent emitter, so detected powers are ``x @ T`` with ``T[j, k] = |field of
  emitter j on region k|^2`` summed over the region: exactly linear in the input intensity.
  Differential detection (two regions per output) makes the weights signed and signed inputs
  are sent as two frames (``x+`` and ``x-``).

The propagation through a stack and the detector readout live in :mod:`physnn.optical.
stack`; masks hold one value per neuron and are simulated on a grid ``geometry.samples``
times finer (piecewise-constant pixels). Static chip state (fabrication phase error, layer
displacements) lives in buffers drawn from the layer's static streams; detector noise is
drawn from its dynamic stream per forward. Everything non-ideal is bypassed inside
:func:`physnn.ideal`. :func:`fresh_chips` and :func:`realistic_accuracy` score a model on
devices it was not trained on.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..common.config import BackendConfig
from ..common.cost import Cost
from ..common.layer import PhysicalModule, WeightsMode
from ..common.quant import quantize_step
from ..common.rng import derive_seed, ideal, is_ideal
from ..common.train import evaluate
from . import functional as OF
from .config import OpticalConfig
from .cost import optical_cost
from .memory import check_forward
from .stack import propagate_stack, read_out

__all__ = [
    "ChipAccuracy",
    "DiffractiveLayer",
    "DiffractiveNetwork",
    "OpticalLinear",
    "fresh_chips",
    "realistic_accuracy",
    "set_misalignment",
]


def _real_dtype(dtype: Any) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"dtype={dtype} must be torch.float32 or torch.float64 (the mask parameters); "
            "fields are then complex64 or complex128"
        )
    return dtype


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _check_same_design(owner: str, old: OpticalConfig, new: OpticalConfig) -> None:
    """Raise when ``new`` needs other parameters than ``old`` (another mask kind or size)."""
    for block, name in (("modulation", "kind"), ("geometry", "size"), ("geometry", "n_layers")):
        before = getattr(getattr(old, block), name)
        after = getattr(getattr(new, block), name)
        if before != after:
            raise ValueError(
                f"{owner}.reconfigure: {block}.{name}={after!r} differs from the trained "
                f"layer's {before!r}; the masks are parameters of that design, so build and "
                "train a new layer for it"
            )


def _no_torch_counterpart(cls: type) -> TypeError:
    return TypeError(
        f"{cls.__name__} has no torch counterpart: a diffractive stack detected in intensity "
        "is not an nn module; build it directly (OpticalLinear is the nn.Linear drop-in)"
    )


class _OpticalModule(PhysicalModule[OpticalConfig]):
    """Base of the optical layers: ``reconfigure`` refuses another design up front."""

    config_type = OpticalConfig

    def reconfigure(self, config: OpticalConfig, *, resample: bool = False) -> None:
        if isinstance(config, OpticalConfig):
            _check_same_design(type(self).__name__, self.config, config)
        super().reconfigure(config, resample=resample)


class DiffractiveLayer(_OpticalModule):
    """One diffractive layer: a ``size x size`` mask, then propagation over ``distance``.

    Args:
        size: neurons per side (default: ``config.geometry.size``).
        distance: propagation distance after the mask [m] (default:
            ``config.geometry.distance``).
        config: optical config (default: :class:`OpticalConfig` defaults, Lin 2018).
        name: qualified name (seeds this layer's random streams).
        device: torch device.
        dtype: mask parameter dtype (float32 -> complex64 fields, float64 -> complex128).

    Shape:
        complex ``[..., size * s, size * s] -> [..., size * s, size * s]`` on the simulation
        grid (``s = config.geometry.samples`` samples per neuron; the mask is upsampled as
        piecewise-constant pixels).

    Physics:
        Phase masks transmit ``exp(i phi)``; with ``modulation.material`` the layer is
        ``h = phi lambda / (2 pi (n - 1))`` thick and transmits ``exp(-kappa phi / (n - 1))``
        in amplitude (absorption ``exp(-2 pi kappa h / lambda)``). Amplitude masks transmit
        ``sigmoid(a)`` in (0, 1). Nonidealities: phase quantised to ``phase_levels``; static
        phase error ``N(0, phase_error_std)`` per neuron, or in training a fresh
        ``N(0, training_phase_error_std)`` draw per forward (vaccination); static
        lateral/axial displacement (applied by the enclosing stack as exact spectral shifts
        and extra propagation).
    """

    phase: nn.Parameter | None
    amplitude: nn.Parameter | None
    phase_error: torch.Tensor
    lateral_shift: torch.Tensor
    axial_shift: torch.Tensor

    def __init__(
        self,
        size: int | None = None,
        distance: float | None = None,
        *,
        config: OpticalConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        cfg = self._init_physical(config, name)
        assert isinstance(cfg, OpticalConfig)
        size = cfg.geometry.size if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ValueError(f"size={size!r} must be an int >= 2 (neurons per side)")
        self.size = size
        self.distance = cfg.geometry.distance if distance is None else float(distance)
        OF.check_distance(self.distance)
        real = _real_dtype(dtype)
        kind = cfg.modulation.kind
        kw = {"device": device, "dtype": real}
        self.phase = nn.Parameter(torch.empty(size, size, **kw)) if kind != "amplitude" else None
        self.amplitude = nn.Parameter(torch.empty(size, size, **kw)) if kind != "phase" else None
        self.register_buffer("phase_error", torch.zeros(size, size, **kw))
        self.register_buffer("lateral_shift", torch.zeros(2, **kw))
        self.register_buffer("axial_shift", torch.zeros((), **kw))
        self.reset_parameters()
        self.resample_noise()

    def reset_parameters(self) -> None:
        """Phase as ``modulation.init`` says (default uniform in [0, 2 pi)) and amplitude
        logits near full transmission."""
        dev = self._device
        g = self.streams.static("init", dev)
        init = self.config.modulation.init
        with torch.no_grad():
            if self.phase is not None:
                shape, dtype = self.phase.shape, self.phase.dtype
                if init == "uniform":
                    draw = 2 * math.pi * torch.rand(shape, generator=g, device=dev, dtype=dtype)
                elif init == "small":
                    draw = 0.1 * torch.randn(shape, generator=g, device=dev, dtype=dtype)
                else:
                    draw = torch.zeros(shape, device=dev, dtype=dtype)
                self.phase.copy_(draw)
            if self.amplitude is not None:
                shape, dtype = self.amplitude.shape, self.amplitude.dtype
                self.amplitude.copy_(2.0 + torch.randn(shape, generator=g, device=dev, dtype=dtype))

    @property
    def _device(self) -> torch.device:
        return self.phase_error.device

    def resample_noise(self) -> None:
        """Redraw the fabrication phase error and the layer's displacement."""
        super().resample_noise()
        self.redraw_fabrication()
        self.redraw_misalignment()

    def redraw_fabrication(self) -> None:
        """Redraw the static phase error from ``config.fabrication``."""
        fab = self.config.fabrication
        g = self.streams.static("fabrication", self._device)
        e = self.phase_error
        with torch.no_grad():
            error = torch.randn(e.shape, generator=g, device=e.device, dtype=e.dtype)
            e.copy_(fab.phase_error_std * error)

    def redraw_misalignment(self) -> None:
        """Redraw the static displacement from ``config.misalignment`` (stress tests)."""
        mis = self.config.misalignment
        g = self.streams.static("misalignment", self._device)
        with torch.no_grad():
            d = self.lateral_shift
            draw = torch.randn(3, generator=g, device=d.device, dtype=d.dtype)
            self.lateral_shift.copy_(mis.lateral_std * draw[:2])
            self.axial_shift.copy_(mis.axial_std * draw[2])

    def _apply_config(self, old: OpticalConfig, *, resample: bool) -> None:
        """Keep the chip unless its statistics changed: redraw the phase error when
        ``fabrication.phase_error_std`` changed, the displacement when the misalignment
        stds changed, and both when ``resample``."""
        new = self.config
        if resample or new.fabrication.phase_error_std != old.fabrication.phase_error_std:
            self.redraw_fabrication()
        static = ("lateral_std", "axial_std")
        if resample or any(
            getattr(new.misalignment, k) != getattr(old.misalignment, k) for k in static
        ):
            self.redraw_misalignment()
        if resample:
            self.streams.reset()

    def transmission(self, wavelength: float | None = None) -> torch.Tensor:
        """Complex transmission ``[size, size]`` of the mask as built (ideal inside ideal()).

        Args:
            wavelength: illumination wavelength [m] (default: the design wavelength); the
                phase of a fixed thickness scales as ``design wavelength / wavelength``.
        """
        cfg = self.config
        real = not is_ideal()
        amplitude = torch.sigmoid(self.amplitude) if self.amplitude is not None else None
        if self.phase is None:
            assert amplitude is not None
            return amplitude.to(_complex_dtype(amplitude.dtype))
        scale = 1.0 if wavelength is None else cfg.geometry.wavelength / wavelength
        phase: torch.Tensor = self.phase
        levels = cfg.fabrication.phase_levels
        if real and levels:
            phase = OF.quantize_phase(phase, levels)
        if cfg.modulation.material or scale != 1.0:
            # The built mask is a thickness within one 2 pi period: phases 0.1 and 2 pi + 0.1
            # are the same layer, so absorption and the phase at another wavelength follow
            # the wrapped phase (same transmission at the design wavelength).
            phase = torch.remainder(phase, 2 * math.pi)
        if cfg.modulation.material:
            n, kappa = cfg.modulation.refractive_index, cfg.modulation.extinction
            absorption = torch.exp(-kappa * scale * phase / (n - 1))
            amplitude = absorption if amplitude is None else amplitude * absorption
        fab = cfg.fabrication
        if real and self.training and fab.training_phase_error_std > 0:
            # Vaccination: a fresh chip every forward, never the stored one (issue 12, 5).
            e = self.phase_error
            g = self.streams.dynamic("fabrication-vaccination", e.device)
            draw = torch.randn(e.shape, generator=g, device=e.device, dtype=e.dtype)
            phase = phase + fab.training_phase_error_std * draw
        elif real and fab.phase_error_std > 0:
            phase = phase + self.phase_error
        if scale != 1.0:
            phase = phase * scale
        if amplitude is None:
            amplitude = torch.ones_like(phase)
        return torch.polar(amplitude, phase)

    @property
    def samples(self) -> int:
        """Simulation samples per side: ``size * config.geometry.samples``."""
        return self.size * self.config.geometry.samples

    def modulate(self, field: torch.Tensor, wavelength: float | None = None) -> torch.Tensor:
        """Multiply ``field`` (simulation grid) by the mask at ``wavelength`` [m]."""
        n = self.samples
        if field.shape[-2:] != (n, n):
            raise ValueError(
                f"field of shape {tuple(field.shape)} does not fit a {self.size}x{self.size} "
                f"layer sampled {self.config.geometry.samples}x per neuron ({n}x{n} samples); "
                "upsample it with physnn.optical.functional.upsample"
            )
        return field * OF.upsample(self.transmission(wavelength), self.config.geometry.samples)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        OF.check_field(field)
        g = self.config.geometry
        return OF.propagate(
            self.modulate(field),
            self.distance,
            wavelength=g.wavelength,
            pitch=g.simulation_pitch,
            method=g.method,
            padding=g.padding,
            boundary=g.boundary,
        )

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> DiffractiveLayer:
        raise _no_torch_counterpart(cls)

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        """A mask is not a torch weight: raises :class:`WeightsNotTransferredError` unless
        ``weights="shape"``, which warns and returns ``nn.Identity`` (same shape)."""
        self._no_torch_weights(weights, "nn.Identity")
        return nn.Identity()

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Area of the mask aperture only: a lone layer has no source, frame or readout, so
        its energy and latency (static mask power included) are 0; the enclosing
        :class:`DiffractiveNetwork` or :class:`OpticalLinear` counts them per frame."""
        batch = math.prod(input_shape[:-2]) if len(input_shape) > 2 else 1
        return optical_cost(
            self.config,
            samples=batch,
            n_input_pixels=0,
            n_regions=0,
            n_pixels=0,
            n_layers=1,
            side=self.size,
            macs=0,
            connections=batch * self.size**4,
            frames=0,
            digital_ops=0,
        )

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, distance={self.distance:g}, "
            f"kind={self.config.modulation.kind}, {self._physical_repr()}"
        )


def set_misalignment(
    model: nn.Module, lateral_std: float, axial_std: float | None = None
) -> nn.Module:
    """Set the static misalignment std of every optical layer in ``model`` and redraw it.

    Args:
        model: a model holding optical layers (changed in place and returned).
        lateral_std: lateral displacement std [m].
        axial_std: axial displacement std [m] (None keeps each layer's).
    """
    for module in model.modules():
        if isinstance(module, PhysicalModule) and isinstance(module.config, OpticalConfig):
            mis = module.config.misalignment.replace(lateral_std=float(lateral_std))
            if axial_std is not None:
                mis = mis.replace(axial_std=float(axial_std))
            module.reconfigure(module.config.replace(misalignment=mis))
            if isinstance(module, DiffractiveLayer):
                module.redraw_misalignment()
    return model


def _stack(layers: nn.ModuleList) -> list[DiffractiveLayer]:
    return [layer for layer in layers if isinstance(layer, DiffractiveLayer)]


def _make_layers(
    config: OpticalConfig, size: int, name: str, device: Any, dtype: torch.dtype
) -> nn.ModuleList:
    """The ``n_layers`` masks; layer ``k`` is followed by gap ``k + 1`` of the geometry."""
    prefix = f"{name}." if name else ""
    gaps = config.geometry.gaps
    return nn.ModuleList(
        DiffractiveLayer(
            size,
            gaps[i + 1],
            config=config,
            name=f"{prefix}layers.{i}",
            device=device,
            dtype=dtype,
        )
        for i in range(config.geometry.n_layers)
    )


def fresh_chips(model: nn.Module, n: int, *, seed: int = 0) -> Iterator[nn.Module]:
    """``n`` copies of ``model``, each a freshly drawn chip of the same design.

    Every optical layer of each copy redraws its static errors (fabrication phase error,
    displacements): with seeded configs from the seed derived from ``(seed, copy index)``
    (the stored seed would give the trained chip again), otherwise from torch's global RNG.
    ``model`` is left untouched. "Realistic" accuracy is measured on such devices, never on
    the chip the model was trained with (issue 12, item 5).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be an int >= 1 (the number of fresh chips)")
    for index in range(n):
        chip = copy.deepcopy(model)
        done: set[int] = set()  # layers inside a redrawn network are redrawn with it
        for module in chip.modules():
            if isinstance(module, _OpticalModule) and id(module) not in done:
                done.update(id(m) for m in module.modules())
                cfg = module.config
                if cfg.seed is None:
                    module.resample_noise()
                else:
                    fresh = derive_seed(seed, "fresh-chip", str(cfg.seed), str(index)) % 2**31
                    module.reconfigure(cfg.replace(seed=fresh), resample=True)
        yield chip


@dataclasses.dataclass(frozen=True)
class ChipAccuracy:
    """Accuracy over freshly drawn chips (see :func:`realistic_accuracy`)."""

    accuracies: tuple[float, ...]
    """Accuracy on each fresh chip, in [0, 1]."""

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation over chips (0 for one chip)."""
        n = len(self.accuracies)
        if n < 2:
            return 0.0
        return math.sqrt(sum((a - self.mean) ** 2 for a in self.accuracies) / (n - 1))

    def __str__(self) -> str:
        return (
            f"{100 * self.mean:.1f} +- {100 * self.std:.1f} % over "
            f"{len(self.accuracies)} fresh chips"
        )


def realistic_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, chips: int = 5, seed: int = 0
) -> ChipAccuracy:
    """Test accuracy of ``model`` on ``chips`` freshly drawn devices (mean +- std).

    Args:
        model: a trained model holding optical layers (not modified).
        x: test inputs.
        y: test labels.
        chips: number of fresh chips.
        seed: derives the fresh chips of seeded configs (see :func:`fresh_chips`).
    """
    return ChipAccuracy(
        tuple(evaluate(chip, x, y) for chip in fresh_chips(model, chips, seed=seed))
    )


class DiffractiveNetwork(_OpticalModule):
    """A coherent diffractive deep neural network (D2NN) classifier.

    Args:
        n_classes: number of detector regions (outputs).
        *, config: optical config (default: the Lin et al. 2018 geometry).
        name: qualified name (seeds the random streams).
        device: torch device.
        dtype: mask dtype (float32 or float64).

    Shape:
        images ``[B, H, W]`` in [0, 1] -> logits ``[B, n_classes]``. Images are resampled
        to ``round(input_fill * size)`` pixels per side and centred on the input plane.

    Physics:
        amplitude (or phase ``exp(i pi x)``) encoding; ``n_layers`` masks spaced
        ``distance`` apart from the input plane to the detector plane; intensity integrated
        over square regions (3-4-3 rows for 10 classes, as in Lin et al. 2018), optionally
        differential; logits ``temperature * P_k / sum_j P_j``.

    Example:
        >>> import torch, physnn.optical as po
        >>> net = po.DiffractiveNetwork(10, config=po.presets.get("ideal"))
        >>> net(torch.rand(2, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        n_classes: int = 10,
        *,
        config: OpticalConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        cfg = self._init_physical(config, name)
        assert isinstance(cfg, OpticalConfig)
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes={n_classes!r} must be an int >= 1")
        self.n_classes = n_classes
        size = cfg.geometry.size
        self.input_side = max(1, round(cfg.input_fill * size))
        n_regions = n_classes * (2 if cfg.detector.differential else 1)
        OF.detector_layout(size, n_regions, fill=cfg.detector.region_fill)
        self.layers = _make_layers(cfg, size, name, device, _real_dtype(dtype))

    def reset_parameters(self) -> None:
        """Re-initialise every layer's mask."""
        for layer in _stack(self.layers):
            layer.reset_parameters()

    def resample_noise(self) -> None:
        """A new chip: redraw every layer's fabrication error and displacement."""
        super().resample_noise()
        for layer in _stack(self.layers):
            layer.resample_noise()

    def _apply_config(self, old: OpticalConfig, *, resample: bool) -> None:
        """Reconfigure every diffractive layer (see :meth:`DiffractiveLayer._apply_config`)."""
        for layer in _stack(self.layers):
            layer.reconfigure(self.config, resample=resample)
        if resample:
            self.streams.reset()

    @property
    def n_regions(self) -> int:
        return self.n_classes * (2 if self.config.detector.differential else 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, H, W]`` in [0, 1] -> complex input fields on the simulation grid
        ``[B, size * s, size * s]`` (each input pixel is a neuron-sized block)."""
        if not isinstance(images, torch.Tensor) or images.dim() != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must be a tensor [B, H, W], got {shape}")
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or inf")
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ValueError(
                f"images must lie in [0, 1] (got {float(images.min()):g}..{float(images.max()):g});"
                " scale them first, e.g. x / x.max()"
            )
        cfg = self.config
        real_dtype = _stack(self.layers)[0].phase_error.dtype
        side = self.input_side
        x = images.to(real_dtype)
        if x.shape[-2:] != (side, side):
            shrink = side <= min(x.shape[-2:])
            mode = "area" if shrink else "bilinear"
            kwargs: dict[str, Any] = {} if shrink else {"align_corners": False}
            x = F.interpolate(x[:, None], size=(side, side), mode=mode, **kwargs)[:, 0]
        if cfg.input_levels and not is_ideal():
            x = quantize_step(x, 1.0 / (cfg.input_levels - 1))
        size = cfg.geometry.size
        before = (size - side) // 2
        x = F.pad(x, (before, size - side - before, before, size - side - before))
        cdtype = _complex_dtype(real_dtype)
        s = cfg.geometry.samples
        if cfg.encoding == "amplitude":
            return OF.upsample(x, s).to(cdtype)
        inside = F.pad(
            torch.ones(side, side, dtype=real_dtype, device=x.device),
            (before, size - side - before, before, size - side - before),
        )
        return OF.upsample(torch.polar(inside.expand_as(x), math.pi * x), s)

    def detector_masks(self, device: torch.device | None = None) -> torch.Tensor:
        """Boolean region masks ``[n_regions, size, size]``."""
        det = self.config.detector
        masks = OF.detector_layout(self.config.geometry.size, self.n_regions, fill=det.region_fill)
        return masks if device is None else masks.to(device)

    def _intensity(
        self, images: torch.Tensor, record: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Detector-plane power per neuron-sized pixel ``[B, size, size]`` (input pixel = 1)."""
        field = self.encode(images)
        check_forward(
            self.config,
            what=type(self).__name__,
            size=self.config.geometry.size,
            batch=field.shape[0],
            device=field.device,
            dtype=field.dtype,
        )
        g = self.config.geometry
        intensity = propagate_stack(
            _stack(self.layers),
            lambda h: OF.apply_transfer(field, h),
            first_distance=g.gaps[0],
            samples=field.shape[-1],
            dtype=field.dtype,
            device=field.device,
            training=self.training,
            record=record,
        )
        return OF.pixel_sum(intensity, g.samples) / g.samples**2

    def powers(self, images: torch.Tensor) -> torch.Tensor:
        """Detected power on each region ``[B, n_regions]`` (grid units: input pixel = 1)."""
        intensity = self._intensity(images)
        masks = self.detector_masks(intensity.device)
        powers = OF.region_powers(intensity, masks)
        pixels = masks.flatten(1).sum(1)
        return read_out(powers, float(self.input_side**2), self.config, self.streams, pixels)

    def fields(self, images: torch.Tensor) -> dict[str, Any]:
        """What the light does inside the network, for inspection and plots.

        Returns:
            ``{"planes": [field arriving at layer 1, ..., at layer n, at the detector]``
            (complex, simulation grid, design wavelength), ``"detector": power per pixel
            [B, size, size]`` (all wavelengths, before noise), ``"regions": region masks``,
            ``"pitch": simulation pitch [m]``}.
        """
        record: list[torch.Tensor] = []
        intensity = self._intensity(images, record)
        return {
            "planes": record,
            "detector": intensity,
            "regions": self.detector_masks(intensity.device),
            "pitch": self.config.geometry.simulation_pitch,
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = self.powers(images)
        total = p.clamp_min(0).sum(-1, keepdim=True) + torch.finfo(p.dtype).tiny
        signal = p[..., 0::2] - p[..., 1::2] if self.config.detector.differential else p
        return self.config.detector.temperature * signal / total

    @classmethod
    def from_torch(
        cls, module: nn.Module, config: BackendConfig | None = None, *, name: str = ""
    ) -> DiffractiveNetwork:
        raise _no_torch_counterpart(cls)

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Module:
        """Masks are not torch weights: raises :class:`WeightsNotTransferredError` unless
        ``weights="shape"``, which warns and returns an untrained
        ``Sequential(Flatten, Linear)`` from the image to the logits."""
        self._no_torch_weights(weights, "nn.Linear")
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(self.n_classes))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-2], self.n_classes)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Energy, latency and area of classifying ``input_shape[0]`` images.

        MACs are the equivalent digital MACs of the same function: the network is a
        complex linear map from the ``input_side^2`` input pixels to the detector pixels
        of the regions, then intensity, i.e. ``4 * input_side^2 * region pixels`` real MACs
        per image. ``resources["connections"]`` keeps the dense count of Lin et al. 2018
        (every neuron feeds every neuron of the next plane, ``(n_layers + 1) * size^4``).
        """
        size = self.config.geometry.size
        samples = math.prod(input_shape[:-2]) if len(input_shape) > 2 else 1
        n_layers = len(self.layers)
        pixels = int(self.detector_masks().sum())
        return optical_cost(
            self.config,
            samples=samples,
            n_input_pixels=self.input_side**2,
            n_regions=self.n_regions,
            n_pixels=pixels,
            n_layers=n_layers,
            side=size,
            macs=samples * 4 * self.input_side**2 * pixels,
            connections=samples * (n_layers + 1) * size**4,
            frames=1,
            digital_ops=2 * self.n_regions,
        )

    def extra_repr(self) -> str:
        g = self.config.geometry
        return (
            f"n_classes={self.n_classes}, size={g.size}, n_layers={g.n_layers}, "
            f"wavelength={g.wavelength:g}, pitch={g.pitch:g}, samples={g.samples}, "
            f"{self._physical_repr()}"
        )


class OpticalLinear(_OpticalModule):
    """``nn.Linear`` on a spatially incoherent diffractive processor (trained, not copied).

    Args:
        in_features: input width (one incoherent emitter per feature).
        out_features: output width (two detector regions per output, differential).
        bias: add a digital bias after detection.
        config: optical config (default: :class:`OpticalConfig` defaults).
        name: qualified name (seeds the random streams).
        device: torch device.
        dtype: mask dtype (float32 or float64).

    Shape:
        ``(*, in_features) -> (*, out_features)``.

    Physics:
        Emitters form a centred ``ceil(sqrt(in_features))``-wide square on the input plane;
        the plane is ``config.geometry.size`` neurons wide, enlarged when the emitters or the
        ``2 * out_features`` detector regions need more room, or when the masks hold fewer
        phases than twice the ``in x 2 out`` transmission entries (``extra_repr`` shows
        the size), so that :meth:`from_torch` with ``fit=True`` can reach the weights. The
        incoherent intensity transmission ``T [in, 2 out]`` is computed by propagating each
        emitter's field through the stack. Per sample the input is scaled by its largest
        magnitude (digital pre-scale, undone after detection), split into ``x+`` and
        ``x-`` frames, detected with noise, and combined as ``gain * ((D+ - D-) of x+ -
        (D+ - D-) of x- - c sum(u)) - common_mode * mean(x) + bias``; ``gain``, the
        common-mode terms and ``bias`` are digital. ``c [out]`` is the mean over the inputs
        of the differential transmission (the chip's response to a uniform frame): the two
        regions of an output receive unequal shares of a random stack's light, so without
        it every output carries ``c sum(u)``, which dominates for nonnegative inputs (pixels,
        ReLU activations) and switches off the ReLUs after the layer. The trained
        ``common_mode [out]`` (initially 0) gives back that direction of the weights.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: OpticalConfig | None = None,
        name: str = "",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        cfg = self._init_physical(config, name)
        assert isinstance(cfg, OpticalConfig)
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg}={value!r} must be an int >= 1")
        self.in_features = in_features
        self.out_features = out_features
        self.emitter_side = math.ceil(math.sqrt(in_features))
        rows = max(1, round(math.sqrt(2 * out_features)))
        cols = math.ceil(2 * out_features / rows)
        # Enough phases to shape the in x 2 out transmission matrix: twice its entries
        # over the stack (issue 12, item 8: a 24-neuron plane fits a 64 x 32 layer to 0.48).
        dof = math.ceil(math.sqrt(4 * in_features * out_features / cfg.geometry.n_layers))
        self.size = max(cfg.geometry.size, self.emitter_side + 2, 2 * max(rows, cols + 1), dof)
        real = _real_dtype(dtype)
        self.layers = _make_layers(cfg, self.size, name, device, real)
        self.gain = nn.Parameter(torch.ones((), device=device, dtype=real))
        self.common_mode = nn.Parameter(torch.zeros(out_features, device=device, dtype=real))
        self.bias = (
            nn.Parameter(torch.zeros(out_features, device=device, dtype=real)) if bias else None
        )
        self.fit_error: float | None = None
        self.reset_parameters()

    def parameter_counts(self) -> dict[str, int]:
        """Masks are optical; the output gain and bias are applied digitally."""
        masks = sum(p.numel() for p in self.layers.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"physical": masks, "classical": total - masks}

    def reset_parameters(self) -> None:
        """Random masks; gain set so the effective weights have ``nn.Linear``'s init scale."""
        for layer in _stack(self.layers):
            layer.reset_parameters()
        # The gain follows the design (ideal chip), so it does not depend on the chip drawn.
        with torch.no_grad(), ideal():
            w = self._weights(self.transmission_matrix())
            scale = 1.0 / math.sqrt(3 * self.in_features)
            self.gain.copy_(scale / (w - w.mean(0)).std().clamp_min(torch.finfo(w.dtype).tiny))
            self.common_mode.zero_()
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                b = self.bias
                g = self.streams.static("bias", b.device)
                draw = torch.rand(b.shape, generator=g, device=b.device, dtype=b.dtype)
                b.copy_((2 * draw - 1) * bound)

    def resample_noise(self) -> None:
        """A new chip: redraw every layer's fabrication error and displacement."""
        super().resample_noise()
        for layer in _stack(self.layers):
            layer.resample_noise()

    def _apply_config(self, old: OpticalConfig, *, resample: bool) -> None:
        """Reconfigure every diffractive layer (see :meth:`DiffractiveLayer._apply_config`)."""
        for layer in _stack(self.layers):
            layer.reconfigure(self.config, resample=resample)
        if resample:
            self.streams.reset()

    def emitter_positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and column index of each input's emitter on the input plane."""
        j = torch.arange(self.in_features)
        offset = (self.size - self.emitter_side) // 2
        return offset + j // self.emitter_side, offset + j % self.emitter_side

    def detector_masks(self, device: torch.device | None = None) -> torch.Tensor:
        """Boolean region masks ``[2 * out_features, size, size]`` (+, - per output)."""
        fill = self.config.detector.region_fill
        masks = OF.detector_layout(self.size, 2 * self.out_features, fill=fill)
        return masks if device is None else masks.to(device)

    def transmission_matrix(self) -> torch.Tensor:
        """``T [in_features, 2 * out_features]``: share of emitter j's power on region k.

        Each emitter is one uniformly lit neuron-sized pixel (``s x s`` simulation samples,
        coherent within the pixel, incoherent between pixels). Its field on the first layer
        is the first gap's response to a pixel at the origin, circularly shifted to the
        emitter (exactly what the padded FFT propagation of the shifted pixel gives), so the
        first gap costs one inverse FFT in all.
        """
        ref = _stack(self.layers)[0].phase_error
        g = self.config.geometry
        s = g.samples
        n = self.size * s
        grid = OF.padded_shape((n, n), g.grid_padding())
        cdtype = _complex_dtype(ref.dtype)
        check_forward(
            self.config,
            what=type(self).__name__,
            size=self.size,
            batch=self.in_features,
            device=ref.device,
            dtype=cdtype,
            emitters=True,
        )
        pixel = torch.zeros(grid, dtype=cdtype, device=ref.device)
        pixel[:s, :s] = 1
        pixel_spectrum = torch.fft.fft2(pixel)
        rows, cols = self.emitter_positions()
        span = torch.arange(n)
        iy = ((span[None, :, None] - s * rows[:, None, None]) % grid[0]).to(ref.device)
        ix = ((span[None, None, :] - s * cols[:, None, None]) % grid[1]).to(ref.device)
        intensity = propagate_stack(
            _stack(self.layers),
            lambda h: torch.fft.ifft2(h * pixel_spectrum)[iy, ix],
            first_distance=g.gaps[0],
            samples=n,
            dtype=cdtype,
            device=ref.device,
            training=self.training,
        )
        pixels = OF.pixel_sum(intensity, s) / s**2
        return OF.region_powers(pixels, self.detector_masks(pixels.device))

    @staticmethod
    def _weights(t: torch.Tensor) -> torch.Tensor:
        return t[..., 0::2] - t[..., 1::2]

    def effective_weight(self) -> torch.Tensor:
        """The ``[out, in]`` weight the chip computes without detector noise or ADC."""
        w = self._weights(self.transmission_matrix())
        return self.gain * (w - w.mean(0)).T - self.common_mode[:, None] / self.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"OpticalLinear expects a tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"OpticalLinear: input has {x.shape[-1] if x.dim() else 0} features, expected "
                f"{self.in_features} (input shape {tuple(x.shape)})"
            )
        if not torch.isfinite(x).all():
            raise ValueError("OpticalLinear: input contains NaN or inf")
        t = self.transmission_matrix().to(x.dtype)
        scale = x.detach().abs().amax(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        u = x / scale
        if self.config.input_levels and not is_ideal():
            u = quantize_step(u, 1.0 / (self.config.input_levels - 1))
        full = float(self.in_features)
        frames = torch.stack((u.clamp_min(0), (-u).clamp_min(0)))
        pixels = self.detector_masks(x.device).flatten(1).sum(1)
        detected = read_out(frames @ t, full, self.config, self.streams, pixels)
        y = self._weights(detected[0]) - self._weights(detected[1])
        y = y - u.sum(-1, keepdim=True) * self._weights(t).mean(0)
        y = self.gain * y * scale - x.mean(-1, keepdim=True) * self.common_mode
        return y + self.bias if self.bias is not None else y

    @classmethod
    def from_torch(
        cls,
        module: nn.Module,
        config: BackendConfig | None = None,
        *,
        name: str = "",
        fit: bool = False,
        steps: int = 300,
        lr: float = 0.05,
    ) -> OpticalLinear:
        """An optical layer for ``module`` (an ``nn.Linear``).

        Args:
            module: the linear layer.
            config: optical config.
            name: qualified name.
            fit: fit the masks and gain so the chip approximates ``module``'s weight (see
                :meth:`fit_linear`) and copy its bias; otherwise the layer is untrained.
            steps: Adam steps of the fit.
            lr: learning rate of the fit.
        """
        cls.check_module(module, nn.Linear)
        cls.check_config(config)
        assert isinstance(module, nn.Linear)
        floating = module.weight.dtype in (torch.float32, torch.float64)
        dtype = module.weight.dtype if floating else None
        layer = cls(
            module.in_features,
            module.out_features,
            module.bias is not None,
            config=cast("OpticalConfig | None", config),  # checked above
            name=name,
            device=module.weight.device,
            dtype=dtype,
        )
        if fit:
            layer.fit_linear(module.weight.detach(), steps=steps, lr=lr)
            if module.bias is not None and layer.bias is not None:
                with torch.no_grad():
                    layer.bias.copy_(module.bias)
        return layer

    def fit_linear(self, weight: torch.Tensor, *, steps: int = 300, lr: float = 0.05) -> float:
        """Fit masks and gain so :meth:`effective_weight` approximates ``weight``.

        The loss ``||W_eff - W||_F^2 / ||W||_F^2`` equals the expected relative squared
        output error on random inputs with independent unit-variance entries.

        Returns:
            The achieved relative error ``||W_eff - W||_F / ||W||_F`` (also ``fit_error``).
        """
        if weight.shape != (self.out_features, self.in_features):
            raise ValueError(
                f"weight shape {tuple(weight.shape)} must be ({self.out_features}, "
                f"{self.in_features})"
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps={steps!r} must be an int >= 1")
        target = weight.to(self.gain.dtype)
        norm = target.square().sum().clamp_min(torch.finfo(target.dtype).tiny)
        params = [p for layer in self.layers for p in layer.parameters()]
        params += [self.gain, self.common_mode]
        opt = torch.optim.Adam(params, lr=lr)
        was_training = self.training
        self.eval()
        for _ in range(steps):
            loss = (self.effective_weight() - target).square().sum() / norm
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            error = float(((self.effective_weight() - target).square().sum() / norm).sqrt())
        self.train(was_training)
        self.fit_error = error
        return error

    def to_torch(self, weights: WeightsMode = "exact") -> nn.Linear:
        """``weights="effective"``: ``nn.Linear`` with the chip's effective weight (static
        errors in force, no detector noise). The masks are not torch weights, so ``"exact"``
        raises :class:`WeightsNotTransferredError` and ``"shape"`` warns and returns an
        untrained ``nn.Linear``."""
        self.check_weights_mode(weights)
        w = self.gain.detach()
        if weights != "effective":
            self._no_torch_weights(weights, "nn.Linear")
            return nn.Linear(
                self.in_features,
                self.out_features,
                self.bias is not None,
                device=w.device,
                dtype=w.dtype,
            )
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            self.bias is not None,
            device=w.device,
            dtype=w.dtype,
        )
        with torch.no_grad():
            was_training = self.training
            self.eval()
            linear.weight.copy_(self.effective_weight())
            self.train(was_training)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*input_shape[:-1], self.out_features)

    def cost(self, input_shape: tuple[int, ...]) -> Cost:
        """Two frames (x+ and x-) per sample; see :mod:`physnn.optical.cost`."""
        samples = math.prod(input_shape[:-1])
        return optical_cost(
            self.config,
            samples=samples,
            n_input_pixels=self.in_features,
            n_regions=2 * self.out_features,
            n_pixels=int(self.detector_masks().sum()),
            n_layers=len(self.layers),
            side=self.size,
            macs=samples * self.in_features * self.out_features,
            connections=samples * (len(self.layers) + 1) * self.size**4,
            frames=2,
            # pre-scale, input sum, two differential subtractions, the frame subtraction, gain,
            # rescale, common mode (multiply, subtract), bias
            digital_ops=2 * self.in_features + 8 * self.out_features,
        )

    def extra_repr(self) -> str:
        fit = f", fit_error={self.fit_error:.3g}" if self.fit_error is not None else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, size={self.size}, n_layers={len(self.layers)}"
            f"{fit}, {self._physical_repr()}"
        )
