"""The pytest plugin: options, the `experiment` marker, and the fixtures experiments use."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment(**kw): a resilience experiment (see docs/writing-experiments.md)")
