"""Steady state before an experiment: a cluster a previous experiment left stalled (v9.2's Redis clients wait
forever, with every health page green) is restored by restarting the app tier, or the experiment refuses
to run; it never judges a workload on a broken cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.base import NodeStatus
from resilience.experiment import SteadyStateError, restore_steady_state, steady_state
from resilience.topology import Topology, load_topology

TOPOLOGY = Path(__file__).resolve().parent.parent / "harness" / "topologies" / "standin-ha.yaml"


class FakeRun:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.restarted: list[str] = []

    def status(self) -> list[NodeStatus]:
        return [NodeStatus(n.name, n.service, "", "running", True, "", {}) for n in self.topology.nodes()]

    def nodes_of(self, service_or_role: str) -> list[str]:
        return [
            n.name
            for n in self.topology.nodes()
            if n.service == service_or_role or self.topology.services[n.service].role.value == service_or_role
        ]

    def restart(self, node: str, timeout: int = 10) -> None:
        self.restarted.append(node)

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        return 0.0


class StalledCluster:
    """Every node healthy; the round trip fails until `heals_after` app nodes were restarted."""

    def __init__(self, heals_after: int | None) -> None:
        self.run = FakeRun(load_topology(TOPOLOGY))
        self.heals_after = heals_after

    def round_trip(self, timeout: float = 20.0) -> float:
        if self.heals_after is None or len(self.run.restarted) < self.heals_after:
            raise RuntimeError("no reply reached the aggregator within 20 s")
        return 0.4


def test_a_stalled_cluster_is_restored_by_restarting_the_app_tier_and_says_so() -> None:
    cluster = StalledCluster(heals_after=2)
    said: list[str] = []
    state = restore_steady_state(cluster, steady_state(cluster), said.append)  # type: ignore[arg-type]
    assert state["ok"]
    assert state["restored"]["first_probe"]["round_trip"] is False
    restarted = state["restored"]["restarted"]
    assert restarted[:2] == ["mailroom-1", "mailroom-2"] and {"courier-1", "courier-2"} <= set(restarted)
    assert not any(n.startswith(("postgres", "redis", "sentinel", "lb")) for n in restarted)
    assert "restarting the app tier" in said[0]


def test_a_cluster_that_stays_broken_refuses_the_experiment() -> None:
    cluster = StalledCluster(heals_after=None)
    with pytest.raises(SteadyStateError, match="even after restarting"):
        restore_steady_state(cluster, steady_state(cluster), lambda _m: None)  # type: ignore[arg-type]


def test_a_healthy_cluster_is_left_alone() -> None:
    cluster = StalledCluster(heals_after=0)
    state = restore_steady_state(cluster, steady_state(cluster), lambda _m: None)  # type: ignore[arg-type]
    assert state["ok"] and "restored" not in state and cluster.run.restarted == []
