"""``physnn compare``: one network trained and evaluated on every paradigm, side by side.

For each backend spec (``"digital"``, ``"pim:pcm"``, ``"optical"``, ``"quantum"``...) and
each seed, the same architecture is converted and trained with the shared loop:

- backends that transfer weights start from the floating-point network trained first on the
  same seed (the digital row evaluates it as is; PIM fine-tunes it with hardware-aware
  training for a third of the epochs, as users of analog hardware do);
- backends with their own parameters (optics, quantum) are trained from scratch, which the
  conversion report states.

Each trained model is evaluated ideal (inside :func:`physnn.ideal`) and realistic (the
preset's nonidealities), then swept over the backend's stress knob (drift time,
misalignment, shots). Costs per inference come from the analytic cost models. Results of
each finished backend are written at once, so ``resume=True`` skips them after an
interruption.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import importlib
import json
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..common.backend import get_backend, resolve_config
from ..common.config import BackendConfig
from ..common.convert import conversion_report, convert
from ..common.cost import cost
from ..common.data import Dataset, load_dataset
from ..common.layer import WeightsNotTransferredWarning
from ..common.rng import ideal
from ..common.train import evaluate, fit

__all__ = ["DEFAULT_BACKENDS", "BackendResult", "Comparison", "compare", "model_factory"]

DEFAULT_BACKENDS: tuple[str, ...] = ("digital", "pim:pcm", "optical", "quantum")
"""The rows of a default comparison (each backend's default preset unless named)."""

ModelFactory = Callable[[int, int], nn.Module]

FP_LR = 5e-3
"""Learning rate of the floating-point reference training (Adam)."""
BATCH = 32
"""Mini-batch size of every training run."""


def _mlp(n_in: int, n_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_classes))


