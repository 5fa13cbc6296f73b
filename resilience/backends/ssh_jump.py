"""ProxyJump for paramiko: the ssh_config handed to testinfra, with a host's ProxyJump turned into the
ProxyCommand that OpenSSH itself defines it as (`ssh -W %h:%p JUMP`, earlier hops through `-J`).

paramiko, and so testinfra's paramiko backend, knows ProxyCommand but not ProxyJump, the way most users
write jump hosts today: without this, a bastion in the user's ssh_config would be silently ignored and the
host dialled directly.
"""

from __future__ import annotations

import os
import shlex
import socket
import tempfile
from pathlib import Path

import paramiko

from resilience.backends.labels import owner_alive


def _hop_argv(hop: str) -> list[str]:
    """`[user@]host[:port]` as the arguments that make `ssh` dial it."""
    user, _, rest = hop.rpartition("@")
    host, port = rest, ""
    if rest.startswith("["):  # [v6-address]:port
        host, _, tail = rest[1:].partition("]")
        port = tail.removeprefix(":")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    return [*(["-p", port] if port else []), f"{user}@{host}" if user else host]


def proxy_command(config_path: str, jump: str) -> str:
    """The ProxyCommand equivalent to `ProxyJump jump` (comma-separated hops) under the ssh_config at path."""
    hops = [hop.strip() for hop in jump.split(",") if hop.strip()]
    argv = ["ssh", "-F", config_path]
    if len(hops) > 1:
        argv += ["-J", ",".join(hops[:-1])]
    argv += ["-W", "%h:%p", *_hop_argv(hops[-1])]
    return shlex.join(argv)


def default_config() -> str | None:
    path = Path("~/.ssh/config").expanduser()
    return str(path) if path.is_file() else None


PREFIX = ".resilience-jump-"


def _own_prefix() -> str:
    # The writer's host and pid in the name, so that a later harness can tell a copy whose writer was
    # SIGKILLed (close() never ran) from one another live harness is using, even in a shared home directory.
    return f"{PREFIX}{socket.gethostname()}-{os.getpid()}-"


def forget_abandoned_copies(directory: Path) -> list[Path]:
    """Remove the copies in `directory` written on this host by a harness that is no longer running."""
    removed: list[Path] = []
    try:
        candidates = list(directory.glob(f"{PREFIX}*.config"))
    except OSError:
        return removed
    for path in candidates:
        # HOST-PID-RANDOM, read from the right: a host name may hold dashes, mkstemp's random part never does.
        host, _, rest = path.name[len(PREFIX) : -len(".config")].rpartition("-")
        host, _, pid_text = host.rpartition("-")
        if host != socket.gethostname() or not pid_text.isdigit() or not rest or owner_alive(f"{host}:{pid_text}"):
            continue
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


class JumpConfig:
    """The ssh_config to give testinfra for one host: the user's own, or, when it names a ProxyJump for that
    host and no ProxyCommand, a copy with the equivalent ProxyCommand first (first value wins, as in OpenSSH),
    written beside the original so that its relative Includes still resolve. `close()` removes the copy."""

    def __init__(self, alias: str, config_path: str | None) -> None:
        self.path = config_path
        self._written: str | None = None
        source = config_path or default_config()
        if source is None:
            return
        entry = paramiko.SSHConfig.from_path(source).lookup(alias)
        jump = str(entry.get("proxyjump", "") or "")
        if not jump or jump.lower() == "none" or "proxycommand" in entry:
            return
        block = f"Host {alias}\n    ProxyCommand {proxy_command(source, jump)}\n\n"
        text = block + Path(source).read_text()
        self._written = self._write(text, Path(source).parent)
        self.path = self._written

    @staticmethod
    def _write(text: str, beside: Path) -> str:
        directories = (beside, Path(tempfile.gettempdir()))
        for directory in directories:
            forget_abandoned_copies(directory)
        for directory in directories:
            try:
                fd, name = tempfile.mkstemp(prefix=_own_prefix(), suffix=".config", dir=directory)
            except OSError:
                continue
            with os.fdopen(fd, "w") as file:
                file.write(text)
            return name
        raise OSError(f"cannot write an ssh_config for ProxyJump beside {beside} nor in the temporary directory")

    @property
    def translated(self) -> bool:
        return self._written is not None

    def close(self) -> None:
        if self._written is not None:
            Path(self._written).unlink(missing_ok=True)
            self._written = None
