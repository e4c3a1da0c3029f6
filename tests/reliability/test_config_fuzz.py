"""Every config hypothesis can construct runs, or is refused at construction.

Issue 15 item 4: for every config class of every registered backend, a drawn config (see
:mod:`strategies`) either raises ``ValueError``/``TypeError`` at construction with a
message naming one of the changed fields, or converts a small MLP and runs forward (train
and eval), backward, the backend's stress test (PIM drift, optical misalignment, quantum
shots...) at its mildest and harshest value, and the analytic cost, all with finite
results. Nothing may fail late (an error from convert or forward) or return NaN/inf.

The counts (generated, refused, run finite) of each backend are written to
``build/reliability/config-fuzz-<backend>.json`` and printed at the end of the run.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from torch import nn

import physnn
from physnn.common.backend import available_backends, get_backend
from physnn.common.config import BackendConfig

from .strategies import configs

ROOT = Path(__file__).resolve().parents[2]
COUNTS_DIR = ROOT / "build" / "reliability"

BASE_PRESETS = {"optical": ["ideal", "thz-compact"], "quantum": ["ideal", "shots"]}
"""The presets each draw starts from, where a backend has slow ones (the 200x200-pixel
lin2018-thz optics and the density-matrix quantum devices take seconds per forward; the
thorough profile's round trips cover them)."""

EXAMPLES = {"digital": 30, "pim": 15, "optical": 6, "quantum": 12}
"""Draws per backend in the default (ci) profile; ``--hypothesis-profile=thorough`` draws
ten times as many."""


def _base(backend: str) -> list[BackendConfig]:
    presets = get_backend(backend).presets
    return [presets.get(n) for n in BASE_PRESETS.get(backend, presets.names())]


def _finite(label: str, t: torch.Tensor | None) -> None:
    if t is None or not bool(torch.isfinite(t).all()):
        raise AssertionError(f"non-finite {label}")


def _exercise(backend: str, config: BackendConfig) -> None:
    """Convert, forward, backward, stress and cost; raises on anything non-finite."""
    torch.manual_seed(0)
    model = physnn.convert(
        nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), config, input_shape=(1, 6)
    )
    x = torch.rand(4, 6, requires_grad=True)
    model.train()
    y = model(x)
    _finite("train output", y)
    y.square().mean().backward()
    _finite("input gradient", x.grad)
    for name, p in model.named_parameters():
        if p.requires_grad and p.numel():  # an empty parameter (0 circuit layers) gets no grad
            _finite(f"gradient of {name}", p.grad)
    model.eval()
    with torch.no_grad():
        _finite("eval output", model(x))
    stress = get_backend(backend).stress
    if stress is not None:
        for value in (stress.values[0], stress.values[-1]):
            stressed = stress.apply(model, value)
            with torch.no_grad():
                _finite(f"output under {stress.name}={value}", stressed(x))
    total = physnn.cost(model, (4, 6))
    for field in ("energy", "latency", "area"):
        value = getattr(total, field)
        if not (math.isfinite(value) and value >= 0):
            raise AssertionError(f"cost {field}={value}")


def _classify(backend: str, preset: BackendConfig, changes: dict[str, Any]) -> tuple[str, str]:
    try:
        config = preset.with_changes(changes)
    except (ValueError, TypeError) as err:
        message = str(err)
        named = any(path.rsplit(".", 1)[-1] in message for path in changes)
        return ("refused", "") if named else ("unclear refusal", message)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _exercise(backend, config)
    except AssertionError as err:
        return "non-finite", str(err)
    except Exception as err:
        return "failed late", f"{type(err).__name__}: {err}"
    return "run finite", ""


@pytest.mark.parametrize("backend", available_backends())
def test_every_constructible_config_runs_finite(
    backend: str, request: pytest.FixtureRequest
) -> None:
    counts: Counter[str] = Counter()
    problems: list[str] = []
    base = _base(backend)
    profile = settings.default
    factor = 10 if profile.max_examples > 100 else 1

    @settings(max_examples=EXAMPLES.get(backend, 20) * factor, database=None)
    @given(drawn=configs(base))
    def run(drawn: tuple[BackendConfig, dict[str, Any]]) -> None:
        preset, changes = drawn
        outcome, detail = _classify(backend, preset, changes)
        counts["generated"] += 1
        counts[outcome] += 1
        if detail:
            problems.append(f"{outcome}: {preset.describe()} with {changes!r}: {detail[:300]}")

    run()
    COUNTS_DIR.mkdir(parents=True, exist_ok=True)
    (COUNTS_DIR / f"config-fuzz-{backend}.json").write_text(
        json.dumps({"backend": backend, **counts, "problems": problems}, indent=1)
    )
    assert counts["generated"] > 0
    assert not problems, f"{len(problems)} of {counts['generated']} drawn configs:\n" + "\n".join(
        problems
    )
