"""lb-cut: the load balancer stops sending to one backend server, or to a whole tier.

Through HAProxy's runtime API: `set server BACKEND/SERVER state maint`, recovery `state ready`. The
servers themselves keep running, so this isolates "the balancer lost them" from "they died".
Backends of the standard topologies: web, courier, mailroom (HTTP), postgres, redis (TCP).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultError, nodes_with_role, unknown_nodes
from resilience.faults.haproxy_api import HaproxyRuntime

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology


@dataclasses.dataclass(kw_only=True)
class LbCutFault(BaseFault):
    kind = "lb-cut"
    positional = ("backend", "servers")

    backend: str
    servers: list[str] = dataclasses.field(default_factory=list)  # empty: every server (the whole tier)
    lb: str = ""  # the HAProxy node; "" = the run's first node of role lb
    was_up: list[str] = dataclasses.field(default_factory=list)  # learned: servers UP before the cut

    def targets(self) -> list[str]:
        return list(self.servers)

    def check_topology(self, topology: Topology) -> list[str]:
        problems = unknown_nodes(topology, self.servers)
        if not any(s.role.value == "lb" for s in topology.services.values()):
            problems.append(f"topology {topology.name} has no service of role lb")
        return problems

    def resolve(self, run: Backend) -> None:
        if not self.lb:
            self.lb = nodes_with_role(run, "lb")[0]
        if not self.servers:
            self.servers = [s.server for s in HaproxyRuntime(run, self.lb).servers_of(self.backend)]

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        api = HaproxyRuntime(run, self.lb)
        before = api.servers_of(self.backend)
        known = {s.server for s in before}
        missing = [s for s in self.servers if s not in known]
        if missing:
            raise FaultError(
                f"{self.lb}: backend {self.backend} has no server {', '.join(missing)}; "
                f"it has {', '.join(sorted(known))}"
            )
        self.was_up = [s.server for s in before if s.up and s.server in self.servers]
        for server in self.servers:
            api.set_state(self.backend, server, "maint")
        return {"lb": self.lb, "maint": list(self.servers), "was_up": list(self.was_up)}

    def recover(self, run: Backend) -> Facts:
        self.resolve(run)
        state = run.state(self.lb)
        if state == "paused":
            raise FaultError(f"{self.lb} is paused: the cut can only be lifted once it runs again")
        if state != "running":
            # HAProxy keeps runtime state in memory: a stopped balancer has forgotten the cut.
            return {"ready": [], "lb_state": state}
        api = HaproxyRuntime(run, self.lb)
        in_maint = {s.server for s in api.servers_of(self.backend) if s.in_maint}
        restored = [server for server in self.servers if server in in_maint]
        for server in restored:
            # A server that was down before the cut (a standby behind a role check) must not come back UP.
            api.make_ready(self.backend, server, assume_down=server not in self.was_up)
        return {"ready": restored}
