"""Fixtures of the stack tests: they all run on the one session-scoped `cluster` (resilience.pytest_plugin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stack_support import Database, Phone

from resilience.cluster import Cluster


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
