"""A running RapidPro topology as experiments see it: seeded org and channel, clients, quiescence, snapshot.

The backend knows containers; this knows RapidPro: where the load balancer is, which channel the
workload talks to, when the system has drained, and how to read the final state the checkers judge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import redis

from resilience import images
from resilience.backends.base import Backend
from resilience.backends.docker import DockerBackend
from resilience.rapidpro.aggregator import AggregatorClient
from resilience.rapidpro.api import ApiClient
from resilience.rapidpro.courier import CourierClient, receive_blocking
from resilience.rapidpro.db import DbReader
from resilience.snapshot import Snapshot
from resilience.topology import Role, Topology

if TYPE_CHECKING:
    from resilience.target import Target

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
FIXTURE_FLOWS = ("registration.json", "quick_reply.json")
AGGREGATOR_SEND_URL = "http://aggregator:8070/send"

Log = Callable[[str], None]


class ClusterError(RuntimeError):
    """The cluster cannot do what was asked; the message says what and where to look."""


@dataclass(frozen=True)
class Seed:
    org_id: int
    org_uuid: str
    channel_uuid: str
    api_token: str
    flows: dict[str, str]  # flow name -> uuid


@dataclass(frozen=True)
class Quiescence:
    reached: bool
    seconds: float
    pending_in: int
    pending_out: int
    queued_tasks: int


@dataclass(frozen=True)
class Endpoints:
    """Where the harness reaches a deployment it did not create, as its target file says, instead of through
    the nodes of a topology it brought up."""

    lb_url: str
    aggregator_url: str
    db_dsn: str
    redis_url: str | None  # None: queue depth is not read; quiescence rests on the database's backlog alone


class Cluster:
    def __init__(self, run: Backend, seed: Seed, endpoints: Endpoints | None = None) -> None:
        self.run = run
        self.seed = seed
        self.endpoints = endpoints
        self.last_probe_urn: str | None = None

    @classmethod
    def for_target(cls, run: Backend | None, target: Target) -> Cluster:
        """The user's deployment as a cluster: endpoints and seed from the target, nothing seeded or created.

        `run` acts on the target's nodes (a hosts run from its hosts file); None for a target without one,
        which allows the workload and the checks but no fault. Reads the channel's org from the database
        and the uuids of flows given by name from the API; raises ClusterError when either cannot be had.
        """
        from resilience.target.deployment import DeploymentReader, org_flows, resolve_flows
        from resilience.target.no_hosts import NoHostsRun

        try:
            channel = DeploymentReader(target.database_dsn).channel(target.channel_uuid)
        except Exception as exc:
            raise ClusterError(f"target {target.name}: cannot read its channel from the database ({exc})") from None
        if channel is None:
            raise ClusterError(
                f"target {target.name}: no channel {target.channel_uuid} in the database; run `resilience target "
                f"check {target.name}`"
            )
        flows = dict(target.flows)
        if target.unresolved_flows:
            try:
                with httpx.Client(timeout=15.0) as http:
                    available = org_flows(http, target.lb_url, target.api_token)
            except Exception as exc:
                raise ClusterError(f"target {target.name}: cannot list the org's flows ({exc})") from None
            resolution = resolve_flows({n: "" for n in target.unresolved_flows}, available)
            if resolution.problems:
                name, problem = next(iter(resolution.problems.items()))
                raise ClusterError(f"target {target.name}: flow {name!r}: {problem}")
            flows.update(resolution.flows)
        seed = Seed(
            org_id=channel.org_id,
            org_uuid=channel.org_uuid,
            channel_uuid=target.channel_uuid,
            api_token=target.api_token,
            flows=flows,
        )
        endpoints = Endpoints(
            lb_url=target.lb_url,
            aggregator_url=target.aggregator_url,
            db_dsn=target.database_dsn,
            redis_url=target.redis_url,
        )
        return cls(run if run is not None else NoHostsRun(target), seed, endpoints)

    # -- where things are -----------------------------------------------------------------------------
    def _first(self, role: Role) -> str:
        nodes = self.run.nodes_of(role.value)
        if not nodes:
            raise ClusterError(f"the topology has no {role.value} node")
        return nodes[0]

    @property
    def lb_url(self) -> str:
        if self.endpoints is not None:
            return self.endpoints.lb_url
        return self.run.url(self._first(Role.LB), 80)

    @property
    def aggregator_url(self) -> str:
        if self.endpoints is not None:
            return self.endpoints.aggregator_url
        return self.run.url(self._first(Role.AGGREGATOR), 8070)

    @property
    def db_dsn(self) -> str:
        if self.endpoints is not None:
            return self.endpoints.db_dsn
        host, port = self.run.endpoint(self._first(Role.LB), 5432)
        return f"postgres://temba:temba@{host}:{port}/temba"

    def courier(self, timeout: float = 10.0) -> CourierClient:
        return CourierClient(self.lb_url, self.seed.channel_uuid, timeout=timeout)

    def api(self) -> ApiClient:
        return ApiClient(self.lb_url, self.seed.api_token)

    def aggregator(self) -> AggregatorClient:
        return AggregatorClient(self.aggregator_url)

    def db(self) -> DbReader:
        return DbReader(self.db_dsn)

    def redis(self) -> redis.Redis:
        if self.endpoints is not None:
            if self.endpoints.redis_url is None:
                raise ClusterError("the target names no redis URL; add `redis: redis://HOST:PORT/15` to its file")
            return redis.Redis.from_url(self.endpoints.redis_url, socket_timeout=5)
        host, port = self.run.endpoint(self._first(Role.LB), 6379)
        return redis.Redis(host=host, port=port, db=15, socket_timeout=5)

    # -- draining and reading the end state -------------------------------------------------------------
    def queued_tasks(self) -> int:
        """Tasks waiting in mailroom's handler/batch queues and courier's message queues (0 when a target
        names no Redis: then quiescence rests on the database's backlog holding still)."""
        if self.endpoints is not None and self.endpoints.redis_url is None:
            return 0
        client = self.redis()
        total = 0
        for pattern in ("handler:[0-9]*", "batch:[0-9]*", "msgs:*|*/*"):
            for key in client.scan_iter(match=pattern, count=500):
                if client.type(key) == b"zset":
                    total += int(client.zcard(key))
        return total

    def spooled_msgs(self) -> int:
        """Messages courier accepted into its local spool (DB down) and has not flushed yet: owed, not lost."""
        total = 0
        for node in self.run.nodes_of(Role.COURIER.value):
            spool = self.run.topology.services[self.run.topology.node(node).service].env.get(
                "COURIER_SPOOL_DIR", "/var/spool/courier"
            )
            rc, out = self.run.exec(node, ["sh", "-c", f"ls {spool}/msgs 2>/dev/null | wc -l"])
            if rc == 0 and out.strip().isdigit():
                total += int(out.strip())
        return total

    def quiesce(self, urns: Iterable[str], timeout: float = 60.0, settle: float = 3.0) -> Quiescence:
        """Wait (bounded) until RapidPro has nothing left to do for these contacts: its queues and courier's
        spools are empty and the backlog of pending MOs / queued replies has stopped changing for `settle` seconds.

        A backlog that stays while every queue is empty is what RapidPro left behind (e.g. an MO whose
        handler task was lost stays P): quiescent, and the checkers judge it. Only a system still
        working when the bound expires is not quiescent.
        """
        urns = list(urns)
        reader = self.db()
        started = time.monotonic()
        stable_since: float | None = None
        last: tuple[int, int] | None = None
        pending_in = pending_out = queued = -1
        while True:
            try:
                backlog = reader.backlog(urns)
                pending_in, pending_out = backlog.pending_in, backlog.pending_out
                queued = self.queued_tasks() + self.spooled_msgs()
                idle = queued == 0 and (pending_in, pending_out) == last
                last = (pending_in, pending_out)
            except Exception:  # the database or Redis may still be recovering: keep waiting, bounded
                idle, last = False, None
            now = time.monotonic()
            if idle:
                stable_since = stable_since or now
                # A drained backlog settles quickly; a stuck one must hold still a while longer to be sure.
                needed = settle if pending_in == pending_out == 0 else settle * 3
                if now - stable_since >= needed:
                    return Quiescence(True, now - started, pending_in, pending_out, queued)
            else:
                stable_since = None
            if now - started >= timeout:
                return Quiescence(False, now - started, pending_in, pending_out, queued)
            time.sleep(0.5)

    def snapshot(
        self, urns: Iterable[str], quiescence: Quiescence | bool, with_logs: bool = True, since: float | None = None
    ) -> Snapshot:
        """The end state. Contacts with a backlog are named (`unsettled`) when the system was not quiescent
        but every queue and spool was empty, so that the others are still judged; with work in a queue or a
        spool that no contact can be told from, every contact counts as unsettled (`unsettled` None)."""
        urns = list(urns)
        reader = self.db()
        quiescent = quiescence if isinstance(quiescence, bool) else quiescence.reached
        unsettled: list[str] | None = [] if quiescent else None
        if isinstance(quiescence, Quiescence) and not quiescent and quiescence.queued_tasks == 0:
            try:
                unsettled = reader.unsettled(urns)
            except Exception:  # the database may be unreachable: then no contact can be told settled
                unsettled = None
        aggregator = self.aggregator()
        try:
            wanted = set(urns)
            # The aggregator also saw probes and earlier experiments: keep this workload's contacts only.
            deliveries = [d for d in aggregator.all_records() if d.recipient in wanted]
        finally:
            aggregator.close()
        logs = (
            # Timestamped, so that the logs checker can place each line in time against the faults.
            {node: self.run.logs(node, since=since, timestamps=True).splitlines() for node in self.run.node_names()}
            if with_logs
            else None
        )
        return Snapshot(
            msgs=reader.msgs(urns),
            runs=reader.runs(urns),
            sessions=reader.sessions(urns),
            aggregator=deliveries,
            quiescent=quiescent,
            logs=logs,
            unsettled=unsettled,
        )

    def round_trip(self, timeout: float = 20.0) -> float:
        """One MO through the load balancer until its reply reaches the aggregator; returns seconds."""
        import secrets

        urn_path = f"+2507{secrets.randbelow(10**8):08d}"
        self.last_probe_urn = f"tel:{urn_path}"
        text = f"info zq{secrets.token_hex(4)}"
        aggregator = self.aggregator()
        try:
            after = aggregator.last_seq()
            started = time.monotonic()
            received = receive_blocking(self.lb_url, self.seed.channel_uuid, urn_path, text)
            if not received.accepted:
                raise ClusterError(f"courier did not accept the probe MO: {received.status} {received.body}")
            while time.monotonic() - started < timeout:
                if any(d.recipient == f"tel:{urn_path}" for d in aggregator.records(after)):
                    return time.monotonic() - started
                time.sleep(0.05)
            raise ClusterError(f"no reply reached the aggregator within {timeout:.0f} s")
        finally:
            aggregator.close()

    def wait_delivered(self, timeout: float = 20.0) -> bool:
        """Whether the last probe's reply reached status D (the aggregator's delivered callback) in time."""
        if self.last_probe_urn is None:
            return False
        reader = self.db()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(m.direction == "O" and m.status == "D" for m in reader.msgs([self.last_probe_urn])):
                return True
            time.sleep(0.2)
        return False


def seed_cluster(run: Backend, extra_flows: Iterable[Path] = ()) -> Seed:
    """Seed the org, EX channel (sending to the aggregator) and flows through web-1's management command.

    Idempotent: seeding a seeded cluster returns the same org, channel and token.
    """
    web = run.nodes_of(Role.WEB.value)
    if not web:
        raise ClusterError("the topology has no web node to seed through")
    flows = [f"/opt/fixtures/flows/{name}" for name in FIXTURE_FLOWS]
    for path in extra_flows:
        target = f"/tmp/extra-flows/{path.name}"
        run.put_file(web[0], target, path.read_bytes())
        flows.append(target)
    rc, out = run.exec(
        web[0], ["python", "manage.py", "seed_org", "--flows", *flows, "--send-url", AGGREGATOR_SEND_URL]
    )
    if rc != 0:
        raise ClusterError(f"seeding through {web[0]} failed (exit {rc}): {out.strip()[-600:]}")
    line = next((ln for ln in reversed(out.strip().splitlines()) if ln.startswith("{")), "")
    try:
        data = json.loads(line)
        return Seed(
            org_id=int(data["org_id"]),
            org_uuid=str(data["org_uuid"]),
            channel_uuid=str(data["channel_uuid"]),
            api_token=str(data["api_token"]),
            flows={str(k): str(v) for k, v in data["flows"].items()},
        )
    except (ValueError, KeyError, TypeError):
        raise ClusterError(f"seed_org printed no seed JSON: {out.strip()[-400:]}") from None


def start_cluster(
    topology: Topology,
    keep: bool = False,
    build: bool = True,
    log: Log = print,
    params: dict[str, object] | None = None,
) -> Cluster:
    if build:
        images.build_all(log=log)
    # Bringing a run up (and attaching to one) is a backend's lifecycle, not the protocol's: Docker's only.
    backend = DockerBackend()
    run = backend.up(topology, keep=keep, log=log, params=params)
    try:
        seed = seed_cluster(run)
    except BaseException:
        if not keep:
            backend.down(run.run_id, log=log)
        raise
    return Cluster(run, seed)


def attach_cluster(run_id: str | None = None) -> Cluster:
    run = DockerBackend().attach(run_id)
    return Cluster(run, seed_cluster(run))
