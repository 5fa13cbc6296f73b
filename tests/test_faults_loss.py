"""loss on real Docker: a random share of the node's packets is dropped (iptables statistic, no netem);
`peers` limits it to some nodes; recovery restores clean connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import FaultSpecError, Nemesis, PacketLossFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import successful_connects
from resilience.history import History

pytestmark = pytest.mark.docker
TARGET, PORT, ATTEMPTS = "s3-1", 9000, 40


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_random_loss_fails_some_connects(infra_run: DockerRun, nemesis: Nemesis) -> None:
    # p = 0.5 each way: a connect needs its SYN in and its SYN-ACK out (retransmits come after 1 s, past
    # the 0.15 s timeout), so about 1 in 4 succeeds: 10 of 40 expected; 0 or over 30 has odds below 1e-5.
    with nemesis.applied(PacketLossFault(node=TARGET, probability=0.5)):
        succeeded = successful_connects(infra_run, "sentinel-1", TARGET, PORT, ATTEMPTS, timeout=0.15)
        assert 1 <= succeeded <= 30, succeeded
    assert successful_connects(infra_run, "sentinel-1", TARGET, PORT, 20, timeout=1.0) == 20
    assert find_leftovers(infra_run) == []


def test_loss_limited_to_peers(infra_run: DockerRun, nemesis: Nemesis) -> None:
    with nemesis.applied(PacketLossFault(node=TARGET, probability=1.0, peers=["sentinel-1"])):
        assert successful_connects(infra_run, "sentinel-1", TARGET, PORT, 3, timeout=0.3) == 0
        assert successful_connects(infra_run, "sentinel-2", TARGET, PORT, 10, timeout=1.0) == 10
    assert successful_connects(infra_run, "sentinel-1", TARGET, PORT, 3, timeout=1.0) == 3
    assert find_leftovers(infra_run) == []


def test_probability_out_of_range_is_refused() -> None:
    with pytest.raises(FaultSpecError, match=r"probability must be in \(0, 1\]"):
        PacketLossFault(node=TARGET, probability=0)
