"""What the faults that go through a whole service node by node share (rolling restart, rolling upgrade)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, FaultError, FaultSpecError

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun
    from resilience.topology import Topology


@dataclasses.dataclass(kw_only=True)
class ServiceRollFault(BaseFault):
    """Not a kind itself (no `kind`): one node of `service` out at a time, in `nodes` order."""

    service: str
    timeout: int = 10  # graceful-stop timeout of each node
    settle: float = 0.0  # seconds to wait after a node is healthy before the next goes
    health_timeout: float | None = None
    nodes: list[str] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        if self.timeout < 0 or self.settle < 0:
            raise FaultSpecError(f"{self.kind}: timeout and settle must be ≥ 0 seconds")

    def targets(self) -> list[str]:
        return list(self.nodes)

    def footprint(self, topology: Topology) -> Counter[str]:
        return Counter({self.service: 1})

    def check_topology(self, topology: Topology) -> list[str]:
        if self.service not in topology.services:
            return [f"topology {topology.name} has no service {self.service!r}"]
        return []

    def resolve(self, run: DockerRun) -> None:
        if not self.nodes:
            self.nodes = [n for n in run.node_names() if run.topology.node(n).service == self.service]
            if not self.nodes:
                raise FaultError(f"run {run.run_id} has no service {self.service!r}")
