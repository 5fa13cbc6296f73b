"""restart: stop and start a node in one go; the fault lasts while it restarts (and until healthy).

Recovery only makes sure the node runs: the restart itself brings it back.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultSpecError, bring_back

if TYPE_CHECKING:
    from resilience.backends.base import Backend


@dataclasses.dataclass(kw_only=True)
class RestartFault(BaseFault):
    kind = "restart"
    positional = ("node",)

    node: str
    timeout: int = 10  # graceful-stop timeout, as for stop
    wait_healthy: bool = True  # inject returns once the restarted node is healthy
    health_timeout: float | None = None

    def validate(self) -> None:
        if self.timeout < 0:
            raise FaultSpecError(f"restart: timeout must be ≥ 0 seconds, got {self.timeout}")

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        before = run.started_at(self.node)
        run.restart(self.node, timeout=self.timeout)
        facts: Facts = {"restarted": run.started_at(self.node) != before}
        if self.wait_healthy:
            facts["healthy_after_s"] = round(run.wait_healthy(self.node, timeout=self.health_timeout), 3)
        return facts

    def recover(self, run: Backend) -> Facts:
        return bring_back(run, self.node, self.wait_healthy, self.health_timeout)
