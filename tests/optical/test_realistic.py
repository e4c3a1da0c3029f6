""" "Realistic" means a device the model was not trained on (issue 12, item 5): vaccination
against fabrication and misalignment, and accuracy over freshly drawn chips."""

from __future__ import annotations

import math

import pytest
import torch

import physnn.optical as po
from physnn.common.testing import reset_streams
from physnn.common.train import evaluate, fit
from physnn.optical.stack import displacements


def small(**changes: object) -> po.OpticalConfig:
    geometry = po.GeometryConfig(size=12, n_layers=2, distance=2e-3, oversample=1)
    return po.presets.get("thz-compact", seed=5).replace(geometry=geometry, **changes)


def noisy_chip() -> po.OpticalConfig:
    return small(fabrication=po.FabricationConfig(phase_error_std=0.6))


def test_fresh_chips_are_new_devices_of_the_same_design() -> None:
    net = po.DiffractiveNetwork(4, config=noisy_chip())
    chip = net.layers[0].phase_error.clone()
    chips = list(po.fresh_chips(net, 3))
    errors = [c.layers[0].phase_error for c in chips]
    assert all(not torch.equal(e, chip) for e in errors)
    assert not torch.equal(errors[0], errors[1])
    assert torch.equal(net.layers[0].phase_error, chip)  # the model itself is untouched
    for c in chips:
        torch.testing.assert_close(c.layers[0].phase, net.layers[0].phase, rtol=0, atol=0)
        assert float(c.layers[0].phase_error.std()) == pytest.approx(0.6, rel=0.2)
    again = list(po.fresh_chips(net, 3))  # seeded: reproducible
    assert torch.equal(again[2].layers[1].phase_error, chips[2].layers[1].phase_error)


def test_the_trained_chip_is_not_the_evaluated_chip() -> None:
    torch.manual_seed(0)
    x = torch.rand(48, 8, 8)
    y = torch.randint(0, 4, (48,))
    net = po.DiffractiveNetwork(4, config=noisy_chip())
    fit(net, (x, y), epochs=1, lr=0.05, progress=False, seed=0)
    trained_chip = [layer.phase_error.clone() for layer in net.layers]
    result = po.realistic_accuracy(net, x, y, chips=3)
    assert len(result.accuracies) == 3 and 0 <= result.mean <= 1 and result.std >= 0
    # the same numbers as evaluating each fresh chip by hand, none of them the trained one
    by_hand = []
    for chip in po.fresh_chips(net, 3):
        assert all(
            not torch.equal(a.phase_error, b)
            for a, b in zip(chip.layers, trained_chip, strict=True)
        )
        by_hand.append(evaluate(chip, x, y))
    assert list(result.accuracies) == pytest.approx(by_hand)
    assert "fresh chips" in str(result)


def test_fabrication_vaccination_draws_a_fresh_chip_every_training_forward() -> None:
    cfg = small(
        fabrication=po.FabricationConfig(phase_error_std=0.3, training_phase_error_std=0.3),
        detector=po.DetectorConfig(noise=False, bits=None),  # only the chip varies
    )
    net = po.DiffractiveNetwork(4, config=cfg)
    x = torch.rand(2, 8, 8)
    net.train()
    reset_streams(net)
    first, second = net(x), net(x)
    assert not torch.allclose(first, second)  # a new chip per step
    # the stored chip plays no part in training ...
    reset_streams(net)
    with torch.no_grad():
        for layer in net.layers:
            layer.phase_error.mul_(-3.0)
    torch.testing.assert_close(net(x), first)
    # ... and is the device evaluated in eval mode
    net.eval()
    stored = net(x)
    torch.testing.assert_close(net(x), stored)
    with torch.no_grad():
        for layer in net.layers:
            layer.phase_error.zero_()
    assert not torch.allclose(net(x), stored)


def test_misalignment_vaccination_offers_the_uniform_distribution_of_mengu_2020() -> None:
    half = 100e-6
    cfg = small(misalignment=po.MisalignmentConfig(training_lateral_max=half))
    net = po.DiffractiveNetwork(4, config=cfg)
    layers = list(net.layers)
    draws = []
    for _ in range(400):
        shifts = displacements(layers, training=True)
        assert shifts is not None
        draws.append(torch.stack(shifts[0]))
    lateral = torch.stack(draws)
    assert float(lateral.abs().max()) <= half
    # U(-a, a) has std a / sqrt(3) (a Gaussian of that std would exceed a 8 % of the time)
    assert float(lateral.std()) == pytest.approx(half / math.sqrt(3), rel=0.1)
    assert displacements(layers, training=False) is None  # no static misalignment
