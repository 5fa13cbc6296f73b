"""stop on real Docker: a graceful stop (the process exits on SIGTERM, code 0); recovery starts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import FaultSpecError, Nemesis, StopFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import can_connect
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET, PEER, PORT = "sentinel-3", "sentinel-1", 26379


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_stop_is_graceful_and_recover_starts_the_node(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = StopFault(node=TARGET, timeout=5)
    nemesis.inject(fault)
    try:
        assert infra_run.state(TARGET) == "exited"
        # Sentinel exits by itself on SIGTERM: docker did not need to escalate to SIGKILL (137).
        assert infra_run.container(TARGET).attrs["State"]["ExitCode"] == 0
        assert not can_connect(infra_run, PEER, TARGET, PORT, timeout=0.5)
    finally:
        facts = nemesis.recover(fault)
    assert facts["was"] == "exited" and facts["healthy_after_s"] >= 0
    assert can_connect(infra_run, PEER, TARGET, PORT)
    assert find_leftovers(infra_run) == []


def test_a_negative_timeout_is_refused() -> None:
    with pytest.raises(FaultSpecError, match="timeout must be ≥ 0"):
        StopFault(node=TARGET, timeout=-1)
