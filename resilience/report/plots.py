"""The report's figure: fault timeline, MO throughput and MO→reply latency on one shared time axis, with
the same fault bands on every panel, rendered by matplotlib (Agg) to an inline base64 PNG."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FormatStrFormatter

from resilience.report.journal import FaultRecord
from resilience.report.series import Latency, Throughput

FAULT_COLOURS = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#1f77b4")
OK_COLOUR, FAIL_COLOUR, INFO_COLOUR = "#2ca02c", "#d62728", "#ff9f1c"
WIDTH_IN, DPI = 12.0, 100
LABEL_BAND_PT = 13.0  # above a data panel: the faults' numbers, below its title and legend


def fault_colour(number: int) -> str:
    return FAULT_COLOURS[number % len(FAULT_COLOURS)]


def band_end(fault: FaultRecord, end_s: float) -> float:
    """Where a fault's band stops: its recovery, or the end of the run when it was never surely removed."""
    return fault.recovered_s if fault.recovered_s is not None else end_s


def _bands(axes: Axes, faults: Sequence[FaultRecord], end_s: float, *, numbered: bool) -> None:
    for number, fault in enumerate(faults):
        colour = fault_colour(number)
        stop = band_end(fault, end_s)
        # behind the data, so that bars and lines keep their colours
        axes.axvspan(fault.injected_s, stop, color=colour, alpha=0.13, linewidth=0, zorder=0)
        axes.axvline(fault.injected_s, color=colour, linewidth=0.8, alpha=0.7, zorder=0.5)
        if numbered:
            # a strip along the top, in front of the data, which dense bars cannot hide
            axes.axvspan(fault.injected_s, stop, ymin=0.97, ymax=1.0, color=colour, alpha=0.85, linewidth=0, zorder=3)
            # its number just above the panel, in the band the title leaves free: never over the data
            axes.annotate(
                f"#{number + 1}",
                xy=(fault.injected_s, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(1, 1),
                textcoords="offset points",
                va="bottom",
                fontsize=8,
                color=colour,
                annotation_clip=False,
            )


def _timeline(axes: Axes, faults: Sequence[FaultRecord], end_s: float) -> None:
    axes.set_title("Faults (inject → recover)", loc="left", fontsize=10)
    if not faults:
        axes.text(0.5, 0.5, "no faults in this run", ha="center", va="center", transform=axes.transAxes, color="#666")
        axes.set_yticks([])
        return
    for number, fault in enumerate(faults):
        row = len(faults) - 1 - number
        stop = band_end(fault, end_s)
        open_ended = fault.recovered_s is None
        axes.barh(
            row,
            max(stop - fault.injected_s, end_s / 500),
            left=fault.injected_s,
            height=0.6,
            color=fault_colour(number),
            alpha=0.55 if not open_ended else 0.3,
            hatch="//" if open_ended else None,
            edgecolor=fault_colour(number),
        )
        notes = [note for note, applies in (("not recovered", open_ended), (
            f"inject {fault.inject_outcome}", fault.inject_outcome != "ok")) if applies]  # fmt: skip
        if notes:
            # inside the bar's start, where there is always room: the bar may run to the right edge
            axes.annotate(", ".join(notes), xy=(fault.injected_s, row), xytext=(3, 0), textcoords="offset points",
                          va="center", fontsize=8, color="#333")  # fmt: skip
    axes.set_yticks(
        range(len(faults)), [_short(f"#{n + 1} {f.label}") for n, f in reversed(list(enumerate(faults)))], fontsize=8.5
    )
    axes.tick_params(axis="y", length=0)
    axes.set_ylim(-0.6, len(faults) - 0.4)


def _short(label: str, limit: int = 30) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _throughput(axes: Axes, series: Throughput) -> None:
    per = "" if series.bucket_s == 1 else f", averaged over {series.bucket_s} s"
    axes.set_title(f"MO outcomes per second, by completion time{per}", loc="left", fontsize=10, pad=LABEL_BAND_PT)
    width = series.bucket_s
    bottom_fail = series.ok
    bottom_info = [ok + fail for ok, fail in zip(series.ok, series.fail, strict=True)]
    axes.bar(series.starts, series.ok, width=width, align="edge", color=OK_COLOUR, label="ok", linewidth=0)
    axes.bar(series.starts, series.fail, width=width, align="edge", bottom=bottom_fail, color=FAIL_COLOUR,
             label="fail", linewidth=0)  # fmt: skip
    axes.bar(series.starts, series.info, width=width, align="edge", bottom=bottom_info, color=INFO_COLOUR,
             label="info (unknown)", linewidth=0)  # fmt: skip
    axes.set_ylabel("MOs / s")
    _legend(axes)


def _legend(axes: Axes) -> None:
    """Above the panel's top right, beside its title, where it hides no data."""
    pad = LABEL_BAND_PT / 8  # in font sizes: clear of the faults' numbers
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False, borderaxespad=pad)


