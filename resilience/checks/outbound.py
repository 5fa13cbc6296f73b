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
from resilience.checks.model import Exchange
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import FAIL, INFO, RecordedHistory
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

    counts = dict.fromkeys(
        (
            "owed", "delivered", "lost", "lost_indeterminate", "duplicate_deliveries",
            "duplicate_deliveries_after_success", "duplicate_replies", "duplicate_replies_indeterminate",
            "unexpected", "unexpected_indeterminate", "replies_to_failed", "unowned_deliveries",
        ),
        0,
    )  # fmt: skip
    examples = Examples()
    owed_texts, seen_texts = analysis.owed_texts, analysis.seen_texts
    uncertain = view.uncertain_urns
    for urn, exchanges in view.by_urn.items():
        owed, arrived = owed_texts[urn], seen_texts.get(urn, [])
        counts["owed"] += len(owed)
        if arrived != owed:  # equal lists, the usual case, leave nothing to report
            _compare(urn, exchanges, owed, arrived, urn in uncertain, counts, examples)
    # Other contacts' traffic (another run on a shared aggregator, an unrecorded probe) is counted, not
    # judged: a reply sent to a stranger instead of a workload contact shows as that contact's loss.
    counts["unowned_deliveries"] = sum(len(arrived) for urn, arrived in seen_texts.items() if urn not in view.by_urn)

    received = {delivery.msg_id for delivery in snapshot.aggregator}
    counts["duplicate_deliveries"] = len(snapshot.aggregator) - sum(map(len, analysis.first_deliveries.values()))
    if counts["duplicate_deliveries"]:
        _count_redeliveries(analysis, counts, examples)
    counts["delivered"] = counts["owed"] - counts["lost"] - counts["lost_indeterminate"]
    counts["duplicates"] = counts["duplicate_deliveries"] + counts["duplicate_replies"]
    counts["deliveries"] = len(snapshot.aggregator)
    counts.update(_database_agreement(snapshot, received))

    quiescent = snapshot.quiescent
    valid = verdict(
        false_if=(
            counts["duplicates"] > opts.allowed_duplicates
            or (counts["unexpected"] > 0 and not opts.allow_unexpected)
            or (quiescent and counts["lost"] > 0)
        ),
        unknown_if=(
            (counts["owed"] == 0 and counts["deliveries"] == 0)
            or (not quiescent and counts["lost"] > 0)
            or counts["lost_indeterminate"] > 0
            or counts["duplicate_replies_indeterminate"] > 0
            or (counts["unexpected_indeterminate"] > 0 and not opts.allow_unexpected)
            or counts["replies_to_failed"] > 0
        ),
    )
    return CheckResult(
        name=NAME,
        valid=valid,
        counts=counts,
        examples=examples.items,
        details={"quiescent": quiescent, "indeterminate_urns": len(uncertain)},
    )


def _compare(
    urn: str,
    exchanges: list[Exchange],
    owed: list[str],
    arrived: list[str],
    indeterminate: bool,
    counts: dict[str, int],
    examples: Examples,
) -> None:
    """Count what one URN was owed against what reached it (one arrival per msg_id)."""
    certain, got = Counter(owed), Counter(arrived)
    possible = Counter(text for e in exchanges if e.outcome == INFO for text in e.expect)
    owed_by_failed = {text for e in exchanges if e.outcome == FAIL for text in e.expect}
    for text in dict.fromkeys([*certain, *possible, *got]):  # ordered, so that examples are reproducible
        must, may, came = certain[text], possible[text], got[text]
        if must + may == 0:
            if text in owed_by_failed:
                kind = "replies_to_failed"
            else:
                kind = "unexpected_indeterminate" if indeterminate else "unexpected"
            counts[kind] += came
            examples.add(kind, urn=urn, text=text, arrived=came)
            continue
        if came < must:
            kind = "lost_indeterminate" if indeterminate else "lost"
            counts[kind] += must - came
            examples.add(kind, urn=urn, text=text, owed=must, arrived=came)
        if came > must + may:
            kind = "duplicate_replies_indeterminate" if indeterminate else "duplicate_replies"
            counts[kind] += came - must - may
            examples.add(kind, urn=urn, text=text, owed=must, maybe_owed=may, arrived=came)


def _count_redeliveries(analysis: Analysis, counts: dict[str, int], examples: Examples) -> None:
    """Examples of messages delivered more than once, and how many copies followed an accepted one
    (courier sent again what the network had already taken, rather than retrying after an error)."""
    copies = Counter(delivery.msg_id for delivery in analysis.snapshot.aggregator)
    repeated_ids = {msg_id for msg_id, number in copies.items() if number > 1}
    # dict, not set: examples come in arrival order, the same on every run
    repeated_urns = dict.fromkeys(d.recipient for d in analysis.snapshot.aggregator if d.msg_id in repeated_ids)
    described: set[str] = set()
    for urn in repeated_urns:
        repeated = [d for d in analysis.deliveries[urn] if d.msg_id in repeated_ids]  # in arrival order
        accepted: set[str] = set()
        for delivery in repeated:
            if delivery.msg_id in accepted:
                counts["duplicate_deliveries_after_success"] += 1
            elif delivery.accepted:
                accepted.add(delivery.msg_id)
            if delivery.msg_id not in described:
                described.add(delivery.msg_id)
                examples.add("duplicate_delivery", urn=urn, msg_id=delivery.msg_id, text=delivery.text,
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
