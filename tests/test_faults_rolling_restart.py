"""rolling-restart on real Docker: every node of the service is restarted, one at a time, each healthy
before the next goes down."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import Nemesis, RollingRestartFault
from resilience.faults.leftovers import find_leftovers
from resilience.history import History

pytestmark = pytest.mark.docker
SERVICE = "sentinel"


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_each_node_restarts_in_turn_never_two_down(infra_run: DockerRun, nemesis: Nemesis) -> None:
    nodes = infra_run.nodes_of(SERVICE)
    pids = {node: infra_run.host_pid(node) for node in nodes}
    most_down = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most_down
        while not done.is_set():
            down = sum(infra_run.state(node) != "running" for node in nodes)
            most_down = max(most_down, down)
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with nemesis.applied(RollingRestartFault(service=SERVICE, timeout=5)) as facts:
            assert facts["order"] == nodes
    finally:
        done.set()
        watcher.join()
    assert most_down <= 1
    assert all(infra_run.host_pid(node) != pids[node] for node in nodes)
    assert all(infra_run.state(node) == "running" for node in nodes)
    assert find_leftovers(infra_run) == []
