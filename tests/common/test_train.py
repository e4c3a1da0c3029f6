"""The shared training loop."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from physnn import convert
from physnn.common.data import load_digits
from physnn.common.train import evaluate, fit
from physnn.digital import DigitalLinear


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_digits_mlp_reaches_95_percent() -> None:
    xtr, ytr, xte, yte = load_digits().flat()
    model = mlp()
    history = fit(
        model, (xtr, ytr), test=(xte, yte), epochs=20, lr=5e-3, batch_size=32, progress=False
    )
    assert history.loss[-1] < history.loss[0]
    assert len(history.test_accuracy) == 20
    assert evaluate(model, xte, yte) >= 0.95


def test_seed_makes_training_reproducible() -> None:
    xtr, ytr, _, _ = load_digits().subset(200, 10).flat()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = mlp()
        fit(model, (xtr, ytr), epochs=2, seed=3, progress=False)
        runs.append(model[0].weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


class CountingLinear(DigitalLinear):
    steps = 0

    def after_step(self) -> None:
        CountingLinear.steps += 1


def test_after_step_hook_runs_once_per_optimizer_step() -> None:
    xtr, ytr, _, _ = load_digits().subset(100, 10).flat()
    model = convert(mlp(), "digital:fp32")
    model[0] = CountingLinear.from_torch(model[0])
    CountingLinear.steps = 0
    fit(model, (xtr, ytr), epochs=2, batch_size=30, progress=False)
    assert CountingLinear.steps == 2 * 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr=-1.0"),
        ({"classical_lr": 0.0}, "classical_lr=0.0"),
        ({"optimizer": "lbfgs"}, "choose one of adam"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    x, y = torch.rand(8, 64), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match=match):
        fit(mlp(), (x, y), progress=False, **kwargs)  # type: ignore[arg-type]


def test_bad_data() -> None:
    with pytest.raises(ValueError, match="8 samples but y has 7"):
        fit(mlp(), (torch.rand(8, 64), torch.zeros(7, dtype=torch.long)), progress=False)
    x = torch.rand(8, 64)
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit(mlp(), (x, torch.zeros(8, dtype=torch.long)), progress=False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(nn.ReLU(), (torch.rand(8, 64), torch.zeros(8, dtype=torch.long)), progress=False)


def test_unseeded_fit_leaves_global_rng_alone_and_chips_differ() -> None:
    """Issue 14 item 2: trials that convert without a seed get independent chips."""
    xtr, ytr, _, _ = load_digits().subset(64, 10).flat()
    torch.manual_seed(0)
    fp = mlp()
    chips = []
    for _ in range(2):
        trained = copy.deepcopy(fp)
        fit(trained, (xtr, ytr), epochs=1, progress=False)
        chip = convert(trained, "pim:pcm")  # no seed: programming noise from the global RNG
        chips.append(torch.cat([b.flatten() for b in chip.buffers() if b.is_floating_point()]))
    assert not torch.equal(chips[0], chips[1])


def test_unseeded_runs_follow_manual_seed() -> None:
    xtr, ytr, _, _ = load_digits().subset(64, 10).flat()
    runs = []
    for _ in range(2):
        torch.manual_seed(4)
        model = mlp()
        fit(model, (xtr, ytr), epochs=2, progress=False)
        runs.append(model[0].weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_history_counts_optimizer_steps_and_calls_on_epoch() -> None:
    xtr, ytr, _, _ = load_digits().subset(100, 10).flat()
    seen: list[tuple[int, int]] = []
    history = fit(
        mlp(),
        (xtr, ytr),
        epochs=3,
        batch_size=30,
        progress=False,
        on_epoch=lambda epoch, h: seen.append((epoch, h.steps)),
    )
    assert history.steps == 3 * 4  # ceil(100 / 30) batches per epoch
    assert seen == [(1, 4), (2, 8), (3, 12)]


def _trained(out: Path, launcher: list[str]) -> dict[str, torch.Tensor]:
    worker = Path(__file__).with_name("ddp_fit_worker.py")
    run = subprocess.run(
        [*launcher, str(worker), str(out)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return {f"rank{r}": torch.load(out / f"rank{r}.pt") for r in range(len(list(out.iterdir())))}


@pytest.mark.slow
def test_fit_under_torchrun_ddp_matches_one_process(tmp_path: Path) -> None:
    """Issue 16 item 3: DDP (gloo, 2 ranks) on a converted PIM model equals one process."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    (tmp_path / "ddp").mkdir()
    (tmp_path / "single").mkdir()
    ddp = _trained(tmp_path / "ddp", [torchrun, "--standalone", "--nproc_per_node=2"])
    single = _trained(tmp_path / "single", [sys.executable])["rank0"]
    assert sorted(ddp) == ["rank0", "rank1"]
    assert any(k.endswith("weight") for k in single)
    for key, value in single.items():
        assert torch.equal(ddp["rank0"][key], ddp["rank1"][key]), key
        torch.testing.assert_close(ddp["rank0"][key], value, rtol=0, atol=1e-6)


def test_fit_gives_classical_parameters_of_physical_layers_their_learning_rate() -> None:
    """One plain SGD step: the gate angles move by ``lr * grad``, the QuantumLinear's
    classical pre/post maps, scale and bias and the plain torch layer by their own rates."""
    from physnn.quantum import CircuitConfig, QuantumConfig, QuantumLinear

    torch.manual_seed(0)
    quantum = QuantumLinear(10, 6, config=QuantumConfig(circuit=CircuitConfig(qubits=3)))
    model = nn.Sequential(quantum, nn.Linear(6, 3))
    x, y = torch.rand(16, 10), torch.randint(0, 3, (16,))
    reference = copy.deepcopy(model)
    torch.nn.functional.cross_entropy(reference(x), y).backward()
    lr, classical_lr = 0.01, 0.3
    fit(
        model,
        (x, y),
        epochs=1,
        lr=lr,
        classical_lr=classical_lr,
        batch_size=16,
        optimizer="sgd",
        progress=False,
    )
    assert quantum.pre is not None and quantum.post is not None
    for (name, after), before in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert before.grad is not None
        rate = lr if name in ("0.weight", "1.weight", "1.bias") else classical_lr
        torch.testing.assert_close(after, before - rate * before.grad, atol=1e-6, rtol=0)


def test_physical_layers_default_to_one_parameter_group() -> None:
    layer = DigitalLinear(4, 2)
    (group,) = layer.param_groups(0.1, classical_lr=0.5)
    assert group["lr"] == 0.1
    assert {id(p) for p in group["params"]} == {id(p) for p in layer.parameters()}
