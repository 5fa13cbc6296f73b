"""isolate on real Docker: by iptables (the node keeps its address, every packet but loopback dropped)
or by leaving the network (Docker's cut); recovery restores both ways of talking."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import FaultSpecError, IsolateFault, Nemesis
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import can_connect
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET, PORT = "s3-1", 9000


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_iptables_isolation_cuts_every_peer_but_not_loopback(infra_run: DockerRun, nemesis: Nemesis) -> None:
    with nemesis.applied(IsolateFault(node=TARGET)):
        assert not can_connect(infra_run, "sentinel-1", TARGET, PORT, timeout=0.5)
        assert not can_connect(infra_run, TARGET, "redis-1", 6379, timeout=0.5)
        assert can_connect(infra_run, "sentinel-1", "redis-1", 6379)  # the others are unaffected
        rc, _ = infra_run.exec(TARGET, ["nc", "-z", "127.0.0.1", str(PORT)])
        assert rc == 0  # loopback still works: the node itself is fine
    assert can_connect(infra_run, "sentinel-1", TARGET, PORT)
    assert can_connect(infra_run, TARGET, "redis-1", 6379)
    assert find_leftovers(infra_run) == []


def test_disconnect_isolation_leaves_and_rejoins_the_network(infra_run: DockerRun, nemesis: Nemesis) -> None:
    with nemesis.applied(IsolateFault(node=TARGET, method="disconnect")):
        rc, _ = infra_run.exec("sentinel-1", ["getent", "hosts", TARGET])
        assert rc != 0  # its name no longer resolves
        assert [str(x) for x in find_leftovers(infra_run)] == [f"{TARGET}: detached from {infra_run.network_name}"]
    rc, _ = infra_run.exec("sentinel-1", ["getent", "hosts", TARGET])
    assert rc == 0
    assert can_connect(infra_run, "sentinel-1", TARGET, PORT)
    assert find_leftovers(infra_run) == []


def test_unknown_method_is_refused() -> None:
    with pytest.raises(FaultSpecError, match="method must be one of iptables, disconnect"):
        IsolateFault(node=TARGET, method="unplug")
