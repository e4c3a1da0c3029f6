"""Optical configs that construct must run: finite results, empty batches, clear errors,
generators on the layer's device (issue 15, items 4, 9 and 11)."""

from __future__ import annotations

import pytest
import torch

import physnn
import physnn.optical as po
from physnn.common.layer import WeightsNotTransferredError, WeightsNotTransferredWarning


def small(**changes: object) -> po.OpticalConfig:
    geometry = po.GeometryConfig(size=12, n_layers=2, distance=2e-3)
    return po.presets.get("thz-compact", seed=3).replace(geometry=geometry, **changes)


def test_photon_budget_that_would_overflow_is_refused_naming_the_fields() -> None:
    with pytest.raises(ValueError, match=r"optical_efficiency=1e-300.*photons_per_frame"):
        po.DetectorConfig(optical_efficiency=1e-300)
    with pytest.raises(ValueError, match="quantum_efficiency"):
        po.DetectorConfig(quantum_efficiency=1e-30, bits=None)


def test_gradients_are_finite_without_read_noise_and_with_non_negative_inputs() -> None:
    """The x- frame of a non-negative input is dark: sqrt(0)' = inf must not give NaN."""
    cfg = small(detector=po.DetectorConfig(read_noise=0.0, bits=None))
    layer = po.OpticalLinear(5, 3, config=cfg)
    x = torch.rand(4, 5)
    layer(x).sum().backward()
    grads = [p.grad for p in layer.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_extra_wavelength_outside_the_pitch_range_names_wavelengths() -> None:
    with pytest.raises(ValueError, match=r"wavelengths holds 1e-07 m.*pitch"):
        po.GeometryConfig(wavelengths=(1e-7,))


@pytest.mark.parametrize("kind", ["network", "linear"])
def test_empty_batches_give_empty_outputs(kind: str) -> None:
    if kind == "network":
        model: torch.nn.Module = po.DiffractiveNetwork(4, config=small())
        x = torch.rand(0, 8, 8)
        want = (0, 4)
    else:
        model = po.OpticalLinear(5, 3, config=small())
        x = torch.rand(0, 5)
        want = (0, 3)
    assert tuple(model(x).shape) == want


def test_to_torch_modes() -> None:
    layer = po.OpticalLinear(5, 3, config=small())
    with pytest.raises(WeightsNotTransferredError, match="weights='shape'"):
        layer.to_torch()
    effective = layer.to_torch("effective")
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(effective.weight, layer.effective_weight())
    with pytest.warns(WeightsNotTransferredWarning):
        assert isinstance(layer.to_torch("shape"), torch.nn.Linear)
    net = po.DiffractiveNetwork(4, config=small())
    for weights in ("exact", "effective"):
        with pytest.raises(WeightsNotTransferredError, match="DiffractiveNetwork"):
            net.to_torch(weights)  # type: ignore[arg-type]
    with pytest.warns(WeightsNotTransferredWarning):
        plain = net.to_torch("shape")
    assert plain(torch.rand(2, 8, 8)).shape == (2, 4)
    with pytest.raises(WeightsNotTransferredError, match="DiffractiveLayer"):
        net.layers[0].to_torch()


def test_reconfigure_keeps_or_redraws_the_chip_and_refuses_another_design() -> None:
    net = po.DiffractiveNetwork(4, config=small())
    error = net.layers[0].phase_error.clone()
    fewer_levels = net.config.replace(fabrication=net.config.fabrication.replace(phase_levels=4))
    net.reconfigure(fewer_levels)
    assert torch.equal(net.layers[0].phase_error, error)  # same statistics: same chip
    assert net.layers[0].config.fabrication.phase_levels == 4
    worse = fewer_levels.replace(fabrication=fewer_levels.fabrication.replace(phase_error_std=0.3))
    net.reconfigure(worse)
    # the same normalised draw scaled to the new std (same seed and stream)
    torch.testing.assert_close(net.layers[0].phase_error, 3 * error)
    with pytest.raises(ValueError, match=r"modulation.kind='complex'.*train a new layer"):
        net.reconfigure(worse.replace(modulation=po.ModulationConfig(kind="complex")))
    assert net.config == worse  # unchanged after the refusal
    moved = physnn.reconfigure(net, fabrication_phase_levels=16)
    assert all(m.config.fabrication.phase_levels == 16 for m in moved.layers)


@pytest.mark.gpu
def test_seeded_layers_draw_on_their_own_device() -> None:
    cfg = small(misalignment=po.MisalignmentConfig(lateral_std=20e-6))
    net = po.DiffractiveNetwork(4, config=cfg, device="cuda")
    assert net.layers[0].phase_error.is_cuda and float(net.layers[0].phase_error.abs().max()) > 0
    net.resample_noise()
    again = po.DiffractiveNetwork(4, config=cfg, device="cuda")
    torch.testing.assert_close(net.layers[1].phase, again.layers[1].phase, rtol=0, atol=0)
    linear = po.OpticalLinear(5, 3, config=cfg, device="cuda")
    assert linear(torch.rand(2, 5, device="cuda")).is_cuda
