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
from resilience.checks.model import view_of
from resilience.cluster import Cluster, ClusterError, attach_cluster
from resilience.exitcodes import EPILOG, ExitCode
from resilience.experiment import REPORTS_DIR, Experiment, run_experiment, summarise
from resilience.history import HistoryError, read_history
from resilience.snapshot import SnapshotError, read_snapshot
from resilience.topology import TopologyError, parse_set_options
from resilience.verdict.allowances import PolicyError
from resilience.verdict.bounds import checker_options
from resilience.verdict.decision import decide
from resilience.verdict.policy import Policy, read_policy
from resilience.workload.runner import WorkloadConfig

EXIT_FOR = {Validity.TRUE: ExitCode.VALID, Validity.FALSE: ExitCode.INVALID, Validity.UNKNOWN: ExitCode.UNKNOWN}


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
    """The run named, else the caller's newest (resilience/ownership.py); exit 3 when there is none."""
    from resilience.backends.docker import NoRunError
    from resilience.exitcodes import ExitCode

    try:
        return attach_cluster(run_id)
    except NoRunError as exc:
        print(f"resilience: {exc}", file=sys.stderr)
        raise SystemExit(ExitCode.BAD_INPUT) from None
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
            return ExitCode.BAD_INPUT
    experiment = Experiment(
        name="workload",
        description="a workload with no faults",
        workload=WorkloadConfig(rate=args.rate, duration=args.duration, seed=args.seed),
    )
    try:
        outcome = run_experiment(cluster, experiment, Path(args.report_dir), progress=lambda m: print(m, flush=True))
    finally:
        if args.set:
            DockerBackend().reconfigure(cluster.run, {}, log=lambda m: print(m, flush=True))
    print_verdicts(outcome.results, f"workload {outcome.run_dir.name}")
    print(outcome.summary())
    print(f"report: {outcome.run_dir}")
    return EXIT_FOR[outcome.decision.validity]


def _check(args: argparse.Namespace) -> int:
    run_dir = Path(args.dir)
    if not run_dir.is_dir():
        what = "a file" if run_dir.exists() else "missing"
        print(f"resilience check: {run_dir}: {what}; expected a run directory (history.jsonl, snapshot.json)",
              file=sys.stderr)  # fmt: skip
        return ExitCode.BAD_INPUT
    try:
        history = read_history(run_dir / "history.jsonl")
        snapshot = read_snapshot(run_dir / "snapshot.json")
        options = history.header.meta.get("checker_options")
        if options is not None and not isinstance(options, dict):
            raise OptionsError(f"{run_dir / 'history.jsonl'}:1: meta.checker_options must be a mapping of checker "
                               f"name to options, got {type(options).__name__}")  # fmt: skip
        policy = read_policy(run_dir)
        if args.policy_of:
            from resilience.cli_experiments import load_experiment  # the catalogue loader imports the CLI's parts

            experiment = load_experiment(args.policy_of)
            policy = experiment.policy
            options = checker_options(policy.effective_bounds, experiment.checker_options)
        results = checks.run_all(history, snapshot, options or {})
        decision = decide(policy or Policy(), results, view_of(history))
    except (HistoryError, SnapshotError, OptionsError, PolicyError, OSError, ValueError) as exc:
        print(f"resilience check: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    print_verdicts(results, f"re-check of {run_dir}")
    name = history.header.meta.get("experiment", run_dir.name)
    if policy is None:
        print("no policy.json: judged with no allowance, no declared unknown and the default bounds")
    print(summarise(str(name), run_dir, results, decision))
    print(f"decision: {decision.validity.value}")
    if args.policy_of:
        print(f"judged with experiment {args.policy_of}'s current policy; {run_dir / 'results.json'} left as it was")
        return EXIT_FOR[decision.validity]
    from resilience.report.results import write_results

    write_results(run_dir, results, merge(results), decision)
    return EXIT_FOR[decision.validity]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    smoke = sub.add_parser("smoke", help="one MO through the load balancer, its reply and delivered status")
    smoke.add_argument(
        "--run", metavar="ID", help="the run to act on (default: your newest run; another's only when named here)"
    )
    smoke.add_argument(
        "--timeout", type=float, default=20.0, metavar="S", help="seconds to wait for the reply and for D (default 20)"
    )
    smoke.set_defaults(func=_smoke)

    workload = sub.add_parser("workload", help="a workload with no faults against the running topology")
    workload.add_argument("topology", nargs="?", help="the topology file the run came from (informational)")
    workload.add_argument("--duration", type=float, default=30.0, help="seconds during which conversations start")
    workload.add_argument("--rate", type=float, default=2.0, help="MOs per second")
    workload.add_argument("--seed", type=int, default=1, help="seed of the virtual contacts and their timing")
    workload.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SERVICE.SWITCH=VALUE",
        help="a stand-in switch for this workload (the nodes are recreated, then restored); repeatable",
    )
    workload.add_argument(
        "--run", metavar="ID", help="the run to act on (default: your newest run; another's only when named here)"
    )
    workload.add_argument(
        "--report-dir", default=str(REPORTS_DIR), metavar="DIR", help="where the run directory goes (default: reports/)"
    )
    workload.set_defaults(func=_workload)

    check = sub.add_parser(
        "check",
        help="re-judge a stored run directory (no cluster needed): each checker's verdict and the decision",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("dir", metavar="DIR", help="a run directory with history.jsonl and snapshot.json")
    check.add_argument(
        "--policy-of",
        metavar="EXPERIMENT",
        help="judge with this catalogue experiment's current allowances and bounds instead of the run's "
        "policy.json (e.g. after editing them); results.json is left as it was",
    )
    check.set_defaults(func=_check)
