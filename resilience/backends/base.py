"""The Backend protocol: what faults, probes, the registry, the cluster and experiments may ask of a run.

A run is one realised topology. Everything outside `resilience/backends/` acts on nodes through these
operations only, by node name (`courier-1`), never through a backend's own objects, so that another
backend (hosts over SSH, Kubernetes: docs/kubernetes.md) can stand in for Docker's. The Docker backend
implements it in `docker_nodes.py`; bringing a run up and down is a backend's own business (`docker.py`).

Operations that exist for no caller yet but that the issue which introduced the protocol names are
marked "(named by issue 10)".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from resilience.topology import Topology


class BackendError(RuntimeError):
    """Something the backend was asked to do could not be done; the message says what and on which node."""


class NetfilterError(BackendError):
    """A node's network rules could not be read or changed (the tool is missing, no privilege, or the
    command failed); the message names the node and the command."""


@dataclass(frozen=True)
class NodeStatus:
    node: str
    service: str
    role: str
    state: str  # one of Backend.state's words
    healthy: bool
    reason: str
    ports: dict[int, int]  # node port -> host port it is reachable on (see Backend.published)


@runtime_checkable
class Backend(Protocol):
    """One running (or partly running) topology, as the harness acts on it.

    States (`state`) are Docker's words, which every backend maps its own onto: `running`, `paused`,
    `restarting` (its supervisor is about to start it again), `exited`, `created`, and `missing` (no such
    node in the run any more)."""

    run_id: str
    # The topology as the run holds it now; a fault that changes what a node runs (rolling-upgrade)
    # replaces it.
    topology: Topology
    # What the nodes' shared network is called, for messages (`isolate` and cleanup name it).
    network_name: str

    # -- which nodes --------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        """Every node of the topology, in its order."""
        ...

    def nodes_of(self, service_or_role: str) -> list[str]:
        """The nodes of a service (`courier`) or of a role (`lb`, `sentinel`), in the topology's order."""
        ...

    # -- state and health ---------------------------------------------------------------------------
    def state(self, node: str) -> str:
        """The node's state now (see the class); `missing` rather than an error for a node that is gone."""
        ...

    def is_running(self, node: str) -> bool:
        """Its process runs, is frozen, or its supervisor is about to run it again: a health wait goes on."""
        ...

    def status(self) -> list[NodeStatus]:
        """Every node's state and health now, with its reachable ports (`resilience status`, steady state)."""
        ...

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        """Block until the node's service health checks pass; the seconds it took. Raises
        waits.HealthTimeout (or NodeExited) naming the node and the last reason; None: the service's
        own health_timeout."""
        ...

    def started_at(self, node: str) -> str:
        """When the node's current process started: a token that changes with every start (a restart,
        a supervisor's restart after a crash)."""
        ...

    def exited_at(self, node: str) -> float | None:
        """When the node's process last exited, in wall-clock seconds since the epoch, where the backend
        records it (Docker's State.FinishedAt); None while it runs or where nothing records it. A failover
        uses it to say when the old primary stopped acknowledging, which an API call's return only bounds."""
        ...

    def restart_policy(self, node: str) -> str:
        """The supervisor's policy for the node in the topology's words (`always`, `on-failure:3`, `no`)."""
        ...

    def restart_count(self, node: str) -> int:
        """How often the supervisor restarted the node since it was last started by hand."""
        ...

    def image(self, node: str) -> str:
        """What the node runs, as an identifier that differs between versions (Docker: the image id).
        (Named by issue 10; rolling-upgrade compares it today.)"""
        ...

    # -- addresses ----------------------------------------------------------------------------------
    def address(self, node: str) -> str:
        """The address other nodes dial it at, inside the run's network; never dialled from the harness.
        Raises KeyError when the node is not attached to the network."""
        ...

    def published(self, node: str, port: int) -> tuple[str, int] | None:
        """Where the harness reaches the node's `port`, or None when it is not reachable from here."""
        ...

    def endpoint(self, node: str, port: int) -> tuple[str, int]:
        """As `published`, raising BackendError when the port is not reachable from here. Clients of the
        nodes' own APIs go through it: Postgres, Redis, Toxiproxy's API and HAProxy's runtime API (the
        lb's TCP stats socket), so that no fault needs a second transport."""
        ...

    def url(self, node: str, port: int, path: str = "") -> str:
        """`http://HOST:PORT{path}` of `endpoint`."""
        ...

    # -- processes ----------------------------------------------------------------------------------
    def signal(self, node: str, signal: str = "SIGKILL") -> None:
        """Send a signal to the node's main process as its operator would. (Named by issue 10.)"""
        ...

    def kill(self, node: str) -> None:
        """SIGKILL the node as its operator: it stays down, whatever its restart policy, until started."""
        ...

    def crash(self, node: str) -> None:
        """SIGKILL the node's processes behind its supervisor's back, so that its restart policy acts as
        after a real crash. Raises BackendError when that cannot be done from here."""
        ...

    def stop(self, node: str, timeout: int = 10) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; it stays down until started."""
        ...

    def start(self, node: str) -> None:
        """Start a stopped node (does not wait for its health)."""
        ...

    def restart(self, node: str, timeout: int = 10) -> None:
        """`stop` then `start` in one go."""
        ...

    def pause(self, node: str) -> None:
        """Freeze every process of the node (SIGSTOP-like: connections stay open, nothing answers)."""
        ...

    def unpause(self, node: str) -> None:
        """Thaw a frozen node; does nothing to one that is not frozen."""
        ...

    # -- inside a node -------------------------------------------------------------------------------
    def exec(self, node: str, cmd: Sequence[str], user: str | None = None) -> tuple[int, str]:
        """Run a command inside the node; its exit code and combined output (126 when it cannot start)."""
        ...

    def exec_ok(self, node: str, cmd: Sequence[str], user: str | None = None) -> str:
        """As `exec`, raising BackendError with the tail of its output unless it exits 0."""
        ...

    def put_file(self, node: str, path: str, content: str | bytes, mode: int = 0o644) -> None:
        """Write a file inside the node (its directories are made)."""
        ...

    def logs(self, node: str, tail: int | None = None, since: float | None = None, timestamps: bool = False) -> str:
        """The node's output: the last `tail` lines, or those since epoch seconds `since`; with
        `timestamps`, each line prefixed by an RFC 3339 time. "" for a node that is gone."""
        ...

    # -- network ------------------------------------------------------------------------------------
    def iptables(self, node: str, args: Sequence[str]) -> str:
        """Run `iptables ARGS` in the node's network namespace; its output. Faults only add and delete
        rules commented `resilience:<run id>:<fault id>` (faults/netfilter.py). Raises NetfilterError."""
        ...

    def disconnect(self, node: str) -> None:
        """Detach the node from the run's network (isolate's `disconnect` method)."""
        ...

    def connect(self, node: str) -> None:
        """Re-attach a detached node, under its node and service names; does nothing if attached."""
        ...

    def connected_nodes(self) -> set[str]:
        """The nodes attached to the run's network now (cleanup finds detached ones by it)."""
        ...


class RunFinder(Protocol):
    """What finds a run again by its id: all that cleanup (faults/registry.py) needs of a backend's lifecycle."""

    def attach(self, run_id: str | None = None) -> Backend:
        """The run named (None: the caller's newest); raises BackendError when there is none."""
        ...
