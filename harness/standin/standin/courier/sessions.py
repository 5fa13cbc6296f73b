"""Moving a waiting session's timeout once the prompt that started the wait has gone out.

Mailroom v9.2.2 puts `session_wait_started_on` and `session_timeout` on the last message of a sprint
whose session waits with a timeout (`core/msgio/courier.go: NewCourierMsg`). Courier v9.2.1, after
wiring or sending such a message, sets the session's `timeout_on` to now + that timeout, provided the
session is still waiting and its wait began at the same moment (`backends/rapidpro/sessions.go`), so
the contact gets the whole timeout counted from when the prompt actually left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db import Database
from .timefmt import parse_rfc3339

# courier gives the status write, the channel log and this update 10 s together (writeCTX)
WRITE_TIMEOUT_S = 10.0

_SQL_UPDATE_SESSION_TIMEOUT = """
UPDATE flows_flowsession
   SET timeout_on = NOW() + %s * interval '1 second'
 WHERE id = %s
   AND extract(epoch from wait_started_on) = extract(epoch from %s::timestamptz)
   AND status = 'W'
"""


@dataclass(frozen=True)
class SessionWait:
    session_id: int
    wait_started_on: datetime
    timeout_s: int


def session_wait(msg: dict[str, Any]) -> SessionWait | None:
    """The wait a queued message carries, if mailroom marked it as the sprint's last message."""
    started = msg.get("session_wait_started_on")
    if not started:
        return None
    return SessionWait(
        session_id=int(msg.get("session_id") or 0),
        wait_started_on=parse_rfc3339(str(started)),  # Go writes nanoseconds; 3.11 truncates to µs
        timeout_s=int(msg.get("session_timeout") or 0),
    )


async def update_session_timeout(db: Database, wait: SessionWait) -> None:
    async with db.connection(WRITE_TIMEOUT_S) as conn:
        await conn.execute(_SQL_UPDATE_SESSION_TIMEOUT, (wait.timeout_s, wait.session_id, wait.wait_started_on))
