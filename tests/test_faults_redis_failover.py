"""redis-failover on real Redis + Sentinel behind HAProxy: after the fault lb-1:6379 is the promoted
replica and takes writes; after recovery the old master is its replica (Sentinel did it) and HAProxy
routes only to the master."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from resilience.backends.docker import DockerRun
from resilience.faults import Nemesis, RedisFailoverFault
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.leftovers import find_leftovers
from resilience.faults.redis_failover import agreed_master, replication
from resilience.history import History

pytestmark = pytest.mark.docker


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def _redis(run: DockerRun, node: str) -> redis.Redis:
    host, port = run.endpoint(node, 6379)
    return redis.Redis(host=host, port=port, db=15, socket_timeout=5, decode_responses=True)


def test_failover_moves_the_stable_address_and_the_old_master_rejoins(infra_run: DockerRun, nemesis: Nemesis) -> None:
    old = agreed_master(infra_run, "rapidpro")
    fault = RedisFailoverFault()
    facts = nemesis.inject(fault)
    try:
        new = facts["new_master"]
        assert facts["old_master"] == old and new != old
        assert infra_run.state(old) == "exited"
        through_lb = _redis(infra_run, "lb-1")
        assert through_lb.info("replication")["role"] == "master"
        key = f"fault-probe-{uuid.uuid4().hex}"
        through_lb.set(key, "1")
        assert _redis(infra_run, new).get(key) == "1"  # the write went to the new master
    finally:
        recovered = nemesis.recover(fault)
    assert recovered["rejoined_as"] == "replica"
    info = replication(infra_run, old)
    assert info["role"] == "slave" and info["master_host"] == new and info["master_link_status"] == "up"
    assert _redis(infra_run, old).get(key) == "1"  # replicated from the new master
    servers = {s.server: s for s in HaproxyRuntime(infra_run, "lb-1").servers_of("redis")}
    assert servers[new].up and not servers[old].up and not servers[old].in_maint
    assert find_leftovers(infra_run) == []
    assert nemesis.registry.entries() == {}
