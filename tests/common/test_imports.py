"""The package's import graph: no cycle anywhere, and the floors of DESIGN.md section 1.

The graph is read from the source with :mod:`ast` (nothing is imported), with relative
imports resolved against each module's package. Imports inside functions count: a lazy
import hides a cycle from the interpreter's start-up but not from the design (``common/``
importing a backend inside a function is still the ground floor depending on a backend).
Imports under ``if TYPE_CHECKING:`` are never executed, so they count for the floors (the
ground floor must not even name a backend's types) but not for cycles (they are how an
annotation refers back without a run-time dependency). Strings that name modules for
:mod:`importlib` (the registry's ``"physnn.pim.backend:BACKEND"``, the root package's lazy
re-exports) are not imports: that indirection is how the floors are kept.

Floors: ``common`` imports no backend and not ``study``; a backend (``digital``, ``pim``,
``optical``, ``quantum``) imports no other backend and not ``study``; ``study`` imports no
backend module; only ``cli`` and the root package sit above ``study``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_PACKAGE = {"tests", "notebooks", "benchmarks", "docs", "build"}
BACKENDS = ("digital", "pim", "optical", "quantum")


def _package_sources() -> list[Path]:
    """Every ``.py`` file under the package root that is not tests/, docs/... or setup.py."""
    paths = []
    for entry in ROOT.iterdir():
        if entry.name in NOT_PACKAGE or entry.name.startswith("."):
            continue
        if entry.suffix == ".py" and entry.name != "setup.py":
            paths.append(entry)
        elif entry.is_dir() and (entry / "__init__.py").exists():
            paths.extend(p for p in entry.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(paths)


def _modules() -> dict[str, Path]:
    """Module name (``physnn.common.layer``) -> source file, for every package module."""
    found = {}
    for path in _package_sources():
        rel = path.relative_to(ROOT)
        if not all(
            (ROOT / Path(*rel.parts[:i]) / "__init__.py").exists() for i in range(1, len(rel.parts))
        ):
            continue
        parts = ["physnn", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """``id`` of every node inside an ``if TYPE_CHECKING:`` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _imports(name: str, path: Path, *, type_checking: bool = True) -> set[str]:
    """Package modules imported anywhere in the module ``name`` (absolute names).

    Args:
        name: the module's absolute name.
        path: its source file.
        type_checking: also count imports under ``if TYPE_CHECKING:``.
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skip = set() if type_checking else _type_checking_nodes(tree)
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from . import presets`` imports the submodule presets (the package's
                # ``__init__`` runs first, as for any submodule import: not an edge).
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in MODULES else module)
    resolved = set()
    for target in targets:
        if not (target == "physnn" or target.startswith("physnn.")):
            continue
        # The nearest enclosing module that exists (``physnn.pim.layers.PIMLinear`` is
        # ``physnn.pim.layers``).
        while target not in MODULES and "." in target:
            target = target.rpartition(".")[0]
        if target in MODULES and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}
RUNTIME_GRAPH = {name: _imports(name, path, type_checking=False) for name, path in MODULES.items()}


def _edges_without_parents() -> dict[str, set[str]]:
    """The graph less the edges a module has to its own ancestor packages.

    Importing ``physnn.pim.layers`` runs ``physnn/pim/__init__.py`` first, so a module that
    imports its own package's ``__init__`` (which re-exports the module) would be a trivial
    cycle; Python handles it because the package is already in ``sys.modules``. Such edges
    are recorded separately and must not exist either (see the test below).
    """
    return {
        name: {t for t in targets if not name.startswith(f"{t}.")}
        for name, targets in RUNTIME_GRAPH.items()
    }


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _floor(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "physnn"


def test_the_walk_sees_the_package() -> None:
    assert set(_package_sources()) == set(MODULES.values()), (
        "a .py file of the package lies in a folder without __init__.py"
    )
    assert {"physnn", "physnn.common.layer", "physnn.pim", "physnn.cli"} <= MODULES.keys()
    assert "physnn.common.layer" in GRAPH["physnn.digital.layers"]


def test_resolution_of_relative_imports() -> None:
    """The resolver, on a module it has not seen: levels, packages and from-imports."""
    src = ROOT / "common" / "layer.py"
    assert {"physnn.common.config", "physnn.common.cost", "physnn.common.rng"} <= _imports(
        "physnn.common.layer", src
    )


def test_no_import_cycle() -> None:
    cycle = _find_cycle(_edges_without_parents())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_its_own_package_init() -> None:
    up = sorted(
        f"{name} -> {t}"
        for name, targets in GRAPH.items()
        for t in targets
        if name.startswith(f"{t}.") and t != "physnn"
    )
    assert not up, f"modules importing their own package's __init__: {up}"


@pytest.mark.parametrize(
    ("floor", "forbidden"),
    [
        ("common", {*BACKENDS, "study", "cli"}),
        *((b, {*(o for o in BACKENDS if o != b), "study", "cli"}) for b in BACKENDS),
        ("study", {*BACKENDS, "cli"}),
    ],
)
def test_floors(floor: str, forbidden: set[str]) -> None:
    bad = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if _floor(name) == floor
        for target in targets
        if _floor(target) in forbidden
    )
    assert not bad, f"{floor}/ must not import {sorted(forbidden)}: {bad}"


def test_type_checking_imports_are_not_run_time_edges(tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .layer import PhysicalModule\n"
        "def f():\n    from .rng import ideal\n"
    )
    assert _imports("physnn.common.mod", src) == {"physnn.common.layer", "physnn.common.rng"}
    assert _imports("physnn.common.mod", src, type_checking=False) == {"physnn.common.rng"}


def test_the_cycle_finder_finds_cycles() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
