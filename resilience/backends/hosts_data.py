"""What faults need of a run beyond the Backend protocol on an installation we did not create: the hosts
file's declarations (how Postgres fails over, where HAProxy's socket is, how a service is upgraded) and a
command line run on a node's host. The hosts backend (hosts.py) offers it; the Docker backend does not,
and the faults then take their Docker paths. Faults ask `host_commands(run)` once and pick a strategy from
the answer, rather than testing for a backend's class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology.hosts import HostNode, HostService, HostsTopology


@runtime_checkable
class HostCommands(Protocol):
    """A run whose nodes live on hosts reached over SSH (hosts.HostsRun)."""

    hosts: HostsTopology

    def run_for(self, node: str, command: str, what: str, disturbs: bool = True, timeout: float | None = None) -> str:
        """Run a shell line on the node's host; its stdout. Raises BackendError (FaultsNotAllowed when
        `disturbs` and the file does not allow faults) naming the node, the host and the exit status."""
        ...

    def run_here(self, node: str, argv: Sequence[str], what: str, timeout: float) -> str:
        """Run a declared command on the harness's machine for the node (`run_on: harness`); its stdout.
        Refused unless faults are allowed; BackendError unless it exits 0."""
        ...


def host_commands(run: Backend) -> HostCommands | None:
    """The run as a HostCommands, or None for a run without hosts (Docker)."""
    return run if isinstance(run, HostCommands) else None


def service_of_role(hosts: HostsTopology, role: str) -> HostService | None:
    return next((s for s in hosts.services.values() if s.role.value == role), None)


def node_fields(hosts: HostsTopology, node: str, prefix: str = "") -> dict[str, str]:
    """{node} {host} {address} of a node for a declared command (with a prefix: {old_primary} ...)."""
    spec: HostNode = hosts.node(node)
    head = f"{prefix}_" if prefix else ""
    return {
        prefix or "node": node,
        f"{head}host": spec.host,
        f"{head}address": hosts.hosts[spec.host].dialled_by_peers,
    }
