"""Benchmark: how long a fault's inject and recover calls take on Docker and over SSH, side by side.

    .venv/bin/python benchmarks/injection_latency.py [--repeat N] [--budget SECONDS]

The same fault code (kill then start, pause then unpause, a partition's rules added then removed) acts on
two nodes running the same program: on Docker, two containers of a tiny topology (the Docker API, iptables
through nsenter); over SSH, two hosts of the VM-like test bed (hosts_testbed.py: sshd + supervisord, a
supervisor program, every command over SSH with sudo). Reported per fault and backend, in milliseconds:
the median and the 90th percentile of the inject call and of the recover call over N repetitions (fewer
when the budget runs out; the count is printed). Recovery here does not wait for health checks: it is the
call that removes the fault, not the service coming back.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from resilience.backends import engine
from resilience.backends.base import Backend
from resilience.faults.base import BaseFault
from resilience.faults.kill import KillFault
from resilience.faults.partition import PartitionFault
from resilience.faults.pause import PauseFault

TICKER = 'while true; do echo "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) tick"; sleep 0.2; done'
DOCKER_TOPOLOGY = f"""\
version: 1
name: latency-bench
services:
  ticker:
    role: aggregator
    image: resilience-node
    replicas: 2
    restart: "no"
    command: [sh, -c, '{TICKER}']
    health:
      - log: tick
"""
HOSTS_SERVICES = """\
  ticker:
    role: aggregator
    supervisor: ticker
    nodes: [vm-1, vm-2]
    logs: {file: /var/log/ticker.log}
"""
NODES = ("ticker-1", "ticker-2")
FAULTS: dict[str, Callable[[], BaseFault]] = {
    "kill + start": lambda: KillFault(node="ticker-1", wait_healthy=False),
    "pause + unpause": lambda: PauseFault(node="ticker-1"),
    "partition rules": lambda: PartitionFault(groups=[["ticker-1"], ["ticker-2"]]),
}


@dataclass
class Timings:
    inject: list[float]
    recover: list[float]


def _until_running(run: Backend, node: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while run.state(node) != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node} did not run again within {timeout:.0f} s")
        time.sleep(0.1)


def measure(run: Backend, repeat: int, budget: float) -> dict[str, Timings]:
    """Each fault injected and recovered `repeat` times (fewer if `budget` seconds per fault run out)."""
    results: dict[str, Timings] = {}
    for name, make in FAULTS.items():
        timings = Timings([], [])
        stop_at = time.monotonic() + budget
        for _ in range(repeat):
            if time.monotonic() > stop_at:
                break
            fault = make()
            started = time.monotonic()
            try:
                fault.inject(run)
                timings.inject.append(time.monotonic() - started)
            finally:
                started = time.monotonic()
                fault.recover(run)
                timings.recover.append(time.monotonic() - started)
            for node in NODES:  # the next repetition starts from a running node, not a half-started one
                _until_running(run, node)
        results[name] = timings
    return results


@contextmanager
def docker_run() -> Iterator[Backend]:
    from resilience.backends.docker import DockerBackend
    from resilience.topology import parse_topology

    engine.require_network_tools()
    topology = parse_topology(DOCKER_TOPOLOGY, "latency-bench.yaml")
    backend = DockerBackend()
    run = backend.up(topology, log=lambda _m: None)
    try:
        yield run
    finally:
        backend.down(run.run_id, log=lambda _m: None)


@contextmanager
def ssh_run() -> Iterator[Backend]:
    from resilience.backends.hosts import HostsRun, wait_for_state
    from resilience.backends.hosts_testbed import SshTestBed, reap_orphans, supervisor_program
    from resilience.topology import parse_hosts

    client = engine.connect()
    reap_orphans(client)
    with tempfile.TemporaryDirectory() as keys:
        bed = SshTestBed(client, Path(keys))
        run = None
        try:
            program = {"ticker": supervisor_program("ticker", f"sh -c '{TICKER}'", "/var/log/ticker.log")}
            for name in ("vm-1", "vm-2"):
                bed.wait_for_ssh(bed.add_host(name, program))
            from resilience.backends import labels

            run = HostsRun(parse_hosts(bed.hosts_yaml(HOSTS_SERVICES), "bench.yaml"), labels.new_run_id())
            for node in NODES:
                wait_for_state(run, node, {"running"}, timeout=60)
            run.exec_ok("ticker-1", ["true"])  # both SSH transports open before the clock starts
            run.exec_ok("ticker-2", ["true"])
            yield run
        finally:
            if run is not None:
                run.close()
            bed.close()


def _ms(values: list[float], quantile: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    if quantile == 0.5:
        return f"{statistics.median(ordered) * 1000:.0f}"
    index = min(len(ordered) - 1, max(0, round(quantile * len(ordered) + 0.5) - 1))
    return f"{ordered[index] * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=10, help="repetitions per fault and backend (default 10)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per fault and backend at most")
    args = parser.parse_args()
    # The test bed's host keys are made per container: paramiko has never seen them (it warns, and goes on).
    warnings.filterwarnings("ignore", "Unknown ssh-ed25519 host key")
    figures: dict[str, dict[str, Timings]] = {}
    for backend, opener in (("docker", docker_run), ("ssh", ssh_run)):
        print(f"measuring on {backend} ...", flush=True)
        with opener() as run:
            figures[backend] = measure(run, args.repeat, args.budget)
    print()
    header = (
        f"{'fault':<18} {'backend':<7} {'n':>3}  {'inject p50':>10} {'p90':>6}  {'recover p50':>11} {'p90':>6}  (ms)"
    )
    print(header)
    print("-" * len(header))
    for fault in FAULTS:
        for backend in figures:
            t = figures[backend][fault]
            print(
                f"{fault:<18} {backend:<7} {len(t.inject):>3}  {_ms(t.inject, 0.5):>10} {_ms(t.inject, 0.9):>6}  "
                f"{_ms(t.recover, 0.5):>11} {_ms(t.recover, 0.9):>6}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
