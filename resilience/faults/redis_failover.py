"""redis-failover: kill the Redis master; Sentinel promotes the replica; HAProxy's :6379 follows.

Inject: wait until every running Sentinel knows a healthy replica (Sentinel learns replicas from INFO
only every 10 s: killing the master before that leaves nothing to promote); kill the master; wait
until a majority of Sentinels name another master and HAProxy's :6379 (which checks `role:master`)
leads to it.

Recover: start the old master; Sentinel turns it into a replica of the new one (~10 s), and recovery
lasts until every Sentinel knows it as a healthy replica (so that the next loss can fail over). It boots as
an empty master from its original config, and HAProxy's role check would route clients to it until
Sentinel demotes it, so with `guard` (the default) its HAProxy server is held in maint until it is
a replica with its link up. Done when it is.

Which master name the Sentinels watch and which service's nodes are the Sentinels: the fault's
`master_name` when given, else what a hosts file declares for the redis service (`failover: {master,
sentinels}`), else `rapidpro` and the nodes of role sentinel (the Docker topologies). Which node a client
through HAProxy lands on is told by the Redis server's run_id, so no announce setting is needed.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

import redis

from resilience.backends.hosts_data import host_commands, node_fields, service_of_role
from resilience.faults.base import BaseFault, Facts, FaultError, wait_for
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.topology.hosts import SentinelFailover

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology

SENTINEL_PORT = 26379
REDIS_PORT = 6379
LB_BACKEND = "redis"
DEFAULT_MASTER = "rapidpro"
SENTINEL_ROLE = "sentinel"


@dataclasses.dataclass(frozen=True)
class SentinelSetup:
    """The master name the Sentinels watch and the service (or role) whose nodes are the Sentinels."""

    master_name: str = DEFAULT_MASTER
    sentinels: str = SENTINEL_ROLE


def sentinel_setup(run: Backend, master_name: str = "") -> SentinelSetup:
    """A hosts file's declaration for its redis service, with `master_name` (when given) winning."""
    hosts = host_commands(run)
    declared = SentinelSetup()
    if hosts is not None:
        service = service_of_role(hosts.hosts, "redis")
        if service is not None and isinstance(service.failover, SentinelFailover):
            declared = SentinelSetup(service.failover.master, service.failover.sentinels)
    return dataclasses.replace(declared, master_name=master_name or declared.master_name)


def _client(run: Backend, node: str, port: int) -> redis.Redis:
    host, host_port = run.endpoint(node, port)
    return redis.Redis(host=host, port=host_port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


def _node_named(run: Backend, host: str) -> str:
    """Sentinel announces hostnames here (announce-hostnames); fall back to matching addresses (on a hosts
    run also the node's host name and the address its peers dial)."""
    nodes = run.nodes_of("redis")
    if host in nodes:
        return host
    hosts = host_commands(run)
    for node in nodes:
        if hosts is not None and host in node_fields(hosts.hosts, node).values():
            return node
        if run.state(node) == "running" and run.address(node) == host:
            return node
    raise FaultError(f"Sentinel names {host!r} as a Redis node, which is none of {', '.join(nodes)}")


def sentinel_nodes(run: Backend, sentinels: str = SENTINEL_ROLE) -> list[str]:
    nodes = run.nodes_of(sentinels)
    if not nodes:
        raise FaultError(f"run {run.run_id} has no Sentinels: no node of service or role {sentinels!r}")
    return nodes


def running_sentinels(run: Backend, sentinels: str = SENTINEL_ROLE) -> list[str]:
    running = [n for n in sentinel_nodes(run, sentinels) if run.state(n) == "running"]
    if not running:
        raise FaultError("no Sentinel is running")
    return running


def sentinel_masters(run: Backend, master_name: str, sentinels: str = SENTINEL_ROLE) -> dict[str, str]:
    """Which node each answering Sentinel calls master."""
    answers = {}
    for sentinel in running_sentinels(run, sentinels):
        try:
            # Raw commands: redis-py 6.4's parser of the SENTINEL replies rejects its own arguments.
            answer = _client(run, sentinel, SENTINEL_PORT).execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name
            )
        except redis.RedisError:
            continue
        if answer:
            answers[sentinel] = _node_named(run, str(answer[0]))
    return answers


def agreed_master(run: Backend, master_name: str, sentinels: str = SENTINEL_ROLE) -> str | None:
    """The master a majority of all Sentinels name, or None while they disagree or cannot tell."""
    answers = list(sentinel_masters(run, master_name, sentinels).values())
    majority = len(sentinel_nodes(run, sentinels)) // 2 + 1
    for candidate in set(answers):
        if answers.count(candidate) >= majority:
            return candidate
    return None


def replication(run: Backend, node: str) -> dict[str, Any]:
    info: dict[str, Any] = _client(run, node, REDIS_PORT).info("replication")  # type: ignore[assignment]
    return info


def known_healthy_replicas(run: Backend, master_name: str, sentinels: str = SENTINEL_ROLE) -> bool:
    """Every running Sentinel knows at least one replica that is up and linked to the master."""
    for sentinel in running_sentinels(run, sentinels):
        answer = _client(run, sentinel, SENTINEL_PORT).execute_command("SENTINEL", "REPLICAS", master_name)
        replicas = [dict(zip(fields[::2], fields[1::2], strict=False)) for fields in answer]
        healthy = [
            r
            for r in replicas
            if not {"s_down", "o_down", "disconnected"} & set(r.get("flags", "").split(","))
            and r.get("master-link-status") == "ok"
        ]
        if not healthy:
            return False
    return True


