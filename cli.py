"""The ``physnn`` command: ``--version``, ``info``, ``compare`` and ``sweep``.

Every user error (a bad argument, unreadable data, a bad model factory, a busy output
folder) is printed as one line naming the argument and the fix, with exit status 2; an
internal error still shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__


def _info() -> str:
    from .common.backend import available_backends, get_backend

    lines = [f"physnn {__version__} (Python {platform.python_version()})"]
    for dist in ("torch", "numpy", "scipy", "qiskit", "scikit-learn", "matplotlib", "ray"):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        lines.append(f"  {dist:<13s}{version}")
    lines.append("backends:")
    for name in available_backends():
        try:
            backend = get_backend(name)
        except ImportError as err:
            lines.append(f"  {name:<9s}unavailable ({err})")
            continue
        caps = backend.capabilities
        kinds = ", ".join(t.__name__ for t in caps.module_types)
        weights = "weights transferred" if caps.transfers_weights else "own parameters"
        lines.append(f"  {name:<9s}{kinds}; {weights}; default preset {backend.default_preset}")
        for preset in backend.presets.names():
            lines.append(f"    {preset:<18s}{backend.presets.citation(preset)}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``physnn compare: error: --epochs: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be comma-separated numbers, e.g. 1,3600,86400"
        ) from err


def _study_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", default="digits", help="'digits' (embedded) or a path to MNIST IDX/NPZ files"
    )
    p.add_argument(
        "--model",
        default="mlp",
        help="'mlp', 'cnn', 'package.module:factory' or 'path/to/file.py:factory'",
    )
    p.add_argument("--epochs", type=int, default=None, help="training budget of every row")
    p.add_argument("--seeds", type=int, default=None, help="repetitions (>= 1)")
    p.add_argument("--devices", type=int, default=None, help="fresh devices per trained model")
    p.add_argument("--train-size", type=int, default=None, help="training samples used")
    p.add_argument("--test-size", type=int, default=None, help="test samples used")
    p.add_argument("--image-size", type=int, default=None, help="resample images to N x N")
    p.add_argument(
        "--batch-size", type=int, default=None, help="mini-batch size (default 64 quick / 32)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads per trial")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--executor",
        default="auto",
        choices=("auto", "serial", "process", "ray"),
        help="where trials run: auto (a process pool on several cores), this process, a "
        "local process pool, or Ray",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel workers (default: cores)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (--executor ray)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small: 4 epochs of batch 64 on 400 samples, 2 seeds x 2 devices",
    )
    p.add_argument("--resume", action="store_true", help="reuse finished trials (fingerprinted)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="physnn",
        description="Simulate one neural network on PIM, optical and quantum hardware.",
    )
    parser.add_argument("--version", action="version", version=f"physnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("info", help="versions, backends and presets")
    cmp = sub.add_parser(
        "compare",
        help="train one network on every paradigm and compare accuracy, energy and latency",
    )
    cmp.add_argument(
        "--backends",
        nargs="+",
        default=["digital", "pim:pcm", "optical", "quantum"],
        metavar="BACKEND[:PRESET]",
        help="rows of the comparison",
    )
    cmp.add_argument(
        "--stress", type=_floats, default=None, help="stress values instead of the defaults"
    )
    cmp.add_argument(
        "--no-baselines",
        action="store_true",
        help="leave out the classical baseline rows (quantum: the circuit replaced by tanh)",
    )
    cmp.add_argument("--out", default="physnn-results", help="output folder")
    _study_arguments(cmp)
    swp = sub.add_parser("sweep", help="a grid over config fields and stress values")
    swp.add_argument("--backend", default="pim", help="backend name")
    swp.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="config field and values (repeatable): adc.bits=4,6,8, preset=pcm,hermes",
    )
    swp.add_argument(
        "--stress",
        "--drift",
        dest="stress",
        type=_floats,
        default=None,
        help="stress values of the backend (PIM: drift times [s], e.g. 1,3600,86400)",
    )
    swp.add_argument("--out", default="physnn-sweep", help="output folder")
    _study_arguments(swp)
    return parser


def _study_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dataset": args.dataset,
        "model": args.model,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "devices": args.devices,
        "train_size": args.train_size,
        "test_size": args.test_size,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": args.device,
        "executor": args.executor,
        "workers": args.workers,
        "ray_address": args.ray_address,
        "stress_values": args.stress,
        "out": args.out,
        "quick": args.quick,
        "resume": args.resume,
        "progress": not args.no_progress,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``physnn`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "info":
        print(_info())
        return 0
    from .study.settings import UsageError

    try:
        if args.command == "compare":
            from .study.compare import compare

            result = compare(
                backends=args.backends, baselines=not args.no_baselines, **_study_kwargs(args)
            )
            print(result.table())
            print(
                f"\nresults written to {result.out}/ (results.csv, results.json, summary.md, *.png)"
            )
        else:
            from .study.sweep import parse_grid, sweep

            swept = sweep(args.backend, parse_grid(args.grid), **_study_kwargs(args))
            print(f"{len(swept.records)} records; written: {', '.join(map(str, swept.files))}")
    except UsageError as err:
        message = str(err).replace("\n", " ")
        print(f"physnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nphysnn {args.command}: interrupted; finished trials are saved in "
            f"{args.out}/trials; rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
