"""The certification's phases, in order, on one cluster: baseline on the current version, a rolling upgrade
to the candidate under load, the same experiments and seeds on the candidate, a rolling rollback under
load; then the certificate. One progress line per run (phase, experiment, version, elapsed, ETA).

What runs the experiments is a `World` (Docker here), so that the order, the progress and the handling of
^C/SIGTERM are the same whatever runs them, and can be tested without Docker.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from resilience.certify.compare import Certification, Phase, RunRecord, certify_runs, record_of
from resilience.certify.plan import Plan, Version
from resilience.experiment import Experiment
from resilience.interrupts import Terminated
from resilience.workload.runner import WorkloadConfig

# What a run costs besides its workload: steady state before and after, quiescence, snapshot, checks.
RUN_OVERHEAD_S = 35.0
# The finding a run records when the cluster failed its steady-state probe before the workload.
STEADY_STATE_BROKEN = "steady_state.broken"
Say = Callable[[str], None]


class CertifyError(RuntimeError):
    """The environment cannot run this plan (an image missing, no Docker): nothing was judged."""


@dataclass(frozen=True)
class Step:
    phase: Phase
    experiment: Experiment
    seed: int
    latency_percentile: int = 95  # the plan's: which latency the run's record keeps

    @property
    def version(self) -> str:
        return "candidate" if self.phase in (Phase.UPGRADE, Phase.CANDIDATE) else "current"

    @property
    def estimate_s(self) -> float:
        return self.experiment.workload.duration + RUN_OVERHEAD_S


class World(Protocol):
    def open(self) -> None:
        """Bring the cluster up on the current version (or check the one given)."""

    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        """Run one step's experiment and return its record."""
        ...

    def close(self, interrupted: bool) -> None:
        """Leave nothing behind: faults reverted (run_experiment does), the cluster down unless kept."""

    def versions(self) -> dict[str, dict[str, str]]:
        """The exact images: {"current"|"candidate": {service: image id}}."""
        ...


def roll_schedule(services: tuple[str, ...], version: Version, start_s: float = 3.0) -> str:
    """Roll each service in turn to `version`'s image; a schedule's steps run one after another, so each
    tier's roll starts when the previous one is done. No rollback: the next phase runs on what this leaves."""
    steps = [
        f"at {start_s + i:g} rolling-upgrade {service} {version.images[service]} rollback=false as roll-{service}"
        for i, service in enumerate(services)
    ]
    return "; ".join(steps)


def roll_experiment(plan: Plan, phase: Phase) -> Experiment:
    target = plan.candidate if phase is Phase.UPGRADE else plan.current
    label = target.label or "the " + ("candidate" if phase is Phase.UPGRADE else "current version")
    load = plan.upgrade
    contact_habits = {k: v for k, v in plan.workload.items() if k in ("reply_timeout", "resend_attempts")}
    return Experiment(
        name=f"certify-{phase.value}",
        description=f"rolling {phase.value} of {', '.join(plan.services)} to {label}, under load",
        expectations="Never more than one node of a tier down; old and new versions serve side by side: every "
        "acknowledged MO stored once, every conversation carries on.",
        workload=WorkloadConfig(rate=load.rate, duration=load.duration, seed=plan.seeds[0], **contact_habits),  # type: ignore[arg-type]
        schedule=roll_schedule(plan.services, target),
        quiesce_timeout=load.quiesce_timeout,
    )


def plan_steps(plan: Plan, experiments: dict[str, Experiment]) -> list[Step]:
    """Every run, in order: each experiment with each seed on the current version, the upgrade, the same
    on the candidate, the rollback."""

    def fault_runs(phase: Phase) -> list[Step]:
        steps = []
        for name in plan.experiments:
            base = experiments[name]
            for seed in plan.seeds:
                workload = dataclasses.replace(base.workload, seed=seed, **plan.workload)  # type: ignore[arg-type]
                steps.append(
                    Step(phase, dataclasses.replace(base, workload=workload), seed, plan.thresholds.latency_percentile)
                )
        return steps

    return [
        *fault_runs(Phase.BASELINE),
        Step(Phase.UPGRADE, roll_experiment(plan, Phase.UPGRADE), plan.seeds[0], plan.thresholds.latency_percentile),
        *fault_runs(Phase.CANDIDATE),
        Step(Phase.ROLLBACK, roll_experiment(plan, Phase.ROLLBACK), plan.seeds[0], plan.thresholds.latency_percentile),
    ]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def progress_line(index: int, steps: list[Step], plan: Plan, elapsed: float, running: float | None = None) -> str:
    """`[3/14] baseline kill-courier seed 2 on current (9.2.0) | elapsed 4m10s | ETA 21m30s`: the ETA is the
    plan's estimate of what is left, scaled by how long the runs so far took (`running`: seconds since the
    first began, the bring-up left out) against their estimate."""
    step = steps[index]
    done = sum(s.estimate_s for s in steps[:index])
    left = sum(s.estimate_s for s in steps[index:])
    spent = elapsed if running is None else running
    pace = spent / done if done and spent else 1.0
    version = plan.candidate if step.version == "candidate" else plan.current
    label = f" ({version.label})" if version.label else ""
    return (
        f"[{index + 1}/{len(steps)}] {step.phase.value} {step.experiment.name} seed {step.seed} on "
        f"{step.version}{label} | elapsed {_clock(elapsed)} | ETA {_clock(left * pace)}"
    )


