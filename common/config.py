"""Frozen, keyword-only configuration dataclasses shared by every backend.

Every backend config subclasses :class:`BackendConfig`; nested physical blocks (an ADC, a
detector, a shot budget...) subclass :class:`ConfigBlock`. Both are frozen, keyword-only
dataclasses with an exact, JSON-safe ``to_dict``/``from_dict`` round trip and a
``replace`` method. Validation lives in ``__post_init__`` and uses the ``check_*``
helpers below, whose messages name the field, the value, the allowed range and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

__all__ = [
    "BackendConfig",
    "ConfigBlock",
    "check_choice",
    "check_finite",
    "check_int",
    "check_probability",
    "check_range",
    "literal_choices",
]

_C = TypeVar("_C", bound="ConfigBlock")


def _describe(owner: str, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def check_finite(owner: str, name: str, value: float) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{_describe(owner, name)} must be a real number, got {type(value).__name__} "
            f"({value!r})"
        )
    if not math.isfinite(value):
        raise ValueError(f"{_describe(owner, name)}={value!r} must be finite")


def check_range(
    owner: str,
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    unit: str = "",
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    hint: str = "",
) -> None:
    """Check ``low <= value <= high`` (bounds optional, inclusivity configurable).

    Args:
        owner: class name used in the message (``"PIMConfig"``).
        name: field name.
        value: the value to check.
        low: lower bound or None.
        high: upper bound or None.
        unit: unit shown after the range, e.g. ``"m"``.
        low_inclusive: whether ``value == low`` is allowed.
        high_inclusive: whether ``value == high`` is allowed.
        hint: the likely fix, appended to the message (e.g. a unit slip).
    """
    check_finite(owner, name, value)
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        brackets = (
            ("[" if low_inclusive else "(") + lo + ", " + hi + ("]" if high_inclusive else ")")
        )
        unit_s = f" {unit}" if unit else ""
        msg = f"{_describe(owner, name)}={value!r}{unit_s} is outside {brackets}{unit_s}"
        raise ValueError(f"{msg}; {hint}" if hint else msg)


def check_int(
    owner: str, name: str, value: int, low: int | None = None, high: int | None = None
) -> None:
    """Check that ``value`` is an ``int`` (not a bool or float) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{_describe(owner, name)} must be an int, got {type(value).__name__} ({value!r}); "
            "pass a whole number"
        )
    check_range(owner, name, value, low, high)


def check_probability(owner: str, name: str, value: float) -> None:
    """Check that ``value`` is a probability or rate in ``[0, 1]``."""
    check_range(owner, name, value, 0.0, 1.0, hint="pass a fraction, not a percentage")


