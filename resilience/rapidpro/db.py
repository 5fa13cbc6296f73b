"""Read-only queries on RapidPro's database: the final state the checkers judge, and quiescence.

Only RapidPro's own tables and status codes (rapidpro-contracts.md), so it reads a real deployment too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from resilience.snapshot import Msg, Run, Session

MSGS_SQL = """
SELECT m.id, m.uuid::text AS uuid, m.direction, m.status, m.text, u.identity AS urn,
       c.uuid::text AS contact_uuid, ch.uuid::text AS channel_uuid, m.created_on, m.sent_on, m.modified_on,
       m.error_count
  FROM msgs_msg m
  JOIN contacts_contacturn u ON u.id = m.contact_urn_id
  LEFT JOIN contacts_contact c ON c.id = m.contact_id
  LEFT JOIN channels_channel ch ON ch.id = m.channel_id
 WHERE u.identity = ANY(%(urns)s)
 ORDER BY m.id
"""

RUNS_SQL = """
SELECT r.uuid::text AS uuid, f.uuid::text AS flow_uuid, f.name AS flow_name, r.status, r.path, r.results,
       r.created_on, r.exited_on, u.identity AS urn
  FROM flows_flowrun r
  JOIN flows_flow f ON f.id = r.flow_id
  JOIN contacts_contacturn u ON u.contact_id = r.contact_id
 WHERE u.identity = ANY(%(urns)s)
 ORDER BY r.id
"""

SESSIONS_SQL = """
SELECT s.uuid::text AS uuid, s.status, u.identity AS urn
  FROM flows_flowsession s
  JOIN contacts_contacturn u ON u.contact_id = s.contact_id
 WHERE u.identity = ANY(%(urns)s)
 ORDER BY s.id
"""

PENDING_SQL = """
SELECT count(*) FILTER (WHERE m.direction = 'I' AND m.status = 'P') AS pending_in,
       count(*) FILTER (WHERE m.direction = 'O' AND m.status IN ('I', 'Q')) AS pending_out
  FROM msgs_msg m
  JOIN contacts_contacturn u ON u.id = m.contact_urn_id
 WHERE u.identity = ANY(%(urns)s)
"""


UNSETTLED_SQL = """
SELECT DISTINCT u.identity AS urn
  FROM msgs_msg m
  JOIN contacts_contacturn u ON u.id = m.contact_urn_id
 WHERE u.identity = ANY(%(urns)s)
   AND ((m.direction = 'I' AND m.status = 'P') OR (m.direction = 'O' AND m.status IN ('I', 'Q', 'E')))
"""


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else None


def _path_nodes(path: object) -> list[str]:
    if not isinstance(path, list):
        return []
    return [str(step.get("node_uuid")) for step in path if isinstance(step, dict) and step.get("node_uuid")]


def _result_values(results: object) -> dict[str, object]:
    if not isinstance(results, dict):
        return {}
    return {k: (v.get("value") if isinstance(v, dict) else v) for k, v in results.items()}


@dataclass(frozen=True)
class Backlog:
    pending_in: int
    pending_out: int

    @property
    def empty(self) -> bool:
        return self.pending_in == 0 and self.pending_out == 0


class DbReader:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True, row_factory=dict_row)
        conn.read_only = True
        return conn

    def msgs(self, urns: Iterable[str]) -> list[Msg]:
        with self._connect() as conn:
            rows = conn.execute(MSGS_SQL, {"urns": list(urns)}).fetchall()
        return [
            Msg(
                id=int(r["id"]),
                uuid=str(r["uuid"]),
                direction=r["direction"],
                status=r["status"],
                text=r["text"] or "",
                urn=r["urn"],
                contact_uuid=r["contact_uuid"],
                channel_uuid=r["channel_uuid"],
                created_on=_iso(r["created_on"]),
                sent_on=_iso(r["sent_on"]),
                modified_on=_iso(r["modified_on"]),
                error_count=int(r["error_count"] or 0),
            )
            for r in rows
        ]

    def runs(self, urns: Iterable[str]) -> list[Run]:
        with self._connect() as conn:
            rows = conn.execute(RUNS_SQL, {"urns": list(urns)}).fetchall()
        return [
            Run(
                uuid=r["uuid"],
                flow_uuid=r["flow_uuid"],
                status=r["status"],
                contact_urn=r["urn"],
                flow_name=r["flow_name"],
                path=_path_nodes(r["path"]),
                results=_result_values(r["results"]),
                created_on=_iso(r["created_on"]),
                exited_on=_iso(r["exited_on"]),
            )
            for r in rows
        ]

    def sessions(self, urns: Iterable[str]) -> list[Session]:
        with self._connect() as conn:
            rows = conn.execute(SESSIONS_SQL, {"urns": list(urns)}).fetchall()
        return [Session(uuid=r["uuid"], status=r["status"], contact_urn=r["urn"]) for r in rows]

    def unsettled(self, urns: Iterable[str]) -> list[str]:
        """The URNs with work RapidPro may still do: an MO still pending, a reply not yet sent."""
        with self._connect() as conn:
            rows = conn.execute(UNSETTLED_SQL, {"urns": list(urns)}).fetchall()
        return sorted(str(r["urn"]) for r in rows)

    def backlog(self, urns: Iterable[str]) -> Backlog:
        with self._connect() as conn:
            row = conn.execute(PENDING_SQL, {"urns": list(urns)}).fetchone()
        assert row is not None
        return Backlog(int(row["pending_in"]), int(row["pending_out"]))
