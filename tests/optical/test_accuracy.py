"""A D2NN trained on the default digits: accuracy, and graceful degradation under errors.

Training uses the thz-compact geometry (24 x 24 neurons, 3 phase layers, 0.4 THz); one
model is trained plainly and one with vaccination (Mengu et al., Nanophotonics 2020).
"""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import physnn
import physnn.optical as po
from physnn.common.data import Dataset, load_digits
from physnn.common.train import evaluate, fit

PITCH = 0.4e-3

pytestmark = pytest.mark.slow  # trains D2NNs: about a minute on 2 cores


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def train(config: po.OpticalConfig, data: Dataset) -> po.DiffractiveNetwork:
    torch.manual_seed(0)
    net = po.DiffractiveNetwork(10, config=config)
    fit(net, (data.x_train, data.y_train), epochs=8, lr=0.05, progress=False, seed=0)
    return net


@pytest.fixture(scope="module")
def plain(digits: Dataset) -> po.DiffractiveNetwork:
    return train(po.presets.get("thz-compact"), digits)


@pytest.fixture(scope="module")
def vaccinated(digits: Dataset) -> po.DiffractiveNetwork:
    base = po.presets.get("thz-compact")
    vaccine = po.MisalignmentConfig(training_lateral_std=PITCH / 8)
    return train(base.replace(misalignment=vaccine), digits)


def accuracy(net: torch.nn.Module, data: Dataset, draws: int = 1, lateral: float = 0.0) -> float:
    """Mean test accuracy over ``draws`` chips misaligned by ``lateral`` [m]."""
    accs = []
    for draw in range(draws):
        torch.manual_seed(draw)
        model = po.set_misalignment(copy.deepcopy(net), lateral)
        accs.append(evaluate(model, data.x_test, data.y_test))
    return sum(accs) / len(accs)


def with_levels(net: po.DiffractiveNetwork, levels: int) -> po.DiffractiveNetwork:
    model = physnn.reconfigure(net, fabrication_phase_levels=levels)
    assert isinstance(model, po.DiffractiveNetwork)
    return model


def test_d2nn_learns_digits(plain: po.DiffractiveNetwork, digits: Dataset) -> None:
    # chance is 10 %; Lin-style phase-only D2NN on 8x8 digits reaches about 94 % here
    assert accuracy(plain, digits) >= 0.85


def test_accuracy_degrades_gracefully_with_phase_levels(
    plain: po.DiffractiveNetwork, digits: Dataset
) -> None:
    accs = {levels: accuracy(with_levels(plain, levels), digits) for levels in (2, 4, 16, 0)}
    assert accs[2] < accs[0] - 0.3  # binary phase destroys the trained masks
    assert accs[2] <= accs[4] + 0.02 <= accs[16] + 0.04
    assert accs[16] >= accs[0] - 0.05  # 4-bit phase costs little


def test_accuracy_degrades_gracefully_with_misalignment(
    plain: po.DiffractiveNetwork, digits: Dataset
) -> None:
    stds = (0.0, PITCH / 8, PITCH / 4, PITCH / 2)
    accs = [accuracy(plain, digits, draws=3, lateral=s) for s in stds]
    for milder, harsher in itertools.pairwise(accs):
        assert harsher <= milder + 0.02
    assert accs[-1] < accs[0] - 0.3


def test_vaccinated_training_is_more_robust(
    plain: po.DiffractiveNetwork, vaccinated: po.DiffractiveNetwork, digits: Dataset
) -> None:
    stress = PITCH / 4
    robust = accuracy(vaccinated, digits, draws=3, lateral=stress)
    fragile = accuracy(plain, digits, draws=3, lateral=stress)
    assert robust > fragile + 0.1
