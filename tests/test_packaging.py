"""The wheel holds every ``.py`` file of the package and nothing that is not the package.

The package root is the repository root (``package-dir = {"physnn" = "."}``), so a
subfolder missing from the wheel would still import in the editable install and only fail
for the wheel's users. The wheel is built from a copy of the working tree (so stale
``build/`` output cannot hide a missing file) with the already installed setuptools.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGE = {"tests", "notebooks", "benchmarks", "docs", "build"}
"""Top-level folders of the repository that are not part of the package."""
COPY_IGNORE = shutil.ignore_patterns(
    ".*", "build", "*.egg-info", "__pycache__", "physnn-results", "site"
)


@functools.cache
def package_sources() -> frozenset[str]:
    """Every ``.py`` file of the package, as its path inside the wheel."""
    sources = set()
    for folder, dirs, files in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT)
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d != "__pycache__"
            and not d.endswith(".egg-info")
            and not (rel == Path() and d in NOT_PACKAGE)
        ]
        sources.update(
            f"physnn/{(rel / name).as_posix()}"
            for name in files
            if name.endswith(".py") and not (rel == Path() and name == "setup.py")
        )
    return frozenset(sources)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--verbose",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(tmp / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "deprecat" not in (result.stdout + result.stderr).lower(), (
        "the build printed a setuptools deprecation warning:\n" + result.stderr[-4000:]
    )
    (path,) = (tmp / "dist").glob("physnn-*.whl")
    return zipfile.ZipFile(path)


def test_every_package_file_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    sources = package_sources()
    assert {"physnn/__init__.py", "physnn/common/layer.py", "physnn/cli.py"} <= sources
    missing = sorted(sources - names)
    assert not missing, f"missing from the wheel (add an __init__.py to the folder): {missing}"


def test_the_wheel_holds_only_the_package(wheel: zipfile.ZipFile) -> None:
    inside = {n for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert all(n.startswith("physnn/") for n in inside), sorted(inside)
    extra = sorted(n for n in inside if n.endswith(".py") and n not in package_sources())
    assert not extra, f"not package files: {extra}"
    tops = {n.split("/")[1] for n in inside if n.count("/") >= 2}
    assert not tops & NOT_PACKAGE, sorted(tops & NOT_PACKAGE)
    assert "physnn/py.typed" in inside


def test_the_wheel_declares_the_spdx_license(wheel: zipfile.ZipFile) -> None:
    (metadata,) = (n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    text = wheel.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    assert "Apache License" in (ROOT / "LICENSE").read_text()
