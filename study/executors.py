"""Where trials run: ``serial`` (this process), ``process`` (a local pool) or ``ray``.

Trials are independent pure functions (:func:`~physnn.study.trial.run_trial`), so any engine
that runs Python functions with CPU/GPU resources per task fits; physnn writes no scheduler
of its own. Each finished trial is handed back to ``on_result`` in this process as soon as
it completes (in completion order), so checkpoints are written as the study runs under every
executor and ``resume`` loses at most the trials that were running.

- ``auto`` (default): ``process`` when there are several trials and several cores, else
  ``serial``.
- ``serial``: one trial after another in this process (per-epoch progress bars).
- ``process``: :class:`concurrent.futures.ProcessPoolExecutor` with ``spawn`` workers, one
  per core (at most one per trial); workers report every finished epoch back to this
  process, which shows one progress bar over all trials' epochs.
- ``ray``: one Ray task per trial (``num_cpus=1``, plus ``num_gpus=1`` on a CUDA device);
  ``address`` joins a running cluster (``"auto"``, ``"ray://head:10001"``), without it
  Ray starts locally. Ray is the optional extra ``physnn[ray]``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Literal

from tqdm import tqdm

from .settings import StudySettings, UsageError
from .trial import RowSpec, TrialResult, run_trial

__all__ = ["EXECUTORS", "ExecutorName", "Task", "resolve_executor", "run_tasks", "trial_threads"]

ExecutorName = Literal["auto", "serial", "process", "ray"]
EXECUTORS: tuple[str, ...] = ("auto", "serial", "process", "ray")


@dataclasses.dataclass(frozen=True)
class Task:
    """One trial to run: the arguments of :func:`~physnn.study.trial.run_trial`."""

    settings: StudySettings
    row: RowSpec
    seed: int


def _run(task: Task, threads: int | None, epochs: Any = None) -> TrialResult:
    """Run one trial in a worker; with ``epochs`` (a queue), put ``(label, seed)`` there
    after every finished epoch."""
    tick = None if epochs is None else (lambda: epochs.put((task.row.label, task.seed)))
    return run_trial(task.settings, task.row, task.seed, threads=threads, on_epoch=tick)


def resolve_executor(executor: str, tasks: int, workers: int | None = None) -> str:
    """The executor ``"auto"`` stands for: ``"process"`` for several trials on several cores
    (or workers), ``"serial"`` otherwise; any other name is returned as given."""
    if executor != "auto":
        return executor
    cores = workers or os.cpu_count() or 1
    return "process" if tasks > 1 and cores > 1 else "serial"


def _run_pool(
    tasks: Sequence[Task],
    on_result: Callable[[Task, TrialResult], None],
    *,
    workers: int,
    threads: int,
    progress: bool,
) -> None:
    context = multiprocessing.get_context("spawn")
    total = sum(t.settings.epochs for t in tasks)
    bar = tqdm(total=total, desc="epochs", unit="epoch", disable=not progress, file=sys.stderr)
    done: dict[tuple[str, int], int] = {}
    with contextlib.ExitStack() as stack:
        epochs = stack.enter_context(context.Manager()).Queue() if progress else None
        pool = stack.enter_context(
            concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context)
        )
        stack.callback(bar.close)
        futures = {pool.submit(_run, task, threads, epochs): task for task in tasks}
        pending = set(futures)
        while pending:
            finished, pending = concurrent.futures.wait(
                pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
            )
            while epochs is not None and not epochs.empty():
                key = epochs.get()
                done[key] = done.get(key, 0) + 1
                bar.update(1)
            for future in finished:
                task = futures[future]
                result = future.result()
                # rows that share a memoised float model skip its epochs: count them now
                key = (task.row.label, task.seed)
                bar.update(max(0, task.settings.epochs - done.get(key, 0)))
                done[key] = task.settings.epochs
                bar.set_postfix_str(f"{task.row.label} seed {task.seed}")
                on_result(task, result)


def trial_threads(executor: str, threads: int | None) -> int | None:
    """Torch threads of each trial on a resolved ``executor``: ``threads``, else torch's
    default in a serial run (None) and one per parallel worker, so that workers do not
    oversubscribe the cores."""
    return threads if executor == "serial" else _worker_threads(threads)


def _worker_threads(threads: int | None) -> int:
    return threads if threads is not None else 1


def run_tasks(
    tasks: Sequence[Task],
    on_result: Callable[[Task, TrialResult], None],
    *,
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    ray_address: str | None = None,
    progress: bool = False,
) -> None:
    """Run ``tasks`` on ``executor`` and call ``on_result(task, result)`` as each finishes.

    Args:
        tasks: the trials.
        on_result: called in this process for every finished trial.
        executor: ``"auto"``, ``"serial"``, ``"process"`` or ``"ray"``.
        workers: parallel workers (process pool size; local Ray CPUs); None: all cores (the
            pool: at most one per task).
        threads: torch threads per trial (None: torch's default in serial runs, 1 per worker
            otherwise, so parallel workers do not oversubscribe the cores).
        ray_address: address of a running Ray cluster (``ray`` only).
        progress: per-epoch progress (``serial``: a bar per training run; ``process``: one
            bar over every trial's epochs).

    Raises:
        UsageError: unknown executor, bad ``workers``, or Ray missing.
    """
    if executor not in EXECUTORS:
        raise UsageError(f"--executor: {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise UsageError(f"--workers: workers={workers!r} must be an int >= 1")
    if ray_address is not None and executor != "ray":
        raise UsageError(f"--ray-address needs --executor ray (got --executor {executor})")
    if not tasks:
        return
    executor = resolve_executor(executor, len(tasks), workers)
    if executor == "serial":
        for task in tasks:
            result = run_trial(
                task.settings, task.row, task.seed, threads=threads, progress=progress
            )
            on_result(task, result)
        return
    per_worker = _worker_threads(threads)
    if executor == "process":
        n = min(workers or os.cpu_count() or 1, len(tasks))
        _run_pool(tasks, on_result, workers=n, threads=per_worker, progress=progress)
        return
    _run_ray(tasks, on_result, workers=workers, threads=per_worker, address=ray_address)


def _run_ray(
    tasks: Sequence[Task],
    on_result: Callable[[Task, TrialResult], None],
    *,
    workers: int | None,
    threads: int,
    address: str | None,
) -> None:
    try:
        import ray
    except ImportError as err:
        raise UsageError(
            "--executor ray: Ray is not installed; pip install 'physnn[ray]' (or ray)"
        ) from err
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is not None:
            kwargs["address"] = address
        elif workers is not None:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except (ValueError, ConnectionError, RuntimeError) as err:
            where = f"cannot join the Ray cluster at {address!r}" if address else "Ray failed"
            raise UsageError(
                f"--ray-address: {where} ({err}); start one with `ray start --head` and pass "
                "its address, or omit --ray-address to start Ray locally"
            ) from err
    gpus = 1 if tasks[0].settings.device.startswith("cuda") else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus)(_run)
    pending = {remote.remote(task, threads): task for task in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            on_result(pending.pop(ref), ray.get(ref))
