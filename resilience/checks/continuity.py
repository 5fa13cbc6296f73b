"""Flow continuity: each contact's conversations went step by step, in order, to their end, and the
database's runs and sessions agree with what the contact saw.

The unit judged is a *thread*: everything one URN took part in, in invocation order. Its expected
replies are the `expect` lists of its acknowledged exchanges, concatenated; what it saw is its
deliveries in arrival order (one per msg_id), keeping only texts some exchange of the thread scripted.
A thread with an `info` exchange, or with a step sent more than once, is judged leniently, within a
bound: the flow may have taken the unknown message or the second copy (as the answer to its next
question), so up to the replies those exchanges were owed may be missing, as many repeated, and one
run each left open or completed again; within that the thread is indeterminate (unknown), beyond it the
findings stand as usual.
A contact that still had a backlog when the snapshot was read is judged unknown where a later event could
still complete it (quiescence per contact).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import Exchange, extra_copies
from resilience.checks.options import parse_options
from resilience.checks.outbound import first_uncertain, uncertainty_budget
from resilience.checks.result import CheckResult, Examples, Finding, Validity
from resilience.history import INFO, OK, RecordedHistory
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


KINDS: dict[str, str] = {
    "repeated": "a reply seen more often than scripted, under distinct msg ids (count: surplus replies)",
    "skipped": "replies missing between replies that came (count: missing replies; unknown while the contact "
    "has a backlog)",
    "reordered": "replies came in another order than scripted",
    "incomplete": "the conversation's last replies never came (count: missing replies; unknown while the "
    "contact has a backlog)",
    "stuck_runs": "a run left active or waiting though the contact finished its conversation (count: runs)",
    "stuck_sessions": "a session left waiting though the contact finished its conversation (count: sessions)",
    "saw_end_without_completed_run": "the contact saw the whole conversation but no completed run records it",
    "extra_completed_runs": "more completed runs than conversations the contact carried to their end",
    "completed_run_replies_missing": "a completed run whose replies the contact never saw",
    "indeterminate": "what would be a finding, within what the contact's exchanges of unknown outcome can "
    "explain (unknown)",
    "no_data": "no conversation to judge (unknown)",
}
# Findings a later event can still resolve while the contact has a backlog (the others are final).
SETTLING = frozenset({"skipped", "incomplete", "completed_run_replies_missing", "stuck_runs", "stuck_sessions"})


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
    owed_texts, seen_texts = analysis.owed_texts, analysis.seen_texts
    runs_by_urn = _group(snapshot.runs)
    sessions_by_urn = _group(snapshot.sessions)

    counts = dict.fromkeys(COUNTS, 0)
    examples = Examples()
    findings: list[Finding] = []
    for urn, exchanges in threads.items():
        findings.extend(
            _judge_thread(
                _Thread(urn, exchanges, analysis.settled(urn), view.seconds),
                owed_texts[urn],
                seen_texts.get(urn, []),
                runs_by_urn.get(urn, []),
                sessions_by_urn.get(urn, []),
                counts,
                examples,
            )
        )
    for urn, runs in runs_by_urn.items():
        if urn not in threads:
            counts["unowned_runs"] += len(runs)
    if counts["repeated"] <= opts.allowed_repeated_steps:
        findings = [f for f in findings if f.kind != "repeated"]
    if not threads:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="no conversation"))
    findings.sort(key=lambda f: (f.at_s if f.at_s is not None else -1.0, f.urn or ""))
    return CheckResult.of_findings(NAME, findings, counts, examples.items, {"quiescent": snapshot.quiescent})


@dataclass(frozen=True)
class _Thread:
    urn: str
    exchanges: list[Exchange]
    settled: bool
    seconds: Any  # mono ns -> the history's seconds

    def at(self, exchange: Exchange) -> float:
        return round(self.seconds(exchange.invoke_time), 3)

    def owing_position(self, position: int) -> Exchange:
        """The acknowledged exchange that owes the `position`-th scripted reply (or the last exchange)."""
        for exchange in self.exchanges:
            if exchange.outcome != OK:
                continue
            if position < len(exchange.expect):
                return exchange
            position -= len(exchange.expect)
        return self.exchanges[-1]


def _group(rows: list[Run] | list[Session]) -> dict[str, list[Any]]:
    grouped: defaultdict[str, list[Any]] = defaultdict(list)
    for row in rows:
        if row.contact_urn is not None:
            grouped[row.contact_urn].append(row)
    return grouped


def _first_missing(expected: list[str], seen: list[str]) -> int:
    """The position in `expected` of the first scripted reply the contact did not see."""
    left = Counter(seen)
    for position, text in enumerate(expected):
        if left[text] > 0:
            left[text] -= 1
        else:
            return position
    return len(expected)


def _judge_thread(
    thread: _Thread,
    expected: list[str],
    seen_all: list[str],
    runs: list[Run],
    sessions: list[Session],
    counts: dict[str, int],
    examples: Examples,
) -> list[Finding]:
    exchanges = thread.exchanges
    budget = uncertainty_budget(exchanges)
    runs_budget = sum(e.outcome == INFO for e in exchanges) + len(extra_copies(exchanges))
    lenient = budget > 0 or runs_budget > 0 or any(e.outcome != OK for e in exchanges)
    counts["threads"] += 1
    counts["threads_lenient"] += lenient
    unscripted = 0
    if seen_all == expected:  # the usual case, decided without counting
        seen, order = seen_all, IN_ORDER
    else:
        scripted = {text for e in exchanges for text in e.expect}
        seen = [text for text in seen_all if text in scripted]
        unscripted = len(seen_all) - len(seen)
        counts["unscripted"] += unscripted
        order = compare_replies(expected, seen)
        if budget and order.shape == "reordered":
            # A step's extra copy, handled late (e.g. flushed from courier's spool after the contact resent
            # it), gets its reply late: the order is judged on what the first copies owe, and the copies'
            # replies count as repeated, within the budget below.
            order = compare_replies(_owed_by_first_copies(exchanges), seen)

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

    found: dict[str, int] = {}
    saw_everything = order.missing == 0 and order.shape == "in_order"
    if order.repeated:
        found["repeated"] = order.repeated
    if order.shape != "in_order":
        found[order.shape] = order.missing if order.shape in ("incomplete", "skipped") else 1
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
            found["saw_end_without_completed_run"] = times - completed
        if completed > times:
            found["extra_completed_runs"] = completed - times
        if order.missing and completed >= times:
            found["completed_run_replies_missing"] = 1
    if finished == len(conversations):
        open_sessions = sum(s.status in LEFT_OPEN_SESSION for s in sessions)
        if open_runs:
            found["stuck_runs"] = open_runs
        if open_sessions:
            found["stuck_sessions"] = open_sessions
    else:
        counts["waiting_abandoned"] += open_runs

    if not found:
        counts["threads_in_order"] += not lenient
        return []
    described = {
        "urn": thread.urn,
        "findings": found,
        "conversations": sorted({e.conversation or f"op-{e.index}" for e in exchanges}),
        "expected": expected,
        "seen": seen,
        "runs": [{"uuid": r.uuid, "flow": r.flow_name or r.flow_uuid, "status": r.status} for r in runs],
        "outcomes": [e.outcome for e in exchanges],
    }
    # Leniency is bounded: exchanges of unknown outcome (and a step's extra copies) may account for at most
    # the replies they were owed and one run each; anything beyond that is judged as usual.
    # One run left open is one stuck run in one stuck session: the same damage, counted once.
    run_damage = (
        max(found.get("stuck_runs", 0), found.get("stuck_sessions", 0))
        + found.get("extra_completed_runs", 0) + found.get("saw_end_without_completed_run", 0)
    )  # fmt: skip
    # A reply in place of an owed one (the flow a question ahead) is one substitution, not two damages.
    substituted = min(order.missing, order.repeated + unscripted)
    within = (
        order.missing - substituted <= budget
        and max(0, order.repeated - order.missing) <= budget
        and run_damage <= runs_budget
    )
    if lenient and within and "reordered" not in found:
        counts["indeterminate"] += 1
        examples.add("indeterminate", **described)
        first = first_uncertain(exchanges)
        return [Finding(NAME, "indeterminate", Validity.UNKNOWN, thread.at(first), 1, first.index, thread.urn,
                        detail=f"{found} within what {budget} uncertain replies can explain")]  # fmt: skip
    for finding, number in found.items():
        counts[finding] += number
    counts["missing_replies"] += order.missing
    examples.add("+".join(sorted(found)), **described)
    missing_from = thread.owing_position(_first_missing(expected, seen))
    last = exchanges[-1]
    results = []
    for kind, number in found.items():
        origin = missing_from if kind in ("incomplete", "skipped", "completed_run_replies_missing") else last
        if kind in ("repeated", "reordered"):
            origin = exchanges[0]
        severity = Validity.UNKNOWN if kind in SETTLING and not thread.settled else Validity.FALSE
        results.append(Finding(NAME, kind, severity, thread.at(origin), number, origin.index, thread.urn))
    return results


def _owed_by_first_copies(exchanges: list[Exchange]) -> list[str]:
    """The replies owed by each step's first accepted copy, in order."""
    copies = {e.index for e in extra_copies(exchanges)}
    return [text for e in exchanges if e.outcome == OK and e.index not in copies for text in e.expect]
