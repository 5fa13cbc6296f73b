"""Time series the report plots: MO outcomes and MO→first-reply latency per time bucket.

Seconds count from the history's monotonic anchor, as the checkers and the journal's fault times do.
Buckets are one second wide unless the run is long, when they widen so that a plot keeps a few hundred
of them; rates are then per second averaged over the bucket.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from resilience.checks.analysis import Analysis
from resilience.checks.latency import first_reply_latencies as first_reply_latencies_of
from resilience.history import FAIL, INFO, OK, RecordedHistory
from resilience.snapshot import Snapshot

NS_PER_S = 1_000_000_000
MAX_BUCKETS = 600
MO = "mo"


def bucket_width_s(duration_s: float) -> int:
    return max(1, math.ceil(duration_s / MAX_BUCKETS))


@dataclass
class Throughput:
    bucket_s: int
    starts: list[float] = field(default_factory=list)  # each bucket's start, seconds
    ok: list[float] = field(default_factory=list)  # per second
    fail: list[float] = field(default_factory=list)
    info: list[float] = field(default_factory=list)
    uncompleted: int = 0  # MOs whose completion was never recorded (no time to place them at)


@dataclass
class Latency:
    bucket_s: int
    starts: list[float] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p99: list[float | None] = field(default_factory=list)
    unanswered_at: list[float] = field(default_factory=list)  # invocation seconds of MOs that got no reply
    samples: int = 0


def duration_s(history: RecordedHistory) -> float:
    return max(0.0, (history.end_time - history.header.mono_anchor_ns) / NS_PER_S)


def throughput(history: RecordedHistory) -> Throughput:
    """MO outcomes per second, by completion time (when the outcome became known)."""
    origin = history.header.mono_anchor_ns
    width = bucket_width_s(duration_s(history))
    buckets = math.floor(duration_s(history) / width) + 1
    counts = {OK: [0] * buckets, FAIL: [0] * buckets, INFO: [0] * buckets}
    series = Throughput(bucket_s=width)
    for operation in history.operations:
        if operation.f != MO:
            continue
        if operation.completion is None:
            series.uncompleted += 1
            continue
        position = min(buckets - 1, max(0, (operation.completion.time - origin) // (width * NS_PER_S)))
        counts[operation.completion.type][position] += 1
    series.starts = [float(i * width) for i in range(buckets)]
    series.ok, series.fail, series.info = ([c / width for c in counts[kind]] for kind in (OK, FAIL, INFO))
    return series


LatencySamples = list[tuple[int, float | None]]  # (MO invocation, monotonic ns; seconds to first reply or None)


def first_reply_latencies(history: RecordedHistory, snapshot: Snapshot) -> LatencySamples:
    """Every acknowledged MO owing a reply, with its latency to the first reply: the latency checker's
    own matching, so the plot and the checker's percentiles agree."""
    header = history.header
    pairs = first_reply_latencies_of(Analysis(history, snapshot), header.wall_anchor_ns - header.mono_anchor_ns)
    return [(exchange.invoke_time, seconds) for exchange, seconds in pairs]


def latency(history: RecordedHistory, samples: LatencySamples) -> Latency:
    """p50/p99 of MO→first-reply latency per bucket of MO invocation time."""
    origin = history.header.mono_anchor_ns
    width = bucket_width_s(duration_s(history))
    buckets = math.floor(duration_s(history) / width) + 1
    grouped: list[list[float]] = [[] for _ in range(buckets)]
    series = Latency(bucket_s=width)
    for invoked, seconds in samples:
        if seconds is None:
            series.unanswered_at.append(round((invoked - origin) / NS_PER_S, 3))
            continue
        position = min(buckets - 1, max(0, (invoked - origin) // (width * NS_PER_S)))
        grouped[position].append(seconds)
        series.samples += 1
    series.starts = [float(i * width) for i in range(buckets)]
    for values in grouped:
        if not values:
            series.p50.append(None)
            series.p99.append(None)
            continue
        cuts = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
        series.p50.append(cuts[49])
        series.p99.append(cuts[98])
    return series
