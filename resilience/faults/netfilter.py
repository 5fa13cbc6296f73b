"""iptables rules in a node's network namespace, through the backend (Backend.iptables; Docker's enters the
namespace from the host, where we are root: `nsenter -t PID -n iptables ...`).

The rules live and die with the node's network namespace. Every rule carries the comment
`resilience:<run id>:<fault id>`, so that recovery deletes exactly the rules its fault added and cleanup
finds every rule a run left, never touching others.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.backends.base import NetfilterError
from resilience.backends.hosts_data import host_commands
from resilience.faults.base import FaultError
from resilience.topology.hosts import ControlKind

if TYPE_CHECKING:
    from resilience.backends.base import Backend

COMMENT_PREFIX = "resilience"
CHAINS = ("INPUT", "OUTPUT")


def rule_comment(run_id: str, fault_id: str) -> str:
    return f"{COMMENT_PREFIX}:{run_id}:{fault_id}"


def run_prefix(run_id: str) -> str:
    return f"{COMMENT_PREFIX}:{run_id}:"


@dataclass(frozen=True)
class Rule:
    node: str
    spec: tuple[str, ...]  # as `iptables -S` prints it, starting with "-A CHAIN"
    comment: str

    def __str__(self) -> str:
        return " ".join(self.spec)


def iptables(run: Backend, node: str, args: Sequence[str]) -> str:
    """Run iptables inside `node`'s network namespace; raise FaultError with its message on failure."""
    try:
        return run.iptables(node, args)
    except NetfilterError as exc:
        raise FaultError(str(exc)) from None


def add_rule(run: Backend, node: str, chain: str, match: Sequence[str], fault_id: str) -> None:
    """Insert a DROP rule at the top of `chain` so that it wins over anything the image set up."""
    comment = rule_comment(run.run_id, fault_id)
    iptables(run, node, ["-I", chain, "1", *match, "-m", "comment", "--comment", comment, "-j", "DROP"])


def rules_with(run: Backend, node: str, prefix: str) -> list[Rule]:
    """Our rules in `node` whose comment starts with `prefix` (a whole comment or a run's prefix)."""
    found = []
    for line in iptables(run, node, ["-S"]).splitlines():
        spec = tuple(shlex.split(line))
        if len(spec) < 2 or spec[0] != "-A":
            continue
        comment = next((spec[i + 1] for i, word in enumerate(spec[:-1]) if word == "--comment"), "")
        if comment == prefix or (prefix.endswith(":") and comment.startswith(prefix)):
            found.append(Rule(node, spec, comment))
    return found


def delete_rule(run: Backend, rule: Rule) -> None:
    iptables(run, rule.node, ["-D", *rule.spec[1:]])


def has_namespace(run: Backend, node: str) -> bool:
    """Whether the node's rules can still be there. A container that is not running has no network namespace,
    hence no rules; a program on a host shares the host's namespace, which outlives the program."""
    hosts = host_commands(run)
    if hosts is not None and hosts.hosts.node(node).control.kind is not ControlKind.CONTAINER:
        return True
    return run.state(node) in ("running", "paused")


def cut_off(run: Backend, node: str, fault_id: str) -> int:
    """Cut the node off from its peers; the rules added. In a container's own namespace everything but
    loopback; on a hosts run only the traffic with the file's other hosts, so that the harness's own SSH
    session to the host survives (and with it the recovery)."""
    hosts = host_commands(run)
    if hosts is None:
        add_rule(run, node, "INPUT", ["!", "-i", "lo"], fault_id)
        add_rule(run, node, "OUTPUT", ["!", "-o", "lo"], fault_id)
        return 2
    own = hosts.hosts.node(node).host
    added = 0
    for host in hosts.hosts.hosts.values():
        if host.name != own:
            add_rule(run, node, "INPUT", ["-s", host.dialled_by_peers], fault_id)
            add_rule(run, node, "OUTPUT", ["-d", host.dialled_by_peers], fault_id)
            added += 2
    return added


def remove_fault_rules(run: Backend, nodes: Sequence[str], fault_id: str) -> int:
    """Delete every rule of this fault in these nodes; idempotent. Returns how many were deleted."""
    removed = 0
    comment = rule_comment(run.run_id, fault_id)
    for node in nodes:
        if not has_namespace(run, node):
            continue
        for rule in rules_with(run, node, comment):
            delete_rule(run, rule)
            removed += 1
    return removed


def address_of(run: Backend, node: str) -> str:
    try:
        return run.address(node)
    except KeyError:
        raise FaultError(f"{node} is not attached to the run's network {run.network_name}") from None
