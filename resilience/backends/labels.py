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
OWNER = "resilience.owner"  # "<hostname>:<pid>" of the process that holds the run (orphan detection)
USER = "resilience.user"  # who owns the run: "<user>@<host>[/<ci>:<job>]" (resilience/ownership.py)
KEEP = "resilience.keep"  # "true": kept on purpose (resilience up, --keep-cluster); not an orphan
TOPOLOGY = "resilience.topology"  # the topology file the run came from
CREATED = "resilience.created"  # epoch seconds
REAPER = "resilience.reaper"  # "true": a reaper container watches the run (resilience/reaper.py)


def new_run_id() -> str:
    return time.strftime("%m%d%H%M%S") + secrets.token_hex(2)


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by an owner label may still run.

    Only a process of this host can be looked up. One of another host (a second CI container sharing
    the engine) is taken as alive: such a run is judged by its reaper's heartbeat alone, never by a
    process table that cannot see its owner."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
