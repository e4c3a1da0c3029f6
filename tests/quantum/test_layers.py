"""Quantum layers: the qiskit contract, sizing, shots, noise, save/load, cost, bad input."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit.quantum_info import SparsePauliOp, Statevector
from torch import nn

import physnn
from physnn.common.layer import WeightsNotTransferredError, WeightsNotTransferredWarning
from physnn.common.testing import assert_state_dict_roundtrip, check_backend
from physnn.quantum import (
    CircuitConfig,
    NoiseConfig,
    QuantumCircuitLayer,
    QuantumConfig,
    QuantumLinear,
    SimulationConfig,
    presets,
)


def z_label(j: int, n: int) -> SparsePauliOp:
    """``Z_j`` in qiskit's little-endian label order (qubit 0 is the rightmost letter)."""
    return SparsePauliOp("I" * (n - 1 - j) + "Z" + "I" * j)


def test_conformance_suite() -> None:
    check_backend("quantum")


def test_import_does_not_import_qiskit() -> None:
    code = "import sys, physnn.quantum; assert 'qiskit' not in sys.modules, 'qiskit imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("encoder", "ansatz", "readout"),
    [
        ("angle_y", "hardware_efficient", "z"),
        ("angle_x", "strongly_entangling", "z"),
        ("iqp", "efficient_su2", "x"),
        ("reupload", "real_amplitudes", "y"),
        ("angle_z", "hardware_efficient", "z"),
    ],
)
def test_layer_equals_qiskit_statevector(encoder: str, ansatz: str, readout: str) -> None:
    n = 4
    config = QuantumConfig(
        circuit=CircuitConfig(qubits=n, encoder=encoder, ansatz=ansatz, readout=readout)
    )
    layer = QuantumCircuitLayer(n, config=config)
    x = torch.rand(3, n)
    y = layer(x)
    for b in range(3):
        sv = Statevector(layer.to_qiskit(x[b]))
        want = torch.tensor([sv.expectation_value(z_label(j, n)).real for j in range(n)])
        torch.testing.assert_close(y[b], want.float(), atol=1e-5, rtol=0)


def test_parametrised_export_binds_to_the_same_circuit() -> None:
    layer = QuantumCircuitLayer(3, 3, config=QuantumConfig(circuit=CircuitConfig(qubits=3)))
    x = torch.rand(3)
    qc = layer.to_qiskit()
    bound = qc.assign_parameters(dict(zip(qc.parameters, x.tolist(), strict=True)))
    want = Statevector(layer.to_qiskit(x)).data
    torch.testing.assert_close(torch.tensor(Statevector(bound).data), torch.tensor(want))


AMPLITUDE = CircuitConfig(encoder="angle_y", entanglement="ring", overflow="amplitude", layers=3)
"""The circuit layout that was the default before the dressed circuit (issue 13)."""


def test_quantum_linear_declares_classical_parameters() -> None:
    config = presets.get("ideal").replace(circuit=AMPLITUDE)
    small = QuantumLinear(4, 3, config=config)
    assert small.pre is None and small.post is None
    assert small.parameter_counts() == {"quantum": small.weight.numel(), "classical": 6}
    wide = QuantumLinear(64, 32, config=config)
    assert wide.spec_encoder == "amplitude" and wide.spec.readout == "probs"
    assert wide.n_qubits == 6 and wide.pre is None and wide.post is None
    proj = QuantumLinear(
        300, 20, config=config.replace(circuit=config.circuit.replace(overflow="projection"))
    )
    assert proj.pre is not None and proj.post is not None and proj.n_qubits == 8
    counts = proj.parameter_counts()
    assert counts["classical"] == 300 * 8 + 8 + 8 * 20 + 20 + 2 * 20
    assert counts["quantum"] == proj.weight.numel() == 3 * 8 * 2
    total = sum(p.numel() for p in proj.parameters())
    assert counts["classical"] + counts["quantum"] == total
    assert proj(torch.rand(2, 300)).shape == (2, 20)


