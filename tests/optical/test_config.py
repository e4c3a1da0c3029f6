"""Optical configs: validation messages, presets and exact round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import physnn.optical as po
from physnn.common.testing import check_config
from physnn.optical.config import (
    DetectorConfig,
    FabricationConfig,
    GeometryConfig,
    MisalignmentConfig,
    OpticalConfig,
)


@settings(max_examples=60, deadline=None)
@given(wavelength=st.floats(-1.0, 1e3, allow_nan=False))
def test_wavelength_range_is_enforced(wavelength: float) -> None:
    valid = 1e-7 <= wavelength <= 1e-2 and 0.05 <= 0.4e-3 / wavelength <= 1000
    if valid:
        assert GeometryConfig(wavelength=wavelength).wavelength == wavelength
    else:
        with pytest.raises(ValueError, match=r"wavelength|pitch"):
            GeometryConfig(wavelength=wavelength)


def test_unit_slips_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"wavelength=532\.0 m.*nanometres"):
        GeometryConfig(wavelength=532.0, pitch=8e-6)
    with pytest.raises(ValueError, match=r"distance.*metres"):
        GeometryConfig(distance=30.0e3)
    with pytest.raises(ValueError, match=r"phase_error_std.*radians"):
        FabricationConfig(phase_error_std=45.0)
    with pytest.raises(ValueError, match="fraction"):
        DetectorConfig(quantum_efficiency=60.0)
    with pytest.raises(ValueError, match="lateral_std"):
        MisalignmentConfig(lateral_std=50.0)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(-5, 5000),
    levels=st.integers(-3, 70000),
    bits=st.one_of(st.none(), st.integers(-2, 30)),
)
def test_integer_fields(size: int, levels: int, bits: int | None) -> None:
    ok = 2 <= size <= 4096 and levels != 1 and 0 <= levels <= 65536
    ok = ok and (bits is None or 1 <= bits <= 24)
    build = lambda: OpticalConfig(  # noqa: E731
        geometry=GeometryConfig(size=size),
        fabrication=FabricationConfig(phase_levels=levels),
        detector=DetectorConfig(bits=bits),
    )
    if ok:
        build()
    else:
        with pytest.raises(ValueError, match=r"size|phase_levels|bits"):
            build()


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="int"):
        GeometryConfig(size=20.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        DetectorConfig(noise="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="GeometryConfig"):
        OpticalConfig(geometry={"size": 3})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="material"):
        OpticalConfig(modulation=po.ModulationConfig(kind="amplitude", material=True))


@settings(max_examples=30, deadline=None)
@given(
    std=st.floats(0, 0.01),
    fill=st.floats(0.01, 1.0),
    photons=st.one_of(st.none(), st.floats(1.0, 1e12)),
)
def test_round_trip_is_exact(std: float, fill: float, photons: float | None) -> None:
    cfg = po.presets.get("thz-compact").replace(
        misalignment=MisalignmentConfig(lateral_std=std),
        detector=DetectorConfig(region_fill=fill, photons_per_frame=photons),
    )
    again = OpticalConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize("name", po.presets.names())
def test_presets_are_valid_and_cited(name: str) -> None:
    cfg = po.presets.get(name)
    check_config(cfg)
    assert cfg.preset == name
    assert po.presets.citation(name)
    ideal = cfg.ideal()
    assert ideal.fabrication == FabricationConfig()
    assert not ideal.detector.noise and ideal.detector.bits is None


def test_lin2018_preset_is_the_published_geometry() -> None:
    g = po.presets.get("lin2018-thz").geometry
    assert (g.wavelength, g.pitch, g.size, g.n_layers, g.distance) == (
        0.75e-3,
        0.4e-3,
        200,
        5,
        0.03,
    )


def test_shot_noise_limited_photon_budget() -> None:
    det = DetectorConfig(bits=8, quantum_efficiency=0.5, optical_efficiency=0.25)
    assert det.full_scale == 4**8
    # every one of 10 regions can collect a full well: 10 * 65536 e- / (0.5 * 0.25)
    assert det.photons(10) == pytest.approx(10 * 65536 / 0.125)


def test_extra_wavelengths_validate_and_round_trip() -> None:
    with pytest.raises(ValueError, match="nanometres"):
        GeometryConfig(wavelengths=(633.0,))
    with pytest.raises(TypeError, match="tuple"):
        GeometryConfig(wavelengths=[0.8e-3])  # type: ignore[arg-type]
    cfg = po.presets.get("thz-compact").replace(
        geometry=GeometryConfig(wavelengths=(0.7e-3, 0.8e-3))
    )
    check_config(cfg)
    assert cfg.geometry.all_wavelengths == (0.75e-3, 0.7e-3, 0.8e-3)


def test_pitch_to_wavelength_ratio_message_names_both_values() -> None:
    want = r"pitch=1e-07 m is 0\.000133333 wavelengths \(wavelength=0\.00075 m\)"
    with pytest.raises(ValueError, match=want):
        GeometryConfig(pitch=1e-7)
