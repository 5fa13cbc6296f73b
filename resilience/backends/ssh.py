"""One host's SSH connection, through pytest-testinfra's paramiko backend, with a bound on every command.

testinfra gives what users of SSH expect (an ssh_config with its Host blocks, ProxyCommand jump hosts,
identity files, sudo), and `ssh_jump` adds ProxyJump; paramiko keeps one transport per host and opens a
channel per command, so commands to one host may run side by side. Only hosts named in a hosts topology
are ever given to `HostShell`.
"""

from __future__ import annotations

import contextlib
import shlex
import threading
from dataclasses import dataclass
from typing import Any

from resilience.backends.base import BackendError
from resilience.backends.ssh_jump import JumpConfig
from resilience.topology.hosts import Host

# Exit status of coreutils' `timeout` when the command ran out of time (and when it had to be killed).
TIMED_OUT = (124, 137)


class HostUnreachable(BackendError):
    """The host could not be reached or logged in to over SSH; the message names it and why."""


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def hostspec(host: Host) -> str:
    """testinfra's `paramiko://user@address:port`; user and port left out when the ssh_config decides them."""
    address = f"[{host.address}]" if ":" in host.address else host.address
    user = f"{host.ssh.user}@" if host.ssh.user else ""
    port = f":{host.ssh.port}" if host.ssh.port else ""
    return f"paramiko://{user}{address}{port}"


def bounded(command: str, timeout: float) -> str:
    """The command under coreutils' `timeout`, so that a hung command ends on the host rather than holding
    its channel (and the caller) for ever."""
    return f"timeout -k 5 {max(1, round(timeout))} sh -c {shlex.quote(command)}"


class HostShell:
    """Commands on one host (as its SSH user, under sudo when the topology says so)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._testinfra_host: Any = None
        self._jump: JumpConfig | None = None

    def describe(self) -> str:
        return f"host {self.host.name} ({hostspec(self.host).removeprefix('paramiko://')})"

    def _connected(self) -> Any:
        # One transport per host: the first caller connects, the others wait for it rather than opening more.
        with self._lock:
            if self._testinfra_host is None:
                import paramiko
                import testinfra.backend
                import testinfra.host

                settings = self.host.ssh
                kwargs: dict[str, Any] = {"timeout": max(1, round(settings.connect_timeout))}
                if settings.identity_file:
                    kwargs["ssh_identity_file"] = settings.identity_file
                if self._jump is None:
                    self._jump = JumpConfig(self.host.address, settings.ssh_config)
                if self._jump.path:
                    kwargs["ssh_config"] = self._jump.path
                if settings.sudo:
                    kwargs["sudo"] = True
                    if settings.sudo_user:
                        kwargs["sudo_user"] = settings.sudo_user
                # As testinfra.get_host does, without its process-wide cache: a closed or lost connection
                # must not be handed to the next run that names the same host.
                backend = testinfra.backend.get_backend(hostspec(self.host), **kwargs)
                testinfra_host = testinfra.host.Host(backend)
                backend.set_host(testinfra_host)
                try:
                    transport = testinfra_host.backend.client.get_transport()
                except (paramiko.SSHException, OSError, EOFError) as exc:
                    raise HostUnreachable(f"cannot reach {self.describe()} over SSH: {_reason(exc)}") from None
                if transport is not None:
                    transport.set_keepalive(5)  # a host that vanishes is noticed, not waited on for ever
                self._testinfra_host = testinfra_host
            return self._testinfra_host

    def run(self, command: str, timeout: float = 60.0) -> Result:
        """Run a shell command line on the host; raise HostUnreachable when SSH itself fails."""
        import paramiko

        testinfra_host = self._connected()
        try:
            result = testinfra_host.run(bounded(command, timeout))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            with self._lock:
                self._testinfra_host = None  # reconnect next time
            raise HostUnreachable(f"lost {self.describe()} while running `{command[:200]}`: {_reason(exc)}") from None
        return Result(int(result.rc), _text(result.stdout_bytes), _text(result.stderr_bytes))

    def close(self) -> None:
        with self._lock:
            backend = getattr(self._testinfra_host, "backend", None)
            # `client` connects when first read: close only one that exists. Closing a dead transport may
            # raise anything; it is gone either way.
            if backend is not None and "client" in vars(backend):
                with contextlib.suppress(Exception):
                    backend.client.close()
            self._testinfra_host = None
            if self._jump is not None:
                self._jump.close()
                self._jump = None


def _text(data: bytes | str) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Authentication failed" in text or "No authentication methods" in text:
        return f"{text} (check the user and identity_file of this host)"
    return text
