"""Shared fixtures for the framework's own tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
STANDIN_SRC = ROOT / "harness" / "standin"

# The stand-in services are not part of the installed package (they run in containers); their tests
# import them from the source tree.
if str(STANDIN_SRC) not in sys.path:
    sys.path.insert(0, str(STANDIN_SRC))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def infra_run() -> Iterator[DockerRun]:
    """The infra tier of standin-ha (real Postgres pair, Redis + Sentinel, HAProxy, proxy, S3, search).

    Brought up once per test session and removed at the end, whatever happened.
    """
    from resilience.backends.docker import DockerBackend
    from resilience.topology import load_topology

    try:
        backend = DockerBackend()
        backend.client.ping()
    except Exception as exc:  # docker's errors vary by transport; any means "no engine"
        pytest.skip(f"no Docker engine: {exc}")
    topology = load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").select(["infra"])
    run = backend.up(topology, log=lambda _m: None)
    try:
        yield run
    finally:
        backend.down(run.run_id, log=lambda _m: None)


@pytest.fixture(scope="session")
def pg_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL 15 URL (user temba, may create databases) through the load balancer's stable address."""
    url = os.environ.get("RESILIENCE_TEST_PG_URL")
    if url:
        return url
    run = request.getfixturevalue("infra_run")
    host, port = run.endpoint("lb-1", 5432)
    return f"postgres://temba:temba@{host}:{port}/temba"


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis URL (DB 15) through the load balancer's stable address (always the current master)."""
    url = os.environ.get("RESILIENCE_TEST_REDIS_URL")
    if url:
        return url
    run = request.getfixturevalue("infra_run")
    host, port = run.endpoint("lb-1", 6379)
    return f"redis://{host}:{port}/15"
