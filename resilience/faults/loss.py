"""loss: drop a random share of a node's packets, in and out (iptables `statistic --mode random`).

The kernels here have no netem, so this is loss without delay; for latency use a proxy toxic. With
`peers`, only packets to and from those nodes are dropped.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultSpecError, expand_nodes, unknown_nodes
from resilience.faults.netfilter import add_rule, address_of, remove_fault_rules

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology


@dataclasses.dataclass(kw_only=True)
class PacketLossFault(BaseFault):
    kind = "loss"
    positional = ("node", "probability")

    node: str
    probability: float = 0.3  # per packet, each direction
    peers: list[str] = dataclasses.field(default_factory=list)  # empty: every peer

    def validate(self) -> None:
        if not 0 < self.probability <= 1:
            raise FaultSpecError(f"loss: probability must be in (0, 1], got {self.probability}")
        if self.node in self.peers:
            raise FaultSpecError(f"loss: {self.node} cannot be its own peer")

    def targets(self) -> list[str]:
        return [self.node]

    def check_topology(self, topology: Topology) -> list[str]:
        return unknown_nodes(topology, [self.node, *self.peers])

    def inject(self, run: Backend) -> Facts:
        chance = ["-m", "statistic", "--mode", "random", "--probability", f"{self.probability:.4f}"]
        if not self.peers:
            add_rule(run, self.node, "INPUT", ["!", "-i", "lo", *chance], self.id)
            add_rule(run, self.node, "OUTPUT", ["!", "-o", "lo", *chance], self.id)
            return {"rules": 2}
        for peer in self.peers:
            address = address_of(run, peer)
            add_rule(run, self.node, "INPUT", ["-s", address, *chance], self.id)
            add_rule(run, self.node, "OUTPUT", ["-d", address, *chance], self.id)
        return {"rules": 2 * len(self.peers)}

    def recover(self, run: Backend) -> Facts:
        return {"rules_removed": remove_fault_rules(run, [self.node], self.id)}

    @classmethod
    def from_args(cls, args: list[str], options: dict[str, str], topology: Topology | None) -> PacketLossFault:
        if "peers" in options:
            options = {**options, "peers": ",".join(expand_nodes(topology, options["peers"].split(",")))}
        return super().from_args(args, options, topology)
