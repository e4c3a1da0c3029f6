"""Researcher tools (issue 12, item 7): fields inside the network, per-gap distances, mask
initialisation, plots and fabrication export."""

from __future__ import annotations

import math
import sys

import matplotlib
import numpy as np
import pytest
import torch

import physnn
import physnn.optical as po
from physnn.optical import functional as OF
from physnn.optical import tools

matplotlib.use("Agg")

GAPS = (2e-3, 3e-3, 1.5e-3)


def config(**geometry: object) -> po.OpticalConfig:
    g = po.GeometryConfig(size=12, n_layers=2, distance=2e-3, oversample=1, **geometry)
    return po.presets.get("ideal", seed=2).replace(geometry=g)


def test_per_gap_distances_are_honoured_by_the_network() -> None:
    net = po.DiffractiveNetwork(4, config=config(distances=GAPS)).double()
    assert [layer.distance for layer in net.layers] == list(GAPS[1:])
    x = torch.rand(2, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        fields = net.fields(x)
        u = net.encode(x)
        planes = []
        for gap, layer in zip(GAPS, [None, *net.layers], strict=True):
            u = u if layer is None else layer.modulate(u)
            u = OF.propagate(u, gap, wavelength=0.75e-3, pitch=0.4e-3, method="auto")
            planes.append(u)
    assert len(fields["planes"]) == 3
    for got, want in zip(fields["planes"], planes, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(fields["detector"], planes[-1].abs().square())
    powers = OF.region_powers(fields["detector"], fields["regions"])
    torch.testing.assert_close(net.eval().powers(x), powers)
    with pytest.raises(ValueError, match="needs 3"):
        po.GeometryConfig(n_layers=2, distances=(1e-3, 1e-3))


def test_per_gap_distances_are_honoured_by_optical_linear() -> None:
    same = po.OpticalLinear(4, 2, config=config(), dtype=torch.float64)
    other = po.OpticalLinear(4, 2, config=config(distances=GAPS), dtype=torch.float64)
    physnn.load_state_dict(other, same.state_dict(), config="current")
    with torch.no_grad():
        assert not torch.allclose(same.transmission_matrix(), other.transmission_matrix())


@pytest.mark.parametrize(("init", "spread"), [("zero", 0.0), ("small", 0.1), ("uniform", None)])
def test_mask_initialisation(init: str, spread: float | None) -> None:
    cfg = config().replace(modulation=po.ModulationConfig(init=init))  # type: ignore[arg-type]
    phase = po.DiffractiveLayer(40, config=cfg).phase
    assert phase is not None
    if spread is None:  # uniform in [0, 2 pi): std 2 pi / sqrt(12)
        assert float(phase.detach().std()) == pytest.approx(2 * math.pi / math.sqrt(12), rel=0.1)
        assert float(phase.min()) >= 0 and float(phase.max()) < 2 * math.pi
    else:
        assert float(phase.detach().std()) == pytest.approx(spread, abs=0.02)


def test_height_map_has_units_and_the_printed_thickness() -> None:
    cfg = config().replace(modulation=po.ModulationConfig(material=True))
    layer = po.DiffractiveLayer(6, config=cfg)
    with torch.no_grad():
        layer.phase.fill_(math.pi + 2 * math.pi)  # wraps to pi
    hm = tools.height_map(layer)
    # h = phi lambda / (2 pi (n - 1)) with Lin's n = 1.7227: pi -> 0.519 mm
    want = math.pi * 0.75e-3 / (2 * math.pi * (1.7227 - 1))
    np.testing.assert_allclose(hm.heights, want, rtol=1e-6)  # float32 phase
    assert hm.unit == "m" and hm.pitch == 0.4e-3


def test_stl_export_writes_one_pillar_per_neuron(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stl import mesh

    layer = po.DiffractiveLayer(5, config=config())
    path = tools.save_stl(layer, tmp_path / "layer.stl", base=0.5e-3)
    solid = mesh.Mesh.from_file(str(path))
    assert len(solid.vectors) == 12 * 5 * 5
    top = 0.5 + float(tools.height_map(layer).heights.max()) * 1e3
    assert float(solid.z.max()) == pytest.approx(top)
    assert float(solid.x.max()) == pytest.approx(5 * 0.4)  # mm


def test_stl_export_without_numpy_stl_says_how_to_install(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "stl.mesh", None)
    layer = po.DiffractiveLayer(3, config=config())
    with pytest.raises(ImportError, match=r"physnn\[stl\]"):
        tools.save_stl(layer, tmp_path / "x.stl")


def test_plots_return_figures() -> None:
    net = po.DiffractiveNetwork(4, config=config())
    fig = tools.plot_masks(net)
    assert len([a for a in fig.axes if a.get_title().startswith("layer")]) == 2
    with torch.no_grad():
        fields = net.fields(torch.rand(1, 8, 8))
    fig = tools.plot_planes(fields)
    assert fig.axes[-1].get_title().startswith("detector")
