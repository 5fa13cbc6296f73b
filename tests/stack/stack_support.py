"""What the stack tests share: a phone talking to the stack, reads of RapidPro's tables, a Postgres cut.

Everything goes through the addresses a real deployment offers (the load balancer's `/c/ex/` receive URL,
the aggregator the EX channel sends to, RapidPro's database, the Toxiproxy API), never a stand-in's
internals.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from resilience.backends.docker import DockerBackend
from resilience.cluster import Cluster
from resilience.rapidpro.aggregator import AggregatorClient
from resilience.rapidpro.courier import Received, parse_receive
from resilience.snapshot import Delivery

# The workload's contacts use +2507…; the stack tests' phones +2508…, so neither claims the other's replies.
TEST_URN_PREFIX = "+2508"


def new_phone_number() -> str:
    return f"{TEST_URN_PREFIX}{secrets.randbelow(10**8):08d}"


def poll(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy (returned), or fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Phone:
    """One contact's handset: sends MOs through the load balancer, reads the MTs the aggregator got for it."""

    def __init__(self, cluster: Cluster, number: str | None = None) -> None:
        self.number = number or new_phone_number()
        self.urn = f"tel:{self.number}"
        self._receive_url = f"{cluster.lb_url}/c/ex/{cluster.seed.channel_uuid}/receive"
        self._http = httpx.Client(timeout=10.0)
        self._aggregator: AggregatorClient = cluster.aggregator()
        self._after = self._aggregator.last_seq()
        self._cluster = cluster
        self._sent: list[Received] = []

    def send(self, text: str) -> Received:
        received = parse_receive(self._http.post(self._receive_url, data={"from": self.number, "text": text}))
        self._sent.append(received)
        return received

    def replies(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """The next `count` MTs to this phone, in arrival order; fails if they do not all come in time."""
        got: list[Delivery] = []

        def arrived() -> bool:
            for delivery in self._aggregator.records(self._after):
                self._after = max(self._after, delivery.seq)
                if delivery.recipient == self.urn:
                    got.append(delivery)
            return len(got) >= count

        try:
            poll(f"{count} repl{'y' if count == 1 else 'ies'} to {self.urn} (got {len(got)})", arrived, timeout, 0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None
        return got

    def diagnosis(self) -> str:
        """What the stack did with this phone's messages: its rows in msgs_msg and every stand-in log line
        naming the last MO's uuid, so a reply that never came says where it stopped."""
        lines = ["msgs_msg rows of this phone (direction, status, uuid, text):"]
        try:
            for row in Database(self._cluster).msgs([self.urn]):
                lines.append(f"  {row['direction']} {row['status']} {row['uuid']} {row['text']!r}")
        except psycopg.Error as exc:
            lines.append(f"  unreadable: {exc}")
        last = next((r.msg_uuid for r in reversed(self._sent) if r.msg_uuid), None)
        if last is None:
            return "\n".join(lines)
        lines.append(f"stand-in log lines naming the last MO {last}:")
        run = self._cluster.run
        for service in ("courier", "mailroom"):
            for node in run.nodes_of(service):
                try:
                    log = run.container(node).logs(tail=4000).decode("utf-8", "replace")
                except Exception as exc:  # a diagnosis must not hide the failure it explains
                    lines.append(f"  {node}: logs unreadable ({exc})")
                    continue
                lines.extend(f"  {node}: {line}" for line in log.splitlines() if last in line)
        return "\n".join(lines)

    def exchange(self, text: str, replies: int = 1, timeout: float = 20.0) -> list[str]:
        """Send `text`, require courier's acknowledgement, and return the texts of the next `replies` MTs."""
        received = self.send(text)
        assert received.accepted, f"courier did not accept {text!r} from {self.urn}: {received.status} {received.body}"
        return [d.text for d in self.replies(replies, timeout)]

    def close(self) -> None:
        self._http.close()
        self._aggregator.close()


@dataclass(frozen=True)
class RunRow:
    flow_name: str
    status: str
    results: dict[str, dict[str, Any]]  # key -> {name, value, category, input, ...} as flows_flowrun holds it
    path_nodes: list[str]


@dataclass(frozen=True)
class ContactRow:
    name: str | None
    fields: dict[str, Any]


class Database:
    """Direct reads of RapidPro's tables (the load balancer's Postgres address: the current primary)."""

    def __init__(self, cluster: Cluster) -> None:
        self.dsn = cluster.db_dsn

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, connect_timeout=5, autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql, params).fetchall())

    def contact(self, urn: str) -> ContactRow:
        rows = self._rows(
            "SELECT c.name, c.fields FROM contacts_contact c JOIN contacts_contacturn u ON u.contact_id = c.id"
            " WHERE u.identity = %(urn)s",
            {"urn": urn},
        )
        assert len(rows) == 1, f"expected one contact with URN {urn}, found {len(rows)}"
        return ContactRow(rows[0]["name"], dict(rows[0]["fields"] or {}))

    def runs(self, urn: str) -> list[RunRow]:
        rows = self._rows(
            "SELECT f.name, r.status, r.results, r.path FROM flows_flowrun r JOIN flows_flow f ON f.id = r.flow_id"
            " JOIN contacts_contacturn u ON u.contact_id = r.contact_id WHERE u.identity = %(urn)s ORDER BY r.id",
            {"urn": urn},
        )
        return [
            RunRow(r["name"], r["status"], dict(r["results"] or {}), [str(s["node_uuid"]) for s in r["path"] or []])
            for r in rows
        ]

    def session_statuses(self, urn: str) -> list[str]:
        rows = self._rows(
            "SELECT s.status FROM flows_flowsession s JOIN contacts_contacturn u ON u.contact_id = s.contact_id"
            " WHERE u.identity = %(urn)s ORDER BY s.id",
            {"urn": urn},
        )
        return [r["status"] for r in rows]

    def msgs(self, urns: list[str]) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT m.id, m.uuid::text AS uuid, m.direction, m.status, m.text, m.sent_on, u.identity AS urn"
            " FROM msgs_msg m JOIN contacts_contacturn u ON u.id = m.contact_urn_id"
            " WHERE u.identity = ANY(%(urns)s) ORDER BY m.id",
            {"urns": urns},
        )

    def msgs_by_uuid(self, uuids: list[str]) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT id, uuid::text AS uuid, direction, status, sent_on FROM msgs_msg"
            " WHERE uuid = ANY(%(uuids)s::uuid[])",
            {"uuids": uuids},
        )

    def keyword_triggers(self, flow_name: str) -> list[list[str]]:
        rows = self._rows(
            "SELECT t.keywords FROM triggers_trigger t JOIN flows_flow f ON f.id = t.flow_id"
            " WHERE f.name = %(name)s AND t.is_active",
            {"name": flow_name},
        )
        return [list(r["keywords"] or []) for r in rows]


