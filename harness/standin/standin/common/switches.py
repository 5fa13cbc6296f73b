"""Switches: RapidPro v9's known weak spots and planted bugs, set per node through `STANDIN_SWITCHES`.

Each service declares its switches with their real-v9 defaults; `load_switches` merges the JSON object in
the environment over them and refuses unknown names or values of the wrong type, so a typo in an
experiment fails loudly at start instead of silently testing the default.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_VAR = "STANDIN_SWITCHES"


class SwitchError(ValueError):
    """A switch name or value the service does not know."""


@dataclass(frozen=True)
class Switch:
    name: str
    default: bool | float | int | str
    doc: str
    contract: str  # the line of ../shared/rapidpro-contracts.md it comes from ("" for planted bugs)


class Switches:
    """Resolved switch values of one service, with a seeded RNG for probabilistic ones."""

    def __init__(self, service: str, values: Mapping[str, Any], seed: int | None = None) -> None:
        self.service = service
        self._values = dict(values)
        self._rng = random.Random(seed)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def chance(self, name: str) -> bool:
        """True with the probability held by switch `name` (a float in [0, 1])."""
        probability = float(self._values[name])
        return probability > 0 and self._rng.random() < probability


def _coerce(switch: Switch, value: Any, service: str) -> Any:
    expected = type(switch.default)
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "on", "off"}:
            return value.lower() in {"true", "1", "on"}
    elif expected is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
    elif isinstance(value, str):
        return value
    raise SwitchError(
        f"{ENV_VAR}: switch {service}.{switch.name} expects a {expected.__name__}, got {value!r}"
    )


def load_switches(
    service: str,
    declared: list[Switch],
    raw: str | None = None,
    seed: int | None = None,
) -> Switches:
    """Resolve the switches of `service` from `raw` JSON (default: the environment)."""
    text = os.environ.get(ENV_VAR, "") if raw is None else raw
    given: dict[str, Any] = {}
    if text.strip():
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SwitchError(f"{ENV_VAR}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(given, dict):
            raise SwitchError(f"{ENV_VAR}: expected a JSON object of switch names to values")
    by_name = {s.name: s for s in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise SwitchError(
            f"{ENV_VAR}: unknown switch {', '.join(service + '.' + u for u in unknown)}; "
            f"{service} has: {', '.join(sorted(by_name)) or 'none'}"
        )
    values = {s.name: s.default for s in declared}
    for name, value in given.items():
        values[name] = _coerce(by_name[name], value, service)
    return Switches(service, values, seed)
