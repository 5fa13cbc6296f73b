"""Logs: lines matching trouble patterns (panic, Python tracebacks, duplicate key, FATAL) on every node."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Examples, Finding, Validity
from resilience.history import RecordedHistory
from resilience.snapshot import Snapshot

NAME = "logs"
MAX_LINE = 300  # characters of a line kept in an example
RESERVED_COUNTS = frozenset({"nodes", "lines", "allowed", "matches"})

DEFAULT_PATTERNS: dict[str, str] = {
    "panic": r"\bpanic\b",
    "traceback": r"Traceback \(most recent call last\)",
    "duplicate_key": r"duplicate key",
    "fatal": r"\bFATAL\b",
}

# Lines a fault is expected to cause: PostgreSQL refusing or dropping connections while it is killed,
# restarted, promoted or recovering. Judging them as trouble would fail every database experiment.
# A standby's walreceiver that heard nothing for wal_receiver_timeout (5 s in our nodes) ends and reconnects
# a second later: on a loaded 2-core CI machine that happened during latency-postgres, which does not touch
# replication at all. What a replication gap costs the messages is judged by the delivery checkers.
DEFAULT_ALLOWED: tuple[str, ...] = (
    r"FATAL:\s+the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)",
    r"FATAL:\s+terminating connection due to administrator command",
    r"FATAL:\s+could not receive data from WAL stream",
    r"FATAL:\s+terminating walreceiver due to timeout",
    r"FATAL:\s+could not connect to the primary server",
)


KINDS: dict[str, str] = {
    "panic": "a Go panic",
    "traceback": "a Python traceback",
    "duplicate_key": "a unique constraint violated",
    "fatal": "a FATAL line (PostgreSQL's expected ones around restarts and failovers are allowed by default)",
    "no_data": "no logs were collected (unknown)",
}
"""The default patterns' kinds; an experiment with its own `patterns` may use their names as kinds too."""
# Docker's `logs --timestamps` prefix: RFC 3339 with up to nanoseconds, in UTC.
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z ")


def line_wall_ns(line: str) -> tuple[int | None, str]:
    """(wall-clock ns of a Docker timestamp prefix or None, the line without it)."""
    match = TIMESTAMP.match(line)
    if match is None:
        return None, line
    whole = dt.datetime.fromisoformat(match.group(1)).replace(tzinfo=dt.UTC)
    fraction = (match.group(2) or "0").ljust(9, "0")
    return int(whole.timestamp()) * 1_000_000_000 + int(fraction), line[match.end() :]


@dataclass(frozen=True)
class LogsOptions:
    patterns: dict[str, str] | None = None
    """name -> regular expression searched in every line; None means DEFAULT_PATTERNS."""
    allowed: tuple[str, ...] = ()
    """Regular expressions: a line matching any of them is never counted."""
    default_allowed: bool = True
    """Also allow DEFAULT_ALLOWED (PostgreSQL's expected FATALs around restarts and failovers)."""


def _compile(expression: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(expression)
    except re.error as exc:
        raise OptionsError(f"{NAME}.{where}: {expression!r} is not a regular expression ({exc})") from None


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: LogsOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(LogsOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    reserved = RESERVED_COUNTS.intersection(opts.patterns or ())
    if reserved:
        raise OptionsError(f"{NAME}.patterns: names {sorted(reserved)} are taken by the checker's own counts")
    patterns = {
        name: _compile(expression, f"patterns[{name!r}]")
        for name, expression in (opts.patterns if opts.patterns is not None else DEFAULT_PATTERNS).items()
    }
    allowances = (*opts.allowed, *(DEFAULT_ALLOWED if opts.default_allowed else ()))
    allowed = _compile("|".join(f"(?:{a})" for a in allowances), "allowed") if allowances else None

    logs = snapshot.logs
    per_node: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    examples = Examples()
    findings: list[Finding] = []
    allowed_lines = 0
    lines_read = 0
    for node, lines in (logs or {}).items():
        found: Counter[str] = Counter()
        lines_read += len(lines)
        for number, stamped in enumerate(lines, start=1):
            wall_ns, line = line_wall_ns(stamped)
            hits = [name for name, pattern in patterns.items() if pattern.search(line)]
            if not hits:
                continue
            if allowed is not None and allowed.search(line):
                allowed_lines += 1
                continue
            at_s = round(analysis.seconds_of_wall(wall_ns), 3) if wall_ns is not None else None
            for name in hits:
                found[name] += 1
                examples.add(name, node=node, line_number=number, line=line[:MAX_LINE])
                findings.append(Finding(NAME, name, Validity.FALSE, at_s, node=node, detail=line[:MAX_LINE]))
        per_node[node] = dict(found)
        totals.update(found)
    counts: dict[str, int | float] = {"nodes": len(logs or {}), "lines": lines_read, "allowed": allowed_lines}
    counts.update({name: totals[name] for name in patterns})
    counts["matches"] = sum(totals.values())
    if not logs:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="no logs collected"))
    return CheckResult.of_findings(
        NAME, findings, counts, examples.items,
        {"per_node": per_node, "patterns": {n: p.pattern for n, p in patterns.items()}},
    )  # fmt: skip