@contextmanager
def switches(cluster: Cluster, wanted: dict[str, dict[str, object]]) -> Iterator[None]:
    """Recreate the nodes whose stand-in switches change; the topology's own switches come back whatever happens."""
    backend = DockerBackend()
    try:
        backend.reconfigure(cluster.run, wanted, log=lambda _m: None)
        yield
    finally:
        backend.reconfigure(cluster.run, {}, log=lambda _m: None)


class Toxiproxy:
    """The few calls of the Toxiproxy HTTP API these tests need (toxiproxy-1:8474, published on 127.0.0.1)."""

    def __init__(self, cluster: Cluster) -> None:
        self._http = httpx.Client(base_url=cluster.run.url(cluster.run.nodes_of("proxy")[0], 8474), timeout=10.0)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        response = self._http.post(f"/proxies/{proxy}", json={"enabled": enabled})
        if response.status_code != 200:
            raise AssertionError(f"toxiproxy {proxy} enabled={enabled}: {response.status_code} {response.text}")

    def enabled(self, proxy: str) -> bool:
        return bool(self._http.get(f"/proxies/{proxy}").json()["enabled"])

    @contextmanager
    def cut(self, proxy: str) -> Iterator[None]:
        """Every connection through `proxy` refused and the live ones closed, until the block ends."""
        self.set_enabled(proxy, False)
        try:
            yield
        finally:
            self.set_enabled(proxy, True)

    def close(self) -> None:
        self._http.close()
