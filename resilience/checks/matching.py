"""Which `msgs_msg` inbound rows each MO produced: shared by the inbound and availability checkers."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from resilience.checks.model import Exchange, HistoryView
from resilience.snapshot import Msg, Snapshot

PENDING = "P"


@dataclass(slots=True)
class InboundMatch:
    mo: Exchange
    rows: list[Msg]
    # Found only through urn+text, under another uuid than the one courier acknowledged.
    uuid_mismatch: bool


@dataclass
class InboundMatching:
    matches: list[InboundMatch]  # one per MO, in invocation order
    ambiguous_texts: int  # urn+text pairs sent by more than one MO: those match by uuid only
    unclaimed_rows: list[Msg]  # inbound rows no MO accounts for


def match_inbound(view: HistoryView, snapshot: Snapshot) -> InboundMatching:
    by_uuid: defaultdict[str, list[Msg]] = defaultdict(list)
    by_text: defaultdict[tuple[str | None, str], list[Msg]] = defaultdict(list)
    for msg in snapshot.msgs:
        if msg.direction == "I":
            by_uuid[msg.uuid].append(msg)
            by_text[(msg.urn, msg.text)].append(msg)
    mos = view.mos
    sent = Counter((mo.urn, mo.text) for mo in mos)
    ambiguous = {key for key, times in sent.items() if times > 1}
    claimed: set[int] = set()
    matches: list[InboundMatch] = []
    for mo in mos:
        key = (mo.urn, mo.text)
        rows = list(by_uuid.get(mo.msg_uuid, ())) if mo.msg_uuid is not None else []
        found_by_uuid = bool(rows)
        if key not in ambiguous:
            rows.extend(row for row in by_text.get(key, ()) if row.uuid != mo.msg_uuid)
        claimed.update(id(row) for row in rows)
        matches.append(InboundMatch(mo, rows, mo.msg_uuid is not None and not found_by_uuid and bool(rows)))
    unclaimed = [m for m in snapshot.msgs if m.direction == "I" and id(m) not in claimed]
    return InboundMatching(matches, len(ambiguous), unclaimed)
