"""rolling-restart: restart each node of a service in turn, each healthy again before the next goes.

What an operator does for a configuration change or (with new images) an upgrade: never more than one
node of the service is down, so an n+1 service should not lose a request. The fault lasts for the
whole roll; recovery only makes sure every node runs and is healthy (for a roll cut short).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultError, FaultSpecError, bring_back, restart_node

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun
    from resilience.topology import Topology


@dataclasses.dataclass(kw_only=True)
class RollingRestartFault(BaseFault):
    kind = "rolling-restart"
    positional = ("service",)

    service: str
    timeout: int = 10  # graceful-stop timeout of each restart
    settle: float = 0.0  # seconds to wait after a node is healthy before restarting the next
    health_timeout: float | None = None
    nodes: list[str] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        if self.timeout < 0 or self.settle < 0:
            raise FaultSpecError("rolling-restart: timeout and settle must be ≥ 0 seconds")

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

    def inject(self, run: DockerRun) -> Facts:
        self.resolve(run)
        healthy_after: dict[str, float] = {}
        for position, node in enumerate(self.nodes):
            if position and self.settle:
                time.sleep(self.settle)
            restart_node(run, node, self.timeout)
            healthy_after[node] = round(run.wait_healthy(node, timeout=self.health_timeout), 3)
        return {"order": list(self.nodes), "healthy_after_s": healthy_after}

    def recover(self, run: DockerRun) -> Facts:
        self.resolve(run)
        return {node: bring_back(run, node, True, self.health_timeout) for node in self.nodes}
