"""Outbound delivery: every reply owed by an acknowledged MO (or API start) reached the phone network.

A reply is owed to a URN once per acknowledged exchange whose `expect` names it. RapidPro promises
at-least-once delivery, so duplicates are counted two ways and judged against their own threshold:
the same msg_id delivered again, and one owed reply delivered under more msg ids than were owed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from resilience.checks.analysis import Analysis
from resilience.checks.options import parse_options
from resilience.checks.result import CheckResult, Examples, verdict
from resilience.history import INFO, OK, RecordedHistory
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

    owed: Counter[tuple[str, str]] = Counter()  # by acknowledged exchanges
    maybe_owed: Counter[tuple[str, str]] = Counter()  # by exchanges of unknown outcome
    owed_by_failed: set[tuple[str, str]] = set()
    indeterminate_urns = view.uncertain_urns
    for exchange in view.exchanges:
        for urn in exchange.urns:
            if exchange.outcome == OK:
                owed.update((urn, text) for text in exchange.expect)
            elif exchange.outcome == INFO:
                maybe_owed.update((urn, text) for text in exchange.expect)
            else:
                owed_by_failed.update((urn, text) for text in exchange.expect)

    delivered: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    accepted_before: set[str] = set()
    resent_after_success = 0  # courier sent again a message the network had already accepted
    for urn, arrivals in analysis.deliveries.items():  # a message's copies all go to one URN
        for delivery in arrivals:
            delivered[(urn, delivery.text)][delivery.msg_id] += 1
            resent_after_success += delivery.msg_id in accepted_before
            if delivery.accepted:
                accepted_before.add(delivery.msg_id)

    counts = dict.fromkeys(
        (
            "owed", "delivered", "lost", "lost_indeterminate", "duplicate_deliveries", "duplicate_replies",
            "duplicate_replies_indeterminate", "unexpected", "unexpected_indeterminate", "replies_to_failed",
        ),
        0,
    )  # fmt: skip
    examples = Examples()
    for key in owed.keys() | maybe_owed.keys() | delivered.keys():
        urn, text = key
        certain, possible = owed[key], maybe_owed[key]
        msg_ids = delivered.get(key, Counter())
        distinct = len(msg_ids)
        indeterminate = urn in indeterminate_urns
        counts["owed"] += certain
        counts["delivered"] += min(certain, distinct)
        redelivered = sum(msg_ids.values()) - distinct
        if redelivered:
            counts["duplicate_deliveries"] += redelivered
            examples.add("duplicate_delivery", urn=urn, text=text, deliveries=dict(msg_ids))
        if certain + possible == 0:
            if key in owed_by_failed:
                kind = "replies_to_failed"
            else:
                kind = "unexpected_indeterminate" if indeterminate else "unexpected"
            counts[kind] += distinct
            examples.add(kind, urn=urn, text=text, msg_ids=sorted(msg_ids))
            continue
        if distinct < certain:
            kind = "lost_indeterminate" if indeterminate else "lost"
            counts[kind] += certain - distinct
            examples.add(kind, urn=urn, text=text, owed=certain, msg_ids=sorted(msg_ids))
        if distinct > certain + possible:
            kind = "duplicate_replies_indeterminate" if indeterminate else "duplicate_replies"
            counts[kind] += distinct - certain - possible
            examples.add(kind, urn=urn, text=text, owed=certain, maybe_owed=possible, msg_ids=sorted(msg_ids))
    counts["duplicate_deliveries_after_success"] = resent_after_success
    counts["duplicates"] = counts["duplicate_deliveries"] + counts["duplicate_replies"]
    counts["deliveries"] = len(snapshot.aggregator)
    counts.update(_database_agreement(snapshot))

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
        details={"quiescent": quiescent, "indeterminate_urns": len(indeterminate_urns)},
    )


def _database_agreement(snapshot: Snapshot) -> dict[str, int]:
    """How msgs_msg's outgoing rows compare with what the phone network saw (informational)."""
    received = {delivery.msg_id for delivery in snapshot.aggregator}
    outgoing = [m for m in snapshot.msgs if m.direction == "O"]
    known_ids = {str(m.id) for m in outgoing} | {m.uuid for m in outgoing}
    return {
        "outbound_rows": len(outgoing),
        "outbound_not_yet_sent": sum(m.status in NOT_YET_SENT for m in outgoing),
        "outbound_failed": sum(m.status == "F" for m in outgoing),
        "wired_not_received": sum(
            m.status in WIRED_OR_LATER and str(m.id) not in received and m.uuid not in received for m in outgoing
        ),
        "received_unknown_id": sum(d.msg_id not in known_ids for d in snapshot.aggregator) if outgoing else 0,
    }
