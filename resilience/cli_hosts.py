"""`resilience plan EXPERIMENT --target NAME`, and `status`, `logs`, `cleanup` on a deployment we did not create.

`plan` prints, fault by fault in the experiment's schedule, every command a run would send to which host,
for inject and for recover, and runs nothing: the faults' own code plays against a dry-run HostsRun
(backends/hosts_dryrun.py) whose shells never connect. `status`, `logs` and `cleanup` with `--target` or
`--hosts` (cli_cluster.py hands them here) act over SSH through the hosts backend.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter

from rich.console import Console
from rich.table import Table

from resilience.backends.hosts import HostsRun
from resilience.backends.hosts_target import Deployment, TargetChoiceError, choose_deployment
from resilience.exitcodes import ExitCode
from resilience.topology import TopologyError

TARGET_HELP = "a target (./targets/NAME.yaml or $RESILIENCE_TARGETS/NAME.yaml) whose hosts to act on over SSH"
HOSTS_HELP = "a hosts file (`kind: hosts`, docs/hosts.md) to act on over SSH"


def add_deployment_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """--target NAME / --hosts FILE: act on an existing deployment over SSH rather than on a Docker run."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--target", metavar="NAME", help=TARGET_HELP)
    group.add_argument("--hosts", metavar="FILE", help=HOSTS_HELP)


def wants_deployment(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "target", None) or getattr(args, "hosts", None))


def _deployment(command: str, args: argparse.Namespace) -> Deployment | None:
    # paramiko logs a traceback for every failed handshake; the hosts backend says it in one line instead.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    try:
        return choose_deployment(args.target, args.hosts)
    except (TargetChoiceError, TopologyError) as exc:
        print(f"resilience {command}: {exc}", file=sys.stderr)
        return None


# -- plan -------------------------------------------------------------------------------------------------
def _schedule_of(args: argparse.Namespace, topology: object) -> tuple[str, object]:
    """The experiment's name and its schedule on this deployment's topology (ValueError says what is wrong)."""
    from resilience.cli_experiments import catalogue, load_experiment
    from resilience.faults.schedule import GeneratorSettings, generate_schedule, parse_schedule

    if args.schedule:
        return "(schedule given)", parse_schedule(args.schedule, topology, source="--schedule")  # type: ignore[arg-type]
    if not args.experiment:
        raise ValueError("name an EXPERIMENT (`resilience list` shows them) or give --schedule TEXT")
    wanted = args.experiment.removeprefix("test_").removesuffix(".py").replace("-", "_")
    entry = next((e for e in catalogue() if wanted in (e.module, e.name.replace("-", "_"))), None)
    if entry is None:
        raise ValueError(f"no experiment {args.experiment!r}; `resilience list` shows the catalogue")
    experiment = load_experiment(entry.module)
    if not experiment.schedule:
        return experiment.name, None
    if experiment.schedule.strip() == "generate":
        settings = GeneratorSettings(**experiment.generator)
        return experiment.name, generate_schedule(topology, args.seed or experiment.workload.seed, settings)  # type: ignore[arg-type]
    source = f"experiment {experiment.name}"
    return experiment.name, parse_schedule(experiment.schedule, topology, source=source)  # type: ignore[arg-type]


