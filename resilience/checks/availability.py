"""Availability and recovery: success ratio per second, and per fault the time to the first success,
the time to recover, the longest stretch without a success, and (for failovers) the recovery point:
acknowledged MOs lost across the failover."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import NS_PER_S, Exchange, FaultWindow, HistoryView
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Examples, Finding, Validity
from resilience.history import FAIL, INFO, OK, RecordedHistory
from resilience.snapshot import Snapshot

NAME = "availability"


@dataclass(frozen=True)
class AvailabilityOptions:
    min_success_ratio: float | None = None
    """Overall ok / (ok + fail + info) of MOs below this makes the verdict false."""
    max_recovery_s: float | None = None
    """A fault whose time to recover (recover -> first ok) exceeds this makes the verdict false."""
    max_unavailable_s: float | None = None
    """A fault whose longest stretch without an ok exceeds this makes the verdict false."""
    max_rpo_msgs: int = 0
    """Acknowledged MOs a single failover may lose before the verdict is false."""
    failover_kinds: tuple[str, ...] = ()
    """Fault kinds that are failovers; empty means every kind whose name contains "failover"."""
    rpo_lookback_s: float = 2.0
    """A failover's recovery point counts the acknowledged MOs lost that were acknowledged from this long
    before its injection (what replication may not have shipped yet) until its recovery; losses outside
    every failover's window are not charged to a failover."""
    fault_bounds: dict[str, dict[str, float]] | None = None
    """Per fault kind, `max_unavailable_s` and `max_recovery_s` for faults of that kind (over the global
    ones); the experiment fills it from resilience/verdict/bounds.py."""


KINDS: dict[str, str] = {
    "unavailable": "a fault's longest stretch without an acknowledged MO exceeded its bound",
    "slow_recovery": "the first acknowledged MO after a fault's recovery came later than its bound",
    "never_recovered": "no MO was acknowledged after a fault's recovery (unknown, or false once MOs were tried "
    "for longer than the recovery bound)",
    "rpo": "acknowledged MOs lost inside a failover's window, over max_rpo_msgs (count: messages)",
    "low_success_ratio": "the overall share of acknowledged MOs fell below min_success_ratio",
    "no_data": "no MO completed (unknown)",
}
BOUND_NAMES = ("max_unavailable_s", "max_recovery_s")


