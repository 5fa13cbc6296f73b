"""The command-line options that adjust a topology: `--param NAME=VALUE` and `--set SERVICE.SWITCH=VALUE`.

The one parser of each, shared by every command that takes them (`up`, `topology validate|show`, `workload`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from resilience.topology.errors import LocatedError, TopologyError
from resilience.topology.model import PARAM_NAME, SERVICE_NAME, SWITCH_NAME, is_plain_scalar


def parse_param_options(items: Iterable[str]) -> dict[str, str]:
    """`["n=2", "mode=sync"]` -> `{"n": "2", "mode": "sync"}`; the loader types them like the defaults."""
    params: dict[str, str] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not PARAM_NAME.fullmatch(key.strip()):
            problems.append(LocatedError("--param", None, f"{item!r}: expected NAME=VALUE"))
            continue
        params[key.strip()] = value
    if problems:
        raise TopologyError(problems)
    return params


def parse_set_options(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`["courier.drop_after_ack=0.1"]` -> `{"courier": {"drop_after_ack": 0.1}}`.

    Values are read as YAML scalars (`0.1` a float, `true` a bool, `3` an int); anything else stays a string.
    """
    result: dict[str, dict[str, Any]] = {}
    problems = []
    for item in items:
        target, sep, raw = item.partition("=")
        service, dot, switch = target.strip().partition(".")
        if not sep or not dot or not SERVICE_NAME.fullmatch(service) or not SWITCH_NAME.fullmatch(switch):
            problems.append(LocatedError("--set", None, f"{item!r}: expected SERVICE.SWITCH=VALUE"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        result.setdefault(service, {})[switch] = value if is_plain_scalar(value) else raw
    if problems:
        raise TopologyError(problems)
    return result
