"""partition on real Docker: the groups cannot reach each other, nodes outside the groups still can;
one way drops only what the first group sends; recovery removes exactly the rules it added."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import FaultSpecError, Nemesis, PartitionFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.netfilter import add_rule, remove_fault_rules, rules_with, run_prefix
from resilience.faults.probes import can_connect, udp_delivered
from resilience.history import History

pytestmark = pytest.mark.docker
REDIS, SENTINEL = 6379, 26379


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def test_both_ways_cuts_the_groups_and_only_them(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = PartitionFault(groups=[["sentinel-1"], ["redis-2", "s3-1"]])
    with nemesis.applied(fault):
        assert not can_connect(infra_run, "sentinel-1", "redis-2", REDIS, timeout=0.5)
        assert not can_connect(infra_run, "redis-2", "sentinel-1", SENTINEL, timeout=0.5)
        # Outside the cut: the same nodes still talk to everyone else.
        assert can_connect(infra_run, "sentinel-1", "redis-1", REDIS)
        assert can_connect(infra_run, "sentinel-2", "redis-2", REDIS)
        assert can_connect(infra_run, "redis-2", "sentinel-2", SENTINEL)
        # One DROP per (receiver, sender): redis-2 drops sentinel-1 and nothing else.
        assert len(rules_with(infra_run, "redis-2", run_prefix(infra_run.run_id))) == 1
    assert can_connect(infra_run, "sentinel-1", "redis-2", REDIS)
    assert can_connect(infra_run, "redis-2", "sentinel-1", SENTINEL)
    assert find_leftovers(infra_run) == []


def test_one_way_drops_only_what_the_first_group_sends(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = PartitionFault(groups=[["sentinel-1"], ["sentinel-2"]], one_way=True)
    with nemesis.applied(fault):
        assert udp_delivered(infra_run, "sentinel-1", "sentinel-2") == 0
        assert udp_delivered(infra_run, "sentinel-2", "sentinel-1") == 10
        assert rules_with(infra_run, "sentinel-1", run_prefix(infra_run.run_id)) == []
    assert udp_delivered(infra_run, "sentinel-1", "sentinel-2") == 10
    assert find_leftovers(infra_run) == []


def test_recovery_leaves_rules_it_did_not_add(infra_run: DockerRun, nemesis: Nemesis) -> None:
    # Someone else's rule in the same node (another fault id) must survive this fault's recovery.
    add_rule(infra_run, "s3-1", "INPUT", ["-s", "203.0.113.7"], "other-fault")
    try:
        fault = PartitionFault(groups=[["s3-1"], ["sentinel-3"]])
        nemesis.inject(fault)
        nemesis.recover(fault)
        left = rules_with(infra_run, "s3-1", run_prefix(infra_run.run_id))
        assert [r.comment for r in left] == [f"resilience:{infra_run.run_id}:other-fault"]
    finally:
        remove_fault_rules(infra_run, ["s3-1"], "other-fault")
    assert find_leftovers(infra_run) == []


def test_bad_groupings_are_refused() -> None:
    with pytest.raises(FaultSpecError, match="at least two non-empty groups"):
        PartitionFault(groups=[["a"]])
    with pytest.raises(FaultSpecError, match="a is in more than one group"):
        PartitionFault(groups=[["a"], ["a", "b"]])
    with pytest.raises(FaultSpecError, match="one_way needs exactly two groups"):
        PartitionFault(groups=[["a"], ["b"], ["c"]], one_way=True)
