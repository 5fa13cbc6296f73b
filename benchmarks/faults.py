"""Benchmark: how fast each fault takes effect and how fast its recovery removes it, on real Docker.

    .venv/bin/python benchmarks/faults.py [--repeat N] [--kinds kill,partition,...] [--run RUN_ID]

For each fault, a watcher polls the fault's effect from outside (from the host through published ports,
or from a peer node for network faults) while the nemesis injects and then recovers it. Reported, in
seconds, median and max over the repetitions:
  effect    the nemesis is called (the moment a schedule plays the step) -> the effect is first observed
  inject    how long the nemesis' inject call took (it may wait for the effect itself, e.g. a failover)
  recover   how long the recover call took (it may wait for the node to be healthy again)
  gone      the recover call starts -> the effect is no longer observed
Without --run it brings up the infra tier of standin-ha and removes it afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import redis

from resilience.backends.docker import DockerBackend, DockerRun
from resilience.faults import Nemesis, Registry
from resilience.faults.base import BaseFault, FaultError, new_fault_id, wait_for
from resilience.faults.pg_failover import current_primary
from resilience.faults.redis_failover import agreed_master
from resilience.faults.schedule import parse_schedule
from resilience.history import History
from resilience.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.005
Check = Callable[[], bool]  # True while the effect is observed


class Watcher:
    """Polls `effect` in a thread; keeps the monotonic times at which it turned on and off."""

    def __init__(self, effect: Check) -> None:
        self.effect = effect
        self.changes: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        last = None
        while not self._stop.is_set():
            try:
                now_on = self.effect()
            except Exception:  # a probe that cannot even ask counts as "the effect is there"
                now_on = True
            if now_on != last:
                self.changes.append((time.monotonic(), now_on))
                last = now_on
            time.sleep(POLL_S)

    def first(self, on: bool, after: float) -> float | None:
        """When the effect was first `on` (True) or off (False) at or after `after`; a state already
        holding at `after` counts from `after`."""
        before = [state for t, state in self.changes if t < after]
        if before and before[-1] is on:
            return after
        return next((t for t, state in self.changes if state is on and t >= after), None)

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


class PeerWatcher(Watcher):
    """Polls from inside a peer node (a TCP connect to target:port every 10 ms), for network faults the
    host cannot see. The node reports wall-clock times as they happen; they share the host's kernel clock."""

    LOOP = """
import os, socket, sys, time
host, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
last = None
while not os.path.exists(stop):
    try:
        socket.create_connection((host, port), timeout=0.05).close(); on = False
    except OSError:
        on = True
    if on != last:
        print(f"{time.time():.6f} {int(on)}", flush=True); last = on
    time.sleep(0.01)
"""

    def __init__(self, run: DockerRun, source: str, target: str, port: int) -> None:
        super().__init__(lambda: False)
        self.run, self.source, self.target, self.port = run, source, target, port
        self.stop_file = f"/tmp/bench-watch-{id(self)}"
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        # By name: a node cut by `docker network disconnect` may come back with another address.
        command = ["python3", "-u", "-c", self.LOOP, self.target, str(self.port), self.stop_file]
        offset = time.time() - time.monotonic()
        result = self.run.container(self.source).exec_run(command, stream=True)
        pending = ""
        for chunk in result.output:
            pending += chunk.decode()
            *lines, pending = pending.split("\n")
            for line in lines:
                wall, on = line.split()
                self.changes.append((float(wall) - offset, on == "1"))
                self._started.set()

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        self._thread.start()
        self._started.wait(10)  # the first line: the loop runs and the target answers
        try:
            yield self
        finally:
            self.run.exec_ok(self.source, ["touch", self.stop_file])
            self._thread.join()
            self.run.exec(self.source, ["rm", "-f", self.stop_file])


class Endpoint:
    """A node's published port, looked up again after a failure: Docker publishes a stopped-then-started
    node on a new random host port."""

    def __init__(self, run: DockerRun, node: str, port: int) -> None:
        self.run, self.node, self.port = run, node, port
        self.address = run.endpoint(node, port)

    def refresh(self) -> None:
        found = self.run.published(self.node, self.port)
        if found is not None:
            self.address = found


