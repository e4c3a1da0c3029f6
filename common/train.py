"""The one training and evaluation loop shared by scripts, notebooks and ``physnn compare``.

Physical layers need no special casing: they inject their own training noise in
``train()`` mode, and :func:`fit` calls every layer's ``after_step()`` hook (weight clipping,
remapping) after each optimiser step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
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

    def to_dict(self) -> dict[str, list[float]]:
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


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    epochs: int = 10,
    lr: float = 1e-2,
    batch_size: int = 64,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    seed: int | None = 0,
    device: str | torch.device = "cpu",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    progress: bool = True,
    description: str = "train",
) -> History:
    """Train ``model`` on ``train`` with mini-batches and return the per-epoch history.

    Args:
        model: any classifier returning logits.
        train: ``(x, y)`` tensors.
        test: optional ``(x, y)`` evaluated after every epoch.
        epochs: number of passes over ``train`` (>= 1).
        lr: learning rate (> 0).
        batch_size: mini-batch size (>= 1).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        weight_decay: L2 penalty (>= 0).
        seed: seeds the shuffling (and torch's global RNG) for reproducibility; None leaves
            the global RNG untouched.
        device: where to train.
        loss_fn: loss on ``(logits, targets)``.
        progress: show a tqdm progress bar.
        description: progress-bar label.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r} must be an int >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r} must be a finite number > 0")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r}; choose one of {', '.join(_OPTIMIZERS)}")
    x, y = train
    _check_data("train", x, y)
    if test is not None:
        _check_data("test", *test)
    generator = torch.Generator()
    if seed is not None:
        torch.manual_seed(seed)
        generator.manual_seed(seed)
    else:
        generator.seed()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    opt = _OPTIMIZERS[optimizer](params, lr=lr, weight_decay=weight_decay)
    physical = [m for m in model.modules() if isinstance(m, PhysicalModule)]
    history = History()
    n_batches = math.ceil(len(x) / batch_size)
    bar = tqdm(total=epochs * n_batches, desc=description, disable=not progress, leave=False)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss = 0.0
        correct = 0
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()}; lower lr (now {lr}) or check the data"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for layer in physical:
                layer.after_step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == yb).sum())
            bar.update(1)
        history.loss.append(total_loss / len(x))
        history.train_accuracy.append(correct / len(x))
        if test is not None:
            history.test_accuracy.append(evaluate(model, *test, device=device))
            bar.set_postfix(test_acc=f"{history.test_accuracy[-1]:.3f}")
    bar.close()
    model.eval()
    return history
