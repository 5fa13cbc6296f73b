"""The final state read after quiescence: messages, runs, sessions, what the phone network received, logs.

Plain dataclasses with a JSON form (docs/checkers.md, "The snapshot"). Loading checks each record's
required fields and their types and names the offending record; fields it does not know are ignored, so
adapters may carry extra columns.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar


class SnapshotError(ValueError):
    """A snapshot file is malformed; the message names the record and the field."""


MSG_DIRECTIONS = frozenset({"I", "O"})
MSG_STATUSES = frozenset("IPHQWSDEF")
RUN_STATUSES = frozenset("AWCXIF")
SESSION_STATUSES = frozenset("WCXIF")


@dataclass(slots=True)
class Msg:
    """A `msgs_msg` row."""

    id: int
    uuid: str
    direction: str
    status: str
    text: str
    urn: str | None = None
    contact_uuid: str | None = None
    channel_uuid: str | None = None
    created_on: str | None = None
    sent_on: str | None = None
    modified_on: str | None = None
    error_count: int = 0


@dataclass(slots=True)
class Run:
    """A `flows_flowrun` row joined with its flow and its contact's URN."""

    uuid: str
    flow_uuid: str
    status: str
    contact_urn: str | None = None
    flow_name: str | None = None
    path: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    created_on: str | None = None
    exited_on: str | None = None


@dataclass(slots=True)
class Session:
    """A `flows_flowsession` row with its contact's URN."""

    uuid: str
    status: str
    contact_urn: str | None = None


