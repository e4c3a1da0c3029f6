"""Small offline datasets: the embedded digits default and loaders for local MNIST files.

Nothing here downloads. The default dataset is scikit-learn's ``load_digits`` (1,797 8x8
images of handwritten digits shipped inside the scikit-learn wheel), split once into a fixed
stratified train/test split. MNIST and Fashion-MNIST are read from IDX (optionally gzipped)
or NPZ files at a path the user gives.
"""

from __future__ import annotations

import dataclasses
import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Dataset", "load_dataset", "load_digits", "load_mnist", "read_idx", "resample_images"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """An image classification dataset held in memory.

    Attributes:
        name: dataset name.
        x_train: training images, float32 in [0, 1], shape ``[N, H, W]``.
        y_train: training labels, int64, shape ``[N]``.
        x_test: test images, shape ``[M, H, W]``.
        y_test: test labels, shape ``[M]``.
        n_classes: number of classes.
        split: how train and test were obtained (reported with every result).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    split: str

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.x_train.shape[-2]), int(self.x_train.shape[-1]))

    @property
    def n_features(self) -> int:
        return self.image_shape[0] * self.image_shape[1]

    def flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_train, y_train, x_test, y_test)`` with images flattened to vectors."""
        return (
            self.x_train.flatten(1),
            self.y_train,
            self.x_test.flatten(1),
            self.y_test,
        )

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train``/``n_test`` samples (None keeps all), for quick runs."""
        for arg, value, limit in (
            ("n_train", n_train, len(self.y_train)),
            ("n_test", n_test, len(self.y_test)),
        ):
            if value is not None and not 1 <= value <= limit:
                raise ValueError(f"{arg}={value} must be in 1..{limit}")
        return dataclasses.replace(
            self,
            x_train=self.x_train[:n_train],
            y_train=self.y_train[:n_train],
            x_test=self.x_test[:n_test],
            y_test=self.y_test[:n_test],
            split=f"{self.split}; first {len(self.y_train[:n_train])} train / "
            f"{len(self.y_test[:n_test])} test",
        )

    def resized(self, size: int | tuple[int, int]) -> Dataset:
        """The same dataset with images resampled to ``size`` (see :func:`resample_images`)."""
        return dataclasses.replace(
            self,
            x_train=resample_images(self.x_train, size),
            x_test=resample_images(self.x_test, size),
        )


def _stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        n_test = round(len(idx) * test_fraction)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx = np.concatenate(train)
    test_idx = np.concatenate(test)
    rng.shuffle(train_idx)
    rng.shuffle(test_idx)
    return train_idx, test_idx


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The embedded default: scikit-learn's 8x8 digits with a fixed stratified split.

    Args:
        test_fraction: share of each class held out for testing, in (0, 1).
        seed: seed of the split (0 is the documented default split).

    Returns:
        A :class:`Dataset` with images scaled from 0..16 to [0, 1].
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in (0, 1), e.g. 0.2")
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = _stratified_split(labels, test_fraction, seed)
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(images[train_idx]),
        y_train=torch.from_numpy(labels[train_idx]),
        x_test=torch.from_numpy(images[test_idx]),
        y_test=torch.from_numpy(labels[test_idx]),
        n_classes=10,
        split=f"sklearn digits, stratified {1 - test_fraction:.0%}/{test_fraction:.0%} "
        f"(seed {seed}): {len(train_idx)} train / {len(test_idx)} test",
    )