def redis_ping_fails(run: DockerRun, node: str, port: int, timeout: float = 0.2) -> Check:
    endpoint = Endpoint(run, node, port)

    def check() -> bool:
        host, host_port = endpoint.address
        client = redis.Redis(host=host, port=host_port, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            if client.ping():
                return False
        except redis.RedisError:
            pass
        finally:
            client.close()
        endpoint.refresh()
        return True

    return check


def slow_ping(run: DockerRun, node: str, port: int, seconds: float) -> Check:
    """One open connection (toxics reach open connections): a PING is one round trip, where a new
    connection would add redis-py's own handshake commands, each delayed too."""
    host, host_port = run.endpoint(node, port)
    client = redis.Redis(host=host, port=host_port, socket_timeout=2)

    def check() -> bool:
        started = time.monotonic()
        client.ping()
        return time.monotonic() - started >= seconds

    return check


def http_fails(run: DockerRun, node: str, port: int, path: str) -> Check:
    endpoint = Endpoint(run, node, port)

    def check() -> bool:
        host, host_port = endpoint.address
        try:
            if httpx.get(f"http://{host}:{host_port}{path}", timeout=0.2).status_code == 200:
                return False
        except httpx.HTTPError:
            pass
        endpoint.refresh()
        return True

    return check


def pg_primary_moved(run: DockerRun) -> Check:
    """Through lb-1:5432, a writable server other than the one that was primary when this was made."""
    before = run.address(current_primary(run))
    host, port = run.endpoint("lb-1", 5432)

    def check() -> bool:
        dsn = f"host={host} port={port} dbname=temba user=temba password=temba connect_timeout=1"
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), host(inet_server_addr())").fetchone()
        return row is not None and row[0] is False and row[1] != before

    return check


def redis_master_moved(run: DockerRun) -> Check:
    before = agreed_master(run, "rapidpro")
    host, port = run.endpoint("lb-1", 6379)

    def check() -> bool:
        client = redis.Redis(host=host, port=port, socket_timeout=0.5, decode_responses=True)
        try:
            announced = client.config_get("replica-announce-ip").get("replica-announce-ip")  # type: ignore[union-attr]
            return bool(announced != before and client.info("replication")["role"] == "master")  # type: ignore[index]
        finally:
            client.close()

    return check


@dataclass(frozen=True)
class Case:
    label: str
    fault: str  # the schedule's text form of the fault
    watcher: Callable[[DockerRun], Watcher]
    hold: float = 1.0  # seconds the fault stays after its effect is seen
    gone: bool = True  # whether recovery removes the observed effect (a failover's new primary stays)


def sentinel_down(node: str) -> Callable[[DockerRun], Watcher]:
    return lambda run: Watcher(redis_ping_fails(run, node, 26379))


def peer_cut(source: str, target: str, port: int) -> Callable[[DockerRun], Watcher]:
    return lambda run: PeerWatcher(run, source, target, port)


CASES = [
    Case("kill", "kill sentinel-3", sentinel_down("sentinel-3")),
    Case("stop", "stop sentinel-3 timeout=5", sentinel_down("sentinel-3")),
    Case("restart", "restart sentinel-3 timeout=5", sentinel_down("sentinel-3")),
    Case("pause", "pause sentinel-3", sentinel_down("sentinel-3")),
    Case("partition", "partition sentinel-1 | sentinel-2", peer_cut("sentinel-1", "sentinel-2", 26379)),
    Case("isolate", "isolate s3-1", peer_cut("sentinel-1", "s3-1", 9000)),
    Case("isolate (disconnect)", "isolate s3-1 method=disconnect", peer_cut("sentinel-1", "s3-1", 9000)),
    Case("loss 0.5", "loss s3-1 0.5", peer_cut("sentinel-1", "s3-1", 9000)),
    Case(
        "toxic latency 200ms",
        "toxic redis latency latency=200",
        lambda r: Watcher(slow_ping(r, "toxiproxy-1", 16379, 0.15)),
    ),
    Case(
        "toxic reset_peer",
        "toxic redis reset_peer timeout=0",
        lambda r: Watcher(redis_ping_fails(r, "toxiproxy-1", 16379)),
    ),
    Case("search-loss", "search-loss kill", lambda r: Watcher(http_fails(r, "search-1", 9200, "/_cluster/health"))),
    Case("lb-cut (redis tier)", "lb-cut redis", lambda r: Watcher(redis_ping_fails(r, "lb-1", 6379))),
    Case("rolling-restart (3 sentinels)", "rolling-restart sentinel timeout=5", sentinel_down("sentinel-1")),
    Case("pg-failover (kill)", "pg-failover kill", lambda r: Watcher(pg_primary_moved(r)), gone=False),
    Case("pg-failover (partition)", "pg-failover partition", lambda r: Watcher(pg_primary_moved(r)), gone=False),
    Case("redis-failover", "redis-failover", lambda r: Watcher(redis_master_moved(r)), gone=False),
]


