"""Tables and files of a study: rows aggregated over seeds and devices, CSV, JSON, markdown.

Units are the same in the terminal table, ``summary.md`` and ``results.csv``: accuracies in
percent (mean +- standard deviation), energy per inference [J], latency per inference [s],
area [mm^2], efficiency [TOPS/W] counted on the equivalent digital MACs of the model (two
operations per MAC), so every paradigm is measured against the same workload.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.backend import get_backend
from .cache import atomic_write_text
from .stats import mean_std
from .trial import TrialResult

__all__ = ["Comparison", "Landmark", "RowResult", "mean_std", "write_outputs"]


def _pct(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.1f} +- {100 * std:.1f}"


@dataclasses.dataclass
class RowResult:
    """One row of a comparison: the trials (seeds) of one backend config."""

    label: str
    trials: list[TrialResult]

    @property
    def first(self) -> TrialResult:
        return self.trials[0]

    @property
    def backend(self) -> str:
        return self.first.backend

    @property
    def ideal_accuracy(self) -> list[float]:
        """Ideal accuracy per seed."""
        return [t.ideal_accuracy for t in self.trials]

    @property
    def realistic_accuracy(self) -> list[float]:
        """Accuracy on fresh devices, every device of every seed."""
        return [a for t in self.trials for a in t.realistic_accuracy]

    @property
    def stress_accuracy(self) -> list[list[float]]:
        """Per stress value: accuracy of every fresh device of every seed."""
        return [
            [a for t in self.trials for a in t.stress_accuracy[i]]
            for i in range(len(self.first.stress_values))
        ]

    @property
    def tops_per_watt(self) -> float:
        """2 x equivalent digital MACs / energy per inference / 1e12 [TOPS/W]."""
        t = self.first
        return math.inf if t.energy == 0 else 2 * t.macs / t.energy / 1e12

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "trials": [t.to_dict() for t in self.trials]}


@dataclasses.dataclass(frozen=True)
class Landmark:
    """A published chip placed on the landscape figure: its efficiency and citation."""

    name: str
    tops_per_watt: float
    citation: str


_HEAD = (
    "paradigm",
    "preset",
    "ideal acc [%]",
    "realistic acc [%]",
    "energy/inf [J]",
    "TOPS/W",
    "latency [s]",
    "area [mm^2]",
    "params (classical)",
    "MACs digital [%]",
    "weights",
)


@dataclasses.dataclass
class Comparison:
    """Results of a study: rows, the settings and where files were written."""

    rows: list[RowResult]
    settings: dict[str, Any]
    out: Path | None
    landmarks: list[Landmark] = dataclasses.field(default_factory=list)

    def _cells(self, r: RowResult) -> tuple[str, ...]:
        t = r.first
        share = "-" if t.digital_mac_share is None else f"{100 * t.digital_mac_share:.0f}"
        preset = t.config.get("preset", "")
        return (
            "classical" if t.baseline_of else r.backend,
            f"{t.baseline_of}:{preset} baseline" if t.baseline_of else preset,
            _pct(r.ideal_accuracy),
            _pct(r.realistic_accuracy),
            f"{t.energy:.2e}",
            f"{r.tops_per_watt:.3g}",
            f"{t.latency:.2e}",
            f"{t.area * 1e6:.3g}" if t.area > 0 else "-",
            f"{t.params} ({t.classical_params})",
            share,
            t.weights,
        )

    def table(self) -> str:
        """The aligned terminal table (accuracies: mean +- std over seeds and devices)."""
        lines = [_HEAD, *(self._cells(r) for r in self.rows)]
        widths = [max(len(row[i]) for row in lines) for i in range(len(_HEAD))]
        out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        out.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "physnn_version": __version__,
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
            "landmarks": [dataclasses.asdict(m) for m in self.landmarks],
        }

    def csv(self) -> str:
        """One line per row, in the units of the table."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "label",
                "backend",
                "schedule",
                "optimizer_steps",
                "ideal_acc_mean_pct",
                "ideal_acc_std_pct",
                "realistic_acc_mean_pct",
                "realistic_acc_std_pct",
                "energy_per_inference_J",
                "tops_per_watt",
                "latency_s",
                "area_mm2",
                "area_physical_mm2",
                "area_analog_mm2",
                "area_periphery_mm2",
                "area_digital_coprocessor_mm2",
                "equivalent_digital_macs",
                "macs_left_digital_pct",
                "params",
                "classical_params",
                "weights",
                "resources",
            ]
        )
        for r in self.rows:
            t = r.first
            share = "" if t.digital_mac_share is None else 100 * t.digital_mac_share
            writer.writerow(
                [
                    r.label,
                    r.backend,
                    t.schedule_text,
                    t.steps,
                    *(100 * v for v in mean_std(r.ideal_accuracy)),
                    *(100 * v for v in mean_std(r.realistic_accuracy)),
                    t.energy,
                    r.tops_per_watt,
                    t.latency,
                    t.area * 1e6,
                    t.physical_area * 1e6,
                    t.resources.get("analog_area", 0.0) * 1e6,
                    t.resources.get("periphery_area", 0.0) * 1e6,
                    (t.area - t.physical_area) * 1e6,
                    t.macs,
                    share,
                    t.params,
                    t.classical_params,
                    t.weights,
                    json.dumps(t.resources, sort_keys=True),
                ]
            )
        return buffer.getvalue()

    def summary(self) -> str:
        """``summary.md``: settings, table, schedules, stress numbers, costs, assumptions."""
        s = self.settings
        lines = [
            "# physnn comparison",
            "",
            f"Dataset: {s['dataset']} ({s.get('split', '')}); model {s['model']}; a budget of "
            f"{s['epochs']} epochs (batch {s['batch_size']}) for every row; {s['seeds']} "
            f"seeds x {s['devices']} fresh devices per seed (mean +- std). Realistic accuracy "
            "is measured on devices drawn afresh after training, never on the training device.",
            "",
            "```",
            self.table(),
            "```",
            "",
            "## Training schedule (equal budgets)",
            "",
        ]
        for r in self.rows:
            t = r.first
            lines.append(f"- {r.label}: {t.schedule_text} = {t.steps} optimiser steps")
        baselines = [r for r in self.rows if r.first.baseline_of]
        if baselines:
            lines += ["", "## Classical baselines", ""]
            for r in baselines:
                baseline = get_backend(r.first.baseline_of or "").baseline
                text = baseline.description if baseline is not None else ""
                lines.append(f"- {r.label}: {text}")
        lines += ["", "## Stress (accuracy [%] on fresh devices, mean +- std)", ""]
        for r in self.rows:
            t = r.first
            if not t.stress_name:
                continue
            unit = f" [{t.stress_unit}]" if t.stress_unit else ""
            points = ", ".join(
                f"{v:g}: {_pct(a)}" for v, a in zip(t.stress_values, r.stress_accuracy, strict=True)
            )
            lines.append(f"- {r.label}, {t.stress_name}{unit}: {points}")
        lines += ["", "## Cost per inference", ""]
        for r in self.rows:
            t = r.first
            share = "n/a" if t.digital_mac_share is None else f"{100 * t.digital_mac_share:.0f} %"
            res = t.resources
            counts = ", ".join(
                f"{k} {v:g}" for k, v in sorted(res.items()) if not k.endswith("_area")
            )
            analog, periphery = res.get("analog_area", 0.0), res.get("periphery_area", 0.0)
            lines.append(
                f"- {r.label}: {t.energy:.3g} J ({t.physical_energy:.3g} J in the {t.backend} "
                f"layers), {r.tops_per_watt:.3g} TOPS/W on {t.macs} equivalent digital MACs, "
                f"{share} of the MACs left digital; area {t.area * 1e6:.3g} mm^2 "
                f"({analog * 1e6:.3g} analog array + {periphery * 1e6:.3g} periphery in the "
                f"{t.backend} layers, {(t.area - t.physical_area) * 1e6:.3g} digital "
                f"co-processor); {counts}"
            )
        assumed = [r for r in self.rows if r.first.assumptions]
        if assumed:
            lines += ["", "## Assumptions", ""]
            for r in assumed:
                lines.append(f"- {r.label}: " + "; ".join(r.first.assumptions))
        if self.landmarks:
            lines += ["", "## Accelerator landscape (published figures)", ""]
            for m in self.landmarks:
                lines.append(f"- {m.name}: {m.tops_per_watt:.3g} TOPS/W ({m.citation})")
        return "\n".join(lines) + "\n"


def write_outputs(result: Comparison, out: Path, *, figures: bool = True) -> list[Path]:
    """Write ``results.csv``, ``results.json``, ``summary.md`` and (``figures``) the PNG
    figures, each atomically."""
    import warnings

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(result.to_dict(), indent=1))
    atomic_write_text(out / "results.csv", result.csv())
    atomic_write_text(out / "summary.md", result.summary())
    written = [out / "results.json", out / "results.csv", out / "summary.md"]
    if not figures:
        return written
    try:
        from .plots import plot_comparison
    except ImportError:
        warnings.warn(
            "matplotlib is not installed: figures skipped; pip install 'physnn[plots]'",
            UserWarning,
            stacklevel=2,
        )
        return written
    return written + plot_comparison(result, out)
