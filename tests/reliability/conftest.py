"""Prints the config-fuzz counts (generated, refused, run finite) at the end of the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

COUNTS_DIR = Path(__file__).resolve().parents[2] / "build" / "reliability"
_START = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    files = sorted(p for p in COUNTS_DIR.glob("config-fuzz-*.json") if p.stat().st_mtime >= _START)
    if not files:
        return
    terminalreporter.section("config fuzz counts (tests/reliability/test_config_fuzz.py)")
    for path in files:
        data = json.loads(path.read_text())
        problems = data.pop("problems", [])
        backend = data.pop("backend")
        counts = ", ".join(f"{k} {v}" for k, v in data.items())
        terminalreporter.write_line(f"{backend}: {counts}; problems {len(problems)}")
