"""Sessions and runs: the public records a sprint hands back and the JSON state a session is kept in.

The state is what mailroom stores in flows_flowsession.output and passes back to resume; it is plain
JSON (times as ISO-8601 UTC strings) and read back strictly, so a damaged state is a SessionError and
not a conversation silently restarted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import SessionError

STATE_FORMAT = "standin.flows/1"

# Status codes as RapidPro stores them (flows_flowsession.status, flows_flowrun.status).
ACTIVE, WAITING, COMPLETED, FAILED = "A", "W", "C", "F"
RUN_STATUSES = (ACTIVE, WAITING, COMPLETED, FAILED)
SESSION_STATUSES = (ACTIVE, WAITING, COMPLETED, FAILED)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def require_aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    return now


@dataclass
class Contact:
    """The contact a session runs for; the engine never changes it in place (see Sprint.contact)."""

    uuid: str
    name: str | None = None
    urn: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    language: str | None = None


@dataclass
class RunState:
    """One run of the session as flows_flowrun holds it: `path` and `results` are its JSON columns."""

    uuid: str
    flow_uuid: str
    status: str  # A active, W waiting, C completed, F failed
    path: list[dict[str, Any]]  # {uuid, node_uuid, arrived_on, exit_uuid}
    results: dict[
        str, dict[str, Any]
    ]  # key -> {name, value, category, category_localized, input, node_uuid, created_on}
    exited_on: datetime | None
    created_on: datetime
    modified_on: datetime
    parent_uuid: str | None = None
    responded: bool = False
    flow_name: str = ""


@dataclass
class Sprint:
    """What one start, resume or timeout did, and the session to store until the next one."""

    session_state: dict[str, Any]
    session_status: str  # W waiting, C completed, F failed
    messages: list[str]
    runs: list[RunState]
    contact: Contact
    wait_timeout_seconds: int | None
    events: list[dict[str, Any]]
    session_uuid: str = ""
    current_flow_uuid: str | None = None  # flow of the waiting run
    wait_started_on: datetime | None = None
    timeout_on: datetime | None = None
    wait_expires_on: datetime | None = None


@dataclass
class Run:
    """A run while the engine works on it (mutable); `snapshot` gives the public RunState."""

    uuid: str
    flow_uuid: str
    flow_name: str
    status: str
    parent_uuid: str | None
    created_on: datetime
    modified_on: datetime
    path: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    exited_on: datetime | None = None
    responded: bool = False

    def snapshot(self) -> RunState:
        return RunState(
            uuid=self.uuid,
            flow_uuid=self.flow_uuid,
            status=self.status,
            path=copy.deepcopy(self.path),
            results=copy.deepcopy(self.results),
            exited_on=self.exited_on,
            created_on=self.created_on,
            modified_on=self.modified_on,
            parent_uuid=self.parent_uuid,
            responded=self.responded,
            flow_name=self.flow_name,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "flow_uuid": self.flow_uuid,
            "flow_name": self.flow_name,
            "status": self.status,
            "parent_uuid": self.parent_uuid,
            "created_on": format_time(self.created_on),
            "modified_on": format_time(self.modified_on),
            "exited_on": format_time(self.exited_on) if self.exited_on else None,
            "responded": self.responded,
            "path": copy.deepcopy(self.path),
            "results": copy.deepcopy(self.results),
        }

    @classmethod
    def from_state(cls, data: Any, where: str) -> Run:
        reader = _StateReader(data, where)
        status = reader.string("status")
        if status not in RUN_STATUSES:
            raise SessionError(f"{where}: run status {status!r} is not one of {RUN_STATUSES}")
        exited_on = reader.data.get("exited_on")
        return cls(
            uuid=reader.string("uuid"),
            flow_uuid=reader.string("flow_uuid"),
            flow_name=reader.string("flow_name", optional=True),
            status=status,
            parent_uuid=reader.data.get("parent_uuid"),
            created_on=reader.time("created_on"),
            modified_on=reader.time("modified_on"),
            exited_on=reader.time("exited_on") if exited_on else None,
            responded=bool(reader.data.get("responded", False)),
            path=reader.array("path"),
            results=reader.mapping("results"),
        )


@dataclass
class WaitState:
    run_uuid: str
    node_uuid: str
    started_on: datetime
    timeout_seconds: int | None
    expires_on: datetime

    @property
    def timeout_on(self) -> datetime | None:
        if self.timeout_seconds is None:
            return None
        return self.started_on + timedelta(seconds=self.timeout_seconds)

    def to_state(self) -> dict[str, Any]:
        timeout_on = self.timeout_on
        return {
            "run_uuid": self.run_uuid,
            "node_uuid": self.node_uuid,
            "started_on": format_time(self.started_on),
            "timeout_seconds": self.timeout_seconds,
            "timeout_on": format_time(timeout_on) if timeout_on else None,
            "expires_on": format_time(self.expires_on),
        }

    @classmethod
    def from_state(cls, data: Any, where: str) -> WaitState:
        reader = _StateReader(data, where)
        timeout = reader.data.get("timeout_seconds")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
            raise SessionError(f"{where}: 'timeout_seconds' must be a whole number or null, found {timeout!r}")
        return cls(
            run_uuid=reader.string("run_uuid"),
            node_uuid=reader.string("node_uuid"),
            started_on=reader.time("started_on"),
            timeout_seconds=timeout,
            expires_on=reader.time("expires_on"),
        )


@dataclass
class Session:
    uuid: str
    contact_uuid: str
    status: str
    runs: list[Run] = field(default_factory=list)
    wait: WaitState | None = None
    sprints: int = 0

    def run(self, uuid: str | None) -> Run | None:
        return next((run for run in self.runs if run.uuid == uuid), None) if uuid else None

    def to_state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "uuid": self.uuid,
            "contact_uuid": self.contact_uuid,
            "status": self.status,
            "sprints": self.sprints,
            "runs": [run.to_state() for run in self.runs],
            "wait": self.wait.to_state() if self.wait else None,
        }

    @classmethod
    def from_state(cls, data: Any) -> Session:
        reader = _StateReader(data, "session state")
        if reader.data.get("format") != STATE_FORMAT:
            raise SessionError(
                f"session state: 'format' is {reader.data.get('format')!r}, expected {STATE_FORMAT!r} "
                "(not a state written by this engine)"
            )
        status = reader.string("status")
        if status not in SESSION_STATUSES:
            raise SessionError(f"session state: status {status!r} is not one of {SESSION_STATUSES}")
        runs = [Run.from_state(item, f"session state runs[{i}]") for i, item in enumerate(reader.array("runs"))]
        wait = reader.data.get("wait")
        sprints = reader.data.get("sprints", 0)
        if not isinstance(sprints, int) or isinstance(sprints, bool):
            raise SessionError(f"session state: 'sprints' must be a whole number, found {sprints!r}")
        return cls(
            uuid=reader.string("uuid"),
            contact_uuid=reader.string("contact_uuid"),
            status=status,
            runs=runs,
            wait=WaitState.from_state(wait, "session state wait") if wait else None,
            sprints=sprints,
        )


class _StateReader:
    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise SessionError(f"{where}: expected a JSON object, found {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where

    def string(self, key: str, *, optional: bool = False) -> str:
        value = self.data.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value:
            raise SessionError(f"{self.where}: '{key}' must be a non-empty string, found {value!r}")
        return value

    def time(self, key: str) -> datetime:
        text = self.string(key)
        try:
            return parse_time(text)
        except ValueError as exc:
            raise SessionError(f"{self.where}: '{key}' is not an ISO-8601 time: {text!r}") from exc

    def array(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if not isinstance(value, list):
            raise SessionError(f"{self.where}: '{key}' must be a list, found {type(value).__name__}")
        return copy.deepcopy(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise SessionError(f"{self.where}: '{key}' must be an object, found {type(value).__name__}")
        return copy.deepcopy(value)
