"""Checker options: one frozen dataclass per checker, built from a mapping with clear errors."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

OptionsT = TypeVar("OptionsT")


class OptionsError(ValueError):
    """An option name or value a checker does not accept."""


def parse_options(cls: type[OptionsT], raw: OptionsT | Mapping[str, Any] | None, checker: str) -> OptionsT:
    """`raw` may be None (defaults), an instance of `cls`, or a mapping of field name -> value.

    Values are checked against the field's annotation (int, float, bool, str, None, tuple/list of str,
    dict of str -> str); lists are turned into tuples so that options stay immutable.
    """
    if raw is None:
        return cls()
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, Mapping):
        raise OptionsError(f"{checker}: options must be a mapping, got {type(raw).__name__}")
    assert dataclasses.is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise OptionsError(f"{checker}: unknown option(s) {unknown}; known: {sorted(known)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        values[name] = _coerce(value, hints[name], f"{checker}.{name}")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, where)
            except OptionsError:
                continue
        raise OptionsError(f"{where}: {value!r} is not {_describe(hint)}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if isinstance(value, list | tuple):
            return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if isinstance(value, Mapping):
            return {_coerce(k, key_hint, where): _coerce(v, value_hint, f"{where}[{k!r}]") for k, v in value.items()}
    raise OptionsError(f"{where}: {value!r} is not {_describe(hint)}")


def _describe(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")
