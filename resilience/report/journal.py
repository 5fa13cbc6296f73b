"""journal.json: the record of one experiment run — what was planned, what happened when, what was found.

Written once by the experiment runner at the end of a run (see docs/reports.md); the report reads it
back. Reading validates every field and names the offending one (`$.faults[0].kind`), so a hand-edited
or truncated journal gives a clear error rather than a half-rendered report.
"""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import resilience
from resilience.checks.result import CheckResult, Validity
from resilience.history import INJECT, NEMESIS, OK, RECOVER, RecordedHistory
from resilience.report.results import checks_from_json
from resilience.verdict.decision import NEW, Decision, Judgement

JOURNAL_FILE = "journal.json"
JOURNAL_VERSION = 1
NS_PER_S = 1_000_000_000


class JournalError(ValueError):
    """A journal file is missing or malformed; the message names the file and the field."""


@dataclass
class TopologyInfo:
    name: str
    path: str = ""
    nodes: list[str] = field(default_factory=list)


@dataclass
class Versions:
    resilience: str = resilience.__version__
    python: str = platform.python_version()
    images: dict[str, str] = field(default_factory=dict)
    """service (or image role) -> image tag actually run."""


@dataclass
class Probe:
    """One steady-state probe's outcome."""

    ok: bool
    detail: str = ""


@dataclass
class FaultRecord:
    """One fault from the history's nemesis operations. Times are seconds since the history's start
    (its monotonic anchor) and ISO wall-clock times; `None` when the event never happened."""

    id: str
    kind: str
    targets: list[Any] = field(default_factory=list)
    injected_s: float = 0.0
    injected_at: str | None = None
    inject_outcome: str = OK
    recovered_s: float | None = None
    recovered_at: str | None = None
    recover_outcome: str | None = None
    """ok / fail / info of the recover; None when no recover was recorded."""
    facts: dict[str, Any] = field(default_factory=dict)
    """What the nemesis learned while injecting and recovering (e.g. the promoted node)."""

    @property
    def recovered(self) -> bool:
        return self.recover_outcome == OK

    @property
    def duration_s(self) -> float | None:
        return None if self.recovered_s is None else round(self.recovered_s - self.injected_s, 3)

    @property
    def label(self) -> str:
        targets = ", ".join(str(t) for t in self.targets)
        return f"{self.kind} {targets}".strip()


@dataclass
class Finding:
    title: str
    known: bool
    """True when the experiment excuses it: inside a documented allowance (shared/rapidpro-contracts.md),
    a declared unknown, or an exact expectation met; False when it breaks the experiment's rule."""
    detail: str = ""


@dataclass
class Journal:
    experiment: str
    run_id: str = ""
    description: str = ""
    expectations: str = ""
    """What the experiment expects to see, including the known RapidPro v9 weak spots it may hit."""
    seed: int | None = None
    topology: TopologyInfo | None = None
    versions: Versions = field(default_factory=Versions)
    started_at: str | None = None
    finished_at: str | None = None
    wall_time_s: float | None = None
    workload: dict[str, Any] = field(default_factory=dict)
    steady_state_before: dict[str, Probe] = field(default_factory=dict)
    steady_state_after: dict[str, Probe] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    verdict: Validity = Validity.UNKNOWN
    findings: list[Finding] = field(default_factory=list)
    journal_version: int = JOURNAL_VERSION

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


def write_journal(run_dir: Path | str, journal: Journal) -> Path:
    """Write `run_dir/journal.json` (replacing an earlier one: the journal is the run's latest account)."""
    path = Path(run_dir) / JOURNAL_FILE
    encoded = msgspec.json.format(msgspec.json.encode(journal), indent=2)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(encoded + b"\n")
    temporary.replace(path)  # a reader never sees half a journal
    return path


