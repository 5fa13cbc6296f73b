"""rolling-upgrade on real Docker: each courier moves to a derived "next version" image in turn while the
load balancer keeps answering; recovery rolls back; a missing image is refused before any node is touched;
a description written after the upgrade is enough for another process to roll back."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from resilience.backends.docker import DockerBackend, DockerRun
from resilience.derived_images import UPGRADE_REPO, derive_image
from resilience.faults import FaultError, Nemesis, RollingUpgradeFault, fault_from_description
from resilience.faults.base import wait_for
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.leftovers import find_leftovers
from resilience.faults.registry import Registry
from resilience.history import History
from resilience.images import resolve_image
from resilience.topology import load_topology

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
NEXT_VERSION = "9.3.0-upgrade-test"


@pytest.fixture(scope="module")
def courier_run() -> Iterator[DockerRun]:
    """Infra plus two courier nodes behind lb-1."""
    backend = DockerBackend()
    topology = load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").select(["infra", "courier"])
    run = backend.up(topology, log=lambda _m: None)
    try:
        api = HaproxyRuntime(run, "lb-1")
        wait_for("lb-1 seeing both couriers UP", lambda: all(s.up for s in api.servers_of("courier")), 60)
        yield run
    finally:
        backend.down(run.run_id, log=lambda _m: None)


@pytest.fixture(scope="module")
def next_image(courier_run: DockerRun) -> Iterator[str]:
    """The node image with another STANDIN_VERSION, tagged for this run only and removed after."""
    client = docker.from_env()
    tag = f"{UPGRADE_REPO}:{courier_run.run_id}"
    derive_image(client, "resilience-node", tag, {"STANDIN_VERSION": NEXT_VERSION}, log=lambda _m: None)
    try:
        yield tag
    finally:
        client.images.remove(tag, force=True)


def _nemesis(run: DockerRun, state_dir: Path) -> Nemesis:
    return Nemesis(run, History(None, run_id=run.run_id), Registry(run.run_id, state_dir))


def _version(run: DockerRun, node: str) -> str:
    page = httpx.get(run.url(node, 8080, "/"), timeout=5).text
    found = re.search(r"\) version (\S+)", page)
    assert found, page
    return found.group(1)


def _image_ids(run: DockerRun) -> dict[str, str]:
    return {node: run.container(node).image.id for node in ("courier-1", "courier-2")}


class LbProbe:
    """GET /c/ through lb-1 in a loop while a roll runs (bounded: at most 2000 requests)."""

    def __init__(self, run: DockerRun) -> None:
        self.url = run.url("lb-1", 80, "/c/")
        self.statuses: Counter[int | str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            for _ in range(2000):
                if self.stop.wait(0.05):
                    return
                try:
                    self.statuses[client.get(self.url).status_code] += 1
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1

    def __enter__(self) -> LbProbe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def assert_served_throughout(probe: LbProbe) -> None:
    statuses = probe.statuses
    total = sum(statuses.values())
    answered = sum(n for status, n in statuses.items() if isinstance(status, int) and status not in (502, 503, 504))
    # The probe ran across the roll (a rollback to a cached image can take under a second a node: CI saw 16).
    assert total >= 10, statuses
    assert not {502, 503, 504} & set(statuses), statuses
    # A keep-alive connection closed by a stopping node can still reach a client as a disconnect.
    assert answered >= 0.9 * total, statuses


def test_upgrade_and_rollback_one_node_at_a_time(courier_run: DockerRun, next_image: str, tmp_path: Path) -> None:
    nemesis = _nemesis(courier_run, tmp_path)
    original = _image_ids(courier_run)
    new_id = docker.from_env().images.get(next_image).id
    fault = RollingUpgradeFault(service="courier", image=next_image)
    with LbProbe(courier_run) as during_upgrade:
        facts = nemesis.inject(fault)
    assert facts["order"] == ["courier-1", "courier-2"]
    assert facts["from"] == "resilience-node" and facts["to"] == next_image
    assert set(facts["healthy_after_s"]) == {"courier-1", "courier-2"}
    assert _image_ids(courier_run) == {"courier-1": new_id, "courier-2": new_id}
    assert {_version(courier_run, n) for n in ("courier-1", "courier-2")} == {NEXT_VERSION}
    # n+1: one courier always answered (any status of courier's own; /c/ is its 404), so the balancer
    # never ran out of servers (HAProxy's 503) nor hit a dead one (502/504).
    assert_served_throughout(during_upgrade)

    with LbProbe(courier_run) as during_rollback:
        back = nemesis.recover(fault)
    assert back["rolled_back"] == ["courier-1", "courier-2"]
    assert _image_ids(courier_run) == original
    assert {_version(courier_run, n) for n in ("courier-1", "courier-2")} == {"9.2.2-standin"}
    assert_served_throughout(during_rollback)
    assert find_leftovers(courier_run) == []
    # Recovering again finds every node on the old image and touches none.
    assert nemesis.recover(fault)["rolled_back"] == []


def test_a_missing_image_is_refused_before_any_node_moves(courier_run: DockerRun, tmp_path: Path) -> None:
    before = {n: courier_run.container(n).id for n in ("courier-1", "courier-2")}
    fault = RollingUpgradeFault(service="courier", image="nyaruka/courier:v99.0.0")
    with pytest.raises(FaultError, match=r"image 'nyaruka/courier:v99.0.0' is not on this Docker engine"):
        _nemesis(courier_run, tmp_path).inject(fault)
    assert {n: courier_run.container(n).id for n in ("courier-1", "courier-2")} == before


def test_another_process_rolls_back_from_the_description(
    courier_run: DockerRun, next_image: str, tmp_path: Path
) -> None:
    original = _image_ids(courier_run)
    fault = RollingUpgradeFault(service="courier", image=next_image, nodes=["courier-2"])
    fault.resolve(courier_run)
    fault.inject(courier_run)
    assert _image_ids(courier_run)["courier-2"] != original["courier-2"]
    # What the registry holds is all a cleanup in a fresh process has: the run as its labels describe it.
    fresh = DockerBackend().attach(courier_run.run_id)
    assert fresh.topology.services["courier"].image == "resilience-node"
    again = fault_from_description(fault.describe())
    assert again.recover(fresh)["rolled_back"] == ["courier-2"]
    assert _image_ids(courier_run) == original
    assert resolve_image("resilience-node") in courier_run.container("courier-2").image.tags


def test_bad_parameters_are_clear_errors() -> None:
    from resilience.faults import FaultSpecError

    with pytest.raises(FaultSpecError, match="image must name the image"):
        RollingUpgradeFault(service="courier", image=" ")
    with pytest.raises(FaultSpecError, match="timeout and settle must be ≥ 0"):
        RollingUpgradeFault(service="courier", image="x:y", settle=-1)
