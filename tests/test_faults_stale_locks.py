"""Stale PostgreSQL locks: a killed node's leftover socket lock can name a PID that is alive again in the
container's next life (a postgres-owned process reusing it made the server refuse to start, as seen in a
failover). pg-node removes such files at every start, so a plain start brings the node back."""

from __future__ import annotations

import io
import tarfile

import pytest

from resilience.backends.docker import DockerRun
from resilience.faults.base import bring_back, wait_for
from resilience.faults.pg_failover import current_primary, streams_from

pytestmark = pytest.mark.docker
LOCK_DIR, LOCK_NAME = "/var/run/postgresql", ".s.PGSQL.5432.lock"


def _members(run: DockerRun, node: str, path: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    stream, _ = run.container(node).get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        return [(m, (archive.extractfile(m).read() if m.isfile() else b"")) for m in archive.getmembers()]  # type: ignore[union-attr]


def _plant_lock(run: DockerRun, node: str, pid: int) -> tuple[int, int]:
    owner = _members(run, node, LOCK_DIR)[0][0]  # the directory, owned by postgres like the server's lock
    content = f"{pid}\n/var/lib/postgresql/data\n0\n5432\n/var/run/postgresql\n".encode()
    info = tarfile.TarInfo(LOCK_NAME)
    info.size, info.mode, info.uid, info.gid = len(content), 0o600, owner.uid, owner.gid
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(info, io.BytesIO(content))
    assert run.container(node).put_archive(LOCK_DIR, buffer.getvalue())
    return owner.uid, owner.gid


def test_a_leftover_lock_does_not_keep_the_node_down(infra_run: DockerRun) -> None:
    primary = current_primary(infra_run)
    standby = next(n for n in infra_run.nodes_of("postgres") if n != primary)
    infra_run.kill(standby)
    try:
        uid, gid = _plant_lock(infra_run, standby, 51)
        (member, content), *_ = _members(infra_run, standby, f"{LOCK_DIR}/{LOCK_NAME}")
        assert content.decode().split("\n")[0] == "51"
        assert (member.uid, member.gid, member.mode & 0o777) == (uid, gid, 0o600)
        bring_back(infra_run, standby, wait_healthy=True, health_timeout=120)
        wait_for(f"{standby} streaming", lambda: streams_from(infra_run, standby, primary), 60, 0.5)
    finally:
        if infra_run.state(standby) != "running":
            bring_back(infra_run, standby, wait_healthy=True, health_timeout=120)
