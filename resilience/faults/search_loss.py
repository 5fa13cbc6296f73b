"""search-loss: the search node goes away, killed (`method=kill`) or frozen (`method=pause`).

RapidPro keeps working without Elasticsearch but for contact search and indexing; the indexer must
catch up afterwards. The offline topology has a single search node (osmem has no clustering), so this
is an outage of search, not a replica failover. Recovery starts or thaws it and waits until healthy.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultError, FaultSpecError, bring_back, nodes_with_role

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology

METHODS = ("kill", "pause")


@dataclasses.dataclass(kw_only=True)
class SearchLossFault(BaseFault):
    kind = "search-loss"
    positional = ("method", "node")

    method: str = "kill"
    node: str = ""  # "" = the run's first node of role elasticsearch
    health_timeout: float | None = None

    def validate(self) -> None:
        if self.method not in METHODS:
            raise FaultSpecError(f"search-loss: method must be one of {', '.join(METHODS)}, got {self.method!r}")

    def targets(self) -> list[str]:
        return [self.node] if self.node else []

    def footprint(self, topology: Topology) -> Counter[str]:
        service = next((s.name for s in topology.services.values() if s.role.value == "elasticsearch"), "search")
        return Counter({service: 1})

    def check_topology(self, topology: Topology) -> list[str]:
        if not any(s.role.value == "elasticsearch" for s in topology.services.values()):
            return [f"topology {topology.name} has no search service (role elasticsearch)"]
        return super().check_topology(topology)

    def resolve(self, run: Backend) -> None:
        if not self.node:
            self.node = nodes_with_role(run, "elasticsearch")[0]

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        if self.method == "kill":
            run.kill(self.node)
        else:
            run.pause(self.node)
        return {"node": self.node, "state": run.state(self.node)}

    def recover(self, run: Backend) -> Facts:
        self.resolve(run)
        if run.state(self.node) == "missing":
            raise FaultError(f"{self.node} of run {run.run_id} no longer exists")
        return bring_back(run, self.node, True, self.health_timeout)