def test_quantum_linear_readout_is_scaled_circuit_output() -> None:
    layer = QuantumLinear(3, 2, config=presets.get("ideal"))
    with torch.no_grad():
        layer.output_scale.copy_(torch.tensor([2.0, -1.0]))
        layer.bias.copy_(torch.tensor([0.5, 0.25]))
    x = torch.rand(4, 3)
    inner = layer._measure(x)
    torch.testing.assert_close(layer(x), inner * layer.output_scale + layer.bias)
    assert inner.abs().max() <= 1


def test_shots_advance_and_restart() -> None:
    config = presets.get("shots", seed=3)
    layer = QuantumLinear(3, 3, config=config)
    x = torch.rand(5, 3)
    a, b = layer(x), layer(x)
    assert not torch.equal(a, b)
    layer.resample_noise()
    torch.testing.assert_close(layer(x), a, rtol=0, atol=0)
    with physnn.ideal():
        exact = layer(x)
    assert not torch.equal(a, exact)
    # frequencies of 1024 shots lie on the 1/1024 grid
    freq = (layer._measure(x) + 1) / 2 * 1024
    torch.testing.assert_close(freq, freq.round(), atol=1e-3, rtol=0)


def test_shot_gradient_is_exact_gradient() -> None:
    ideal = QuantumLinear(3, 2, config=presets.get("ideal"))
    shots = QuantumLinear(3, 2, config=presets.get("shots", seed=0))
    shots.load_state_dict(
        {k: v for k, v in ideal.state_dict().items() if k != "_extra_state"}, strict=False
    )
    x = torch.rand(4, 3)
    ideal(x).sum().backward()
    shots(x).sum().backward()
    torch.testing.assert_close(shots.weight.grad, ideal.weight.grad)


def test_noise_shrinks_expectations_and_ideal_restores() -> None:
    p = 0.1
    config = QuantumConfig(
        circuit=CircuitConfig(qubits=1, layers=0), noise=NoiseConfig(depolarizing_1q=p)
    )
    layer = QuantumCircuitLayer(1, 1, config=config)
    x = torch.rand(6, 1)
    want = torch.cos(math.pi * x)
    torch.testing.assert_close(layer(x), (1 - p) * want, atol=1e-6, rtol=0)
    with physnn.ideal():
        torch.testing.assert_close(layer(x), want, atol=1e-6, rtol=0)


def test_save_load_exact_with_noise_and_shots() -> None:
    config = presets.get("heron", seed=11)
    for n in (3, 6):  # density matrix and trajectories
        layer = QuantumLinear(n, 2, config=config)
        x = torch.rand(4, n)
        model = nn.Sequential(layer)
        assert_state_dict_roundtrip(
            model, lambda n=n: nn.Sequential(QuantumLinear(n, 2, config=config.replace(seed=1))), x
        )
        buffer = io.BytesIO()
        torch.save(layer.state_dict(), buffer)
        buffer.seek(0)
        fresh = QuantumLinear(n, 2, config=presets.get("ideal"))
        fresh.load_state_dict(torch.load(buffer))
        assert fresh.config == layer.config


