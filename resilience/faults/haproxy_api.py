"""A small client of HAProxy's runtime API (the stats socket on a load-balancer node's port 9999)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.faults.base import FaultError

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun

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


class HaproxyRuntime:
    def __init__(self, run: DockerRun, node: str, timeout: float = 5.0) -> None:
        self.node = node
        self.address = run.endpoint(node, RUNTIME_PORT)
        self.timeout = timeout

    def command(self, line: str) -> str:
        """One command per connection (the socket's non-interactive mode); the whole answer."""
        try:
            with socket.create_connection(self.address, timeout=self.timeout) as conn:
                conn.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise FaultError(f"{self.node}: HAProxy runtime API `{line}` failed: {exc}") from None
        return b"".join(chunks).decode(errors="replace")

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