@dataclass(slots=True)
class Delivery:
    """One request the simulated phone network (the aggregator) accepted. `seq` is its arrival order.

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


@dataclass
class Snapshot:
    msgs: list[Msg] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    aggregator: list[Delivery] = field(default_factory=list)
    quiescent: bool = False
    logs: dict[str, list[str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "quiescent": self.quiescent,
            "msgs": [asdict(m) for m in self.msgs],
            "runs": [asdict(r) for r in self.runs],
            "sessions": [asdict(s) for s in self.sessions],
            "aggregator": [asdict(d) for d in self.aggregator],
            "logs": self.logs,
        }


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


# --- loading ---------------------------------------------------------------------------------------

Record = TypeVar("Record")

# Per record kind: (required field -> accepted JSON types, optional field -> accepted JSON types).
_Types = tuple[type, ...]
_STR: _Types = (str,)
_INT: _Types = (int,)
_OPT_STR: _Types = (str, type(None))


_Schema = tuple[dict[str, _Types], dict[str, _Types]]

_MSG: _Schema = (
    {"id": _INT, "uuid": _STR, "direction": _STR, "status": _STR, "text": _STR},
    {
        "urn": _OPT_STR,
        "contact_uuid": _OPT_STR,
        "channel_uuid": _OPT_STR,
        "created_on": _OPT_STR,
        "sent_on": _OPT_STR,
        "modified_on": _OPT_STR,
        "error_count": _INT,
    },
)
_RUN: _Schema = (
    {"uuid": _STR, "flow_uuid": _STR, "status": _STR},
    {
        "contact_urn": _OPT_STR,
        "flow_name": _OPT_STR,
        "path": (list,),
        "results": (dict,),
        "created_on": _OPT_STR,
        "exited_on": _OPT_STR,
    },
)
_SESSION: _Schema = ({"uuid": _STR, "status": _STR}, {"contact_urn": _OPT_STR})
_DELIVERY: _Schema = (
    {"seq": _INT, "msg_id": (str, int), "to": _STR, "text": _STR, "received_wall_ns": _INT},
    {"answer": _OPT_STR},
)


def _check_record(
    raw: object,
    where: str,
    schema: _Schema,
    codes: tuple[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(raw).__name__}")
    required, optional = schema
    picked: dict[str, Any] = {}
    for name, kinds in required.items():
        if name not in raw:
            raise SnapshotError(f"{where}: missing field {name!r}")
        value = raw[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise SnapshotError(f"{where}.{name}: expected {_names(kinds)}, got {value!r}")
        picked[name] = value
    for name, kinds in optional.items():
        if name in raw:
            value = raw[name]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise SnapshotError(f"{where}.{name}: expected {_names(kinds)}, got {value!r}")
            picked[name] = value
    if codes is not None:
        name, allowed = codes
        if picked[name] not in allowed:
            raise SnapshotError(f"{where}.{name}: {picked[name]!r} is not one of {''.join(sorted(allowed))}")
    return picked


def _names(kinds: _Types) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def _load_list(
    raw: Mapping[str, Any],
    key: str,
    source: str,
    build: Callable[[dict[str, Any]], Record],
    schema: _Schema,
    codes: tuple[str, frozenset[str]] | None = None,
    extra: Callable[[dict[str, Any], str], None] | None = None,
) -> list[Record]:
    items = raw.get(key, [])
    if not isinstance(items, list):
        raise SnapshotError(f"{source}: {key}: expected a list, got {type(items).__name__}")
    out: list[Record] = []
    for position, item in enumerate(items):
        where = f"{source}: {key}[{position}]"
        picked = _check_record(item, where, schema, codes)
        if extra is not None:
            extra(picked, where)
        out.append(build(picked))
    return out


def _check_msg(picked: dict[str, Any], where: str) -> None:
    if picked["direction"] not in MSG_DIRECTIONS:
        raise SnapshotError(f"{where}.direction: {picked['direction']!r} is not I or O")


def _check_run(picked: dict[str, Any], where: str) -> None:
    if not all(isinstance(node, str) for node in picked.get("path", ())):
        raise SnapshotError(f"{where}.path: expected a list of node uuids (strings)")


def snapshot_from_dict(raw: object, source: str = "<snapshot>") -> Snapshot:
    if not isinstance(raw, dict):
        raise SnapshotError(f"{source}: expected a JSON object at the top, got {type(raw).__name__}")
    known = {f.name for f in fields(Snapshot)}
    unknown = set(raw) - known
    if unknown:
        raise SnapshotError(f"{source}: unknown top-level keys {sorted(unknown)}; expected {sorted(known)}")
    quiescent = raw.get("quiescent", False)
    if not isinstance(quiescent, bool):
        raise SnapshotError(f"{source}: quiescent: expected true or false, got {quiescent!r}")

    def delivery(picked: dict[str, Any]) -> Delivery:
        picked["msg_id"] = str(picked["msg_id"])
        return Delivery(**picked)

    return Snapshot(
        msgs=_load_list(raw, "msgs", source, lambda p: Msg(**p), _MSG, ("status", MSG_STATUSES), _check_msg),
        runs=_load_list(raw, "runs", source, lambda p: Run(**p), _RUN, ("status", RUN_STATUSES), _check_run),
        sessions=_load_list(raw, "sessions", source, lambda p: Session(**p), _SESSION, ("status", SESSION_STATUSES)),
        aggregator=_load_list(raw, "aggregator", source, delivery, _DELIVERY),
        quiescent=quiescent,
        logs=_load_logs(raw.get("logs"), source),
    )


def _load_logs(raw: object, source: str) -> dict[str, list[str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SnapshotError(f"{source}: logs: expected an object of node -> list of lines")
    for node, lines in raw.items():
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise SnapshotError(f"{source}: logs[{node!r}]: expected a list of strings")
    return raw


def read_snapshot(path: Path | str) -> Snapshot:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such snapshot file") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}:{exc.lineno}: not JSON ({exc.msg} at column {exc.colno})") from None
    return snapshot_from_dict(raw, str(path))


def write_snapshot(snapshot: Snapshot, path: Path | str) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        json.dump(snapshot.to_dict(), handle, ensure_ascii=False, separators=(",", ":"))
