"""toxic on the run's Toxiproxy: added latency is measurable through the proxy, reset_peer breaks
connections, recovery deletes the toxic (named rs_<fault id>) and nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from resilience.backends.docker import DockerRun
from resilience.faults import FaultError, FaultSpecError, Nemesis, ToxicFault
from resilience.faults.leftovers import find_leftovers
from resilience.history import History

pytestmark = pytest.mark.docker


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def _through_proxy(run: DockerRun) -> redis.Redis:
    host, port = run.endpoint("toxiproxy-1", 16379)
    return redis.Redis(host=host, port=port, db=15, socket_timeout=5)


def _ping_seconds(client: redis.Redis, count: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(count):
        client.ping()
    return (time.perf_counter() - started) / count


def _toxic_names(run: DockerRun, proxy: str) -> list[str]:
    return [t["name"] for t in httpx.get(run.url("toxiproxy-1", 8474, f"/proxies/{proxy}/toxics")).json()]


def test_latency_is_measured_through_the_proxy(infra_run: DockerRun, nemesis: Nemesis) -> None:
    client = _through_proxy(infra_run)
    baseline = _ping_seconds(client)
    fault = ToxicFault(proxy="redis", type="latency", attributes={"latency": 300})
    with nemesis.applied(fault) as facts:
        assert facts["node"] == "toxiproxy-1"
        assert _toxic_names(infra_run, "redis") == [f"rs_{fault.id}"]
        delayed = _ping_seconds(client)
        assert delayed >= baseline + 0.28, (baseline, delayed)
    assert _ping_seconds(client) < 0.1
    assert _toxic_names(infra_run, "redis") == []
    assert find_leftovers(infra_run) == []


def test_reset_peer_breaks_connections(infra_run: DockerRun, nemesis: Nemesis) -> None:
    reset = ToxicFault(proxy="redis", type="reset_peer", attributes={"timeout": 0})
    with nemesis.applied(reset), pytest.raises(redis.ConnectionError):
        _through_proxy(infra_run).ping()
    assert _through_proxy(infra_run).ping()


def test_recovery_deletes_only_its_own_toxic(infra_run: DockerRun, nemesis: Nemesis) -> None:
    api = infra_run.url("toxiproxy-1", 8474, "/proxies/redis/toxics")
    foreign = {"name": "someone_elses", "type": "latency", "attributes": {"latency": 1}}
    assert httpx.post(api, json=foreign).status_code == 200
    try:
        fault = ToxicFault(proxy="redis", type="bandwidth", attributes={"rate": 1000})
        nemesis.inject(fault)
        nemesis.recover(fault)
        assert _toxic_names(infra_run, "redis") == ["someone_elses"]
        assert find_leftovers(infra_run) == []  # only rs_* toxics are ours
    finally:
        httpx.delete(f"{api}/someone_elses")


def test_unknown_proxy_is_a_clear_error(infra_run: DockerRun, nemesis: Nemesis) -> None:
    fault = ToxicFault(proxy="mysql", type="latency", attributes={"latency": 10})
    with pytest.raises(FaultError, match=r"no proxy 'mysql'; proxies: .*postgres"):
        nemesis.inject(fault)
    nemesis.recover(fault)  # recovering a toxic that never existed is fine
    assert nemesis.registry.entries() == {}


def test_bad_type_is_refused() -> None:
    with pytest.raises(FaultSpecError, match="type must be one of latency"):
        ToxicFault(proxy="redis", type="netem")
