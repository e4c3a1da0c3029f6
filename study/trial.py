"""One trial of a study: ``(settings, row, seed) -> TrialResult``, a pure function.

Every random stream of a trial is derived from its seed with
:func:`~physnn.common.rng.derive_seed` (model initialisation, the floating-point training
order, the chip, the fine-tuning order, each fresh device), so the same trial gives the same
numbers in any process or on any worker of any executor.

**Equal budgets.** Every row trains for ``settings.epochs`` epochs of the same data with the
same batch size, hence the same number of optimiser steps. A backend that transfers weights
spends the share ``backend.capabilities.fine_tune_fraction`` of that budget fine-tuning the
converted model on its own arithmetic (hardware-aware training for PIM, quantisation-aware
training for integer digital) after training the torch model for the rest; a backend with
its own parameters (optics, quantum) trains them from scratch for the whole budget.

**Realistic accuracy** is measured on ``settings.devices`` devices drawn afresh for the
trained model (a new seed for every static and dynamic random stream: programming noise and
faults, fabrication error and misalignment, device and shot noise), never on the device the
model was trained with. Each stress value is evaluated on the same fresh devices, so every
point of a stress curve averages several draws.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..common.backend import REFERENCE_BACKEND, Backend, Baseline, StressTest, get_backend
from ..common.config import BackendConfig
from ..common.convert import conversion_report, convert, reconfigure
from ..common.cost import Cost, cost, leaf_shapes
from ..common.layer import PhysicalModule, WeightsNotTransferredWarning
from ..common.rng import derive_seed, ideal
from ..common.train import evaluate, fit
from .cache import fingerprint
from .settings import StudySettings, build_model, load_data, model_factory

__all__ = [
    "RowSpec",
    "Schedule",
    "TrialResult",
    "estimate_step_seconds",
    "fresh_device",
    "run_trial",
    "schedule",
    "stream_seed",
    "swept_stress_values",
]

_SEED_RANGE = 2**31


def stream_seed(seed: int, *names: str) -> int:
    """The seed of one named random stream of trial ``seed`` (stable across processes)."""
    return derive_seed(seed, "physnn.study", *names) % _SEED_RANGE


@dataclasses.dataclass(frozen=True)
class RowSpec:
    """One row of a study: a label and the backend config it runs on.

    Attributes:
        label: row name in tables and files (``"pim:pcm"``, ``"pim:pcm adc.bits=4"``).
        config: the resolved backend config (its seed is replaced per trial).
        baseline: the row is the backend's classical :class:`~physnn.common.backend.Baseline`
            (the converted model with its physical part replaced), not the backend itself.
    """

    label: str
    config: BackendConfig
    baseline: bool = False

    def baseline_model(self) -> Baseline | None:
        """The classical baseline this row trains (None for a backend's own row).

        Raises:
            ValueError: the row asks for a baseline its backend does not have.
        """
        if not self.baseline:
            return None
        backend = get_backend(self.config)
        if backend.baseline is None:
            raise ValueError(f"row {self.label!r}: backend {backend.name!r} has no baseline")
        return backend.baseline

    def stress(self) -> StressTest | None:
        """The stress test this row sweeps (a baseline row sweeps none)."""
        return None if self.baseline else get_backend(self.config).stress

    def to_dict(self) -> dict[str, Any]:
        data = {"label": self.label, "backend": self.config.backend, **self.config.to_dict()}
        if self.baseline:
            data["baseline"] = True
        return data


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a row spends the shared training budget [epochs]."""

    float_epochs: int
    fine_tune_epochs: int
    scratch_epochs: int

    @property
    def epochs(self) -> int:
        return self.float_epochs + self.fine_tune_epochs + self.scratch_epochs

    def describe(self, backend: str, trained: str | None = None) -> str:
        """The schedule in words; ``trained`` names what trains from scratch (default: the
        backend's parameters)."""
        if self.scratch_epochs:
            what = trained or f"{backend} parameters"
            return f"{self.scratch_epochs} epochs training the {what} from scratch"
        text = f"{self.float_epochs} float epochs"
        if self.fine_tune_epochs:
            text += f" + {self.fine_tune_epochs} epochs fine-tuning on the {backend} arithmetic"
        return text


def schedule(backend: Backend, epochs: int) -> Schedule:
    """Split ``epochs`` between float training and fine-tuning for ``backend``.

    A weight-transferring backend fine-tunes for ``round(epochs * fine_tune_fraction)``
    epochs (at least 1 when the fraction is positive and the budget is 2 epochs or more) and
    trains the torch model for the rest; other backends train from scratch for all of it.
    """
    caps = backend.capabilities
    if not caps.transfers_weights:
        return Schedule(0, 0, epochs)
    fine = 0
    if caps.fine_tune_fraction > 0 and epochs >= 2:
        fine = min(max(round(epochs * caps.fine_tune_fraction), 1), epochs - 1)
    return Schedule(epochs - fine, fine, 0)


@dataclasses.dataclass
class TrialResult:
    """What one trial (one row, one seed) measured.

    Accuracies are fractions in [0, 1]; costs are per inference (batch 1) in SI units.
    ``realistic_accuracy`` has one entry per fresh device; ``stress_accuracy`` one list per
    stress value with one entry per fresh device. ``baseline_of`` names the backend whose
    classical baseline the row is (None for a backend's own row).
    """

    label: str
    backend: str
    baseline_of: str | None
    seed: int
    config: dict[str, Any]
    schedule: dict[str, int]
    schedule_text: str
    steps: int
    weights: str
    params: int
    classical_params: int
    digital_mac_share: float | None
    ideal_accuracy: float
    realistic_accuracy: list[float]
    stress_name: str | None
    stress_unit: str
    stress_log: bool
    stress_values: list[float]
    stress_accuracy: list[list[float]]
    energy: float
    latency: float
    area: float
    physical_energy: float
    physical_area: float
    macs: int
    resources: dict[str, float]
    assumptions: list[str]
    report: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            missing, extra = names - set(data), set(data) - names
            raise ValueError(f"trial result fields differ: missing {missing}, extra {extra}")
        return cls(**data)

    def numbers(self) -> dict[str, Any]:
        """Every field but the wall time: equal for the same trial on any executor."""
        data = self.to_dict()
        del data["seconds"]
        return data


_FLOAT_MODELS: dict[tuple[str, int, int], dict[str, torch.Tensor]] = {}


def _float_model(
    settings: StudySettings,
    seed: int,
    epochs: int,
    progress: bool,
    label: str,
    on_epoch: Callable[[int, Any], None] | None,
) -> nn.Module:
    """The torch model of trial ``seed`` after ``epochs`` float epochs (memoised per process:
    every weight-transferring row of the same seed starts from the same network)."""
    data = load_data(settings)
    factory = model_factory(settings.model, data.image_shape)
    model = build_model(factory, data.n_features, data.n_classes, seed=stream_seed(seed, "init"))
    key = (fingerprint(settings.to_dict()), seed, epochs)
    if key in _FLOAT_MODELS:
        model.load_state_dict(_FLOAT_MODELS[key])
        return model
    if epochs > 0:
        fit(
            model,
            data.train,
            epochs=epochs,
            lr=settings.lr,
            batch_size=settings.batch_size,
            seed=stream_seed(seed, "float-training"),
            device=settings.device,
            progress=progress,
            description=f"{label} seed {seed}: float",
            on_epoch=on_epoch,
        )
    model.cpu()
    if len(_FLOAT_MODELS) >= 8:
        _FLOAT_MODELS.pop(next(iter(_FLOAT_MODELS)))
    _FLOAT_MODELS[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model


def swept_stress_values(settings: StudySettings, stress: StressTest | None) -> list[float]:
    """The stress values a trial sweeps: the settings' own, else the backend's defaults,
    thinned to ``settings.stress_points`` evenly spread values (ends included)."""
    if stress is None:
        return []
    if settings.stress_values:
        return list(settings.stress_values)
    values = list(stress.values)
    points = settings.stress_points
    if points is None or points >= len(values):
        return values
    if points == 1:
        return [values[-1]]
    picks = sorted({round(i * (len(values) - 1) / (points - 1)) for i in range(points)})
    return [values[i] for i in picks]


def fresh_device(model: nn.Module, seed: int) -> nn.Module:
    """A copy of the trained converted ``model`` on a freshly drawn device.

    Every physnn layer gets the new base ``seed`` and redraws its static randomness
    (``resample=True``): the same design and trained parameters, another chip.
    """
    if not any(isinstance(m, PhysicalModule) for m in model.modules()):
        return model
    return reconfigure(model, {"seed": seed}, resample=True)


def _physical_cost(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[Cost, list[str]]:
    """Cost of the physnn layers alone (the rest is the digital co-processor), and every
    cost assumption labelled with the layer it belongs to."""
    total, labelled = Cost(), []
    for name, module, shape in leaf_shapes(model, input_shape):
        if isinstance(module, PhysicalModule):
            c = module.cost(shape)
            total = total + c
            labelled += [f"layer {name!r} ({type(module).__name__}): {a}" for a in c.assumptions]
    return total, labelled


def _convert(
    model: nn.Module, config: BackendConfig, n_features: int, baseline: Baseline | None = None
) -> nn.Module:
    """``model`` converted with ``config``; with ``baseline``, its classical replacement."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsNotTransferredWarning)
        converted = convert(model, config, input_shape=(1, n_features))
    return converted if baseline is None else baseline.apply(converted)


def run_trial(
    settings: StudySettings,
    row: RowSpec,
    seed: int,
    *,
    threads: int | None = None,
    progress: bool = False,
    on_epoch: Callable[[], None] | None = None,
) -> TrialResult:
    """Train and evaluate ``row`` for one ``seed``; a pure function of its arguments.

    Args:
        settings: the study settings (prepared: with the data digest).
        row: the row's label and backend config.
        seed: the trial seed; every random stream is derived from it.
        threads: torch intra-op threads in this process (None: leave as is).
        progress: show per-epoch progress bars.
        on_epoch: called after every training epoch (float, fine-tuning or from scratch),
            e.g. to report progress from a worker process.
    """
    start = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    backend = get_backend(row.config)
    baseline = row.baseline_model()
    plan = schedule(backend, settings.epochs)
    data = load_data(settings)
    config = row.config.replace(seed=stream_seed(seed, "chip"))
    tick = None if on_epoch is None else (lambda epoch, history: on_epoch())
    fit_args: dict[str, Any] = {
        "lr": backend.default_lr,
        "batch_size": settings.batch_size,
        "device": settings.device,
        "progress": progress,
        "on_epoch": tick,
    }
    steps = 0
    if plan.scratch_epochs:
        factory = model_factory(settings.model, data.image_shape)
        base = build_model(factory, data.n_features, data.n_classes, seed=stream_seed(seed, "init"))
        torch.manual_seed(stream_seed(seed, "conversion"))
        model = _convert(base, config, data.n_features, baseline)
        history = fit(
            model,
            data.train,
            epochs=plan.scratch_epochs,
            seed=stream_seed(seed, "training"),
            description=f"{row.label} seed {seed}",
            **fit_args,
        )
        steps += history.steps
    else:
        base = _float_model(settings, seed, plan.float_epochs, progress, row.label, tick)
        steps += plan.float_epochs * -(-len(data.y_train) // settings.batch_size)
        torch.manual_seed(stream_seed(seed, "conversion"))
        model = _convert(base, config, data.n_features, baseline)
        if plan.fine_tune_epochs:
            history = fit(
                model,
                data.train,
                epochs=plan.fine_tune_epochs,
                seed=stream_seed(seed, "fine-tuning"),
                description=f"{row.label} seed {seed}: fine-tune",
                **fit_args,
            )
            steps += history.steps
    # Layers draw from their own seeded streams; the global generator is reseeded before each
    # stage anyway, so code that still draws from it cannot make the trial depend on history.
    torch.manual_seed(stream_seed(seed, "evaluation"))
    with ideal():
        ideal_acc = evaluate(model, *data.test, device=settings.device)
    stress = row.stress()
    values = swept_stress_values(settings, stress)
    realistic: list[float] = []
    stressed: list[list[float]] = [[] for _ in values]
    for d in range(settings.devices):
        torch.manual_seed(stream_seed(seed, "device-global", str(d)))
        device_model = fresh_device(model, stream_seed(seed, "device", str(d)))
        realistic.append(evaluate(device_model, *data.test, device=settings.device))
        for i, value in enumerate(values):
            assert stress is not None
            stressed_model = stress.apply(device_model, value)
            stressed[i].append(evaluate(stressed_model, *data.test, device=settings.device))
    model.cpu()
    shape = (1, data.n_features)
    total = cost(model, shape)
    physical, assumptions = _physical_cost(model, shape)
    own = {a.partition("): ")[2] for a in assumptions}
    assumptions += [f"digital co-processor: {a}" for a in total.assumptions if a not in own]
    report = conversion_report(model)
    params, classical, share = (
        report.params_after,
        report.classical_params,
        report.digital_mac_share,
    )
    if baseline is not None:  # all classical now: the conversion report describes the original
        params = classical = sum(p.numel() for p in model.parameters())
        share = 1.0
    caps = backend.capabilities
    if baseline is not None:
        weights = f"classical baseline of {backend.name}: {baseline.name}"
    elif not caps.transfers_weights:
        weights = "trained from scratch"
    elif plan.fine_tune_epochs:
        weights = "transferred + fine-tuned"
    else:
        weights = "transferred"
    return TrialResult(
        label=row.label,
        backend=backend.name if baseline is None else REFERENCE_BACKEND,
        baseline_of=None if baseline is None else backend.name,
        seed=seed,
        config=row.config.to_dict(),
        schedule=dataclasses.asdict(plan),
        schedule_text=plan.describe(
            backend.name, None if baseline is None else f"classical {baseline.name}"
        ),
        steps=steps,
        weights=weights,
        params=params,
        classical_params=classical,
        digital_mac_share=share,
        ideal_accuracy=ideal_acc,
        realistic_accuracy=realistic,
        stress_name=stress.name if stress else None,
        stress_unit=stress.unit if stress else "",
        stress_log=stress.log_scale if stress else False,
        stress_values=[float(v) for v in values],
        stress_accuracy=stressed if stress else [],
        energy=total.energy,
        latency=total.latency,
        area=total.area,
        physical_energy=min(physical.energy, total.energy),
        physical_area=min(physical.area, total.area),
        macs=total.macs,
        resources={k: float(v) for k, v in total.resources.items()},
        assumptions=assumptions,
        report=str(report) if baseline is None else f"{baseline.name}: {baseline.description}",
        seconds=time.perf_counter() - start,
    )


def estimate_step_seconds(
    settings: StudySettings, row: RowSpec, *, threads: int | None = None
) -> tuple[float, float]:
    """Wall time of the first training step and of one evaluation batch of ``row`` [s].

    The first step also pays for one-off set-up (cached transfer functions, transpilation),
    so the estimate errs on the long side.

    Args:
        settings: the study settings (prepared).
        row: the row.
        threads: time with this many torch threads, as the trials will run (a parallel
            worker's one thread makes an optical step 1.6x slower than two); None: as is.
            The caller's thread count is restored.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _time_first_step(settings, row)
    finally:
        torch.set_num_threads(previous)


def _time_first_step(settings: StudySettings, row: RowSpec) -> tuple[float, float]:
    backend = get_backend(row.config)
    data = load_data(settings)
    factory = model_factory(settings.model, data.image_shape)
    base = build_model(factory, data.n_features, data.n_classes, seed=0)
    model = _convert(base, row.config.replace(seed=0), data.n_features, row.baseline_model())
    model = model.to(settings.device)
    xb = data.x_train[: settings.batch_size].to(settings.device)
    yb = data.y_train[: settings.batch_size].to(settings.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(trainable, lr=backend.default_lr)
    begin = time.perf_counter()
    model.train()
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step = time.perf_counter() - begin
    begin = time.perf_counter()
    evaluate(model, data.x_test[:512], data.y_test[:512], device=settings.device)
    return step, time.perf_counter() - begin
