"""`resilience up | status | logs | down | cleanup`: a topology's lifecycle on the Docker backend."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resilience import cli_hosts, images, ownership
from resilience.backends import engine
from resilience.backends.docker import BackendError, DockerBackend, NoRunError, RunInfo
from resilience.exitcodes import ExitCode
from resilience.topology import TopologyError, load_topology, parse_param_options, parse_set_options
from resilience.waits import HealthTimeout


def _up(args: argparse.Namespace) -> int:
    try:
        params: dict[str, object] = dict(parse_param_options(args.param))
        topology = load_topology(Path(args.topology), params)
        only = [s for s in (args.only or "").split(",") if s]
        if only:
            topology = topology.select(only)
        if args.set:
            topology = topology.with_switches(parse_set_options(args.set))
    except TopologyError as exc:
        print(exc, file=sys.stderr)
        return ExitCode.BAD_INPUT
    if not args.no_build:
        try:
            images.build_all(log=lambda m: print(m, flush=True))
        except images.ImageBuildError as exc:
            print(f"resilience up: {exc}", file=sys.stderr)
            return ExitCode.BAD_INPUT
    backend = DockerBackend()
    started = time.monotonic()
    try:
        run = backend.up(topology, keep=True, log=lambda m: print(m, flush=True), only=only, params=params)
    except (HealthTimeout, BackendError) as exc:
        print(f"resilience up: {exc}", file=sys.stderr)
        return 1
    print(f"run {run.run_id}: {len(topology.nodes())} nodes healthy in {time.monotonic() - started:.1f} s")
    return 0


def _no_run(command: str, exc: NoRunError) -> int:
    print(f"resilience {command}: {exc}", file=sys.stderr)
    return ExitCode.BAD_INPUT


def _status(args: argparse.Namespace) -> int:
    if cli_hosts.wants_deployment(args):
        return cli_hosts.status(args)
    try:
        run = DockerBackend().attach(args.run)
    except NoRunError as exc:
        return _no_run("status", exc)
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
    if cli_hosts.wants_deployment(args):
        return cli_hosts.logs(args)
    try:
        run = DockerBackend().attach(args.run)
    except NoRunError as exc:
        return _no_run("logs", exc)
    if args.node not in run.node_names():
        print(f"resilience logs: no node {args.node}; nodes: {', '.join(run.node_names())}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    sys.stdout.write(run.logs(args.node, tail=args.tail))
    return 0


def _announce(verb: str, runs: list[RunInfo]) -> None:
    """Say what is about to go, before it goes."""
    print(f"{verb} {len(runs)} run(s):", flush=True)
    for line in ownership.describe(runs):
        print(line, flush=True)


def _down(args: argparse.Namespace) -> int:
    backend = DockerBackend()
    try:
        info = ownership.choose_run(backend.runs(), args.run, ownership.current_owner())
    except ownership.OwnershipError as exc:
        print(f"resilience down: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    _announce("removing", [info])
    backend.down(info.run_id)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from resilience.faults.registry import revert_leftovers

    if cli_hosts.wants_deployment(args):
        return cli_hosts.cleanup(args)
    if args.faults:
        engine.require_network_tools()  # the reverts delete iptables rules inside the nodes' namespaces
    backend = DockerBackend()
    me = ownership.current_owner()
    runs = backend.runs()
    if args.run and all(r.run_id != args.run for r in runs):
        known = ", ".join(r.run_id for r in runs) or "none"
        print(f"resilience cleanup: no run {args.run} on this engine (runs: {known})", file=sys.stderr)
        return ExitCode.BAD_INPUT
    pool = [r for r in runs if r.orphaned] if args.orphans else runs
    targets = ownership.choose_runs(pool, args.run, args.all, me)
    spared = [] if args.run or args.all else ownership.not_mine(pool, me)
    if not targets:
        print(f"nothing to clean up: no {'orphaned ' if args.orphans else ''}run of {me}")
    elif args.faults:
        # Keep the runs, revert what a killed harness left in them (rules, toxics, paused nodes, cuts).
        _announce("reverting leftover faults of", targets)
        for info in targets:
            for line in revert_leftovers(backend, info.run_id, log=print):
                print(f"  {info.run_id}: {line}")
        print(f"reverted leftover faults of {len(targets)} run(s)")
    else:
        _announce("removing", targets)
        for info in targets:
            revert_leftovers(backend, info.run_id)  # also forgets the run's fault registry
            backend.down(info.run_id)
        print(f"cleaned up {len(targets)} run(s): {', '.join(r.run_id for r in targets)}")
    backend.forget_vanished_runs(log=print)
    if spared:
        print(f"left alone {len(spared)} run(s) of others (name one with --run ID, or all with --all):")
        for line in ownership.describe(spared):
            print(line)
    return 0


RUN_HELP = "the run to act on (default: your newest run; another's only when named here)"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    up = sub.add_parser("up", help="bring a topology up and wait until every node is healthy (kept until down)")
    up.add_argument("topology", metavar="TOPOLOGY", help="a topology file, e.g. harness/topologies/standin-ha.yaml")
    up.add_argument(
        "--only",
        metavar="TIER,ROLE,SERVICE",
        help="comma-separated tiers, roles or services to bring up (their dependencies are not added)",
    )
    up.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="override a topology param; repeatable"
    )
    up.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SERVICE.SWITCH=VALUE",
        help="set a stand-in switch (docs/standin.md); repeatable",
    )
    up.add_argument("--no-build", action="store_true", help="do not build the offline images first")
    up.set_defaults(func=_up)

    status = sub.add_parser("status", help="a table of the nodes; exit 0 only when every node is healthy")
    status.add_argument("--run", metavar="ID", help=RUN_HELP)
    cli_hosts.add_deployment_options(status)
    status.set_defaults(func=_status)

    logs = sub.add_parser("logs", help="print a node's log")
    logs.add_argument("node", metavar="NODE", help="a node name, e.g. courier-1 (resilience status lists them)")
    logs.add_argument("--run", metavar="ID", help=RUN_HELP)
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    cli_hosts.add_deployment_options(logs)
    logs.set_defaults(func=_logs)

    down = sub.add_parser("down", help="remove a run: your newest, or the one named")
    down.add_argument("--run", metavar="ID", help="the run to remove (anyone's; default: your newest run)")
    down.set_defaults(func=_down)

    cleanup = sub.add_parser(
        "cleanup", help="remove your runs (or one run, or everyone's), after reverting the faults a killed run left"
    )
    cleanup.add_argument("--run", metavar="ID", help="only this run (anyone's)")
    cleanup.add_argument("--all", action="store_true", help="every run carrying our label, whoever owns it")
    cleanup.add_argument("--orphans", action="store_true", help="only runs whose owner process is gone")
    cleanup.add_argument(
        "--faults", action="store_true", help="keep the runs; only revert the faults a killed harness left in them"
    )
    cli_hosts.add_deployment_options(cleanup)  # there: recorded faults, tagged rules, frozen nodes on its hosts
    cleanup.set_defaults(func=_cleanup)