class _Successes:
    """Successful MOs, for "first success among MOs invoked at or after t" in O(log n)."""

    def __init__(self, mos: list[Exchange]) -> None:
        oks = sorted((m.invoke_time, m.end_time) for m in mos if m.outcome == OK and m.end_time is not None)
        self.invoked = [invoked for invoked, _ in oks]
        # earliest completion among MOs invoked at or after position i
        self.first_done_from = list(accumulate(reversed([done for _, done in oks]), min))[::-1]
        self.done_sorted = sorted(done for _, done in oks)
        # When the last MO was tried (its completion, or its invocation if it never completed): an outage
        # that never ended is measured up to here, not across time when nobody was sending.
        self.last_attempt = max((m.end_time or m.invoke_time for m in mos), default=None)

    def first_after(self, when: int) -> int | None:
        position = bisect.bisect_left(self.invoked, when)
        return self.first_done_from[position] if position < len(self.invoked) else None

    def longest_gap(self, start: int, stop: int) -> tuple[int, int]:
        """The longest stretch within [start, stop] with no completed success: (from, to)."""
        lo = bisect.bisect_left(self.done_sorted, start)
        hi = bisect.bisect_right(self.done_sorted, stop)
        edges = [start, *self.done_sorted[lo:hi], stop]
        gaps = ((b - a, a, b) for a, b in pairwise(edges))
        _, begin, end = max(gaps)
        return begin, end


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: AvailabilityOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(AvailabilityOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    mos = view.mos
    outcomes = Counter(m.outcome for m in mos)
    pending = sum(m.end_time is None for m in mos)
    completed = len(mos) - pending
    ratio = outcomes[OK] / len(mos) if mos else None  # an MO never completed counts as info

    successes = _Successes(mos)
    invoked = [m.invoke_time for m in mos]
    lost_acks = _lost_acknowledgements(analysis)
    examples = Examples()
    findings: list[Finding] = []
    faults = []
    moments: dict[str, tuple[float, float | None]] = {}  # failover id -> (injection, last lost acknowledgement)
    lookback = int(opts.rpo_lookback_s * NS_PER_S)
    for fault in view.applied_faults:
        report = _fault_report(fault, view, mos, invoked, successes)
        report["bounds"] = _bounds_for(fault.kind, opts)
        if _is_failover(fault, opts):
            until = fault.until(view.history.end_time)
            lost_here = [(t, settled) for t, settled in lost_acks if fault.start - lookback <= t < until]
            report["rpo_msgs"] = len(lost_here)
            report["rpo_window_s"] = [round(view.seconds(fault.start - lookback), 3), round(view.seconds(until), 3)]
            report["rpo_settled"] = all(settled for _, settled in lost_here)
            # Exact moments for the verdict's windows: the report's rounded seconds could put the injection
            # itself a fraction of a millisecond outside a window that closes when the inject took hold.
            moments[fault.id] = (view.seconds(fault.start), view.seconds(lost_here[-1][0]) if lost_here else None)
        faults.append(report)

    def find(kind: str, severity: Validity, report: dict[str, Any], at_s: float | None, detail: str,
             count: int = 1, acked_s: float | None = None) -> None:  # fmt: skip
        findings.append(Finding(NAME, kind, severity, at_s, count, fault=report["id"], detail=detail,
                                acked_s=acked_s))  # fmt: skip
        examples.add(kind, **{k: v for k, v in report.items() if k != "targets"})

    failovers = [f for f in faults if "rpo_msgs" in f]
    for report in faults:
        bounds = report["bounds"]
        label = f"{report['fault']} {' '.join(map(str, report['targets']))}".strip()
        limit = bounds.get("max_unavailable_s")
        if limit is not None and report["unavailable_s"] > limit:
            find("unavailable", Validity.FALSE, report, report["unavailable_from_s"],
                 f"{label}: {report['unavailable_s']} s without an acknowledged MO > bound {limit} s")  # fmt: skip
        late = bounds.get("max_recovery_s")
        if late is not None and (report["time_to_recover_s"] or 0) > late:
            took = report["time_to_recover_s"]
            find("slow_recovery", Validity.FALSE, report, report["end_s"],
                 f"{label}: first acknowledged MO {took} s after recovery > bound {late} s")  # fmt: skip
        if report["never_recovered"]:
            given_up = late is not None and report["tried_after_recover_s"] > late
            tried = report["tried_after_recover_s"]
            find("never_recovered", Validity.FALSE if given_up else Validity.UNKNOWN, report, report["end_s"],
                 f"{label}: no MO acknowledged in the {tried} s tried after recovery")  # fmt: skip
        if "rpo_msgs" in report and report["rpo_msgs"] > opts.max_rpo_msgs:
            injected_s, last_lost_s = moments[report["id"]]
            find("rpo", Validity.FALSE if report["rpo_settled"] else Validity.UNKNOWN, report, injected_s,
                 f"{label}: {report['rpo_msgs']} acknowledged MOs lost in {report['rpo_window_s']} s",
                 count=report["rpo_msgs"], acked_s=last_lost_s)  # fmt: skip
    if opts.min_success_ratio is not None and ratio is not None and ratio < opts.min_success_ratio:
        findings.append(Finding(NAME, "low_success_ratio", Validity.FALSE,
                                detail=f"{ratio:.3f} < {opts.min_success_ratio}"))  # fmt: skip
    if completed == 0:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="no MO completed"))

    quiescent = snapshot.quiescent
    recover_times = [f["time_to_recover_s"] for f in faults if f["time_to_recover_s"] is not None]
    gaps = [f["unavailable_s"] for f in faults]
    counts: dict[str, int | float] = {
        "mos": len(mos),
        "ok": outcomes[OK],
        "fail": outcomes[FAIL],
        "info": outcomes[INFO],
        "pending": pending,
        "success_ratio": round(ratio, 6) if ratio is not None else 0.0,
        "faults": len(faults),
        "failovers": len(failovers),
        "never_recovered": sum(f["never_recovered"] for f in faults),
        "max_time_to_recover_s": max(recover_times, default=0.0),
        "max_unavailable_s": max(gaps, default=0.0),
        "rpo_msgs": sum(f["rpo_msgs"] for f in failovers),
    }
    return CheckResult.of_findings(
        NAME,
        findings,
        counts,
        examples.items,
        {"per_second": _per_second(view, mos), "faults": faults, "quiescent": quiescent},
    )


