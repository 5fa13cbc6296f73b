"""The labels that mark everything a run creates, so a reaper can find it and nothing else is touched."""

from __future__ import annotations

import os
import secrets
import socket
import time

RUN = "resilience.run"
NODE = "resilience.node"
SERVICE = "resilience.service"
ROLE = "resilience.role"
OWNER = "resilience.owner"  # "<hostname>:<pid>" of the process that owns the run
KEEP = "resilience.keep"  # "true": kept on purpose (resilience up, --keep-cluster); not an orphan
TOPOLOGY = "resilience.topology"  # the topology file the run came from
CREATED = "resilience.created"  # epoch seconds


def new_run_id() -> str:
    return time.strftime("%m%d%H%M%S") + secrets.token_hex(2)


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by an owner label still runs on this host."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