def _cnn_for(side: int) -> ModelFactory:
    def build(n_in: int, n_classes: int) -> nn.Module:
        return nn.Sequential(
            nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * (side // 2) ** 2, n_classes),
        )

    return build


def model_factory(spec: str, dataset: Dataset) -> ModelFactory:
    """``"mlp"`` (64-32-10 on digits), ``"cnn"`` or ``"package.module:function"``.

    A user factory is called as ``function(n_features, n_classes)`` and must return an
    ``nn.Module`` taking flattened images ``[batch, n_features]``.
    """
    if spec == "mlp":
        return _mlp
    if spec == "cnn":
        h, w = dataset.image_shape
        if h != w:
            raise ValueError(f"model='cnn' needs square images, got {h}x{w}")
        return _cnn_for(h)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model={spec!r}: use 'mlp', 'cnn' or 'package.module:factory'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model={spec!r} cannot be imported: {err}") from err
    if not callable(factory):
        raise ValueError(f"model={spec!r} is not callable")
    return factory


@dataclasses.dataclass
class BackendResult:
    """One row of the comparison (all seeds of one backend spec)."""

    label: str
    backend: str
    config: dict[str, Any]
    weights: str
    params: int
    classical_params: int
    ideal_accuracy: list[float]
    realistic_accuracy: list[float]
    energy: float
    latency: float
    area: float
    macs: int
    resources: dict[str, float]
    assumptions: list[str]
    stress_name: str | None
    stress_unit: str
    stress_log: bool
    stress_values: list[float]
    stress_accuracy: list[list[float]]
    report: str
    seconds: float

    @staticmethod
    def _mean_std(values: Sequence[float]) -> tuple[float, float]:
        mean = statistics.fmean(values)
        return mean, statistics.stdev(values) if len(values) > 1 else 0.0

    @property
    def ideal(self) -> tuple[float, float]:
        return self._mean_std(self.ideal_accuracy)

    @property
    def realistic(self) -> tuple[float, float]:
        return self._mean_std(self.realistic_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Comparison:
    """Results of :func:`compare`: rows, settings and where files were written."""

    rows: list[BackendResult]
    settings: dict[str, Any]
    out: Path | None

    def table(self) -> str:
        """The aligned terminal table (accuracies as mean +- std over seeds)."""
        head = (
            "paradigm",
            "preset",
            "ideal acc [%]",
            "realistic acc [%]",
            "energy/inf [J]",
            "latency [s]",
            "area [mm^2]",
            "params (classical)",
            "weights",
        )
        lines = [head]
        for r in self.rows:
            (im, isd), (rm, rsd) = r.ideal, r.realistic
            lines.append(
                (
                    r.backend,
                    r.label.partition(":")[2],
                    f"{100 * im:.1f} +- {100 * isd:.1f}",
                    f"{100 * rm:.1f} +- {100 * rsd:.1f}",
                    f"{r.energy:.2e}",
                    f"{r.latency:.2e}",
                    f"{r.area * 1e6:.3g}" if r.area > 0 else "-",
                    f"{r.params} ({r.classical_params})",
                    r.weights,
                )
            )
        widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
        out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        out.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "physnn_version": __version__,
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
        }


def _fingerprint(settings: dict[str, Any], label: str) -> str:
    """Key of one row's saved result: every setting but the list of rows, plus the row."""
    relevant = {k: v for k, v in settings.items() if k != "backends"}
    blob = json.dumps({"settings": relevant, "label": label}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe(label: str) -> str:
    return label.replace(":", "-").replace("/", "-")


def _train_fp(
    factory: ModelFactory,
    data: tuple[torch.Tensor, ...],
    n_classes: int,
    seed: int,
    epochs: int,
    device: str,
    cache: Path | None,
) -> nn.Module:
    xtr, ytr, _, _ = data
    path = cache / f"fp-seed{seed}.pt" if cache else None
    torch.manual_seed(seed)
    model = factory(xtr.shape[1], n_classes)
    if path is not None and path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model
    fit(
        model,
        (xtr, ytr),
        epochs=epochs,
        lr=FP_LR,
        batch_size=BATCH,
        seed=seed,
        device=device,
        progress=False,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model


def _run_backend(
    spec: str,
    config: BackendConfig,
    factory: ModelFactory,
    fp_models: Callable[[int], nn.Module],
    data: tuple[torch.Tensor, ...],
    n_classes: int,
    seeds: Sequence[int],
    epochs: int,
    device: str,
    bar: tqdm,
) -> BackendResult:
    backend = get_backend(config)
    caps = backend.capabilities
    xtr, ytr, xte, yte = data
    ideal_acc, real_acc, stress_acc = [], [], []
    start = time.perf_counter()
    model: nn.Module | None = None
    for seed in seeds:
        bar.set_postfix_str(f"{spec} seed {seed}")
        cfg = config.replace(seed=seed)
        if caps.transfers_weights:
            model = convert(fp_models(seed), cfg, input_shape=(1, xtr.shape[1]))
            if caps.fine_tune_fraction > 0:
                fit(
                    model,
                    (xtr, ytr),
                    epochs=max(1, epochs // 3),
                    lr=backend.default_lr,
                    batch_size=BATCH,
                    seed=seed,
                    device=device,
                    progress=False,
                    description=spec,
                )
        else:
            torch.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WeightsNotTransferredWarning)
                model = convert(
                    factory(xtr.shape[1], n_classes), cfg, input_shape=(1, xtr.shape[1])
                )
            fit(
                model,
                (xtr, ytr),
                epochs=epochs,
                lr=backend.default_lr,
                batch_size=BATCH,
                seed=seed,
                device=device,
                progress=False,
            )
        with ideal():
            ideal_acc.append(evaluate(model, xte, yte, device=device))
        real_acc.append(evaluate(model, xte, yte, device=device))
        if backend.stress is not None:
            stress_acc.append(
                [
                    evaluate(backend.stress.apply(model, v), xte, yte, device=device)
                    for v in backend.stress.values
                ]
            )
        bar.update(1)
    assert model is not None
    c = cost(model.cpu(), (1, xtr.shape[1]))
    report = conversion_report(model)
    weights = "transferred" if not report.needs_training else "trained from scratch"
    if caps.fine_tune_fraction > 0:
        weights = "transferred + fine-tuned"
    stress = backend.stress
    return BackendResult(
        label=spec if ":" in spec else f"{spec}:{config.preset}",
        backend=backend.name,
        config=config.to_dict(),
        weights=weights,
        params=report.params_after,
        classical_params=report.classical_params,
        ideal_accuracy=ideal_acc,
        realistic_accuracy=real_acc,
        energy=c.energy,
        latency=c.latency,
        area=c.area,
        macs=c.macs,
        resources=dict(c.resources),
        assumptions=list(c.assumptions),
        stress_name=stress.name if stress else None,
        stress_unit=stress.unit if stress else "",
        stress_log=stress.log_scale if stress else False,
        stress_values=list(stress.values) if stress else [],
        stress_accuracy=[list(col) for col in zip(*stress_acc, strict=True)] if stress else [],
        report=str(report),
        seconds=time.perf_counter() - start,
    )


def compare(
    dataset: str = "digits",
    *,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    model: str = "mlp",
    epochs: int | None = None,
    seeds: int | None = None,
    device: str = "cpu",
    out: str | Path | None = "physnn-results",
    quick: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> Comparison:
    """Train and evaluate one network on every backend; write tables and figures.

    Args:
        dataset: ``"digits"`` (embedded) or a path to MNIST-format files.
        backends: backend specs, ``"name"`` or ``"name:preset"``.
        model: ``"mlp"``, ``"cnn"`` or ``"package.module:factory"``.
        epochs: training epochs (default 20 quick / 40 full).
        seeds: repetitions with different seeds (default 2 quick / 3 full).
        device: ``"cpu"`` or ``"cuda"``.
        out: output folder for CSV/JSON/markdown/PNG (None writes nothing).
        quick: small settings for a run of a few minutes on 2 CPU cores.
        resume: reuse finished backends' results found in ``out``.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`Comparison`; ``print(result.table())`` shows the table.
    """
    epochs = epochs if epochs is not None else (20 if quick else 40)
    seeds = seeds if seeds is not None else (2 if quick else 3)
    for name, value in (("epochs", epochs), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an int >= 1")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}; choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA device; use --device cpu")
    if not backends:
        raise ValueError(f"backends is empty; choose from {', '.join(DEFAULT_BACKENDS)}")
    configs = {spec: resolve_config(spec) for spec in backends}
    data_set = load_dataset(dataset)
    factory = model_factory(model, data_set)
    settings = {
        "dataset": dataset,
        "split": data_set.split,
        "model": model,
        "backends": list(backends),
        "epochs": epochs,
        "seeds": seeds,
        "device": device,
        "quick": quick,
    }
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        (out_dir / "backends").mkdir(parents=True, exist_ok=True)
    data = data_set.flat()
    seed_list = list(range(seeds))
    fp_cache: dict[int, nn.Module] = {}

    def fp_model(seed: int) -> nn.Module:
        if seed not in fp_cache:
            cache = out_dir / "fp-models" / _fingerprint(settings, "fp") if out_dir else None
            fp_cache[seed] = _train_fp(
                factory, data, data_set.n_classes, seed, epochs, device, cache
            )
        return copy.deepcopy(fp_cache[seed])

    rows: list[BackendResult] = []
    bar = tqdm(total=len(backends) * seeds, desc="compare", disable=not progress)
    for spec, config in configs.items():
        path = out_dir / "backends" / f"{_safe(spec)}.json" if out_dir else None
        key = _fingerprint(settings, spec)
        if resume and path is not None and path.exists():
            saved = json.loads(path.read_text())
            if saved.get("fingerprint") == key:
                rows.append(BackendResult(**saved["result"]))
                bar.update(seeds)
                continue
        row = _run_backend(
            spec,
            config,
            factory,
            fp_model,
            data,
            data_set.n_classes,
            seed_list,
            epochs,
            device,
            bar,
        )
        rows.append(row)
        if path is not None:
            path.write_text(json.dumps({"fingerprint": key, "result": row.to_dict()}, indent=1))
    bar.close()
    result = Comparison(rows=rows, settings=settings, out=out_dir)
    if out_dir is not None:
        write_outputs(result, out_dir)
    return result


def write_outputs(result: Comparison, out: Path) -> None:
    """Write ``results.csv``, ``results.json``, ``summary.md`` and the PNG figures."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=1))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "label",
                "backend",
                "ideal_mean",
                "ideal_std",
                "realistic_mean",
                "realistic_std",
                "energy_J",
                "latency_s",
                "area_m2",
                "macs",
                "params",
                "classical_params",
                "weights",
                "resources",
            ]
        )
        for r in result.rows:
            writer.writerow(
                [
                    r.label,
                    r.backend,
                    *r.ideal,
                    *r.realistic,
                    r.energy,
                    r.latency,
                    r.area,
                    r.macs,
                    r.params,
                    r.classical_params,
                    r.weights,
                    json.dumps(r.resources),
                ]
            )
    lines = [
        "# physnn comparison",
        "",
        f"Dataset: {result.settings['dataset']} ({result.settings['split']}); model "
        f"{result.settings['model']}; {result.settings['epochs']} epochs; "
        f"{result.settings['seeds']} seeds (mean +- std).",
        "",
        "```",
        result.table(),
        "```",
        "",
    ]
    for r in result.rows:
        if r.assumptions:
            lines.append(f"- {r.label}: " + "; ".join(r.assumptions))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    try:
        plot_results(result, out)
    except ImportError:
        warnings.warn(
            "matplotlib is not installed: figures skipped; pip install 'physnn[plots]'",
            UserWarning,
            stacklevel=2,
        )


def plot_results(result: Comparison, out: Path) -> list[Path]:
    """Accuracy vs energy per inference, and one robustness curve per stressed backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for i, r in enumerate(result.rows):
        colour = f"C{i}"
        (im, isd), (rm, rsd) = r.ideal, r.realistic
        ax.errorbar(
            r.energy, 100 * im, yerr=100 * isd, fmt="o", mfc="none", color=colour, capsize=3
        )
        ax.errorbar(
            r.energy, 100 * rm, yerr=100 * rsd, fmt="o", color=colour, capsize=3, label=r.label
        )
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference [J]")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title("Accuracy vs energy (hollow: ideal, filled: realistic)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    paths.append(out / "accuracy_vs_energy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    stressed = [r for r in result.rows if r.stress_name]
    if stressed:
        fig, axes = plt.subplots(
            1,
            len(stressed),
            figsize=(4.2 * len(stressed), 3.6),
            layout="constrained",
            squeeze=False,
        )
        for ax, r in zip(axes[0], stressed, strict=True):
            means = [100 * statistics.fmean(a) for a in r.stress_accuracy]
            stds = [100 * (statistics.stdev(a) if len(a) > 1 else 0.0) for a in r.stress_accuracy]
            ax.errorbar(r.stress_values, means, yerr=stds, marker="o", capsize=3)
            if r.stress_log:
                ax.set_xscale("log")
            unit = f" [{r.stress_unit}]" if r.stress_unit else ""
            ax.set_xlabel(f"{r.stress_name}{unit}")
            ax.set_ylabel("test accuracy [%]")
            ax.set_title(r.label)
            ax.grid(True, which="major", alpha=0.3)
            ax.set_ylim(0, 100)
        paths.append(out / "robustness.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
