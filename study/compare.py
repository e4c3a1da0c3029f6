"""``physnn compare``: one network trained and evaluated on every paradigm, side by side.

The study is a grid of trials (row x seed); each trial is the pure function
:func:`~physnn.study.trial.run_trial` (equal training budgets, realistic accuracy on fresh
devices, stress curves averaged over several draws; see :mod:`physnn.study.trial`). Trials
run on an executor (:mod:`physnn.study.executors`: serial, a process pool or Ray), every
finished trial is checkpointed at once (:mod:`physnn.study.cache`: fingerprinted, atomic,
under a folder lock), and the rows are written as tables and figures
(:mod:`physnn.study.report`, :mod:`physnn.study.plots`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..common.backend import REFERENCE_BACKEND, get_backend, resolve_config
from ..common.cost import cost
from .cache import FolderLock, atomic_write_text, fingerprint, read_json, safe_name
from .executors import Task, resolve_executor, run_tasks, trial_threads
from .report import Comparison, Landmark, RowResult, write_outputs
from .settings import StudySettings, UsageError, load_data, model_factory, user_input
from .trial import RowSpec, TrialResult, estimate_step_seconds, schedule, swept_stress_values

__all__ = [
    "DEFAULT_BACKENDS",
    "QUICK",
    "TrialStore",
    "compare",
    "make_settings",
    "makespan",
    "prepare_out",
    "resolve_rows",
    "run_study",
]

DEFAULT_BACKENDS: tuple[str, ...] = ("digital", "pim:pcm", "optical", "quantum")
"""The rows of a default comparison (each backend's default preset unless named)."""

QUICK: dict[str, int] = {
    "epochs": 4,
    "seeds": 2,
    "devices": 2,
    "train_size": 400,
    "test_size": 100,
    "batch_size": 64,
    "stress_points": 3,
}
"""Settings of ``--quick``: every row on 400 samples for 4 epochs of batch 64 (28 optimiser
steps), 2 seeds x 2 fresh devices, 3 stress points per curve; the run time is set by the
slowest backend (the estimate printed before the run says how long)."""

FULL: dict[str, int] = {"epochs": 40, "seeds": 3, "devices": 5, "batch_size": 32}
"""Defaults of a full run (the whole dataset)."""

HOUR = 3600.0
"""Estimated run times above this many seconds get a warning [s]."""


def make_settings(
    *,
    dataset: str,
    model: str,
    quick: bool,
    epochs: int | None,
    seeds: int | None,
    devices: int | None,
    train_size: int | None,
    test_size: int | None,
    image_size: int | None,
    batch_size: int | None,
    device: str,
    stress_values: Sequence[float] | None,
    stress_points: int | None = None,
) -> StudySettings:
    """Fill the defaults (``quick`` or full), validate, load and digest the data.

    Raises:
        UsageError: naming the argument and the fix.
    """
    defaults = QUICK if quick else FULL
    chosen = {
        "epochs": epochs,
        "seeds": seeds,
        "devices": devices,
        "train_size": train_size,
        "test_size": test_size,
        "batch_size": batch_size,
        "stress_points": stress_points,
    }
    values = {k: v if v is not None else defaults.get(k) for k, v in chosen.items()}
    settings = StudySettings(
        dataset=dataset,
        model=model,
        image_size=image_size,
        device=device,
        stress_values=tuple(stress_values) if stress_values is not None else None,
        **values,  # type: ignore[arg-type]
    )
    return settings.prepared()


def resolve_rows(specs: Sequence[str], *, baselines: bool = True) -> list[RowSpec]:
    """Backend specs (``"pim"``, ``"pim:hermes"``) as rows with resolved configs.

    With ``baselines``, a row whose backend has a classical
    :class:`~physnn.common.backend.Baseline` is followed by that baseline's row.
    """
    if isinstance(specs, str) or not specs:
        names = ", ".join(DEFAULT_BACKENDS)
        raise UsageError(f"--backends: give one or more backend specs, e.g. {names}")
    rows = []
    for spec in specs:
        with user_input("--backends"):
            config = resolve_config(spec)
        label = spec if ":" in spec else f"{spec}:{config.preset}"
        rows.append(RowSpec(label, config))
        baseline = get_backend(config).baseline
        if baselines and baseline is not None:
            rows.append(RowSpec(f"{label} {baseline.name}", config, baseline=True))
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise UsageError(f"--backends: {labels} names a row twice; give each once")
    return rows


class TrialStore:
    """The per-trial checkpoints of a study in ``<out>/trials/<row>/seed-<k>.json``.

    Each file holds the trial's fingerprint and result; :meth:`load` returns a result only
    when the fingerprint matches (every setting, the data digest, the config, the seed and
    the physnn version), so stale results are never reused.
    """

    def __init__(self, out: Path) -> None:
        self.root = out / "trials"

    @staticmethod
    def key(settings: StudySettings, row: RowSpec, seed: int) -> str:
        return fingerprint(
            {
                "physnn": __version__,
                "settings": settings.to_dict(),
                "row": row.to_dict(),
                "seed": seed,
            }
        )

    def path(self, row: RowSpec, seed: int) -> Path:
        return self.root / safe_name(row.label) / f"seed-{seed}.json"

    def load(self, settings: StudySettings, row: RowSpec, seed: int) -> TrialResult | None:
        path = self.path(row, seed)
        if not path.exists():
            return None
        saved = read_json(path)
        if not isinstance(saved, dict) or saved.get("fingerprint") != self.key(settings, row, seed):
            return None
        try:
            return TrialResult.from_dict(saved["result"])
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, settings: StudySettings, task_row: RowSpec, result: TrialResult) -> None:
        payload = {
            "fingerprint": self.key(settings, task_row, result.seed),
            "result": result.to_dict(),
        }
        atomic_write_text(self.path(task_row, result.seed), json.dumps(payload, indent=1))