def resample_images(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resample ``[N, H, W]`` images to ``size`` with area averaging (down) or bilinear (up).

    Args:
        images: image batch ``[N, H, W]``.
        size: target size ``S`` or ``(S_h, S_w)`` [pixels].
    """
    if images.dim() != 3:
        raise ValueError(f"images must be [N, H, W], got shape {tuple(images.shape)}")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(not isinstance(s, int) or s < 1 for s in hw):
        raise ValueError(f"size={size!r} must be a positive int or a pair of them")
    shrink = hw[0] <= images.shape[-2] and hw[1] <= images.shape[-1]
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    return F.interpolate(images[:, None].float(), size=hw, mode=mode, **kwargs)[:, 0].clamp(0, 1)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Raises:
        ValueError: naming the file when it is not a complete IDX file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(
            f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} "
            f"({err}); re-download or unpack the file"
        ) from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{dtype_code:02x}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    itemsize = np.dtype(dtypes[dtype_code]).itemsize
    body_bytes = len(data) - 4 - 4 * ndim
    if body_bytes != int(np.prod(shape)) * itemsize:
        raise ValueError(
            f"{path}: header says {shape} ({int(np.prod(shape)) * itemsize} bytes) but holds "
            f"{body_bytes} bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def load_mnist(
    path: str | Path,
    *,
    name: str = "mnist",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load MNIST or Fashion-MNIST from local files.

    ``path`` is either an ``.npz`` with ``x_train, y_train, x_test, y_test`` (or ``x, y``)
    arrays, or a folder of IDX files (``train-images-idx3-ubyte[.gz]`` etc.). A folder that
    holds only the ``t10k`` test files is split stratified into train/test by
    ``test_fraction`` and ``seed``, and the split is recorded in ``Dataset.split``.

    Args:
        path: NPZ file or folder of IDX files.
        name: dataset name for reports.
        test_fraction: held-out share when only one set of files exists.
        seed: seed of that split.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"data path {str(path)!r} does not exist; pass a folder of "
            "MNIST IDX files or an .npz file"
        )
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"{path}: expected a folder of IDX files or an .npz file")
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
            keys = ("x_train", "y_train", "x_test", "y_test")
            return _from_arrays(
                name,
                [arrays[k] for k in keys],
                split=f"{path.name}: given train/test",
                sources=tuple(f"{path}[{k}]" for k in keys),
            )
        if {"x", "y"} <= arrays.keys():
            return _split_arrays(
                name,
                arrays["x"],
                arrays["y"],
                test_fraction,
                seed,
                (f"{path}[x]", f"{path}[y]"),
            )
        raise ValueError(
            f"{path}: needs arrays x_train, y_train, x_test, y_test (or x, y); "
            f"found {sorted(arrays)}"
        )
    train_x = _find(path, "train-images-idx3-ubyte")
    train_y = _find(path, "train-labels-idx1-ubyte")
    test_x = _find(path, "t10k-images-idx3-ubyte")
    test_y = _find(path, "t10k-labels-idx1-ubyte")
    if train_x and train_y and test_x and test_y:
        files = (train_x, train_y, test_x, test_y)
        return _from_arrays(
            name,
            [read_idx(f) for f in files],
            split="official train/test files",
            sources=tuple(str(f) for f in files),
        )
    only = (train_x, train_y) if train_x and train_y else (test_x, test_y)
    if only[0] is None or only[1] is None:
        raise FileNotFoundError(f"{path} holds no MNIST IDX image/label file pair")
    return _split_arrays(
        name,
        read_idx(only[0]),
        read_idx(only[1]),
        test_fraction,
        seed,
        (str(only[0]), str(only[1])),
    )


def _split_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    seed: int,
    sources: tuple[str, str],
) -> Dataset:
    """Validate one image/label pair (``sources`` name their files) and split it."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in (0, 1)")
    images, integer = _images(x, sources[0])
    labels = _labels(y, len(images), sources[1])
    train_idx, test_idx = _stratified_split(labels, test_fraction, seed)
    scale = _scale([(images, integer, sources[0])])
    return _dataset(
        name,
        images[train_idx] / scale,
        labels[train_idx],
        images[test_idx] / scale,
        labels[test_idx],
        split=f"{Path(sources[0]).name} split stratified {len(train_idx)} train / "
        f"{len(test_idx)} test "
        f"(seed {seed})",
    )


MAX_CLASSES = 1000
"""Largest number of classes a loaded dataset may have (a guard against label garbage:
one label of 10**6 would otherwise build a million-class model)."""


