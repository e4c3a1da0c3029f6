"""Trials: equal budgets, fresh devices, averaged stress curves, purity."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from physnn import convert
from physnn.common.backend import get_backend, resolve_config
from physnn.study import trial
from physnn.study.settings import StudySettings
from physnn.study.trial import RowSpec, fresh_device, run_trial, schedule

TINY = StudySettings(epochs=3, seeds=1, devices=3, train_size=160, test_size=100, batch_size=32)


@pytest.fixture(scope="module")
def settings() -> StudySettings:
    return TINY.prepared()


def _row(spec: str) -> RowSpec:
    return RowSpec(spec, resolve_config(spec))


@pytest.mark.parametrize("name", ["digital", "pim", "optical", "quantum"])
def test_every_backend_spends_the_same_budget(name: str) -> None:
    backend = get_backend(name)
    for epochs in (1, 2, 3, 6, 40):
        plan = schedule(backend, epochs)
        assert plan.epochs == epochs
        if backend.capabilities.fine_tune_fraction > 0 and epochs >= 2:
            assert plan.fine_tune_epochs >= 1
            assert plan.fine_tune_epochs == max(1, round(epochs / 3))
        if not backend.capabilities.transfers_weights:
            assert plan.scratch_epochs == epochs


def test_rows_take_equal_optimizer_steps(settings: StudySettings) -> None:
    results = [run_trial(settings, _row(spec), 0) for spec in ("digital:int8", "pim:pcm")]
    batches = math.ceil(160 / 32)
    assert [r.steps for r in results] == [3 * batches] * 2
    # The digital int8 row fine-tunes (quantisation-aware) as long as PIM does (HWA).
    assert [r.schedule["fine_tune_epochs"] for r in results] == [1, 1]
    assert "fine-tuning" in results[0].schedule_text


def test_trial_is_a_pure_function_of_settings_row_and_seed(settings: StudySettings) -> None:
    row = _row("pim:pcm")
    first = run_trial(settings, row, 0)
    cached = run_trial(settings, row, 0)  # float network from this process's memo
    trial._FLOAT_MODELS.clear()
    torch.manual_seed(123)  # another history of the global generator
    torch.rand(7)
    fresh = run_trial(settings, row, 0)
    assert first.numbers() == cached.numbers() == fresh.numbers()
    assert first.numbers() != run_trial(settings, row, 1).numbers()


def _chip_state(model: nn.Module) -> torch.Tensor:
    """Every floating-point buffer (the device state: conductances, drift exponents...)."""
    return torch.cat([b.flatten() for b in model.buffers() if b.is_floating_point()])


def test_fresh_devices_are_new_chips_and_leave_the_model_alone() -> None:
    torch.manual_seed(0)
    chip = convert(nn.Sequential(nn.Linear(16, 8)), resolve_config("pim:pcm").replace(seed=1))
    before = _chip_state(chip)
    a, b = fresh_device(chip, 11), fresh_device(chip, 12)
    assert torch.equal(_chip_state(chip), before)
    assert not torch.equal(_chip_state(a), before)
    assert not torch.equal(_chip_state(a), _chip_state(b))
    assert torch.equal(_chip_state(fresh_device(chip, 11)), _chip_state(a))
    # Same trained weights on every device: only the chip is new.
    assert torch.equal(a[0].weight, chip[0].weight)


def test_stress_curve_points_average_several_draws(settings: StudySettings) -> None:
    result = run_trial(settings, _row("pim:pcm"), 0)
    assert len(result.realistic_accuracy) == settings.devices
    assert len(result.stress_accuracy) == len(result.stress_values) == 5
    assert all(len(point) == settings.devices for point in result.stress_accuracy)
    # Independent programming-noise draws: the devices do not all score the same.
    spreads = [max(p) - min(p) for p in [result.realistic_accuracy, *result.stress_accuracy]]
    assert max(spreads) > 0


@pytest.mark.filterwarnings("ignore::physnn.common.layer.WeightsNotTransferredWarning")
def test_quantum_rows_come_with_their_classical_baseline(settings: StudySettings) -> None:
    from physnn.quantum.layers import QuantumLinear
    from physnn.study.compare import resolve_rows

    rows = resolve_rows(["digital", "quantum:ideal"])
    assert [(r.label, r.baseline) for r in rows] == [
        ("digital:int8", False),
        ("quantum:ideal", False),
        ("quantum:ideal tanh baseline", True),
    ]
    assert len(resolve_rows(["quantum:ideal"], baselines=False)) == 1
    quick = dataclasses.replace(settings, epochs=2, devices=1)
    quantum, baseline = (run_trial(quick, row, 0) for row in rows[1:])
    # the same budget: the same optimiser steps, both trained from scratch
    assert baseline.steps == quantum.steps == 2 * math.ceil(160 / 32)
    assert baseline.baseline_of == "quantum" and quantum.baseline_of is None
    assert baseline.backend == "digital" and baseline.stress_values == []
    assert "tanh" in baseline.weights and "from scratch" in baseline.schedule_text
    # fewer parameters than the quantum row: the circuit's angles are gone, nothing else
    model = convert(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), "quantum:ideal")
    angles = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, QuantumLinear)
        for p in m.quantum_parameters()
    )
    assert quantum.params - baseline.params == angles


def test_stress_points_thin_the_default_sweep_evenly() -> None:
    from physnn.common.backend import StressTest
    from physnn.study.trial import swept_stress_values

    stress = StressTest("t", "s", (1.0, 2.0, 3.0, 4.0, 5.0), apply=lambda m, v: m)
    assert swept_stress_values(StudySettings(stress_points=3), stress) == [1.0, 3.0, 5.0]
    assert swept_stress_values(StudySettings(stress_points=1), stress) == [5.0]
    assert swept_stress_values(StudySettings(), stress) == [1.0, 2.0, 3.0, 4.0, 5.0]
    given = StudySettings(stress_values=(7.0,), stress_points=3)
    assert swept_stress_values(given, stress) == [7.0]
    assert swept_stress_values(StudySettings(), None) == []


def test_step_estimate_runs_with_the_trials_threads_and_restores_the_callers(
    settings: StudySettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def timed(settings: StudySettings, row: RowSpec) -> tuple[float, float]:
        seen.append(torch.get_num_threads())
        return 0.0, 0.0

    monkeypatch.setattr(trial, "_time_first_step", timed)
    before = torch.get_num_threads()
    trial.estimate_step_seconds(settings, _row("digital"), threads=1)
    trial.estimate_step_seconds(settings, _row("digital"))
    assert seen == [1, before]
    assert torch.get_num_threads() == before