def makespan(durations: Sequence[float], workers: int) -> float:
    """Wall time [s] of running tasks of ``durations`` [s] longest first, each on the next
    free one of ``workers`` (how the study hands its sorted trials to the pool)."""
    loads = [0.0] * max(1, workers)
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def _estimate(
    settings: StudySettings,
    tasks: Sequence[Task],
    parallel: int,
    threads: int | None,
    log: Callable[[str], None],
) -> dict[str, float]:
    """Print the estimated run time from one timed batch per row; warn above an hour.

    Each row's batch is timed with the torch ``threads`` its trials will get (see
    :func:`~physnn.study.executors.trial_threads`), and the total is the makespan of the
    trials on ``parallel`` workers, longest first.

    Returns:
        The estimated time of one trial of each row [s], by row label.
    """
    data = load_data(settings)
    batches = math.ceil(len(data.y_train) / settings.batch_size)
    eval_batches = math.ceil(len(data.y_test) / 512)
    per_row: dict[str, float] = {}
    per_trial: dict[str, float] = {}
    counts: dict[str, int] = {}
    rows = {t.row.label: t.row for t in tasks}
    for task in tasks:
        counts[task.row.label] = counts.get(task.row.label, 0) + 1
    for label, row in rows.items():
        step, evaluation = estimate_step_seconds(settings, row, threads=threads)
        n_stress = len(swept_stress_values(settings, row.stress()))
        evaluations = 1 + settings.devices * (1 + n_stress)
        per_trial[label] = (
            step * settings.epochs * batches + evaluation * eval_batches * evaluations
        )
        per_row[label] = per_trial[label] * counts[label]
    total = makespan([per_trial[t.row.label] for t in tasks], parallel)
    parts = ", ".join(f"{k} {_duration(v)}" for k, v in per_row.items())
    log(f"estimated run time {_duration(total)} ({parts}; from one timed batch per row)")
    if total > HOUR:
        warnings.warn(
            f"the study is estimated to run {_duration(total)}: reduce --epochs, --seeds, "
            "--devices, --train-size or --image-size, or use --executor process/ray",
            UserWarning,
            stacklevel=3,
        )
    return per_trial


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * HOUR:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / HOUR:.1f} h"


