"""pg-failover: lose the PostgreSQL primary and promote its hot standby; the stable address follows.

Inject: refuse unless a standby is streaming from the primary (else the promotion loses data of the
fault's making); kill the primary (`method=kill`) or cut it off (`method=partition`: every packet but
loopback dropped, so it still runs and still believes it is primary); `SELECT pg_promote()` on the
standby; wait until HAProxy's :5432 (which asks each node's health agent "/primary") leads to it.

Recover: the old primary rejoins as the new primary's standby. A partitioned old primary is killed
first (it must never be reachable as a second primary), then started: pg-node sees another primary
among its peers and re-clones from it. Done when it streams. Should the inject have stopped before
the promotion, the old primary is simply brought back as the primary it still is.

How the standby is promoted and the old primary rejoins is a `Promotion`, chosen from the run
(`promotion_for`): on the Docker topologies `pg_promote()` through psql and pg-node's re-clone at start
(FailoverMethod.SQL); on a hosts run, the commands its hosts file declares for the postgres service
(`failover: {method: pg_ctl|patronictl|repmgr, promote, rejoin}`, the last two with defaults for
patronictl and repmgr): `promote` on the standby's host, `rejoin` on the old primary's host while it is
down, then the node is started. On hosts the partition drops only the traffic with the other hosts of the
file (dropping all but loopback would cut the harness's own SSH session to the host).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import time
from collections import Counter
from typing import TYPE_CHECKING, Protocol

import psycopg

from resilience.backends import hosts_commands
from resilience.backends.base import BackendError
from resilience.backends.hosts import FaultsNotAllowed
from resilience.backends.hosts_data import HostCommands, host_commands, node_fields, service_of_role
from resilience.faults.base import (
    BaseFault,
    Facts,
    FaultError,
    FaultSpecError,
    nodes_with_role,
    wait_for,
)
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.netfilter import cut_off, remove_fault_rules
from resilience.topology.hosts import PostgresFailover, fill

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology

METHODS = ("kill", "partition")
LB_BACKEND = "postgres"  # the HAProxy listen section in front of the primary
PG_PORT = 5432
CLIENT_DSN = "dbname=temba user=temba password=temba connect_timeout=2"


def pg_sql(run: Backend, node: str, sql: str) -> str:
    """Run SQL on a node as the postgres superuser over its local socket (works whatever the network)."""
    cmd = ["psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres", "-XtAc", sql]
    return run.exec_ok(node, cmd, user="postgres").strip()


def pg_role(run: Backend, node: str) -> str | None:
    """ "primary", "standby", or None when the node is not running or its server does not answer."""
    if run.state(node) != "running":
        return None
    rc, out = run.exec(
        node,
        [
            "psql",
            "-h",
            "/var/run/postgresql",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-XtAc",
            "SELECT pg_is_in_recovery()",
        ],
        user="postgres",
    )
    if rc != 0:
        return None
    return {"f": "primary", "t": "standby"}.get(out.strip())


def current_primary(run: Backend) -> str:
    primaries = [node for node in nodes_with_role(run, "postgres") if pg_role(run, node) == "primary"]
    if len(primaries) != 1:
        raise FaultError(f"expected exactly one PostgreSQL primary, found {primaries or 'none'}")
    return primaries[0]


def _names_of(run: Backend, node: str) -> set[str]:
    """What a standby's primary_conninfo may call `node`: its name; on hosts also its host and the address
    its peers dial it at."""
    hosts = host_commands(run)
    if hosts is None:
        return {node}
    return {node, *node_fields(hosts.hosts, node).values()}


def streams_from(run: Backend, standby: str, primary: str) -> bool:
    if pg_role(run, standby) != "standby":
        return False
    out = pg_sql(run, standby, "SELECT status || '|' || coalesce(sender_host, '') FROM pg_stat_wal_receiver")
    status, _, sender = out.partition("|")
    return status == "streaming" and sender in _names_of(run, primary)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def lb_leads_to(run: Backend, lb: str, node: str) -> bool:
    """HAProxy's postgres backend has `node` UP and nothing else UP, and a client through it lands there."""
    states = {s.server: s.up for s in HaproxyRuntime(run, lb).servers_of(LB_BACKEND)}
    if not states.get(node) or any(up for server, up in states.items() if server != node):
        return False
    host, port = run.endpoint(lb, PG_PORT)
    with psycopg.connect(f"host={host} port={port} {CLIENT_DSN}", autocommit=True) as conn:
        row = conn.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
    if row is None or row[0] is not False:
        return False
    # A peer address that is a name (a hosts file's) cannot be compared with the server's IP; HAProxy's
    # states above then say which node it is.
    address = run.address(node)
    return row[1] == address or not _is_ip(address)


