"""pause: freeze every process of a node (cgroup freezer); its sockets stay open but nothing answers.

Recovery thaws it. Unlike kill, connections survive, so peers see a hang rather than a reset.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultError

if TYPE_CHECKING:
    from resilience.backends.base import Backend


@dataclasses.dataclass(kw_only=True)
class PauseFault(BaseFault):
    kind = "pause"
    positional = ("node",)

    node: str

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        run.pause(self.node)
        return {"state": run.state(self.node)}

    def recover(self, run: Backend) -> Facts:
        state = run.state(self.node)
        if state == "missing":
            raise FaultError(f"{self.node} of run {run.run_id} no longer exists: nothing to resume")
        run.unpause(self.node)
        return {"was": state}
