"""Digits accuracy of the default quantum layer next to its classical baseline and ablations.

Trains a 64-32-10 MLP on scikit-learn's 8x8 digits (physnn's offline copy), converted to
``quantum:<preset>`` with the dressed-circuit default, and the same budget for: the plain
torch MLP (classical baseline), the converted model with its circuit angles frozen, and with
the circuit replaced by ``tanh`` (Bowles, Ahmed & Schuld, arXiv:2403.07059 (2024)). Prints
test accuracy [%] and seconds per epoch (1 thread). Short run::

    python benchmarks/quantum_digits.py --epochs 3 --preset heron
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
from torch import nn

import physnn
from physnn.common.data import load_digits
from physnn.common.layer import WeightsNotTransferredWarning
from physnn.common.train import evaluate, fit
from physnn.quantum.ablation import freeze_circuit, without_circuit


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--preset", default="heron")
    parser.add_argument("--lr", type=float, default=5e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_digits()
    if args.n_train:
        data = data.subset(n_train=args.n_train)
    train = (data.x_train.flatten(1), data.y_train)
    test = (data.x_test.flatten(1), data.y_test)
    torch.manual_seed(args.seed)
    base = mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        quantum = physnn.convert(copy.deepcopy(base), f"quantum:{args.preset}")
    rows = {
        "classical MLP (torch)": (copy.deepcopy(base), 1e-2),
        f"quantum:{args.preset} dressed default": (quantum, args.lr),
        "ablation: circuit angles frozen": (freeze_circuit(quantum), args.lr),
        "ablation: circuit replaced by tanh": (without_circuit(quantum), args.lr),
    }
    print(f"digits, {args.epochs} epochs, {len(train[1])} train / {len(test[1])} test")
    for name, (model, lr) in rows.items():
        start = time.perf_counter()
        fit(model, train, epochs=args.epochs, lr=lr, seed=args.seed, progress=False)
        per_epoch = (time.perf_counter() - start) / args.epochs
        acc = evaluate(model, *test)
        print(f"{name:40s} test accuracy {100 * acc:5.1f} %   {per_epoch:6.2f} s/epoch")


if __name__ == "__main__":
    main()
