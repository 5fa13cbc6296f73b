"""Which `msgs_msg` inbound rows each MO produced: shared by the inbound and availability checkers.

An MO's rows are those under the uuid courier acknowledged that carry the MO's URN and text, plus those
with its URN and text under another uuid (texts are unique per MO, so a second row under another uuid is
a duplicate too). Each row accounts for one MO at most. A URN+text sent by more than one MO is ambiguous
and matched by uuid only.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from resilience.checks.model import Exchange, HistoryView
from resilience.snapshot import Msg, Snapshot

PENDING = "P"


class InboundMatch(msgspec.Struct, gc=False):
    mo: Exchange
    rows: list[Msg]
    # Found only through urn+text, under another uuid than the one courier acknowledged.
    uuid_mismatch: bool


@dataclass
class InboundMatching:
    settled: int  # acknowledged MOs found exactly once, under their uuid and text, and handled
    others: list[InboundMatch]  # every other MO (lost, duplicated, pending, unknown, rejected...)
    ambiguous_texts: int  # urn+text pairs sent by more than one MO: those match by uuid only
    unclaimed_rows: int  # inbound rows no MO accounts for


def _repeated(values: list[str]) -> set[str]:
    """The values that occur more than once (C-speed when, as usual, there are none)."""
    if len(set(values)) == len(values):
        return set()
    seen: set[str] = set()
    repeated = set()
    for value in values:
        if value in seen:
            repeated.add(value)
        seen.add(value)
    return repeated


def match_inbound(view: HistoryView, snapshot: Snapshot) -> InboundMatching:
    inbound = [m for m in snapshot.msgs if m.direction == "I"]
    uuids = [m.uuid for m in inbound]
    texts = [m.text for m in inbound]
    # Duplicates are rare: index every row by uuid and by text in C, and keep lists only for the
    # uuids and texts that several rows share.
    by_uuid, by_text = dict(zip(uuids, inbound, strict=True)), dict(zip(texts, inbound, strict=True))
    shared_uuids, shared_texts = _repeated(uuids), _repeated(texts)
    rows_by_uuid: dict[str, list[Msg]] = {u: [] for u in shared_uuids}
    rows_by_text: dict[tuple[str | None, str], list[Msg]] = {}
    for msg in inbound:
        if msg.uuid in shared_uuids:
            rows_by_uuid[msg.uuid].append(msg)
        if msg.text in shared_texts:
            rows_by_text.setdefault((msg.urn, msg.text), []).append(msg)

    def rows_with_text(urn: str, text: str) -> list[Msg]:
        if text in shared_texts:
            return list(rows_by_text.get((urn, text), ()))
        row = by_text.get(text)
        return [row] if row is not None and row.urn == urn else []

    mos = view.mos
    texts_sent_twice = _repeated([mo.text or "" for mo in mos])
    sent: set[tuple[str, str | None]] = set()
    ambiguous: set[tuple[str, str | None]] = set()  # urn+text sent by more than one MO
    for mo in mos:
        if mo.text in texts_sent_twice:
            key = (mo.urn, mo.text)
            if key in sent:
                ambiguous.add(key)
            sent.add(key)

    claimed: set[int] = set()  # row ids: each row accounts for one MO at most
    settled = 0
    others: list[InboundMatch] = []
    for mo in mos:
        uuid, text = mo.msg_uuid, mo.text or ""
        row: Msg | None = by_uuid.get(uuid) if uuid is not None else None
        # The usual case: the acknowledged uuid names one handled row, the only one with this text.
        if (
            row is not None
            and uuid not in shared_uuids
            and text not in shared_texts
            and row.text == text
            and row.urn == mo.urn
            and row.status != PENDING
            and row.id not in claimed
        ):
            claimed.add(row.id)
            settled += 1
            continue
        under_uuid = (list(rows_by_uuid[uuid]) if uuid in shared_uuids else [row]) if row is not None else []
        # A row is this MO's only if it carries the URN and text that were sent, and no other MO has
        # claimed it: an acknowledgement naming another contact's row must not hide a lost message.
        rows = [r for r in under_uuid if r.urn == mo.urn and r.text == text and r.id not in claimed]
        found_by_uuid = bool(rows)
        if (mo.urn, mo.text) not in ambiguous:
            rows.extend(
                other for other in rows_with_text(mo.urn, text) if other.uuid != uuid and other.id not in claimed
            )
        claimed.update(other.id for other in rows)
        others.append(InboundMatch(mo, rows, uuid is not None and not found_by_uuid and bool(rows)))
    return InboundMatching(settled, others, len(ambiguous), len(inbound) - len(claimed))
