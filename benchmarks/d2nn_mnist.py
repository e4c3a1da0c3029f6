"""Train the Lin et al. (Science 2018) D2NN geometry on MNIST-format files.

The ``lin2018-thz`` preset: 0.4 THz, 400 um pitch, 5 phase-only layers of 200 x 200 neurons
3 cm apart, 10 detector regions, images amplitude-encoded on the central 100 x 100 neurons.
Lin et al. report 91.75 % numerical test accuracy after training on 55,000 MNIST images
(MSE loss, ``--loss mse``); Mengu et al. (IEEE JSTQE 2020) report 97.18 % with softmax
cross-entropy (``--loss ce``, the default). The simulation uses the library's defaults:
3 x 3 samples per neuron (a 600 x 600 plane on a 1200 x 1200 FFT grid) and the ``auto``
method (Rayleigh-Sommerfeld on this grid; 2.3 % field error against the converged
integral); ``--oversample 1`` reproduces the old one-sample-per-neuron model (about 30 %
field error).
After training the script reports the accuracy on ``--chips`` freshly drawn devices (mean
+- std, "realistic": never the chip trained on), and the ideal accuracy. ``--vaccinate``
draws the fabrication error afresh at every training step.

Usage::

    .venv/bin/python benchmarks/d2nn_mnist.py --data ../shared/data/mnist --epochs 2

``--data`` is a folder of IDX files (or an ``.npz``) read by
:func:`physnn.common.data.load_mnist`; a folder with only the 10k test files is split
stratified 8k/2k (seed 0) inside the benchmark, and the split is printed with the result.
At the ``lin2018-thz`` geometry one forward+backward pass of a batch of 64 costs about a
minute on 2 CPU cores (``benchmarks/optical_speed.py``), so an epoch over 8k images takes
hours; ``--preset thz-compact`` (24 x 24 neurons, 3 layers) trains at about 2 s per batch
and ``--limit`` trains on fewer images.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

import physnn
import physnn.optical as po
from physnn.common.data import load_mnist
from physnn.common.train import evaluate, fit

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
    parser.add_argument("--loss", choices=("ce", "mse"), default="ce")
    parser.add_argument("--oversample", type=int, default=None, help="samples per neuron")
    parser.add_argument("--chips", type=int, default=3, help="fresh chips to evaluate on")
    parser.add_argument("--vaccinate", action="store_true", help="fresh chip per step")
    parser.add_argument("--test-limit", type=int, default=None, help="test on N images")
    parser.add_argument("--json", default=None, help="write the result to this file")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_mnist(args.data)
    if args.limit is not None or args.test_limit is not None:
        n_train = len(data.y_train) if args.limit is None else min(args.limit, len(data.y_train))
        n_test = len(data.y_test) if args.test_limit is None else args.test_limit
        data = data.subset(n_train, min(n_test, len(data.y_test)))
    config = po.presets.get(args.preset, seed=0)
    if args.oversample is not None:
        config = config.replace(geometry=config.geometry.replace(oversample=args.oversample))
    if args.vaccinate:
        fab = config.fabrication
        config = config.replace(
            fabrication=fab.replace(training_phase_error_std=fab.phase_error_std)
        )
    temperature = config.detector.temperature

    def mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Lin et al. 2018: squared error of the detector power shares to one-hot targets."""
        shares = logits / temperature
        return (shares - F.one_hot(y, shares.shape[-1]).to(shares.dtype)).square().mean()

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
        loss_fn=F.cross_entropy if args.loss == "ce" else mse,
    )
    seconds = time.perf_counter() - start
    accuracy = history.test_accuracy[-1]
    chips = po.realistic_accuracy(net, data.x_test, data.y_test, chips=args.chips)
    with physnn.ideal():
        ideal = evaluate(net, data.x_test, data.y_test)
    result = {
        "preset": args.preset,
        "split": data.split,
        "epochs": args.epochs,
        "train_images": len(data.y_train),
        "loss": args.loss,
        "samples_per_neuron": config.geometry.samples,
        "test_accuracy_trained_chip": accuracy,
        "realistic_accuracy_fresh_chips": list(chips.accuracies),
        "ideal_accuracy": ideal,
        "test_accuracy_per_epoch": history.test_accuracy,
        "train_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "lin2018_numerical_accuracy": LIN_2018_ACCURACY,
    }
    print(
        f"realistic {chips}; ideal {100 * ideal:.2f} %; on the trained chip "
        f"{100 * accuracy:.2f} % after {args.epochs} epoch(s) ({args.loss}) on "
        f"{len(data.y_train)} images ({seconds / 60:.1f} min, {torch.get_num_threads()} threads); "
        f"Lin et al. 2018: {100 * LIN_2018_ACCURACY:.2f} % (55k training images)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
