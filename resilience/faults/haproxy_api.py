"""A small client of HAProxy's runtime API on a load-balancer node.

Two transports carry one command line and its answer: the stats socket on the node's TCP port 9999,
reached through the run's endpoint (the Docker topologies), or, when a hosts file declares the lb's
`haproxy: {socket: PATH}`, that UNIX socket on the lb's host through socat (or `nc -U`) over SSH. Every
user of the runtime API (lb-cut, the failovers' guards, cleanup) goes through `HaproxyRuntime`, which
picks the transport from the run.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from resilience.backends import hosts_commands
from resilience.backends.base import BackendError
from resilience.backends.hosts import FaultsNotAllowed
from resilience.backends.hosts_data import HostCommands, host_commands
from resilience.faults.base import FaultError

if TYPE_CHECKING:
    from resilience.backends.base import Backend

RUNTIME_PORT = 9999
FORCED_MAINT = 0x01  # srv_admin_state bit set by `set server ... state maint`
SERVER_STATES = ("ready", "drain", "maint")


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    operational: int  # srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping
    admin: int  # srv_admin_state bits

    @property
    def in_maint(self) -> bool:
        """Put in maintenance by hand (not by a failed DNS resolution, which HAProxy also calls maint)."""
        return bool(self.admin & FORCED_MAINT)

    @property
    def up(self) -> bool:
        return self.operational == 2 and not self.admin


# Runtime API commands that change what HAProxy does (on hosts they need `allow_faults: true`).
_CHANGES = re.compile(r"^\s*(set|enable|disable|shutdown|add|del|clear|commit|new|prepare|update)\b")


class RuntimeTransport(Protocol):
    def send(self, line: str) -> str:
        """One command line (or several joined by `;`); HAProxy's whole answer. Raises FaultError."""
        ...

    def describe(self) -> str: ...


class TcpSocket:
    """The stats socket bound to a TCP port, reached through the run's endpoint."""

    def __init__(self, node: str, address: tuple[str, int], timeout: float) -> None:
        self.node = node
        self.address = address
        self.timeout = timeout

    def describe(self) -> str:
        return f"TCP {self.address[0]}:{self.address[1]}"

    def send(self, line: str) -> str:
        """One command per connection (the socket's non-interactive mode)."""
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as conn:
                conn.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise FaultError(f"{self.node}: HAProxy runtime API `{line}` failed: {exc}") from None
        return b"".join(chunks).decode(errors="replace")


class HostUnixSocket:
    """The UNIX socket a hosts file declares, on the lb's host, through socat or `nc -U` over SSH."""

    def __init__(self, run: HostCommands, node: str, path: str, timeout: float) -> None:
        self.run = run
        self.node = node
        self.path = path
        self.timeout = timeout

    def describe(self) -> str:
        return f"{self.path} on host {self.run.hosts.node(self.node).host}"

    def send(self, line: str) -> str:
        what = f"HAProxy runtime API `{line}` through {self.path}"
        try:
            return self.run.run_for(
                self.node,
                hosts_commands.haproxy_runtime(self.path, line),
                what,
                disturbs=bool(_CHANGES.match(line)),
                timeout=max(self.timeout, 10.0),
            )
        except FaultsNotAllowed:
            raise
        except BackendError as exc:
            raise FaultError(str(exc)) from None


def runtime_transport(run: Backend, node: str, timeout: float = 5.0) -> RuntimeTransport:
    """The lb's declared socket on a hosts run that declares one; the TCP port otherwise."""
    hosts = host_commands(run)
    if hosts is not None:
        service = hosts.hosts.services[hosts.hosts.node(node).service]
        if service.haproxy_socket:
            return HostUnixSocket(hosts, node, service.haproxy_socket, timeout)
    return TcpSocket(node, run.endpoint(node, RUNTIME_PORT), timeout)


class HaproxyRuntime:
    def __init__(self, run: Backend, node: str, timeout: float = 5.0) -> None:
        self.node = node
        self.transport = runtime_transport(run, node, timeout)

    def command(self, line: str) -> str:
        """One command (several joined by `;`); the whole answer."""
        return self.transport.send(line)

    def servers(self) -> list[ServerState]:
        rows = []
        for line in self.command("show servers state").splitlines():
            fields = line.split()
            # "1" (format version) and "# be_id be_name ..." head the answer.
            if len(fields) < 7 or fields[0].startswith("#"):
                continue
            rows.append(ServerState(fields[1], fields[3], int(fields[5]), int(fields[6])))
        return rows

    def servers_of(self, backend: str) -> list[ServerState]:
        rows = self.servers()
        found = [row for row in rows if row.backend == backend]
        if not found:
            backends = sorted({row.backend for row in rows})
            raise FaultError(
                f"{self.node}: HAProxy has no servers in backend {backend!r}; backends with servers: "
                f"{', '.join(backends)}"
            )
        return found

    def make_ready(self, backend: str, server: str, assume_down: bool) -> None:
        """Take a server out of maint. HAProxy 2.6 counts a server leaving maint as UP until a check fails
        (one check interval; for a check that times out, `timeout check` more): for a server known to be
        failing its checks, such as a standby behind a role check, force it down in the same request, so
        that no client is sent to it meanwhile."""
        line = f"set server {backend}/{server} state ready"
        if assume_down:
            line += f"; set server {backend}/{server} health down"
        answer = self.command(line).strip()
        if answer:
            raise FaultError(f"{self.node}: `{line}`: {answer}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        if state not in SERVER_STATES:
            raise ValueError(f"server state must be one of {SERVER_STATES}, got {state!r}")
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise FaultError(f"{self.node}: `set server {backend}/{server} state {state}`: {answer}")
