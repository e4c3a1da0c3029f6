"""Train the Lin et al. (Science 2018) D2NN geometry on MNIST-format files.

The ``lin2018-thz`` preset: 0.4 THz, 400 um pitch, 5 phase-only layers of 200 x 200 neurons
3 cm apart, 10 detector regions, images amplitude-encoded on the central 100 x 100 neurons.
Lin et al. report 91.75 % numerical test accuracy after training on 55,000 MNIST images
(MSE loss); Mengu et al. (IEEE JSTQE 2020) report 97.18 % with softmax cross-entropy.

Usage::

    .venv/bin/python benchmarks/d2nn_mnist.py --data ../shared/data/mnist --epochs 2

``--data`` is a folder of IDX files (or an ``.npz``) read by
:func:`physnn.common.data.load_mnist`; a folder with only the 10k test files is split
stratified 8k/2k (seed 0), and the split is printed with the result. One epoch over 8k
images at this geometry takes roughly 10-30 CPU minutes; ``--limit`` trains on fewer images.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import physnn.optical as po
from physnn.common.data import load_mnist
from physnn.common.train import fit

LIN_2018_ACCURACY = 0.9175


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the Lin 2018 D2NN on MNIST files")
    parser.add_argument("--data", required=True, help="folder of MNIST IDX files or an .npz")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--preset", default="lin2018-thz")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--json", default=None, help="write the result to this file")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_mnist(args.data)
    if args.limit is not None:
        data = data.subset(n_train=min(args.limit, len(data.y_train)))
    config = po.presets.get(args.preset, seed=0)
    torch.manual_seed(0)
    net = po.DiffractiveNetwork(data.n_classes, config=config)
    print(f"{data.name}: {data.split}")
    print(net)
    start = time.perf_counter()
    history = fit(
        net,
        (data.x_train, data.y_train),
        test=(data.x_test, data.y_test),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        description=f"D2NN {args.preset}",
    )
    seconds = time.perf_counter() - start
    accuracy = history.test_accuracy[-1]
    result = {
        "preset": args.preset,
        "split": data.split,
        "epochs": args.epochs,
        "train_images": len(data.y_train),
        "test_accuracy": accuracy,
        "test_accuracy_per_epoch": history.test_accuracy,
        "train_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "lin2018_numerical_accuracy": LIN_2018_ACCURACY,
    }
    print(
        f"test accuracy {100 * accuracy:.2f} % after {args.epochs} epoch(s) on "
        f"{len(data.y_train)} images ({seconds / 60:.1f} min, {torch.get_num_threads()} threads); "
        f"Lin et al. 2018: {100 * LIN_2018_ACCURACY:.2f} % (55k training images)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
