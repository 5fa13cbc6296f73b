"""pg-failover: lose the PostgreSQL primary and promote its hot standby; the stable address follows.

Inject: refuse unless a standby is streaming from the primary (else the promotion loses data of the
fault's making); kill the primary (`method=kill`) or cut it off (`method=partition`: every packet but
loopback dropped, so it still runs and still believes it is primary); `SELECT pg_promote()` on the
standby; wait until HAProxy's :5432 (which asks each node's health agent "/primary") leads to it.

Recover: the old primary rejoins as the new primary's standby. A partitioned old primary is killed
first (it must never be reachable as a second primary), then started: pg-node sees another primary
among its peers and re-clones from it. Done when it streams. Should the inject have stopped before
the promotion, the old primary is simply brought back as the primary it still is.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

import psycopg

from resilience.faults.base import (
    BaseFault,
    Facts,
    FaultError,
    FaultSpecError,
    nodes_with_role,
    wait_for,
)
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.netfilter import add_rule, has_namespace, remove_fault_rules

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun
    from resilience.topology import Topology

METHODS = ("kill", "partition")
LB_BACKEND = "postgres"  # the HAProxy listen section in front of the primary
PG_PORT = 5432
CLIENT_DSN = "dbname=temba user=temba password=temba connect_timeout=2"


def pg_sql(run: DockerRun, node: str, sql: str) -> str:
    """Run SQL on a node as the postgres superuser over its local socket (works whatever the network)."""
    cmd = ["psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", "postgres", "-XtAc", sql]
    return run.exec_ok(node, cmd, user="postgres").strip()


def pg_role(run: DockerRun, node: str) -> str | None:
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


def current_primary(run: DockerRun) -> str:
    primaries = [node for node in nodes_with_role(run, "postgres") if pg_role(run, node) == "primary"]
    if len(primaries) != 1:
        raise FaultError(f"expected exactly one PostgreSQL primary, found {primaries or 'none'}")
    return primaries[0]


def streams_from(run: DockerRun, standby: str, primary: str) -> bool:
    if pg_role(run, standby) != "standby":
        return False
    out = pg_sql(run, standby, "SELECT status || '|' || coalesce(sender_host, '') FROM pg_stat_wal_receiver")
    return out == f"streaming|{primary}"


def lb_leads_to(run: DockerRun, lb: str, node: str) -> bool:
    """HAProxy's postgres backend has `node` UP and nothing else UP, and a client through it lands there."""
    states = {s.server: s.up for s in HaproxyRuntime(run, lb).servers_of(LB_BACKEND)}
    if not states.get(node) or any(up for server, up in states.items() if server != node):
        return False
    host, port = run.endpoint(lb, PG_PORT)
    with psycopg.connect(f"host={host} port={port} {CLIENT_DSN}", autocommit=True) as conn:
        row = conn.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
    return row is not None and row[0] is False and row[1] == run.address(node)


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

    def resolve(self, run: DockerRun) -> None:
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

    def _lb(self, run: DockerRun) -> str | None:
        nodes = run.nodes_of("lb")
        return nodes[0] if nodes and run.state(nodes[0]) == "running" else None

    def inject(self, run: DockerRun) -> Facts:
        self.resolve(run)
        if self.method == "kill":
            run.kill(self.primary)
        else:
            add_rule(run, self.primary, "INPUT", ["!", "-i", "lo"], self.id)
            add_rule(run, self.primary, "OUTPUT", ["!", "-o", "lo"], self.id)
        promoted = pg_sql(run, self.standby, "SELECT pg_promote(true, 30)")
        if promoted != "t":
            raise FaultError(f"{self.standby}: pg_promote() answered {promoted!r}")
        facts: Facts = {"old_primary": self.primary, "new_primary": self.standby}
        lb = self._lb(run)
        if lb is not None:
            _, seconds = wait_for(
                f"{lb} leading :{PG_PORT} to {self.standby}", lambda: lb_leads_to(run, lb, self.standby), self.timeout
            )
            facts["lb_follows_after_s"] = round(seconds, 3)
        return facts

    def recover(self, run: DockerRun) -> Facts:
        if not self.primary or not self.standby:
            return {"note": "never resolved: nothing was done"}
        promoted = pg_role(run, self.standby) == "primary"
        if has_namespace(run, self.primary):
            if promoted and pg_role(run, self.primary) != "standby":
                # Still a primary behind the cut: it must die before anyone can reach it again.
                run.kill(self.primary)
            else:
                remove_fault_rules(run, [self.primary], self.id)
        if run.state(self.primary) not in ("running", "paused"):
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


def _postgres_service(topology: Topology) -> str:
    return next((s.name for s in topology.services.values() if s.role.value == "postgres"), "postgres")
