"""The ``physnn`` command and the comparison runner (on digital rows, which are fast)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import physnn
from physnn.cli import main
from physnn.study import compare as compare_module
from physnn.study.compare import compare


def test_version_and_info(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"physnn {physnn.__version__}"
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "qiskit" in out
    assert "digital" in out and "int8" in out and "Horowitz" in out


def test_console_script_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "physnn.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "physnn" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "photonic"], "unknown backend 'photonic'; valid backends: digital"),
        (["--backends", "digital:int4"], "unknown digital preset 'int4'; choose one of int8"),
        (["--epochs", "0"], "epochs=0 must be an int >= 1"),
        (["--backends", "digital", "--dataset", "/no/such"], "does not exist"),
        (["--backends", "digital", "--model", "x"], "use 'mlp', 'cnn' or 'package.module:factory'"),
        (["--device", "tpu"], "choose cpu or cuda"),
    ],
)
def test_bad_arguments_give_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["compare", "--out", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("physnn compare: error:") and message in err


def test_compare_writes_table_csv_json_markdown_and_figures(tmp_path: Path) -> None:
    result = compare(
        backends=["digital:int8", "digital:fp32"],
        epochs=3,
        seeds=2,
        out=tmp_path,
        progress=False,
    )
    table = result.table()
    assert table.splitlines()[0].split()[:2] == ["paradigm", "preset"]
    assert len(table.splitlines()) == 4
    for name in (
        "results.csv",
        "results.json",
        "summary.md",
        "accuracy_vs_energy.png",
        "robustness.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    rows = list(csv.DictReader((tmp_path / "results.csv").read_text().splitlines()))
    assert [r["label"] for r in rows] == ["digital:int8", "digital:fp32"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["physnn_version"] == physnn.__version__
    assert data["rows"][0]["config"]["bits"] == 8
    int8, fp32 = result.rows
    # Same FP network per seed: fp32 arithmetic equals its ideal accuracy exactly.
    assert fp32.ideal_accuracy == fp32.realistic_accuracy == int8.ideal_accuracy
    assert int8.energy < fp32.energy
    assert int8.stress_values == [8, 6, 4, 3, 2]
    # Two-bit weights and activations cannot beat 8-bit ones on average.
    mean = [sum(a) / len(a) for a in int8.stress_accuracy]
    assert mean[-1] <= mean[0]


def test_resume_skips_finished_backends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {"epochs": 2, "seeds": 1, "out": tmp_path, "progress": False}
    first = compare(backends=["digital:int8", "digital:fp32"], **kwargs)
    (tmp_path / "backends" / "digital-fp32.json").unlink()  # as if killed during that row
    calls: list[str] = []
    original = compare_module._run_backend

    def counting(spec: str, *args: object, **kw: object) -> object:
        calls.append(spec)
        return original(spec, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(compare_module, "_run_backend", counting)
    again = compare(backends=["digital:int8", "digital:fp32"], resume=True, **kwargs)
    assert calls == ["digital:fp32"]
    assert again.rows[0].to_dict() == first.rows[0].to_dict()
    assert again.rows[1].ideal_accuracy == first.rows[1].ideal_accuracy
    calls.clear()
    compare(backends=["digital:int8"], resume=False, **kwargs)
    assert calls == ["digital:int8"]
    calls.clear()
    compare(backends=["digital:fp32", "digital:int8"], resume=True, **kwargs)
    assert calls == []  # other rows requested: finished ones are still reused
    compare(backends=["digital:int8"], resume=True, **{**kwargs, "epochs": 3})
    assert calls == ["digital:int8"]  # different settings: nothing reused


def test_interrupt_points_to_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_module, "compare", interrupted)
    assert main(["compare", "--out", str(tmp_path)]) == 130
    assert "rerun with --resume" in capsys.readouterr().err
