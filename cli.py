"""The ``physnn`` command: ``--version``, ``info`` and ``compare``."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence

from . import __version__


def _info() -> str:
    from .common.backend import available_backends, get_backend

    lines = [f"physnn {__version__} (Python {platform.python_version()})"]
    for dist in ("torch", "numpy", "scipy", "qiskit", "scikit-learn", "matplotlib"):
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


def _parser() -> argparse.ArgumentParser:
    from .study.compare import DEFAULT_BACKENDS

    parser = argparse.ArgumentParser(
        prog="physnn",
        description="Simulate one neural network on PIM, optical and quantum hardware.",
    )
    parser.add_argument("--version", action="version", version=f"physnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backends and presets")
    cmp = sub.add_parser(
        "compare",
        help="train one network on every paradigm and compare accuracy, energy and latency",
    )
    cmp.add_argument(
        "--dataset",
        default="digits",
        help="'digits' (embedded) or a path to MNIST-format IDX/NPZ files",
    )
    cmp.add_argument("--model", default="mlp", help="'mlp', 'cnn' or 'package.module:factory'")
    cmp.add_argument(
        "--backends",
        nargs="+",
        default=list(DEFAULT_BACKENDS),
        metavar="BACKEND[:PRESET]",
        help="rows of the comparison",
    )
    cmp.add_argument("--epochs", type=int, default=None, help="training epochs (>= 1)")
    cmp.add_argument("--seeds", type=int, default=None, help="repetitions (>= 1)")
    cmp.add_argument("--device", default="cpu", help="cpu or cuda")
    cmp.add_argument("--out", default="physnn-results", help="output folder")
    cmp.add_argument("--quick", action="store_true", help="small settings, a few minutes on CPU")
    cmp.add_argument("--resume", action="store_true", help="skip backends already finished")
    cmp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``physnn`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "info":
        print(_info())
        return 0
    from .study.compare import compare

    try:
        result = compare(
            args.dataset,
            backends=args.backends,
            model=args.model,
            epochs=args.epochs,
            seeds=args.seeds,
            device=args.device,
            out=args.out,
            quick=args.quick,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"physnn compare: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nphysnn compare: interrupted; finished backends are saved in {args.out}/backends;"
            " rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130
    print(result.table())
    print(f"\nresults written to {result.out}/ (results.csv, results.json, summary.md, *.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
