"""results.json: the checkers' results for a run directory, written by whoever runs the checkers
(the experiment runner, `resilience check DIR`) and read by the report.

    {"results_version": 1, "verdict": "false", "written_at": "…Z",
     "checks": [{"name", "valid", "counts", "examples", "details"}, …]}

Each check is `CheckResult.to_dict()`; `verdict` is the merged verdict as the writer judged it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from resilience.checks.result import CheckResult, Finding, Validity, merge

if TYPE_CHECKING:
    from resilience.verdict.decision import Decision

RESULTS_FILE = "results.json"
RESULTS_VERSION = 1


class ResultsError(ValueError):
    """A results file is missing or malformed; the message names the file and the field."""


@dataclass
class RunResults:
    checks: list[CheckResult]
    verdict: Validity
    written_at: str | None = None
    results_version: int = RESULTS_VERSION
    problems: list[str] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    """The experiment's decision as written (validity, power, every finding's status and rule)."""

    def __post_init__(self) -> None:
        self.problems = []
        merged = merge(self.checks)
        if self.checks and merged != self.verdict:
            self.problems.append(f"the recorded verdict is {self.verdict.value} but the checks merge to {merged.value}")


class _StoredCheck(msgspec.Struct, forbid_unknown_fields=True):
    """A CheckResult as JSON. Decoded through this struct rather than the CheckResult dataclass, so that
    counts keep their ints whatever the dataclass's annotations say."""

    name: str
    valid: Validity
    counts: dict[str, int | float] = msgspec.field(default_factory=dict)
    examples: list[dict[str, Any]] = msgspec.field(default_factory=list)
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    findings: list[dict[str, Any]] = msgspec.field(default_factory=list)


def checks_from_json(raw: Any, where: str = "$") -> list[CheckResult]:
    """CheckResults from their JSON form (a list of `to_dict()`); errors name the field from `where`.
    Raises ValueError with the offending path."""
    try:
        stored = msgspec.convert(raw, list[_StoredCheck])
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc).replace("`$", f"`{where}")) from None
    results = []
    for number, check in enumerate(stored):
        try:
            findings = [Finding.from_dict(check.name, raw) for raw in check.findings]
            results.append(CheckResult(check.name, check.valid, check.counts, check.examples, check.details, findings))
        except (ValueError, KeyError, TypeError) as exc:  # CheckResult's own limit on examples, a bad finding
            raise ValueError(f"{exc} - at `{where}[{number}]`") from None
    return results


class _Stored(msgspec.Struct, forbid_unknown_fields=True):
    checks: list[Any]
    verdict: Validity
    written_at: str | None = None
    results_version: int = RESULTS_VERSION
    decision: dict[str, Any] | None = None


def write_results(
    run_dir: Path | str, results: list[CheckResult], merged: Validity, decision: Decision | None = None
) -> Path:
    """Write `run_dir/results.json` (replacing an earlier one: re-checking a run rewrites it)."""
    if not isinstance(merged, Validity):
        raise ResultsError(f"write_results: merged must be a Validity, got {merged!r}")
    path = Path(run_dir) / RESULTS_FILE
    stored = _Stored(
        checks=[result.to_dict() for result in results],
        verdict=merged,
        written_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        decision=decision.to_dict() if decision is not None else None,
    )
    try:
        encoded = msgspec.json.encode(stored)
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: a check result is not JSON-serialisable: {exc}") from None
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(msgspec.json.format(encoded, indent=1) + b"\n")
    temporary.replace(path)
    return path


def read_results(run_dir: Path | str) -> RunResults:
    path = Path(run_dir) / RESULTS_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from None
    try:
        stored = msgspec.convert(raw, _Stored)
        checks = checks_from_json(stored.checks, "$.checks")
    except ValueError as exc:  # msgspec.ValidationError included
        raise ResultsError(f"{path}: {exc}") from None
    if stored.results_version != RESULTS_VERSION:
        raise ResultsError(f"{path}: results_version {stored.results_version}; this version reads {RESULTS_VERSION}")
    return RunResults(checks, stored.verdict, stored.written_at, stored.results_version, decision=stored.decision)
