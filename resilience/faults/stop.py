"""stop: a graceful stop (SIGTERM, then SIGKILL after `timeout` seconds); recovery starts the node again."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultSpecError, bring_back

if TYPE_CHECKING:
    from resilience.backends.base import Backend


@dataclasses.dataclass(kw_only=True)
class StopFault(BaseFault):
    kind = "stop"
    positional = ("node",)

    node: str
    timeout: int = 10  # seconds docker waits after SIGTERM before it sends SIGKILL
    wait_healthy: bool = True
    health_timeout: float | None = None

    def validate(self) -> None:
        if self.timeout < 0:
            raise FaultSpecError(f"stop: timeout must be ≥ 0 seconds, got {self.timeout}")

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        run.stop(self.node, timeout=self.timeout)
        return {"state": run.state(self.node)}

    def recover(self, run: Backend) -> Facts:
        return bring_back(run, self.node, self.wait_healthy, self.health_timeout)