def run_study(
    settings: StudySettings,
    rows: Sequence[RowSpec],
    *,
    out: Path | None,
    resume: bool,
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> list[RowResult]:
    """Run every (row, seed) trial not already checkpointed and return the rows in order.

    Args:
        settings: prepared settings (see :func:`make_settings`).
        rows: the rows.
        out: output folder (checkpoints under ``out/trials``); None keeps nothing.
        resume: reuse checkpoints whose fingerprint matches; otherwise rerun everything.
        executor, workers, threads, ray_address: see :func:`~physnn.study.executors.run_tasks`.
        progress: progress bars and the run-time estimate on stderr.
    """
    store = TrialStore(out) if out is not None else None
    results: dict[tuple[str, int], TrialResult] = {}
    tasks: list[Task] = []
    for row in rows:
        for seed in range(settings.seeds):
            found = store.load(settings, row, seed) if (store and resume) else None
            if found is not None:
                results[(row.label, seed)] = found
            else:
                tasks.append(Task(settings, row, seed))

    def log(message: str) -> None:
        if progress:
            tqdm.write(message, file=sys.stderr)

    if resume and results:
        log(f"resumed {len(results)} finished trials from {store.root if store else ''}")
    executor = resolve_executor(executor, len(tasks), workers)
    parallel = 1 if executor == "serial" else min(workers or os.cpu_count() or 1, len(tasks))
    if tasks:
        per_trial = _estimate(settings, tasks, parallel, trial_threads(executor, threads), log)
        if parallel > 1:  # longest first: the workers finish together
            tasks.sort(key=lambda t: -per_trial[t.row.label])
    bar = tqdm(total=len(tasks), desc="trials", disable=not progress, file=sys.stderr)

    def finished(task: Task, result: TrialResult) -> None:
        results[(task.row.label, task.seed)] = result
        if store is not None:
            store.save(settings, task.row, result)
        bar.update(1)
        bar.set_postfix_str(f"{task.row.label} seed {task.seed}")

    try:
        run_tasks(
            tasks,
            finished,
            executor=executor,
            workers=workers,
            threads=threads,
            ray_address=ray_address,
            progress=progress,
        )
    finally:
        bar.close()
    return [
        RowResult(row.label, [results[(row.label, s)] for s in range(settings.seeds)])
        for row in rows
    ]


def _landmarks(settings: StudySettings) -> list[Landmark]:
    """Every preset of the reference (digital) backend costed on the study's torch model."""
    data = load_data(settings)
    model = model_factory(settings.model, data.image_shape)(data.n_features, data.n_classes)
    backend = get_backend(REFERENCE_BACKEND)
    marks = []
    for name in backend.presets.names():
        c = cost(model, (1, data.n_features), digital=name)
        if c.energy > 0:
            label = f"{REFERENCE_BACKEND}:{name}"
            marks.append(Landmark(label, c.tops_per_watt, backend.presets.citation(name)))
    return marks


def prepare_out(out: str | Path | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    with user_input("--out"):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{str(path)!r} exists and is not a folder; pass a folder")
        (path / "trials").mkdir(parents=True, exist_ok=True)
        probe = path / ".physnn-write-test"
        probe.write_text("")
        probe.unlink()
    return path


def compare(
    dataset: str = "digits",
    *,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    model: str = "mlp",
    epochs: int | None = None,
    seeds: int | None = None,
    devices: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    stress_values: Sequence[float] | None = None,
    device: str = "cpu",
    threads: int | None = None,
    executor: str = "serial",
    workers: int | None = None,
    ray_address: str | None = None,
    out: str | Path | None = "physnn-results",
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
    figures: bool = True,
    baselines: bool = True,
) -> Comparison:
    """Train and evaluate one network on every backend; write tables and figures.

    Args:
        dataset: ``"digits"`` (embedded) or a path to MNIST-format files.
        backends: backend specs, ``"name"`` or ``"name:preset"``.
        model: ``"mlp"``, ``"cnn"``, ``"package.module:factory"`` or ``"file.py:factory"``.
        epochs: the training budget of every row (default 4 quick / 40 full).
        seeds: repetitions with different seeds (default 2 quick / 3 full).
        devices: fresh devices per trained model (default 2 quick / 5 full).
        train_size: training samples used (default 400 quick / all).
        test_size: test samples used (default 100 quick / all).
        image_size: resample images to this side [pixels] (default: keep).
        batch_size: mini-batch size of every training run (default 64 quick / 32 full).
        stress_values: stress values to sweep instead of each backend's defaults.
        device: torch device string (``"cpu"``, ``"cuda:1"``).
        threads: torch threads per trial (default: torch's; 1 per parallel worker).
        executor: ``"serial"`` (default here), ``"auto"`` (a process pool on several
            cores; the command line's default), ``"process"`` or ``"ray"``. The pool starts
            workers with ``spawn``, which re-imports the calling script: call it under
            ``if __name__ == "__main__":``.
        workers: parallel workers of the process pool or local Ray (default: all cores).
        ray_address: join this running Ray cluster (``executor="ray"``).
        out: output folder for CSV/JSON/markdown/PNG and checkpoints (None writes nothing).
        quick: the small ``QUICK`` settings (4 epochs of batch 64 on 400 samples, 2 seeds x
            2 devices, 3 stress points).
        resume: reuse checkpointed trials whose fingerprint matches.
        progress: progress bars and the run-time estimate on stderr.
        figures: write the PNG figures (matplotlib).
        baselines: add each backend's classical baseline row (quantum: the circuit replaced
            by ``tanh``), trained with the same budget.

    Returns:
        A :class:`~physnn.study.report.Comparison`; ``print(result.table())`` shows it.

    Raises:
        UsageError: bad input, naming the argument and the fix.
    """
    if isinstance(threads, bool) or (
        threads is not None and (not isinstance(threads, int) or threads < 1)
    ):
        raise UsageError(f"--threads: threads={threads!r} must be an int >= 1")
    rows = resolve_rows(backends, baselines=baselines)
    settings = make_settings(
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
        row_results = run_study(
            settings,
            rows,
            out=out_dir,
            resume=resume,
            executor=executor,
            workers=workers,
            threads=threads,
            ray_address=ray_address,
            progress=progress,
        )
        data = load_data(settings)
        summary = {**settings.to_dict(), "split": data.split, "quick": quick}
        summary["schedules"] = {
            r.label: dataclasses.asdict(schedule(get_backend(r.config), settings.epochs))
            for r in rows
        }
        result = Comparison(
            rows=row_results, settings=summary, out=out_dir, landmarks=_landmarks(settings)
        )
        if out_dir is not None:
            write_outputs(result, out_dir, figures=figures)
    return result