def _images(x: np.ndarray, source: str) -> tuple[np.ndarray, bool]:
    """``x`` as float64 images ``[N, H, W]`` and whether it was stored as integers.

    Refuses what is not a batch of finite, non-negative images, naming ``source``.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "uif":
        raise ValueError(f"{source}: images must be numbers, got dtype {x.dtype}")
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim == 2:
        side = round(float(np.sqrt(x.shape[1])))
        if side * side != x.shape[1] or side == 0:
            raise ValueError(
                f"{source}: flat images of {x.shape[1]} pixels are not square; store them as "
                "[N, H, W]"
            )
        x = x.reshape(len(x), side, side)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(
            f"{source}: images must be [N, H, W], [N, 1, H, W] or [N, H*W] with N, H, W > 0; "
            f"got shape {x.shape}"
        )
    integer = x.dtype.kind in "ui"
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{source}: images contain NaN or inf; clean the file")
    if x.min() < 0:
        raise ValueError(
            f"{source}: images hold negative values (min {x.min():g}); store intensities in "
            "[0, 1] or pixel values 0..255"
        )
    return x, integer


def _scale(parts: list[tuple[np.ndarray, bool, str]]) -> float:
    """One intensity scale for every split: 255 for pixel values 0..255, else 1.

    Args:
        parts: ``(images, stored_as_integers, source)`` for each split.

    Integer images, or float images above 1, are pixel values and must all be whole numbers
    in 0..255 (divided by 255); float images in [0, 1] are kept. The decision is taken once
    for all splits: guessing per split scaled one split and not the other (issue 15 item 5).
    """
    pixels = any(integer or x.max() > 1 for x, integer, _ in parts)
    if not pixels:
        return 1.0
    bad = [
        f"{source} ({x.min():g}..{x.max():g}{'' if whole else ', fractional'})"
        for x, _, source in parts
        for whole in [bool(np.array_equal(x, np.round(x)))]
        if x.max() > 255 or not whole
    ]
    if bad:
        raise ValueError(
            "images must all be intensities in [0, 1] or all be whole pixel values 0..255; "
            f"these are not: {'; '.join(bad)}; rescale the arrays to [0, 1] before saving"
        )
    return 255.0


def _labels(y: np.ndarray, n_images: int, source: str) -> np.ndarray:
    """``y`` as int64 class labels, one per image, in ``0..MAX_CLASSES-1``."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{source}: labels must be a vector [N], got shape {y.shape}")
    if len(y) != n_images:
        raise ValueError(
            f"{source}: {len(y)} labels for {n_images} images; every image needs exactly one "
            "label (check that the image and label files belong together)"
        )
    if y.dtype.kind not in "uif" or (y.dtype.kind == "f" and not np.array_equal(y, np.round(y))):
        raise ValueError(f"{source}: labels must be whole numbers, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES):
        raise ValueError(
            f"{source}: labels must be class indices in 0..{MAX_CLASSES - 1}; got "
            f"{y.min():g}..{y.max():g}; relabel the classes 0, 1, 2, ..."
        )
    return y.astype(np.int64)


def _dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    split: str,
) -> Dataset:
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{name}: train images are {x_train.shape[1:]} but test images are "
            f"{x_test.shape[1:]}; both splits must have one image size"
        )
    return Dataset(
        name=name,
        x_train=torch.from_numpy(x_train.astype(np.float32)),
        y_train=torch.from_numpy(y_train),
        x_test=torch.from_numpy(x_test.astype(np.float32)),
        y_test=torch.from_numpy(y_test),
        n_classes=int(max(y_train.max(), y_test.max())) + 1,
        split=split,
    )


def _from_arrays(
    name: str, arrays: list[np.ndarray], split: str, sources: tuple[str, ...]
) -> Dataset:
    """Validate ``x_train, y_train, x_test, y_test`` (``sources`` name where each came
    from) and scale both image splits with one decision."""
    x_tr, y_tr, x_te, y_te = arrays
    images_tr, integer_tr = _images(x_tr, sources[0])
    images_te, integer_te = _images(x_te, sources[2])
    labels_tr = _labels(y_tr, len(images_tr), sources[1])
    labels_te = _labels(y_te, len(images_te), sources[3])
    scale = _scale([(images_tr, integer_tr, sources[0]), (images_te, integer_te, sources[2])])
    return _dataset(name, images_tr / scale, labels_tr, images_te / scale, labels_te, split)


def load_dataset(spec: str = "digits") -> Dataset:
    """``"digits"`` (embedded default) or a path to MNIST-format files."""
    if spec == "digits":
        return load_digits()
    return load_mnist(spec, name=Path(spec).stem or "mnist")
