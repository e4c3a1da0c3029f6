"""``physnn sweep``: a grid over config fields and stress values, tidy table, plots, resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from physnn.cli import main
from physnn.study import executors
from physnn.study.settings import UsageError
from physnn.study.sweep import parse_grid, sweep

TINY = ["--epochs", "2", "--seeds", "1", "--devices", "2", "--train-size", "120"]
TINY += ["--test-size", "60", "--no-progress"]


def test_parse_grid_types_values_and_refuses_bad_items() -> None:
    assert parse_grid(["adc.bits=4,6", "preset=pcm,hermes", "x=0.5,true"]) == {
        "adc.bits": [4, 6],
        "preset": ["pcm", "hermes"],
        "x": [0.5, True],
    }
    for bad in (["adc.bits"], ["=4"], ["adc.bits=4", "adc.bits=6"]):
        with pytest.raises(UsageError, match="--grid"):
            parse_grid(bad)


def test_bad_fields_and_presets_name_the_grid(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--grid adc\.nonsense"):
        sweep("pim", {"adc.nonsense": [1]}, out=tmp_path, progress=False)
    with pytest.raises(UsageError, match="--grid preset: unknown pim preset 'nope'"):
        sweep("pim", {"preset": ["nope"]}, out=tmp_path, progress=False)


@pytest.mark.slow
def test_sweep_writes_tidy_table_and_plots_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--backend", "pim", "--grid", "adc.bits=4,8", "--grid", "preset=pcm"]
    argv += ["--drift", "1,86400", "--out", str(out), *TINY]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    # 2 grid points x 1 seed x 2 devices x (no stress + 2 drift times)
    assert len(rows) == 2 * 2 * 3
    assert {r["adc.bits"] for r in rows} == {"4", "8"}
    assert {r["stress_value"] for r in rows if r["stress_name"]} == {"1.0", "86400.0"}
    assert all(0 <= float(r["accuracy_pct"]) <= 100 for r in rows)
    assert all(math.isnan(float(r["stress_value"])) for r in rows if not r["stress_name"])
    for field in ("adc_bits", "preset"):
        assert (out / f"sweep_{field}.png").stat().st_size > 0
    # Interrupted: one trial lost; the resumed sweep reruns only that one.
    trials = sorted((out / "trials").rglob("seed-0.json"))
    assert len(trials) == 2
    trials[0].unlink()
    calls: list[str] = []
    original = executors.run_trial

    def counting(settings, row, seed, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(row.label)
        return original(settings, row, seed, **kwargs)

    monkeypatch.setattr(executors, "run_trial", counting)
    assert main([*argv, "--resume"]) == 0
    assert len(calls) == 1
    assert list(csv.DictReader((out / "sweep.csv").open())) == rows
