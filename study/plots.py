"""Figures of a study (matplotlib, the ``physnn[plots]`` extra), written atomically as PNG.

- ``accuracy_vs_energy.png``: accuracy against energy per inference (hollow: ideal; filled:
  realistic on fresh devices), error bars one standard deviation.
- ``robustness.png``: accuracy against each backend's stress value, every point the mean of
  several fresh-device draws with a one-standard-deviation error bar.
- ``landscape.png``: every row's realistic accuracy against its efficiency [TOPS/W, log
  scale], with published digital chips (general-purpose processors and custom accelerators)
  marked on the same axis.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .cache import atomic_write_bytes
from .stats import mean_std

if TYPE_CHECKING:
    from .report import Comparison

__all__ = ["plot_comparison", "save"]


def save(fig: Any, path: Path) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _accuracy_vs_energy(result: Comparison, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for i, r in enumerate(result.rows):
        colour = f"C{i}"
        (im, isd), (rm, rsd) = mean_std(r.ideal_accuracy), mean_std(r.realistic_accuracy)
        energy = r.first.energy
        ax.errorbar(energy, 100 * im, yerr=100 * isd, fmt="o", mfc="none", color=colour, capsize=3)
        ax.errorbar(
            energy, 100 * rm, yerr=100 * rsd, fmt="o", color=colour, capsize=3, label=r.label
        )
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference [J]")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title("Accuracy vs energy (hollow: ideal, filled: fresh devices)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return save(fig, out / "accuracy_vs_energy.png")


def _robustness(result: Comparison, out: Path) -> Path | None:
    stressed = [r for r in result.rows if r.first.stress_name and r.first.stress_values]
    if not stressed:
        return None
    fig, axes = plt.subplots(
        1, len(stressed), figsize=(4.2 * len(stressed), 3.6), layout="constrained", squeeze=False
    )
    for ax, r in zip(axes[0], stressed, strict=True):
        t = r.first
        stats = [mean_std(a) for a in r.stress_accuracy]
        draws = len(r.stress_accuracy[0])
        ax.errorbar(
            t.stress_values,
            [100 * m for m, _ in stats],
            yerr=[100 * s for _, s in stats],
            marker="o",
            capsize=3,
        )
        if t.stress_log:
            ax.set_xscale("log")
        unit = f" [{t.stress_unit}]" if t.stress_unit else ""
        ax.set_xlabel(f"{t.stress_name}{unit}")
        ax.set_ylabel("test accuracy [%]")
        ax.set_title(f"{r.label} ({draws} draws per point)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_ylim(0, 100)
    return save(fig, out / "robustness.png")


def _landscape(result: Comparison, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8.0, 4.8), layout="constrained")
    finite = [r for r in result.rows if 0 < r.tops_per_watt < float("inf")]
    for i, r in enumerate(result.rows):
        if r not in finite:
            continue
        mean, std = mean_std(r.realistic_accuracy)
        ax.errorbar(
            r.tops_per_watt,
            100 * mean,
            yerr=100 * std,
            fmt="o",
            markersize=8,
            capsize=3,
            color=f"C{i}",
            label=r.label,
        )
    for j, m in enumerate(sorted(result.landmarks, key=lambda m: m.tops_per_watt)):
        ax.axvline(m.tops_per_watt, color="0.55", linestyle="--", linewidth=0.9)
        ax.text(
            m.tops_per_watt,
            99 - 22 * (j % 3),
            " " + m.name.partition(":")[2],
            rotation=90,
            fontsize="small",
            color="0.3",
            va="top",
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("energy efficiency [TOPS/W] (2 ops per equivalent digital MAC, log scale)")
    ax.set_ylabel("test accuracy on fresh devices [%]")
    ax.set_title("Where each paradigm lands (dashed: published digital chips)")
    ax.grid(True, which="both", alpha=0.25)
    fig.legend(fontsize="small", loc="outside lower center", ncols=min(2, max(1, len(finite))))
    return save(fig, out / "landscape.png")


def plot_comparison(result: Comparison, out: Path) -> list[Path]:
    """Write every figure of ``result`` into ``out``; returns the paths written."""
    paths = [_accuracy_vs_energy(result, out), _landscape(result, out)]
    robustness = _robustness(result, out)
    if robustness is not None:
        paths.append(robustness)
    return paths