def _plan(args: argparse.Namespace) -> int:
    from resilience.backends import labels
    from resilience.backends.hosts_dryrun import PlanRun, plan_schedule
    from resilience.faults.schedule import ScheduleError

    deployment = _deployment("plan", args)
    if deployment is None:
        return ExitCode.BAD_INPUT
    run = PlanRun(deployment.hosts, labels.new_run_id())
    try:
        name, schedule = _schedule_of(args, run.topology)
    except (ScheduleError, ValueError) as exc:
        print(f"resilience plan: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    hosts = deployment.hosts
    out = [
        f"plan of {name} on {deployment.label}: {len(hosts.hosts)} host(s), "
        f"{len(hosts.nodes())} node(s); run id {run.run_id} (a real run gets its own)",
        "nothing is run and no host is contacted: the faults' own code against a model where every node runs "
        "and the first postgres node is the primary; each command goes over SSH to its host"
        + (" under sudo" if any(h.ssh.sudo for h in hosts.hosts.values()) else "")
        + ", bounded by `timeout`",
    ]
    if not hosts.allow_faults:
        out.append(
            f"REFUSED: a run would be refused: {deployment.hosts_file} says allow_faults: false "
            "(nothing that disturbs a node is done without `allow_faults: true`)"
        )
    else:
        out.append("allow_faults: true (a run would act)")
    if schedule is None:
        out.append(f"{name} has no fault schedule: no command would be sent for faults")
        print("\n".join(out))
        return 0
    out.append("schedule:")
    out.extend(f"  {line}" for line in schedule.to_text().splitlines())  # type: ignore[attr-defined]
    try:
        steps = plan_schedule(run, schedule)  # type: ignore[arg-type]
    finally:
        run.close()
    for step in steps:
        when = "at the end" if step.implicit else f"at {step.at:g} s"
        out.append("")
        out.append(f"{when}: {step.action} {step.kind} {', '.join(step.targets) or '-'} [{step.fault_id}]")
        counts = Counter((c.host, c.command, c.what) for c in step.commands)
        shown: set[tuple[str, str, str]] = set()
        for command in step.commands:
            key = (command.host, command.command, command.what)
            if key in shown:
                continue  # a poll: shown once, with how often
            shown.add(key)
            times = f"  (x{counts[key]})" if counts[key] > 1 and command.kind != "change" else ""
            if command.kind == "wait":
                out.append(f"  {command.host:<12} wait    {command.what}")
            elif command.kind == "read" and not args.full:
                out.append(f"  {command.host:<12} read    {command.what}{times}")
            else:
                out.append(f"  {command.host:<12} {command.kind:<7} {command.command}{times}")
        if step.not_simulated:
            out.append(f"  not simulated: {step.kind} {step.not_simulated}; its further steps are not shown")
        if step.error:
            out.append(f"  stopped against the model: {step.error}")
    if not args.full:
        out.append("")
        out.append("(reads answered by the model are named, not printed; --full prints their command lines)")
    print("\n".join(out))
    return 0


# -- status, logs, cleanup on a deployment ------------------------------------------------------------------
def status(args: argparse.Namespace) -> int:
    deployment = _deployment("status", args)
    if deployment is None:
        return ExitCode.BAD_INPUT
    run = deployment.open_run()
    try:
        unreachable = _unreachable_hosts(run)
        for reason in unreachable.values():
            print(f"resilience status: {reason}", file=sys.stderr)
        rows = run.status()
    finally:
        run.close()
    table = Table(title=f"{deployment.label} ({deployment.hosts.name}), over SSH")
    for column in ("node", "host", "role", "state", "healthy", "reason"):
        table.add_column(column)
    for row in rows:
        host = deployment.hosts.node(row.node).host
        reason = "host unreachable over SSH" if host in unreachable else row.reason
        table.add_row(row.node, host, row.role, row.state, "yes" if row.healthy else "NO", reason)
    Console(width=160).print(table)
    return 0 if all(r.healthy for r in rows) else 1


def _unreachable_hosts(run: HostsRun) -> dict[str, str]:
    """host -> why it cannot be reached over SSH, trying every host of the run at once."""
    from concurrent.futures import ThreadPoolExecutor

    from resilience.backends.base import BackendError

    def reach(host: str) -> str:
        try:
            run.run_on(host, "true", timeout=10)
        except BackendError as exc:
            return str(exc)
        return ""

    hosts = list(run.hosts.hosts)
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        reasons = dict(zip(hosts, pool.map(reach, hosts), strict=True))
    return {host: reason for host, reason in reasons.items() if reason}


def logs(args: argparse.Namespace) -> int:
    deployment = _deployment("logs", args)
    if deployment is None:
        return ExitCode.BAD_INPUT
    names = [n.name for n in deployment.hosts.nodes()]
    if args.node not in names:
        print(f"resilience logs: no node {args.node} in {deployment.label}; nodes: {', '.join(names)}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    run = deployment.open_run()
    try:
        sys.stdout.write(run.logs(args.node, tail=args.tail))
    finally:
        run.close()
    return 0


def cleanup(args: argparse.Namespace) -> int:
    """Recover the faults the registry holds for runs on this deployment, then remove what faults leave on
    its hosts: rules tagged `resilience:`, frozen nodes, nodes a recorded fault left down."""
    from resilience.faults.leftovers import remove_host_leftovers
    from resilience.faults.registry import Registry, recorded_runs, revert_recorded

    deployment = _deployment("cleanup", args)
    if deployment is None:
        return ExitCode.BAD_INPUT
    touched: list[str] = []
    runs = [r for r in recorded_runs() if deployment.matches(Registry(r).origin())]
    print(f"cleaning up {deployment.label}: {len(runs)} run(s) with recorded faults", flush=True)
    for run_id in runs:
        run = deployment.open_run(run_id)
        try:
            for node in revert_recorded(run, Registry(run_id), lambda line, r=run_id: print(f"  {r}: {line}")):
                touched.append(node)
        finally:
            run.close()
    scan = deployment.open_run()
    try:
        lines = remove_host_leftovers(scan, touched)
    finally:
        scan.close()
    for line in lines:
        print(f"  {line}")
    print(f"cleaned up {deployment.label}: {len(lines)} leftover(s) handled on {len(deployment.hosts.hosts)} host(s)")
    return 1 if any("could not" in line for line in lines) else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    plan = sub.add_parser(
        "plan",
        help="print every command an experiment's faults would run on which host, and run nothing",
        description=(
            "Print, fault by fault in the experiment's schedule, every command a run would send to which host, "
            "for inject and for recover. Nothing is run and no host is contacted: the faults' own code plays "
            "against a model where every node runs and the first postgres node is the primary."
        ),
    )
    plan.add_argument("experiment", nargs="?", metavar="EXPERIMENT", help="an experiment as `resilience list` names it")
    add_deployment_options(plan, required=True)
    plan.add_argument("--schedule", metavar="TEXT", help="plan this schedule instead of an experiment's")
    plan.add_argument("--seed", type=int, metavar="N", help="seed of a generated schedule")
    plan.add_argument("--full", action="store_true", help="print the read commands' lines too")
    plan.set_defaults(func=_plan)
