"""The terminal verdict table and the one-line progress formatter."""

from __future__ import annotations

from rich.console import Console

from resilience.checks.result import CheckResult, Validity
from resilience.report import Progress, format_progress, print_summary, verdict_table


def rendered(*args: object, **kwargs: object) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(verdict_table(*args, **kwargs))  # type: ignore[arg-type]
    return console.export_text()


def test_verdict_table_lists_each_checker_and_the_merged_verdict() -> None:
    checks = [
        CheckResult("inbound", Validity.TRUE, {"mos": 72, "lost": 0}),
        CheckResult("outbound", Validity.FALSE, {"lost": 2, "duplicated": 0}, [{"kind": "lost"}] * 2),
        CheckResult("logs", Validity.UNKNOWN, {"lines": 0}),
    ]
    text = rendered(checks, Validity.FALSE, title="kill-courier")
    assert "kill-courier" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "VALID" in lines["inbound"] and "mos=72" in lines["inbound"] and "lost" not in lines["inbound"]
    assert "INVALID" in lines["outbound"] and "lost=2" in lines["outbound"] and lines["outbound"].rstrip().endswith("2")
    assert "UNKNOWN" in lines["logs"] and "all zero" in lines["logs"]
    assert "verdict: INVALID" in text


def test_verdict_colours() -> None:
    console = Console(record=True, width=80, force_terminal=True, color_system="standard")
    console.print(verdict_table([CheckResult("inbound", Validity.FALSE)], Validity.FALSE))
    assert "\x1b[1;31mINVALID" in console.export_text(styles=True)


def test_no_results_is_said() -> None:
    text = rendered([], Validity.UNKNOWN)
    assert "(no checker results)" in text and "checker" not in text.replace("checker results", "")


def test_summary_lists_missing_parts() -> None:
    console = Console(record=True, width=200, color_system=None)
    print_summary(console, [], Validity.UNKNOWN, problems=["snapshot.json: no such file"], report="/r/report.html")
    text = console.export_text()
    assert "not read: snapshot.json: no such file" in text and "report: /r/report.html" in text


def test_progress_line() -> None:
    state = Progress("workload", 83.4, ok=1200, fail=20, info=14, active_faults=("kill courier-1",), total_s=300)
    assert format_progress(state) == (
        "[01:23/05:00] workload | ops 1234 ok 1200 fail 20 info 14 | errors 34 (2.8%) | faults: kill courier-1"
    )


def test_progress_line_edges() -> None:
    assert format_progress(Progress("heal", 3725.0)) == (
        "[1:02:05] heal | ops 0 ok 0 fail 0 info 0 | errors 0 (–) | faults: none"
    )
    many = Progress("workload", 1.0, active_faults=tuple(f"partition node-{n}" for n in range(40)))
    line = format_progress(many, width=80)
    assert len(line) == 80 and line.endswith("…")
