"""isolate: cut one node off from every other (it still reaches itself over loopback).

`iptables` (the default) drops everything but loopback in the node's namespace, both directions (on a hosts
run: everything to and from the file's other hosts, so the harness's SSH session survives); the node keeps
its address and DNS name, as a host behind a failed switch port would. `disconnect`
detaches it from the run's network instead (Docker's own cut: the name stops resolving and the
address is freed), for a Docker engine where the host cannot enter the nodes' namespaces.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultError, FaultSpecError
from resilience.faults.netfilter import cut_off, remove_fault_rules

if TYPE_CHECKING:
    from resilience.backends.base import Backend

METHODS = ("iptables", "disconnect")


@dataclasses.dataclass(kw_only=True)
class IsolateFault(BaseFault):
    kind = "isolate"
    positional = ("node",)

    node: str
    method: str = "iptables"

    def validate(self) -> None:
        if self.method not in METHODS:
            raise FaultSpecError(f"isolate: method must be one of {', '.join(METHODS)}, got {self.method!r}")

    def targets(self) -> list[str]:
        return [self.node]

    def inject(self, run: Backend) -> Facts:
        if self.method == "disconnect":
            run.disconnect(self.node)
            return {"method": "disconnect"}
        return {"method": "iptables", "rules": cut_off(run, self.node, self.id)}

    def recover(self, run: Backend) -> Facts:
        if run.state(self.node) == "missing":
            raise FaultError(f"{self.node} of run {run.run_id} no longer exists: nothing to reconnect")
        # Both, whatever the method: a crashed inject may have left either, and each step is idempotent.
        removed = remove_fault_rules(run, [self.node], self.id)
        run.connect(self.node)
        return {"rules_removed": removed}
