"""What a study is run with: settings, their validation, the data and the model factory.

Everything a trial's numbers depend on is in :class:`StudySettings` (plus the backend config
and the seed), so a trial is a pure function of them and its fingerprint covers them. Bad
user input raises :class:`UsageError`, whose message names the argument and the fix; the
command line prints it as one line and exits with status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..common.data import Dataset, load_dataset

__all__ = [
    "ModelFactory",
    "StudyData",
    "StudySettings",
    "UsageError",
    "build_model",
    "check_device",
    "load_data",
    "model_factory",
    "user_input",
]

ModelFactory = Callable[[int, int], nn.Module]


class UsageError(ValueError):
    """Bad user input to a study; the message names the argument, the value and the fix."""


@contextlib.contextmanager
def user_input(argument: str, *, catch: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn errors raised while handling ``argument`` into a :class:`UsageError` naming it.

    ``ValueError``, ``TypeError`` and ``OSError`` (missing files, bad ``--out``) are always
    converted; ``catch`` adds more (user code, foreign file formats).
    """
    converted: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, *catch)
    try:
        yield
    except UsageError:
        raise
    except converted as err:
        message = str(err).strip().replace("\n", " ") or type(err).__name__
        raise UsageError(f"{argument}: {message}") from err


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudySettings:
    """Every setting of a study that changes a number.

    Attributes:
        dataset: ``"digits"`` (embedded) or a path to MNIST-format files.
        model: ``"mlp"``, ``"cnn"``, ``"package.module:factory"`` or ``"file.py:factory"``.
        epochs: the training budget of every row [epochs over the training set]; rows that
            fine-tune split it (see :func:`~physnn.study.trial.schedule`).
        seeds: independent repetitions (model init, training order, chip).
        devices: freshly drawn devices each trained model is evaluated on (realistic
            accuracy) and stress draws per stress value.
        train_size: first ``train_size`` training samples (None: all).
        test_size: first ``test_size`` test samples (None: all).
        image_size: resample images to ``image_size`` x ``image_size`` [pixels] (None: keep).
        batch_size: mini-batch size of every training run.
        lr: learning rate of the floating-point training (Adam); physical layers train with
            their backend's ``default_lr``.
        device: torch device string (``"cpu"``, ``"cuda:1"``).
        stress_values: stress values to sweep instead of each backend's defaults.
        stress_points: sweep at most this many of a backend's default stress values, evenly
            spread from the mildest to the harshest (None: all of them).
        data_digest: SHA-256 of the data content (set by :meth:`prepared`).
        model_digest: SHA-256 of the source of a user model factory (set by
            :meth:`prepared`).
    """

    dataset: str = "digits"
    model: str = "mlp"
    epochs: int = 40
    seeds: int = 3
    devices: int = 5
    train_size: int | None = None
    test_size: int | None = None
    image_size: int | None = None
    batch_size: int = 32
    lr: float = 5e-3
    device: str = "cpu"
    stress_values: tuple[float, ...] | None = None
    stress_points: int | None = None
    data_digest: str = ""
    model_digest: str = ""

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("seeds", 1), ("devices", 1), ("batch_size", 1)):
            _check_int(name, getattr(self, name), low)
        for name in ("train_size", "test_size", "image_size", "stress_points"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"--lr: lr={self.lr!r} must be a finite number > 0, e.g. 5e-3")
        if self.stress_values is not None:
            values = tuple(self.stress_values)
            if not values or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in values
            ):
                raise UsageError(
                    f"--stress: {self.stress_values!r} must be finite numbers, e.g. 1,3600"
                )
            object.__setattr__(self, "stress_values", tuple(float(v) for v in values))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field (the fingerprint payload)."""
        data = dataclasses.asdict(self)
        if self.stress_values is not None:
            data["stress_values"] = list(self.stress_values)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySettings:
        values = dict(data)
        if values.get("stress_values") is not None:
            values["stress_values"] = tuple(values["stress_values"])
        return cls(**values)

    def prepared(self) -> StudySettings:
        """Validate the device, data and model, and record the data and model digests.

        Raises:
            UsageError: naming ``--device``, ``--dataset``, ``--train-size``... and the fix.
        """
        check_device(self.device)
        data = load_data(dataclasses.replace(self, data_digest=""))
        factory = model_factory(self.model, data.image_shape)
        with user_input("--model"):
            build_model(factory, data.n_features, data.n_classes, seed=0)
        return dataclasses.replace(
            self, data_digest=data.digest, model_digest=_factory_digest(self.model)
        )


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{flag}: {name}={value!r} must be an int >= {low}")


def check_device(device: str) -> torch.device:
    """Parse a torch device string and check that this torch build can use it.

    Raises:
        UsageError: naming ``--device``, with a hint for CPU-only torch builds.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise UsageError(
            f"--device: {device!r} is not a torch device ({err}); use cpu, cuda, cuda:1, mps"
        ) from err
    if dev.type == "cuda":
        if torch.version.cuda is None:
            raise UsageError(
                f"--device: {device!r} needs CUDA, but this torch ({torch.__version__}) is a "
                "CPU-only build; install a CUDA build of torch or use --device cpu"
            )
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"--device: {device!r}: torch sees no CUDA device; use cpu")
        if dev.index is not None and dev.index >= count:
            raise UsageError(
                f"--device: {device!r}: only {count} CUDA device(s), cuda:0..cuda:{count - 1}"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device: {device!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        try:
            torch.empty(1, device=dev)
        except RuntimeError as err:
            raise UsageError(f"--device: {device!r} cannot be used here ({err})") from err
    return dev


@dataclasses.dataclass(frozen=True)
class StudyData:
    """Flattened tensors of a study's data and their content digest."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    image_shape: tuple[int, int]
    split: str
    digest: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test


def _digest(dataset: Dataset) -> str:
    h = hashlib.sha256()
    for tensor in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        t = tensor.contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:32]


def _stamp(dataset: str) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of the files behind ``dataset`` (cache key)."""
    path = Path(dataset)
    if dataset == "digits" or not path.exists():
        return ()
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())


@functools.lru_cache(maxsize=4)
def _load(
    dataset: str,
    train_size: int | None,
    test_size: int | None,
    image_size: int | None,
    stamp: tuple[tuple[str, int, int], ...],
) -> StudyData:
    with user_input("--dataset", catch=(Exception,)):
        data = load_dataset(dataset)
    with user_input("--train-size/--test-size"):
        data = data.subset(train_size, test_size)
    if image_size is not None:
        with user_input("--image-size"):
            data = data.resized(image_size)
    x_tr, y_tr, x_te, y_te = data.flat()
    return StudyData(
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        n_classes=data.n_classes,
        image_shape=data.image_shape,
        split=data.split,
        digest=_digest(data),
    )


def load_data(settings: StudySettings) -> StudyData:
    """The study's data (cached per process while its files are unchanged); checks the
    content against the digest.

    Raises:
        UsageError: the data cannot be read, or differs from the data the study was planned
            with (the files changed during the run).
    """
    data = _load(
        settings.dataset,
        settings.train_size,
        settings.test_size,
        settings.image_size,
        _stamp(settings.dataset),
    )
    if settings.data_digest and data.digest != settings.data_digest:
        raise UsageError(
            f"--dataset: the data at {settings.dataset!r} changed since the study was planned "
            f"(content digest {data.digest} != {settings.data_digest}); rerun the study"
        )
    return data


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


def _split_factory(spec: str) -> tuple[str, str]:
    source, sep, attr = spec.rpartition(":")
    if not sep or not source or not attr:
        raise UsageError(
            f"--model: {spec!r}: use 'mlp', 'cnn', 'package.module:factory' or "
            "'path/to/file.py:factory'"
        )
    return source, attr


def _is_file(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def _import_source(source: str, spec: str) -> Any:
    if _is_file(source):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"--model: {spec!r}: file {str(path)!r} does not exist")
        name = "physnn_user_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"--model: {spec!r}: {path} cannot be imported as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise UsageError(
                f"--model: {spec!r}: importing {path} failed ({type(err).__name__}: {err})"
            ) from err
        return module
    try:
        return importlib.import_module(source)
    except Exception as err:
        raise UsageError(
            f"--model: {spec!r} cannot be imported ({type(err).__name__}: {err}); put the "
            "package on PYTHONPATH or pass 'path/to/file.py:factory'"
        ) from err


def model_factory(spec: str, image_shape: tuple[int, int]) -> ModelFactory:
    """The factory for ``spec``: ``"mlp"`` (64-32-10 on digits), ``"cnn"`` or a user factory.

    A user factory (``"package.module:function"``, or ``"path/to/file.py:function"`` which
    needs no PYTHONPATH) is called as ``function(n_features, n_classes)`` and must return an
    ``nn.Module`` taking flattened images ``[batch, n_features]``.
    """
    if spec == "mlp":
        return _mlp
    if spec == "cnn":
        h, w = image_shape
        if h != w:
            raise UsageError(f"--model: 'cnn' needs square images, got {h}x{w}; --image-size")
        return _cnn_for(h)
    source, attr = _split_factory(spec)
    module = _import_source(source, spec)
    factory = getattr(module, attr, None)
    if factory is None:
        raise UsageError(f"--model: {spec!r}: {source} has no attribute {attr!r}")
    if not callable(factory):
        raise UsageError(f"--model: {spec!r} is a {type(factory).__name__}, not callable")
    return factory


def _factory_digest(spec: str) -> str:
    """SHA-256 of a user factory's source file ("" for the built-in models)."""
    if spec in ("mlp", "cnn"):
        return ""
    source, _ = _split_factory(spec)
    if _is_file(source):
        path = Path(source).expanduser().resolve()
    else:
        found = inspect.getsourcefile(importlib.import_module(source))
        if found is None:
            return ""
        path = Path(found)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def _forward_naming_layer(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``; an error is re-raised naming the innermost module that was running."""
    names = {id(m): name or type(model).__name__ for name, m in model.named_modules()}
    stack: list[str] = []
    handles = []

    def enter(module: nn.Module, args: Any) -> None:
        stack.append(names[id(module)])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    try:
        return model(x)
    except Exception as err:
        where = stack[-1] if stack else type(model).__name__
        module = dict(model.named_modules()).get(where, model)
        raise ValueError(
            f"forward of a {list(x.shape)} batch fails in layer {where!r} "
            f"({type(module).__name__}): {type(err).__name__}: {err}"
        ) from err
    finally:
        for handle in handles:
            handle.remove()


def build_model(factory: ModelFactory, n_features: int, n_classes: int, *, seed: int) -> nn.Module:
    """Call ``factory`` under ``torch.manual_seed(seed)`` and check it on a dummy batch.

    The dummy forward also initialises lazy modules (``nn.LazyLinear``) so that they can be
    converted. Errors name the layer that failed.
    """
    torch.manual_seed(seed)
    try:
        model = factory(n_features, n_classes)
    except Exception as err:
        raise ValueError(
            f"calling the factory as factory({n_features}, {n_classes}) failed "
            f"({type(err).__name__}: {err})"
        ) from err
    if not isinstance(model, nn.Module):
        raise TypeError(f"the factory returned a {type(model).__name__}, not an nn.Module")
    with torch.no_grad():
        out = _forward_naming_layer(model, torch.zeros(2, n_features))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the model maps [2, {n_features}] inputs to {shape}; it must return logits "
            f"[batch, {n_classes}]"
        )
    return model
