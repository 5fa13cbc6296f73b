"""Benchmark: `resilience certify` end to end on the stand-ins, the cases too long for CI.

    .venv/bin/python benchmarks/certify.py [clean] [slower] [sigint] [--repeats N] [--json FILE]

- clean: the certification set (kill-courier, kill-mailroom, pg-failover-async) on the node image against its
  derived "next version" (STANDIN_VERSION=9.3.0-standin) for courier, mailroom and web: expected CERTIFIED;
- slower: kill-courier on the same pair, the candidate's runs slowed by a 150 ms Toxiproxy latency toxic on
  Postgres for their whole workload (a candidate that is only slower): expected REGRESSION on the p99
  latency threshold, with no finding new in the candidate;
- sigint: the clean plan through the real command, SIGINT once the first baseline run has started: expected
  exit 130, a certificate that says interrupted, and no container of its cluster left.

Prints per case the wall time of each phase, the decision and its reasons. Every cluster and image it
creates is removed before it exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from resilience.certify.certificate import new_certificate_dir, write_certificate
from resilience.certify.compare import Phase, RunRecord
from resilience.certify.plan import load_plan
from resilience.certify.run import DockerWorld, Step, certify, plan_steps
from resilience.cli_experiments import load_experiment
from resilience.cluster import ROOT
from resilience.derived_images import derive_image
from resilience.interrupts import terminate_gracefully

NEXT = "resilience-upgrade:certify-bench"
TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
SLOWDOWN = "at 0.5 toxic postgres latency latency=150 as slower for {for_s:g}"


def plan_text(experiments: list[str], seeds: list[int], extra: str = "") -> str:
    return f"""\
version: 1
kind: certification
name: bench-{"-".join(experiments)}
target:
  topology: {TOPOLOGY}
current:
  version: 9.2.2-standin
candidate:
  version: 9.3.0-standin
  images: {{courier: "{NEXT}", mailroom: "{NEXT}", web: "{NEXT}"}}
experiments: [{", ".join(experiments)}]
seeds: [{", ".join(map(str, seeds))}]
{extra}"""


class SlowerCandidateWorld(DockerWorld):
    """The candidate's fault runs with a latency toxic on Postgres for their whole workload."""

    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        if step.phase is Phase.CANDIDATE:
            experiment = step.experiment
            slow = SLOWDOWN.format(for_s=experiment.workload.duration - 1)
            step = dataclasses.replace(
                step, experiment=dataclasses.replace(experiment, schedule=f"{slow}; {experiment.schedule}")
            )
        return super().execute(step, reports_root)


def run_case(name: str, text: str, world_class: type[DockerWorld], work: Path) -> dict[str, Any]:
    plan_file = work / f"{name}.yaml"
    plan_file.write_text(text)
    plan = load_plan(plan_file)
    steps = plan_steps(plan, {n: load_experiment(n) for n in plan.experiments})
    out_dir = new_certificate_dir(work / "reports")
    started = time.monotonic()
    result = certify(plan, steps, world_class(plan, say=print), out_dir / "runs", print)
    paths = write_certificate(result, plan, out_dir, f"resilience certify {plan_file}")
    certification = result.certification
    figures = {
        "case": name,
        "decision": certification.decision.value,
        "reasons": certification.reasons,
        "wall_s": round(time.monotonic() - started, 1),
        "phase_s": {phase: round(s, 1) for phase, s in result.phase_seconds.items()},
        "runs": len(result.records),
        "certificate": str(paths["html"]),
    }
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def sigint_case(work: Path, after_s: float) -> dict[str, Any]:
    plan_file = work / "sigint.yaml"
    plan_file.write_text(plan_text(["kill-courier"], [1]))
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "resilience.cli", "certify", str(plan_file), "--report-dir", str(work / "reports")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    run_id = ""
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        print(f"  | {line.rstrip()}", flush=True)
        if line.startswith("cluster ") and line.rstrip().endswith(" up"):
            run_id = line.split()[1]
        if line.startswith("[1/"):
            time.sleep(after_s)
            interrupted_at = time.monotonic() - started
            process.send_signal(signal.SIGINT)
            break
    rest, _ = process.communicate(timeout=600)
    lines += rest.splitlines()
    code = process.returncode
    left = docker.from_env().containers.list(all=True, filters={"name": f"rs-{run_id}-"}) if run_id else []
    certificates = sorted((work / "reports").glob("*-certify/certificate.json"))
    decision = json.loads(certificates[-1].read_text())["decision"] if certificates else None
    figures = {
        "case": "sigint",
        "exit_code": code,
        "decision": decision,
        "containers_left": len(left),
        "interrupted_after_s": round(interrupted_at, 1),
        "stopped_after_s": round(time.monotonic() - started, 1),
        "last_lines": lines[-4:],
    }
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "cases", nargs="*", default=["clean", "slower", "sigint"], choices=["clean", "slower", "sigint"]
    )
    parser.add_argument("--repeats", type=int, default=1, help="seeds of the clean case (default 1)")
    parser.add_argument("--slower-repeats", type=int, default=3, help="seeds of the slower case (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    parser.add_argument("--keep", metavar="DIR", help="write the certificates and runs under DIR and keep them")
    args = parser.parse_args()
    terminate_gracefully()  # a SIGTERMed benchmark reverts its faults and takes its cluster down too
    client = docker.from_env()
    derive_image(client, "resilience-node", NEXT, {"STANDIN_VERSION": "9.3.0-standin"}, log=print)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="certify-bench-", dir=os.environ.get("TMPDIR")) as tmp:
            work = Path(args.keep) if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            for case in args.cases:
                if case == "clean":
                    text = plan_text(
                        ["kill-courier", "kill-mailroom", "pg-failover-async"], list(range(1, args.repeats + 1))
                    )
                    results.append(run_case("clean", text, DockerWorld, work))
                elif case == "slower":
                    seeds = list(range(1, args.slower_repeats + 1))
                    extra = f"thresholds: {{min_repeats: {min(3, len(seeds)) if len(seeds) > 1 else 2}}}\n"
                    results.append(
                        run_case("slower", plan_text(["kill-courier"], seeds, extra), SlowerCandidateWorld, work)
                    )
                else:
                    results.append(sigint_case(work, after_s=20))
    finally:
        client.images.remove(NEXT, force=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
