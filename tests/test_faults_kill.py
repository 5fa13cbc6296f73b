"""kill on real Docker: the node is gone (SIGKILL, exit 137), peers cannot reach it; recovery brings it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import KillFault, Nemesis
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import can_connect
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET, PEER, PORT = "sentinel-3", "sentinel-1", 26379


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_kill_stops_the_node_and_recover_brings_it_back(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = KillFault(node=TARGET)
    assert can_connect(infra_run, PEER, TARGET, PORT)
    facts = nemesis.inject(fault)
    try:
        assert facts["state"] == "exited"
        container = infra_run.container(TARGET)
        assert container.attrs["State"]["ExitCode"] == 137  # SIGKILL, not a graceful stop
        assert infra_run.state(TARGET) == "exited"
        assert nemesis.registry.entries().keys() == {fault.id}
    finally:
        recovered = nemesis.recover(fault)
    assert recovered["was"] == "exited"
    assert infra_run.state(TARGET) == "running"
    assert can_connect(infra_run, PEER, TARGET, PORT)
    assert nemesis.registry.entries() == {}
    assert find_leftovers(infra_run) == []


def test_recover_is_idempotent(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = KillFault(node=TARGET, wait_healthy=False)
    nemesis.inject(fault)
    nemesis.recover(fault)
    again = fault.recover(infra_run)  # a second time: nothing to do, and no error
    assert again["was"] == "running"
    infra_run.wait_healthy(TARGET)
