"""The ``quantum`` backend object registered with physnn (loaded lazily by name)."""

from __future__ import annotations

import copy

from torch import nn

from ..common.backend import Backend, Baseline, StressTest
from .ablation import without_circuit
from .config import QuantumConfig
from .layers import QuantumCircuitLayer, QuantumLinear
from .presets import registry

__all__ = ["BACKEND", "with_shots"]


def with_shots(model: nn.Module, shots: float) -> nn.Module:
    """A copy of ``model`` whose quantum layers measure ``shots`` times per circuit."""
    count = int(shots)
    if count != shots or count < 1:
        raise ValueError(f"shots={shots!r} must be a whole number >= 1")
    out = copy.deepcopy(model)
    for module in out.modules():
        if isinstance(module, QuantumCircuitLayer):
            cfg = module.config
            module.reconfigure(cfg.replace(measurement=cfg.measurement.replace(shots=count)))
            module.streams.reset()
    return out


BACKEND = Backend(
    name="quantum",
    config_type=QuantumConfig,
    layers={nn.Linear: QuantumLinear},
    presets=registry,
    notes=(
        "QuantumLinear trains its own gate angles; widths above the qubit budget use "
        "declared classical projections (dressed circuit) or amplitude encoding/probability "
        "readout "
        "(QuantumLinear.parameter_counts() separates classical from quantum parameters); "
        "energy = latency x assumed system power"
    ),
    default_preset="heron",
    stress=StressTest(
        name="shots",
        unit="",
        values=(16, 64, 256, 1024, 4096),
        apply=with_shots,
        log_scale=True,
    ),
    # the dressed default (64-32-10 digits MLP, ideal preset, batch 64, 3 epochs): 70 % test
    # accuracy at 3e-2, 61 % at 5e-2, 62 % at 1e-2 (benchmarks/quantum_digits.py)
    default_lr=3e-2,
    baseline=Baseline(
        name="tanh baseline",
        description=(
            "the same dressed model with every circuit replaced by tanh (Bowles, Ahmed & "
            "Schuld 2024, arXiv:2403.07059): what the classical pre/post maps reach alone, "
            "trained with the same budget"
        ),
        apply=without_circuit,
    ),
)
