"""`resilience smoke | workload | check`: drive conversations through a running topology and judge them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from resilience import checks
from resilience.backends.docker import BackendError, DockerBackend
from resilience.checks import CheckResult, OptionsError, Validity, merge
from resilience.cluster import Cluster, ClusterError, attach_cluster
from resilience.experiment import REPORTS_DIR, Experiment, run_experiment
from resilience.history import HistoryError, read_history
from resilience.snapshot import SnapshotError, read_snapshot
from resilience.topology import TopologyError, parse_set_options
from resilience.workload.runner import WorkloadConfig

EXIT_FOR = {Validity.TRUE: 0, Validity.FALSE: 1, Validity.UNKNOWN: 2}


def print_verdicts(results: list[CheckResult], title: str) -> None:
    table = Table(title=title)
    for column in ("checker", "verdict", "counts"):
        table.add_column(column)
    for result in results:
        counts = ", ".join(f"{k}={v}" for k, v in result.counts.items() if v)
        style = {"true": "green", "false": "red", "unknown": "yellow"}[result.valid.value]
        table.add_row(result.name, f"[{style}]{result.valid.value}[/{style}]", counts or "-")
    Console(width=160).print(table)
    print(f"merged verdict: {merge(results).value}")


def _attach(run_id: str | None) -> Cluster:
    try:
        return attach_cluster(run_id)
    except (BackendError, ClusterError) as exc:
        raise SystemExit(f"resilience: {exc}") from None


def _smoke(args: argparse.Namespace) -> int:
    cluster = _attach(args.run)
    try:
        seconds = cluster.round_trip(timeout=args.timeout)
    except ClusterError as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"MO -> flow reply at the aggregator: {seconds * 1000:.0f} ms")
    delivered = cluster.wait_delivered(timeout=args.timeout)
    if not delivered:
        print("smoke: FAILED: the reply's delivered status did not land in Postgres", file=sys.stderr)
        return 1
    print("delivered status (D) landed in msgs_msg: ok")
    return 0


def _workload(args: argparse.Namespace) -> int:
    cluster = _attach(args.run)
    if args.set:
        try:
            switches = parse_set_options(args.set)
            DockerBackend().reconfigure(cluster.run, switches, log=lambda m: print(m, flush=True))
        except TopologyError as exc:
            print(exc, file=sys.stderr)
            return 2
    experiment = Experiment(
        name="workload",
        description="a workload with no faults",
        workload=WorkloadConfig(rate=args.rate, duration=args.duration, seed=args.seed),
    )
    try:
        outcome = run_experiment(
            cluster, experiment, Path(args.report_dir), progress=lambda m: print(m, flush=True)
        )
    finally:
        if args.set:
            DockerBackend().reconfigure(cluster.run, {}, log=lambda m: print(m, flush=True))
    print_verdicts(outcome.results, f"workload {outcome.run_dir.name}")
    print(f"report: {outcome.run_dir}")
    return EXIT_FOR[outcome.merged]


def _check(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    try:
        history = read_history(run_dir / "history.jsonl")
        snapshot = read_snapshot(run_dir / "snapshot.json")
        options = history.header.meta.get("checker_options") or {}
        results = checks.run_all(history, snapshot, options)
    except (HistoryError, SnapshotError, OptionsError, OSError) as exc:
        print(f"resilience check: {exc}", file=sys.stderr)
        return 2
    print_verdicts(results, f"re-check of {run_dir}")
    from resilience.report.results import write_results

    write_results(run_dir, results, merge(results))
    return EXIT_FOR[merge(results)]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    smoke = sub.add_parser("smoke", help="one MO through the load balancer, its reply and delivered status")
    smoke.add_argument("--run", help="run id (default: the newest)")
    smoke.add_argument("--timeout", type=float, default=20.0)
    smoke.set_defaults(func=_smoke)

    workload = sub.add_parser("workload", help="a workload with no faults against the running topology")
    workload.add_argument("topology", nargs="?", help="the topology file the run came from (informational)")
    workload.add_argument("--duration", type=float, default=30.0, help="seconds during which conversations start")
    workload.add_argument("--rate", type=float, default=2.0, help="MOs per second")
    workload.add_argument("--seed", type=int, default=1)
    workload.add_argument("--set", action="append", default=[], metavar="SERVICE.SWITCH=VALUE")
    workload.add_argument("--run", help="run id (default: the newest)")
    workload.add_argument("--report-dir", default=str(REPORTS_DIR))
    workload.set_defaults(func=_workload)

    check = sub.add_parser("check", help="re-run the checkers on a stored run directory (no cluster needed)")
    check.add_argument("dir")
    check.set_defaults(func=_check)
