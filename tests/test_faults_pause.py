"""pause on real Docker: the node is frozen (the kernel still accepts its connections, nothing answers);
recovery thaws it and it answers again."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import Nemesis, PauseFault
from resilience.faults.leftovers import find_leftovers
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET, PEER = "sentinel-3", "sentinel-1"
PING = ["redis-cli", "-h", TARGET, "-p", "26379", "ping"]


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def _pings(run: DockerRun) -> bool:
    rc, out = run.exec(PEER, ["timeout", "2", *PING])
    return rc == 0 and "PONG" in out


def test_pause_freezes_and_recover_thaws(infra_run: DockerRun, nemesis: Nemesis) -> None:
    assert _pings(infra_run)
    fault = PauseFault(node=TARGET)
    nemesis.inject(fault)
    try:
        assert infra_run.state(TARGET) == "paused"
        assert not _pings(infra_run)
        assert [str(x) for x in find_leftovers(infra_run)] == [f"{TARGET}: paused"]
    finally:
        nemesis.recover(fault)
    assert infra_run.state(TARGET) == "running"
    assert _pings(infra_run)
    assert find_leftovers(infra_run) == []
    assert fault.recover(infra_run) == {"was": "running"}  # idempotent
