"""restart on real Docker: the node's process is a new one afterwards, and it is healthy again."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import Nemesis, RestartFault
from resilience.faults.leftovers import find_leftovers
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET = "sentinel-3"


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_restart_replaces_the_process(infra_run: DockerRun, nemesis: Nemesis) -> None:
    pid_before = infra_run.host_pid(TARGET)
    fault = RestartFault(node=TARGET, timeout=5)
    with nemesis.applied(fault) as facts:
        assert facts["restarted"] is True
        assert infra_run.host_pid(TARGET) != pid_before
        assert infra_run.state(TARGET) == "running"
    recorded = nemesis.history.recorded().operations
    assert [(o.f, o.type) for o in recorded] == [("inject", "ok"), ("recover", "ok")]
    assert find_leftovers(infra_run) == []
