"""`resilience certify` on a user's deployment (a target with a hosts file): the rolls run the hosts file's
`upgrade:` commands node by node, nothing is brought up or taken down, and a certification stopped after
the upgrade began moves every node back to the current version before it lets go. The hosts are the fake
shell of tests/test_hosts_faults.py (the commands over real SSH: tests/test_hosts_faults_ssh.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_certify_decision import run
from test_certify_plan import CATALOGUE, deployment_plan
from test_hosts_faults import make_run

import resilience.certify.run as certify_run
from resilience.certify.compare import Decision, Phase, RunRecord
from resilience.certify.plan import load_plan
from resilience.certify.run import DeploymentWorld, Step, certify, plan_steps
from resilience.experiment import Experiment
from resilience.faults.schedule import parse_schedule
from resilience.interrupts import Terminated


def experiments() -> dict[str, Experiment]:
    return {"kill-courier": Experiment(name="kill-courier", schedule="at 5 kill courier-1 as k; recover k at 10")}


def apt_gets(fake: object) -> list[tuple[str, str]]:
    return [(h, c) for h, c in fake.log if c.startswith("apt-get")]  # type: ignore[attr-defined]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DeploymentWorld, object, list[Step]]:
    plan = load_plan(deployment_plan(tmp_path), CATALOGUE)
    hosts_run, fake = make_run()
    executed: list[Step] = []

    def execute_step(cluster: object, step: Step, reports_root: Path, say: object, verbose: bool) -> RunRecord:
        executed.append(step)
        if step.phase in (Phase.UPGRADE, Phase.ROLLBACK):
            # what the roll experiment's schedule does on the hosts: the rolling-upgrade fault
            from resilience.faults.rolling_upgrade import RollingUpgradeFault

            target = plan.candidate if step.phase is Phase.UPGRADE else plan.current
            RollingUpgradeFault(service="courier", image=target.images["courier"], rollback=False).inject(hosts_run)
        return run(step.phase, step.seed, experiment=step.experiment.name)

    monkeypatch.setattr(certify_run, "execute_step", execute_step)
    opened = DeploymentWorld(plan, say=lambda _line: None, opener=lambda: ("cluster", hosts_run))
    return opened, fake, executed


def test_the_rolls_run_the_declared_upgrade_command_and_the_versions_are_the_plans(
    world: tuple[DeploymentWorld, object, list[Step]], tmp_path: Path
) -> None:
    deployment, fake, executed = world
    steps = plan_steps(deployment.plan, experiments())
    result = certify(deployment.plan, steps, deployment, tmp_path / "runs", lambda _line: None)
    assert result.certification.decision is Decision.CERTIFIED
    assert [s.phase for s in executed] == [s.phase for s in steps]
    assert apt_gets(fake) == [
        ("app-1", "apt-get install -y courier=9.3.0"),
        ("app-2", "apt-get install -y courier=9.3.0"),
        ("app-1", "apt-get install -y courier=9.2.1"),
        ("app-2", "apt-get install -y courier=9.2.1"),
    ], "upgraded node by node, rolled back the same way, and nothing more when it ended on the current version"
    assert result.versions["candidate"]["courier"].startswith("9.3.0 (as the plan declares")
    upgrade = next(s for s in steps if s.phase is Phase.UPGRADE)
    assert "rolling-upgrade courier 9.3.0 rollback=false" in upgrade.experiment.schedule
    parse_schedule(upgrade.experiment.schedule, deployment.plan.topology)  # the hosts file's nodes and services


def test_stopped_on_the_candidate_it_moves_every_node_back(
    world: tuple[DeploymentWorld, object, list[Step]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment, fake, _executed = world
    steps = plan_steps(deployment.plan, experiments())
    inner = certify_run.execute_step

    def stop_after_the_upgrade(*args: object) -> RunRecord:
        step = args[1]
        if step.phase is Phase.CANDIDATE:  # type: ignore[attr-defined]
            raise Terminated()
        return inner(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(certify_run, "execute_step", stop_after_the_upgrade)
    with pytest.raises(certify_run.CertificationInterrupted) as stopped:
        certify(deployment.plan, steps, deployment, tmp_path / "runs", lambda _line: None)
    assert stopped.value.run.certification.decision is Decision.INTERRUPTED
    assert apt_gets(fake)[-2:] == [
        ("app-1", "apt-get install -y courier=9.2.1"),
        ("app-2", "apt-get install -y courier=9.2.1"),
    ], "the nodes end on the current version"
    assert not deployment.on_candidate


def test_the_command_chooses_the_deployment_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resilience.cli import main

    chosen: list[str] = []

    def fake_certify(plan: object, steps: object, world: object, reports_root: Path, say: object) -> object:
        chosen.append(type(world).__name__)
        raise certify_run.CertifyError("stop here")

    monkeypatch.setattr(certify_run, "certify", fake_certify)
    code = main(["certify", str(deployment_plan(tmp_path)), "--report-dir", str(tmp_path / "reports")])
    assert chosen == ["DeploymentWorld"] and code == 3
