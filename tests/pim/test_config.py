"""PIM configuration: validation with actionable messages, round trips, presets, CSV."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physnn.common.testing import check_config
from physnn.pim import (
    ADCConfig,
    CircuitConfig,
    DACConfig,
    DriftConfig,
    EnergyConfig,
    FaultConfig,
    HWAConfig,
    MappingConfig,
    PIMConfig,
    PIMLinear,
    ProgrammingConfig,
    ReadNoiseConfig,
    presets,
)


@pytest.mark.parametrize("name", presets.names())
def test_presets_round_trip_and_cite(name: str) -> None:
    cfg = presets.get(name, seed=3)
    check_config(cfg)
    assert PIMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert presets.citation(name)
    assert cfg.ideal().is_ideal
    assert cfg.is_ideal == (name == "ideal")


def test_required_presets_exist() -> None:
    assert {"ideal", "pcm", "reram", "neurosim-rram", "hermes", "hwa-rasch2023"} <= set(
        presets.names()
    )


@settings(max_examples=30, deadline=None)
@given(bits=st.integers(-5, 1))
def test_non_positive_or_single_bits_rejected(bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        ADCConfig(bits=bits)
    with pytest.raises(ValueError, match="bits"):
        DACConfig(bits=bits)


@settings(max_examples=30, deadline=None)
@given(g_max=st.floats(1e-6, 1e-4), factor=st.floats(1.0, 5.0))
def test_g_min_not_below_g_max_rejected(g_max: float, factor: float) -> None:
    with pytest.raises(ValueError, match="g_min"):
        MappingConfig(g_max=g_max, g_min=g_max * factor)


@settings(max_examples=30, deadline=None)
@given(rate=st.one_of(st.floats(-10, -1e-9), st.floats(1.000001, 100)))
def test_rates_outside_unit_interval_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        FaultConfig(stuck_off_rate=rate)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(-100, 0))
def test_tile_sizes_below_one_rejected(rows: int) -> None:
    with pytest.raises(ValueError, match="tile_rows"):
        MappingConfig(tile_rows=rows)
    with pytest.raises(ValueError, match="tile_cols"):
        MappingConfig(tile_cols=rows)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(-1e6, 0.0))
def test_non_positive_drift_reference_time_rejected(t: float) -> None:
    with pytest.raises(ValueError, match="t0"):
        DriftConfig(t0=t)


def test_unit_slips_get_a_hint() -> None:
    with pytest.raises(ValueError, match="siemens"):
        MappingConfig(g_max=25.0)  # microsiemens passed as siemens
    with pytest.raises(ValueError, match="seconds"):
        ReadNoiseConfig(t_read=250.0)  # nanoseconds passed as seconds
    with pytest.raises(ValueError, match="joules"):
        EnergyConfig(adc_fom=20.0)
    with pytest.raises(ValueError, match="ohm"):
        CircuitConfig(r_wire_row=-1.0)


@pytest.mark.parametrize(
    ("make", "field", "fix"),
    [
        (lambda: DriftConfig(nu_mean=5.0), "nu_mean=5.0", "dimensionless"),
        (lambda: ReadNoiseConfig(weight_noise=5.0), "weight_noise=5.0", "fraction"),
        (lambda: ADCConfig(output_bound=-12.0), "output_bound=-12.0", "normalised"),
        (lambda: HWAConfig(clip_sigma=-1.0), "clip_sigma=-1.0", "None turns clipping off"),
        (lambda: FaultConfig(stuck_off_rate=0.6, stuck_on_rate=0.6), "stuck_on_rate=0.6", "sum"),
        (
            lambda: ProgrammingConfig(
                model="measured", levels=(2e-6, 1e-6), level_sigma=(1e-7, 1e-7)
            ),
            "levels",
            "sort",
        ),
    ],
)
def test_messages_name_field_value_and_fix(
    make: Callable[[], object], field: str, fix: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(field)) as info:
        make()
    assert fix in str(info.value)


def test_inconsistent_blocks_rejected() -> None:
    with pytest.raises(ValueError, match="bits_per_cell"):
        MappingConfig(slices=4)
    with pytest.raises(ValueError, match="add up"):
        FaultConfig(stuck_off_rate=0.6, stuck_on_rate=0.6)
    with pytest.raises(ValueError, match="bit_serial"):
        DACConfig(bits=None, bit_serial=True)
    with pytest.raises(ValueError, match="levels"):
        ProgrammingConfig(model="measured", levels=(1e-6,), level_sigma=(1e-7,))
    with pytest.raises(TypeError, match="MappingConfig"):
        PIMConfig(mapping=DACConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        MappingConfig(tile_rows=12.5)  # type: ignore[arg-type]


def test_from_csv_programs_measured_levels(tmp_path: Path) -> None:
    path = tmp_path / "device.csv"
    path.write_text("conductance,sigma\n20e-6,0.5e-6\n1e-6,0.1e-6\n10e-6,0.3e-6\n")
    cfg = presets.from_csv(path, base=presets.get("pcm", seed=0))
    assert cfg.programming.levels == (1e-6, 10e-6, 20e-6)
    assert cfg.mapping.g_min == 1e-6 and cfg.mapping.g_max == 20e-6
    check_config(cfg)
    quiet = cfg.replace(programming=cfg.programming.replace(level_sigma=(0.0, 0.0, 0.0)))
    layer = PIMLinear(30, 20, config=quiet)
    levels = torch.tensor([1e-6, 10e-6, 20e-6])
    g = layer.tile.conductance.flatten()
    assert torch.all((g[:, None] - levels).abs().min(1).values < 1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("g,s\n1,2\n")
    with pytest.raises(ValueError, match="conductance"):
        presets.from_csv(bad)
    with pytest.raises(FileNotFoundError):
        presets.from_csv(tmp_path / "missing.csv")
