"""Composable health waits, in the manner of testcontainers' wait strategies.

A strategy answers one question about one node right now (`probe`); `wait_until_healthy` repeats a list
of them until all pass or the deadline expires, and then fails naming the node and the last reason.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx


class NodeAccess(Protocol):
    """What a wait needs from a backend's run."""

    def published(self, node: str, port: int) -> tuple[str, int] | None: ...

    def exec(self, node: str, cmd: Sequence[str], user: str | None = None) -> tuple[int, str]: ...

    def logs(self, node: str, tail: int | None = None) -> str: ...

    def is_running(self, node: str) -> bool: ...


class HealthTimeout(RuntimeError):
    def __init__(self, node: str, reason: str, seconds: float) -> None:
        super().__init__(f"{node} did not become healthy within {seconds:.0f} s: {reason}")
        self.node = node
        self.reason = reason


class NodeExited(HealthTimeout):
    def __init__(self, node: str, reason: str) -> None:
        RuntimeError.__init__(self, f"{node} exited before it became healthy: {reason}")
        self.node = node
        self.reason = reason


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str


class WaitStrategy(Protocol):
    def probe(self, access: NodeAccess, node: str) -> Probe: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class PortOpen:
    port: int

    def describe(self) -> str:
        return f"port {self.port}"

    def probe(self, access: NodeAccess, node: str) -> Probe:
        # docker-proxy accepts on a published port even when nothing listens inside the node, so ask
        # from inside first; only an image without netcat falls back to the host side.
        rc, _ = access.exec(node, ["nc", "-z", "127.0.0.1", str(self.port)])
        if rc == 0:
            return Probe(True, "")
        if rc != 127:
            return Probe(False, f"port {self.port} not listening inside the node")
        address = access.published(node, self.port)
        if address is None:
            return Probe(False, f"port {self.port}: no netcat in the node and the port is not published")
        try:
            with socket.create_connection(address, timeout=1.0):
                return Probe(True, "")
        except OSError as exc:
            return Probe(False, f"port {self.port} not accepting ({exc.strerror or exc})")


@dataclass(frozen=True)
class HttpOk:
    port: int
    path: str = "/"
    status: int = 200
    contains: str | None = None

    def describe(self) -> str:
        return f"HTTP GET :{self.port}{self.path} → {self.status}"

    def probe(self, access: NodeAccess, node: str) -> Probe:
        address = access.published(node, self.port)
        if address is None:
            rc, out = access.exec(
                node, ["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", f"http://127.0.0.1:{self.port}{self.path}"]
            )
            if rc != 0:
                return Probe(False, f"GET :{self.port}{self.path} failed inside the node")
            body, _, code = out.rpartition("\n")
            status, text = int(code or 0), body
        else:
            try:
                response = httpx.get(f"http://{address[0]}:{address[1]}{self.path}", timeout=2.0)
            except httpx.HTTPError as exc:
                return Probe(False, f"GET :{self.port}{self.path}: {type(exc).__name__}")
            status, text = response.status_code, response.text
        if status != self.status:
            return Probe(False, f"GET :{self.port}{self.path} answered {status}, expected {self.status}")
        if self.contains and self.contains not in text:
            return Probe(False, f"GET :{self.port}{self.path} body lacks {self.contains!r}")
        return Probe(True, "")


@dataclass(frozen=True)
class CommandSucceeds:
    command: tuple[str, ...]

    def describe(self) -> str:
        return f"command {' '.join(self.command)}"

    def probe(self, access: NodeAccess, node: str) -> Probe:
        rc, out = access.exec(node, list(self.command))
        if rc != 0:
            last = out.strip().splitlines()[-1:] or [""]
            return Probe(False, f"`{' '.join(self.command)}` exited {rc}: {last[0][:200]}")
        return Probe(True, "")


@dataclass(frozen=True)
class LogLine:
    pattern: str

    def describe(self) -> str:
        return f"log line /{self.pattern}/"

    def probe(self, access: NodeAccess, node: str) -> Probe:
        if re.search(self.pattern, access.logs(node)):
            return Probe(True, "")
        return Probe(False, f"no log line matches /{self.pattern}/ yet")


def wait_until_healthy(
    access: NodeAccess,
    node: str,
    strategies: Sequence[WaitStrategy],
    timeout: float,
    interval: float = 0.2,
) -> float:
    """Block until every strategy passes for `node`; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    reason = "not probed yet"
    while True:
        if not access.is_running(node):
            tail = access.logs(node, tail=8).strip().replace("\n", " | ")
            raise NodeExited(node, f"the container exited; last log lines: {tail[-600:]}")
        failing = next((p for p in (s.probe(access, node) for s in strategies) if not p.ok), None)
        if failing is None:
            return time.monotonic() - started
        reason = failing.reason
        if time.monotonic() >= deadline:
            raise HealthTimeout(node, reason, timeout)
        time.sleep(interval)
