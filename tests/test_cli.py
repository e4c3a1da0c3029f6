"""The ``physnn`` command: one-line user errors (exit 2), tracebacks for internal errors,
user model factories, and a real ``physnn compare`` killed with SIGKILL and resumed."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import physnn
from physnn.cli import main
from physnn.study import compare as compare_module

TINY = ["--train-size", "160", "--test-size", "80", "--epochs", "2", "--seeds", "1"]
TINY += ["--devices", "1", "--no-progress"]


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


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _exit_code(argv: list[str]) -> object:
    """main()'s return value, or the code of the SystemExit argparse raises."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "photonic"], "--backends: unknown backend 'photonic'; valid backends"),
        (["--backends", "digital:int4"], "--backends: unknown digital preset 'int4'"),
        (["--epochs", "0"], "--epochs: epochs=0 must be an int >= 1"),
        (["--devices", "0"], "--devices: devices=0 must be an int >= 1"),
        (["--train-size", "100000"], "--train-size/--test-size: n_train=100000 must be in"),
        (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["--dataset", "/no/such"], "--dataset: data path '/no/such' does not exist"),
        (["--model", "x"], "--model: 'x': use 'mlp', 'cnn', 'package.module:factory'"),
        (["--model", "no_such_package_xyz:f"], "put the package on PYTHONPATH"),
        (["--device", "tpu"], "--device: 'tpu' is not a torch device"),
        (["--executor", "dask"], "argument --executor: invalid choice: 'dask'"),
        (["--workers", "0", "--executor", "process"], "--workers: workers=0 must be an int"),
        (["--threads", "0"], "--threads: threads=0 must be an int >= 1"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    ],
)
def test_bad_arguments_give_one_line_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["compare", "--out", str(tmp_path), "--backends", "digital", *TINY, *args]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("physnn"), err
    assert message in err, err


def test_cuda_on_a_cpu_only_build_names_the_build(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch build has CUDA")
    assert main(["compare", "--out", str(tmp_path), "--device", "cuda:1", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "CPU-only build" in err and "--device cpu" in err and "\n" not in err


def test_user_file_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    (garbage).mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (garbage / f"{stem}.gz").write_bytes(b"this is not gzip")
    broken = _write(tmp_path / "broken.py", "def f(n, k):\n    return (\n")
    raising = _write(tmp_path / "raising.py", "def f(n, k):\n    raise RuntimeError('boom')\n")
    bad_shape = _write(
        tmp_path / "shape.py",
        "import torch.nn as nn\ndef f(n, k):\n"
        "    return nn.Sequential(nn.Linear(n, 8), nn.ReLU(), nn.Linear(7, k))\n",
    )
    cases = [
        (["--dataset", str(garbage)], "--dataset"),
        (["--model", f"{broken}:f"], "importing"),
        (["--model", f"{raising}:f"], "RuntimeError: boom"),
        (["--model", f"{raising}:g"], "has no attribute 'g'"),
        (["--model", f"{bad_shape}:f"], "fails in layer '2' (Linear)"),
        (["--out", str(broken)], "--out: "),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        assert main(["compare", "--out", str(out), "--backends", "digital", *TINY, *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("physnn compare: error:"), err
        assert message in err, err
    with gzip.open(garbage / "x.gz", "wb") as f:
        f.write(b"")  # a valid but empty gzip is still refused with one line
    assert main(["compare", "--out", str(tmp_path / "o"), "--dataset", str(garbage), *TINY]) == 2


def test_internal_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(compare_module, "compare", broken)
    with pytest.raises(RuntimeError, match="an internal bug"):
        main(["compare", "--out", str(tmp_path)])


def test_model_from_a_file_with_a_lazy_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    factory = _write(
        tmp_path / "models" / "lazy.py",
        "import torch.nn as nn\n"
        "def build(n_features, n_classes):\n"
        "    return nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.Linear(16, n_classes))\n",
    )
    out = tmp_path / "out"
    args = ["compare", "--out", str(out), "--backends", "pim:pcm", "--model", f"{factory}:build"]
    assert main([*args, *TINY]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert rows[0]["trials"][0]["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert "pim" in capsys.readouterr().out


def test_interrupt_points_to_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_module, "compare", interrupted)
    assert main(["compare", "--out", str(tmp_path)]) == 130
    assert "rerun with --resume" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_loses_at_most_the_running_trial(tmp_path: Path) -> None:
    """Issue 14/15: a real ``physnn compare`` killed with SIGKILL mid-run resumes."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "physnn.cli", "compare", "--out", str(out)]
    cmd += ["--backends", "digital:int8", "--train-size", "600", "--test-size", "100"]
    cmd += ["--epochs", "4", "--seeds", "6", "--devices", "1", "--no-progress", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    trials = out / "trials" / "digital-int8"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(trials.glob("seed-*.json"))) < 2:
        time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    kept = {p.name: p.read_text() for p in trials.glob("seed-*.json")}
    assert 2 <= len(kept) < 6
    for text in kept.values():
        json.loads(text)  # never truncated: written atomically
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(
        [*cmd[:5], str(tmp_path / "fresh"), *cmd[6:]], capture_output=True, text=True, timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr
    a = json.loads((out / "results.json").read_text())["rows"][0]["trials"]
    b = json.loads((tmp_path / "fresh" / "results.json").read_text())["rows"][0]["trials"]
    strip = [{k: v for k, v in t.items() if k != "seconds"} for t in a]
    assert strip == [{k: v for k, v in t.items() if k != "seconds"} for t in b]
    # The kept trials were reused, not rerun: their files (wall times included) are unchanged.
    assert all((trials / name).read_text() == text for name, text in kept.items())
