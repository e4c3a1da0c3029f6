"""``physnn sweep``: a grid over config fields and stress values on top of the study trials.

Each grid point is a row (a backend config with some fields changed through
:meth:`~physnn.common.config.ConfigBlock.with_changes`; the special field ``preset`` picks the
base preset), run for every seed with the same trials, executors, checkpoints and resume as
``physnn compare``. The result is one tidy table, one line per (point, seed, fresh device,
stress value), written as ``sweep.csv`` (and ``sweep.parquet`` when pyarrow is installed),
and one figure per swept field.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..common.backend import get_backend, resolve_config
from .cache import FolderLock, atomic_write_bytes, atomic_write_text
from .compare import make_settings, prepare_out, run_study
from .report import RowResult
from .settings import StudySettings, UsageError, user_input
from .stats import mean_std
from .trial import RowSpec

__all__ = ["SweepResult", "grid_rows", "parse_grid", "parse_value", "sweep"]


def parse_value(text: str) -> Any:
    """A grid value from the command line: int, float, true/false/none, or the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["adc.bits=4,6,8", "preset=pcm,hermes"]`` as ``{"adc.bits": [4, 6, 8], ...}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        field, sep, values = item.partition("=")
        field = field.strip()
        if not sep or not field or not values.strip():
            raise UsageError(f"--grid: {item!r}: write FIELD=V1,V2,... e.g. adc.bits=4,6,8")
        if field in grid:
            raise UsageError(f"--grid: field {field!r} is given twice; list its values once")
        grid[field] = [parse_value(v) for v in values.split(",") if v.strip()]
    return grid


def grid_rows(
    backend: str, grid: Mapping[str, Sequence[Any]]
) -> list[tuple[dict[str, Any], RowSpec]]:
    """Every grid point of ``backend`` as ``(point, row)``, in grid order.

    Raises:
        UsageError: unknown backend, preset or field, or a value the config refuses.
    """
    with user_input("--backend"):
        base_backend = get_backend(backend)
    fields = list(grid)
    rows = []
    for values in itertools.product(*(grid[f] for f in fields)):
        point = dict(zip(fields, values, strict=True))
        preset = point.get("preset", base_backend.default_preset)
        with user_input("--grid preset"):
            config = resolve_config(f"{base_backend.name}:{preset}")
        changes = {k: v for k, v in point.items() if k != "preset"}
        if changes:
            with user_input(f"--grid {', '.join(changes)}"):
                config = config.with_changes(changes)
        label = " ".join(
            [f"{base_backend.name}:{preset}", *(f"{k}={v}" for k, v in changes.items())]
        )
        rows.append((point, RowSpec(label, config)))
    return rows


@dataclasses.dataclass
class SweepResult:
    """The tidy table of a sweep and the files written."""

    fields: list[str]
    records: list[dict[str, Any]]
    rows: list[RowResult]
    settings: dict[str, Any]
    files: list[Path]

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.records[0]))
        writer.writeheader()
        writer.writerows(self.records)
        return buffer.getvalue()


def _records(
    fields: Sequence[str], points: Sequence[dict[str, Any]], rows: Sequence[RowResult]
) -> list[dict[str, Any]]:
    records = []
    for point, row in zip(points, rows, strict=True):
        for trial in row.trials:
            base = {
                "label": row.label,
                "backend": trial.backend,
                **{f: point[f] for f in fields},
                "seed": trial.seed,
            }
            cost = {
                "energy_per_inference_J": trial.energy,
                "tops_per_watt": row.tops_per_watt,
                "latency_s": trial.latency,
                "ideal_accuracy_pct": 100 * trial.ideal_accuracy,
            }
            for d, acc in enumerate(trial.realistic_accuracy):
                records.append(
                    {
                        **base,
                        "device": d,
                        "stress_name": "",
                        "stress_value": math.nan,
                        "accuracy_pct": 100 * acc,
                        **cost,
                    }
                )
                for value, per_device in zip(
                    trial.stress_values, trial.stress_accuracy, strict=True
                ):
                    records.append(
                        {
                            **base,
                            "device": d,
                            "stress_name": trial.stress_name or "",
                            "stress_value": value,
                            "accuracy_pct": 100 * per_device[d],
                            **cost,
                        }
                    )
    return records


def _write_parquet(records: list[dict[str, Any]], path: Path) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    table = pa.Table.from_pylist([{k: _plain(v) for k, v in r.items()} for r in records])
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())
    return path


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str) or value is None else str(value)


