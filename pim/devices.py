"""Device models: how a target conductance becomes a programmed one, in a registry.

A device model is one class with a ``name`` and a :meth:`DeviceModel.program` method; after
:func:`register_device`, ``ProgrammingConfig(model=name)`` selects it and every layer uses
it (no edit to the layers or the configs). Shipped models:

- ``"none"``: exact programming (the target is the conductance);
- ``"pcm"``: the statistical PCM model of Nandakumar et al., ICECS 2019 (also Joshi et al.,
  Nat. Commun. 11, 2473, 2020);
- ``"gaussian"``: state-independent plus state-proportional spread, as after iterative
  write-verify in ReRAM (Wan et al., Nature 608, 504, 2022; the ``reram`` preset);
- ``"measured"``: a user's measured levels and their spread (:func:`physnn.pim.presets.from_csv`).

Example::

    class Flat(DeviceModel):
        name = "flat"

        def program(self, target, programming, g_max, noise):
            return (target + 0.5e-6 * noise).clamp_min(0.0)

    register_device(Flat())
    cfg = presets.get("pcm").replace(programming=ProgrammingConfig(model="flat"))
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from .config import ProgrammingConfig

__all__ = [
    "PCM_G_MAX_FIT",
    "DeviceModel",
    "GaussianDevice",
    "IdealDevice",
    "MeasuredDevice",
    "PCMDevice",
    "device_names",
    "get_device",
    "pcm_programming_sigma",
    "register_device",
    "snap_to_levels",
]

PCM_G_MAX_FIT = 25e-6
"""Largest conductance of the PCM statistical model's fits [S] (Nandakumar et al. 2019)."""


def pcm_programming_sigma(g: torch.Tensor, g_max: float) -> torch.Tensor:
    """Standard deviation of PCM programming noise [S] (Nandakumar et al., ICECS 2019).

    ``sigma = (0.26348 + 1.9650 g - 1.1731 g^2) uS * g_max / 25 uS`` for the normalised target
    ``g = G_target / g_max`` clamped to ``[0, 1]``; the fit was made at ``g_max = 25 uS``.

    Args:
        g: normalised target conductance.
        g_max: largest conductance [S].
    """
    gc = g.clamp(0.0, 1.0)
    return (0.26348 + 1.9650 * gc - 1.1731 * gc * gc) * 1e-6 * (g_max / PCM_G_MAX_FIT)


def snap_to_levels(
    g: torch.Tensor, levels: tuple[float, ...], sigma: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Snap target conductances to the nearest measured level; return it and its spread.

    Args:
        g: target conductances [S].
        levels: measured levels, ascending [S].
        sigma: measured programming spread of each level [S].

    Returns:
        ``(snapped conductances, spread)``, both shaped like ``g`` [S].
    """
    lv = torch.tensor(levels, dtype=g.dtype, device=g.device)
    sd = torch.tensor(sigma, dtype=g.dtype, device=g.device)
    idx = torch.bucketize(g, (lv[1:] + lv[:-1]) / 2)
    return lv[idx], sd[idx]


class DeviceModel(abc.ABC):
    """The programming statistics of one device technology."""

    name: ClassVar[str]
    noisy: ClassVar[bool] = True
    """Whether :meth:`program` uses its ``noise`` argument (False skips the draw)."""

    @abc.abstractmethod
    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Programmed conductances [S] for ``target`` conductances [S].

        Args:
            target: target conductances [S].
            programming: the config block (the model's own parameters live there).
            g_max: largest programmable conductance of the mapping [S].
            noise: standard normals shaped like ``target`` (one per device, drawn by the tile
                from the layer's programming stream).
        """


class IdealDevice(DeviceModel):
    """Exact programming."""

    name = "none"
    noisy = False

    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        return target


class PCMDevice(DeviceModel):
    """PCM programming noise, ``sigma(g)`` of Nandakumar et al., ICECS 2019."""

    name = "pcm"

    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        sigma = pcm_programming_sigma(target / g_max, g_max)
        return (target + sigma * noise).clamp_min(0.0)


class GaussianDevice(DeviceModel):
    """``sqrt(sigma_abs^2 + (sigma_rel G)^2)`` spread around the target."""

    name = "gaussian"

    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        sigma = torch.sqrt(programming.sigma_abs**2 + (programming.sigma_rel * target) ** 2)
        return (target + sigma * noise).clamp_min(0.0)


class MeasuredDevice(DeviceModel):
    """Snap to the nearest measured level and add that level's measured spread."""

    name = "measured"

    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        level, sigma = snap_to_levels(target, programming.levels, programming.level_sigma)
        return (level + sigma * noise).clamp_min(0.0)


_REGISTRY: dict[str, DeviceModel] = {}


def register_device(model: DeviceModel) -> None:
    """Make ``model`` selectable as ``ProgrammingConfig(model=model.name)``."""
    if not isinstance(model, DeviceModel):
        raise TypeError(f"register_device expects a DeviceModel, got {type(model).__name__}")
    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{type(model).__name__}.name must be a non-empty string")
    _REGISTRY[name] = model


def get_device(name: str) -> DeviceModel:
    """The registered device model ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown device model {name!r}; registered: {', '.join(device_names())} "
            "(add one with physnn.pim.devices.register_device)"
        ) from None


def device_names() -> tuple[str, ...]:
    """Names of the registered device models."""
    return tuple(_REGISTRY)


for _model in (IdealDevice(), PCMDevice(), GaussianDevice(), MeasuredDevice()):
    register_device(_model)
