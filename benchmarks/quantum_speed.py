"""Speed of physnn.quantum against a minimal pure-torch statevector and installed anchors.

Workload (ANCHORS.md, quantum): angle encoding RY(x_i) of n features on n qubits, 3 layers
of RY/RZ on every qubit + a CNOT ring, <Z_i> on every qubit, batch 256, one CPU thread;
"forward" is a no-grad forward pass, "train" is forward + backward to the angles.

Every number is a ratio to the reference measured in the same process (the minimum of the
repeats, which is the least disturbed by other load on the machine):
the reference below fuses each qubit's RZ*RY of a layer into one 2x2 matrix applied by an
einsum on its tensor axis, and applies each CNOT as a basis-state gather (complex64).

Anchors are imported when available and skipped otherwise; install them only in the
benchmark's own environment (the CPU torch first, so that pip keeps it), e.g.::

    python -m venv benchmarks/.venv-quantum
    benchmarks/.venv-quantum/bin/pip install torch==2.13.0
    benchmarks/.venv-quantum/bin/pip install pennylane pennylane-lightning
    benchmarks/.venv-quantum/bin/pip install --no-deps -e .
    benchmarks/.venv-quantum/bin/python benchmarks/quantum_speed.py

Each PennyLane model gets the physnn layer's angles and must reproduce the reference's
outputs before it is timed.

TorchQuantum pins qiskit < 1 and needs its own environment
(``benchmarks/.venv-torchquantum`` with ``pip install torchquantum "qiskit-ibm-runtime<0.21"
"qiskit-aer<0.14" "setuptools<70"`` and the same ``.pth`` line; it pulls its own torch).

Usage: ``python benchmarks/quantum_speed.py [--sizes 4 8 12] [--batch 256] [--repeats 7]``;
the large rows against PennyLane ``lightning.qubit`` adjoint (and physnn's adjoint
differentiation, ``SimulationConfig.gradient="adjoint"``) are
``--sizes 16 --batch 8 --repeats 3`` and ``--sizes 20 --batch 2 --repeats 3`` (4.0 GB peak
for the whole process);
``--memory`` adds the peak resident-memory growth of one training step (fresh subprocess).
"""

from __future__ import annotations

import argparse
import functools
import math
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from physnn.quantum import QuantumCircuitLayer

LAYERS = 3


# -- the reference ---------------------------------------------------------------------------


