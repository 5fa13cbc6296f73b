"""The certificate's time series: per experiment, one run of each version on one time axis (MO→reply p99
per bucket and the MOs per second acknowledged), with each run's fault bands, so a reader sees where in the
schedule the candidate differs, not only that its summary figure does.

The runs drawn are the first seed both versions ran (the same schedule and workload); a run directory that
cannot be read costs its own line only, named in the panel.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from resilience.certify.compare import ExperimentComparison, RunRecord
from resilience.history import HistoryError
from resilience.report import series
from resilience.report.journal import FaultRecord
from resilience.report.plots import band_end
from resilience.report.run import ReportError, load_run

COLOURS = {"current": "#1f77b4", "candidate": "#d62728"}
WIDTH_IN, ROW_IN, DPI = 12.0, 2.6, 80


@dataclass
class RunSeries:
    """What one run contributes to the figure; `problem` says why a part is missing."""

    version: str
    seed: int
    starts: list[float] = field(default_factory=list)
    p99: list[float | None] = field(default_factory=list)
    acknowledged: list[float] = field(default_factory=list)
    bucket_s: int = 1
    faults: list[FaultRecord] = field(default_factory=list)
    end_s: float = 0.0
    problem: str = ""


def run_series(record: RunRecord, version: str) -> RunSeries:
    drawn = RunSeries(version, record.seed)
    if not record.run_dir:
        drawn.problem = "no run directory"
        return drawn
    try:
        run = load_run(Path(record.run_dir))
    except (ReportError, OSError) as exc:
        drawn.problem = str(exc)
        return drawn
    drawn.faults = list(run.faults)
    if run.history is None:
        drawn.problem = "no history"
        return drawn
    drawn.end_s = series.duration_s(run.history)
    rate = series.throughput(run.history)
    drawn.starts, drawn.acknowledged, drawn.bucket_s = rate.starts, rate.ok, rate.bucket_s
    if run.snapshot is None:
        drawn.problem = "no snapshot: no latency"
        return drawn
    try:
        latency = series.latency(run.history, series.first_reply_latencies(run.history, run.snapshot))
    except (HistoryError, ValueError) as exc:
        drawn.problem = f"latency not shown: {exc}"
        return drawn
    drawn.p99 = latency.p99
    return drawn


def paired_runs(comparison: ExperimentComparison) -> tuple[RunRecord, RunRecord] | None:
    """The first seed's run of each version, when both versions ran it."""
    candidate_by_seed = {record.seed: record for record in comparison.candidate}
    for record in comparison.current:
        if record.seed in candidate_by_seed:
            return record, candidate_by_seed[record.seed]
    return None


def _bands(axes: Axes, drawn: RunSeries, top: bool) -> None:
    """Each fault as a band in its version's colour: current's in the upper half, candidate's in the lower,
    so two schedules that drifted apart stay readable."""
    colour = COLOURS[drawn.version]
    low, high = (0.5, 1.0) if top else (0.0, 0.5)
    for fault in drawn.faults:
        stop = band_end(fault, drawn.end_s)
        axes.axvspan(fault.injected_s, stop, ymin=low, ymax=high, color=colour, alpha=0.08, linewidth=0, zorder=0)
        axes.axvline(fault.injected_s, ymin=low, ymax=high, color=colour, linewidth=0.8, alpha=0.6, zorder=0.5)


def _plot_pair(latency: Axes, rate: Axes, experiment: str, pair: Sequence[RunSeries]) -> None:
    latency.set_title(f"{experiment}, seed {pair[0].seed}: MO → first reply p99", loc="left", fontsize=9)
    rate.set_title(f"{experiment}: acknowledged MOs per second", loc="left", fontsize=9)
    problems = []
    for drawn in pair:
        colour = COLOURS[drawn.version]
        centres = [start + drawn.bucket_s / 2 for start in drawn.starts]
        points = [(x, y) for x, y in zip(centres, drawn.p99, strict=False) if y is not None]
        if points:
            latency.plot(*zip(*points, strict=True), color=colour, linewidth=1.0, marker=".", markersize=3,
                         label=drawn.version)  # fmt: skip
        if drawn.acknowledged:
            rate.step(drawn.starts, drawn.acknowledged, where="post", color=colour, linewidth=1.0, label=drawn.version)
        if drawn.problem:
            problems.append(f"{drawn.version}: {drawn.problem}")
        for axes in (latency, rate):
            _bands(axes, drawn, top=drawn.version == "current")
    for axes in (latency, rate):
        if problems:
            axes.text(0.01, 0.02, "; ".join(problems)[:160], transform=axes.transAxes, fontsize=7, color="#666")
        if axes.lines:
            axes.legend(loc="upper right", fontsize=7, frameon=False)
        axes.set_xlim(0, max(max((d.end_s for d in pair), default=1.0), 1.0))
        axes.tick_params(labelsize=7)
        axes.grid(axis="x", color="#ddd", linewidth=0.6)
    latency.set_ylabel("seconds", fontsize=8)
    rate.set_ylabel("MOs / s", fontsize=8)
    rate.set_xlabel("seconds since the start of the run", fontsize=8)


def timeline_png(comparisons: Sequence[ExperimentComparison]) -> str:
    """The figure as base64 PNG; "" when no experiment has a run of each version."""
    pairs = []
    for comparison in comparisons:
        runs = paired_runs(comparison)
        if runs is not None:
            current, candidate = runs
            pairs.append((comparison.experiment, (run_series(current, "current"), run_series(candidate, "candidate"))))
    if not pairs:
        return ""
    figure, axes = plt.subplots(len(pairs), 2, figsize=(WIDTH_IN, ROW_IN * len(pairs)), squeeze=False)
    try:
        for row, (experiment, pair) in enumerate(pairs):
            _plot_pair(axes[row][0], axes[row][1], experiment, pair)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


__all__ = ["RunSeries", "paired_runs", "run_series", "timeline_png"]
