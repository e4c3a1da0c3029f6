"""A hybrid quantum classifier on the default digits, with shots and device noise, against a
classical baseline of similar parameter count (Bowles, Ahmed & Schuld, arXiv:2403.07059).

Data reduction (stated with the result): the 64 pixels are projected on their first 8
principal components (scikit-learn PCA fitted on the training split) and min-max scaled to
[0, 1] with training-split ranges; the circuit angle-encodes them as RY(pi x) on 8 of 10
qubits, runs 3 hardware-efficient layers and reads <Z> on all 10 qubits, followed by a
classical per-class scale and bias.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

import physnn
from physnn.common.data import load_digits
from physnn.common.train import evaluate, fit
from physnn.quantum import CircuitConfig, QuantumLinear, presets
from physnn.quantum.backend import with_shots


def _reduced_digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x_train, y_train, x_test, y_test = load_digits().flat()
    pca = PCA(8, random_state=0).fit(x_train.numpy())
    z_train = torch.tensor(pca.transform(x_train.numpy()), dtype=torch.float32)
    z_test = torch.tensor(pca.transform(x_test.numpy()), dtype=torch.float32)
    low, high = z_train.min(0).values, z_train.max(0).values
    return (
        (z_train - low) / (high - low),
        y_train,
        ((z_test - low) / (high - low)).clamp(0, 1),
        y_test,
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Small states run fastest on one thread (and leave the other core to xdist)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_hybrid_classifier_on_digits_with_shots_and_noise() -> None:
    x_train, y_train, x_test, y_test = _reduced_digits()
    circuit = CircuitConfig(qubits=10, encoder="angle_y", layers=3, entanglement="ring")
    model = nn.Sequential(
        QuantumLinear(8, 10, config=presets.get("ideal", seed=0, circuit=circuit))
    )
    counts = model[0].parameter_counts()
    assert counts == {"quantum": 60, "classical": 20}
    fit(model, (x_train, y_train), epochs=10, lr=0.05, progress=False, seed=0)
    exact = evaluate(model, x_test, y_test)

    shots = evaluate(with_shots(model, 256), x_test, y_test)
    noisy_model = nn.Sequential(
        QuantumLinear(8, 10, config=presets.get("heron", seed=0, circuit=circuit))
    )
    noisy_model.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.endswith("_extra_state")},
        strict=False,
    )
    noisy = evaluate(noisy_model, x_test, y_test)

    baseline = nn.Sequential(nn.Linear(8, 10))  # 90 classical parameters
    fit(baseline, (x_train, y_train), epochs=10, lr=0.05, progress=False, seed=0)
    classical = evaluate(baseline, x_test, y_test)
    print(
        f"\ndigits, PCA-8: quantum exact {exact:.3f}, 256 shots {shots:.3f}, "
        f"heron noise + 1024 shots {noisy:.3f}; classical linear (90 params) {classical:.3f}"
    )
    assert exact > 0.45  # chance is 0.10
    assert shots > exact - 0.10
    assert noisy > exact - 0.15
    assert classical > 0.7
    with physnn.ideal():
        assert evaluate(noisy_model, x_test, y_test) == exact