def _bounds_for(kind: str, opts: AvailabilityOptions) -> dict[str, float]:
    bounds = {
        name: value
        for name, value in (("max_unavailable_s", opts.max_unavailable_s), ("max_recovery_s", opts.max_recovery_s))
        if value is not None
    }
    per_kind = (opts.fault_bounds or {}).get(kind, {})
    unknown = sorted(set(per_kind) - set(BOUND_NAMES))
    if unknown:
        raise OptionsError(f"{NAME}.fault_bounds[{kind!r}]: unknown bound(s) {unknown}; known: {list(BOUND_NAMES)}")
    return bounds | per_kind


def _is_failover(fault: FaultWindow, opts: AvailabilityOptions) -> bool:
    return fault.kind in opts.failover_kinds if opts.failover_kinds else "failover" in fault.kind


def _lost_acknowledgements(analysis: Analysis) -> list[tuple[int, bool]]:
    """(acknowledgement time, contact settled) of acknowledged MOs missing from msgs_msg, earliest first."""
    return sorted(
        (m.mo.end_time, analysis.settled(m.mo.urn))
        for m in analysis.inbound.others
        if m.mo.outcome == OK and not m.rows and m.mo.end_time is not None
    )


def _fault_report(
    fault: FaultWindow, view: HistoryView, mos: list[Exchange], invoked: list[int], successes: _Successes
) -> dict[str, Any]:
    history_end = view.history.end_time
    first_ok = successes.first_after(fault.start)
    recovered_at = successes.first_after(fault.end) if fault.end is not None else None
    # The fault's effect is measured from its injection until service was seen again after its removal;
    # when it never was, until the last MO tried: time when nobody was sending is not an outage (a failover
    # whose recovery, the old primary's rebuild, completes after the workload ended lasts past any MO).
    stop = recovered_at or successes.last_attempt or history_end
    gap_from, gap_to = successes.longest_gap(fault.start, max(stop, fault.start))
    # MOs are sorted by invocation, so the ones invoked within the window are a slice.
    first, last = bisect.bisect_left(invoked, fault.start), bisect.bisect_left(invoked, fault.until(history_end))
    during = Counter(m.outcome for m in mos[first:last])
    tried_after = fault.end is not None and invoked and invoked[-1] >= fault.end
    attempts = during[OK] + during[FAIL] + during[INFO]

    def seconds_since(origin: int, moment: int | None) -> float | None:
        return None if moment is None else round((moment - origin) / NS_PER_S, 3)

    return {
        "id": fault.id,
        "fault": fault.kind,
        "targets": fault.targets,
        "inject_outcome": fault.inject_outcome,
        "start_s": round(view.seconds(fault.start), 3),
        "end_s": None if fault.end is None else round(view.seconds(fault.end), 3),
        "first_ok_after_inject_s": seconds_since(fault.start, first_ok),
        "time_to_recover_s": seconds_since(fault.end, recovered_at) if fault.end is not None else None,
        "never_recovered": bool(tried_after) and recovered_at is None,
        "tried_after_recover_s": (
            round((invoked[-1] - fault.end) / NS_PER_S, 3) if tried_after and fault.end is not None else 0.0
        ),
        "unavailable_s": round((gap_to - gap_from) / NS_PER_S, 3),
        "unavailable_from_s": round(view.seconds(gap_from), 3),
        "ops_during": dict(during),
        "success_ratio_during": round(during[OK] / attempts, 6) if attempts else None,
    }


def _per_second(view: HistoryView, mos: list[Exchange]) -> list[list[int]]:
    """[second, ok, fail, info] for every second from the first completion to the last (by completion)."""
    buckets: dict[int, list[int]] = {}
    column = {OK: 1, FAIL: 2, INFO: 3}
    origin = view.origin
    for mo in mos:
        if mo.end_time is None:
            continue
        second = (mo.end_time - origin) // NS_PER_S
        row = buckets.get(second)
        if row is None:
            row = buckets[second] = [second, 0, 0, 0]
        row[column[mo.outcome]] += 1
    if not buckets:
        return []
    return [buckets.get(s, [s, 0, 0, 0]) for s in range(min(buckets), max(buckets) + 1)]
