"""What the faults that go through a whole service node by node share (rolling restart, rolling upgrade)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import TYPE_CHECKING

from resilience.backends.base import BackendError
from resilience.faults.base import BaseFault, FaultError, FaultSpecError

LB_ROTATION_TIMEOUT_S = 15.0

if TYPE_CHECKING:
    from resilience.backends.base import Backend
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

    def back_in_rotation(self, run: Backend, node: str, timeout: float = LB_ROTATION_TIMEOUT_S) -> None:
        """Wait until every load balancer that has `node` as a server sees it UP again, so the next node
        goes out only when n+1 holds in the balancer's eyes too. The node's own health check passes up to a
        couple of seconds before HAProxy has re-resolved a recreated container and seen `rise` checks: a
        rollback to a cached image moved the second node in that gap and HAProxy answered 503 (seen in CI).
        Best effort: a balancer that cannot be asked, or that never lists the node, does not stop the roll."""
        from resilience.faults.haproxy_api import HaproxyRuntime

        deadline = time.monotonic() + timeout
        for lb in run.nodes_of("lb"):
            try:
                runtime = HaproxyRuntime(run, lb)
                while True:
                    states = [row for row in runtime.servers() if row.server == node]
                    if not states or all(row.up for row in states) or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            except (OSError, FaultError, BackendError):
                continue

    def resolve(self, run: Backend) -> None:
        if not self.nodes:
            self.nodes = [n for n in run.node_names() if run.topology.node(n).service == self.service]
            if not self.nodes:
                raise FaultError(f"run {run.run_id} has no service {self.service!r}")
