"""What the simulated phone network received, indexed per contact: shared by the reply-side checkers."""

from __future__ import annotations

from collections import defaultdict
from operator import attrgetter

from resilience.snapshot import Delivery, Snapshot


def deliveries_by_urn(snapshot: Snapshot) -> dict[str, list[Delivery]]:
    """Every delivery per recipient URN, in arrival order (seq)."""
    grouped: defaultdict[str, list[Delivery]] = defaultdict(list)
    for delivery in sorted(snapshot.aggregator, key=attrgetter("seq")):
        grouped[delivery.recipient].append(delivery)
    return dict(grouped)


def first_deliveries(grouped: dict[str, list[Delivery]]) -> dict[str, list[Delivery]]:
    """Per URN, each msg_id's first delivery only, in arrival order: a redelivery of the same message is
    a transport matter (the outbound checker counts it), not a second reply."""
    firsts: dict[str, list[Delivery]] = {}
    for urn, deliveries in grouped.items():
        seen: set[str] = set()
        kept = []
        for delivery in deliveries:
            if delivery.msg_id not in seen:
                seen.add(delivery.msg_id)
                kept.append(delivery)
        firsts[urn] = kept
    return firsts