def _plot(result: SweepResult, out: Path) -> list[Path]:
    try:
        from .plots import plt, save
    except ImportError:
        return []
    paths = []
    records = result.records
    stresses = sorted({r["stress_value"] for r in records if r["stress_name"]})
    stress_name = next((r["stress_name"] for r in records if r["stress_name"]), "")
    for field in result.fields:
        values = list(dict.fromkeys(r[field] for r in records))
        fig, ax = plt.subplots(figsize=(5.6, 3.8), layout="constrained")
        series: list[tuple[str, Any]] = [("fresh devices", None)]
        series += [(f"{stress_name} {s:g}", s) for s in stresses]
        for i, (name, stress) in enumerate(series):
            stats = []
            for v in values:
                accs = [
                    r["accuracy_pct"]
                    for r in records
                    if r[field] == v
                    and (
                        (stress is None and not r["stress_name"])
                        or (stress is not None and r["stress_value"] == stress)
                    )
                ]
                stats.append(mean_std(accs))
            x = [j + 0.06 * (i - len(series) / 2) for j in range(len(values))]
            ax.errorbar(
                x,
                [m for m, _ in stats],
                yerr=[s for _, s in stats],
                marker="o",
                capsize=3,
                label=name,
            )
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(field)
        ax.set_ylabel("test accuracy [%] (mean +- std)")
        ax.set_ylim(0, 100)
        ax.set_title(
            f"sweep over {field} (other fields, seeds and devices pooled)", fontsize="medium"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
        paths.append(save(fig, out / f"sweep_{field.replace('.', '_')}.png"))
    return paths


def sweep(
    backend: str = "pim",
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    dataset: str = "digits",
    model: str = "mlp",
    stress_values: Sequence[float] | None = None,
    epochs: int | None = None,
    seeds: int | None = None,
    devices: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    executor: str = "serial",
    workers: int | None = None,
    ray_address: str | None = None,
    out: str | Path | None = "physnn-sweep",
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    figures: bool = True,
) -> SweepResult:
    """Run ``backend`` over every point of ``grid`` and write the tidy table and plots.

    Args:
        backend: backend name (``"pim"``).
        grid: field -> values, e.g. ``{"adc.bits": [4, 6, 8], "preset": ["pcm", "hermes"]}``
            (nested fields with a dot; ``preset`` chooses the base preset); None or empty
            runs the default preset alone.
        stress_values: the backend's stress values to evaluate (``drift`` times for PIM).
        figures: write one PNG per swept field.
        Other arguments: as :func:`~physnn.study.compare.compare`.
    """
    grid = dict(grid or {})
    for field, values in grid.items():
        if isinstance(values, str) or not values:
            raise UsageError(f"--grid: field {field!r} needs one or more values")
    points_rows = grid_rows(backend, grid)
    settings: StudySettings = make_settings(
        dataset=dataset,
        model=model,
        quick=quick,
        epochs=epochs,
        seeds=seeds,
        devices=devices,
        train_size=train_size,
        test_size=test_size,
        image_size=image_size,
        batch_size=batch_size,
        device=device,
        stress_values=stress_values,
    )
    out_dir = prepare_out(out)
    with FolderLock(out_dir) if out_dir is not None else contextlib.nullcontext():
        rows = run_study(
            settings,
            [row for _, row in points_rows],
            out=out_dir,
            resume=resume,
            executor=executor,
            workers=workers,
            threads=threads,
            ray_address=ray_address,
            progress=progress,
        )
        fields = list(grid)
        records = _records(fields, [p for p, _ in points_rows], rows)
        result = SweepResult(
            fields=fields,
            records=records,
            rows=rows,
            settings={**settings.to_dict(), "backend": backend, "grid": grid},
            files=[],
        )
        if out_dir is not None:
            atomic_write_text(out_dir / "sweep.csv", result.csv())
            atomic_write_text(
                out_dir / "sweep.json",
                json.dumps(
                    {"settings": result.settings, "records": records}, indent=1, default=str
                ),
            )
            result.files = [out_dir / "sweep.csv", out_dir / "sweep.json"]
            parquet = _write_parquet(records, out_dir / "sweep.parquet")
            if parquet is not None:
                result.files.append(parquet)
            if figures:
                result.files += _plot(result, out_dir)
    return result
