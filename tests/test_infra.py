"""The infra tier on real Docker: replication, Sentinel behind HAProxy, toxics, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from redis.sentinel import Sentinel

from resilience.backends import labels
from resilience.backends.docker import DockerBackend, DockerRun, iter_labelled
from resilience.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.docker


def _pg(run: DockerRun, node: str, port: int = 5432) -> psycopg.Connection:
    host, host_port = run.endpoint(node, port)
    return psycopg.connect(f"postgres://temba:temba@{host}:{host_port}/temba", connect_timeout=5, autocommit=True)


def test_every_infra_node_is_healthy(infra_run: DockerRun) -> None:
    rows = infra_run.status()
    assert {r.node for r in rows} >= {"postgres-1", "postgres-2", "redis-1", "redis-2", "lb-1", "toxiproxy-1"}
    assert [r for r in rows if not r.healthy] == []


def test_inside_the_nodes_with_testinfra(infra_run: DockerRun) -> None:
    """In-node assertions through pytest-testinfra's docker:// backend: processes, sockets, files."""
    import testinfra

    primary = testinfra.get_host(f"docker://{infra_run.container_name('postgres-1')}")
    # The postmaster by its pid file: a filter on comm also lists per-connection backends, which may exit
    # between the listing and the read of their user (seen in CI: `ps -p PID` found nothing).
    postmaster_pid = int(primary.file("/var/lib/postgresql/data/postmaster.pid").content_string.split()[0])
    assert primary.process.get(pid=postmaster_pid).user == "postgres"
    assert primary.socket("tcp://0.0.0.0:5432").is_listening
    assert primary.file("/var/lib/postgresql/data/conf.d/resilience.conf").contains("wal_level = replica")
    standby = testinfra.get_host(f"docker://{infra_run.container_name('postgres-2')}")
    assert standby.file("/var/lib/postgresql/data/standby.signal").exists
    sentinel = testinfra.get_host(f"docker://{infra_run.container_name('sentinel-1')}")
    # Sentinel rewrites its configuration: it must be writable, and it has learned the replica.
    assert sentinel.file("/etc/redis/sentinel.conf").contains("known-replica")
    # Docker's init is PID 1 everywhere, so a SIGKILLed child is reaped, never left a zombie.
    assert "docker-init" in primary.check_output("cat /proc/1/comm") or primary.process.get(pid=1).comm == "docker-init"


def test_a_write_through_the_stable_address_is_readable_on_the_standby(infra_run: DockerRun) -> None:
    marker = uuid.uuid4().hex
    with _pg(infra_run, "lb-1") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS infra_probe (marker text)")
        conn.execute("INSERT INTO infra_probe VALUES (%s)", (marker,))
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with _pg(infra_run, "postgres-2") as standby:
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if standby.execute("SELECT 1 FROM infra_probe WHERE marker = %s", (marker,)).fetchone():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the write never reached the standby")


def test_redis_through_the_stable_address_is_sentinels_master(infra_run: DockerRun) -> None:
    host, port = infra_run.endpoint("sentinel-1", 26379)
    # Sentinel announces hostnames (announce-hostnames yes), so the master is named by its node name.
    master_host, _master_port = Sentinel([(host, port)], socket_timeout=2).discover_master("rapidpro")
    host, port = infra_run.endpoint("lb-1", 6379)
    through_lb = redis.Redis(host=host, port=port, db=15)
    assert through_lb.info("replication")["role"] == "master"
    key = f"probe-{uuid.uuid4().hex}"
    through_lb.set(key, "1")
    # The key written through the load balancer is on the node Sentinel calls master.
    master_node = master_host if isinstance(master_host, str) else master_host.decode()
    host, port = infra_run.endpoint(master_node, 6379)
    assert redis.Redis(host=host, port=port, db=15).get(key) == b"1"


def _redis_ping_seconds(client: redis.Redis, count: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(count):
        client.ping()
    return (time.perf_counter() - started) / count


def test_a_latency_toxic_adds_a_measurable_delay(infra_run: DockerRun) -> None:
    api = infra_run.url("toxiproxy-1", 8474)
    host, port = infra_run.endpoint("toxiproxy-1", 16379)
    client = redis.Redis(host=host, port=port, db=15, socket_timeout=5)
    baseline = _redis_ping_seconds(client)
    response = httpx.post(
        f"{api}/proxies/redis/toxics",
        json={"name": "probe_latency", "type": "latency", "stream": "downstream", "attributes": {"latency": 200}},
    )
    assert response.status_code in (200, 201), response.text
    try:
        delayed = _redis_ping_seconds(client)
    finally:
        httpx.delete(f"{api}/proxies/redis/toxics/probe_latency")
    after = _redis_ping_seconds(client)
    assert delayed >= baseline + 0.18, (baseline, delayed)
    assert after < 0.1, after


TINY = textwrap.dedent(
    """
    version: 1
    name: tiny
    services:
      redis:
        role: redis
        image: resilience-node
        command: [redis-server, /etc/redis/redis.conf]
        ports: [6379]
        health:
          - command: [redis-cli, ping]
    """
)


def test_down_leaves_nothing_with_our_label(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    backend = DockerBackend()
    run = backend.up(load_topology(path), log=lambda _m: None)
    assert list(iter_labelled(backend.client, run.run_id))
    backend.down(run.run_id, log=lambda _m: None)
    assert list(iter_labelled(backend.client, run.run_id)) == []


def test_cleanup_reaps_a_run_whose_owner_died(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    # A separate process brings a run up and dies without taking it down, as a killed pytest would.
    script = (
        "from pathlib import Path; from resilience.backends.docker import DockerBackend; "
        "from resilience.topology import load_topology; "
        f"run = DockerBackend().up(load_topology(Path({str(path)!r})), log=lambda m: None); print(run.run_id)"
    )
    # Without the run's reaper: this test is about `cleanup` finding an orphan left when no reaper runs.
    env = {**os.environ, "RESILIENCE_REAPER": "off"}
    run_id = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    backend = DockerBackend()
    try:
        abandoned = next(r for r in backend.runs() if r.run_id == run_id)
        assert abandoned.orphaned
        assert not labels.owner_alive(abandoned.owner)
        assert run_id in backend.reap_orphans(log=lambda _m: None)
        assert list(iter_labelled(backend.client, run_id)) == []
    finally:
        backend.down(run_id, log=lambda _m: None)
