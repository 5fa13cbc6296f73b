"""Benchmark: the conversation rate the whole stand-in stack sustains on this machine, and its latency there.

    .venv/bin/python benchmarks/throughput.py [--run RUN_ID] [--tps N] [--start 2] [--max-rate 48]

Steps the offered MO rate up (×--factor from --start), each step an experiment of --step-seconds of
conversations (the registration and quick-reply scripts, no faults) judged by the checkers. A step holds
when every acknowledged MO was stored and answered (inbound, outbound and continuity valid), at least
--min-success of MOs were acknowledged and conversations completed, the system drained, and the p99 from
MO to its first reply stayed within --max-p99. The first step that does not hold ends the climb; the last
one that held is the sustained rate. Bounded by --max-rate and by --budget seconds.

The sizing goal is "millions of messages per week": 1.2 M/week ≈ 2 msg/s on average. The ratio printed
is the sustained MO rate over 2 msg/s; each MO also draws one reply, so the stack moves twice that.

The channel's TPS (RapidPro's per-channel send rate; seed_org gives the EX channel 10) caps the replies
courier sends: --tps re-seeds it so the benchmark measures the stack instead of that cap.

Without --run it brings up its own standin-ha run and removes it at the end; with --run it uses that
run and leaves it up (a `--tps` change stays until the run is seeded again).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resilience.backends.docker import DockerBackend
from resilience.checks import CheckResult, Validity
from resilience.cluster import (
    AGGREGATOR_SEND_URL,
    DEFAULT_TOPOLOGY,
    FIXTURE_FLOWS,
    Cluster,
    ClusterError,
    attach_cluster,
    start_cluster,
)
from resilience.experiment import Experiment, Outcome, run_experiment
from resilience.topology import load_topology
from resilience.workload.runner import WorkloadConfig

SIZING_MSGS_PER_S = 2.0  # "millions of messages per week": 1.2 M / (7 × 86,400 s)
JUDGED = ("inbound", "outbound", "continuity")


@dataclass(frozen=True)
class Step:
    rate: float
    seconds: float
    conversations: int
    completed: int
    mo_ok: int
    mo_all: int
    p50_s: float | None
    p99_s: float | None
    verdicts: dict[str, str]
    quiescent: bool
    held: bool
    why_not: str

    @property
    def mo_per_s(self) -> float:
        return self.mo_ok / self.seconds

    @property
    def conversations_per_s(self) -> float:
        return self.completed / self.seconds


def _result(outcome: Outcome, name: str) -> CheckResult:
    return next(r for r in outcome.results if r.name == name)


def judge(outcome: Outcome, rate: float, seconds: float, min_success: float, max_p99: float) -> Step:
    stats = outcome.stats
    mo_all = stats.mo_ok + stats.mo_fail + stats.mo_info
    phases = _result(outcome, "latency").details.get("phases", {})
    before = phases.get("before") or {}
    p50, p99 = before.get("p50_s"), before.get("p99_s")
    verdicts = {r.name: r.valid.value for r in outcome.results}
    problems = [f"{name} {verdicts[name]}" for name in JUDGED if verdicts.get(name) != Validity.TRUE.value]
    if mo_all == 0 or stats.mo_ok / mo_all < min_success:
        problems.append(f"MO success {stats.mo_ok}/{mo_all}")
    if stats.conversations == 0 or stats.completed / stats.conversations < min_success:
        problems.append(f"conversations completed {stats.completed}/{stats.conversations}")
    if not outcome.quiescent:
        problems.append("did not drain")
    if p99 is None or p99 > max_p99:
        problems.append(f"p99 {p99} s > {max_p99} s" if p99 is not None else "no latency samples")
    return Step(
        rate=rate, seconds=seconds, conversations=stats.conversations, completed=stats.completed,
        mo_ok=stats.mo_ok, mo_all=mo_all, p50_s=p50, p99_s=p99, verdicts=verdicts,
        quiescent=outcome.quiescent, held=not problems, why_not="; ".join(problems),
    )


def set_channel_tps(cluster: Cluster, tps: int) -> None:
    """Re-seed the org with another channel TPS (seed_org is idempotent and keeps org, channel and token)."""
    web = cluster.run.nodes_of("web")[0]
    flows = [f"/opt/fixtures/flows/{name}" for name in FIXTURE_FLOWS]
    command = ["python", "manage.py", "seed_org", "--flows", *flows, "--send-url", AGGREGATOR_SEND_URL]
    code, out = cluster.run.exec(web, [*command, "--tps", str(tps)])
    if code != 0:
        raise ClusterError(f"seed_org --tps {tps} on {web} failed (exit {code}): {out.strip()[-400:]}")


def ladder(start: float, factor: float, maximum: float) -> list[float]:
    rates, rate = [], start
    while rate <= maximum + 1e-9:
        rates.append(round(rate, 1))
        rate *= factor
    return rates


def fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.2f} {unit}"


def climb(cluster: Cluster, args: argparse.Namespace, reports: Path) -> list[Step]:
    steps: list[Step] = []
    started = time.monotonic()
    print(f"{'offered MO/s':>12} {'MO/s':>6} {'conv/s':>6} {'p50':>8} {'p99':>8}  result", flush=True)
    for rate in ladder(args.start, args.factor, args.max_rate):
        # A step lasts its workload, the conversations' tail, the drain and the checks: stop before the budget.
        if time.monotonic() - started + args.step_seconds + 60 > args.budget:
            print(f"budget of {args.budget:.0f} s reached before {rate} MO/s", file=sys.stderr)
            break
        experiment = Experiment(
            name=f"throughput-{rate:g}",
            workload=WorkloadConfig(rate=rate, duration=args.step_seconds, seed=args.seed),
            quiesce_timeout=45,
        )
        outcome = run_experiment(cluster, experiment, reports)
        step = judge(outcome, rate, args.step_seconds, args.min_success, args.max_p99)
        steps.append(step)
        result = "holds" if step.held else f"degraded: {step.why_not}"
        print(
            f"{rate:>12g} {step.mo_per_s:>6.2f} {step.conversations_per_s:>6.2f} {fmt(step.p50_s):>8} "
            f"{fmt(step.p99_s):>8}  {result}",
            flush=True,
        )
        if not step.held:
            break
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="use this running standin-ha run (default: bring one up, remove it after)")
    parser.add_argument("--tps", type=int, help="set the EX channel's TPS first (seed_org gives it 10)")
    parser.add_argument("--start", type=float, default=2.0, help="first offered MO rate (per second)")
    parser.add_argument("--factor", type=float, default=1.5, help="rate multiplier between steps")
    parser.add_argument("--max-rate", type=float, default=48.0, help="highest offered MO rate tried")
    parser.add_argument("--step-seconds", type=float, default=20.0, help="workload duration of each step")
    parser.add_argument("--min-success", type=float, default=0.99, help="MO and conversation success ratio")
    parser.add_argument("--max-p99", type=float, default=3.0, help="p99 MO-to-reply bound in seconds")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds the climb may take")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-reports", type=Path, help="keep each step's run directory here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.factor <= 1 or args.start <= 0 or args.step_seconds <= 0:
        parser.error("--factor must be > 1, --start and --step-seconds > 0")

    own = args.run is None
    if own:
        print("bringing up standin-ha ...", file=sys.stderr, flush=True)
        cluster = start_cluster(load_topology(DEFAULT_TOPOLOGY), log=lambda _m: None)
    else:
        cluster = attach_cluster(args.run)
    try:
        if args.tps is not None:
            set_channel_tps(cluster, args.tps)
        with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
            reports = args.keep_reports or Path(tmp)
            reports.mkdir(parents=True, exist_ok=True)
            steps = climb(cluster, args, reports)
    finally:
        if own:
            DockerBackend().down(cluster.run.run_id, log=lambda _m: None)

    held = [s for s in steps if s.held]
    print()
    print(f"channel tps: {args.tps if args.tps is not None else 'as seeded (10)'}; "
          f"steps of {args.step_seconds:g} s; p99 bound {args.max_p99:g} s")
    if not held:
        print("no step held: the stack did not sustain even the first rate")
        summary: dict[str, Any] = {"sustained": None}
    else:
        best = held[-1]
        print(f"sustained: {best.rate:g} MO/s offered, {best.mo_per_s:.2f} MO/s and "
              f"{best.conversations_per_s:.2f} conversations/s achieved")
        if best is steps[-1]:
            print(f"(no step degraded up to --max-rate {args.max_rate:g}: the ceiling is higher)")
        print(f"MO -> first reply at that rate: p50 {fmt(best.p50_s)}, p99 {fmt(best.p99_s)}")
        print(f"vs. 'millions of messages per week' (~{SIZING_MSGS_PER_S:g} msg/s): "
              f"{best.mo_per_s / SIZING_MSGS_PER_S:.1f}x in MOs alone, "
              f"{2 * best.mo_per_s / SIZING_MSGS_PER_S:.1f}x counting each MO's reply")
        summary = {"sustained": best.__dict__ | {"mo_per_s": best.mo_per_s,
                                                  "conversations_per_s": best.conversations_per_s}}
    if args.json:
        summary["steps"] = [s.__dict__ for s in steps]
        summary["tps"] = args.tps
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
