"""Flow continuity: each contact's conversations went step by step, in order, to their end, and the
database's runs and sessions agree with what the contact saw.

The unit judged is a *thread*: everything one URN took part in, in invocation order. Its expected
replies are the `expect` lists of its acknowledged exchanges, concatenated; what it saw is its
deliveries in arrival order (one per msg_id), keeping only texts some exchange of the thread scripted.
A thread with any `fail` or `info` exchange, or with a step sent more than once, is judged leniently:
the flow may have taken the unknown message or the second copy (as the answer to its next question),
and the workload may have retried or given up, so what would be a finding there is counted as
indeterminate and makes the verdict unknown, never false.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import Exchange
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import OK, RecordedHistory
from resilience.snapshot import Run, Session, Snapshot

NAME = "continuity"
LEFT_OPEN_RUN = frozenset("AW")
LEFT_OPEN_SESSION = frozenset("W")
COMPLETED = "C"


@dataclass(frozen=True)
class ContinuityOptions:
    allowed_repeated_steps: int = 0
    """Replies seen more often than scripted (under distinct msg ids) tolerated before false."""


@dataclass(frozen=True)
class OrderFinding:
    repeated: int  # replies seen more often than owed
    missing: int  # owed replies never seen
    shape: str  # "in_order" | "incomplete" (only the tail missing) | "skipped" (gaps) | "reordered"


def compare_replies(expected: list[str], seen: list[str]) -> OrderFinding:
    """Classify what a contact saw against the scripted reply sequence."""
    owed = Counter(expected)
    repeated = sum((Counter(seen) - owed).values())
    taken: Counter[str] = Counter()
    first_seen = []
    for text in seen:  # drop the surplus copies; what is left is judged for order
        if taken[text] < owed[text]:
            taken[text] += 1
            first_seen.append(text)
    missing = len(expected) - len(first_seen)
    if first_seen == expected[: len(first_seen)]:
        shape = "incomplete" if missing else "in_order"
    elif _is_subsequence(first_seen, expected):
        shape = "skipped"
    else:
        shape = "reordered"
    return OrderFinding(repeated, missing, shape)


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    remaining = iter(long)
    return all(any(text == candidate for candidate in remaining) for text in short)


@dataclass
class Thread:
    urn: str
    uncertain: bool  # see HistoryView.uncertain_urns
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def lenient(self) -> bool:
        return self.uncertain or any(e.outcome != OK for e in self.exchanges)

    def conversations(self) -> dict[str, list[Exchange]]:
        grouped: dict[str, list[Exchange]] = defaultdict(list)
        for exchange in self.exchanges:
            grouped[exchange.conversation or f"op-{exchange.index}"].append(exchange)
        return grouped


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: ContinuityOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(ContinuityOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    threads: dict[str, Thread] = {}
    for exchange in view.exchanges:
        for urn in exchange.urns:
            thread = threads.get(urn)
            if thread is None:
                thread = threads[urn] = Thread(urn, urn in view.uncertain_urns)
            thread.exchanges.append(exchange)
    deliveries = analysis.first_deliveries
    runs_by_urn = _group(snapshot.runs)
    sessions_by_urn = _group(snapshot.sessions)
    quiescent = snapshot.quiescent

    counts: Counter[str] = Counter()
    examples = Examples()
    for thread in threads.values():
        _judge_thread(
            thread,
            [d.text for d in deliveries.get(thread.urn, ())],
            runs_by_urn.get(thread.urn, []),
            sessions_by_urn.get(thread.urn, []),
            counts,
            examples,
        )
    for urn, runs in runs_by_urn.items():
        if urn not in threads:
            counts["unowned_runs"] += len(runs)

    definite = (
        counts["repeated"] > opts.allowed_repeated_steps
        or counts["reordered"] > 0
        or counts["saw_end_without_completed_run"] > 0
        or counts["extra_completed_runs"] > 0
    )
    settled = (
        counts["skipped"] + counts["incomplete"] + counts["completed_run_replies_missing"]
        + counts["stuck_runs"] + counts["stuck_sessions"]
    )  # fmt: skip
    valid = verdict(
        false_if=definite or (quiescent and settled > 0),
        unknown_if=not threads or counts["indeterminate"] > 0 or (not quiescent and settled > 0),
    )
    names = (
        "threads", "threads_lenient", "threads_in_order", "conversations", "conversations_ended",
        "conversations_abandoned", "repeated", "skipped", "reordered", "incomplete", "missing_replies",
        "indeterminate", "unscripted", "saw_end_without_completed_run", "completed_run_replies_missing",
        "extra_completed_runs", "stuck_runs", "stuck_sessions", "waiting_abandoned", "unowned_runs",
        "flow_unknown",
    )  # fmt: skip
    return CheckResult(
        name=NAME,
        valid=valid,
        counts={name: counts[name] for name in names},
        examples=examples.items,
        details={"quiescent": quiescent},
    )


def _group(rows: list[Run] | list[Session]) -> dict[str, list[Any]]:
    grouped: defaultdict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.contact_urn is not None:
            grouped[row.contact_urn].append(row)
    return grouped


def _judge_thread(
    thread: Thread,
    seen_all: list[str],
    runs: list[Run],
    sessions: list[Session],
    counts: Counter[str],
    examples: Examples,
) -> None:
    lenient = thread.lenient
    counts["threads"] += 1
    counts["threads_lenient"] += lenient
    scripted = {text for e in thread.exchanges for text in e.expect}
    expected = [text for e in thread.exchanges if e.outcome == OK for text in e.expect]
    seen = [text for text in seen_all if text in scripted]
    counts["unscripted"] += len(seen_all) - len(seen)

    conversations = thread.conversations()
    ended: Counter[str | None] = Counter()  # per flow: conversations the workload carried to their end
    all_ended = True
    for exchanges in conversations.values():
        flow = next((e.flow for e in exchanges if e.flow is not None), None)
        if any(e.final and e.outcome == OK for e in exchanges):
            ended[flow] += 1
            counts["flow_unknown"] += flow is None
        else:
            all_ended = False
    counts["conversations"] += len(conversations)
    counts["conversations_ended"] += sum(ended.values())
    counts["conversations_abandoned"] += len(conversations) - sum(ended.values())

    findings: Counter[str] = Counter()
    order = compare_replies(expected, seen)
    if order.repeated:
        findings["repeated"] += order.repeated
    if order.shape != "in_order":
        findings[order.shape] += 1
    saw_everything = order.missing == 0 and order.shape == "in_order"

    for flow, finished in ended.items():
        if flow is None:
            continue
        completed = sum(r.status == COMPLETED and flow in (r.flow_uuid, r.flow_name) for r in runs)
        if saw_everything and completed < finished:
            findings["saw_end_without_completed_run"] += finished - completed
        if completed > finished:
            findings["extra_completed_runs"] += completed - finished
        if order.missing and completed >= finished:
            findings["completed_run_replies_missing"] += 1
    open_runs = sum(r.status in LEFT_OPEN_RUN for r in runs)
    open_sessions = sum(s.status in LEFT_OPEN_SESSION for s in sessions)
    if all_ended:
        findings["stuck_runs"] += open_runs
        findings["stuck_sessions"] += open_sessions
    else:
        counts["waiting_abandoned"] += open_runs

    findings = +findings  # drop the zero entries
    if not findings:
        counts["threads_in_order"] += not lenient
        return
    if lenient:
        counts["indeterminate"] += 1
        kind = "indeterminate"
    else:
        counts.update(findings)
        counts["missing_replies"] += order.missing
        kind = "+".join(sorted(findings))
    examples.add(
        kind,
        urn=thread.urn,
        findings=dict(findings),
        conversations=sorted(conversations),
        expected=expected,
        seen=seen,
        runs=[{"uuid": r.uuid, "flow": r.flow_name or r.flow_uuid, "status": r.status} for r in runs],
        outcomes=[e.outcome for e in thread.exchanges],
    )
