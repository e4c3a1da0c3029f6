"""The one training and evaluation loop shared by scripts, notebooks and ``physnn compare``.

Physical layers need no special casing: they inject their own training noise in
``train()`` mode, and :func:`fit` calls every layer's ``after_step()`` hook (weight clipping,
remapping) after each optimiser step.

Randomness: :func:`fit` shuffles with its own ``torch.Generator`` and leaves torch's global
generator alone unless a ``seed`` is passed, so two models converted and trained without a
seed really are two independent draws.

Data parallelism: under ``torchrun`` with an initialised process group and the model wrapped
in :class:`~torch.nn.parallel.DistributedDataParallel`, :func:`fit` runs unchanged. Every rank
draws the same permutation and takes its interleaved share of each global batch (what
:class:`~torch.utils.data.DistributedSampler` does), and each rank's loss is weighted so that
the averaged gradient equals the gradient of the whole global batch: ``batch_size`` is the
global batch and the result equals the one-process run up to float summation order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .layer import PhysicalModule

__all__ = ["History", "evaluate", "fit", "predict"]

_OPTIMIZERS: dict[str, Any] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


@dataclasses.dataclass
class History:
    """Per-epoch training record returned by :func:`fit`."""

    loss: list[float] = dataclasses.field(default_factory=list)
    train_accuracy: list[float] = dataclasses.field(default_factory=list)
    test_accuracy: list[float] = dataclasses.field(default_factory=list)
    steps: int = 0
    """Optimiser steps taken (the training budget, comparable across models)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_data(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a pair of tensors (x, y)")
    if len(x) != len(y):
        raise ValueError(f"{name}: x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError(f"{name}: x contains NaN or inf")


def predict(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 512, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode, batched, without gradients (on CPU)."""
    model.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            outs.append(model(x[start : start + batch_size].to(device)).cpu())
    return torch.cat(outs)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> float:
    """Classification accuracy of ``model`` on ``(x, y)``, in [0, 1]."""
    _check_data("evaluation data", x, y)
    logits = predict(model, x, batch_size=batch_size, device=device)
    return float((logits.argmax(-1) == y).float().mean())


def _param_groups(model: nn.Module, lr: float, classical_lr: float | None) -> list[dict[str, Any]]:
    """Trainable parameters in optimizer groups: each outermost physical layer's own
    (:meth:`PhysicalModule.param_groups`), then everything else at ``lr``."""
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    outer: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, PhysicalModule) or any(name.startswith(f"{o}.") for o in outer):
            continue
        outer.append(name)
        for group in module.param_groups(lr, classical_lr):
            params = [p for p in group["params"] if p.requires_grad and id(p) not in seen]
            seen.update(id(p) for p in params)
            if params:
                groups.append({**group, "params": params})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if rest:
        groups.append({"params": rest, "lr": lr})
    return groups


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    epochs: int = 10,
    lr: float = 1e-2,
    classical_lr: float | None = None,
    batch_size: int = 64,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    progress: bool = True,
    description: str = "train",
    on_epoch: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` on ``train`` with mini-batches and return the per-epoch history.

    Args:
        model: any classifier returning logits.
        train: ``(x, y)`` tensors.
        test: optional ``(x, y)`` evaluated after every epoch.
        epochs: number of passes over ``train`` (>= 1).
        lr: learning rate (> 0).
        classical_lr: learning rate of the classical parameters inside physical layers
            (a ``QuantumLinear``'s ``pre``/``post`` maps, scale and bias; see
            :meth:`~physnn.common.layer.PhysicalModule.param_groups`); None uses ``lr``.
        batch_size: mini-batch size (>= 1).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        weight_decay: L2 penalty (>= 0).
        seed: seeds the shuffling and torch's global RNG (training noise of unseeded
            layers, dropout) for a reproducible run. None (default) leaves the global RNG
            unseeded: the shuffling generator is seeded from one draw of it, so
            ``torch.manual_seed`` before the call still reproduces the run. Under
            ``torch.distributed`` rank 0's shuffling seed is broadcast to every rank.
        device: where to train.
        loss_fn: loss on ``(logits, targets)``, averaged over the batch.
        progress: show a tqdm progress bar (rank 0 only under ``torch.distributed``).
        description: progress-bar label.
        on_epoch: called as ``on_epoch(epoch, history)`` after every epoch (epoch from 1).

    Under ``torch.distributed`` ``batch_size`` is the global batch (split across ranks), a
    last batch with fewer samples than ranks is dropped, and the loss and accuracy in the
    history are global.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be an int >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
    for name, rate in (("lr", lr), ("classical_lr", lr if classical_lr is None else classical_lr)):
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"{name}={rate!r} must be a finite number > 0")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; choose one of {', '.join(_OPTIMIZERS)}")
    x, y = train
    _check_data("train", x, y)
    if test is not None:
        _check_data("test", *test)
    if seed is not None:
        torch.manual_seed(seed)
        shuffle_seed = seed
    else:
        shuffle_seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    rank, world = _world()
    if world > 1:
        shared = torch.tensor([shuffle_seed], dtype=torch.int64)
        dist.broadcast(shared, src=0)
        shuffle_seed = int(shared)
    generator = torch.Generator()
    generator.manual_seed(shuffle_seed)
    model.to(device)
    groups = _param_groups(model, lr, classical_lr)
    if not groups:
        raise ValueError("model has no trainable parameters")
    opt = _OPTIMIZERS[optimizer](groups, lr=lr, weight_decay=weight_decay)
    physical = [m for m in model.modules() if isinstance(m, PhysicalModule)]
    history = History()
    n_batches = math.ceil(len(x) / batch_size)
    if batch_size < world:
        raise ValueError(
            f"batch_size={batch_size} is the global batch and must be >= the {world} ranks"
        )
    bar = tqdm(
        total=epochs * n_batches, desc=description, disable=not progress or rank != 0, leave=False
    )
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        totals = torch.zeros(2, dtype=torch.float64)  # summed loss, correct predictions
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) < world:
                continue  # a last batch smaller than the world cannot be split: dropped
            # This rank's interleaved share of the global batch, as DistributedSampler does.
            idx = batch[rank::world]
            xb, yb = x[idx].to(device), y[idx].to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()}; lower lr (now {lr}) or check the data"
                )
            opt.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; weighting each rank's mean loss by its share
            # of the global batch makes that average the global batch's gradient.
            (loss * (len(idx) * world / len(batch))).backward()
            opt.step()
            for layer in physical:
                layer.after_step()
            history.steps += 1
            totals[0] += float(loss.detach()) * len(idx)
            totals[1] += int((logits.argmax(-1) == yb).sum())
            bar.update(1)
        if world > 1:
            dist.all_reduce(totals)
        history.loss.append(float(totals[0]) / len(x))
        history.train_accuracy.append(float(totals[1]) / len(x))
        if test is not None:
            history.test_accuracy.append(evaluate(model, *test, device=device))
            bar.set_postfix(test_acc=f"{history.test_accuracy[-1]:.3f}")
        if on_epoch is not None:
            on_epoch(epoch, history)
    bar.close()
    model.eval()
    return history


def _world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
