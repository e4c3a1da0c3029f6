"""Resume safety: fingerprints of every setting and the data content, atomic writes,
readable errors for damaged files, and the output-folder lock (issue 15 item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from physnn.study import executors
from physnn.study.cache import FolderLock, atomic_write_text
from physnn.study.compare import compare
from physnn.study.settings import UsageError

TINY = {
    "epochs": 2,
    "seeds": 2,
    "devices": 1,
    "train_size": 120,
    "test_size": 60,
    "executor": "serial",
}


def test_every_setting_is_in_the_fingerprint() -> None:
    """Each field of StudySettings changes the checkpoint key (none is forgotten)."""
    import dataclasses

    from physnn.common.backend import resolve_config
    from physnn.study.compare import TrialStore
    from physnn.study.settings import StudySettings
    from physnn.study.trial import RowSpec

    base = StudySettings()
    row = RowSpec("pim:pcm", resolve_config("pim:pcm"))
    key = TrialStore.key(base, row, 0)
    other = {
        "dataset": "x",
        "model": "cnn",
        "epochs": 41,
        "seeds": 4,
        "devices": 6,
        "train_size": 10,
        "test_size": 10,
        "image_size": 7,
        "batch_size": 31,
        "lr": 1e-3,
        "device": "cuda",
        "stress_values": (1.0,),
        "stress_points": 2,
        "data_digest": "d",
        "model_digest": "m",
    }
    assert set(other) == {f.name for f in dataclasses.fields(StudySettings)}
    for name, value in other.items():
        changed = dataclasses.replace(base, **{name: value})
        assert TrialStore.key(changed, row, 0) != key, name
    assert TrialStore.key(base, row, 1) != key
    hermes = RowSpec("pim:pcm", resolve_config("pim:pcm").with_changes({"adc.bits": 4}))
    assert TrialStore.key(base, hermes, 0) != key
    baseline = RowSpec("pim:pcm", resolve_config("pim:pcm"), baseline=True)
    assert TrialStore.key(base, baseline, 0) != key


def _npz(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(300, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 10, size=300)
    y[:10] = np.arange(10)
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every trial that really runs (serial executor), as (row, seed)."""
    seen: list[tuple[str, int]] = []
    original = executors.run_trial

    def counting(settings, row, seed, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((row.label, seed))
        return original(settings, row, seed, **kwargs)

    monkeypatch.setattr(executors, "run_trial", counting)
    return seen


def test_resume_reuses_only_matching_trials(tmp_path: Path, calls: list[tuple[str, int]]) -> None:
    kwargs = {**TINY, "out": tmp_path, "progress": False, "figures": False}
    first = compare(backends=["digital:int8", "digital:fp32"], **kwargs)
    assert len(calls) == 4
    (tmp_path / "trials" / "digital-fp32" / "seed-1.json").unlink()  # killed during that trial
    calls.clear()
    again = compare(backends=["digital:int8", "digital:fp32"], resume=True, **kwargs)
    assert calls == [("digital:fp32", 1)]
    assert [t.numbers() for r in again.rows for t in r.trials] == [
        t.numbers() for r in first.rows for t in r.trials
    ]
    calls.clear()
    compare(backends=["digital:fp32", "digital:int8"], resume=True, **kwargs)
    assert calls == []  # rows in another order: every trial is still reused
    for change in ({"epochs": 3},):  # every other field: test_every_setting_is_in_the_fingerprint
        calls.clear()
        compare(backends=["digital:int8"], resume=True, **{**kwargs, **change})
        assert len(calls) == 2, change  # a changed setting never reuses stale results


def test_new_data_at_the_same_path_reruns(tmp_path: Path, calls: list[tuple[str, int]]) -> None:
    data = _npz(tmp_path / "data.npz", 0)
    kwargs = {
        **TINY,
        "dataset": str(data),
        "out": tmp_path / "out",
        "progress": False,
        "figures": False,
    }
    compare(backends=["digital:int8"], **kwargs)
    calls.clear()
    compare(backends=["digital:int8"], resume=True, **kwargs)
    assert calls == []
    _npz(data, 1)  # same path, other content
    compare(backends=["digital:int8"], resume=True, **kwargs)
    assert len(calls) == 2


def test_atomic_write_keeps_the_old_file_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.json"
    atomic_write_text(target, '{"old": 1}')
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # an ordinary file, not mkstemp's 0600

    def killed(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # as if the process died between write and rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, '{"new": 2}')
    assert target.read_text() == '{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_truncated_checkpoint_is_named_with_the_fix(tmp_path: Path) -> None:
    kwargs = {**TINY, "seeds": 1, "out": tmp_path, "progress": False, "figures": False}
    compare(backends=["digital:int8"], **kwargs)
    path = tmp_path / "trials" / "digital-int8" / "seed-0.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(UsageError, match=r"seed-0\.json is truncated.*delete it"):
        compare(backends=["digital:int8"], resume=True, **kwargs)


def test_a_locked_output_folder_is_refused(tmp_path: Path) -> None:
    with (
        FolderLock(tmp_path),
        pytest.raises(UsageError, match=r"in use by another physnn run \(pid \d+\)"),
    ):
        compare(
            backends=["digital:int8"],
            **{**TINY, "out": tmp_path, "progress": False, "figures": False},
        )
    compare(
        backends=["digital:int8"],
        **{**TINY, "seeds": 1, "out": tmp_path, "progress": False, "figures": False},
    )
