"""The shared backend contract, for every PIM preset."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

import physnn
from physnn.common.testing import check_backend
from physnn.pim import PIMLinear


def test_check_backend_every_preset() -> None:
    check_backend("pim")


def test_import_is_cheap_and_free_of_qiskit() -> None:
    code = (
        "import sys, physnn.pim; "
        "assert 'qiskit' not in sys.modules; "
        "assert 'physnn.optical' not in sys.modules; "
        "assert 'physnn.quantum' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stress_sweep_drifts_every_crossbar() -> None:
    backend = physnn.get_backend("pim")
    assert backend.default_preset == "pcm"
    stress = backend.stress
    assert stress is not None and stress.unit == "s" and stress.log_scale
    torch.manual_seed(0)
    model = physnn.convert(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), "pim:pcm")
    x = torch.rand(4, 6)
    outputs = []
    for t in stress.values:
        stressed = stress.apply(model, t)
        layers = [m for m in stressed.modules() if isinstance(m, PIMLinear)]
        assert [float(m.drift_time) for m in layers] == [t, t]
        stressed.eval()
        with torch.no_grad(), physnn.ideal():
            outputs.append(stressed(x))
    # drift changes the chip, not the weights: the ideal outputs stay the same
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0])
