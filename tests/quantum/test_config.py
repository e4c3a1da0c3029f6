"""QuantumConfig: round trips, presets, and actionable validation (property-based)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physnn.common.testing import check_config
from physnn.quantum import (
    CircuitConfig,
    HardwareConfig,
    MeasurementConfig,
    NoiseConfig,
    QuantumConfig,
    SimulationConfig,
    presets,
)
from physnn.quantum.circuit import build_circuit


@pytest.mark.parametrize("name", presets.names())
def test_presets_round_trip_and_cite(name: str) -> None:
    config = presets.get(name)
    check_config(config)
    assert QuantumConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert presets.citation(name)
    ideal = config.ideal()
    assert not ideal.noise.active and ideal.measurement.shots is None
    assert ideal.hardware == config.hardware


def test_unknown_preset_lists_choices() -> None:
    with pytest.raises(ValueError, match="choose one of ideal"):
        presets.get("sycamore")


@given(st.integers(min_value=-(10**6), max_value=0))
def test_shots_below_one_rejected(shots: int) -> None:
    with pytest.raises(ValueError, match=rf"MeasurementConfig.shots={shots} is outside \[1"):
        MeasurementConfig(shots=shots)


@given(
    st.one_of(
        st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False),
        st.floats(min_value=1.0 + 1e-9, max_value=1e6, allow_nan=False),
    )
)
def test_probabilities_outside_unit_interval_rejected(p: float) -> None:
    for field in ("depolarizing_1q", "amplitude_damping", "phase_damping"):
        with pytest.raises(ValueError, match=f"NoiseConfig.{field}=.*not a percentage"):
            NoiseConfig(**{field: p})
    with pytest.raises(ValueError, match=r"MeasurementConfig\.p01"):
        MeasurementConfig(p01=p)


@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_readout_errors_must_leave_information(p01: float, p10: float) -> None:
    if p01 + p10 < 1:
        MeasurementConfig(p01=p01, p10=p10)
    else:
        with pytest.raises(ValueError, match="must be < 1"):
            MeasurementConfig(p01=p01, p10=p10)


@settings(max_examples=30)
@given(st.floats(min_value=10.0 + 1e-6, max_value=1e6))
def test_times_in_microseconds_caught(t1: float) -> None:
    with pytest.raises(ValueError, match="145 us is 145e-6"):
        NoiseConfig(t1=t1, t2=t1)


@settings(max_examples=30)
@given(st.floats(min_value=1e-3 + 1e-9, max_value=1e3))
def test_gate_times_in_nanoseconds_caught(value: float) -> None:
    with pytest.raises(ValueError, match="84 ns is 84e-9"):
        HardwareConfig(two_qubit_gate_time=value)


def test_t2_above_twice_t1_rejected() -> None:
    with pytest.raises(ValueError, match="exceeds 2\\*t1"):
        NoiseConfig(t1=100e-6, t2=250e-6)
    with pytest.raises(ValueError, match="set both t1 and t2"):
        NoiseConfig(t1=100e-6)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("encoder", "basis", "encoder='basis' is not one of"),
        ("ansatz", "qaoa", "ansatz='qaoa' is not one of"),
        ("entanglement", "star", "not one of"),
        ("readout", "bell", "not one of"),
        ("qubits", 0, "qubits=0 is outside"),
        ("qubits", 2.0, "must be an int"),
    ],
)
def test_unknown_names_rejected(field: str, value: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        CircuitConfig(**{field: value})


def test_power_in_kilowatts_caught_and_blocks_type_checked() -> None:
    with pytest.raises(ValueError, match="25 kW is 25e3"):
        HardwareConfig(system_power=1e9)
    with pytest.raises(TypeError, match=r"QuantumConfig\.noise must be a NoiseConfig"):
        QuantumConfig(noise={"depolarizing_1q": 0.1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory_limit"):
        SimulationConfig(memory_limit=10)


@given(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=80))
def test_features_that_do_not_fit_the_encoder(n_qubits: int, n_features: int) -> None:
    for encoder, limit in (("angle_y", n_qubits), ("amplitude", 2**n_qubits)):
        config = CircuitConfig(qubits=n_qubits, encoder=encoder)
        if n_features <= limit:
            spec = build_circuit(config, n_qubits, n_features)
            assert spec.n_features == n_features
        else:
            with pytest.raises(ValueError, match=f"takes at most {limit} features"):
                build_circuit(config, n_qubits, n_features)


def test_default_input_scale_is_pi() -> None:
    assert CircuitConfig().input_scale == math.pi
