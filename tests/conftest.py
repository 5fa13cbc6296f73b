"""Shared fixtures for the framework's own tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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
def pg_url() -> str:
    """A PostgreSQL 15 URL for stand-in component tests (an empty database the test may migrate)."""
    url = os.environ.get("RESILIENCE_TEST_PG_URL")
    if not url:
        pytest.skip("RESILIENCE_TEST_PG_URL is not set (the infra-tier fixture will provide it)")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis URL (DB 15) for stand-in component tests."""
    url = os.environ.get("RESILIENCE_TEST_REDIS_URL")
    if not url:
        pytest.skip("RESILIENCE_TEST_REDIS_URL is not set (the infra-tier fixture will provide it)")
    return url
