"""Hardware-aware training keeps a digits MLP accurate on the pcm chip after a day of drift."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import physnn
from physnn.common.data import load_digits
from physnn.common.train import evaluate, fit
from physnn.pim import PIMConfig, drift, presets

SEEDS = range(8)
ONE_DAY = 86400.0


def layer_scaled_pcm(seed: int | None = None) -> PIMConfig:
    """The pcm preset with one weight scale per layer (Joshi et al. 2020's mapping).

    The preset itself scales per output column, which on this MLP already keeps the
    untrained chip within 1.6 pp of FP after a day (measured: FP 96.7 %, plain 95.1 %, HWA
    95.0 %), leaving HWA nothing to recover; with one scale per layer the chip loses 2.8 pp
    and HWA recovers 1 pp (measured), which is the effect this test guards.
    """
    cfg = presets.get("pcm", seed=seed)
    return cfg.replace(mapping=cfg.mapping.replace(scale="layer"))


def chip_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean test accuracy over programming seeds, pcm preset, 1 day, global compensation."""
    cfg = layer_scaled_pcm()
    assert cfg.drift.compensation == "global"
    accuracies = []
    for seed in SEEDS:
        chip = physnn.convert(physnn.to_torch(model), cfg.replace(seed=seed))
        drift(chip, ONE_DAY)
        accuracies.append(evaluate(chip, x, y))
    return sum(accuracies) / len(accuracies)


@pytest.mark.slow
def test_hwa_training_stays_within_2pp_of_fp_after_one_day() -> None:
    """64-32-10 MLP: the 64-128-10 one is so redundant that even plain training loses < 0.3 pp
    on the pcm chip after a day (measured), which leaves nothing for HWA to recover; 32 hidden
    units make the network sensitive enough to show the effect."""
    x_train, y_train, x_test, y_test = load_digits().flat()
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    fit(plain, (x_train, y_train), epochs=30, lr=3e-2, progress=False)
    fp = evaluate(plain, x_test, y_test)
    # HWA fine-tuning from the FP weights (Rasch et al. 2023) with the shared loop
    hwa = physnn.convert(plain, layer_scaled_pcm(seed=100))
    fit(hwa, (x_train, y_train), epochs=20, lr=3e-3, progress=False)
    plain_chip = chip_accuracy(plain, x_test, y_test)
    hwa_chip = chip_accuracy(hwa, x_test, y_test)
    assert fp > 0.94
    assert fp - hwa_chip <= 0.02
    assert (fp - plain_chip) - (fp - hwa_chip) >= 0.005, (fp, plain_chip, hwa_chip)
