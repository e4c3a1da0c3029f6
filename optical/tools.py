"""Researcher tools: plots of masks and planes, and the fabrication export of trained masks.

matplotlib (``physnn[plots]``) and numpy-stl (``physnn[stl]``) are optional and imported
only when a function needs them.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .layers import DiffractiveLayer

__all__ = ["HeightMap", "height_map", "plot_masks", "plot_planes", "save_stl"]


def _optional(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"this function needs {module!r}, which is not installed; install the optional "
            f"extra with: pip install 'physnn[{extra}]'"
        ) from error


@dataclasses.dataclass(frozen=True)
class HeightMap:
    """Thickness of a printed phase layer, one value per neuron."""

    heights: np.ndarray
    """Thickness above the base of each neuron ``[size, size]`` [m]."""

    pitch: float
    """Neuron pitch [m]."""

    wavelength: float
    """Design wavelength [m]."""

    refractive_index: float
    """Refractive index of the material [-]."""

    unit: str = "m"
    """Unit of ``heights`` and ``pitch``."""


def height_map(layer: DiffractiveLayer) -> HeightMap:
    """The trained phase of ``layer`` as a printable thickness map.

    The phase as built (quantised to ``phase_levels`` when set, no fabrication error) is
    wrapped into ``[0, 2 pi)`` and turned into ``h = phi lambda / (2 pi (n - 1))`` with the
    material's index ``modulation.refractive_index`` (Lin et al. 2018: n = 1.7227 at
    0.4 THz, so a full 2 pi is 1.04 mm).
    """
    if not isinstance(layer, DiffractiveLayer) or layer.phase is None:
        raise TypeError("height_map needs a DiffractiveLayer with a phase mask (kind 'phase')")
    cfg = layer.config
    phase = layer.phase.detach().to(torch.float64)
    levels = cfg.fabrication.phase_levels
    if levels:
        phase = torch.remainder(torch.round(phase / (2 * math.pi / levels)), levels) * (
            2 * math.pi / levels
        )
    wrapped = torch.remainder(phase, 2 * math.pi).cpu().numpy()
    n = cfg.modulation.refractive_index
    lam = cfg.geometry.wavelength
    return HeightMap(
        heights=wrapped * lam / (2 * math.pi * (n - 1)),
        pitch=cfg.geometry.pitch,
        wavelength=lam,
        refractive_index=n,
    )


def save_stl(layer: DiffractiveLayer, path: str | Path, *, base: float = 0.5e-3) -> Path:
    """Write ``layer``'s height map as an STL solid: a base plate of thickness ``base``
    [m] with one square pillar per neuron (12 triangles each), in millimetres.

    Needs numpy-stl (``pip install 'physnn[stl]'``).
    """
    mesh_module = _optional("stl.mesh", "stl")
    if not (isinstance(base, int | float) and 0 <= base < 1):
        raise ValueError(f"base={base!r} m must be in [0, 1) m; 0.5 mm is 0.5e-3")
    hm = height_map(layer)
    size = hm.heights.shape[0]
    top = (hm.heights + base) * 1e3  # mm
    p = hm.pitch * 1e3
    # the 8 corners of each pillar and its 12 triangles (two per face)
    iy, ix = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    x0, y0 = ix.ravel() * p, iy.ravel() * p
    z1 = top.ravel()
    corners = np.stack(
        [
            np.stack([x0 + dx * p, y0 + dy * p, z1 * dz], -1)
            for dz in (0, 1)
            for dy in (0, 1)
            for dx in (0, 1)
        ],
        1,
    )  # [pillars, 8, 3]: index = 4 dz + 2 dy + dx
    faces = np.array(
        [
            [0, 2, 1], [1, 2, 3],  # bottom
            [4, 5, 6], [5, 7, 6],  # top
            [0, 1, 4], [1, 5, 4],  # y = 0
            [2, 6, 3], [3, 6, 7],  # y = 1
            [0, 4, 2], [2, 4, 6],  # x = 0
            [1, 3, 5], [3, 7, 5],  # x = 1
        ]
    )  # fmt: skip
    triangles = corners[:, faces].reshape(-1, 3, 3)
    solid = mesh_module.Mesh(np.zeros(len(triangles), dtype=mesh_module.Mesh.dtype))
    solid.vectors[:] = triangles
    out = Path(path)
    solid.save(str(out))
    return out


def _pyplot() -> Any:
    return _optional("matplotlib.pyplot", "plots")


def plot_masks(model: nn.Module, *, cmap: str = "twilight") -> Any:
    """One panel per diffractive layer of ``model``: the wrapped phase [rad] (or the
    amplitude transmission for amplitude masks). Returns the matplotlib figure."""
    plt = _pyplot()
    layers = [m for m in model.modules() if isinstance(m, DiffractiveLayer)]
    if not layers:
        raise ValueError(f"{type(model).__name__} holds no DiffractiveLayer to plot")
    fig, axes = plt.subplots(1, len(layers), figsize=(3 * len(layers), 3), squeeze=False)
    for k, (ax, layer) in enumerate(zip(axes[0], layers, strict=True)):
        with torch.no_grad():
            t = layer.transmission().cpu()
        if layer.phase is not None:
            image = torch.remainder(t.angle(), 2 * math.pi).numpy()
            im = ax.imshow(image, cmap=cmap, vmin=0, vmax=2 * math.pi)
            label = "phase [rad]"
        else:
            im = ax.imshow(t.abs().numpy(), cmap="gray", vmin=0, vmax=1)
            label = "|t|"
        ax.set_title(f"layer {k + 1}")
        ax.set_axis_off()
        fig.colorbar(im, ax=ax, fraction=0.046, label=label)
    fig.tight_layout()
    return fig


def plot_planes(fields: dict[str, Any], *, sample: int = 0) -> Any:
    """Intensity at every plane of ``net.fields(x)`` for one sample, and the detector plane
    with its regions outlined. Returns the matplotlib figure."""
    plt = _pyplot()
    planes = fields["planes"]
    n = len(planes) + 1
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), squeeze=False)
    for k, (ax, field) in enumerate(zip(axes[0], planes, strict=False)):
        ax.imshow(field[sample].detach().abs().square().cpu().numpy(), cmap="inferno")
        ax.set_title("before layer " + str(k + 1) if k < len(planes) - 1 else "detector field")
        ax.set_axis_off()
    ax = axes[0][-1]
    ax.imshow(fields["detector"][sample].detach().cpu().numpy(), cmap="inferno")
    ax.contour(fields["regions"].any(0).cpu().numpy(), levels=[0.5], colors="cyan")
    ax.set_title("detector pixels")
    ax.set_axis_off()
    fig.tight_layout()
    return fig
