"""The full stand-in deployment on SSH hosts (resilience/backends/hosts_standin.py), once per module: five
VM-like hosts holding standin-ha's services as supervisor programs. Docker only creates and removes them;
the harness reaches them over SSH and through ports published on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends.hosts import HostsRun
from resilience.backends.hosts_standin import StandinBed
from resilience.cluster import Cluster, seed_cluster
from resilience.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent.parent
TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    """Seconds per step, filled by the fixtures and tests and printed when the bed is removed (the figures
    docs/hosts.md quotes)."""
    return {}


@pytest.fixture(scope="module")
def standin_bed(tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]) -> Iterator[StandinBed]:
    from resilience.backends import engine
    from resilience.backends.hosts_testbed import reap_orphans

    try:
        client = engine.connect()
        client.ping()
    except Exception as exc:  # docker's errors vary by transport; any means "no engine"
        pytest.skip(f"no Docker engine: {exc}")
    reap_orphans(client)  # beds of test processes that died
    bed = StandinBed(client, tmp_path_factory.mktemp("standin-bed"), load_topology(TOPOLOGY), log=lambda _m: None)
    started = time.monotonic()
    try:
        bed.up()
        timings["bring-up"] = time.monotonic() - started
        yield bed
    finally:
        bed.close()
        print("\nstand-in bed over SSH, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


@pytest.fixture(scope="module")
def hosts_run(standin_bed: StandinBed) -> HostsRun:
    assert standin_bed.run is not None
    return standin_bed.run


@pytest.fixture(scope="module")
def hosts_cluster(hosts_run: HostsRun, timings: dict[str, float]) -> Cluster:
    started = time.monotonic()
    cluster = Cluster(hosts_run, seed_cluster(hosts_run))
    timings["seed"] = time.monotonic() - started
    return cluster
