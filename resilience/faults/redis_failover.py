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
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

import redis

from resilience.faults.base import BaseFault, Facts, FaultError, nodes_with_role, wait_for
from resilience.faults.haproxy_api import HaproxyRuntime

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun
    from resilience.topology import Topology

SENTINEL_PORT = 26379
REDIS_PORT = 6379
LB_BACKEND = "redis"


def _client(run: DockerRun, node: str, port: int) -> redis.Redis:
    host, host_port = run.endpoint(node, port)
    return redis.Redis(host=host, port=host_port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


def _node_named(run: DockerRun, host: str) -> str:
    """Sentinel announces hostnames here (announce-hostnames); fall back to matching addresses."""
    nodes = run.nodes_of("redis")
    if host in nodes:
        return host
    for node in nodes:
        if run.state(node) == "running" and run.address(node) == host:
            return node
    raise FaultError(f"Sentinel names {host!r} as a Redis node, which is none of {', '.join(nodes)}")


def running_sentinels(run: DockerRun) -> list[str]:
    sentinels = [n for n in nodes_with_role(run, "sentinel") if run.state(n) == "running"]
    if not sentinels:
        raise FaultError("no Sentinel is running")
    return sentinels


def sentinel_masters(run: DockerRun, master_name: str) -> dict[str, str]:
    """Which node each answering Sentinel calls master."""
    answers = {}
    for sentinel in running_sentinels(run):
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


def agreed_master(run: DockerRun, master_name: str) -> str | None:
    """The master a majority of all Sentinels name, or None while they disagree or cannot tell."""
    answers = list(sentinel_masters(run, master_name).values())
    majority = len(run.nodes_of("sentinel")) // 2 + 1
    for candidate in set(answers):
        if answers.count(candidate) >= majority:
            return candidate
    return None


def replication(run: DockerRun, node: str) -> dict[str, Any]:
    info: dict[str, Any] = _client(run, node, REDIS_PORT).info("replication")  # type: ignore[assignment]
    return info


def known_healthy_replicas(run: DockerRun, master_name: str) -> bool:
    """Every running Sentinel knows at least one replica that is up and linked to the master."""
    for sentinel in running_sentinels(run):
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


def lb_leads_to(run: DockerRun, lb: str, node: str) -> bool:
    states = {s.server: s.up for s in HaproxyRuntime(run, lb).servers_of(LB_BACKEND)}
    if not states.get(node) or any(up for server, up in states.items() if server != node):
        return False
    through = _client(run, lb, REDIS_PORT)
    config: dict[str, str] = through.config_get("replica-announce-ip")  # type: ignore[assignment]
    info: dict[str, Any] = through.info("replication")  # type: ignore[assignment]
    return config.get("replica-announce-ip") == node and info.get("role") == "master"


@dataclasses.dataclass(kw_only=True)
class RedisFailoverFault(BaseFault):
    kind = "redis-failover"

    master_name: str = "rapidpro"  # Sentinel's name for the monitored master
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

    def resolve(self, run: DockerRun) -> None:
        if self.master:
            return
        self.master, _ = wait_for(
            "Sentinels agreeing on a Redis master", lambda: agreed_master(run, self.master_name), 10
        )
        try:
            wait_for(
                f"every Sentinel knowing a healthy replica of {self.master}",
                lambda: known_healthy_replicas(run, self.master_name),
                25,
                0.5,
            )
        except FaultError as exc:
            raise FaultError(f"refusing to fail over: {exc}") from None

    def _lb(self, run: DockerRun) -> str | None:
        nodes = run.nodes_of("lb")
        return nodes[0] if nodes and run.state(nodes[0]) == "running" else None

    def inject(self, run: DockerRun) -> Facts:
        self.resolve(run)
        run.kill(self.master)

        def promoted() -> str | None:
            master = agreed_master(run, self.master_name)
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

    def recover(self, run: DockerRun) -> Facts:
        if not self.master:
            return {"note": "never resolved: nothing was done"}
        lb = self._lb(run) if self.guard else None
        guarded = False
        if run.state(self.master) not in ("running", "paused"):
            if lb is not None:
                HaproxyRuntime(run, lb).set_state(LB_BACKEND, self.master, "maint")
                guarded = True
            run.start(self.master)
        current, _ = wait_for("Sentinels agreeing on a Redis master", lambda: agreed_master(run, self.master_name), 30)
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
                lambda: known_healthy_replicas(run, self.master_name),
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
