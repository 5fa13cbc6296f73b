"""`resilience certify PLAN`: the current version and a candidate under the same faults, and a certificate
that signs the candidate off or names the regression (docs/certify.md)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from resilience.exitcodes import ExitCode

DECISION_CODES = {"certified": ExitCode.VALID, "regression": ExitCode.INVALID, "inconclusive": ExitCode.UNKNOWN}


def _say(line: str) -> None:
    print(line, flush=True)


def _certify(args: argparse.Namespace) -> int:
    from resilience.certify.certificate import new_certificate_dir, write_certificate
    from resilience.certify.compare import Decision
    from resilience.certify.plan import PlanError, load_plan
    from resilience.certify.run import (
        CertificationInterrupted,
        CertifyError,
        DeploymentWorld,
        DockerWorld,
        World,
        certify,
        plan_steps,
    )
    from resilience.cli_experiments import load_experiment

    try:
        plan = load_plan(args.plan)
    except PlanError as exc:
        print(exc, file=sys.stderr)
        return ExitCode.BAD_INPUT
    from resilience.faults.schedule import parse_schedule

    try:
        experiments = {name: load_experiment(name) for name in plan.experiments}
        steps = plan_steps(plan, experiments)
        for step in steps:
            # Every schedule against the plan's topology before anything runs: a catalogue experiment that
            # needs a node the topology lacks is a bad plan, not a failure an hour in.
            parse_schedule(step.experiment.schedule, plan.topology, source=f"{plan.path}: {step.experiment.name}")
    except Exception as exc:
        print(f"resilience certify: {plan.path}: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    if args.dry_run:
        for step in steps:
            workload = step.experiment.workload
            rolls = step.experiment.schedule if step.phase.value in ("upgrade", "rollback") else ""
            print(
                f"{step.phase.value:<10} {step.experiment.name:<22} seed {step.seed:<4} "
                f"{workload.rate:g}/s for {workload.duration:g} s  {rolls}".rstrip()
            )
        return ExitCode.VALID
    out_dir = new_certificate_dir(Path(args.report_dir))
    world: World = (
        DeploymentWorld(plan, say=_say, verbose=args.verbose)
        if plan.deployment is not None
        else DockerWorld(plan, keep=args.keep_cluster, say=_say, verbose=args.verbose)
    )
    try:
        result = certify(plan, steps, world, out_dir / "runs", _say)
    except CertifyError as exc:
        out_dir.rmdir()  # nothing ran: no certificate, and no empty directory that looks like one
        print(f"resilience certify: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except CertificationInterrupted as stopped:
        result = stopped.run  # its certificate says what was done before the interruption
    tail = [f"--report-dir {shlex.quote(args.report_dir)}"] if args.report_dir != "reports" else []
    command = " ".join(["resilience", "certify", shlex.quote(str(args.plan)), *tail])
    paths = write_certificate(result, plan, out_dir, command)
    certification = result.certification
    print(f"\n{certification.decision.value.upper()}: {plan.name}")
    for line in certification.reasons:
        print(f"  {line}")
    print(f"certificate: {paths['html'].resolve()}")
    if certification.decision is Decision.INTERRUPTED:
        return ExitCode.TERMINATED if certification.interrupted == "SIGTERM" else ExitCode.INTERRUPTED
    return DECISION_CODES[certification.decision.value]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "certify",
        help="certify a candidate version against the current one under the same faults (docs/certify.md)",
        description="Baseline on the current version, a rolling upgrade under load, the same experiments and "
        "seeds on the candidate, a rolling rollback under load; then reports/<time>-certify/ with the "
        "certificate. Exit 0 certified, 1 regression, 2 inconclusive, 3 bad plan or environment, "
        "130/143 interrupted (faults reverted, cluster down).",
    )
    parser.add_argument("plan", metavar="PLAN", help="the certification plan (YAML, `kind: certification`)")
    parser.add_argument("--report-dir", default="reports", metavar="DIR", help="where the certificate goes")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster up at the end")
    parser.add_argument("--dry-run", action="store_true", help="check the plan and list its runs; run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="every experiment's own progress lines too")
    parser.set_defaults(func=_certify)
