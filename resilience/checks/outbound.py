"""Outbound delivery: every reply owed by an acknowledged MO (or API start) reached the phone network.

A reply is owed to a URN once per acknowledged exchange whose `expect` names it. RapidPro promises
at-least-once delivery, so duplicates are counted two ways and judged against their own threshold:
the same msg_id delivered again, and one owed reply delivered under more msg ids than were owed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.model import Exchange, extra_copies
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, Finding, Validity
from resilience.history import FAIL, INFO, OK, RecordedHistory
from resilience.snapshot import Snapshot

NAME = "outbound"
WIRED_OR_LATER = frozenset("WSD")
NOT_YET_SENT = frozenset("IQE")


@dataclass(frozen=True)
class OutboundOptions:
    allowed_duplicates: int = 0
    """duplicate_deliveries + duplicate_replies tolerated before the verdict is false."""
    allow_unexpected: bool = False
    """When false, a reply no exchange owed to that URN makes the verdict false."""


KINDS: dict[str, str] = {
    "lost": "an owed reply that never reached the phone network (count: replies; unknown while the contact has a "
    "backlog)",
    "lost_indeterminate": "a missing reply that an exchange of unknown outcome may excuse (unknown; at most the "
    "replies such exchanges were owed)",
    "duplicate_delivery": "the same message (msg id) delivered more than once (count: extra copies)",
    "duplicate_replies": "an owed reply delivered under more msg ids than owed (count: extra replies)",
    "duplicate_replies_indeterminate": "a surplus reply an exchange of unknown outcome may explain (unknown)",
    "unexpected": "a reply no exchange owed to that contact",
    "unexpected_indeterminate": "a reply nothing owed that an exchange of unknown outcome may explain (unknown)",
    "replies_to_failed": "a reply owed only by an MO courier refused: it was stored after all (unknown here; "
    "inbound.recovered proves it)",
    "no_data": "nothing was owed and nothing delivered (unknown)",
}


class _Judge:
    """Accumulates one run's outbound counts, examples and findings."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.view = analysis.view
        self.counts: dict[str, int] = dict.fromkeys(
            (
                "owed", "delivered", "lost", "lost_indeterminate", "duplicate_deliveries",
                "duplicate_deliveries_after_success", "duplicate_replies", "duplicate_replies_indeterminate",
                "unexpected", "unexpected_indeterminate", "replies_to_failed", "unowned_deliveries",
            ),
            0,
        )  # fmt: skip
        self.examples = Examples()
        self.findings: dict[str, list[Finding]] = {}

    def find(self, kind: str, severity: Validity, at_ns: int | None, count: int, urn: str | None,
             detail: str, wall: bool = False, op: int | None = None) -> None:  # fmt: skip
        if at_ns is None:
            at_s = None
        elif wall:
            at_s = round(self.analysis.seconds_of_wall(at_ns), 3)
        else:
            at_s = round(self.view.seconds(at_ns), 3)
        self.counts[_COUNTED_AS.get(kind, kind)] += count
        self.findings.setdefault(kind, []).append(Finding(NAME, kind, severity, at_s, count, op, urn, detail=detail))


def check(
    history: RecordedHistory,
    snapshot: Snapshot,
    options: OutboundOptions | dict[str, Any] | None = None,
    *,
    analysis: Analysis | None = None,
) -> CheckResult:
    opts = parse_options(OutboundOptions, options, NAME)
    analysis = Analysis.of(history, snapshot, analysis)
    view = analysis.view
    judge = _Judge(analysis)
    counts = judge.counts
    owed_texts, seen_texts = analysis.owed_texts, analysis.seen_texts
    for urn, exchanges in view.by_urn.items():
        owed, arrived = owed_texts[urn], seen_texts.get(urn, [])
        counts["owed"] += len(owed)
        if arrived != owed:  # equal lists, the usual case, leave nothing to report
            _compare(urn, exchanges, judge)
    # Other contacts' traffic (another run on a shared aggregator, an unrecorded probe) is counted, not
    # judged: a reply sent to a stranger instead of a workload contact shows as that contact's loss.
    counts["unowned_deliveries"] = sum(len(arrived) for urn, arrived in seen_texts.items() if urn not in view.by_urn)

    received = {delivery.msg_id for delivery in snapshot.aggregator}
    if len(snapshot.aggregator) > sum(map(len, analysis.first_deliveries.values())):
        _count_redeliveries(judge)
    counts["delivered"] = counts["owed"] - counts["lost"] - counts["lost_indeterminate"]
    counts["duplicates"] = counts["duplicate_deliveries"] + counts["duplicate_replies"]
    counts["deliveries"] = len(snapshot.aggregator)
    counts.update(_database_agreement(snapshot, received))

    kept = judge.findings
    findings = [f for kind, found in kept.items() for f in found if kind not in _THRESHOLDED]
    if counts["duplicates"] > opts.allowed_duplicates:
        findings += kept.get("duplicate_delivery", []) + kept.get("duplicate_replies", [])
    if not opts.allow_unexpected:
        findings += kept.get("unexpected", []) + kept.get("unexpected_indeterminate", [])
    if counts["owed"] == 0 and counts["deliveries"] == 0:
        findings.append(Finding(NAME, "no_data", Validity.UNKNOWN, detail="nothing owed, nothing delivered"))
    findings.sort(key=lambda f: (f.at_s if f.at_s is not None else -1.0, f.urn or ""))
    return CheckResult.of_findings(
        NAME,
        findings,
        counts,
        judge.examples.items,
        {"quiescent": snapshot.quiescent, "indeterminate_urns": len(view.uncertain_urns)},
    )


