"""Every registered preset, as a new user runs it (issue 11, item 2).

A network is trained in floating point, converted with the preset (defaults, no HWA
training), read one second after programming with every nonideality of the preset on, and
must stay within 5 percentage points of its floating-point test accuracy. The test runs over
the registry, so a future preset cannot ship broken. All four networks run in the default
suite, on one pytest-xdist worker (``--dist loadgroup``), which trains each network once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

import physnn
from physnn.common.data import load_digits
from physnn.common.train import evaluate, fit
from physnn.pim import drift, presets

MARGIN = 0.05


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Small models train fastest on one thread (and do not oversubscribe a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    d = load_digits()
    return d.x_train, d.y_train, d.x_test, d.y_test


class Sequence(nn.Module):
    """Digits rows as an 8-step sequence of 8 features; the last hidden state classifies."""

    def __init__(self, rnn: nn.LSTM | nn.GRU) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )


def lstm() -> nn.Module:
    return Sequence(nn.LSTM(8, 32, batch_first=True))


def gru() -> nn.Module:
    return Sequence(nn.GRU(8, 32, batch_first=True))


_TRAINED: dict[str, tuple[nn.Module, float]] = {}


def trained(
    name: str,
    build: Callable[[], nn.Module],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[nn.Module, float]:
    """The floating-point model ``name`` trained once per session and its test accuracy."""
    if name not in _TRAINED:
        x_train, y_train, x_test, y_test = data
        torch.manual_seed(0)
        model = build()
        fit(model, (x_train, y_train), epochs=15, lr=1e-2, progress=False, seed=0)
        _TRAINED[name] = (model, evaluate(model, x_test, y_test))
    return _TRAINED[name]


def check_preset(
    preset: str,
    name: str,
    build: Callable[[], nn.Module],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    model, fp = trained(name, build, data)
    assert fp > 0.9, f"{name}: floating-point accuracy {fp:.3f} is too low to test against"
    chip = physnn.convert(copy.deepcopy(model), presets.get(preset, seed=0))
    drift(chip, 1.0)
    accuracy = evaluate(chip, data[2], data[3])
    print(f"pim:{preset} {name}: {accuracy:.3f} (FP {fp:.3f})")  # shown with pytest -rP
    assert accuracy >= fp - MARGIN, f"{name} on pim:{preset}: {accuracy:.3f} vs FP {fp:.3f}"


@pytest.mark.xdist_group("pim-presets")
@pytest.mark.parametrize("preset", presets.names())
def test_every_preset_keeps_a_digits_mlp_within_5pp_of_fp(
    preset: str, digits: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
) -> None:
    check_preset(preset, "mlp", mlp, digits)


@pytest.mark.xdist_group("pim-presets")
@pytest.mark.parametrize("preset", presets.names())
@pytest.mark.parametrize("network", ["cnn", "lstm", "gru"])
def test_every_preset_keeps_a_cnn_lstm_and_gru_within_5pp_of_fp(
    preset: str,
    network: str,
    digits: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    build = {"cnn": cnn, "lstm": lstm, "gru": gru}[network]
    check_preset(preset, network, build, digits)
