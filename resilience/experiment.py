"""One experiment, end to end: steady state, workload under a fault schedule, heal, quiesce, check, report.

The order is the design's lifecycle; each phase is recorded so that a run interrupted anywhere still
leaves a history that `resilience check DIR` can judge, and every fault is reverted on the way out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from resilience import checks, images
from resilience.checks import CheckResult, Validity, merge
from resilience.cluster import ROOT, Cluster
from resilience.history import History
from resilience.snapshot import write_snapshot
from resilience.workload.runner import Workload, WorkloadConfig, WorkloadStats
from resilience.workload.script import Script, load_scripts

SCRIPTS_DIR = ROOT / "fixtures" / "conversations"
REPORTS_DIR = ROOT / "reports"


@dataclass
class Experiment:
    name: str
    description: str = ""
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    schedule: str = ""  # the fault schedule's text form ("at 10 kill courier-1; recover at 25"), "" = none
    # With schedule == "generate": the settings of a seeded random schedule (faults.schedule.GeneratorSettings).
    generator: dict[str, Any] = field(default_factory=dict)
    scripts: tuple[str, ...] = ("registration", "quick_reply")
    checker_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The verdict each checker is expected to reach; unlisted checkers are expected to be valid.
    expected: dict[str, Validity] = field(default_factory=dict)
    # What the experiment expects to observe, in words (shown first in the report).
    expectations: str = ""
    # "checker.kind" -> why that is documented RapidPro v9 behaviour (rapidpro-contracts.md), not a regression.
    known: dict[str, str] = field(default_factory=dict)
    quiesce_timeout: float = 90.0
    # How the simulated aggregator answers during the run (rapidpro.aggregator.AggregatorConfig fields).
    aggregator: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    experiment: Experiment
    run_dir: Path
    results: list[CheckResult]
    merged: Validity
    stats: WorkloadStats
    quiescent: bool
    steady_before: dict[str, Any]
    steady_after: dict[str, Any]
    seconds: float
    unmet: list[str]  # checkers whose verdict differs from what the experiment expected

    @property
    def as_expected(self) -> bool:
        return not self.unmet

    def summary(self) -> str:
        lines = [f"{self.experiment.name}: verdict {self.merged.value} ({self.run_dir})"]
        for result in self.results:
            mark = ""
            if result.name in self.unmet:
                expected = self.experiment.expected.get(result.name)
                new = new_findings(self.experiment, result)
                mark = (
                    f"  <-- expected {expected.value}" if expected is not None
                    else f"  <-- new finding(s): {', '.join(new) or result.valid.value}"
                )
            counts = ", ".join(f"{k}={v}" for k, v in list(result.counts.items())[:8])
            lines.append(f"  {result.name:<13} {result.valid.value:<8} {counts}{mark}")
        return "\n".join(lines)


Progress = Callable[[str], None]


def new_findings(experiment: Experiment, result: CheckResult) -> list[str]:
    """The kinds of problem `result` reports that the experiment does not name as known v9 behaviour."""
    kinds = {part for example in result.examples for part in str(example.get("kind", "")).split("+") if part}
    return sorted(k for k in kinds if f"{result.name}.{k}" not in experiment.known and k not in experiment.known)


def verdict_acceptable(experiment: Experiment, result: CheckResult) -> bool:
    """An explicit expectation must be met exactly. Otherwise a checker must be valid, or invalid only
    through findings the experiment names as known RapidPro v9 behaviour (so a weak spot that shows up
    in one run and not the next passes both times, and anything new fails)."""
    if result.name in experiment.expected:
        return result.valid is experiment.expected[result.name]
    if result.valid is Validity.TRUE:
        return True
    if result.valid is Validity.FALSE:
        return bool(result.examples) and not new_findings(experiment, result)
    return False


def steady_state(cluster: Cluster) -> dict[str, Any]:
    """Every node healthy, and one conversation round trip through the load balancer."""
    rows = cluster.run.status()
    unhealthy = {r.node: r.reason for r in rows if not r.healthy}
    state: dict[str, Any] = {"nodes_healthy": not unhealthy, "unhealthy": unhealthy}
    try:
        state["round_trip_seconds"] = round(cluster.round_trip(), 3)
        state["round_trip"] = True
    except Exception as exc:  # any failure of the probe is a finding of the steady state, not a crash
        state["round_trip"] = False
        state["round_trip_error"] = str(exc)
    state["ok"] = state["nodes_healthy"] and state["round_trip"]
    return state


def _scripts(names: tuple[str, ...]) -> list[Script]:
    available = load_scripts(SCRIPTS_DIR)
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(f"no conversation script {missing} in {SCRIPTS_DIR}; have {sorted(available)}")
    return [available[n] for n in names]


def new_run_dir(root: Path, name: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{name}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def _write_logs(cluster: Cluster, run_dir: Path, since: float) -> None:
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    for node in cluster.run.node_names():
        text = cluster.run.logs(node, since=since, timestamps=True)
        (logs / f"{node}.log").write_text(text)


def run_experiment(
    cluster: Cluster,
    experiment: Experiment,
    reports_root: Path = REPORTS_DIR,
    progress: Progress | None = None,
) -> Outcome:
    say = progress or (lambda _m: None)
    started = time.monotonic()
    started_wall = time.time()
    run_dir = new_run_dir(reports_root, experiment.name)
    schedule = _schedule(cluster, experiment)
    schedule_end = schedule.duration + 5 if schedule is not None else 0.0
    say(f"phase steady-state-before ({run_dir})")
    before = steady_state(cluster)
    scripts = _scripts(experiment.scripts)
    config = experiment.workload
    meta = {
        "experiment": experiment.name,
        "cluster_run": cluster.run.run_id,
        "topology": cluster.run.topology.name,
        "workload": asdict(config),
        "schedule": schedule.to_text() if schedule is not None else "",
        "schedule_seed": schedule.seed if schedule is not None else None,
        "checker_options": experiment.checker_options,
    }
    history = History(run_dir / "history.jsonl", run_id=run_dir.name, seed=config.seed, meta=meta)
    api = cluster.api()
    courier = cluster.courier()
    aggregator = cluster.aggregator()
    workload = Workload(
        history, courier, aggregator, scripts, config, api=api, flow_uuids=cluster.seed.flows,
        salt=int(time.time()) % 100_000,
    )
    runner = _schedule_runner(cluster, history, schedule, say)
    aggregator_before = aggregator.get_config() if experiment.aggregator else {}
    try:
        if experiment.aggregator:
            aggregator.set_config(experiment.aggregator)
        if runner is not None:
            runner.start()
        say(f"phase workload ({len(workload.plan)} conversations, {config.rate}/s for {config.duration:.0f} s)")
        def active_faults() -> list[str]:
            if runner is None:
                return []
            return [f"{f.kind} {' '.join(f.targets())}" for f in runner.nemesis.active()]

        stats = asyncio.run(_run_workload(workload, courier, say, active_faults))
        if runner is not None and not runner.join(timeout=max(0.0, schedule_end - (time.monotonic() - started))):
            say("phase heal (the schedule outlasted the workload: recovering its faults now)")
    finally:
        # Reverts run whatever happened above, ^C included: every fault still active is recovered here.
        if runner is not None:
            outcome_of_schedule = runner.stop()
            if outcome_of_schedule.cleanup_errors:
                say(f"fault recovery problems: {outcome_of_schedule.cleanup_errors}")
        if aggregator_before:
            aggregator.set_config({k: aggregator_before[k] for k in experiment.aggregator if k in aggregator_before})
        api.close()
        aggregator.close()
    say("phase quiesce")
    quiescence = cluster.quiesce(stats.urns, timeout=experiment.quiesce_timeout)
    say(f"phase snapshot (quiescent={quiescence.reached} after {quiescence.seconds:.1f} s)")
    snapshot = cluster.snapshot(stats.urns, quiescence.reached, since=started_wall)
    write_snapshot(snapshot, run_dir / "snapshot.json")
    history.close()
    say("phase check")
    results = checks.run_all(history.recorded(), snapshot, experiment.checker_options)
    merged = merge(results)
    say("phase steady-state-after")
    after = steady_state(cluster)
    _write_logs(cluster, run_dir, since=started_wall)
    unmet = [r.name for r in results if not verdict_acceptable(experiment, r)]
    outcome = Outcome(
        experiment, run_dir, results, merged, stats, quiescence.reached, before, after,
        time.monotonic() - started, unmet,
    )
    _write_results(outcome, cluster, history, started_wall)
    return outcome


async def _run_workload(
    workload: Workload, courier: Any, say: Progress, active_faults: Callable[[], list[str]]
) -> WorkloadStats:
    last = [0.0]
    started = time.monotonic()

    def tick(stats: WorkloadStats) -> None:
        now = time.monotonic()
        if now - last[0] >= 5:
            last[0] = now
            faults = ", ".join(active_faults()) or "none"
            say(
                f"[{now - started:5.0f} s] workload | ops {stats.mo_ok + stats.mo_fail + stats.mo_info} "
                f"| errors {stats.mo_fail + stats.mo_info} | done {stats.completed}/{stats.conversations} "
                f"| faults: {faults}"
            )

    try:
        return await workload.run(progress=tick)
    finally:
        await courier.aclose()


def _schedule(cluster: Cluster, experiment: Experiment) -> Any:
    """The experiment's fault schedule, checked against the topology before anything runs (None: no faults)."""
    if not experiment.schedule:
        return None
    from resilience.faults.schedule import GeneratorSettings, generate_schedule, parse_schedule

    topology = cluster.run.topology
    if experiment.schedule.strip() == "generate":
        settings = GeneratorSettings(**experiment.generator)
        return generate_schedule(topology, experiment.workload.seed, settings)
    return parse_schedule(experiment.schedule, topology, source=f"experiment {experiment.name}")


