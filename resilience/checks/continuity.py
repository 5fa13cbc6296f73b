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
from dataclasses import dataclass
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


IN_ORDER = OrderFinding(0, 0, "in_order")
COUNTS = (
    "threads", "threads_lenient", "threads_in_order", "conversations", "conversations_ended",
    "conversations_abandoned", "repeated", "skipped", "reordered", "incomplete", "missing_replies",
    "indeterminate", "unscripted", "saw_end_without_completed_run", "completed_run_replies_missing",
    "extra_completed_runs", "stuck_runs", "stuck_sessions", "waiting_abandoned", "unowned_runs",
    "flow_unknown",
)  # fmt: skip


def _conversations(exchanges: list[Exchange]) -> list[list[Exchange]]:
    """A thread's exchanges grouped by conversation id (an exchange without one stands alone)."""
    first = exchanges[0].conversation
    if first is not None:
        for exchange in exchanges:
            if exchange.conversation != first:
                break
        else:
            return [exchanges]  # the usual case: one conversation per contact
    grouped: dict[str, list[Exchange]] = defaultdict(list)
    for exchange in exchanges:
        grouped[exchange.conversation or f"op-{exchange.index}"].append(exchange)
    return list(grouped.values())


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
    threads = view.by_urn
    # Leniency (see the module's docstring): an uncertain URN, or any exchange not acknowledged.
    lenient = view.uncertain_urns | {urn for e in view.exchanges if e.outcome != OK for urn in e.urns}
    owed_texts, seen_texts = analysis.owed_texts, analysis.seen_texts
    runs_by_urn = _group(snapshot.runs)
    sessions_by_urn = _group(snapshot.sessions)
    quiescent = snapshot.quiescent

    counts = dict.fromkeys(COUNTS, 0)
    examples = Examples()
    for urn, exchanges in threads.items():
        _judge_thread(
            urn,
            exchanges,
            urn in lenient,
            owed_texts[urn],
            seen_texts.get(urn, []),
            runs_by_urn.get(urn, []),
            sessions_by_urn.get(urn, []),
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
    return CheckResult(
        name=NAME,
        valid=valid,
        counts=counts,
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
    urn: str,
    exchanges: list[Exchange],
    lenient: bool,
    expected: list[str],
    seen_all: list[str],
    runs: list[Run],
    sessions: list[Session],
    counts: dict[str, int],
    examples: Examples,
) -> None:
    counts["threads"] += 1
    counts["threads_lenient"] += lenient
    if seen_all == expected:  # the usual case, decided without counting
        seen, order = seen_all, IN_ORDER
    else:
        scripted = {text for e in exchanges for text in e.expect}
        seen = [text for text in seen_all if text in scripted]
        counts["unscripted"] += len(seen_all) - len(seen)
        order = compare_replies(expected, seen)

    conversations = _conversations(exchanges)
    ended: dict[str | None, int] = {}  # per flow: conversations the workload carried to their end
    finished = 0
    for conversation in conversations:
        flow, reached_end = None, False
        for exchange in conversation:
            flow = flow or exchange.flow
            reached_end = reached_end or (exchange.final and exchange.outcome == OK)
        if reached_end:
            ended[flow] = ended.get(flow, 0) + 1
            finished += 1
    counts["conversations"] += len(conversations)
    counts["conversations_ended"] += finished
    counts["conversations_abandoned"] += len(conversations) - finished
    counts["flow_unknown"] += ended.get(None, 0)

    findings: dict[str, int] = {}
    saw_everything = order.missing == 0 and order.shape == "in_order"
    if order.repeated:
        findings["repeated"] = order.repeated
    if order.shape != "in_order":
        findings[order.shape] = 1
    completed_runs: dict[str, int] = {}  # by flow uuid and by flow name
    open_runs = 0
    for run in runs:
        if run.status == COMPLETED:
            for flow in {run.flow_uuid, run.flow_name or run.flow_uuid}:
                completed_runs[flow] = completed_runs.get(flow, 0) + 1
        elif run.status in LEFT_OPEN_RUN:
            open_runs += 1
    for flow, times in ended.items():
        if flow is None:
            continue
        completed = completed_runs.get(flow, 0)
        if saw_everything and completed < times:
            findings["saw_end_without_completed_run"] = times - completed
        if completed > times:
            findings["extra_completed_runs"] = completed - times
        if order.missing and completed >= times:
            findings["completed_run_replies_missing"] = 1
    if finished == len(conversations):
        open_sessions = sum(s.status in LEFT_OPEN_SESSION for s in sessions)
        if open_runs:
            findings["stuck_runs"] = open_runs
        if open_sessions:
            findings["stuck_sessions"] = open_sessions
    else:
        counts["waiting_abandoned"] += open_runs

    if not findings:
        counts["threads_in_order"] += not lenient
        return
    if lenient:
        counts["indeterminate"] += 1
        kind = "indeterminate"
    else:
        for finding, number in findings.items():
            counts[finding] += number
        counts["missing_replies"] += order.missing
        kind = "+".join(sorted(findings))
    examples.add(
        kind,
        urn=urn,
        findings=findings,
        conversations=sorted({e.conversation or f"op-{e.index}" for e in exchanges}),
        expected=expected,
        seen=seen,
        runs=[{"uuid": r.uuid, "flow": r.flow_name or r.flow_uuid, "status": r.status} for r in runs],
        outcomes=[e.outcome for e in exchanges],
    )