def check_choice(owner: str, name: str, value: str, choices: typing.Iterable[str]) -> None:
    """Check that ``value`` is one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ValueError(
            f"{_describe(owner, name)}={value!r} is not one of {', '.join(map(repr, allowed))}"
        )


def literal_choices(literal: Any) -> tuple[str, ...]:
    """The allowed strings of a ``typing.Literal`` option type (validated from the same type)."""
    return tuple(str(a) for a in get_args(literal))


def _to_json(value: Any) -> Any:
    if isinstance(value, ConfigBlock):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _from_json(tp: Any, value: Any) -> Any:
    """Rebuild a field value of declared type ``tp`` from its JSON form."""
    if value is None:
        return None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        for option in options:
            if isinstance(option, type) and issubclass(option, ConfigBlock):
                if isinstance(value, Mapping):
                    return option.from_dict(value)
            elif get_origin(option) is tuple and isinstance(value, list):
                return _from_json(option, value)
        return value
    if isinstance(tp, type) and issubclass(tp, ConfigBlock):
        if isinstance(value, tp):
            return value
        return tp.from_dict(value)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConfigBlock:
    """Base of every frozen configuration block.

    Subclasses are declared ``@dataclasses.dataclass(frozen=True, kw_only=True)`` and
    validate their fields in ``__post_init__`` with the ``check_*`` helpers.
    """

    def replace(self: _C, **changes: Any) -> _C:
        """Return a copy with ``changes`` applied (validated again)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.replace() got unknown field(s) {unknown}; "
                f"valid fields: {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)

    def with_changes(self: _C, changes: Mapping[str, Any]) -> _C:
        """Return a copy with (possibly nested) fields changed.

        Keys name a field of this config (``"seed"``), a field of a nested block with a dot
        (``"adc.bits"``) or, for keyword use, with an underscore (``"adc_bits"``: the longest
        block name that prefixes the key wins). Every step is validated again.

        Example:
            >>> from physnn.pim.config import PIMConfig
            >>> PIMConfig().with_changes({"adc_bits": 4}).adc.bits
            4
        """
        if not isinstance(changes, Mapping):
            raise TypeError(f"changes must be a mapping, got {type(changes).__name__}")
        grouped: dict[str, dict[str, Any]] = {}
        direct: dict[str, Any] = {}
        for key, value in changes.items():
            head, rest = self._split_change(str(key))
            if rest:
                grouped.setdefault(head, {})[rest] = value
            else:
                direct[head] = value
        for head, sub in grouped.items():
            direct[head] = getattr(self, head).with_changes(sub)
        return self.replace(**direct)

    def _split_change(self, key: str) -> tuple[str, str]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "." in key:
            head, _, rest = key.partition(".")
        elif key in fields:
            return key, ""
        else:
            blocks = [n for n, v in fields.items() if isinstance(v, ConfigBlock)]
            prefixes = sorted((n for n in blocks if key.startswith(n + "_")), key=len)
            if not prefixes:
                raise TypeError(
                    f"{type(self).__name__} has no field {key!r}; valid fields: "
                    f"{sorted(fields)} (nested ones as 'block.field' or 'block_field')"
                )
            head = prefixes[-1]
            rest = key[len(head) + 1 :]
        if head not in fields or not isinstance(fields[head], ConfigBlock):
            raise TypeError(
                f"{type(self).__name__} has no config block {head!r} (in change {key!r}); "
                f"blocks: {sorted(n for n, v in fields.items() if isinstance(v, ConfigBlock))}"
            )
        return head, rest

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict; ``type(self).from_dict(cfg.to_dict()) == cfg``."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Rebuild a config from :meth:`to_dict` output (nested blocks included)."""
        if not isinstance(data, Mapping):
            raise TypeError(
                f"{cls.__name__}.from_dict expects a mapping, got {type(data).__name__}"
            )
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        payload = dict(data)
        payload.pop("backend", None)
        unknown = sorted(set(payload) - fields)
        if unknown:
            raise ValueError(
                f"{cls.__name__}.from_dict got unknown field(s) {unknown}; valid: {sorted(fields)}"
            )
        kwargs = {k: _from_json(hints[k], v) for k, v in payload.items()}
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackendConfig(ConfigBlock):
    """Base of every backend configuration.

    Subclasses set the class variable ``backend`` (the registry name, e.g. ``"pim"``) and
    implement :meth:`ideal`, which returns the same config with every nonideality off.
    """

    backend: ClassVar[str] = ""

    preset: str | None = None
    """Name of the preset this config came from (None for a hand-made config)."""

    seed: int | None = None
    """Base seed of this backend's random streams; None uses torch's global RNG."""

    def __post_init__(self) -> None:
        if self.seed is not None:
            check_int(type(self).__name__, "seed", self.seed, 0, 2**63 - 1)
        if self.preset is not None and not isinstance(self.preset, str):
            raise TypeError(f"{type(self).__name__}.preset must be a str or None")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict including the ``backend`` name (ignored by :meth:`from_dict`)."""
        return {"backend": self.backend, **super().to_dict()}

    def ideal(self) -> BackendConfig:
        """Return this config with every nonideality switched off."""
        raise NotImplementedError(f"{type(self).__name__} does not define ideal()")

    def describe(self) -> str:
        """Short label ``backend:preset`` used in reprs and reports."""
        return f"{self.backend}:{self.preset}" if self.preset else f"{self.backend}:custom"
