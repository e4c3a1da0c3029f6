"""BackendConfig: frozen, keyword-only, exact JSON round trip, actionable validation."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from physnn.common.config import (
    BackendConfig,
    ConfigBlock,
    check_choice,
    check_int,
    check_probability,
    check_range,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Block(ConfigBlock):
    bits: int = 8
    rate: float = 0.1
    levels: tuple[float, ...] = (0.0, 0.5, 1.0)

    def __post_init__(self) -> None:
        check_int("Block", "bits", self.bits, 1, 16)
        check_probability("Block", "rate", self.rate)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyConfig(BackendConfig):
    backend = "toy"
    wavelength: float = 532e-9
    block: Block = dataclasses.field(default_factory=Block)
    optional: Block | None = None
    mode: str = "a"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range(
            "ToyConfig",
            "wavelength",
            self.wavelength,
            1e-7,
            1e-2,
            unit="m",
            hint="did you pass nanometres?",
        )
        check_choice("ToyConfig", "mode", self.mode, ("a", "b"))

    def ideal(self) -> ToyConfig:
        return self.replace(block=self.block.replace(rate=0.0))


def test_frozen_and_keyword_only() -> None:
    cfg = ToyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.wavelength = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        ToyConfig(532e-9)  # type: ignore[misc]


def test_round_trip_through_json_is_exact() -> None:
    cfg = ToyConfig(
        wavelength=0.75e-3,
        block=Block(bits=4, rate=1 / 3, levels=(0.1, 0.2)),
        optional=Block(bits=2),
        seed=5,
        preset="x",
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["backend"] == "toy"
    again = ToyConfig.from_dict(data)
    assert again == cfg
    assert isinstance(again.block.levels, tuple)
    assert again.optional == Block(bits=2)


@given(
    wavelength=st.floats(1e-7, 1e-2),
    rate=st.floats(0, 1),
    bits=st.integers(1, 16),
    seed=st.none() | st.integers(0, 2**63 - 1),
)
def test_round_trip_property(wavelength: float, rate: float, bits: int, seed: int | None) -> None:
    cfg = ToyConfig(wavelength=wavelength, block=Block(bits=bits, rate=rate), seed=seed)
    assert ToyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_unit_slip_message_names_field_value_range_and_fix() -> None:
    with pytest.raises(
        ValueError, match=r"ToyConfig\.wavelength=532\.0 m .*did you pass nanometres"
    ):
        ToyConfig(wavelength=532.0)


@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 1e-7 <= v <= 1e-2))
def test_out_of_range_or_non_finite_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="wavelength"):
        ToyConfig(wavelength=value)


@given(st.integers().filter(lambda b: not 1 <= b <= 16))
def test_bad_bits_rejected(bits: int) -> None:
    with pytest.raises(ValueError, match=r"Block\.bits"):
        Block(bits=bits)


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda r: not 0 <= r <= 1))
def test_rates_outside_unit_interval_rejected(rate: float) -> None:
    with pytest.raises(ValueError, match="fraction, not a percentage"):
        Block(rate=rate)


def test_wrong_types_rejected() -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Block(bits=8.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a real number"):
        ToyConfig(wavelength="532e-9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'c' is not one of"):
        ToyConfig(mode="c")
    with pytest.raises(ValueError, match="seed"):
        ToyConfig(seed=-1)


def test_replace_validates_and_rejects_unknown_fields() -> None:
    cfg = ToyConfig()
    assert cfg.replace(mode="b").mode == "b"
    with pytest.raises(TypeError, match="unknown field"):
        cfg.replace(colour="red")
    with pytest.raises(ValueError, match="wavelength"):
        cfg.replace(wavelength=-1.0)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        ToyConfig.from_dict({"wavelenght": 1e-6})


def test_describe_and_ideal() -> None:
    assert ToyConfig(preset="p").describe() == "toy:p"
    assert ToyConfig().ideal().block.rate == 0.0
