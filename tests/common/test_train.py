"""The shared training loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from physnn import convert
from physnn.common.data import load_digits
from physnn.common.train import evaluate, fit
from physnn.digital import DigitalLinear


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_digits_mlp_reaches_95_percent() -> None:
    xtr, ytr, xte, yte = load_digits().flat()
    model = mlp()
    history = fit(
        model, (xtr, ytr), test=(xte, yte), epochs=20, lr=5e-3, batch_size=32, progress=False
    )
    assert history.loss[-1] < history.loss[0]
    assert len(history.test_accuracy) == 20
    assert evaluate(model, xte, yte) >= 0.95


def test_seed_makes_training_reproducible() -> None:
    xtr, ytr, _, _ = load_digits().subset(200, 10).flat()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = mlp()
        fit(model, (xtr, ytr), epochs=2, seed=3, progress=False)
        runs.append(model[0].weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


class CountingLinear(DigitalLinear):
    steps = 0

    def after_step(self) -> None:
        CountingLinear.steps += 1


def test_after_step_hook_runs_once_per_optimizer_step() -> None:
    xtr, ytr, _, _ = load_digits().subset(100, 10).flat()
    model = convert(mlp(), "digital:fp32")
    model[0] = CountingLinear.from_torch(model[0])
    CountingLinear.steps = 0
    fit(model, (xtr, ytr), epochs=2, batch_size=30, progress=False)
    assert CountingLinear.steps == 2 * 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"optimizer": "lbfgs"}, "choose one of adam"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    x, y = torch.rand(8, 64), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match=match):
        fit(mlp(), (x, y), progress=False, **kwargs)  # type: ignore[arg-type]


def test_bad_data() -> None:
    with pytest.raises(ValueError, match="8 samples but y has 7"):
        fit(mlp(), (torch.rand(8, 64), torch.zeros(7, dtype=torch.long)), progress=False)
    x = torch.rand(8, 64)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit(mlp(), (x, torch.zeros(8, dtype=torch.long)), progress=False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(nn.ReLU(), (torch.rand(8, 64), torch.zeros(8, dtype=torch.long)), progress=False)
