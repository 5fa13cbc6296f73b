"""One experiment, end to end: steady state, workload under a fault schedule, heal, quiesce, check, report.

The order is the design's lifecycle; each phase is recorded so that a run interrupted anywhere still
leaves a history that `resilience check DIR` can judge, and every fault is reverted on the way out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from resilience import checks
from resilience.checks import merge
from resilience.checks.model import view_of
from resilience.cluster import Cluster
from resilience.experiment.spec import REPORTS_DIR, SCRIPTS_DIR, Experiment, Outcome, Progress, SteadyState
from resilience.history import History
from resilience.rapidpro.aggregator import AggregatorClient
from resilience.rapidpro.api import ApiClient
from resilience.rapidpro.courier import CourierClient
from resilience.report.assemble import write_run_record
from resilience.snapshot import write_snapshot
from resilience.topology import Role
from resilience.verdict.bounds import checker_options
from resilience.verdict.decision import decide
from resilience.verdict.policy import write_policy
from resilience.workload.runner import Workload, WorkloadConfig, WorkloadStats
from resilience.workload.script import Script, load_scripts


@dataclass
class WorkloadSession:
    """A workload and the clients it talks through (courier, the aggregator, the web API), for one run.
    The experiment runner and the pytest `workload` fixture both start workloads this way."""

    workload: Workload
    courier: CourierClient
    aggregator: AggregatorClient
    api: ApiClient

    async def drive(self, progress: Callable[[WorkloadStats], None] | None = None) -> WorkloadStats:
        try:
            return await self.workload.run(progress=progress)
        finally:
            await self.courier.aclose()

    def close(self) -> None:
        self.api.close()
        self.aggregator.close()


def open_workload(cluster: Cluster, history: History, scripts: list[Script], config: WorkloadConfig) -> WorkloadSession:
    """A workload recorded in `history`, through the cluster's load balancer; close() it when done."""
    api, courier, aggregator = cluster.api(), cluster.courier(), cluster.aggregator()
    workload = Workload(
        history, courier, aggregator, scripts, config, api=api, flow_uuids=cluster.seed.flows,
        salt=int(time.time()),  # its URN block (plan_conversations)
    )  # fmt: skip
    return WorkloadSession(workload, courier, aggregator, api)


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


# What an operator restarts when RapidPro stops moving messages with every node up: v9.2's Redis and
# database clients can stall for good (no read deadline) while their health pages stay green.
RESTARTED_TO_RESTORE = (Role.MAILROOM, Role.COURIER, Role.CELERY, Role.WEB)


class SteadyStateError(RuntimeError):
    """The cluster is not in steady state before an experiment, even after restarting the app tier."""


def restore_steady_state(cluster: Cluster, before: dict[str, Any], say: Progress) -> dict[str, Any]:
    """Steady state for the next experiment: when the round trip (or a node) fails, restart the app tier node
    by node, as an operator would, and probe again. The report keeps the first probe and what was restarted,
    so a stall a previous experiment left behind is visible instead of poisoning this one's verdict."""
    if before["ok"]:
        return before
    say(f"steady state broken before the experiment ({before.get('round_trip_error') or before['unhealthy']}): "
        "restarting the app tier")  # fmt: skip
    topology = cluster.run.topology
    restarted: list[str] = []
    for role in RESTARTED_TO_RESTORE:
        for node in cluster.run.nodes_of(role.value):
            if topology.services[topology.node(node).service].role is not role:
                continue
            cluster.run.restart(node)
            cluster.run.wait_healthy(node)
            restarted.append(node)
    after = steady_state(cluster)
    after["restored"] = {"first_probe": before, "restarted": restarted}
    if not after["ok"]:
        raise SteadyStateError(
            f"the cluster is not in steady state before the experiment, even after restarting {restarted}: "
            f"{after.get('round_trip_error') or after['unhealthy']}"
        )
    return after


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
    policy = experiment.policy  # a bad allowance or bound stops here, before anything runs
    options = checker_options(policy.effective_bounds, experiment.checker_options)
    checks.validate_options(options)
    started = time.monotonic()
    started_wall = time.time()
    run_dir = new_run_dir(reports_root, experiment.name)
    write_policy(run_dir, policy)
    schedule = _schedule(cluster, experiment)
    schedule_end = schedule.duration + 5 if schedule is not None else 0.0
    say(f"phase steady-state-before ({run_dir})")
    before = steady_state(cluster)
    if experiment.steady_state is SteadyState.ENFORCE:
        before = restore_steady_state(cluster, before, say)
    elif not before["ok"]:
        broken = before.get("round_trip_error") or before["unhealthy"]
        say(f"steady state broken before the experiment, recorded only: {broken}")
    scripts = _scripts(experiment.scripts)
    config = experiment.workload
    meta = {
        "experiment": experiment.name,
        "cluster_run": cluster.run.run_id,
        "topology": cluster.run.topology.name,
        "workload": asdict(config),
        "schedule": schedule.to_text() if schedule is not None else "",
        "schedule_seed": schedule.seed if schedule is not None else None,
        "checker_options": options,
    }
    history = History(run_dir / "history.jsonl", run_id=run_dir.name, seed=config.seed, meta=meta)
    session = open_workload(cluster, history, scripts, config)
    workload, aggregator = session.workload, session.aggregator
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

        stats = asyncio.run(session.drive(progress=_progress_line(say, active_faults)))
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
        session.close()
    say("phase quiesce")
    quiescence = cluster.quiesce(stats.urns, timeout=experiment.quiesce_timeout)
    say(f"phase snapshot (quiescent={quiescence.reached} after {quiescence.seconds:.1f} s)")
    snapshot = cluster.snapshot(stats.urns, quiescence, since=started_wall)
    write_snapshot(snapshot, run_dir / "snapshot.json")
    history.close()
    say("phase check")
    recorded = history.recorded()
    results = checks.run_all(recorded, snapshot, options)
    merged = merge(results)
    decision = decide(policy, results, view_of(recorded))
    say("phase steady-state-after")
    after = steady_state(cluster)
    _write_logs(cluster, run_dir, since=started_wall)
    outcome = Outcome(
        experiment,
        run_dir,
        results,
        merged,
        stats,
        quiescence.reached,
        before,
        after,
        time.monotonic() - started,
        decision,
    )
    write_run_record(outcome, cluster, history, started_wall)
    return outcome


def _progress_line(say: Progress, active_faults: Callable[[], list[str]]) -> Callable[[WorkloadStats], None]:
    """A workload progress callback that says where the run is every 5 s."""
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

    return tick


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
