"""The run of a target without a hosts file: a deployment whose nodes the harness cannot see or touch.

It has no nodes, so the cluster's node-wide reads (courier spools, logs) find nothing to read, and every
operation on a node fails with a line that says to add a hosts file. Workload and checks need none of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from resilience.backends.base import BackendError, NodeStatus
from resilience.target.model import Target
from resilience.topology import Topology


class NoHostsRun:
    """Implements base.Backend for a target that names no hosts file."""

    def __init__(self, target: Target, run_id: str = "") -> None:
        self.target = target
        self.run_id = run_id or f"target-{target.name}"
        self.topology = Topology(name=target.name, path=target.path, params={}, services={})
        self.network_name = f"target:{target.name}"

    def _refuse(self, node: str) -> NoReturn:
        raise BackendError(
            f"target {self.target.name} names no hosts file, so the harness cannot act on node {node!r}; "
            f"add `hosts: FILE` to {self.target.path} (docs/target.md)"
        )

    def node_names(self) -> list[str]:
        return []

    def nodes_of(self, service_or_role: str) -> list[str]:
        return []

    def state(self, node: str) -> str:
        return "missing"

    def is_running(self, node: str) -> bool:
        return False

    def status(self) -> list[NodeStatus]:
        return []

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        self._refuse(node)

    def started_at(self, node: str) -> str:
        self._refuse(node)

    def exited_at(self, node: str) -> float | None:
        self._refuse(node)

    def restart_policy(self, node: str) -> str:
        self._refuse(node)

    def restart_count(self, node: str) -> int:
        self._refuse(node)

    def image(self, node: str) -> str:
        self._refuse(node)

    def address(self, node: str) -> str:
        raise KeyError(node)

    def published(self, node: str, port: int) -> tuple[str, int] | None:
        return None

    def endpoint(self, node: str, port: int) -> tuple[str, int]:
        self._refuse(node)

    def url(self, node: str, port: int, path: str = "") -> str:
        self._refuse(node)

    def signal(self, node: str, signal: str = "SIGKILL") -> None:
        self._refuse(node)

    def kill(self, node: str) -> None:
        self._refuse(node)

    def crash(self, node: str) -> None:
        self._refuse(node)

    def stop(self, node: str, timeout: int = 10) -> None:
        self._refuse(node)

    def start(self, node: str) -> None:
        self._refuse(node)

    def restart(self, node: str, timeout: int = 10) -> None:
        self._refuse(node)

    def pause(self, node: str) -> None:
        self._refuse(node)

    def unpause(self, node: str) -> None:
        self._refuse(node)

    def exec(self, node: str, cmd: Sequence[str], user: str | None = None) -> tuple[int, str]:
        self._refuse(node)

    def exec_ok(self, node: str, cmd: Sequence[str], user: str | None = None) -> str:
        self._refuse(node)

    def put_file(self, node: str, path: str, content: str | bytes, mode: int = 0o644) -> None:
        self._refuse(node)

    def logs(self, node: str, tail: int | None = None, since: float | None = None, timestamps: bool = False) -> str:
        return ""

    def iptables(self, node: str, args: Sequence[str]) -> str:
        self._refuse(node)

    def disconnect(self, node: str) -> None:
        self._refuse(node)

    def connect(self, node: str) -> None:
        self._refuse(node)

    def connected_nodes(self) -> set[str]:
        return set()
