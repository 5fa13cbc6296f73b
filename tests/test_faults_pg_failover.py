"""pg-failover on the real PostgreSQL pair behind HAProxy: after the fault a write through lb-1:5432
lands on the promoted standby; after recovery the old primary streams from it and has the write.
Failing over by kill and back by partition leaves the original roles in place for other tests."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import FaultError, Nemesis, PgFailoverFault
from resilience.faults.leftovers import find_leftovers
from resilience.faults.pg_failover import current_primary, streams_from
from resilience.history import History

pytestmark = pytest.mark.docker


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def _connect(run: DockerRun, node: str) -> psycopg.Connection:
    host, port = run.endpoint(node, 5432)
    return psycopg.connect(f"postgres://temba:temba@{host}:{port}/temba", connect_timeout=5, autocommit=True)


def _write_through_lb(run: DockerRun) -> str:
    marker = uuid.uuid4().hex
    with _connect(run, "lb-1") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fault_probe (marker text)")
        conn.execute("INSERT INTO fault_probe VALUES (%s)", (marker,))
    return marker


def _has(run: DockerRun, node: str, marker: str) -> bool:
    with _connect(run, node) as conn:
        return conn.execute("SELECT 1 FROM fault_probe WHERE marker = %s", (marker,)).fetchone() is not None


def _in_recovery(run: DockerRun, node: str) -> bool:
    with _connect(run, node) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def test_failover_and_back(infra_run: DockerRun, nemesis: Nemesis) -> None:
    first = current_primary(infra_run)
    # By kill: the stable address leads to the promoted standby, which takes writes.
    fault = PgFailoverFault(method="kill")
    facts = nemesis.inject(fault)
    try:
        second = facts["new_primary"]
        assert facts["old_primary"] == first and second != first
        assert infra_run.state(first) == "exited"
        # It took hold when the container died, which Docker records, inside the inject.
        died = infra_run.exited_at(first)
        assert died is not None and abs(time.time() - died) < 120
        assert 0 <= facts["took_hold_after_s"] < 30
        marker = _write_through_lb(infra_run)
        assert _has(infra_run, second, marker)
        assert not _in_recovery(infra_run, second)
    finally:
        recovered = nemesis.recover(fault)
    assert recovered["rejoined_as"] == "standby"
    assert streams_from(infra_run, first, second)
    assert _in_recovery(infra_run, first)
    assert _has(infra_run, first, marker)  # re-cloned from the new primary: it has the write

    # Back by partition: the old primary keeps running, cut off, until recovery kills and re-clones it.
    back = PgFailoverFault(method="partition")
    facts = nemesis.inject(back)
    try:
        assert (facts["old_primary"], facts["new_primary"]) == (second, first)
        assert infra_run.state(second) == "running"
        marker = _write_through_lb(infra_run)
        assert _has(infra_run, first, marker)
    finally:
        nemesis.recover(back)
    assert streams_from(infra_run, second, first)
    assert current_primary(infra_run) == first
    assert find_leftovers(infra_run) == []
    assert nemesis.registry.entries() == {}
    assert [(o.f, o.type) for o in nemesis.history.recorded().operations] == [
        ("inject", "ok"),
        ("recover", "ok"),
        ("inject", "ok"),
        ("recover", "ok"),
    ]


def test_refuses_without_a_streaming_standby(infra_run: DockerRun, nemesis: Nemesis) -> None:
    primary = current_primary(infra_run)
    standby = next(n for n in infra_run.nodes_of("postgres") if n != primary)
    infra_run.stop(standby, timeout=5)
    try:
        with pytest.raises(FaultError, match="refusing to fail over: a standby streaming from"):
            nemesis.inject(PgFailoverFault(standby_wait=1))
        assert infra_run.state(primary) == "running"  # nothing was done
        assert nemesis.registry.entries() == {}
        assert [(o.f, o.type) for o in nemesis.history.recorded().operations] == [("inject", "fail")]
    finally:
        infra_run.start(standby)
        infra_run.wait_healthy(standby)