def lb_leads_to(run: Backend, lb: str, node: str) -> bool:
    states = {s.server: s.up for s in HaproxyRuntime(run, lb).servers_of(LB_BACKEND)}
    if not states.get(node) or any(up for server, up in states.items() if server != node):
        return False
    through: dict[str, Any] = _client(run, lb, REDIS_PORT).info()  # type: ignore[assignment]
    direct: dict[str, Any] = _client(run, node, REDIS_PORT).info("server")  # type: ignore[assignment]
    return through.get("run_id") == direct.get("run_id") and through.get("role") == "master"


@dataclasses.dataclass(kw_only=True)
class RedisFailoverFault(BaseFault):
    kind = "redis-failover"

    master_name: str = ""  # Sentinel's name for the monitored master; "": the hosts file's, else rapidpro
    sentinels: str = ""  # the service (or role) of the Sentinels; "": the hosts file's, else role sentinel
    guard: bool = True  # keep the returning old master out of HAProxy until it is a replica
    timeout: float = 30.0  # kill until Sentinel and HAProxy follow
    rejoin_timeout: float = 60.0
    master: str = ""

    def targets(self) -> list[str]:
        return [self.master] if self.master else []

    def footprint(self, topology: Topology) -> Counter[str]:
        service = next((s.name for s in topology.services.values() if s.role.value == "redis"), "redis")
        return Counter({service: 1})

    def check_topology(self, topology: Topology) -> list[str]:
        roles = {s.role.value: s for s in topology.services.values()}
        if "redis" not in roles or roles["redis"].replicas < 2 or "sentinel" not in roles:
            return [f"redis-failover needs a Redis replica and Sentinels in topology {topology.name}"]
        return []

    def _setup(self, run: Backend) -> None:
        if not self.master_name or not self.sentinels:
            setup = sentinel_setup(run, self.master_name)
            self.master_name = setup.master_name
            self.sentinels = self.sentinels or setup.sentinels

    def resolve(self, run: Backend) -> None:
        self._setup(run)
        if self.master:
            return
        self.master, _ = wait_for(
            "Sentinels agreeing on a Redis master", lambda: agreed_master(run, self.master_name, self.sentinels), 10
        )
        try:
            wait_for(
                f"every Sentinel knowing a healthy replica of {self.master}",
                lambda: known_healthy_replicas(run, self.master_name, self.sentinels),
                25,
                0.5,
            )
        except FaultError as exc:
            raise FaultError(f"refusing to fail over: {exc}") from None

    def _lb(self, run: Backend) -> str | None:
        nodes = run.nodes_of("lb")
        return nodes[0] if nodes and run.state(nodes[0]) == "running" else None

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        run.kill(self.master)

        def promoted() -> str | None:
            master = agreed_master(run, self.master_name, self.sentinels)
            if master is None or master == self.master:
                return None
            return master if replication(run, master).get("role") == "master" else None

        new_master, seconds = wait_for(f"Sentinel promoting a replica of {self.master}", promoted, self.timeout)
        facts: Facts = {"old_master": self.master, "new_master": new_master, "sentinel_after_s": round(seconds, 3)}
        lb = self._lb(run)
        if lb is not None:
            _, seconds = wait_for(
                f"{lb} leading :{REDIS_PORT} to {new_master}", lambda: lb_leads_to(run, lb, new_master), self.timeout
            )
            facts["lb_follows_after_s"] = round(seconds, 3)
        return facts

    def recover(self, run: Backend) -> Facts:
        if not self.master:
            return {"note": "never resolved: nothing was done"}
        self._setup(run)
        lb = self._lb(run) if self.guard else None
        guarded = False
        if run.state(self.master) not in ("running", "paused"):
            if lb is not None:
                HaproxyRuntime(run, lb).set_state(LB_BACKEND, self.master, "maint")
                guarded = True
            run.start(self.master)
        current, _ = wait_for(
            "Sentinels agreeing on a Redis master", lambda: agreed_master(run, self.master_name, self.sentinels), 30
        )
        facts: Facts = {"master": current}
        if current != self.master:

            def demoted() -> bool:
                info = replication(run, self.master)
                return (
                    info.get("role") == "slave"
                    and info.get("master_host") == current
                    and info.get("master_link_status") == "up"
                )

            _, seconds = wait_for(f"{self.master} a replica of {current}", demoted, self.rejoin_timeout, 0.25)
            facts.update(rejoined_as="replica", rejoin_after_s=round(seconds, 3))
            # Healed means able to survive the next loss: Sentinel must know the replica's link is up
            # (it refreshes INFO every 10 s), or it has nothing it will promote.
            _, seconds = wait_for(
                f"Sentinels knowing {self.master} as a healthy replica",
                lambda: known_healthy_replicas(run, self.master_name, self.sentinels),
                self.rejoin_timeout,
                0.5,
            )
            facts["sentinels_know_replica_after_s"] = round(seconds, 3)
        else:
            facts["rejoined_as"] = "master"
        if lb is not None:
            api = HaproxyRuntime(run, lb)
            if guarded or any(s.in_maint for s in api.servers_of(LB_BACKEND) if s.server == self.master):
                # As a replica it fails HAProxy's role:master check: it must not count as UP meanwhile.
                api.make_ready(LB_BACKEND, self.master, assume_down=current != self.master)
        return facts
