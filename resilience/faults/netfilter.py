"""iptables rules in a node's network namespace, entered from the host (`nsenter -t PID -n iptables ...`).

The nodes run without NET_ADMIN, so the rules are added from the host, where we are root: the host's
iptables (nf_tables backend here) edits the node's own tables, which live and die with its network
namespace. Every rule carries the comment `resilience:<run id>:<fault id>`, so that recovery deletes
exactly the rules its fault added and cleanup finds every rule a run left, never touching others.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.faults.base import FaultError

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun

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


def _require_host_access() -> None:
    if shutil.which("nsenter") is None or shutil.which("iptables") is None:
        raise FaultError("network faults need `nsenter` and `iptables` on the Docker host (util-linux, iptables)")
    if os.geteuid() != 0:
        raise FaultError(
            f"network faults enter the nodes' network namespaces from the host, which needs root; "
            f"this process runs as uid {os.geteuid()}"
        )


def iptables(run: DockerRun, node: str, args: Sequence[str]) -> str:
    """Run iptables inside `node`'s network namespace; raise FaultError with its message on failure."""
    _require_host_access()
    pid = run.host_pid(node)
    command = ["nsenter", "-t", str(pid), "-n", "iptables", "-w", "5", *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        raise FaultError(f"{node}: `iptables {' '.join(args)}` did not finish within 20 s") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        if not os.path.exists(f"/proc/{pid}"):
            detail += f" (process {pid} is not visible from here: is the Docker engine on another host?)"
        raise FaultError(f"{node}: `iptables {' '.join(args)}` failed: {detail}")
    return result.stdout


def add_rule(run: DockerRun, node: str, chain: str, match: Sequence[str], fault_id: str) -> None:
    """Insert a DROP rule at the top of `chain` so that it wins over anything the image set up."""
    comment = rule_comment(run.run_id, fault_id)
    iptables(run, node, ["-I", chain, "1", *match, "-m", "comment", "--comment", comment, "-j", "DROP"])


def rules_with(run: DockerRun, node: str, prefix: str) -> list[Rule]:
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


def delete_rule(run: DockerRun, rule: Rule) -> None:
    iptables(run, rule.node, ["-D", *rule.spec[1:]])


def has_namespace(run: DockerRun, node: str) -> bool:
    """A node that is not running has no network namespace, hence no rules left to remove."""
    return run.state(node) in ("running", "paused")


def remove_fault_rules(run: DockerRun, nodes: Sequence[str], fault_id: str) -> int:
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


def address_of(run: DockerRun, node: str) -> str:
    try:
        return run.address(node)
    except KeyError:
        raise FaultError(f"{node} is not attached to the run's network {run.network_name}") from None