def read_journal(run_dir: Path | str) -> Journal:
    path = Path(run_dir) / JOURNAL_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"{path}: no such file") from None
    except OSError as exc:
        raise JournalError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise JournalError(f"{path}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise JournalError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    try:
        # The checks go through results' decoder, which keeps the counts' ints.
        checks = checks_from_json(raw.pop("checks", []), "$.checks")
        journal = msgspec.convert(raw, Journal)
    except ValueError as exc:  # msgspec.ValidationError included
        raise JournalError(f"{path}: {exc}") from None
    journal.checks = checks
    if journal.journal_version != JOURNAL_VERSION:
        raise JournalError(f"{path}: journal_version {journal.journal_version}; this version reads {JOURNAL_VERSION}")
    return journal


def iso_of_wall_ns(wall_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(wall_ns // NS_PER_S, tz=dt.UTC)
    moment = moment.replace(microsecond=(wall_ns % NS_PER_S) // 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_NAMING_KEYS = frozenset({"id", "fault", "targets"})


def faults_from_history(history: RecordedHistory) -> list[FaultRecord]:
    """Each fault's inject and recover, paired by `value.id`, in injection order.

    The window runs from the inject's invocation (the earliest the fault can have acted) to the recover's
    completion (the latest it may still have acted), as the checkers count it. Nemesis operations other
    than inject/recover, or without an id, carry no window and are skipped: the checkers report those.
    """
    header = history.header
    origin = header.mono_anchor_ns

    def seconds(mono_ns: int) -> float:
        return round((mono_ns - origin) / NS_PER_S, 3)

    faults: dict[str, FaultRecord] = {}
    for operation in history.operations:
        if operation.process != NEMESIS or operation.f not in (INJECT, RECOVER):
            continue
        value = operation.invoke.value if isinstance(operation.invoke.value, dict) else {}
        fault_id = value.get("id")
        if not isinstance(fault_id, str | int):
            continue
        key = str(fault_id)
        extra = {k: v for k, v in operation.result.items() if k not in _NAMING_KEYS}
        if operation.f == INJECT:
            targets = value.get("targets", [])
            faults[key] = FaultRecord(
                id=key,
                kind=str(value.get("fault", "?")),
                targets=targets if isinstance(targets, list) else [targets],
                injected_s=seconds(operation.invoke.time),
                injected_at=iso_of_wall_ns(header.mono_to_wall_ns(operation.invoke.time)),
                inject_outcome=operation.type,
                facts={k: v for k, v in value.items() if k not in _NAMING_KEYS} | extra,
            )
            continue
        fault = faults.get(key)
        if fault is None:
            continue
        fault.recover_outcome = operation.type
        for name, fact in extra.items():
            fault.facts[name if name not in fault.facts else f"recover_{name}"] = fact
        if operation.type == OK and operation.end_time is not None:
            fault.recovered_s = seconds(operation.end_time)
            fault.recovered_at = iso_of_wall_ns(header.mono_to_wall_ns(operation.end_time))
    return sorted(faults.values(), key=lambda f: f.injected_s)


def derive_findings(decision: Decision) -> list[Finding]:
    """The decision's findings grouped by checker, kind and whether the experiment excuses them: `known`
    when every one of the group is allowed (inside its allowance), declared unknown or expected. The same
    split as the test's verdict (resilience.verdict.decision), so "new" means the same everywhere."""
    groups: dict[tuple[str, str, bool], list[Judgement]] = {}
    for judgement in decision.judgements:
        excused = judgement.status not in NEW
        groups.setdefault((judgement.finding.checker, judgement.finding.kind, excused), []).append(judgement)
    findings: list[Finding] = []
    for checker, why in decision.unmet.items():
        findings.append(Finding(title=f"{checker}: {why}", known=False, detail="The experiment expects this exactly."))
    for (checker, kind, excused), judgements in sorted(groups.items(), key=lambda item: (item[0][2], item[0][:2])):
        total = sum(j.finding.count for j in judgements)
        first = judgements[0]
        when = sorted({round(j.finding.at_s, 1) for j in judgements if j.finding.at_s is not None})
        moments = f" at {', '.join(f'{t} s' for t in when[:6])}{' …' if len(when) > 6 else ''}" if when else ""
        severity = first.finding.severity.value
        detail = f"{len(judgements)} finding(s), weight {total}{moments} (verdict {severity}). {first.rule}"
        if len({j.rule for j in judgements}) > 1:
            detail += f" (and {len({j.rule for j in judgements}) - 1} other rule(s): see results.json)"
        findings.append(Finding(title=f"{checker}: {kind.replace('_', ' ')}", known=excused, detail=detail))
    return findings


__all__ = [
    "JOURNAL_FILE",
    "FaultRecord",
    "Finding",
    "Journal",
    "JournalError",
    "Probe",
    "TopologyInfo",
    "Versions",
    "derive_findings",
    "faults_from_history",
    "read_journal",
    "write_journal",
]