class FailoverMethod(enum.StrEnum):
    SQL = "sql"  # pg_promote() through psql on the standby; the old primary re-clones when started (pg-node)
    PG_CTL = "pg_ctl"
    PATRONICTL = "patronictl"
    REPMGR = "repmgr"


class Promotion(Protocol):
    method: FailoverMethod

    def promote(self, run: Backend, standby: str, old_primary: str) -> None:
        """Make the standby the primary; raise FaultError when that failed."""
        ...

    def rejoin(self, run: Backend, old_primary: str, new_primary: str) -> None:
        """Make the (stopped) old primary follow the new one, and leave it started."""
        ...


@dataclasses.dataclass(frozen=True)
class SqlPromotion:
    """The Docker topologies': pg_promote(), and pg-node's own rejoin when the old primary starts."""

    method: FailoverMethod = FailoverMethod.SQL

    def promote(self, run: Backend, standby: str, old_primary: str) -> None:
        promoted = pg_sql(run, standby, "SELECT pg_promote(true, 30)")
        if promoted != "t":
            raise FaultError(f"{standby}: pg_promote() answered {promoted!r}")

    def rejoin(self, run: Backend, old_primary: str, new_primary: str) -> None:
        if run.state(old_primary) not in ("running", "paused"):
            run.start(old_primary)


@dataclasses.dataclass(frozen=True)
class DeclaredPromotion:
    """A hosts file's commands: `promote` on the standby's host, `rejoin` on the old primary's."""

    run: HostCommands
    declared: PostgresFailover
    timeout: float = 300.0

    @property
    def method(self) -> FailoverMethod:
        return FailoverMethod(self.declared.method)

    def promote_command(self, standby: str, old_primary: str) -> str:
        hosts = self.run.hosts
        fields = {**node_fields(hosts, standby), **node_fields(hosts, old_primary, "old_primary")}
        return hosts_commands.declared(fill(self.declared.promote, fields))

    def rejoin_command(self, old_primary: str, new_primary: str) -> str | None:
        if not self.declared.rejoin:
            return None
        hosts = self.run.hosts
        fields = {**node_fields(hosts, old_primary), **node_fields(hosts, new_primary, "new_primary")}
        return hosts_commands.declared(fill(self.declared.rejoin, fields))

    def promote(self, run: Backend, standby: str, old_primary: str) -> None:
        command = self.promote_command(standby, old_primary)
        try:
            self.run.run_for(standby, command, f"promoting it ({self.method})", timeout=self.timeout)
        except FaultsNotAllowed:
            raise
        except BackendError as exc:
            raise FaultError(str(exc)) from None

    def rejoin(self, run: Backend, old_primary: str, new_primary: str) -> None:
        command = self.rejoin_command(old_primary, new_primary)
        if command is not None:
            try:
                self.run.run_for(
                    old_primary, command, f"rejoining it to {new_primary} ({self.method})", timeout=self.timeout
                )
            except FaultsNotAllowed:
                raise
            except BackendError as exc:
                raise FaultError(str(exc)) from None
        if run.state(old_primary) not in ("running", "paused"):
            run.start(old_primary)


def promotion_for(run: Backend) -> SqlPromotion | DeclaredPromotion:
    """The declared commands on a hosts run whose postgres service has them; pg_promote() otherwise."""
    hosts = host_commands(run)
    if hosts is not None:
        service = service_of_role(hosts.hosts, "postgres")
        if service is not None and isinstance(service.failover, PostgresFailover):
            return DeclaredPromotion(hosts, service.failover)
    return SqlPromotion()


