"""`resilience up | status | logs | down | cleanup`: a topology's lifecycle on the Docker backend."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resilience import images
from resilience.backends.docker import BackendError, DockerBackend
from resilience.topology import TopologyError, load_topology, parse_set_options
from resilience.waits import HealthTimeout


def _params(pairs: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param expects NAME=VALUE, got {pair!r}")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return params


def _up(args: argparse.Namespace) -> int:
    params = _params(args.param)
    try:
        topology = load_topology(Path(args.topology), params)
        only = [s for s in (args.only or "").split(",") if s]
        if only:
            topology = topology.select(only)
        if args.set:
            topology = topology.with_switches(parse_set_options(args.set))
    except TopologyError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not args.no_build:
        images.build_all(log=lambda m: print(m, flush=True))
    backend = DockerBackend()
    started = time.monotonic()
    try:
        run = backend.up(topology, keep=True, log=lambda m: print(m, flush=True), only=only, params=params)
    except (HealthTimeout, BackendError) as exc:
        print(f"resilience up: {exc}", file=sys.stderr)
        return 1
    print(f"run {run.run_id}: {len(topology.nodes())} nodes healthy in {time.monotonic() - started:.1f} s")
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        run = DockerBackend().attach(args.run)
    except BackendError as exc:
        print(f"resilience status: {exc}", file=sys.stderr)
        return 1
    table = Table(title=f"run {run.run_id} ({run.topology.name})")
    for column in ("node", "role", "state", "healthy", "ports (127.0.0.1)", "reason"):
        table.add_column(column)
    rows = run.status()
    for row in rows:
        ports = " ".join(f"{c}→{h}" for c, h in row.ports.items())
        table.add_row(row.node, row.role, row.state, "yes" if row.healthy else "NO", ports, row.reason)
    Console(width=160).print(table)
    return 0 if all(r.healthy for r in rows) else 1


def _logs(args: argparse.Namespace) -> int:
    try:
        run = DockerBackend().attach(args.run)
        if args.node not in run.node_names():
            raise BackendError(f"no node {args.node}; nodes: {', '.join(run.node_names())}")
    except BackendError as exc:
        print(f"resilience logs: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(run.logs(args.node, tail=args.tail))
    return 0


def _down(args: argparse.Namespace) -> int:
    backend = DockerBackend()
    try:
        run_id = args.run or backend.attach().run_id
    except BackendError as exc:
        print(f"resilience down: {exc}", file=sys.stderr)
        return 1
    backend.down(run_id)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from resilience.faults.registry import revert_leftovers

    backend = DockerBackend()
    if args.faults:
        # Keep the runs, revert what a killed harness left in them (rules, toxics, paused nodes, cuts).
        targets = [args.run] if args.run else [r.run_id for r in backend.runs()]
        for run_id in targets:
            for line in revert_leftovers(backend, run_id, log=print):
                print(f"  {run_id}: {line}")
        print(f"reverted leftover faults of {len(targets)} run(s)")
        return 0
    if args.orphans:
        candidates = [r.run_id for r in backend.runs() if r.orphaned]
    else:
        candidates = [args.run] if args.run else [r.run_id for r in backend.runs()]
    for run_id in candidates:
        revert_leftovers(backend, run_id)  # also forgets the run's fault registry
    reaped = backend.reap_orphans() if args.orphans else backend.cleanup(args.run)
    print(f"cleaned up {len(reaped)} run(s){': ' + ', '.join(reaped) if reaped else ''}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    up = sub.add_parser("up", help="bring a topology up and wait until every node is healthy")
    up.add_argument("topology")
    up.add_argument("--only", help="comma-separated tiers, roles or services (their dependencies are not added)")
    up.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a topology param")
    up.add_argument("--set", action="append", default=[], metavar="SERVICE.SWITCH=VALUE", help="set a stand-in switch")
    up.add_argument("--no-build", action="store_true", help="do not build the offline images first")
    up.set_defaults(func=_up)

    status = sub.add_parser("status", help="a table of the nodes; exit 0 only when every node is healthy")
    status.add_argument("--run", help="run id (default: the newest run)")
    status.set_defaults(func=_status)

    logs = sub.add_parser("logs", help="print a node's log")
    logs.add_argument("node")
    logs.add_argument("--run")
    logs.add_argument("--tail", type=int)
    logs.set_defaults(func=_logs)

    down = sub.add_parser("down", help="remove a run (default: the newest)")
    down.add_argument("--run")
    down.set_defaults(func=_down)

    cleanup = sub.add_parser("cleanup", help="remove every run carrying our label (or one run, or orphans only)")
    cleanup.add_argument("--run")
    cleanup.add_argument("--orphans", action="store_true", help="only runs whose owner process is gone")
    cleanup.add_argument(
        "--faults", action="store_true", help="keep the runs; only revert the faults a killed harness left in them"
    )
    cleanup.set_defaults(func=_cleanup)
