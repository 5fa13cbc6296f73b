"""Recovery bounds: what the n+1 topology promises for each fault kind, judged on every experiment.

`max_unavailable_s`: the longest stretch without an acknowledged MO from the fault's injection until
service is seen again after its recovery. `max_recovery_s`: from the recovery to the first acknowledged
MO. `p95_during_factor`/`p95_after_factor` + `slack_s`: MO->reply p95 during the fault / after the last
fault, relative to the p95 before any fault; `fault_duration_factor` adds that share of the fault's length
to the "during" bound, for faults that hold work back until they heal. The figures are set from what was
measured on the stand-in topology with margin for a loaded CI machine (docs/checkers.md, "Recovery
bounds", has the measurements): a single app-node loss behind HAProxy costs at most a few seconds;
failovers have their own RTO.
An experiment states its own bounds per kind (they override these) or inherits them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resilience.checks import availability, latency
from resilience.verdict.allowances import PolicyError

AVAILABILITY_BOUNDS = availability.BOUND_NAMES
LATENCY_BOUNDS = latency.BOUND_NAMES
BOUND_NAMES = (*AVAILABILITY_BOUNDS, *LATENCY_BOUNDS)

_APP_NODE = {"max_unavailable_s": 6.0, "max_recovery_s": 6.0, "p95_during_factor": 4.0, "p95_after_factor": 3.0,
             "slack_s": 3.0}  # fmt: skip
_NETWORK = {**_APP_NODE, "max_unavailable_s": 25.0, "p95_during_factor": 10.0, "slack_s": 10.0,
            "fault_duration_factor": 1.0}  # fmt: skip
DEFAULT_BOUNDS: dict[str, dict[str, float]] = {
    "kill": _APP_NODE,
    "crash": _APP_NODE,  # the supervisor restarts it: a kill with a recovery the fault does not choose
    "stop": _APP_NODE,
    "restart": _APP_NODE,
    "pause": {**_APP_NODE, "fault_duration_factor": 1.0},
    "search-loss": _APP_NODE,
    "rolling-restart": _APP_NODE,
    "rolling-upgrade": _APP_NODE,
    # HAProxy answers 503 while a whole tier is cut: the outage lasts as long as the cut.
    "lb-cut": {**_APP_NODE, "max_unavailable_s": 15.0},
    # Network faults hold work back until they heal: replies to MOs sent meanwhile wait up to their length.
    "toxic": {**_NETWORK},
    "partition": {**_NETWORK},
    "isolate": {**_NETWORK},
    "loss": {**_NETWORK},
    # The stable address follows a promotion in ~0.2 s and courier acknowledges from its spool meanwhile
    # (measured: 0.7 s without an acknowledged MO); clients reconnect, and the channel cache may be cold.
    # Synchronous replication stalls far longer: pg-failover-sync states its own bounds.
    "pg-failover": {
        "max_unavailable_s": 20.0,
        "max_recovery_s": 15.0,
        "p95_during_factor": 40.0,
        "p95_after_factor": 4.0,
        "slack_s": 30.0,
    },
    "redis-failover": {
        "max_unavailable_s": 25.0,
        "max_recovery_s": 10.0,
        "p95_during_factor": 20.0,
        "p95_after_factor": 4.0,
        "slack_s": 15.0,
    },
}


def check_bounds(raw: Any, where: str) -> dict[str, dict[str, float]]:
    """kind -> {bound name: seconds or factor}, checked."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: bounds must map a fault kind to its bounds, got {type(raw).__name__}")
    checked: dict[str, dict[str, float]] = {}
    for kind, bounds in raw.items():
        if not isinstance(bounds, Mapping):
            raise PolicyError(f"{where}[{kind!r}]: expected a mapping of {list(BOUND_NAMES)}")
        unknown = sorted(set(bounds) - set(BOUND_NAMES))
        if unknown:
            raise PolicyError(f"{where}[{kind!r}]: unknown bound(s) {unknown}; known: {list(BOUND_NAMES)}")
        for name, value in bounds.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise PolicyError(f"{where}[{kind!r}].{name}: expected a number >= 0, got {value!r}")
        checked[str(kind)] = {name: float(value) for name, value in bounds.items()}
    return checked


def effective_bounds(overrides: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The defaults with the experiment's own bounds laid over them, per kind."""
    merged = {kind: dict(bounds) for kind, bounds in DEFAULT_BOUNDS.items()}
    for kind, bounds in overrides.items():
        merged[kind] = {**merged.get(kind, {}), **bounds}
    return merged


def checker_options(
    bounds: Mapping[str, Mapping[str, float]], options: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The checkers' options with the bounds as availability's and latency's `fault_bounds` (an
    experiment's explicit `fault_bounds` option wins)."""
    merged = {name: dict(values) for name, values in options.items()}
    for checker, names in (("availability", AVAILABILITY_BOUNDS), ("latency", LATENCY_BOUNDS)):
        per_kind = {kind: {n: v for n, v in b.items() if n in names} for kind, b in bounds.items()}
        merged.setdefault(checker, {}).setdefault("fault_bounds", {k: v for k, v in per_kind.items() if v})
    return merged
