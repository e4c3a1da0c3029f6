"""Embedded digits, resampling, and MNIST loaders on files the test writes itself."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from physnn.common.data import load_dataset, load_digits, load_mnist, read_idx, resample_images


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert len(a.y_train) + len(a.y_test) == 1797
    assert a.image_shape == (8, 8) and a.n_features == 64 and a.n_classes == 10
    assert float(a.x_train.min()) >= 0
    assert float(a.x_train.max()) <= 1
    train_counts = torch.bincount(a.y_train, minlength=10).float()
    test_counts = torch.bincount(a.y_test, minlength=10).float()
    ratio = test_counts / (train_counts + test_counts)
    assert torch.all((ratio - 0.2).abs() < 0.01)
    rows = {tuple(r.tolist()) for r in a.x_test.flatten(1)}
    overlap = sum(tuple(r.tolist()) in rows for r in a.x_train.flatten(1))
    assert overlap <= 5  # the digits set itself holds a few duplicate images
    assert load_digits(seed=1).y_test.tolist() != a.y_test.tolist()
    counts = torch.bincount(torch.cat([a.y_train, a.y_test])).tolist()
    n_test = sum(round(c * 0.2) for c in counts)
    assert len(a.y_test) == n_test
    assert f"{1797 - n_test} train / {n_test} test" in a.split


def test_subset_and_resize() -> None:
    d = load_digits()
    s = d.subset(100, 50)
    assert len(s.y_train) == 100 and len(s.y_test) == 50
    with pytest.raises(ValueError, match="n_train"):
        d.subset(0)
    r = d.resized(16)
    assert r.image_shape == (16, 16)


def test_resample_preserves_mean_when_downsampling_by_integer_factor() -> None:
    x = torch.rand(3, 8, 8)
    small = resample_images(x, 4)
    torch.testing.assert_close(small, x.reshape(3, 4, 2, 4, 2).mean((2, 4)))
    big = resample_images(x, (16, 12))
    assert big.shape == (3, 16, 12)
    with pytest.raises(ValueError, match="size"):
        resample_images(x, 0)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        resample_images(x[0], 4)


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_with_only_test_files_is_split(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 6, 6), dtype=np.uint8)
    labels = np.repeat(np.arange(5, dtype=np.uint8), 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
    np.testing.assert_array_equal(read_idx(tmp_path / name), images)
    d = load_mnist(tmp_path, test_fraction=0.2)
    assert len(d.y_train) == 40 and len(d.y_test) == 10
    assert d.n_classes == 5 and d.image_shape == (6, 6)
    assert torch.bincount(d.y_test).tolist() == [2] * 5
    assert "split stratified 40 train / 10 test" in d.split
    flat_all = {tuple(r) for r in (images / 255.0).astype(np.float32).reshape(50, -1).tolist()}
    assert {tuple(r) for r in d.x_train.flatten(1).tolist()} <= flat_all


def test_idx_folder_with_train_and_test(tmp_path: Path) -> None:
    imgs = np.zeros((4, 3, 3), dtype=np.uint8)
    labs = np.array([0, 1, 2, 1], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", imgs, False)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labs, False)
    d = load_mnist(tmp_path)
    assert d.split == "official train/test files" and len(d.y_train) == 4


def test_npz_files(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((20, 16)).astype(np.float32)
    y = np.arange(20) % 2
    np.savez(tmp_path / "a.npz", x=x, y=y)
    d = load_mnist(tmp_path / "a.npz", test_fraction=0.5)
    assert d.image_shape == (4, 4) and len(d.y_test) == 10
    np.savez(tmp_path / "b.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert len(load_mnist(tmp_path / "b.npz").y_train) == 20
    np.savez(tmp_path / "c.npz", images=x)
    with pytest.raises(ValueError, match="x_train"):
        load_mnist(tmp_path / "c.npz")


def test_bad_paths_and_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no MNIST IDX"):
        load_mnist(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError):
        load_dataset(str(tmp_path / "nowhere"))
    assert load_dataset("digits").name == "digits"


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_one_scaling_decision_for_every_split(tmp_path: Path) -> None:
    """Issue 15 item 5: a single value of 1.5 in the train split scaled train by 1/255 and
    left test alone. Now the scale is decided once, and fractional values above 1 are
    refused."""
    rng = np.random.default_rng(1)
    x = rng.random((10, 4, 4))
    y = np.arange(10) % 2
    bad = x.copy()
    bad[0, 0, 0] = 1.5
    path = _npz(tmp_path / "mixed.npz", x_train=bad, y_train=y, x_test=x, y_test=y)
    with pytest.raises(ValueError, match=r"mixed\.npz\[x_train\].*1\.5.*fractional"):
        load_mnist(path)
    pixels = rng.integers(0, 256, (10, 4, 4))
    path = _npz(
        tmp_path / "pixels.npz",
        x_train=pixels.astype(np.float32),
        y_train=y,
        x_test=pixels.astype(np.uint8),
        y_test=y,
    )
    d = load_mnist(path)
    want = torch.from_numpy((pixels / 255.0).astype(np.float32))
    torch.testing.assert_close(d.x_train, want)
    torch.testing.assert_close(d.x_test, want)
    # A float split in [0, 1] beside a uint8 split: the same scale would darken one of them.
    path = _npz(
        tmp_path / "kinds.npz", x_train=x, y_train=y, x_test=pixels.astype(np.uint8), y_test=y
    )
    with pytest.raises(ValueError, match=r"kinds\.npz\[x_train\].*fractional"):
        load_mnist(path)


def test_counts_labels_and_ranks_are_validated_naming_the_file(tmp_path: Path) -> None:
    """200 images with 150 labels, a label of 10**6, negative labels, wrong ranks."""
    x = np.random.default_rng(2).random((200, 4, 4))
    y = np.arange(200) % 10
    cases = {
        "short": (dict(x=x, y=y[:150]), r"150 labels for 200 images"),
        "huge": (dict(x=x, y=np.r_[y[:-1], 10**6]), r"0\.\.999.*relabel"),
        "negative": (dict(x=x, y=np.r_[-1, y[1:]]), r"class indices.*-1"),
        "fractional": (dict(x=x, y=y + 0.5), r"whole numbers"),
        "rank1": (dict(x=x.reshape(-1), y=y), r"\[N, H, W\]"),
        "rank5": (dict(x=x.reshape(200, 1, 1, 4, 4), y=y), r"\[N, H, W\]"),
        "notsquare": (dict(x=x.reshape(200, 16)[:, :15], y=y), r"15 pixels are not square"),
        "labels2d": (dict(x=x, y=np.stack([y, y], 1)), r"vector"),
        "nan": (dict(x=np.where(x > 0.99, np.nan, x), y=y), r"NaN"),
        "negpix": (dict(x=x - 0.5, y=y), r"negative"),
    }
    for name, (arrays, message) in cases.items():
        path = _npz(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(ValueError, match=message) as info:
            load_mnist(path)
        assert f"{name}.npz" in str(info.value), (name, str(info.value))


def test_idx_label_file_of_another_length_is_refused(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((20, 3, 3), np.uint8), False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(15, np.uint8), False)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.*15 labels for 20 images"):
        load_mnist(tmp_path)


def test_corrupt_idx_files_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "t10k-images-idx3-ubyte.gz"
    garbage.write_bytes(b"not a gzip stream at all")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz.*gzip"):
        read_idx(garbage)
    truncated = tmp_path / "cut"
    write_idx(truncated, np.zeros((4, 3, 3), np.uint8), False)
    truncated.write_bytes(truncated.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"cut.*truncated"):
        read_idx(truncated)
    header = tmp_path / "header"
    header.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(ValueError, match=r"header.*truncated IDX header"):
        read_idx(header)
