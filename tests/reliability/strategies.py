"""Hypothesis strategies derived from the fields of the backend config dataclasses.

A drawn config is a preset of the backend with one to three leaf fields (nested blocks
included) changed to a value drawn for the field's annotated type: near the default
(scaled, shifted), at edges (0, 1, negative, tiny, huge, non-finite) or any choice of a
``Literal``. So the draws stay close to the configurations users build, and reach every
field of every block.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from physnn.common.config import BackendConfig, ConfigBlock

SKIPPED = {"preset"}
"""Fields that only label a config."""


def leaf_fields(config: ConfigBlock, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted path, annotation, current value)`` of every non-block field."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if not field.init or field.name in SKIPPED:
            continue
        value = getattr(config, field.name)
        if isinstance(value, ConfigBlock):
            yield from leaf_fields(value, f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", hints[field.name], value


def _floats(default: float | None) -> st.SearchStrategy[float]:
    base = 1.0 if not default else abs(default)
    edges = [0.0, -base, base * 1e-3, base * 1e3, 1e-300, 1e300, math.inf, math.nan]
    near = st.floats(0.1, 10.0).map(lambda k: base * k)
    return st.one_of(st.sampled_from(edges), near)


def _ints(default: int | None) -> st.SearchStrategy[int]:
    base = default or 1
    return st.one_of(
        st.sampled_from([0, 1, -1, 2, base - 1, base + 1, 2 * base, 10**9]), st.integers(-4, 64)
    )


def values_for(annotation: Any, default: Any) -> st.SearchStrategy[Any]:
    """A strategy for a field annotated ``annotation`` whose preset value is ``default``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        options = [
            values_for(a, default if isinstance(default, a) else None)
            for a in args
            if a is not type(None)
        ]
        return st.one_of(*([st.none()] if type(None) in args else []), *options)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _ints(default if isinstance(default, int) else None)
    if annotation is float:
        return _floats(default if isinstance(default, int | float) else None)
    if annotation is str:
        return st.one_of(
            st.just(default) if isinstance(default, str) else st.nothing(), st.just("refrence")
        )
    if origin is tuple and default:
        return st.floats(0.1, 10.0).map(lambda k: tuple(k * v for v in default))
    return st.just(default)


@st.composite
def configs(
    draw: st.DrawFn, base: list[BackendConfig], max_changes: int = 3
) -> tuple[BackendConfig, dict[str, Any]]:
    """``(preset, changes)``: a preset drawn from ``base`` and changes to its leaf fields.

    The config is built by the caller (``preset.with_changes(changes)``), so construction
    errors are part of what is tested.
    """
    preset = draw(st.sampled_from(base))
    fields = list(leaf_fields(preset))
    chosen = draw(
        st.lists(st.sampled_from(range(len(fields))), min_size=1, max_size=max_changes, unique=True)
    )
    changes = {}
    for index in chosen:
        path, annotation, value = fields[index]
        changes[path] = draw(values_for(annotation, value))
    return preset, changes