_COUNTED_AS = {"duplicate_delivery": "duplicate_deliveries"}
_THRESHOLDED = frozenset({"duplicate_delivery", "duplicate_replies", "unexpected", "unexpected_indeterminate"})


def uncertainty_budget(exchanges: list[Exchange]) -> int:
    """How many of a contact's replies its uncertain exchanges can account for: those owed by exchanges of
    unknown outcome (the flow may have taken them) and by a step's extra accepted copies (the flow takes
    the second copy as the answer to its next question). Nothing else a contact is owed is excused."""
    unknown = sum(len(e.expect) for e in exchanges if e.outcome == INFO)
    return unknown + sum(len(e.expect) for e in extra_copies(exchanges))


def _compare(urn: str, exchanges: list[Exchange], judge: _Judge) -> None:
    """Count what one URN was owed against what reached it (one arrival per msg_id)."""
    analysis = judge.analysis
    settled = analysis.settled(urn)
    arrivals = analysis.first_deliveries.get(urn, [])
    mono_to_wall = analysis.history.header.wall_anchor_ns - analysis.history.header.mono_anchor_ns
    certain = Counter(text for e in exchanges if e.outcome == OK for text in e.expect)
    got = Counter(d.text for d in arrivals)
    possible = Counter(text for e in exchanges if e.outcome == INFO for text in e.expect)
    owed_by_failed = {text for e in exchanges if e.outcome == FAIL for text in e.expect}

    missing: list[tuple[str, Exchange]] = []  # (text, the owing exchange no arrival answers)
    extra: list[tuple[str, str, int]] = []  # (kind, text, arrival wall ns): surplus copies and unexpected texts
    for text in dict.fromkeys([*certain, *possible, *got]):  # ordered, so that findings are reproducible
        must, may, came = certain[text], possible[text], got[text]
        times = sorted(d.received_wall_ns for d in arrivals if d.text == text)
        if must + may == 0:
            if text in owed_by_failed:
                for when in times:
                    judge.find("replies_to_failed", Validity.UNKNOWN, when, 1, urn, text, wall=True)
                judge.examples.add("replies_to_failed", urn=urn, text=text, arrived=came)
            else:
                extra.extend(("unexpected", text, when) for when in times)
            continue
        if came < must:
            owing = [e for e in exchanges if e.outcome == OK and text in e.expect]
            missing.extend((text, e) for e in _unanswered(owing, times, mono_to_wall)[: must - came])
        if came > must + may:
            extra.extend(("duplicate_replies", text, when) for when in times[-(came - must - may) :])

    # Leniency, bounded. An exchange of unknown outcome (or a step's extra accepted copy) may have been taken
    # by the flow: that can put the conversation a question ahead, so that later replies come in place of
    # the owed ones (a substitution: one missing, one extra), and may cost at most the replies such
    # exchanges were owed outright. Missing replies with nothing in their place beyond that, or extras beyond
    # that, are judged as usual.
    budget = uncertainty_budget(exchanges)
    substituted = min(len(missing), len(extra)) if budget else 0
    excusable_missing = min(len(missing), substituted + budget)
    excusable_extra = min(len(extra), substituted + budget)
    cause = first_uncertain(exchanges)
    described: set[tuple[str, str]] = set()  # (kind, text): one example per text and kind

    def describe(kind: str, text: str) -> None:
        if (kind, text) not in described:
            described.add((kind, text))
            judge.examples.add(kind, urn=urn, text=text, owed=certain[text], maybe_owed=possible[text],
                               arrived=got[text])  # fmt: skip

    # The latest missing are the ones excused: a step's later copies owe nothing the first did not.
    for number, (text, exchange) in enumerate(missing):
        if number >= len(missing) - excusable_missing:
            kind = "lost_indeterminate"
            judge.find(kind, Validity.UNKNOWN, cause.invoke_time, 1, urn, text, op=exchange.index)
        else:
            kind = "lost"
            severity = Validity.FALSE if settled else Validity.UNKNOWN
            judge.find(kind, severity, exchange.invoke_time, 1, urn, text, op=exchange.index)
        describe(kind, text)
    for number, (kind, text, when) in enumerate(extra):
        if number < excusable_extra:
            kind = f"{kind}_indeterminate"
            judge.find(kind, Validity.UNKNOWN, cause.invoke_time, 1, urn, text)
        else:
            judge.find(kind, Validity.FALSE, when, 1, urn, text, wall=True)
        describe(kind, text)