def _latency(axes: Axes, series: Latency) -> None:
    per = "" if series.bucket_s == 1 else f", {series.bucket_s} s buckets"
    axes.set_title(f"MO → first reply latency, by MO invocation time{per}", loc="left", fontsize=10, pad=LABEL_BAND_PT)
    centres = [start + series.bucket_s / 2 for start in series.starts]
    p50 = [(x, y) for x, y in zip(centres, series.p50, strict=True) if y is not None]
    p99 = [(x, y) for x, y in zip(centres, series.p99, strict=True) if y is not None]
    if p99:
        axes.plot(*zip(*p99, strict=True), color="#d62728", linewidth=1.0, marker=".", markersize=3, label="p99")
    if p50:
        axes.plot(*zip(*p50, strict=True), color="#1f77b4", linewidth=1.2, marker=".", markersize=3, label="p50")
    values = [y for _, y in p99] + [y for _, y in p50]
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))  # 10 rather than 10¹: read at a glance
    if series.unanswered_at:
        axes.plot(
            series.unanswered_at,
            [0] * len(series.unanswered_at),
            linestyle="none",
            marker="|",
            markersize=10,
            color="#000",
            transform=axes.get_xaxis_transform(),
            label="no reply",
            clip_on=False,
        )
    if not values and not series.unanswered_at:
        axes.text(0.5, 0.5, "no latency samples", ha="center", va="center", transform=axes.transAxes, color="#666")
    else:
        _legend(axes)
    axes.set_ylabel("seconds")


def figure_png(
    faults: Sequence[FaultRecord],
    end_s: float,
    throughput: Throughput | None,
    latency: Latency | None,
) -> str:
    """The figure as a `data:image/png;base64,…` URI."""
    panels = 1 + (throughput is not None) + (latency is not None)
    timeline_height = max(0.9, 0.32 * len(faults) + 0.5)
    ratios = [timeline_height] + [2.4] * (panels - 1)
    figure, axes_list = plt.subplots(
        panels,
        1,
        sharex=True,
        figsize=(WIDTH_IN, sum(ratios) + 0.8),
        gridspec_kw={"height_ratios": ratios},
        squeeze=False,
    )
    axes = [row[0] for row in axes_list]
    try:
        _timeline(axes[0], faults, end_s)
        _bands(axes[0], faults, end_s, numbered=False)
        position = 1
        if throughput is not None:
            _throughput(axes[position], throughput)
            _bands(axes[position], faults, end_s, numbered=True)
            position += 1
        if latency is not None:
            _latency(axes[position], latency)
            _bands(axes[position], faults, end_s, numbered=True)
        for each in axes:
            each.grid(axis="x", color="#ddd", linewidth=0.6)
            each.set_axisbelow(True)
            for side in ("top", "right"):
                each.spines[side].set_visible(False)
        axes[-1].set_xlim(0, max(end_s, 1.0))
        axes[-1].set_xlabel("seconds since the start of the run")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
