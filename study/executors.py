"""Where trials run: ``serial`` (this process), ``process`` (a local pool) or ``ray``.

Trials are independent pure functions (:func:`~physnn.study.trial.run_trial`), so any engine
that runs Python functions with CPU/GPU resources per task fits; physnn writes no scheduler
of its own. Each finished trial is handed back to ``on_result`` in this process as soon as
it completes (in completion order), so checkpoints are written as the study runs under every
executor and ``resume`` loses at most the trials that were running.

- ``serial``: one trial after another in this process (default; per-epoch progress bars).
- ``process``: :class:`concurrent.futures.ProcessPoolExecutor` with ``spawn`` workers, the
  embedded default for a machine with more cores.
- ``ray``: one Ray task per trial (``num_cpus=1``, plus ``num_gpus=1`` on a CUDA device);
  ``address`` joins a running cluster (``"auto"``, ``"ray://head:10001"``), without it
  Ray starts locally. Ray is the optional extra ``physnn[ray]``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

from .settings import StudySettings, UsageError
from .trial import RowSpec, TrialResult, run_trial

__all__ = ["EXECUTORS", "ExecutorName", "Task", "run_tasks"]

ExecutorName = Literal["serial", "process", "ray"]
EXECUTORS: tuple[str, ...] = ("serial", "process", "ray")


@dataclasses.dataclass(frozen=True)
class Task:
    """One trial to run: the arguments of :func:`~physnn.study.trial.run_trial`."""

    settings: StudySettings
    row: RowSpec
    seed: int


def _run(task: Task, threads: int | None) -> TrialResult:
    return run_trial(task.settings, task.row, task.seed, threads=threads)


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
        executor: ``"serial"``, ``"process"`` or ``"ray"``.
        workers: parallel workers (process pool size; local Ray CPUs); None: all cores.
        threads: torch threads per trial (None: torch's default in serial runs, 1 per worker
            otherwise, so parallel workers do not oversubscribe the cores).
        ray_address: address of a running Ray cluster (``ray`` only).
        progress: per-epoch progress bars (``serial`` only).

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
    if executor == "serial":
        for task in tasks:
            result = run_trial(
                task.settings, task.row, task.seed, threads=threads, progress=progress
            )
            on_result(task, result)
        return
    per_worker = threads if threads is not None else 1
    if executor == "process":
        n = workers or os.cpu_count() or 1
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=n, mp_context=context) as pool:
            futures = {pool.submit(_run, task, per_worker): task for task in tasks}
            for future in concurrent.futures.as_completed(futures):
                on_result(futures[future], future.result())
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
