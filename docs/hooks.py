"""mkdocs hook: let mkdocstrings find the package ``physnn`` whatever the checkout is called.

The package root is the repository root, whose folder name is the checkout's (``main``,
``physnn``...), and griffe looks packages up by folder name. Before the pages are rendered,
the hook builds ``build/docs-src/physnn/`` with one link per entry of the package (the root
modules and every folder with an ``__init__.py``, found as setup.py finds them), so griffe
neither misses a subpackage nor walks tests/ or .venv/; ``mkdocs.yml`` points the python
handler's ``paths`` there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "build" / "docs-src" / "physnn"
NOT_PACKAGE = {"tests", "notebooks", "benchmarks", "docs", "build", "setup.py"}


def on_startup(command: str, dirty: bool) -> None:
    """Rebuild the package view before mkdocstrings resolves its ``paths``."""
    shutil.rmtree(PACKAGE, ignore_errors=True)
    PACKAGE.mkdir(parents=True)
    for entry in sorted(ROOT.iterdir()):
        if entry.name in NOT_PACKAGE or entry.name.startswith("."):
            continue
        if (entry.is_file() and entry.suffix == ".py") or (entry / "__init__.py").is_file():
            (PACKAGE / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
