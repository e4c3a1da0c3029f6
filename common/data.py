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
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{dtype_code:02x}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {body.size} values")
    return body.reshape(shape)


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
            parts = (arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"])
            return _from_arrays(name, *parts, split=f"{path.name}: given train/test")
        if {"x", "y"} <= arrays.keys():
            return _split_arrays(name, arrays["x"], arrays["y"], test_fraction, seed, path.name)
        raise ValueError(
            f"{path}: needs arrays x_train, y_train, x_test, y_test (or x, y); "
            f"found {sorted(arrays)}"
        )
    train_x = _find(path, "train-images-idx3-ubyte")
    train_y = _find(path, "train-labels-idx1-ubyte")
    test_x = _find(path, "t10k-images-idx3-ubyte")
    test_y = _find(path, "t10k-labels-idx1-ubyte")
    if train_x and train_y and test_x and test_y:
        return _from_arrays(
            name,
            read_idx(train_x),
            read_idx(train_y),
            read_idx(test_x),
            read_idx(test_y),
            split="official train/test files",
        )
    only = (train_x, train_y) if train_x and train_y else (test_x, test_y)
    if only[0] is None or only[1] is None:
        raise FileNotFoundError(f"{path} holds no MNIST IDX image/label file pair")
    return _split_arrays(
        name, read_idx(only[0]), read_idx(only[1]), test_fraction, seed, only[0].name
    )


def _split_arrays(
    name: str, x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, source: str
) -> Dataset:
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} must be in (0, 1)")
    y = np.asarray(y, dtype=np.int64)
    train_idx, test_idx = _stratified_split(y, test_fraction, seed)
    return _from_arrays(
        name,
        x[train_idx],
        y[train_idx],
        x[test_idx],
        y[test_idx],
        split=f"{source} split stratified {len(train_idx)} train / {len(test_idx)} test "
        f"(seed {seed})",
    )


def _to_images(x: np.ndarray) -> torch.Tensor:
    x = np.asarray(x)
    if x.ndim == 2:
        side = round(float(np.sqrt(x.shape[1])))
        x = x.reshape(len(x), side, side)
    if x.ndim != 3:
        raise ValueError(f"images must be [N, H, W] or [N, H*W], got shape {x.shape}")
    scale = 255.0 if x.dtype == np.uint8 or x.max() > 1 else 1.0
    return torch.from_numpy(x.astype(np.float32) / scale)


def _from_arrays(
    name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, split: str
) -> Dataset:
    y_train = torch.from_numpy(np.asarray(y_tr, dtype=np.int64))
    y_test = torch.from_numpy(np.asarray(y_te, dtype=np.int64))
    return Dataset(
        name=name,
        x_train=_to_images(x_tr),
        y_train=y_train,
        x_test=_to_images(x_te),
        y_test=y_test,
        n_classes=int(max(y_train.max(), y_test.max())) + 1,
        split=split,
    )


def load_dataset(spec: str = "digits") -> Dataset:
    """``"digits"`` (embedded default) or a path to MNIST-format files."""
    if spec == "digits":
        return load_digits()
    return load_mnist(spec, name=Path(spec).stem or "mnist")