def _ry(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    return torch.complex(torch.stack([c, -s, s, c], -1), torch.zeros(*theta.shape, 4)).unflatten(
        -1, (2, 2)
    )


def _rz(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    z = torch.zeros_like(theta)
    return torch.complex(torch.stack([c, z, z, c], -1), torch.stack([-s, z, z, s], -1)).unflatten(
        -1, (2, 2)
    )


def _cnot_index(n: int, control: int, target: int) -> torch.Tensor:
    idx = torch.arange(2**n)
    return idx ^ (((idx >> control) & 1) << target)


class Reference(torch.nn.Module):
    """Minimal batched statevector: per-qubit fused RZ*RY applied by einsum on a reshaped
    view, CNOT by gather (qiskit order)."""

    def __init__(self, n: int, weights: torch.Tensor) -> None:
        super().__init__()
        self.n = n
        self.weight = torch.nn.Parameter(weights.detach().clone().view(LAYERS, n, 2))
        pairs = [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(0, 1)]
        self.cnots = [_cnot_index(n, c, t) for c, t in pairs]
        idx = torch.arange(2**n)
        self.signs = (1 - 2 * ((idx[:, None] >> torch.arange(n)) & 1)).float()

    def _gate(self, flat: torch.Tensor, u: torch.Tensor, q: int) -> torch.Tensor:
        view = flat.view(flat.shape[0], 2 ** (self.n - 1 - q), 2, 2**q)
        spec = "ij,bljr->blir" if u.dim() == 2 else "bij,bljr->blir"
        return torch.einsum(spec, u, view).reshape(flat.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n = x.shape
        flat = torch.zeros(batch, 2**n, dtype=torch.complex64)
        flat[:, 0] = 1
        for q in range(n):
            flat = self._gate(flat, _ry(x[:, q]), q)
        for layer in range(LAYERS):
            for q in range(n):
                u = _rz(self.weight[layer, q, 1]) @ _ry(self.weight[layer, q, 0])
                flat = self._gate(flat, u, q)
            for idx in self.cnots:
                flat = flat.index_select(1, idx)
        probs = flat.real.square() + flat.imag.square()
        return probs @ self.signs


# -- the models ------------------------------------------------------------------------------


def physnn_model(n: int, gradient: str = "auto") -> QuantumCircuitLayer:
    from physnn.quantum import CircuitConfig, QuantumCircuitLayer, QuantumConfig
    from physnn.quantum.config import SimulationConfig

    circuit = CircuitConfig(
        qubits=n,
        encoder="angle_y",
        ansatz="hardware_efficient",
        layers=LAYERS,
        entanglement="ring",
        input_scale=1.0,
    )
    simulation = SimulationConfig(gradient=gradient)
    return QuantumCircuitLayer(n, n, config=QuantumConfig(circuit=circuit, simulation=simulation))


def pennylane_model(
    n: int, weights: torch.Tensor, device: str = "default.qubit", diff_method: str = "backprop"
) -> torch.nn.Module | None:
    """The workload as a PennyLane ``TorchLayer`` with the angles ``weights`` (physnn's
    order: per layer, per qubit RY then RZ)."""
    try:
        import pennylane as qml

        dev = qml.device(device, wires=n)
    except Exception:  # not installed, or the lightning plugin missing
        return None

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def circuit(inputs: torch.Tensor, weights: torch.Tensor) -> list:
        qml.AngleEmbedding(inputs, wires=range(n), rotation="Y")
        for layer in range(LAYERS):
            for q in range(n):
                qml.RY(weights[layer, q, 0], wires=q)
                qml.RZ(weights[layer, q, 1], wires=q)
            for q in range(n if n > 2 else 1):
                qml.CNOT(wires=[q, (q + 1) % n])
        return [qml.expval(qml.PauliZ(q)) for q in range(n)]

    init = {"weights": weights.detach().reshape(LAYERS, n, 2).clone()}
    return qml.qnn.TorchLayer(circuit, {"weights": (LAYERS, n, 2)}, init_method=init)


def torchquantum_model(n: int) -> torch.nn.Module | None:
    try:
        import torchquantum as tq
        import torchquantum.functional as tqf
    except ImportError:
        return None

    class Model(tq.QuantumModule):
        def __init__(self) -> None:
            super().__init__()
            funcs = [{"input_idx": [q], "func": "ry", "wires": [q]} for q in range(n)]
            self.encoder = tq.GeneralEncoder(funcs)
            self.ry = tq.QuantumModuleList(
                [tq.RY(has_params=True, trainable=True) for _ in range(LAYERS * n)]
            )
            self.rz = tq.QuantumModuleList(
                [tq.RZ(has_params=True, trainable=True) for _ in range(LAYERS * n)]
            )
            self.measure = tq.MeasureAll(tq.PauliZ)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            qdev = tq.QuantumDevice(n_wires=n, bsz=x.shape[0], device=x.device)
            self.encoder(qdev, x)
            for layer in range(LAYERS):
                for q in range(n):
                    self.ry[layer * n + q](qdev, wires=q)
                    self.rz[layer * n + q](qdev, wires=q)
                for q in range(n if n > 2 else 1):
                    tqf.cnot(qdev, wires=[q, (q + 1) % n])
            return self.measure(qdev)

    return Model()


def qiskit_ml_model(n: int) -> torch.nn.Module | None:
    try:
        from qiskit import QuantumCircuit
        from qiskit.circuit import ParameterVector
        from qiskit.quantum_info import SparsePauliOp
        from qiskit_machine_learning.connectors import TorchConnector
        from qiskit_machine_learning.neural_networks import EstimatorQNN
    except ImportError:
        return None
    x = ParameterVector("x", n)
    w = ParameterVector("w", LAYERS * n * 2)
    qc = QuantumCircuit(n)
    for q in range(n):
        qc.ry(x[q], q)
    for layer in range(LAYERS):
        for q in range(n):
            qc.ry(w[(layer * n + q) * 2], q)
            qc.rz(w[(layer * n + q) * 2 + 1], q)
        for q in range(n if n > 2 else 1):
            qc.cx(q, (q + 1) % n)
    observables = [SparsePauliOp("I" * (n - 1 - q) + "Z" + "I" * q) for q in range(n)]
    qnn = EstimatorQNN(
        circuit=qc, observables=observables, input_params=list(x), weight_params=list(w)
    )
    return TorchConnector(qnn)


# -- timing ----------------------------------------------------------------------------------


def _min_time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _timings(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> tuple[float, float]:
    def forward() -> None:
        with torch.no_grad():
            model(x)

    def train() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    return _min_time(forward, repeats), _min_time(train, repeats)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(kind: str, n: int, batch: int) -> None:
    """Peak resident memory growth [byte] of one training step (Linux: VmHWM reset)."""
    torch.set_num_threads(1)
    x = torch.rand(batch, n)
    model = physnn_model(n) if kind == "physnn" else Reference(n, torch.rand(LAYERS * n * 2))
    model(x[:2]).sum().backward()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    model(x).sum().backward()
    print((_status_kib("VmHWM") - base) * 1024)


def _peak_memory(kind: str, n: int, batch: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, str(n), str(batch)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[4, 8, 12], help="qubit counts, e.g. 16 20"
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument(
        "--qiskit-ml-max", type=int, default=4, help="largest n for the slow qiskit-ml anchor"
    )
    parser.add_argument(
        "--backprop-max",
        type=int,
        default=16,
        help="largest n for PennyLane default.qubit backprop (n = 20, batch 8 took > 17 GB)",
    )
    parser.add_argument("--memory-child", nargs=3, metavar=("KIND", "N", "BATCH"))
    args = parser.parse_args()
    if args.memory_child:
        kind, n, batch = args.memory_child
        _memory_child(kind, int(n), int(batch))
        return
    torch.set_num_threads(args.threads)
    print(
        f"quantum speed: batch {args.batch}, {args.threads} thread(s), min of {args.repeats}; "
        "ratio = time / reference time (same process); < 1 is faster than the reference"
    )
    header = (
        f"{'n':>3} {'implementation':<34} {'forward':>9} {'train':>9} {'fwd x':>7} {'train x':>8}"
    )
    print(header)
    for n in args.sizes:
        torch.manual_seed(0)
        x = torch.rand(args.batch, n) * math.pi
        phys = physnn_model(n)
        ref = Reference(n, phys.weight)
        with torch.no_grad():
            err = (phys(x) - ref(x)).abs().max().item()
        if err > 1e-5:
            raise AssertionError(f"physnn and the reference disagree by {err:.2e} at n={n}")
        ref_f, ref_t = _timings(ref, x, args.repeats)
        rows = [("reference (pure torch)", ref_f, ref_t, 1.0, 1.0)]
        f, t = _timings(phys, x, args.repeats)
        rows.append(("physnn QuantumCircuitLayer", f, t, f / ref_f, t / ref_t))
        adjoint = physnn_model(n, "adjoint")
        with torch.no_grad():
            adjoint.weight.copy_(phys.weight)
        f, t = _timings(adjoint, x, args.repeats)
        rows.append(("physnn, adjoint gradient", f, t, f / ref_f, t / ref_t))
        anchors: list[tuple[str, Callable[[int], torch.nn.Module | None], int]] = [
            ("TorchQuantum", torchquantum_model, args.batch)
        ]
        if n <= args.backprop_max:
            anchors.append(
                (
                    "PennyLane default.qubit backprop",
                    functools.partial(pennylane_model, weights=phys.weight),
                    args.batch,
                )
            )
        anchors += [
            (
                "PennyLane lightning.qubit adjoint",
                functools.partial(
                    pennylane_model,
                    weights=phys.weight,
                    device="lightning.qubit",
                    diff_method="adjoint",
                ),
                args.batch,
            ),
        ]
        if n <= args.qiskit_ml_max:
            anchors.append(("qiskit-ml EstimatorQNN (batch 16)", qiskit_ml_model, 16))
        for label, build, batch in anchors:
            model = build(n)
            if model is None:
                rows.append((f"{label}: not installed", math.nan, math.nan, math.nan, math.nan))
                continue
            xb = x[:batch]
            if label.startswith("PennyLane"):
                with torch.no_grad():
                    err = (model(xb).to(torch.float32) - ref(xb)).abs().max().item()
                if err > 1e-4:
                    raise AssertionError(f"{label} and the reference disagree by {err:.2e}")
            bf, bt = (ref_f, ref_t) if batch == args.batch else _timings(ref, xb, args.repeats)
            f, t = _timings(model, xb, max(1, args.repeats // 3))
            rows.append((label, f, t, f / bf, t / bt))
        for label, f, t, rf, rt in rows:
            print(f"{n:>3} {label:<34} {f * 1e3:>7.2f}ms {t * 1e3:>7.2f}ms {rf:>6.2f}x {rt:>7.2f}x")
        if args.memory:
            for kind in ("reference", "physnn"):
                peak = _peak_memory(kind, n, args.batch)
                print(
                    f"{n:>3} peak memory growth of one train step, {kind}: {peak / 2**20:.0f} MiB"
                )


if __name__ == "__main__":
    main()