def test_cost_is_labelled_and_scales_with_shots() -> None:
    logical = {"hardware.cost_layout": "all_to_all"}  # the logical circuit, scheduled by hand
    config = presets.get("heron").replace(circuit=AMPLITUDE).with_changes(logical)
    layer = QuantumLinear(4, 4, config=config)
    c = layer.cost((10, 4))
    res = layer.circuit_resources()
    # schedule by hand (RZ virtual, SX-class 24 ns, CX 84 ns): encoder RY, then per layer RY
    # on every qubit and the CNOT ring 01, 12, 23, 30; the chain ends on qubit 0 at
    # 384 ns, 744 ns, then 1104 ns
    assert math.isclose(res["duration"], 1104e-9)
    assert res["single_qubit_gates"] == 4 + 3 * 4 and res["depth"] == 19
    per_shot = 1104e-9 + 1.56e-6 + 250e-6
    assert math.isclose(c.latency, 10 * 1024 * per_shot)
    classical_energy = 10 * 2 * 4 * 0.23e-12  # output scale and bias per output
    assert math.isclose(c.energy, c.latency * 25e3 + classical_energy)
    assert c.resources["shots"] == 10 * 1024
    assert c.resources["two_qubit_gates"] == 10 * 3 * 4
    assert any("system power" in a for a in c.assumptions)
    assert any("repetition delay" in a for a in c.assumptions)
    exact = QuantumLinear(4, 4, config=presets.get("ideal")).cost((1, 4))
    assert any("assumed" in a for a in exact.assumptions)


def test_stress_sweep_sets_shots() -> None:
    backend = physnn.get_backend("quantum")
    assert backend.stress is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        model = physnn.convert(nn.Sequential(nn.Linear(4, 3)), "quantum:ideal")
    stressed = backend.stress.apply(model, 16)
    assert stressed[0].config.measurement.shots == 16
    assert model[0].config.measurement.shots is None
    with pytest.raises(ValueError, match="shots"):
        backend.stress.apply(model, 0)


