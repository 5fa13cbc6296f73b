"""Typed reads of service settings from the environment, failing with the variable's name.

Shared by the mailroom, indexer and archiver stand-ins: a bad value stops the service at start with
`NAME: expected …, got …` rather than a traceback deep inside a worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class SettingError(ValueError):
    """An environment variable holding a value of the wrong shape."""


class EnvReader:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        raw = self._raw(name)
        return default if raw is None else raw

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingError(f"{name}: expected an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingError(f"{name}: expected an integer >= {minimum}, got {value}")
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingError(f"{name}: expected a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise SettingError(f"{name}: expected a positive number of seconds, got {raw!r}")
        return value

    def optional_seconds(self, name: str) -> float | None:
        if self._raw(name) is None:
            return None
        return self.seconds(name, 0.0)

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise SettingError(f"{name}: expected true or false, got {raw!r}")
