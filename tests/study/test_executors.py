"""Executors: the same study under the serial, process and Ray executors gives identical rows;
each trial's torch threads and the run-time estimate's schedule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from physnn.study.compare import compare, makespan
from physnn.study.executors import trial_threads
from physnn.study.settings import UsageError

STUDY = {
    "backends": ["digital:int8", "pim:pcm"],
    "epochs": 2,
    "seeds": 2,
    "devices": 2,
    "train_size": 120,
    "test_size": 60,
    "threads": 1,
    "progress": False,
    "figures": False,
}


def _numbers(out: Path, executor: str, **kwargs: object) -> list[dict[str, object]]:
    result = compare(executor=executor, out=out, **{**STUDY, **kwargs})  # type: ignore[arg-type]
    return [t.numbers() for row in result.rows for t in row.trials]


@pytest.mark.slow
def test_serial_process_and_ray_give_identical_rows(tmp_path: Path) -> None:
    serial = _numbers(tmp_path / "serial", "serial")
    assert len(serial) == 4
    assert _numbers(tmp_path / "process", "process", workers=2) == serial
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'physnn[ray]')")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert _numbers(tmp_path / "ray", "ray") == serial
    finally:
        ray.shutdown()


def test_resume_works_across_executors(tmp_path: Path) -> None:
    """Checkpoints written by one executor are reused by another (same fingerprints)."""
    serial = _numbers(tmp_path, "serial", seeds=1, backends=["digital:int8"])
    again = _numbers(tmp_path, "process", seeds=1, backends=["digital:int8"], resume=True)
    assert again == serial


def test_ray_missing_or_misused_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--ray-address needs --executor ray"):
        compare(executor="process", ray_address="auto", out=tmp_path, **STUDY)  # type: ignore[arg-type]
    if importlib.util.find_spec("ray") is None:
        with pytest.raises(UsageError, match=r"pip install 'physnn\[ray\]'"):
            compare(executor="ray", out=tmp_path, **STUDY)  # type: ignore[arg-type]


def test_auto_is_a_pool_only_for_several_trials_on_several_cores() -> None:
    from physnn.study.executors import resolve_executor

    assert resolve_executor("auto", tasks=4, workers=2) == "process"
    assert resolve_executor("auto", tasks=1, workers=2) == "serial"
    assert resolve_executor("auto", tasks=4, workers=1) == "serial"
    assert resolve_executor("ray", tasks=1) == "ray"


@pytest.mark.slow
def test_pool_reports_every_epoch_and_matches_serial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The process pool's epoch bar counts every epoch of every trial (2 trials x 2
    epochs), and its rows equal the serial run's."""
    tiny = {"seeds": 2, "backends": ["digital:int8"], "train_size": 64, "test_size": 32}
    serial = _numbers(tmp_path / "serial", "serial", **tiny)
    pooled = _numbers(tmp_path / "pool", "auto", workers=2, **{**tiny, "progress": True})
    assert pooled == serial
    err = capsys.readouterr().err
    assert "epochs: 100%" in err and "4/4" in err


@pytest.mark.parametrize(
    ("executor", "threads", "expected"),
    [("serial", None, None), ("serial", 3, 3), ("process", None, 1), ("ray", 4, 4)],
)
def test_trial_threads_follow_the_executor(
    executor: str, threads: int | None, expected: int | None
) -> None:
    assert trial_threads(executor, threads) == expected


def test_run_time_estimate_is_the_makespan_of_longest_first_scheduling() -> None:
    # by hand: 5 and 3 start; the second 3 joins the worker free at 3 (-> 6); the first 2
    # joins the worker free at 5 (-> 7), the last 2 the one free at 6 (-> 8)
    assert makespan([2, 3, 5, 2, 3], 2) == 8
    assert makespan([2, 3, 5, 2, 3], 1) == 15  # one worker: the sum
    assert makespan([2, 3, 5], 8) == 5  # a worker per trial: the longest
    assert makespan([], 2) == 0
