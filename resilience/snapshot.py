"""The final state read after quiescence: messages, runs, sessions, what the phone network received, logs.

Typed records with a JSON form (docs/checkers.md, "The snapshot"). Reading validates every record's
fields and their types and names the offending one (`$.msgs[12].id`); fields a record does not know are
ignored, so adapters may carry extra columns, but unknown top-level keys are refused.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from sys import intern
from typing import Any, Literal

import msgspec

from resilience.history import gc_paused

Direction = Literal["I", "O"]
MsgStatus = Literal["I", "P", "H", "Q", "W", "S", "D", "E", "F"]
RunStatus = Literal["A", "W", "C", "X", "I", "F"]
SessionStatus = Literal["W", "C", "X", "I", "F"]


class SnapshotError(ValueError):
    """A snapshot file is malformed; the message names the record and the field."""


class Msg(msgspec.Struct, gc=False, omit_defaults=True):
    """A `msgs_msg` row."""

    id: int
    uuid: str
    direction: Direction
    status: MsgStatus
    text: str
    urn: str | None = None
    contact_uuid: str | None = None
    channel_uuid: str | None = None
    created_on: str | None = None
    sent_on: str | None = None
    modified_on: str | None = None
    error_count: int = 0


class Run(msgspec.Struct, omit_defaults=True):
    """A `flows_flowrun` row joined with its flow and its contact's URN."""

    uuid: str
    flow_uuid: str
    status: RunStatus
    contact_urn: str | None = None
    flow_name: str | None = None
    path: list[str] = msgspec.field(default_factory=list)
    results: dict[str, Any] = msgspec.field(default_factory=dict)
    created_on: str | None = None
    exited_on: str | None = None


class Session(msgspec.Struct, gc=False, omit_defaults=True):
    """A `flows_flowsession` row with its contact's URN."""

    uuid: str
    status: SessionStatus
    contact_urn: str | None = None


class Delivery(msgspec.Struct, gc=False, omit_defaults=True):
    """One request the simulated phone network (the aggregator) received. `seq` is its arrival order.

    `msg_id` is what courier put in `{{id}}`: the integer `msgs_msg.id` in v9 (the uuid in v26), kept
    as a string so both compare alike. `to` is the recipient URN; courier's `{{to}}` is only the URN's
    path, which `recipient` reads as a `tel:` URN. `answer` is what the aggregator replied ("200",
    "500", "hang"), when known: the phone network got the message whatever it answered.
    """

    seq: int
    msg_id: str
    to: str
    text: str
    received_wall_ns: int
    answer: str | None = None

    @property
    def recipient(self) -> str:
        return self.to if ":" in self.to else f"tel:{self.to}"

    @property
    def accepted(self) -> bool:
        """Answered with a 2xx (unknown answers count as accepted)."""
        return self.answer is None or self.answer.startswith("2")


class Snapshot(msgspec.Struct, forbid_unknown_fields=True):
    """The end state. `quiescent`: RapidPro had nothing left to do when it was read. `unsettled`: the URNs
    that still had a backlog then (a pending MO, a queued reply), when that could be told per contact;
    None means it could not (e.g. a spool or a queue not attributable to a contact was not empty), so every
    contact is as settled as `quiescent` says. `logs`: None when logs were not collected."""

    msgs: list[Msg] = msgspec.field(default_factory=list)
    runs: list[Run] = msgspec.field(default_factory=list)
    sessions: list[Session] = msgspec.field(default_factory=list)
    aggregator: list[Delivery] = msgspec.field(default_factory=list)
    quiescent: bool = False
    logs: dict[str, list[str]] | None = None
    unsettled: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class _SnapshotFile(msgspec.Struct, forbid_unknown_fields=True):
    """A snapshot as stored: the first five keys are required, so that a file missing one (an aggregator
    never read, a quiescence never judged) is refused instead of judged on defaults."""

    msgs: list[Msg]
    runs: list[Run]
    sessions: list[Session]
    aggregator: list[Delivery]
    quiescent: bool
    logs: dict[str, list[str]] | None = None
    unsettled: list[str] | None = None


def iso_to_wall_ns(value: str) -> int:
    """Wall-clock ns of an ISO-8601 time (a naive time is taken as UTC, as Postgres' timestamptz prints)."""
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    whole = int(moment.timestamp())
    return whole * 1_000_000_000 + moment.microsecond * 1000


def wall_ns_to_iso(wall_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(wall_ns // 1_000_000_000, tz=dt.UTC)
    moment = moment.replace(microsecond=(wall_ns % 1_000_000_000) // 1000)
    return moment.isoformat().replace("+00:00", "Z")


_decode_file = msgspec.json.Decoder(_SnapshotFile).decode


def _decode(data: bytes | str) -> Snapshot:
    stored = _decode_file(data)
    return Snapshot(
        stored.msgs, stored.runs, stored.sessions, stored.aggregator, stored.quiescent, stored.logs, stored.unsettled
    )


def parse_snapshot(data: bytes | str, source: str = "<snapshot>") -> Snapshot:
    try:
        with gc_paused():
            snapshot = _decode(data)
            _share_repeated_strings(snapshot)
            return snapshot
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{source}{_json_position(data)}: not JSON ({exc})") from None


def _share_repeated_strings(snapshot: Snapshot) -> None:
    """Keep one copy of the strings that recur across records (URNs, reply texts, flows): a large
    snapshot holds each of them hundreds of thousands of times."""
    for msg in snapshot.msgs:
        if msg.urn is not None:
            msg.urn = intern(msg.urn)
        if msg.direction == "O":  # replies repeat the flow's texts; inbound texts are unique
            msg.text = intern(msg.text)
    for delivery in snapshot.aggregator:
        delivery.to, delivery.text = intern(delivery.to), intern(delivery.text)
    for run in snapshot.runs:
        run.flow_uuid = intern(run.flow_uuid)
        if run.contact_urn is not None:
            run.contact_urn = intern(run.contact_urn)
        if run.flow_name is not None:
            run.flow_name = intern(run.flow_name)
    for session in snapshot.sessions:
        if session.contact_urn is not None:
            session.contact_urn = intern(session.contact_urn)


def _json_position(data: bytes | str) -> str:
    """':line' of a JSON syntax error, found by the standard parser (only on this error path)."""
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        return f":{exc.lineno}"
    except ValueError:
        pass
    return ""


def snapshot_from_dict(raw: object, source: str = "<snapshot>") -> Snapshot:
    return parse_snapshot(msgspec.json.encode(raw), source)


def read_snapshot(path: Path | str) -> Snapshot:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot file") from None
    return parse_snapshot(data, str(path))


def write_snapshot(snapshot: Snapshot, path: Path | str) -> None:
    Path(path).write_bytes(msgspec.json.encode(snapshot))
