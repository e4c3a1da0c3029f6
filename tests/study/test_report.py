"""Tables, files and figures of a comparison; the accelerator landscape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from physnn.common.cost import cost
from physnn.digital import presets
from physnn.study.compare import compare

# Published efficiencies [TOPS/W] as quoted in the 2019 talk / datasheets (TOPS / W).
PUBLISHED = {
    "jetson-xavier": 20 / 20,
    "deephi-zu9": 2.7 / 12,
    "tpu-v1": 86 / 40,
    "sticker-t": 140.3,
    "thinker-ii": 90.0,
    "gpu-h100": 1979 / 700,
}


def test_landscape_presets_carry_their_published_efficiency() -> None:
    assert set(presets.LANDSCAPE) == set(PUBLISHED)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for name, tops_per_watt in PUBLISHED.items():
        assert presets.citation(name)
        from physnn import convert

        c = cost(convert(model, f"digital:{name}"), (1, 64))
        assert c.tops_per_watt == pytest.approx(tops_per_watt, rel=1e-9), name
        # The arithmetic is the int8 reference: same outputs as the int8 preset.
        x = torch.rand(4, 64)
        same = convert(model, "digital:int8")(x)
        torch.testing.assert_close(convert(model, f"digital:{name}")(x), same)


def test_compare_writes_table_csv_json_summary_and_figures(tmp_path: Path) -> None:
    result = compare(
        backends=["digital:int8", "pim:pcm"],
        executor="serial",
        epochs=3,
        seeds=2,
        devices=2,
        train_size=160,
        test_size=80,
        out=tmp_path,
        progress=False,
    )
    table = result.table().splitlines()
    assert table[0].split()[:2] == ["paradigm", "preset"]
    assert "TOPS/W" in table[0] and "MACs digital [%]" in table[0]
    assert len(table) == 4
    for name in ("results.csv", "results.json", "summary.md", "accuracy_vs_energy.png"):
        assert (tmp_path / name).stat().st_size > 0
    for name in ("robustness.png", "landscape.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["label"] for r in rows] == ["digital:int8", "pim:pcm"]
    assert rows[0]["optimizer_steps"] == rows[1]["optimizer_steps"] == str(3 * 5)
    int8, pcm = result.rows
    # CSV in the table's units: percent.
    mean = sum(int8.realistic_accuracy) / len(int8.realistic_accuracy)
    assert float(rows[0]["realistic_acc_mean_pct"]) == pytest.approx(100 * mean)
    assert len(pcm.realistic_accuracy) == 2 * 2  # seeds x fresh devices
    # area split: the crossbar arrays and their converters add up to the PIM layers' area
    analog, periphery = float(rows[1]["area_analog_mm2"]), float(rows[1]["area_periphery_mm2"])
    assert analog > 0 and periphery > 0
    assert analog + periphery == pytest.approx(float(rows[1]["area_physical_mm2"]), rel=1e-9)
    assert float(rows[0]["area_analog_mm2"]) == 0.0
    summary = (tmp_path / "summary.md").read_text()
    assert "2 float epochs + 1 epochs fine-tuning on the pim arithmetic = 15" in summary
    assert "drift time [s]: 1: " in summary and "of the MACs left digital" in summary
    assert "digital:sticker-t: 140 TOPS/W" in summary
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["settings"]["schedules"]["pim:pcm"]["fine_tune_epochs"] == 1
    assert {m["name"] for m in data["landmarks"]} >= {f"digital:{n}" for n in PUBLISHED}