def first_uncertain(exchanges: list[Exchange]) -> Exchange:
    """What made a contact uncertain: its first exchange of unknown outcome or first extra accepted copy of a
    step (its first exchange if neither); indeterminate findings are timed by it, the cause."""
    causes = [e for e in exchanges if e.outcome == INFO][:1] + extra_copies(exchanges)[:1]
    return min(causes, key=exchanges.index) if causes else exchanges[0]


def _unanswered(owing: list[Exchange], arrival_wall_ns: list[int], mono_to_wall: int) -> list[Exchange]:
    """The owing exchanges no arrival answers: each arrival (in time order) answers the earliest exchange
    still unanswered that was invoked before it (or the earliest at all, if clocks disagree)."""
    remaining = sorted(owing, key=lambda e: e.invoke_time)
    for arrived in arrival_wall_ns:
        if not remaining:
            break
        before = [e for e in remaining if e.invoke_time + mono_to_wall <= arrived]
        remaining.remove(before[0] if before else remaining[0])
    return remaining


def _count_redeliveries(judge: _Judge) -> None:
    """Findings for messages delivered more than once, and how many copies followed an accepted one
    (courier sent again what the network had already taken, rather than retrying after an error)."""
    aggregator = judge.analysis.snapshot.aggregator
    copies = Counter(delivery.msg_id for delivery in aggregator)
    repeated_ids = {msg_id for msg_id, number in copies.items() if number > 1}
    # dict, not set: findings come in arrival order, the same on every run
    repeated_urns = dict.fromkeys(d.recipient for d in aggregator if d.msg_id in repeated_ids)
    described: set[str] = set()
    for urn in repeated_urns:
        repeated = [d for d in judge.analysis.deliveries[urn] if d.msg_id in repeated_ids]  # in arrival order
        accepted: set[str] = set()
        for delivery in repeated:
            if delivery.msg_id in accepted:
                judge.counts["duplicate_deliveries_after_success"] += 1
            elif delivery.accepted:
                accepted.add(delivery.msg_id)
            if delivery.msg_id not in described:
                described.add(delivery.msg_id)
                extra = copies[delivery.msg_id] - 1
                judge.find("duplicate_delivery", Validity.FALSE, delivery.received_wall_ns, extra, urn,
                           f"msg {delivery.msg_id} delivered {extra + 1} times", wall=True)  # fmt: skip
                judge.examples.add("duplicate_delivery", urn=urn, msg_id=delivery.msg_id, text=delivery.text,
                                   copies=copies[delivery.msg_id])  # fmt: skip


def _database_agreement(snapshot: Snapshot, received: set[str]) -> dict[str, int]:
    """How msgs_msg's outgoing rows compare with what the phone network saw (informational)."""
    rows = not_yet_sent = failed = wired_not_received = received_known = 0
    for msg in snapshot.msgs:
        if msg.direction != "O":
            continue
        rows += 1
        got = str(msg.id) in received or msg.uuid in received
        received_known += got
        if msg.status in NOT_YET_SENT:
            not_yet_sent += 1
        elif msg.status == "F":
            failed += 1
        elif msg.status in WIRED_OR_LATER and not got:
            wired_not_received += 1
    return {
        "outbound_rows": rows,
        "outbound_not_yet_sent": not_yet_sent,
        "outbound_failed": failed,
        "wired_not_received": wired_not_received,
        # distinct msg ids the network got that match no outgoing row (0 when the snapshot has none)
        "received_unknown_id": len(received) - received_known if rows else 0,
    }
