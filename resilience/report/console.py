"""The terminal side of a report: a compact verdict table (rich), and a one-line progress formatter for
long runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from resilience.checks.result import CheckResult, Validity
from resilience.report.html import key_counts, verdict_word

VERDICT_STYLES = {Validity.TRUE: "bold green", Validity.FALSE: "bold red", Validity.UNKNOWN: "bold yellow"}


def verdict_text(validity: Validity) -> Text:
    return Text(verdict_word(validity).upper(), style=VERDICT_STYLES[validity])


def verdict_table(checks: Sequence[CheckResult], merged: Validity, *, title: str = "") -> Group:
    """One row per checker (verdict, the non-zero counts), then the merged verdict."""
    table = Table(title=title or None, title_justify="left", show_edge=False, pad_edge=False, expand=False)
    table.add_column("checker", style="bold", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("counts (non-zero)")
    table.add_column("ex.", justify="right", no_wrap=True)
    for result in checks:
        counts = "  ".join(f"{name}={value}" for name, value in key_counts(result, limit=6)) or "all zero"
        table.add_row(result.name, verdict_text(result.valid), counts, str(len(result.examples)))
    line = Text.assemble("verdict: ", verdict_text(merged))
    if not checks:
        line.append("  (no checker results)", style="dim")
        return Group(line)
    return Group(table, line)


def print_summary(
    console: Console,
    checks: Sequence[CheckResult],
    merged: Validity,
    *,
    title: str = "",
    problems: Sequence[str] = (),
    report: str | None = None,
) -> None:
    console.print(verdict_table(checks, merged, title=title))
    for problem in problems:
        console.print(Text(f"not read: {problem}", style="yellow"), soft_wrap=True)
    if report:
        console.print(Text(f"report: {report}", style="dim"), soft_wrap=True)


@dataclass(frozen=True)
class Progress:
    """A long run's state at one moment, for `format_progress`."""

    phase: str
    elapsed_s: float
    ok: int = 0
    fail: int = 0
    info: int = 0
    active_faults: Sequence[str] = field(default_factory=tuple)
    total_s: float | None = None  # the planned length of the phase, when known

    @property
    def operations(self) -> int:
        return self.ok + self.fail + self.info

    @property
    def errors(self) -> int:
        return self.fail + self.info


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def format_progress(state: Progress, width: int = 120) -> str:
    """One line, e.g.
    `[01:23/05:00] workload | ops 1234 ok 1200 fail 20 info 14 | errors 34 (2.8%) | faults: kill courier-1`.
    Cut to `width` characters so that it can be rewritten in place with a carriage return."""
    elapsed = _clock(state.elapsed_s) + (f"/{_clock(state.total_s)}" if state.total_s else "")
    ratio = f"{100 * state.errors / state.operations:.1f}%" if state.operations else "–"
    faults = ", ".join(state.active_faults) if state.active_faults else "none"
    line = (
        f"[{elapsed}] {state.phase} | ops {state.operations} ok {state.ok} fail {state.fail} info {state.info}"
        f" | errors {state.errors} ({ratio}) | faults: {faults}"
    )
    return line if len(line) <= width else line[: max(0, width - 1)] + "…"


__all__ = ["Progress", "format_progress", "print_summary", "verdict_table", "verdict_text"]
