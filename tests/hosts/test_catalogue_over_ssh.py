"""The catalogue on the VM-like stand-in deployment, through the hosts backend only (issue 10, "Tested here, on
real SSH"): the same experiments, checkers and verdict policies as on Docker, each workload shortened to end
a few seconds after its schedule so the module stays within CI's budget (~6 minutes, bring-up included;
two of the six in CI, all six with RESILIENCE_SSH_CATALOGUE=all).

On Docker every one of these experiments is decided valid (docs/checkers.md, "Measured against the bounds",
the CI rehearsal of 2026-12-03); here each must be too. A planted courier bug on the same hosts must turn a
verdict false, so these passes are not the checkers' blindness to the hosts path.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends.hosts_standin import StandinBed
from resilience.checks import Validity
from resilience.cli_experiments import load_experiment
from resilience.cluster import Cluster
from resilience.experiment.phases import run_experiment
from resilience.experiment.spec import Experiment, Outcome, SteadyState
from resilience.verdict.decision import Status
from resilience.workload.runner import WorkloadConfig

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")]

# experiment -> the workload's duration here: its schedule's last recovery plus time for what follows it to
# show (the catalogue's own durations are 42-55 s). partition-app-redis keeps its 55 s: its allowances and
# bounds are set from the end of its rolling restarts.
ALL_EXPERIMENTS = {
    "kill-courier": 30.0,
    "kill-mailroom": 30.0,
    "pg-failover-async": 36.0,
    "redis-failover": 36.0,
    "lb-cut-all-couriers": 24.0,
    "partition-app-redis": 55.0,
}
# CI runs the two experiments whose fault paths no other SSH test takes, the declared promote and rejoin
# and the Sentinels (kills, the HAProxy socket, upgrades and latency over SSH: tests/test_hosts_faults_ssh.py),
# plus the planted bug below; RESILIENCE_SSH_CATALOGUE=all runs all six (~12 minutes with the bring-up).
CI_SET = ("pg-failover-async", "redis-failover")
EXPERIMENTS = {
    name: seconds
    for name, seconds in ALL_EXPERIMENTS.items()
    if os.environ.get("RESILIENCE_SSH_CATALOGUE") == "all" or name in CI_SET
}
# The decision each gets on Docker (docs/checkers.md, the catalogue measured against its bounds).
DOCKER_DECISION = dict.fromkeys(EXPERIMENTS, Validity.TRUE)
PLANTED_DROP = re.compile(r"drop_after_ack: acknowledging msg ([0-9a-f-]{36}) without writing it")


def shortened(name: str) -> Experiment:
    experiment = load_experiment(name)
    workload = dataclasses.replace(experiment.workload, duration=EXPERIMENTS[name])
    return dataclasses.replace(experiment, workload=workload)


def timed_run(
    cluster: Cluster, experiment: Experiment, reports: Path, timings: dict[str, float], label: str
) -> Outcome:
    started = time.monotonic()
    outcome = run_experiment(cluster, experiment, reports)
    timings[label] = time.monotonic() - started
    allowed = sorted({j.finding.key for j in outcome.decision.judgements if j.status is Status.ALLOWED})
    print(
        f"\n{label}: decision {outcome.decision.validity.value}, checkers merge to {outcome.merged.value}, "
        f"allowed {', '.join(allowed) or '-'}, {timings[label]:.1f} s"
    )
    return outcome


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_the_verdict_over_ssh_is_the_docker_backends(
    name: str, hosts_cluster: Cluster, reports: Path, timings: dict[str, float]
) -> None:
    outcome = timed_run(hosts_cluster, shortened(name), reports, timings, name)
    assert outcome.decision.validity is DOCKER_DECISION[name], outcome.summary()
    assert outcome.stats.urns, "the workload sent nothing"


@pytest.fixture
def planted_courier_bug(standin_bed: StandinBed) -> Iterator[None]:
    """Courier acknowledges 10 % of MOs without writing them, set over SSH (launchers rewritten, nodes
    restarted one at a time); the topology's own switches restored afterwards, whatever happened."""
    try:
        assert standin_bed.set_switches({"courier": {"drop_after_ack": 0.1}}) == ["courier"]
        yield
    finally:
        standin_bed.set_switches({})


def test_a_planted_courier_bug_fails_the_verdict_over_ssh(
    planted_courier_bug: None,
    hosts_cluster: Cluster,
    standin_bed: StandinBed,
    reports: Path,
    timings: dict[str, float],
) -> None:
    experiment = Experiment(
        name="planted-courier-drop",
        workload=WorkloadConfig(rate=4, duration=15, seed=5, resend_attempts=0),
        # The bug may drop the steady-state probe's own message: record it, do not refuse to run.
        steady_state=SteadyState.RECORD,
    )
    outcome = timed_run(hosts_cluster, experiment, reports, timings, "planted courier drop")
    assert outcome.decision.validity is Validity.FALSE, outcome.summary()
    assert any(j.finding.key == "inbound.lost" for j in outcome.decision.new), outcome.summary()
    # The losses the checkers found are the ones the courier logged dropping, read back over SSH.
    run = standin_bed.run
    assert run is not None
    dropped = {m for node in run.nodes_of("courier") for m in PLANTED_DROP.findall(run.logs(node))}
    assert dropped, "the planted switch did not reach courier"
