"""Everything the checkers derive from one history and one snapshot, computed on first use.

`run_all` hands one Analysis to every checker so that the history is paired and the snapshot indexed
once; a checker called on its own builds a fresh one. Neither input may change while it is in use.
"""

from __future__ import annotations

from functools import cached_property
from operator import attrgetter

from resilience.checks.matching import InboundMatching, match_inbound
from resilience.checks.model import HistoryView, view_of
from resilience.history import OK, RecordedHistory
from resilience.snapshot import Delivery, Snapshot


class Analysis:
    def __init__(self, history: RecordedHistory, snapshot: Snapshot) -> None:
        self.history = history
        self.snapshot = snapshot

    @classmethod
    def of(cls, history: RecordedHistory, snapshot: Snapshot, analysis: Analysis | None) -> Analysis:
        """The analysis to use: the one given (which must be of these inputs) or a new one."""
        if analysis is None:
            return cls(history, snapshot)
        if analysis.history is not history or analysis.snapshot is not snapshot:
            raise ValueError("the analysis given was made for another history or snapshot")
        return analysis

    @cached_property
    def view(self) -> HistoryView:
        return view_of(self.history)

    @cached_property
    def _unsettled(self) -> frozenset[str] | None:
        unsettled = self.snapshot.unsettled
        return frozenset(unsettled) if unsettled is not None else None

    def settled(self, urn: str) -> bool:
        """Whether RapidPro had nothing left to do for this contact when the snapshot was read: a contact
        with a backlog is judged unknown, the others are judged (quiescence per contact)."""
        if self.snapshot.quiescent:
            return True
        unsettled = self._unsettled
        return unsettled is not None and urn not in unsettled

    def seconds_of_wall(self, wall_ns: int) -> float:
        """A wall-clock time in the history's seconds (the recorder's anchor pairs the two clocks)."""
        return self.view.seconds(self.history.header.wall_to_mono_ns(wall_ns))

    @cached_property
    def inbound(self) -> InboundMatching:
        return match_inbound(self.view, self.snapshot)

    @cached_property
    def deliveries(self) -> dict[str, list[Delivery]]:
        """Per recipient URN, every delivery in arrival order (seq)."""
        grouped: dict[str, list[Delivery]] = {}
        for delivery in sorted(self.snapshot.aggregator, key=attrgetter("seq")):
            grouped.setdefault(delivery.recipient, []).append(delivery)
        return grouped

    @cached_property
    def first_deliveries(self) -> dict[str, list[Delivery]]:
        """Per recipient URN, each msg_id's first delivery only, in arrival order: a redelivery of the
        same message is a transport matter (the outbound checker counts it), not a second reply."""
        firsts: dict[str, list[Delivery]] = {}
        for urn, deliveries in self.deliveries.items():
            seen: set[str] = set()
            kept = firsts[urn] = []
            for delivery in deliveries:
                if delivery.msg_id not in seen:
                    seen.add(delivery.msg_id)
                    kept.append(delivery)
        return firsts

    @cached_property
    def owed_texts(self) -> dict[str, list[str]]:
        """Per URN, the replies its acknowledged exchanges owe, in invocation order."""
        return {
            urn: [text for e in exchanges if e.outcome == OK for text in e.expect]
            for urn, exchanges in self.view.by_urn.items()
        }

    @cached_property
    def seen_texts(self) -> dict[str, list[str]]:
        """Per URN, the text of each message's first delivery, in arrival order."""
        return {urn: [d.text for d in deliveries] for urn, deliveries in self.first_deliveries.items()}
