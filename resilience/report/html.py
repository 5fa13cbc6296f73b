"""report.html: one self-contained page (inline CSS, the figure as a base64 PNG, no external resources),
laid out for an operator: the verdict first, then what happened when, then the details."""

from __future__ import annotations

import datetime as dt
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from resilience.checks.result import CheckResult, Validity
from resilience.history import HistoryError
from resilience.report import plots, series
from resilience.report.journal import FaultRecord, Probe, iso_of_wall_ns
from resilience.report.logs import NodeLog, Window, fault_windows, read_logs
from resilience.report.run import REPORT_FILE, RunData

NS_PER_S = 1_000_000_000
MAX_DETAIL_ITEMS = 20  # list items shown per list in a checker's details
MAX_DETAIL_CHARS = 20_000
MAX_VALUE_CHARS = 2000  # a value in full (a tooltip, a parameter)
MAX_CELL_CHARS = 140  # a value in an examples table cell

VERDICT_WORDS = {Validity.TRUE: "valid", Validity.FALSE: "invalid", Validity.UNKNOWN: "unknown"}


def verdict_word(validity: Validity) -> str:
    return VERDICT_WORDS[validity]


def format_value(value: Any) -> str:
    """A count, time or example field as a short string: integral floats as ints, nested values as JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{round(value, 3)}"
    text = str(value) if isinstance(value, int | str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " …"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 120:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def _pruned(value: Any) -> Any:
    """Details with long lists cut to their first items, so that per-second series do not swamp the page."""
    if isinstance(value, dict):
        return {str(k): _pruned(v) for k, v in value.items()}
    if isinstance(value, list):
        kept = [_pruned(v) for v in value[:MAX_DETAIL_ITEMS]]
        if len(value) > MAX_DETAIL_ITEMS:
            kept.append(f"… {len(value) - MAX_DETAIL_ITEMS} more")
        return kept
    return value


def details_text(details: dict[str, Any]) -> str:
    text = json.dumps(_pruned(details), indent=1, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "\n… (cut; see results.json)"


@dataclass
class ExampleTable:
    columns: list[str]
    rows: list[list[tuple[str, str]]]  # per cell: (as shown, in full for its tooltip)


def example_table(examples: list[dict[str, Any]]) -> ExampleTable:
    columns: list[str] = []
    for example in examples:
        for key in example:
            if key not in columns:
                columns.append(key)
    if "kind" in columns:
        columns.remove("kind")
        columns.insert(0, "kind")
    rows = [[_cell(example[c]) if c in example else ("", "") for c in columns] for example in examples]
    return ExampleTable(columns, rows)


def _cell(value: Any) -> tuple[str, str]:
    full = format_value(value)
    return (full if len(full) <= MAX_CELL_CHARS else full[:MAX_CELL_CHARS] + " …"), full


def key_counts(result: CheckResult, limit: int = 8) -> list[tuple[str, str]]:
    """The counts worth a glance in the summary: the non-zero ones, first as the checker listed them."""
    shown = [(name, format_value(value)) for name, value in result.counts.items() if value not in (0, 0.0)]
    return shown[:limit]


def _probe_rows(before: dict[str, Probe], after: dict[str, Probe]) -> list[tuple[str, Probe | None, Probe | None]]:
    names = list(before) + [name for name in after if name not in before]
    return [(name, before.get(name), after.get(name)) for name in names]


def _clock(wall_ns: int) -> str:
    return iso_of_wall_ns(wall_ns)[11:23]


def _readable_time(iso: str) -> str:
    """`2024-05-01T12:00:00.123456Z` as `2024-05-01 12:00:00 UTC`; anything else as it is."""
    try:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


EDGE_WORDS = {"inject": "around the injection", "recover": "around the recovery", "fault": "the whole fault"}


@dataclass
class FaultLogs:
    fault: FaultRecord
    number: int
    colour: str
    windows: list[tuple[Window, str, list[tuple[NodeLog, Any]], list[str]]]
    """(window, its span as text, [(node log, excerpt)] of nodes with lines in it, quiet node names)."""


def _fault_logs(run: RunData, faults: list[FaultRecord]) -> tuple[list[FaultLogs], list[NodeLog], list[str]]:
    """Log excerpts around each fault, the logs that have no timestamps (shown as tails), and problems."""
    if not run.logs_dir.is_dir():
        return [], [], []
    origin_wall = run.history.header.wall_anchor_ns if run.history is not None else None
    spans = []
    for fault in faults:
        if origin_wall is None:
            break
        injected = origin_wall + int(fault.injected_s * NS_PER_S)
        recovered = None if fault.recovered_s is None else origin_wall + int(fault.recovered_s * NS_PER_S)
        spans.append((fault.id, injected, recovered))
    windows = fault_windows(spans)
    logs = read_logs(run.logs_dir, windows)
    problems = [log.problem for log in logs if log.problem]
    readable = [log for log in logs if not log.problem]
    timed = [log for log in readable if log.timestamped]
    untimed = [log for log in readable if not log.timestamped]
    if not readable and not problems:
        problems.append(f"{run.logs_dir}: no *.log files — node logs not shown")
    by_fault: list[FaultLogs] = []
    assert origin_wall is not None or not windows
    for number, fault in enumerate(faults):
        targets = {str(t) for t in fault.targets}
        entries = []
        for window in (w for w in windows if w.fault_id == fault.id):
            assert origin_wall is not None
            start_s, end_s = ((at - origin_wall) / NS_PER_S for at in (window.start_ns, window.end_ns))
            span = (
                f"{EDGE_WORDS.get(window.edge, window.edge)}: {start_s:.1f} s → {end_s:.1f} s"
                f"  ({_clock(window.start_ns)}–{_clock(window.end_ns)} UTC)"
            )
            with_lines = [(log, log.excerpts[window.key]) for log in timed if window.key in log.excerpts]
            # the fault's own targets first: their lines are the ones an operator reads first
            with_lines.sort(key=lambda pair: (pair[0].node not in targets, pair[0].node))
            quiet = [log.node for log in timed if window.key not in log.excerpts]
            entries.append((window, span, with_lines, quiet))
        by_fault.append(FaultLogs(fault, number + 1, plots.fault_colour(number), entries))
    return by_fault, untimed, problems


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("resilience.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["value"] = format_value
    environment.filters["seconds"] = format_seconds
    environment.filters["clock"] = _clock
    return environment


def image_rows(images: dict[str, str]) -> list[tuple[list[str], str]]:
    """One row per distinct image: the services that run it, then the image (most services first)."""
    by_tag: dict[str, list[str]] = {}
    for name, tag in images.items():
        by_tag.setdefault(tag, []).append(name)
    return sorted(((names, tag) for tag, names in by_tag.items()), key=lambda row: (-len(row[0]), row[1]))


def render_html(run: RunData) -> str:
    """The page for a run as read by `load_run`; problems met while rendering are added to `run.problems`."""
    journal = run.journal
    history = run.history
    faults = run.faults
    duration = series.duration_s(history) if history is not None else None
    end_s = duration if duration is not None else max((f.recovered_s or f.injected_s for f in faults), default=0.0)

    figure = None
    figure_alt = ""
    throughput = latency = None
    if history is not None:
        throughput = series.throughput(history)
        if run.snapshot is not None:
            try:
                latency = series.latency(history, series.first_reply_latencies(history, run.snapshot))
            except (HistoryError, ValueError) as exc:
                run.problems.append(f"latency not shown: {exc}")
        figure = plots.figure_png(faults, end_s, throughput, latency)
        figure_alt = "Fault bands: " + (
            "; ".join(
                f"#{n + 1} {f.label} {f.injected_s:.1f}–"
                + (f"{f.recovered_s:.1f} s" if f.recovered_s is not None else "end (not recovered)")
                for n, f in enumerate(faults)
            )
            or "none"
        )

    fault_logs, untimed_logs, log_problems = _fault_logs(run, faults)
    run.problems.extend(log_problems)

    started = journal.started_at if journal and journal.started_at else None
    if started is None and history is not None:
        started = history.header.started_wall
    wall_time = journal.wall_time_s if journal and journal.wall_time_s is not None else duration

    checks = run.checks
    context = {
        "run": run,
        "journal": journal,
        "experiment": run.experiment,
        "verdict": verdict_word(run.decision if run.decision is not None else run.verdict),
        "verdict_source": run.verdict_source,
        "decision": verdict_word(run.decision) if run.decision is not None else None,
        "merged": verdict_word(run.verdict),
        "power": run.power,
        "seed": run.seed,
        "run_id": journal.run_id if journal and journal.run_id else (history.header.run_id if history else ""),
        "started": _readable_time(started) if started else None,
        "wall_time": wall_time,
        "problems": run.problems,
        "checks": [
            {
                "result": result,
                "verdict": verdict_word(result.valid),
                "key_counts": key_counts(result),
                "examples": example_table(result.examples),
                "details": details_text(result.details) if result.details else "",
            }
            for result in checks
        ],
        "findings_new": [f for f in journal.findings if not f.known] if journal else [],
        "findings_known": [f for f in journal.findings if f.known] if journal else [],
        "faults": [(n + 1, plots.fault_colour(n), f) for n, f in enumerate(faults)],
        "end_s": end_s,
        "figure": figure,
        "figure_alt": figure_alt,
        "throughput": throughput,
        "latency": latency,
        "probes": _probe_rows(journal.steady_state_before, journal.steady_state_after) if journal else [],
        "image_rows": image_rows(journal.versions.images) if journal else [],
        "fault_logs": fault_logs,
        "untimed_logs": untimed_logs,
        "run_dir_arg": shlex.quote(str(run.run_dir)),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_html(run: RunData) -> Path:
    path = run.run_dir / REPORT_FILE
    text = render_html(run)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path