@dataclass
class Sample:
    effect: float | None
    inject: float
    recover: float
    gone: float | None
    facts: dict[str, float]  # the fault's own timings (e.g. lb_follows_after_s)


def measure(run: DockerRun, nemesis: Nemesis, case: Case) -> Sample:
    fault: BaseFault = parse_schedule(f"at 0 {case.fault}", run.topology).faults()[0]
    fault.id = new_fault_id(fault.kind)  # one id per fault window in the history
    watcher = case.watcher(run)
    with watcher.running():
        time.sleep(0.3)
        started = time.monotonic()
        facts = nemesis.inject(fault)
        injected = time.monotonic()
        with suppress(FaultError):  # reported as "not observed"
            wait_for(f"{case.label} observed", lambda: watcher.first(True, started) is not None, 30, POLL_S)
        time.sleep(case.hold)
        recovering = time.monotonic()
        facts.update(nemesis.recover(fault))
        recovered = time.monotonic()
        if case.gone:
            with suppress(FaultError):
                wait_for(f"{case.label} gone", lambda: watcher.first(False, recovering) is not None, 30, POLL_S)
    effect_at = watcher.first(True, started)
    gone_at = watcher.first(False, recovering) if case.gone else None
    return Sample(
        effect=None if effect_at is None else effect_at - started,
        inject=injected - started,
        recover=recovered - recovering,
        gone=None if gone_at is None else gone_at - recovering,
        facts={k: float(v) for k, v in facts.items() if k.endswith("_after_s") and isinstance(v, int | float)},
    )


def _cell(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "-"
    missing = "" if len(seen) == len(values) else f" ({len(values) - len(seen)} unseen)"
    return f"{statistics.median(seen):6.3f} / {max(seen):6.3f}{missing}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kinds", default="", help="comma-separated labels' first words to run (default: all)")
    parser.add_argument("--run", help="an existing run with the infra tier of standin-ha (default: bring one up)")
    args = parser.parse_args()
    wanted = {k.strip() for k in args.kinds.split(",") if k.strip()}
    cases = [c for c in CASES if not wanted or c.label.split()[0] in wanted]
    if not cases:
        parser.error(f"--kinds: none of {sorted(wanted)}; labels: {', '.join(c.label for c in CASES)}")
    backend = DockerBackend()
    if args.run:
        run = backend.attach(args.run)
    else:
        topology = load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").select(["infra"])
        print("bringing up the infra tier of standin-ha ...", file=sys.stderr)
        run = backend.up(topology, log=lambda _m: None, only=["infra"])
    try:
        with tempfile.TemporaryDirectory() as state:
            nemesis = Nemesis(run, History(None, run_id=run.run_id), Registry(run.run_id, state))
            rows = []
            timings: list[tuple[str, str, str]] = []
            for case in cases:
                samples = [measure(run, nemesis, case) for _ in range(args.repeat)]
                if not case.gone:
                    for name in samples[0].facts:
                        timings.append((case.label, name, _cell([s.facts.get(name) for s in samples])))
                rows.append(
                    (
                        case.label,
                        _cell([s.effect for s in samples]),
                        _cell([s.inject for s in samples]),
                        _cell([s.recover for s in samples]),
                        _cell([s.gone for s in samples]) if case.gone else "(stays)",
                    )
                )
                print(f"  {case.label}: done", file=sys.stderr)
    finally:
        if not args.run:
            backend.down(run.run_id, log=lambda _m: None)
    head = ("fault", "effect (median / max s)", "inject call", "recover call", "gone after recover")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    print(f"{args.repeat} repetitions each; times from the nemesis call, polled every {POLL_S * 1000:.0f} ms")
    for row in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    if timings:
        print("\nthe failovers' own timings (from their kill or cut; median / max s)")
        for label, name, cell in timings:
            print(f"  {label:<26} {name:<32} {cell}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
