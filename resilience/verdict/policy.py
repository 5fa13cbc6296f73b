"""An experiment's verdict policy: its allowances, bounds, declared unknowns and exact expectations.

Kept in the run directory as policy.json, so that `resilience check DIR` re-judges a stored run exactly
as the test did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resilience.checks import CHECKERS, KINDS
from resilience.checks.result import Validity
from resilience.verdict.allowances import Allowance, PolicyError, allowance_from
from resilience.verdict.bounds import check_bounds, effective_bounds

POLICY_FILE = "policy.json"
ANY_CHECKER_KINDS = {"checker_error": "the checker itself failed (unknown, with its traceback in the report)"}


@dataclass(frozen=True)
class Policy:
    allowances: tuple[Allowance, ...] = ()
    unknown: Mapping[str, str] = field(default_factory=dict)
    """"checker" or "checker.kind" -> why that unknown is expected (e.g. replies wait for a 5-minute cron)."""
    expected: Mapping[str, Validity] = field(default_factory=dict)
    """checker -> the exact verdict it must reach (its findings are then not judged one by one)."""
    bounds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """fault kind -> recovery bounds laid over bounds.DEFAULT_BOUNDS."""
    log_kinds: tuple[str, ...] = ()
    """Kinds the experiment's own log patterns add to the logs checker's."""

    @property
    def effective_bounds(self) -> dict[str, dict[str, float]]:
        return effective_bounds(self.bounds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowances": [a.to_dict() for a in self.allowances],
            "unknown": dict(self.unknown),
            "expected": {k: v.value for k, v in self.expected.items()},
            "bounds": {k: dict(v) for k, v in self.bounds.items()},
            "log_kinds": list(self.log_kinds),
        }


def kinds_of(checker: str, log_kinds: tuple[str, ...] = ()) -> dict[str, str]:
    kinds = {**KINDS[checker], **ANY_CHECKER_KINDS}
    if checker == "logs":
        kinds.update(dict.fromkeys(log_kinds, "a line matching the experiment's own pattern"))
    return kinds


def _check_key(key: str, where: str, log_kinds: tuple[str, ...], kind_required: bool) -> None:
    checker, _, kind = key.partition(".")
    if checker not in CHECKERS:
        raise PolicyError(f"{where}: no checker {checker!r}; the checkers are {sorted(CHECKERS)}")
    if not kind:
        if kind_required:
            raise PolicyError(
                f"{where}: {key!r} names no kind; {checker}'s kinds: {sorted(kinds_of(checker, log_kinds))}"
            )
        return
    kinds = kinds_of(checker, log_kinds)
    if kind not in kinds:
        raise PolicyError(f"{where}: {checker} reports no kind {kind!r}; its kinds: {sorted(kinds)}")


def make_policy(
    allowances: Any = (),
    unknown: Any = None,
    expected: Any = None,
    bounds: Any = None,
    log_kinds: tuple[str, ...] = (),
    where: str = "policy",
) -> Policy:
    """A Policy from the experiment's declarations, each checked: an unknown checker or kind, a missing
    maximum, a reasonless unknown all raise PolicyError naming the entry and what is expected."""
    if isinstance(allowances, Mapping | str):
        raise PolicyError(f"{where}: allowances must be a list of Allowance(...) (the old `known` names are gone: "
                          "each allowance names its kind, fault, window and maximum)")  # fmt: skip
    checked = []
    for number, raw in enumerate(allowances or ()):
        allowance = allowance_from(raw, f"{where}: allowances[{number}]")
        _check_key(allowance.key, f"{where}: allowances[{number}]", log_kinds, kind_required=True)
        checked.append(allowance)
    declared: dict[str, str] = {}
    if unknown is not None and not isinstance(unknown, Mapping):
        raise PolicyError(f"{where}: unknown must map 'checker' or 'checker.kind' to a reason")
    for key, reason in (unknown or {}).items():
        _check_key(str(key), f"{where}: unknown[{key!r}]", log_kinds, kind_required=False)
        if not isinstance(reason, str) or not reason.strip():
            raise PolicyError(f"{where}: unknown[{key!r}] needs a reason (why this checker cannot decide here)")
        declared[str(key)] = reason
    wanted: dict[str, Validity] = {}
    if expected is not None and not isinstance(expected, Mapping):
        raise PolicyError(f"{where}: expected must map a checker to true/false/unknown")
    for checker, value in (expected or {}).items():
        _check_key(str(checker), f"{where}: expected[{checker!r}]", log_kinds, kind_required=False)
        try:
            wanted[str(checker)] = value if isinstance(value, Validity) else Validity(str(value).lower())
        except ValueError:
            raise PolicyError(f"{where}: expected[{checker!r}] must be true, false or unknown, got {value!r}") from None
    return Policy(tuple(checked), declared, wanted, check_bounds(bounds or {}, f"{where}: bounds"), tuple(log_kinds))


def policy_from_dict(raw: Any, where: str) -> Policy:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a JSON object")
    unknown_keys = sorted(set(raw) - {"allowances", "unknown", "expected", "bounds", "log_kinds"})
    if unknown_keys:
        raise PolicyError(f"{where}: unknown key(s) {unknown_keys}")
    return make_policy(raw.get("allowances", []), raw.get("unknown"), raw.get("expected"), raw.get("bounds"),
                       tuple(raw.get("log_kinds", [])), where)  # fmt: skip


def write_policy(run_dir: Path, policy: Policy) -> Path:
    path = Path(run_dir) / POLICY_FILE
    path.write_text(json.dumps(policy.to_dict(), indent=1) + "\n")
    return path


def read_policy(run_dir: Path) -> Policy | None:
    """The run's policy, or None for a run without one (a bare workload: judged by its merged verdict)."""
    path = Path(run_dir) / POLICY_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    return policy_from_dict(raw, str(path))
