"""Fixtures of the stack tests: they all run on the one session-scoped `cluster` (resilience.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stack_support import Database, Phone

from resilience.cluster import Cluster

OUTAGE = "outage"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{OUTAGE}: cuts a dependency of the shared cluster; runs after the others")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that cut Postgres run last: an after-effect of an outage (a pool still reconnecting) must not
    # slow a conversation test that happens to follow it.
    items.sort(key=lambda item: item.get_closest_marker(OUTAGE) is not None)


@pytest.fixture(scope="session")
def reports_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the stack tests' experiment run directories go: a temporary directory, not reports/."""
    return tmp_path_factory.mktemp("stack-reports")


@pytest.fixture
def phone(cluster: Cluster) -> Iterator[Callable[[], Phone]]:
    """A factory of handsets with fresh numbers, closed at the end of the test."""
    phones: list[Phone] = []

    def make() -> Phone:
        phones.append(Phone(cluster))
        return phones[-1]

    yield make
    for handset in phones:
        handset.close()


@pytest.fixture
def database(cluster: Cluster) -> Database:
    return Database(cluster)
