"""Device models: how a target conductance becomes a programmed one, in a registry.

A device model is one class with a ``name`` and a :meth:`DeviceModel.program` method; after
:func:`register_device`, ``ProgrammingConfig(model=name)`` selects it and every layer uses
it (no edit to the layers or the configs). Shipped models:

- ``"none"``: exact programming (the target is the conductance);
- ``"pcm"``: the statistical PCM model of Nandakumar et al., ICECS 2019 (also Joshi et al.,
  Nat. Commun. 11, 2473, 2020);
- ``"reram"``: HfOx ReRAM after write-verify with its conductance-dependent spread and its
  relaxation over the following days (Wan et al., Nature 608, 504, 2022; the ``reram``
  preset);
- ``"gaussian"``: state-independent plus state-proportional spread;
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
import math
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from .config import ProgrammingConfig

__all__ = [
    "PCM_G_MAX_FIT",
    "RERAM_G_MAX_FIT",
    "RERAM_SIGMA_FIT",
    "DeviceModel",
    "GaussianDevice",
    "IdealDevice",
    "MeasuredDevice",
    "PCMDevice",
    "ReRAMDevice",
    "device_names",
    "get_device",
    "pcm_programming_sigma",
    "register_device",
    "reram_sigma",
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
    s = 1e-6 * g_max / PCM_G_MAX_FIT
    gc = g.clamp(0.0, 1.0)
    # Horner form, in place on the one fresh tensor: ((c2 g + c1) g + c0) s
    return gc.mul(-1.1731 * s).add_(1.9650 * s).mul_(gc).add_(0.26348 * s)


RERAM_G_MAX_FIT = 40e-6
"""Largest conductance of the ReRAM fits [S] (Wan et al., Nature 608, 504, 2022)."""

RERAM_SIGMA_FIT: dict[float, tuple[float, ...]] = {
    1.0: (0.348, 16.030, -43.853, 45.393, -16.815),
    86400.0: (0.701, 22.086, -50.773, 47.095, -16.458),
    172800.0: (0.782, 20.274, -43.507, 37.062, -11.934),
}
"""Spread of HfOx ReRAM conductances around their write-verify target [uS] at 1 s, 1 day
and 2 days after programming, ``sum_i c_i g^i`` in the normalised target ``g = G / g_max``
at ``g_max = 40 uS``: the fourth-order fits of aihwkit's ``ReRamWan2022NoiseModel`` to the
published figures of Wan et al., Nature 608, 504, 2022 (NeuRRAM)."""


def reram_sigma(g: torch.Tensor, t: float, g_max: float) -> torch.Tensor:
    """Spread [S] of ReRAM conductances around their target ``t`` [s] after programming.

    The fits of :data:`RERAM_SIGMA_FIT` at 1 s, 1 day and 2 days, interpolated linearly in
    ``log t`` between them, the 1 s fit before 1 s (write-verify has just ended) and the 2 day
    fit after 2 days (the measured spread had saturated: it grew 1.9-2.4x over the first day
    and changed by less than 5 % over the second), scaled by ``g_max / 40 uS``, floored at 0.

    Args:
        g: normalised target conductance ``G_target / g_max`` (clamped to ``[0, 1]``).
        t: time since programming [s].
        g_max: largest conductance [S].
    """
    gc = g.clamp(0.0, 1.0)
    times = sorted(RERAM_SIGMA_FIT)
    t = min(max(t, times[0]), times[-1])
    hi = next(i for i, ti in enumerate(times) if ti >= t)
    lo = max(hi - 1, 0)
    frac = 0.0 if hi == lo else math.log(t / times[lo]) / math.log(times[hi] / times[lo])
    coeff = [
        (1.0 - frac) * a + frac * b
        for a, b in zip(RERAM_SIGMA_FIT[times[lo]], RERAM_SIGMA_FIT[times[hi]], strict=True)
    ]
    sigma = torch.zeros_like(gc)
    for c in reversed(coeff):  # Horner
        sigma = sigma * gc + c
    return sigma.clamp_min(0.0) * 1e-6 * (g_max / RERAM_G_MAX_FIT)


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
    relaxes: ClassVar[bool] = False
    """Whether :meth:`relax` changes conductances after programming (False skips it)."""

    def relax(
        self,
        g: torch.Tensor,
        target: torch.Tensor,
        t: float,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """Conductances [S] ``t`` [s] after programming, from the programmed ``g`` [S].

        Device-specific changes after programming that are not a power-law drift (which
        :class:`~physnn.pim.config.DriftConfig` models), e.g. ReRAM relaxation. The default
        keeps ``g``.

        Args:
            g: programmed conductances [S].
            target: their target conductances [S].
            t: time since programming [s].
            programming: the config block.
            g_max: largest programmable conductance of the mapping [S].
            noise: standard normals shaped like ``g``, one per device, the same at every
                ``t`` (a device relaxes along one direction as time goes on).
        """
        return g

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
        return torch.addcmul(target, sigma, noise).clamp_min_(0.0)


class ReRAMDevice(DeviceModel):
    """HfOx ReRAM after write-verify: conductance-dependent spread and relaxation.

    Programming lands at ``G_target + sigma(g, 1 s) N(0, 1)``; afterwards the conductances
    relax away from the target until the spread around it is ``sigma(g, t)``
    (:func:`reram_sigma`, Wan et al., Nature 608, 504, 2022): each device moves along its
    own normal direction ``N'`` by ``sqrt(sigma(g, t)^2 - sigma(g, 1 s)^2)``, so the total
    deviation at ``t`` has the published spread. Conductances stay >= 0. The relaxation has
    no mean shift (as measured), so there is no drift to compensate: pair it with
    ``DriftConfig(model="none")``.
    """

    name = "reram"
    relaxes = True

    def program(
        self,
        target: torch.Tensor,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        sigma = reram_sigma(target / g_max, 0.0, g_max)
        return (target + sigma * noise).clamp_min(0.0)

    def relax(
        self,
        g: torch.Tensor,
        target: torch.Tensor,
        t: float,
        programming: ProgrammingConfig,
        g_max: float,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        if t <= min(RERAM_SIGMA_FIT):
            return g
        gn = target / g_max
        extra = reram_sigma(gn, t, g_max).square() - reram_sigma(gn, 0.0, g_max).square()
        return (g + extra.clamp_min(0.0).sqrt() * noise).clamp_min(0.0)


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


for _model in (IdealDevice(), PCMDevice(), ReRAMDevice(), GaussianDevice(), MeasuredDevice()):
    register_device(_model)