@dataclasses.dataclass(kw_only=True)
class PgFailoverFault(BaseFault):
    kind = "pg-failover"
    positional = ("method",)

    method: str = "kill"
    timeout: float = 30.0  # promotion until the stable address leads to the new primary
    standby_wait: float = 30.0  # how long to wait for a streaming standby before refusing
    rejoin_timeout: float = 180.0  # recovery: the old primary re-cloned and streaming
    primary: str = ""
    standby: str = ""

    def validate(self) -> None:
        if self.method not in METHODS:
            raise FaultSpecError(f"pg-failover: method must be one of {', '.join(METHODS)}, got {self.method!r}")

    def targets(self) -> list[str]:
        return [self.primary] if self.primary else []

    def footprint(self, topology: Topology) -> Counter[str]:
        return Counter({_postgres_service(topology): 1})

    def check_topology(self, topology: Topology) -> list[str]:
        services = [s for s in topology.services.values() if s.role.value == "postgres"]
        if not services or services[0].replicas < 2:
            return [f"pg-failover needs a postgres service with a standby (2 replicas) in topology {topology.name}"]
        return []

    def resolve(self, run: Backend) -> None:
        if self.primary and self.standby:
            return
        self.primary = current_primary(run)
        peers = [n for n in nodes_with_role(run, "postgres") if n != self.primary]

        def streaming_standby() -> str | None:
            return next((p for p in peers if streams_from(run, p, self.primary)), None)

        try:
            self.standby, _ = wait_for(
                f"a standby streaming from {self.primary}", streaming_standby, self.standby_wait, 0.5
            )
        except FaultError as exc:
            raise FaultError(f"refusing to fail over: {exc} (promoting it would lose data)") from None

    def _lb(self, run: Backend) -> str | None:
        nodes = run.nodes_of("lb")
        return nodes[0] if nodes and run.state(nodes[0]) == "running" else None

    def inject(self, run: Backend) -> Facts:
        started = time.monotonic()
        self.resolve(run)
        promotion = promotion_for(run)
        if self.method == "kill":
            run.kill(self.primary)
        else:
            cut_off(run, self.primary, self.id)
        # From here the old primary acknowledges nothing more: what async replication can lose was
        # acknowledged before this moment (the verdict's window for that loss closes here).
        took_hold = stopped_acknowledging_after(run, self.primary, started)
        promotion.promote(run, self.standby, self.primary)
        facts: Facts = {
            "old_primary": self.primary,
            "new_primary": self.standby,
            "promoted_by": promotion.method,
            "took_hold_after_s": round(took_hold, 3),
        }
        lb = self._lb(run)
        if lb is not None:
            _, seconds = wait_for(
                f"{lb} leading :{PG_PORT} to {self.standby}", lambda: lb_leads_to(run, lb, self.standby), self.timeout
            )
            facts["lb_follows_after_s"] = round(seconds, 3)
        return facts

    def recover(self, run: Backend) -> Facts:
        if not self.primary or not self.standby:
            return {"note": "never resolved: nothing was done"}
        promoted = pg_role(run, self.standby) == "primary"
        promotion = promotion_for(run)
        if promoted and run.state(self.primary) in ("running", "paused") and pg_role(run, self.primary) != "standby":
            # Still a primary behind the cut: it must die before anyone can reach it again.
            run.kill(self.primary)
        # A container's rules went with its namespace; a host's stay after its Postgres is down.
        remove_fault_rules(run, [self.primary], self.id)
        if promoted and run.state(self.primary) not in ("running", "paused"):
            promotion.rejoin(run, self.primary, self.standby)
        elif run.state(self.primary) not in ("running", "paused"):
            run.start(self.primary)
        if promoted:
            _, seconds = wait_for(
                f"{self.primary} streaming from {self.standby}",
                lambda: streams_from(run, self.primary, self.standby),
                self.rejoin_timeout,
                0.5,
            )
            return {"rejoined_as": "standby", "of": self.standby, "rejoin_after_s": round(seconds, 3)}
        _, seconds = wait_for(
            f"{self.primary} back as primary", lambda: pg_role(run, self.primary) == "primary", self.rejoin_timeout, 0.5
        )
        return {"rejoined_as": "primary", "rejoin_after_s": round(seconds, 3)}


def stopped_acknowledging_after(run: Backend, node: str, started: float) -> float:
    """Seconds from `started` (time.monotonic) until `node` stopped acknowledging commits: its death where
    the backend records it, else the return of the kill or cut. On Docker the kill's API call lasts ~0.15 s
    past the death, and MOs courier spooled after the death were acknowledged inside it: measured so,
    they are not mistaken for commits async replication lost."""
    returned = time.monotonic()
    died = run.exited_at(node)
    if died is None:
        return returned - started
    died_monotonic = returned - (time.time() - died)
    return min(max(died_monotonic, started), returned) - started


def _postgres_service(topology: Topology) -> str:
    return next((s.name for s in topology.services.values() if s.role.value == "postgres"), "postgres")
