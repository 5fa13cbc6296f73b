"""Neutralise PostgreSQL lock files that a killed node left behind, before it is started again.

A container keeps its filesystem across kill and start, and its process ids start again from 1, so
`/var/run/postgresql/.s.PGSQL.5432.lock` (and `postmaster.pid` in a kept data directory) can name a
PID that is alive again in the new life (a postgres-owned one, e.g. a pg_basebackup child not yet
reaped): the server then refuses to start ("lock file already exists"), as happened here after a
failover. On a real host /var/run is emptied at boot.

This is an adapter on the fault side: harness/config/bin/pg-node should remove these files itself at
start (it runs before any server in its container); until it does, recovery rewrites their PID line
with one no process can have, which PostgreSQL then treats as stale and replaces. The node must be
stopped: Docker's archive API works on a stopped container, docker exec does not.
"""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

import docker.errors

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun

LOCK_FILES = ("/var/run/postgresql/.s.PGSQL.5432.lock", "/var/lib/postgresql/data/postmaster.pid")
NO_SUCH_PID = 2147483647  # above any pid_max: kill(pid, 0) answers ESRCH, so the lock counts as stale


def clear_stale_postgres_locks(run: DockerRun, node: str) -> list[str]:
    """Rewrite the PID of each lock file present in a stopped PostgreSQL node; return the paths changed."""
    if run.topology.services[run.topology.node(node).service].role.value != "postgres":
        return []
    container = run.container(node)
    changed = []
    for path in LOCK_FILES:
        try:
            stream, _stat = container.get_archive(path)
        except docker.errors.NotFound:
            continue
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.getmembers()[0]
            extracted = archive.extractfile(member)
            lines = (extracted.read() if extracted else b"").split(b"\n")
        lines[0] = str(NO_SUCH_PID).encode()
        content = b"\n".join(lines)
        replacement = tarfile.TarInfo(path.rsplit("/", 1)[1])
        replacement.size, replacement.mode = len(content), member.mode
        replacement.uid, replacement.gid, replacement.mtime = member.uid, member.gid, member.mtime
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.addfile(replacement, io.BytesIO(content))
        container.put_archive(path.rsplit("/", 1)[0], buffer.getvalue())
        changed.append(path)
    return changed
