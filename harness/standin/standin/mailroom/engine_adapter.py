"""The one place mailroom touches the flow engine (`standin.flows`): contacts in, sprints out.

The engine's Sprint is turned into plain rows here, so the rest of mailroom depends on this module's
types only and a change of the engine's API stays in this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from standin.flows import Contact as EngineContact
from standin.flows import Engine
from standin.mailroom.models import Contact

_RUN_STATUS = {
    "active": "A",
    "waiting": "W",
    "completed": "C",
    "expired": "X",
    "interrupted": "I",
    "failed": "F",
}
_SESSION_STATUS = {"waiting": "W", "completed": "C", "failed": "F", "interrupted": "I", "expired": "X"}


@dataclass(frozen=True)
class RunRow:
    uuid: str
    flow_uuid: str
    status: str  # A W C X I F
    path: list[Any]
    results: dict[str, Any]
    exited_on: datetime | None
    responded: bool


@dataclass(frozen=True)
class SprintResult:
    session_state: dict[str, Any]
    session_status: str  # W C F
    messages: list[str]
    runs: list[RunRow]
    contact_name: str | None
    contact_language: str | None
    contact_fields: dict[str, Any]
    wait_timeout_seconds: int | None


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _status(value: Any, table: dict[str, str], what: str) -> str:
    text = str(_field(value, "value", value))
    if text in table.values():
        return text
    if text.lower() in table:
        return table[text.lower()]
    raise ValueError(f"flow engine returned an unknown {what} status {text!r}")


def _exited_on(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def engine_contact(contact: Contact) -> EngineContact:
    urn = contact.urns[0].identity if contact.urns else None
    fields = {
        key: value if isinstance(value, str) else str(_field(value, "text", value))
        for key, value in contact.fields.items()
        if value is not None
    }
    return EngineContact(uuid=contact.uuid, name=contact.name, urn=urn, fields=fields, language=contact.language)


def _to_result(sprint: Any, before: Contact) -> SprintResult:
    contact = _field(sprint, "contact") or {}
    runs = [
        RunRow(
            uuid=str(_field(r, "uuid")),
            flow_uuid=str(_field(r, "flow_uuid")),
            status=_status(_field(r, "status"), _RUN_STATUS, "run"),
            path=list(_field(r, "path") or []),
            results=dict(_field(r, "results") or {}),
            exited_on=_exited_on(_field(r, "exited_on")),
            responded=bool(_field(r, "responded", False)),
        )
        for r in _field(sprint, "runs") or []
    ]
    messages = [m if isinstance(m, str) else str(_field(m, "text", m)) for m in _field(sprint, "messages") or []]
    timeout = _field(sprint, "wait_timeout_seconds")
    return SprintResult(
        session_state=dict(_field(sprint, "session_state") or {}),
        session_status=_status(_field(sprint, "session_status"), _SESSION_STATUS, "session"),
        messages=messages,
        runs=runs,
        contact_name=_field(contact, "name", before.name) or before.name,
        contact_language=_field(contact, "language", before.language),
        contact_fields=dict(_field(contact, "fields", before.fields) or {}),
        wait_timeout_seconds=int(timeout) if timeout else None,
    )


def start(
    engine: Engine, flow_uuid: str, contact: Contact, now: datetime, trigger_text: str | None = None
) -> SprintResult:
    """Start a session; `trigger_text` is the message of a keyword trigger (the session's @input)."""
    return _to_result(engine.start(flow_uuid, engine_contact(contact), now, trigger_text=trigger_text), contact)


def resume(engine: Engine, state: dict[str, Any], contact: Contact, text: str, now: datetime) -> SprintResult:
    return _to_result(engine.resume(state, engine_contact(contact), text, now), contact)


def timeout(engine: Engine, state: dict[str, Any], contact: Contact, now: datetime) -> SprintResult:
    return _to_result(engine.timeout(state, engine_contact(contact), now), contact)
