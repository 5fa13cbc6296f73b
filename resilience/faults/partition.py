"""partition: groups of nodes that cannot reach one another, both ways or one way.

In every node of a group, a DROP rule for each address of the other groups (INPUT, so established
connections stall as well as new ones: a TCP connect times out, as on a real cut). Nodes named in no
group are untouched and still reach everyone. With `one_way`, only traffic from the first group to
the second is dropped: the second group's nodes drop what arrives from the first.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from resilience.faults.base import BaseFault, Facts, FaultSpecError, expand_nodes
from resilience.faults.netfilter import add_rule, address_of, remove_fault_rules

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology


@dataclasses.dataclass(kw_only=True)
class PartitionFault(BaseFault):
    kind = "partition"

    groups: list[list[str]]
    one_way: bool = False

    def validate(self) -> None:
        if len(self.groups) < 2 or any(not group for group in self.groups):
            raise FaultSpecError(f"partition: expected at least two non-empty groups, got {self.groups}")
        seen: set[str] = set()
        for group in self.groups:
            for node in group:
                if node in seen:
                    raise FaultSpecError(f"partition: {node} is in more than one group")
                seen.add(node)
        if self.one_way and len(self.groups) != 2:
            raise FaultSpecError(f"partition: one_way needs exactly two groups (from, to), got {len(self.groups)}")

    def targets(self) -> list[str]:
        return [node for group in self.groups for node in group]

    def footprint(self, topology: Topology) -> Counter[str]:
        # By convention the first group is the side that is cut off (the minority).
        return Counter(topology.node(node).service for node in self.groups[0])

    def cuts(self) -> list[tuple[list[str], list[str]]]:
        """(sources, receivers): the receivers drop what the sources send them."""
        if self.one_way:
            return [(self.groups[0], self.groups[1])]
        return [
            (source, receiver)
            for i, receiver in enumerate(self.groups)
            for j, source in enumerate(self.groups)
            if i != j
        ]

    def inject(self, run: Backend) -> Facts:
        addresses = {node: address_of(run, node) for node in self.targets()}
        rules = 0
        for sources, receivers in self.cuts():
            for receiver in receivers:
                for source in sources:
                    add_rule(run, receiver, "INPUT", ["-s", addresses[source]], self.id)
                    rules += 1
        return {"rules": rules, "addresses": addresses}

    def recover(self, run: Backend) -> Facts:
        return {"rules_removed": remove_fault_rules(run, self.targets(), self.id)}

    def to_args(self) -> list[str]:
        tokens = " | ".join(",".join(group) for group in self.groups).split()
        return [*tokens, "one_way=true"] if self.one_way else tokens

    @classmethod
    def from_args(cls, args: list[str], options: dict[str, str], topology: Topology | None) -> PartitionFault:
        """`partition A,B | C [| D ...] [one_way=true]`: a service or role name stands for all its nodes."""
        groups: list[list[str]] = [[]]
        for token in args:
            for piece in token.replace("|", " | ").split():
                if piece == "|":
                    groups.append([])
                else:
                    groups[-1].extend(p for p in piece.split(",") if p)
        if len(groups) < 2:
            raise FaultSpecError("partition: separate the groups with '|', e.g. `partition courier-1 | postgres`")
        expanded = [expand_nodes(topology, group) for group in groups]
        return cls.from_description({"groups": expanded, **options})
