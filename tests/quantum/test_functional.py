"""The torch simulator against invariants, slow dense references, qiskit and qiskit-aer."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
from qiskit.quantum_info import Operator, Statevector

from physnn.quantum import CircuitConfig, build_circuit
from physnn.quantum import functional as qf
from physnn.quantum.qiskit import spec_to_qiskit

ENCODERS = ("angle_x", "angle_y", "angle_z", "iqp", "reupload", "amplitude")
ANSATZES = ("hardware_efficient", "strongly_entangling", "real_amplitudes", "efficient_su2")


def dense_gate(matrix: torch.Tensor, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """Slow reference: the full 2^n x 2^n matrix of a gate, entry by entry."""
    size = 2**n
    full = torch.zeros(size, size, dtype=matrix.dtype)
    others = [q for q in range(n) if q not in qubits]
    for i in range(size):
        for j in range(size):
            if any((i >> q) & 1 != (j >> q) & 1 for q in others):
                continue
            a = sum(((i >> q) & 1) << k for k, q in enumerate(qubits))
            b = sum(((j >> q) & 1) << k for k, q in enumerate(qubits))
            full[i, j] = matrix[a, b]
    return full


@pytest.mark.parametrize(
    "name", ["rx", "ry", "rz", "p", "h", "x", "y", "z", "s", "sdg", "cx", "cz", "swap"]
)
def test_gates_unitary_and_match_qiskit(name: str) -> None:
    from qiskit.circuit import library as lib

    qiskit_gate = {
        "rx": lib.RXGate,
        "ry": lib.RYGate,
        "rz": lib.RZGate,
        "p": lib.PhaseGate,
        "h": lib.HGate,
        "x": lib.XGate,
        "y": lib.YGate,
        "z": lib.ZGate,
        "s": lib.SGate,
        "sdg": lib.SdgGate,
        "cx": lib.CXGate,
        "cz": lib.CZGate,
        "swap": lib.SwapGate,
    }[name]
    angles = torch.rand(5, dtype=torch.float64) * 4 * math.pi - 2 * math.pi
    if name in qf.ANGLE_GATES:
        mats = qf.gate_matrix(name, angles, dtype=torch.complex128)
        refs = [Operator(qiskit_gate(float(a))).data for a in angles]
    else:
        mats = qf.gate_matrix(name, dtype=torch.complex128)[None]
        refs = [Operator(qiskit_gate()).data]
    for m, ref in zip(mats, refs, strict=True):
        eye = torch.eye(m.shape[0], dtype=m.dtype)
        torch.testing.assert_close(m @ m.mH, eye, atol=1e-12, rtol=0)
        torch.testing.assert_close(m, torch.tensor(ref), atol=1e-12, rtol=0)


@pytest.mark.parametrize("qubits", [(0,), (2,), (1, 3), (3, 0), (2, 0, 3)])
def test_apply_gate_equals_dense_matrix(qubits: tuple[int, ...]) -> None:
    n, batch = 4, 3
    d = 2 ** len(qubits)
    a = torch.randn(batch, d, d, dtype=torch.complex128)
    per_sample = torch.linalg.qr(a)[0]
    shared = per_sample[0]
    psi = torch.randn(batch, 2**n, dtype=torch.complex128)
    psi = psi / psi.norm(dim=1, keepdim=True)
    state = psi.view(batch, *([2] * n))
    got_shared = qf.apply_gate(state, shared, qubits).reshape(batch, -1)
    got_batch = qf.apply_gate(state, per_sample, qubits).reshape(batch, -1)
    for b in range(batch):
        want = dense_gate(shared, qubits, n) @ psi[b]
        torch.testing.assert_close(got_shared[b], want, atol=1e-12, rtol=0)
        want = dense_gate(per_sample[b], qubits, n) @ psi[b]
        torch.testing.assert_close(got_batch[b], want, atol=1e-12, rtol=0)
        torch.testing.assert_close(got_batch[b].norm(), torch.tensor(1.0, dtype=torch.float64))


def test_apply_gate_rejects_bad_arguments() -> None:
    state = qf.zero_state(2, 3)
    with pytest.raises(ValueError, match="distinct"):
        qf.apply_gate(state, qf.gate_matrix("cx"), (1, 1))
    with pytest.raises(ValueError, match=r"\[4, 4\]"):
        qf.apply_gate(state, qf.gate_matrix("h"), (0, 1))
    with pytest.raises(ValueError, match=r"within 0\.\.2"):
        qf.apply_gate(state, qf.gate_matrix("h"), 3)
    with pytest.raises(ValueError, match="unknown gate 'foo'"):
        qf.gate_matrix("foo", 0.1)
    with pytest.raises(TypeError, match="complex"):
        qf.apply_gate(torch.zeros(2, 2, 2), qf.gate_matrix("h"), 0)


def _random_spec(encoder: str, ansatz: str, n: int, entanglement: str = "ring"):
    cfg = CircuitConfig(
        qubits=n, encoder=encoder, ansatz=ansatz, layers=2, entanglement=entanglement
    )
    n_features = min(2**n, 5) if encoder == "amplitude" else min(n, 3)
    return build_circuit(cfg, n, n_features)


@pytest.mark.parametrize(
    ("encoder", "ansatz", "n"),
    [
        (e, a, n)
        for (e, a), n in zip(itertools.product(ENCODERS, ANSATZES), itertools.cycle([1, 2, 3, 4]))
    ],
)
def test_statevector_matches_qiskit(encoder: str, ansatz: str, n: int) -> None:
    spec = _random_spec(encoder, ansatz, n, "full" if n % 2 else "ring")
    x = torch.rand(3, spec.n_features, dtype=torch.float64) * math.pi
    w = torch.randn(spec.n_weights, dtype=torch.float64)
    psi128 = qf.run_statevector(spec, x, w, dtype=torch.complex128, fuse=2)
    psi64 = qf.run_statevector(spec, x.float(), w.float())
    for b in range(3):
        ref = torch.tensor(Statevector(spec_to_qiskit(spec, x[b].tolist(), w.tolist())).data)
        torch.testing.assert_close(psi128[b], ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(psi64[b], ref.to(torch.complex64), atol=1e-6, rtol=0)


def test_states_stay_normalised_and_readouts_in_range() -> None:
    for encoder, ansatz in itertools.product(ENCODERS, ANSATZES):
        spec = _random_spec(encoder, ansatz, 5)
        x = torch.randn(4, spec.n_features) * 3
        psi = qf.run_statevector(spec, x, torch.randn(spec.n_weights) * 3)
        probs = qf.probabilities(psi)
        torch.testing.assert_close(probs.sum(1), torch.ones(4), atol=1e-5, rtol=0)
        z = qf.expectation_z(probs, 5)
        assert z.abs().max() <= 1 + 1e-5


def test_parameter_shift_equals_autograd() -> None:
    for ansatz in ANSATZES:
        spec = _random_spec("reupload", ansatz, 3)
        x = torch.rand(2, spec.n_features, dtype=torch.float64) * 3
        w = torch.randn(spec.n_weights, dtype=torch.float64)

        def f(weights: torch.Tensor, spec=spec, x=x) -> torch.Tensor:
            psi = qf.run_statevector(spec, x, weights, dtype=torch.complex128)
            return qf.expectation_z(qf.probabilities(psi), spec.n_qubits)

        auto = torch.autograd.functional.jacobian(f, w)
        shift = qf.parameter_shift(f, w)
        torch.testing.assert_close(shift, auto, atol=1e-9, rtol=0)


def test_shot_estimates_unbiased_with_binomial_std() -> None:
    shots, reps = 100, 200
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    exact = qf.expectation_z(probs, 2)[0]
    g = torch.Generator().manual_seed(1234)
    estimates = qf.expectation_z(qf.sample_frequencies(probs.expand(reps, -1), shots, g), 2)
    want_std = torch.sqrt((1 - exact**2) / shots)
    std = estimates.std(0)
    assert torch.all((std / want_std - 1).abs() < 0.10), (std, want_std)
    bias = (estimates.mean(0) - exact).abs()
    assert torch.all(bias < 3 * want_std / math.sqrt(reps)), (bias, want_std)
    counts = qf.sample_frequencies(probs.expand(reps, -1), shots, g) * shots
    torch.testing.assert_close(counts, counts.round())
    assert torch.all(counts.sum(1) == shots)


def test_sampling_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shots=0"):
        qf.sample_frequencies(torch.tensor([[0.5, 0.5]]), 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        qf.sample_frequencies(torch.tensor([[1.5, -0.5]]), 10)
    with pytest.raises(ValueError, match="p01"):
        qf.apply_readout_error(torch.tensor([[0.5, 0.5]]), 1, 1.2, 0.0)


def test_readout_error_affine_in_z() -> None:
    spec = _random_spec("angle_y", "hardware_efficient", 3)
    psi = qf.run_statevector(spec, torch.rand(4, 3), torch.randn(spec.n_weights))
    probs = qf.probabilities(psi)
    p01, p10 = 0.03, 0.07
    noisy = qf.apply_readout_error(probs, 3, p01, p10)
    want = (1 - p01 - p10) * qf.expectation_z(probs, 3) + p10 - p01
    torch.testing.assert_close(qf.expectation_z(noisy, 3), want, atol=1e-6, rtol=0)
    torch.testing.assert_close(noisy.sum(1), torch.ones(4), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "kraus",
    [
        qf.depolarizing_kraus(0.3),
        qf.depolarizing_kraus(0.2, 2),
        qf.amplitude_damping_kraus(0.4),
        qf.phase_damping_kraus(0.25),
        qf.thermal_relaxation_kraus(50e-6, 70e-6, 10e-6),
    ],
)
def test_channels_trace_preserving(kraus: torch.Tensor) -> None:
    d = kraus.shape[-1]
    total = (kraus.mH @ kraus).sum(0)
    torch.testing.assert_close(total, torch.eye(d, dtype=kraus.dtype), atol=1e-12, rtol=0)


def test_depolarising_shrinks_bloch_vector() -> None:
    p = 0.3
    theta = torch.tensor([0.7, 2.0])
    psi = qf.run_statevector(
        build_circuit(CircuitConfig(qubits=1, layers=0), 1, 1), theta[:, None], torch.zeros(0)
    ).to(torch.complex128)
    rho = psi[:, :, None] * psi.conj()[:, None, :]
    out = qf.apply_channel(rho, qf.depolarizing_kraus(p), 0)
    z = qf.expectation_z(qf.density_probabilities(out), 1)[:, 0]
    torch.testing.assert_close(z, (1 - p) * torch.cos(theta).double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        torch.diagonal(out, dim1=1, dim2=2).sum(1).real, torch.ones(2, dtype=torch.float64)
    )


def test_thermal_relaxation_decay_rates() -> None:
    t1, t2, t = 100e-6, 80e-6, 30e-6
    plus = torch.full((1, 2, 2), 0.5, dtype=torch.complex128)
    out = qf.apply_channel(plus, qf.thermal_relaxation_kraus(t1, t2, t), 0)[0]
    assert math.isclose(out[0, 1].real, 0.5 * math.exp(-t / t2), rel_tol=1e-12)
    one = torch.tensor([[[0, 0], [0, 1]]], dtype=torch.complex128)
    out = qf.apply_channel(one, qf.thermal_relaxation_kraus(t1, t2, t), 0)[0]
    assert math.isclose(out[1, 1].real, math.exp(-t / t1), rel_tol=1e-12)


def _noise() -> qf.GateNoise:
    return qf.build_noise(
        depolarizing_1q=0.02,
        depolarizing_2q=0.05,
        amplitude_damping=0.01,
        phase_damping=0.02,
        t1=50e-6,
        t2=60e-6,
        single_qubit_gate_time=100e-9,
        two_qubit_gate_time=400e-9,
    )


def test_amplitude_preparation_gates_prepare_the_normalised_input() -> None:
    """The RY/CNOT state preparation physnn simulates with noise and exports to qiskit
    prepares ``x / |x|`` (qiskit ``Statevector`` of the exported circuit)."""
    from qiskit.quantum_info import Statevector

    for n_features, n in [(3, 2), (11, 4), (64, 6)]:
        config = CircuitConfig(qubits=n, encoder="amplitude", layers=0)
        spec = build_circuit(config, n, n_features)
        x = torch.randn(n_features, dtype=torch.float64)
        qc = spec_to_qiskit(spec, x.tolist(), [])
        ops = qc.count_ops()
        assert ops["ry"] == 2**n - 1 and ops.get("cx", 0) == 2**n - 2
        want = torch.nn.functional.pad(x / x.norm(), (0, 2**n - n_features))
        got = torch.tensor(Statevector(qc).data)
        torch.testing.assert_close(got, want.to(got.dtype), atol=1e-12, rtol=0)


def test_density_matrix_matches_qiskit_aer() -> None:
    aer = pytest.importorskip("qiskit_aer")
    from qiskit import transpile

    from physnn.quantum import NoiseConfig, QuantumConfig
    from physnn.quantum.config import HardwareConfig
    from physnn.quantum.qiskit import aer_noise_model

    config = QuantumConfig(
        noise=NoiseConfig(
            depolarizing_1q=0.02,
            depolarizing_2q=0.05,
            amplitude_damping=0.01,
            phase_damping=0.02,
            t1=50e-6,
            t2=60e-6,
        ),
        hardware=HardwareConfig(single_qubit_gate_time=100e-9, two_qubit_gate_time=400e-9),
    )
    sim = aer.AerSimulator(method="density_matrix", noise_model=aer_noise_model(config))
    for encoder, ansatz, n in [
        ("angle_y", "hardware_efficient", 3),
        ("iqp", "strongly_entangling", 3),
        ("amplitude", "efficient_su2", 4),
    ]:
        spec = _random_spec(encoder, ansatz, n)
        x = torch.rand(2, spec.n_features, dtype=torch.float64) * 3
        w = torch.randn(spec.n_weights, dtype=torch.float64)
        probs = qf.run_density(spec, x, w, _noise(), dtype=torch.complex128)
        torch.testing.assert_close(probs.sum(1), torch.ones(2, dtype=torch.float64))
        for b in range(2):
            # amplitude encoding is exported as its RY/CNOT preparation, noisy in both
            qc = spec_to_qiskit(spec, x[b].tolist(), w.tolist())
            qc.save_density_matrix()
            rho = sim.run(transpile(qc, sim, optimization_level=0)).result().data()
            ref = torch.tensor(rho["density_matrix"].probabilities())
            torch.testing.assert_close(probs[b], ref, atol=1e-9, rtol=0)


def test_trajectories_average_to_density_matrix() -> None:
    spec = _random_spec("angle_y", "hardware_efficient", 3)
    x = torch.rand(1, 3, dtype=torch.float64) * 3
    w = torch.randn(spec.n_weights, dtype=torch.float64)
    exact = qf.run_density(spec, x, w, _noise(), dtype=torch.complex128)[0]
    reps = 4000
    g = torch.Generator().manual_seed(5)
    psi = qf.run_trajectories(
        spec, x.expand(reps, -1), w, _noise(), dtype=torch.complex128, generator=g
    )
    probs = qf.probabilities(psi)
    torch.testing.assert_close(probs.sum(1), torch.ones(reps, dtype=torch.float64))
    stderr = probs.std(0) / math.sqrt(reps)
    assert torch.all((probs.mean(0) - exact).abs() < 4 * stderr + 1e-9)


def test_memory_check_says_what_is_needed() -> None:
    one_copy = 256 * 2**30 * 8  # 256 statevectors of 2^30 complex64 amplitudes [byte]
    need = re.escape(f"needs about {3 * one_copy / 2**30:.3g} GiB")
    with pytest.raises(qf.SimulationMemoryError, match=rf"30 qubits with batch 256 .*{need}"):
        qf.check_memory(30, 256, 2**33)
    # with autograd, each recorded step keeps one more copy; the fix names the largest batch
    density_copy = 64 * 4**12 * 8  # 64 density matrices of 12 qubits, complex64 [byte]
    limit = 2**33
    largest = limit // (density_copy // 64 * (3 + 10))
    with pytest.raises(MemoryError, match=rf"a batch of at most {largest}, trajectories instead"):
        qf.check_memory(12, 64, limit, density=True, steps=10)
    assert qf.check_memory(10, 256, 2**33) == 3 * 256 * 2**10 * 8


@pytest.mark.parametrize("q0", [0, 1, 2])
def test_fused_chunk_and_permutation_backward_pass_gradcheck(q0: int) -> None:
    from physnn.quantum.sim.kernels import _ApplyChunk, _permute

    flat = torch.randn(2, 16, dtype=torch.complex128, requires_grad=True)
    kron = torch.randn(4, 4, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, k: _ApplyChunk.apply(f, k, q0), (flat, kron))
    gates = [("cx", 0, 1), ("cz", 2, 3), ("cx", 3, 0)]
    assert torch.autograd.gradcheck(lambda f: _permute(f, 4, gates), (flat,))


@pytest.mark.parametrize("ansatz", ["real_amplitudes", "efficient_su2"])
def test_ansatz_layouts_equal_qiskit_library(ansatz: str) -> None:
    import dataclasses

    from qiskit.circuit import library

    n, reps = 4, 2
    cfg = CircuitConfig(qubits=n, ansatz=ansatz, layers=reps, entanglement="reverse_linear")
    spec = build_circuit(cfg, n, 1)
    ops = tuple(op for op in spec.ops if getattr(op, "source", "") != "feature")
    ansatz_only = dataclasses.replace(spec, ops=ops)
    w = torch.randn(spec.n_weights, dtype=torch.float64)
    ours = qf.run_statevector(
        ansatz_only, torch.zeros(1, 1, dtype=torch.float64), w, dtype=torch.complex128
    )[0]
    qc = getattr(library, ansatz)(n, reps=reps, entanglement="reverse_linear")
    assert qc.num_parameters == spec.n_weights
    ref = Statevector(qc.assign_parameters(w.tolist())).data
    torch.testing.assert_close(ours, torch.tensor(ref), atol=1e-12, rtol=0)


def test_iqp_encoder_equals_qiskit_zz_feature_map() -> None:
    from qiskit.circuit.library import zz_feature_map

    n = 3
    spec = build_circuit(CircuitConfig(qubits=n, encoder="iqp", layers=0), n, n)
    x = torch.rand(2, n, dtype=torch.float64) * math.pi
    ours = qf.run_statevector(spec, x, torch.zeros(0, dtype=torch.float64), dtype=torch.complex128)
    qc = zz_feature_map(n, reps=2, entanglement="full")
    for b in range(2):
        ref = Statevector(qc.assign_parameters(x[b].tolist())).data
        torch.testing.assert_close(ours[b], torch.tensor(ref), atol=1e-12, rtol=0)


def test_trajectories_with_data_gates_average_to_density_matrix() -> None:
    spec = _random_spec("reupload", "strongly_entangling", 2)
    x = torch.rand(2, spec.n_features, dtype=torch.float64) * 3
    w = torch.randn(spec.n_weights, dtype=torch.float64)
    exact = qf.run_density(spec, x, w, _noise(), dtype=torch.complex128)
    reps = 3000
    g = torch.Generator().manual_seed(7)
    xs = x.repeat_interleave(reps, 0)
    probs = qf.probabilities(
        qf.run_trajectories(spec, xs, w, _noise(), dtype=torch.complex128, generator=g)
    ).view(2, reps, -1)
    stderr = probs.std(1) / math.sqrt(reps)
    assert torch.all((probs.mean(1) - exact).abs() < 4 * stderr + 1e-9)


def test_readout_error_convention_matches_qiskit_aer() -> None:
    aer = pytest.importorskip("qiskit_aer")
    from qiskit import QuantumCircuit

    from physnn.quantum import MeasurementConfig, QuantumConfig
    from physnn.quantum.qiskit import aer_noise_model

    p01, p10, theta, shots = 0.03, 0.12, 1.1, 200_000
    config = QuantumConfig(measurement=MeasurementConfig(p01=p01, p10=p10))
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    qc.measure_all()
    sim = aer.AerSimulator(noise_model=aer_noise_model(config), seed_simulator=3)
    counts = sim.run(qc, shots=shots).result().get_counts()
    read_one = counts.get("1", 0) / shots
    exact = torch.tensor([[math.cos(theta / 2) ** 2, math.sin(theta / 2) ** 2]])
    want = float(qf.apply_readout_error(exact, 1, p01, p10)[0, 1])
    sigma = math.sqrt(want * (1 - want) / shots)
    assert abs(want - float(exact[0, 1])) > 10 * sigma  # the error is resolved by the shots
    assert abs(read_one - want) < 5 * sigma
