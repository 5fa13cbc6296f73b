"""lb-cut through HAProxy's runtime API: a server in maint gets no traffic while its peers take it all;
a whole tier in maint answers 503 (HTTP) or refuses (TCP); recovery restores the servers, and a standby
behind a role check never comes back as UP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from resilience.backends.docker import DockerBackend, DockerRun
from resilience.faults import FaultError, LbCutFault, Nemesis
from resilience.faults.base import wait_for
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.leftovers import find_leftovers
from resilience.history import History
from resilience.topology import load_topology

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app_run() -> Iterator[DockerRun]:
    """Infra plus two web and two courier nodes behind lb-1 (about 30 s to come up)."""
    backend = DockerBackend()
    topology = load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").select(["infra", "web", "courier"])
    run = backend.up(topology, log=lambda _m: None)
    try:
        # HAProxy started before the app nodes existed: it takes them in once their names resolve.
        api = HaproxyRuntime(run, "lb-1")
        wait_for("lb-1 seeing every web and courier node UP", lambda: _all_up(api, ("web", "courier")), 60)
        yield run
    finally:
        backend.down(run.run_id, log=lambda _m: None)


def _all_up(api: HaproxyRuntime, backends: tuple[str, ...]) -> bool:
    return all(server.up for backend in backends for server in api.servers_of(backend))


def _nemesis(run: DockerRun, state_dir: Path) -> Nemesis:
    from resilience.faults.registry import Registry

    return Nemesis(run, History(None, run_id=run.run_id), Registry(run.run_id, state_dir))


def _sessions(run: DockerRun, backend: str) -> dict[str, int]:
    """Total sessions per server of a backend, from HAProxy's CSV stats (field stot)."""
    csv = HaproxyRuntime(run, "lb-1").command("show stat")
    rows = [line.split(",") for line in csv.splitlines() if line.startswith(f"{backend},")]
    return {row[1]: int(row[7] or 0) for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def _statuses(run: DockerRun, count: int) -> list[int]:
    url = run.url("lb-1", 80, "/c/")
    with httpx.Client(timeout=5) as client:
        return [client.get(url).status_code for _ in range(count)]


def test_one_server_cut_sends_everything_to_its_peer(app_run: DockerRun, tmp_path: Path) -> None:
    nemesis = _nemesis(app_run, tmp_path)
    before = _sessions(app_run, "courier")
    with nemesis.applied(LbCutFault(backend="courier", servers=["courier-1"])) as facts:
        assert facts["maint"] == ["courier-1"] and facts["was_up"] == ["courier-1"]
        assert 503 not in _statuses(app_run, 20)  # courier-2 answers every request
        during = _sessions(app_run, "courier")
        assert during["courier-1"] == before["courier-1"]
        assert during["courier-2"] >= before["courier-2"] + 20
        assert [str(x) for x in find_leftovers(app_run)] == ["lb-1: maint courier/courier-1"]
    servers = {s.server: s for s in HaproxyRuntime(app_run, "lb-1").servers_of("courier")}
    assert not servers["courier-1"].in_maint
    assert find_leftovers(app_run) == []


def test_whole_tier_cut_answers_503(app_run: DockerRun, tmp_path: Path) -> None:
    nemesis = _nemesis(app_run, tmp_path)
    with nemesis.applied(LbCutFault(backend="courier")) as facts:
        assert sorted(facts["maint"]) == ["courier-1", "courier-2"]
        assert set(_statuses(app_run, 5)) == {503}
    assert 503 not in _statuses(app_run, 10)
    assert find_leftovers(app_run) == []


def test_cut_of_the_postgres_tier_and_no_standby_after(app_run: DockerRun, tmp_path: Path) -> None:
    nemesis = _nemesis(app_run, tmp_path)
    host, port = app_run.endpoint("lb-1", 5432)
    dsn = f"postgres://temba:temba@{host}:{port}/temba"
    with nemesis.applied(LbCutFault(backend="postgres")) as facts:
        assert len(facts["was_up"]) == 1  # only the primary passes the /primary check
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2).close()
    # Right after recovery: the standby is not taken back as UP, even for one check interval.
    states = {s.server: s.up for s in HaproxyRuntime(app_run, "lb-1").servers_of("postgres")}
    assert sorted(states.values()) == [False, True]
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    assert find_leftovers(app_run) == []


def test_unknown_backend_or_server_is_a_clear_error(app_run: DockerRun, tmp_path: Path) -> None:
    nemesis = _nemesis(app_run, tmp_path)
    with pytest.raises(FaultError, match=r"no servers in backend 'couriers'; backends with servers: .*courier"):
        nemesis.inject(LbCutFault(backend="couriers"))
    fault = LbCutFault(backend="courier", servers=["courier-9"])
    with pytest.raises(FaultError, match="backend courier has no server courier-9; it has courier-1, courier-2"):
        nemesis.inject(fault)
    nemesis.recover(fault)
    assert find_leftovers(app_run) == []
