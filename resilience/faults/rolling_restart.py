"""rolling-restart: restart each node of a service in turn, each healthy again before the next goes.

What an operator does for a configuration change or (with new images) an upgrade: never more than one
node of the service is down, so an n+1 service should not lose a request. The fault lasts for the
whole roll; recovery only makes sure every node runs and is healthy (for a roll cut short).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from resilience.faults.base import Facts, bring_back
from resilience.faults.service_roll import ServiceRollFault

if TYPE_CHECKING:
    from resilience.backends.base import Backend


@dataclasses.dataclass(kw_only=True)
class RollingRestartFault(ServiceRollFault):
    kind = "rolling-restart"
    positional = ("service",)

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        healthy_after: dict[str, float] = {}
        for position, node in enumerate(self.nodes):
            if position and self.settle:
                time.sleep(self.settle)
            run.restart(node, timeout=self.timeout)
            healthy_after[node] = round(run.wait_healthy(node, timeout=self.health_timeout), 3)
            self.back_in_rotation(run, node)
        return {"order": list(self.nodes), "healthy_after_s": healthy_after}

    def recover(self, run: Backend) -> Facts:
        self.resolve(run)
        return {node: bring_back(run, node, True, self.health_timeout) for node in self.nodes}
