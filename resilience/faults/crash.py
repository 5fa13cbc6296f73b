"""crash: a node's processes die behind Docker's back (SIGKILL from the host), as in a crash.

Unlike `kill`, which Docker takes for an operator's act and never restarts, a crash is answered by the
node's restart policy, as production's supervisor would: an app node (`always` by default) comes back by
itself after Docker's back-off, an infra node (`no`) stays down. Inject returns once Docker has seen the
process die; recovery starts the node if nothing did, and waits until it is healthy.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, bring_back, wait_for

if TYPE_CHECKING:
    from resilience.backends.base import Backend

NOTICE_TIMEOUT = 30.0  # Docker notices an exit within milliseconds; a loaded engine may take seconds


@dataclasses.dataclass(kw_only=True)
class CrashFault(BaseFault):
    kind = "crash"
    positional = ("node",)

    node: str
    wait_healthy: bool = True  # recovery returns once the node's health checks pass again
    health_timeout: float | None = None  # None: the service's own health_timeout

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        before = _life(run, self.node)
        run.crash(self.node)
        # Done when Docker has seen this life end: the node is down, in its restart back-off, or already
        # running again (a restart count or start time that moved on).
        _, seconds = wait_for(
            f"Docker noticing that {self.node} crashed",
            lambda: _life(run, self.node) != before or run.state(self.node) not in ("running", "paused"),
            NOTICE_TIMEOUT,
            0.02,
        )
        return {
            "policy": run.restart_policy(self.node),
            "state": run.state(self.node),
            "noticed_after_s": round(seconds, 3),
        }

    def recover(self, run: Backend) -> Facts:
        facts = bring_back(run, self.node, self.wait_healthy, self.health_timeout)
        facts["restarts"] = run.restart_count(self.node)
        return facts


def _life(run: Backend, node: str) -> tuple[str, int]:
    return run.started_at(node), run.restart_count(node)
