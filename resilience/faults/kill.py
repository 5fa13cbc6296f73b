"""kill: SIGKILL a node's main process (the container exits); recovery starts it again.

The SIGKILL goes through Docker's API, which Docker counts as an operator's act: the node stays down until
recovery whatever its restart policy (measured; docs/faults.md). A crash that the policy answers, as a
supervisor would, is the `crash` fault.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, bring_back

if TYPE_CHECKING:
    from resilience.backends.base import Backend


@dataclasses.dataclass(kw_only=True)
class KillFault(BaseFault):
    kind = "kill"
    positional = ("node",)

    node: str
    wait_healthy: bool = True  # recovery returns once the node's health checks pass again
    health_timeout: float | None = None  # None: the service's own health_timeout

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        run.kill(self.node)
        return {"state": run.state(self.node)}

    def recover(self, run: Backend) -> Facts:
        return bring_back(run, self.node, self.wait_healthy, self.health_timeout)