def test_transpile_report_and_noise_from_backend() -> None:
    from qiskit.providers.fake_provider import GenericBackendV2

    from physnn.quantum.qiskit import config_from_backend, transpile_report

    backend = GenericBackendV2(num_qubits=5, seed=1)
    layer = QuantumCircuitLayer(3, 3, config=QuantumConfig(circuit=CircuitConfig(qubits=3)))
    report = transpile_report(layer, backend, torch.rand(3))
    assert report.two_qubit_gates >= 1 and report.depth > 0
    assert report.duration is not None and report.duration > 0
    assert report.success_probability is not None and 0 < report.success_probability < 1
    # GenericBackendV2 draws calibrations at random: its relaxation exceeds its gate errors
    with pytest.warns(UserWarning, match="relaxation over .* alone gives"):
        cfg = config_from_backend(backend)
    assert cfg.noise.active and cfg.noise.t1 is not None
    assert 0 < cfg.measurement.p01 < 0.5
    noisy = QuantumCircuitLayer(3, 3, config=cfg.replace(circuit=CircuitConfig(qubits=3)))
    assert noisy(torch.rand(2, 3)).abs().max() <= 1


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: QuantumCircuitLayer(5, 3), ValueError, "takes at most 3 features"),
        (lambda: QuantumCircuitLayer(3, 9), ValueError, "budget"),
        (
            lambda: QuantumCircuitLayer(
                2,
                30,
                config=QuantumConfig(
                    circuit=CircuitConfig(qubits=30),
                    simulation=SimulationConfig(memory_limit=2**35),
                ),
            )(torch.rand(2, 2)),
            ValueError,
            "30 qubits with batch 2 .* needs about",
        ),
        (lambda: QuantumLinear(0, 3), ValueError, "in_features=0"),
        (lambda: QuantumLinear(3, 3, config="quantum:ideal"), TypeError, "QuantumConfig"),
        (lambda: QuantumLinear(3, 3, dtype=torch.int64), TypeError, "floating"),
    ],
)
def test_bad_construction(build, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_bad_forward_inputs() -> None:
    layer = QuantumLinear(3, 2)
    with pytest.raises(ValueError, match="expected"):
        layer(torch.rand(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((2, 3), math.nan))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="Tensor"):
        layer([[0.1, 0.2, 0.3]])


def test_batch_too_large_for_memory_says_how_much() -> None:
    config = QuantumConfig(
        circuit=CircuitConfig(qubits=12),
        simulation=QuantumConfig().simulation.replace(memory_limit=2**20),
    )
    layer = QuantumCircuitLayer(12, config=config)
    with pytest.raises(ValueError, match=r"batch 64 .* needs about .* GiB.*a batch of at most"):
        layer(torch.rand(64, 12))


def test_density_matrix_guard_refuses_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, item 10: a 12-qubit density-matrix forward at batch 64 needs 8 GiB per copy
    of the states; the default limit (half the available memory) refuses it up front."""
    from physnn.common import memory

    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 16 * 2**30)
    config = presets.get("heron").replace(
        circuit=CircuitConfig(qubits=12),
        noise=presets.get("heron").noise.replace(method="density_matrix"),
    )
    layer = QuantumCircuitLayer(12, config=config)
    one_copy = 64 * 4**12 * 8  # complex64 density matrices [byte]
    with torch.no_grad(), pytest.raises(MemoryError) as info:
        layer(torch.rand(64, 12))
    message = str(info.value)
    assert f"{3 * one_copy / 2**30:.3g} GiB" in message and "limit of 8 GiB" in message
    assert "trajectories instead of a density matrix" in message


def test_dtype_float64_simulates_in_complex128() -> None:
    layer = QuantumCircuitLayer(
        3, 3, dtype=torch.float64, config=QuantumConfig(circuit=CircuitConfig(qubits=3))
    )
    x = torch.rand(2, 3, dtype=torch.float64)
    y = layer(x)
    assert y.dtype == torch.float64
    sv = Statevector(layer.to_qiskit(x[0]))
    want = torch.tensor([sv.expectation_value(z_label(j, 3)).real for j in range(3)])
    torch.testing.assert_close(y[0], want, atol=1e-12, rtol=0)


def test_repr_and_report() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        model = physnn.convert(
            nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
            "quantum",
            input_shape=(1, 64),
        )
    text = repr(model)
    assert "QuantumLinear" in text and "quantum:heron" in text
    assert "classical_params" in text and "quantum_params" in text
    assert model.physnn_report.needs_training
    assert QuantumConfig().measurement.shots is None  # exact expectations by default


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=300),
    st.sampled_from(["amplitude", "projection"]),
)
def test_quantum_linear_fits_any_width_into_the_budget(
    in_features: int, out_features: int, overflow: str
) -> None:
    circuit = CircuitConfig(qubits=4, overflow=overflow)
    layer = QuantumLinear(in_features, out_features, config=QuantumConfig(circuit=circuit))
    assert layer.n_qubits <= 4
    assert layer(torch.rand(2, in_features)).shape == (2, out_features)
    counts = layer.parameter_counts()
    assert counts["quantum"] == layer.weight.numel()
    assert counts["quantum"] + counts["classical"] == sum(p.numel() for p in layer.parameters())
    classical_maps = (layer.pre is not None) or (layer.post is not None)
    if overflow == "amplitude" and in_features <= 16 and out_features <= 16:
        assert not classical_maps


def test_noise_from_ibm_fake_backend_matches_anchor_medians() -> None:
    runtime = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    from physnn.quantum.qiskit import config_from_backend

    cfg = config_from_backend(runtime.FakeFez())
    assert math.isclose(cfg.hardware.two_qubit_gate_time, 84e-9, rel_tol=0.1)
    assert math.isclose(cfg.noise.depolarizing_2q, 4 / 3 * 3.9e-3, rel_tol=0.2)
    assert math.isclose(cfg.measurement.p01, 7.6e-3, rel_tol=0.2)


def test_layer_parameter_shift_matches_backprop_and_training_cost() -> None:
    layer = QuantumCircuitLayer(
        3, 3, dtype=torch.float64, config=QuantumConfig(circuit=CircuitConfig(qubits=3))
    )
    x = torch.rand(2, 3, dtype=torch.float64)
    jac = layer.parameter_shift_jacobian(x)
    for b in range(2):
        for j in range(3):
            layer.zero_grad()
            layer(x[b : b + 1])[0, j].backward()
            torch.testing.assert_close(jac[b, j], layer.weight.grad, atol=1e-9, rtol=0)
    step = layer.training_cost((4, 3))
    assert math.isclose(step.latency, (1 + 2 * layer.weight.numel()) * layer.cost((4, 3)).latency)


@pytest.mark.gpu
def test_cuda_matches_cpu_exact_and_noisy() -> None:
    for preset in ("ideal", "heron"):
        layer = QuantumLinear(5, 3, config=presets.get(preset, seed=2))
        x = torch.rand(4, 5)
        with physnn.ideal():
            want = layer(x)
        gpu = layer.to("cuda")
        with physnn.ideal():
            torch.testing.assert_close(gpu(x.cuda()).cpu(), want, atol=1e-5, rtol=0)
        y = gpu(x.cuda())
        y.sum().backward()
        assert torch.isfinite(y).all() and gpu.weight.grad is not None


def test_config_from_backend_warns_when_capping_unphysical_medians() -> None:
    from qiskit.circuit import Measure
    from qiskit.providers import QubitProperties
    from qiskit.transpiler import InstructionProperties, Target

    from physnn.quantum.qiskit import config_from_backend

    target = Target(num_qubits=1, qubit_properties=[QubitProperties(t1=100e-6, t2=300e-6)])
    target.add_instruction(Measure(), {(0,): InstructionProperties(duration=1e-6, error=0.7)})
    with pytest.warns(UserWarning, match="config_from_backend: device median") as record:
        cfg = config_from_backend(target)
    messages = " ".join(str(w.message) for w in record)
    assert "t2=0.0003 exceeds 0.0002" in messages
    assert "readout error=0.7 exceeds 0.49" in messages
    assert cfg.noise.t2 == pytest.approx(200e-6)
    assert cfg.measurement.p01 == 0.49


def _convert(model: nn.Module, spec: str) -> nn.Module:

    with pytest.warns(WeightsNotTransferredWarning, match="train the converted model"):
        return physnn.convert(model, spec)


def test_to_torch_on_a_quantum_model_raises_with_the_fix() -> None:

    model = _convert(nn.Sequential(nn.Linear(4, 3)), "quantum:ideal")
    with pytest.raises(WeightsNotTransferredError, match=r"QuantumLinear.*weights='shape'"):
        physnn.to_torch(model)
    with pytest.warns(WeightsNotTransferredWarning, match="train it"):
        plain = physnn.to_torch(model, weights="shape")
    assert isinstance(plain[0], nn.Linear) and plain[0].weight.shape == (3, 4)


def test_reconfigure_exact_to_shots_changes_the_outputs() -> None:
    model = _convert(nn.Sequential(nn.Linear(4, 3)), "quantum:ideal")
    x = torch.rand(8, 4)
    exact = model(x)
    shots = physnn.reconfigure(model, physnn.quantum.presets.get("shots", seed=1))
    sampled = shots(x)
    assert not torch.allclose(sampled, exact)
    # 1024 shots: each <Z> within a few binomial standard deviations of the exact value
    assert (sampled - exact).abs().max() < 6 / math.sqrt(1024)
    back = physnn.reconfigure(shots, physnn.quantum.presets.get("ideal"))
    torch.testing.assert_close(back(x), exact)


def test_reconfigure_rebuilds_the_noise_model() -> None:
    layer = QuantumCircuitLayer(1, 1, config=QuantumConfig(circuit=CircuitConfig(qubits=1)))
    x = torch.rand(4, 1)
    clean = layer(x)
    p = 0.2
    noisy = QuantumConfig(circuit=layer.config.circuit, noise=NoiseConfig(depolarizing_1q=p))
    layer.reconfigure(noisy)
    # every physical gate (encoder RY, ansatz RY) shrinks <Z> by (1 - p); RZ is virtual
    gates = sum(1 for op in layer.spec.ops if getattr(op, "name", "") == "ry")
    torch.testing.assert_close(layer(x), (1 - p) ** gates * clean, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="not the ansatz layout"):
        layer.reconfigure(noisy.replace(circuit=noisy.circuit.replace(layers=1)))
    assert layer.config == noisy


@pytest.mark.parametrize("preset", ["ideal", "shots", "heron"])
def test_empty_batch_returns_empty_output(preset: str) -> None:
    for layer in (
        QuantumLinear(64, 10, config=presets.get(preset)),
        QuantumLinear(3, 2, config=presets.get(preset)),
    ):
        y = layer(torch.rand(0, layer.in_features))
        assert y.shape == (0, layer.out_features)


def test_projection_angles_are_bounded_whatever_the_input() -> None:
    """Issue 13, item 6: unbounded pre-projection outputs spread the angles over many turns."""
    layer = QuantumLinear(300, 20, config=presets.get("ideal"))
    assert layer.pre is not None and layer.config.circuit.squash == "sigmoid"
    seen: list[torch.Tensor] = []
    original = layer._prepare_inputs

    def spy(h: torch.Tensor) -> torch.Tensor:
        out = original(h)
        seen.append(out)
        return out

    layer._prepare_inputs = spy  # type: ignore[method-assign]
    layer(1e3 * torch.randn(16, 300))
    angles = seen[0]
    assert angles.min() >= 0 and angles.max() <= math.pi


def test_param_groups_give_classical_parameters_their_own_rate() -> None:
    layer = QuantumLinear(300, 20, config=presets.get("ideal"))
    groups = layer.param_groups(0.05, classical_lr=0.005)
    assert [g["lr"] for g in groups] == [0.05, 0.005]
    assert groups[0]["params"] == [layer.weight]
    ids = {id(p) for g in groups for p in g["params"]}
    assert ids == {id(p) for p in layer.parameters()}
    torch.optim.Adam(groups)


def test_ablations_keep_the_classical_parts() -> None:
    from physnn.quantum.ablation import TanhSurrogate, freeze_circuit, without_circuit

    model = _convert(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), "quantum")
    x = torch.rand(5, 64)
    frozen = freeze_circuit(model)
    assert not frozen[0].weight.requires_grad and frozen[0].pre.weight.requires_grad
    assert model[0].weight.requires_grad
    surrogate = without_circuit(model)
    assert isinstance(surrogate[0], TanhSurrogate) and isinstance(surrogate[2], TanhSurrogate)
    first = model[0]
    assert first.pre is not None and first.post is not None
    want = first.post(torch.tanh(first.pre(x))) * first.output_scale + first.bias
    torch.testing.assert_close(surrogate[0](x), want)
    assert surrogate(x).shape == (5, 10)
    with pytest.raises(ValueError, match="convert it first"):
        without_circuit(nn.Linear(2, 2))


def test_training_cost_counts_input_gradient_circuits_and_gradient_shots() -> None:
    from physnn.quantum.cost import gradient_shots

    layer = QuantumLinear(300, 20, config=presets.get("heron"))
    # 8 qubits, 2 re-uploading layers: 16 input-dependent RY gates, 2 x 8 x 2 = 32 angles
    assert layer.weight.numel() == 32
    per_sample = 1 + 2 * 32 + 2 * 16
    step = layer.training_cost((4, 300))
    assert step.resources["circuit_executions"] == 4 * per_sample
    assert step.resources["shots"] == 4 * per_sample * 1024
    fewer = layer.training_cost((4, 300), input_gradients=False, gradient_shots=100)
    assert fewer.resources["shots"] == 4 * 1024 + 4 * 2 * 32 * 100
    # a gradient of 0.01 at SNR 1 needs S >= 1 / (2 * 0.01^2) shots per shifted circuit
    assert gradient_shots(0.01) == 5000
    amplitude = QuantumLinear(64, 4, config=presets.get("heron").replace(circuit=AMPLITUDE))
    with pytest.raises(ValueError, match="no parameter-shift rule for its inputs"):
        amplitude.training_cost((1, 64), input_gradients=True)


def test_readout_mitigation_recovers_the_noiseless_readout_within_shot_error() -> None:
    n, shots, p01, p10 = 3, 4096, 0.04, 0.08
    circuit = CircuitConfig(qubits=n)
    measurement = QuantumConfig().measurement.replace(shots=shots, p01=p01, p10=p10)
    raw = QuantumCircuitLayer(
        n, n, config=QuantumConfig(circuit=circuit, measurement=measurement, seed=4)
    )
    fixed = QuantumCircuitLayer(
        n,
        n,
        config=raw.config.replace(measurement=measurement.replace(mitigate_readout=True)),
    )
    fixed.load_state_dict({"weight": raw.weight.detach()}, strict=False)
    x = torch.rand(1, n)
    sv = Statevector(raw.to_qiskit(x[0]))
    want = torch.tensor([sv.expectation_value(z_label(j, n)).real for j in range(n)]).float()
    repeats = 200
    with torch.no_grad():
        mitigated = fixed(x.expand(repeats, -1))
        biased = raw(x.expand(repeats, -1))
    # std of one mitigated estimate: binomial std of the read <Z> over (1 - p01 - p10)
    read = (1 - p01 - p10) * want + p10 - p01
    sigma = ((1 - read**2) / shots).sqrt() / (1 - p01 - p10)
    assert torch.all((mitigated.mean(0) - want).abs() < 5 * sigma / math.sqrt(repeats))
    ratio = mitigated.std(0) / sigma
    assert torch.all((ratio > 0.8) & (ratio < 1.25))
    assert torch.all((biased.mean(0) - read).abs() < 5 * sigma / math.sqrt(repeats))


def test_transpile_report_defaults_to_the_preset_device() -> None:
    """Issue 13, item 5: the default target is the preset's coupling map and basis, and the
    measure_all barrier is not a two-qubit gate."""
    from physnn.quantum.qiskit import transpile_report

    two = CircuitConfig(qubits=2, layers=1)  # one CNOT: CZ with single-qubit gates
    heron = transpile_report(
        QuantumCircuitLayer(2, 2, config=presets.get("heron").replace(circuit=two)), x=torch.rand(2)
    )
    assert heron.two_qubit_gates == 1
    assert set(heron.ops) <= {"rz", "sx", "x", "cz", "measure", "barrier"}
    assert heron.success_probability is not None and heron.success_probability < 1
    eagle = transpile_report(
        QuantumCircuitLayer(2, 2, config=presets.get("eagle").replace(circuit=two)), x=torch.rand(2)
    )
    assert "ecr" in eagle.ops and eagle.two_qubit_gates == 1
    # all-pairs entanglement of 8 qubits (2 x 28 CNOTs) needs SWAPs on heavy-hex
    full = CircuitConfig(qubits=8, entanglement="full")
    layer = QuantumCircuitLayer(8, 8, config=presets.get("heron").replace(circuit=full))
    assert transpile_report(layer, x=torch.rand(8)).two_qubit_gates > 2 * 28


def test_hamiltonian_expectations_and_variances_equal_sparse_pauli_op() -> None:
    n = 4
    layer = QuantumCircuitLayer(
        n, n, dtype=torch.float64, config=QuantumConfig(circuit=CircuitConfig(qubits=n))
    )
    hamiltonian = SparsePauliOp(
        ["XYZI", "ZZII", "IIXX", "YIIY", "IIIZ"], [0.5, -1.2, 0.3, 0.7, 2.0]
    )
    x = torch.rand(3, n, dtype=torch.float64)
    mean, var = layer.expectation(x, hamiltonian, variance=True)
    for b in range(3):
        sv = Statevector(layer.to_qiskit(x[b]))
        want = sv.expectation_value(hamiltonian).real
        want_var = sv.expectation_value(hamiltonian @ hamiltonian).real - want**2
        assert float(mean[b].detach()) == pytest.approx(want, abs=1e-10)
        assert float(var[b].detach()) == pytest.approx(want_var, abs=1e-10)
    # a subset of wires: <Z_1> is the layer's own readout of qubit 1
    torch.testing.assert_close(layer.expectation(x, "IIZI"), layer(x)[:, 1])
    with pytest.raises(ValueError, match="4 letters"):
        layer.expectation(x, "ZZ")


def test_user_written_circuit_layer_equals_qiskit() -> None:
    from qiskit import QuantumCircuit

    def circuit(b) -> None:
        b.ry(b.input(0), 0)
        b.ry(b.input(1), 1)
        b.h(2)
        b.cx(0, 1)
        b.rz(b.weight(), 1)
        b.cz(1, 2)
        b.ry(b.weight(), 0)
        b.rx(2 * b.input(1), 2)
        b.cx(2, 0)

    layer = QuantumCircuitLayer.from_circuit(circuit, 3, 2, dtype=torch.float64)
    assert layer.weight.numel() == 2
    x = torch.rand(4, 2, dtype=torch.float64)
    y = layer(x)
    w = layer.weight.detach().tolist()
    for b in range(4):
        a0, a1 = (math.pi * float(v) for v in x[b])  # input_scale = pi
        qc = QuantumCircuit(3)
        qc.ry(a0, 0)
        qc.ry(a1, 1)
        qc.h(2)
        qc.cx(0, 1)
        qc.rz(w[0], 1)
        qc.cz(1, 2)
        qc.ry(w[1], 0)
        qc.rx(2 * a1, 2)
        qc.cx(2, 0)
        sv = Statevector(qc)
        want = torch.tensor([sv.expectation_value(z_label(j, 3)).real for j in range(3)])
        torch.testing.assert_close(y[b].detach(), want, atol=1e-12, rtol=0)
    # the same circuit under device noise, cost (of the logical circuit) and export
    logical = presets.get("heron", seed=1).with_changes({"hardware.cost_layout": "all_to_all"})
    noisy = QuantumCircuitLayer.from_circuit(circuit, 3, 2, config=logical)
    assert torch.isfinite(noisy(x.float())).all()
    assert noisy.cost((4, 2)).resources["two_qubit_gates"] == 4 * 3
    assert noisy.to_qiskit(x[0].float()).count_ops()["cx"] == 2
    copy = QuantumCircuitLayer.from_circuit(circuit, 3, 2, config=logical)
    copy.load_state_dict(noisy.state_dict())
    with physnn.ideal():
        torch.testing.assert_close(copy(x.float()), noisy(x.float()))


def test_parameter_shift_with_finite_shots_is_unbiased_with_the_shot_variance() -> None:
    config = QuantumConfig(circuit=CircuitConfig(qubits=2, layers=1), seed=3)
    layer = QuantumCircuitLayer(2, 2, dtype=torch.float64, config=config)
    x = torch.rand(1, 2, dtype=torch.float64).expand(400, -1)
    exact = layer.parameter_shift_jacobian(x[:1])[0]
    shots = 256
    sampled = layer.parameter_shift_jacobian(x, shots=shots)
    bound = math.sqrt(1 / (2 * shots))  # std of (f+ - f-) / 2 for +-1 outcomes
    assert torch.all(sampled.std(0) <= 1.1 * bound)
    assert torch.all((sampled.mean(0) - exact).abs() < 5 * bound / math.sqrt(400))
    # <Z> from counts lies on the 2/shots grid, so (f+ - f-) / 2 lies on the 1/shots grid
    grid = sampled * shots
    torch.testing.assert_close(grid, grid.round(), atol=1e-6, rtol=0)
