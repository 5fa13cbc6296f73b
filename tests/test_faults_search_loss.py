"""search-loss on the run's OpenSearch-API node: killed or frozen, its API does not answer; recovery
brings it back healthy."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from resilience.backends.docker import DockerRun
from resilience.faults import Nemesis, SearchLossFault
from resilience.faults.leftovers import find_leftovers
from resilience.history import History

pytestmark = pytest.mark.docker


@pytest.fixture
def nemesis(infra_run: DockerRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Nemesis:
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(tmp_path))
    return Nemesis(infra_run, History(None, run_id=infra_run.run_id))


def _answers(run: DockerRun) -> bool:
    # Inside the network: the published port would be answered by docker-proxy even with the node down.
    rc, _ = run.exec("sentinel-1", ["curl", "-sf", "-m", "1", "http://search-1:9200/_cluster/health"])
    return rc == 0


@pytest.mark.parametrize("method", ["kill", "pause"])
def test_search_node_loss(infra_run: DockerRun, nemesis: Nemesis, method: str) -> None:
    assert _answers(infra_run)
    fault = SearchLossFault(method=method)
    with nemesis.applied(fault) as facts:
        assert facts["node"] == "search-1"
        assert infra_run.state("search-1") == ("exited" if method == "kill" else "paused")
        assert not _answers(infra_run)
    assert _answers(infra_run)
    assert httpx.get(infra_run.url("search-1", 9200, "/_cluster/health"), timeout=5).status_code == 200
    assert find_leftovers(infra_run) == []
