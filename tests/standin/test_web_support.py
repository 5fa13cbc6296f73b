"""Shared pieces of the web stand-in tests (no tests here): a migrated database of its own, a Redis DB of
its own, the seed, Django code run in a subprocess, and a live gunicorn on 127.0.0.1.

Django settings are per process, so every piece of the web runs in a child process configured through
its environment, exactly as in the node image.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
from test_mailroom_support import start_mailroom

ROOT = Path(__file__).resolve().parents[2]
STANDIN_SRC = ROOT / "harness" / "standin"
MANAGE = STANDIN_SRC / "manage.py"
SHARED_FLOWS = ROOT.parent / "shared" / "flows"
BIN = Path(sys.executable).parent

# The web tests keep to a Redis DB of their own, so that flushing it never touches another suite's keys.
WEB_REDIS_DB = 13
SEND_URL = "http://aggregator:8070/send"
NO_MAILROOM = "http://127.0.0.1:9"  # the discard port: nothing listens there on a test host

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def web_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "API_", "CELERY_"))}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="test",
        PYTHONPATH=str(STANDIN_SRC),
        DJANGO_SETTINGS_MODULE="temba.settings",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run_manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        cwd=STANDIN_SRC,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def django_call(env: dict[str, str], code: str, timeout: float = 60) -> Any:
    """Run `code` in a configured Django process; it must assign the JSON-able `result`."""
    return django_run(env, code, timeout)[0]


def django_run(env: dict[str, str], code: str, timeout: float = 60) -> tuple[Any, str]:
    """As django_call, also returning what the process logged on stderr."""
    program = f"import django, json\ndjango.setup()\n{code}\nprint(json.dumps(result))\n"
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        cwd=STANDIN_SRC,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"django code failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@dataclass(frozen=True)
class WebStack:
    database_url: str
    redis_url: str

    def env(self, **extra: str) -> dict[str, str]:
        return web_env(self.database_url, self.redis_url, **extra)


@pytest.fixture(scope="session")
def web_stack(pg_url: str, redis_url: str) -> Iterator[WebStack]:
    """A fresh database (unique name, dropped at the end) migrated by `manage.py migrate`."""
    name = f"web_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    stack = WebStack(with_database(pg_url, name), with_redis_db(redis_url, WEB_REDIS_DB))
    try:
        done = run_manage(stack.env(), "migrate", "--no-input", timeout=180)
        if done.returncode != 0:
            pytest.fail(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")
        yield stack
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture()
def web_db(web_stack: WebStack) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(web_stack.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture()
def web_redis(web_stack: WebStack) -> Iterator[redis.Redis]:
    """The web tests' Redis DB, flushed."""
    client = redis.Redis.from_url(web_stack.redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def seed(stack: WebStack, *args: str) -> dict[str, Any]:
    done = run_manage(stack.env(), "seed_org", *args)
    if done.returncode != 0:
        raise AssertionError(f"seed_org failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def seeded(web_stack: WebStack) -> dict[str, Any]:
    """The org of the real flow exports in ../shared/flows."""
    if not SHARED_FLOWS.is_dir():
        pytest.skip(f"{SHARED_FLOWS} is not present beside the checkout")
    return seed(web_stack, "--flows", str(SHARED_FLOWS), "--send-url", SEND_URL)


class Gunicorn:
    """`gunicorn temba.wsgi:application` on a free loopback port, as the web node runs it."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "temba.wsgi:application",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
            ],
            env=env,
            cwd=STANDIN_SRC,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, timeout=30, what=f"gunicorn on {self.url} (log {log_path})")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited {self.proc.returncode}:\n{self.log_path.read_text()}")
        try:
            return httpx.get(self.url + "/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@pytest.fixture(scope="session")
def live_web(
    web_stack: WebStack, seeded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A live web on the seeded database; small pages so pagination is exercised with few rows. Mailroom is
    down for it (nothing listens at its MAILROOM_URL): `web_with_mailroom` gives a web with one."""
    server = Gunicorn(
        web_stack.env(API_PAGE_SIZE="3", MAILROOM_URL=NO_MAILROOM), tmp_path_factory.mktemp("web") / "gunicorn.log"
    )
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def web_with_mailroom(web_stack: WebStack, seeded: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """A live web whose MAILROOM_URL is a mailroom stand-in on the web tests' database and Redis DB.

    Per test: mailroom's workers and crons would otherwise take the tasks other tests expect to find
    queued. Its retry_msgs cron is off so that it leaves the other tests' pending messages alone.
    """
    mailroom = start_mailroom(
        tmp_path,
        web_stack.database_url,
        web_stack.redis_url,
        extra_env={
            "MAILROOM_HANDLER_WORKERS": "1",
            "MAILROOM_BATCH_WORKERS": "1",
            "MAILROOM_RETRY_PENDING_MESSAGES": "false",
        },
    )
    try:
        server = Gunicorn(
            web_stack.env(MAILROOM_URL=f"http://127.0.0.1:{mailroom.port}"), tmp_path / "gunicorn.log", workers=1
        )
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        mailroom.terminate()


def api(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}