@dataclass
class CertifyRun:
    certification: Certification
    records: list[RunRecord]
    seconds: float
    phase_seconds: dict[str, float]
    versions: dict[str, dict[str, str]]


class CertificationInterrupted(KeyboardInterrupt):
    """^C or SIGTERM stopped a certification. The world is closed (faults reverted, cluster down) and `run`
    holds the certificate of what was done, which says it was interrupted. A KeyboardInterrupt, so that a
    caller that does not look for it (a pytest session, a script) stops as it would on ^C."""

    def __init__(self, run: CertifyRun) -> None:
        super().__init__(f"certification interrupted by {run.certification.interrupted}")
        self.run = run


def certify(plan: Plan, steps: list[Step], world: World, reports_root: Path, say: Say) -> CertifyRun:
    """Run every step through `world` and decide. ^C or SIGTERM stops at once: the world closes and
    CertificationInterrupted carries the interrupted certificate (the CLI writes it and exits 130/143)."""
    started = time.monotonic()
    records: list[RunRecord] = []
    phase_seconds: dict[str, float] = {}
    interrupted = crashed = ""
    versions: dict[str, dict[str, str]] = {}
    try:
        say(f"certify {plan.name}: {len(steps)} runs, about {_clock(sum(s.estimate_s for s in steps))} plus bring-up")
        world.open()
        versions = world.versions()
        first_run = time.monotonic()
        for index, step in enumerate(steps):
            now = time.monotonic()
            say(progress_line(index, steps, plan, now - started, now - first_run))
            run_started = time.monotonic()
            records.append(world.execute(step, reports_root))
            phase_seconds[step.phase.value] = phase_seconds.get(step.phase.value, 0.0) + time.monotonic() - run_started
    except KeyboardInterrupt as exc:
        interrupted = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        say(f"interrupted by {interrupted}: reverting faults and taking the cluster down")
    except CertifyError:
        raise
    except Exception as exc:  # a run that crashed: the certificate says which and why, and decides on the rest
        step = steps[len(records)]
        crashed = (
            f"{step.phase.value} {step.experiment.name} seed {step.seed} could not finish "
            f"({type(exc).__name__}: {exc}); the runs after it were not made"
        )
        say(crashed)
    finally:
        world.close(interrupted=bool(interrupted))
    certification = certify_runs(plan.experiments, records, plan.thresholds, interrupted, crashed)
    result = CertifyRun(certification, records, time.monotonic() - started, phase_seconds, versions)
    if interrupted:
        raise CertificationInterrupted(result)
    return result


def execute_step(cluster: object, step: Step, reports_root: Path, say: Say, verbose: bool) -> RunRecord:
    """Run one step's experiment on `cluster` (Docker or a deployment) and keep its record."""
    from resilience.experiment import SteadyStateError, run_experiment

    progress = (lambda line: say(f"    {line}")) if verbose else None
    try:
        outcome = run_experiment(cluster, step.experiment, reports_root, progress=progress)  # type: ignore[arg-type]
    except SteadyStateError as exc:
        # A version that cannot carry one round trip, even after its app tier was restarted, fails the
        # run; on one version only, that is a finding new in it like any other.
        say(f"    -> false (steady state broken: {exc})")
        return RunRecord(
            phase=step.phase.value,
            experiment=step.experiment.name,
            seed=step.seed,
            validity="false",
            refused={STEADY_STATE_BROKEN: 1},
            reasons=[str(exc)],
        )
    record = record_of(outcome, step.phase, step.seed, step.latency_percentile)
    refused = ", ".join(sorted(record.refused)) or "none refused"
    say(
        f"    -> {record.validity} ({refused}; p{step.latency_percentile} {record.latency_s} s, "
        f"outage {record.rto_s} s, {record.throughput_per_s} MO/s)"
    )
    return record


