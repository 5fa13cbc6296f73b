"""Logs: lines matching trouble patterns (panic, Python tracebacks, duplicate key, FATAL) on every node."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Examples, verdict
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
DEFAULT_ALLOWED: tuple[str, ...] = (
    r"FATAL:\s+the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)",
    r"FATAL:\s+terminating connection due to administrator command",
    r"FATAL:\s+could not receive data from WAL stream",
    r"FATAL:\s+could not connect to the primary server",
)


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
    analysis: Analysis | None = None,  # unused: logs come from the snapshot alone
) -> CheckResult:
    opts = parse_options(LogsOptions, options, NAME)
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
    allowed_lines = 0
    lines_read = 0
    for node, lines in (logs or {}).items():
        found: Counter[str] = Counter()
        lines_read += len(lines)
        for number, line in enumerate(lines, start=1):
            hits = [name for name, pattern in patterns.items() if pattern.search(line)]
            if not hits:
                continue
            if allowed is not None and allowed.search(line):
                allowed_lines += 1
                continue
            for name in hits:
                found[name] += 1
                examples.add(name, node=node, line_number=number, line=line[:MAX_LINE])
        per_node[node] = dict(found)
        totals.update(found)
    counts: dict[str, int | float] = {"nodes": len(logs or {}), "lines": lines_read, "allowed": allowed_lines}
    counts.update({name: totals[name] for name in patterns})
    counts["matches"] = sum(totals.values())
    return CheckResult(
        name=NAME,
        valid=verdict(false_if=counts["matches"] > 0, unknown_if=not logs),
        counts=counts,
        examples=examples.items,
        details={"per_node": per_node, "patterns": {n: p.pattern for n, p in patterns.items()}},
    )