def _schedule_runner(cluster: Cluster, history: History, schedule: Any, say: Progress) -> Any:
    if schedule is None:
        return None
    from resilience.faults.nemesis import Nemesis
    from resilience.faults.schedule import ScheduleRunner

    say(f"schedule (seed {schedule.seed}):\n{schedule.to_text()}")
    return ScheduleRunner(Nemesis(cluster.run, history, log=say), schedule)


def _write_results(outcome: Outcome, cluster: Cluster, history: History, started_wall: float) -> None:
    from resilience.report.build import generate_report, update_latest
    from resilience.report.journal import (
        Journal,
        Probe,
        TopologyInfo,
        Versions,
        derive_findings,
        faults_from_history,
        write_journal,
    )
    from resilience.report.results import write_results

    experiment = outcome.experiment
    write_results(outcome.run_dir, outcome.results, outcome.merged)
    topology = cluster.run.topology

    def probes(state: dict[str, Any]) -> dict[str, Probe]:
        detail = state.get("round_trip_error") or f"{state.get('round_trip_seconds', '?')} s"
        unhealthy = ", ".join(f"{n}: {r}" for n, r in state.get("unhealthy", {}).items())
        return {
            "every node healthy": Probe(bool(state.get("nodes_healthy")), unhealthy),
            "MO -> reply round trip": Probe(bool(state.get("round_trip")), str(detail)),
        }

    journal = Journal(
        experiment=experiment.name,
        run_id=outcome.run_dir.name,
        description=experiment.description,
        expectations=experiment.expectations,
        seed=experiment.workload.seed,
        topology=TopologyInfo(topology.name, str(topology.path), [n.name for n in topology.nodes()]),
        versions=Versions(
            images={s.name: images.resolve_image(s.image) for s in topology.services.values()}
        ),
        started_at=dt.datetime.fromtimestamp(started_wall, dt.UTC).isoformat(),
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        wall_time_s=round(outcome.seconds, 2),
        workload=asdict(experiment.workload)
        | {k: v for k, v in asdict(outcome.stats).items() if k != "urns"}
        | {"schedule": experiment.schedule, "quiescent": outcome.quiescent},
        steady_state_before=probes(outcome.steady_before),
        steady_state_after=probes(outcome.steady_after),
        faults=faults_from_history(history.recorded()),
        checks=outcome.results,
        verdict=outcome.merged,
        findings=derive_findings(outcome.results, experiment.known),
    )
    write_journal(outcome.run_dir, journal)
    generate_report(outcome.run_dir)
    update_latest(outcome.run_dir.parent, outcome.run_dir)