class DockerWorld:
    """The plan's topology on Docker, brought up with the current version's images (or a cluster given)."""

    def __init__(
        self, plan: Plan, keep: bool = False, cluster: object | None = None, say: Say = print, verbose: bool = False
    ) -> None:
        self.plan = plan
        self.keep = keep
        self.cluster = cluster  # a resilience.cluster.Cluster already up (tests); then it is never taken down
        self.owned = cluster is None
        self.say = say
        self.verbose = verbose

    def check_images(self) -> dict[str, dict[str, str]]:
        """Every image of both versions on this engine (nothing is pulled), by id; CertifyError if one is not."""
        import docker
        import docker.errors

        from resilience.images import resolve_image

        client = docker.from_env()
        found: dict[str, dict[str, str]] = {"current": {}, "candidate": {}}
        missing = []
        for which, version in (("current", self.plan.current), ("candidate", self.plan.candidate)):
            for service, image in version.images.items():
                name = resolve_image(image)
                try:
                    found[which][service] = f"{image} = {client.images.get(name).id}"
                except docker.errors.ImageNotFound:
                    missing.append(f"{which} {service}: {name}")
        if missing:
            raise CertifyError(
                f"image(s) not on this Docker engine: {'; '.join(missing)}; expected them built or `docker load`ed "
                "(`resilience images derive` makes a stand-in next version)"
            )
        return found

    def open(self) -> None:
        from resilience.cluster import start_cluster

        self._versions = self.check_images()
        if self.cluster is None:
            topology = self.plan.topology
            for service, image in self.plan.current.images.items():
                topology = topology.with_service(dataclasses.replace(topology.services[service], image=image))
            self.say(f"bringing up {topology.name} on the current version")
            self.cluster = start_cluster(topology, keep=self.keep, log=lambda _m: None)
            self.say(f"cluster {self.cluster.run.run_id} up")  # type: ignore[attr-defined]

    def versions(self) -> dict[str, dict[str, str]]:
        return self._versions

    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        return execute_step(self.cluster, step, reports_root, self.say, self.verbose)

    def close(self, interrupted: bool) -> None:
        if self.cluster is None:
            return
        run = self.cluster.run  # type: ignore[attr-defined]
        from resilience.backends.docker import DockerBackend
        from resilience.faults.registry import revert_leftovers

        revert_leftovers(DockerBackend(), run.run_id)
        if self.owned and not self.keep:
            self.say(f"taking cluster {run.run_id} down")
            DockerBackend().down(run.run_id, log=lambda _m: None)
            return
        # A cluster someone else owns ends on the version it began with, even when the run stopped half-way.
        self._roll_back_quietly(run)

    def _roll_back_quietly(self, run: object) -> None:
        from resilience.faults.rolling_upgrade import RollingUpgradeFault

        for service, image in self.plan.current.images.items():
            fault = RollingUpgradeFault(service=service, image=image, rollback=False)
            fault.resolve(run)  # type: ignore[arg-type]
            fault.roll_images(run, image)  # type: ignore[arg-type]


class DeploymentWorld:
    """A user's deployment (the plan's `target: {deployment: NAME}`): nothing is brought up or taken down. It
    must run the current version when certification starts; the rolls run its hosts file's `upgrade:`
    commands node by node (the rolling-upgrade fault on a hosts run), and a certification cut short after
    the upgrade began moves every node back to the current version before it lets go."""

    def __init__(self, plan: Plan, say: Say = print, verbose: bool = False, opener: Callable[[], object] | None = None):
        if plan.deployment is None:
            raise CertifyError(f"plan {plan.name} names no deployment")
        self.plan = plan
        self.say = say
        self.verbose = verbose
        self._opener = opener  # tests: () -> (cluster, hosts run)
        self.cluster: object | None = None
        self.run: object | None = None
        self.on_candidate = False  # some node may run the candidate: a rollback is owed

    def open(self) -> None:
        from resilience.cluster import ClusterError

        deployment = self.plan.deployment
        assert deployment is not None
        try:
            if self._opener is not None:
                self.cluster, self.run = self._opener()  # type: ignore[misc]
            else:
                from resilience.backends.hosts_target import open_target

                self.cluster, self.run = open_target(deployment)
        except ClusterError as exc:
            raise CertifyError(f"deployment {deployment.name}: {exc}") from None
        self.say(f"deployment {deployment.name} ({deployment.lb_url}): certifying on its nodes over SSH")

    def versions(self) -> dict[str, dict[str, str]]:
        def declared(version: Version) -> dict[str, str]:
            return {service: f"{value} (as the plan declares; installed by the hosts file's upgrade command)"
                    for service, value in version.images.items()}  # fmt: skip

        return {"current": declared(self.plan.current), "candidate": declared(self.plan.candidate)}

    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        if step.phase is Phase.UPGRADE:
            self.on_candidate = True
        record = execute_step(self.cluster, step, reports_root, self.say, self.verbose)
        if step.phase is Phase.ROLLBACK and record.validity != "false":
            self.on_candidate = False
        return record

    def close(self, interrupted: bool) -> None:
        if self.run is None:
            return
        from resilience.faults.registry import Registry, revert_recorded
        from resilience.faults.rolling_upgrade import RollingUpgradeFault

        run = self.run
        try:
            revert_recorded(run, Registry(run.run_id), lambda _line: None)  # type: ignore[attr-defined]
            if self.on_candidate:
                self.say("moving every node back to the current version (the certification stopped on the candidate)")
                for service, version in self.plan.current.images.items():
                    fault = RollingUpgradeFault(service=service, image=version, rollback=False)
                    fault.inject(run)  # type: ignore[arg-type]
                self.on_candidate = False
        finally:
            close = getattr(run, "close", None)
            if close is not None:
                close()
