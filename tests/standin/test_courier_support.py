"""Shared pieces of the courier and aggregator tests: processes, a switchable TCP relay, seed data.

Imported by the test_courier_* and test_aggregator modules (this directory is on sys.path under
pytest's default import mode); fixtures are imported as `*_fixture` and used by their short names.
The test here checks the support itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
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
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parents[2]
STANDIN_SRC = ROOT / "harness" / "standin"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


class ServiceProcess:
    """A stand-in started as `python -m MODULE` with its output in a log file."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path, health_url: str) -> None:
        self.module = module
        self.env = env
        self.log_path = log_path
        self.health_url = health_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> ServiceProcess:
        env = {**os.environ, **self.env, "PYTHONPATH": str(STANDIN_SRC)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], env=env, cwd=STANDIN_SRC, stdout=log, stderr=log
            )
        if wait:
            wait_for(self._ready, 20, f"{self.module} to answer {self.health_url}\n{self.log_tail()}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"{self.module} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(self.health_url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)


class TcpRelay:
    """A TCP forwarder on 127.0.0.1 that can be cut, black-holed and restored.

    `down()` closes the listener and resets live connections: "DB down" is a refused connection, as when
    the primary dies behind a load balancer, without touching the real server. `hold()` is a black hole:
    connections stay open and new ones are accepted, but no byte goes through in either direction (a
    partition behind a proxy that keeps TCP alive). `heal()` ends it the way a server-side timeout or a
    restart does: every connection is closed and new ones are forwarded again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.accepted = 0
        self.held_bytes = 0  # bytes that went into the black hole since the last hold()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing: asyncio.Event | None = None
        self._thread.start()
        self._call(self._init())
        self.up()

    async def _init(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _forward(self, writer: asyncio.StreamWriter, data: bytes) -> bool:
        """Write `data` unless a black hole swallows it; False once the connection was closed meanwhile."""
        assert self._flowing is not None
        if not self._flowing.is_set():
            self.held_bytes += len(data)
            await self._flowing.wait()
            return False  # heal() closed this connection: the held bytes are lost with it
        writer.write(data)
        await writer.drain()
        return True

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not await self._forward(writer, data):
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _swallow(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """A connection accepted inside the black hole: read and count, never answer."""
        assert self._flowing is not None
        self._writers.add(client_writer)
        try:
            while not self._flowing.is_set() and (data := await client_reader.read(65536)):
                self.held_bytes += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(client_writer)
            client_writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self.accepted += 1
        if not self._flowing.is_set():
            await self._swallow(client_reader, client_writer)
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers.update({client_writer, server_writer})
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self._writers.difference_update({client_writer, server_writer})

    async def _up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _reset_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._reset_connections()

    async def _hold(self) -> None:
        assert self._flowing is not None
        self.held_bytes = 0
        self._flowing.clear()

    async def _heal(self) -> None:
        assert self._flowing is not None
        await self._reset_connections()
        self._flowing.set()

    def up(self) -> None:
        self._call(self._up())

    def down(self) -> None:
        self._call(self._down())

    def hold(self) -> None:
        self._call(self._hold())

    def heal(self) -> None:
        self._call(self._heal())

    async def _cancel_pipes(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        self.down()
        self._call(self._cancel_pipes())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def relay_url(pg_url: str, relay: TcpRelay) -> str:
    """`pg_url` (a postgres:// or redis:// URL) with its host and port replaced by the relay's."""
    parts = urlsplit(pg_url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{relay.port}" if credentials else f"127.0.0.1:{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class SeededChannel:
    id: int
    uuid: str
    org_id: int
    tps: int
    address: str

    @property
    def queue(self) -> str:
        return f"msgs:{self.uuid}|{self.tps}"


_migrated: set[str] = set()


def migrate(pg_url: str) -> None:
    """Create the schema with the Django stand-in's migrations (once per database and session)."""
    if pg_url in _migrated:
        return
    env = {**os.environ, "DATABASE_URL": pg_url, "PYTHONPATH": str(STANDIN_SRC)}
    result = subprocess.run(
        [sys.executable, str(STANDIN_SRC / "manage.py"), "migrate", "--noinput"],
        env=env,
        cwd=STANDIN_SRC,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")
    _migrated.add(pg_url)


def connect(pg_url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(pg_url, autocommit=True, row_factory=dict_row)


def forget_org_queues(client: redis.Redis, org_id: int) -> None:
    """Drop mailroom queue keys an earlier database left under this org id (ids restart with a new DB)."""
    stale = [*list(client.scan_iter(match=f"c:{org_id}:*")), f"handler:{org_id}"]
    client.delete(*stale)


def create_channel(
    db: psycopg.Connection[dict[str, Any]], client: redis.Redis, send_url: str, tps: int = 10, **config: Any
) -> SeededChannel:
    """A fresh org and EX channel (the stand-in's columns, as docs/architecture.md lists them)."""
    org = db.execute(
        "INSERT INTO orgs_org (uuid, name, is_active, created_on) VALUES (%s, %s, TRUE, now()) RETURNING id",
        (str(uuid.uuid4()), "courier tests"),
    ).fetchone()
    assert org is not None
    forget_org_queues(client, int(org["id"]))
    channel_uuid = str(uuid.uuid4())
    address = "+12065550" + str(org["id"] % 1000).zfill(3)
    channel_config = {"send_url": send_url, "method": "POST", "content_type": "urlencoded", "max_length": 640, **config}
    row = db.execute(
        "INSERT INTO channels_channel (uuid, org_id, channel_type, name, address, config, tps, is_active,"
        " created_on) VALUES (%s, %s, 'EX', 'test', %s, %s, %s, TRUE, now()) RETURNING id",
        (channel_uuid, org["id"], address, json.dumps(channel_config), tps),
    ).fetchone()
    assert row is not None
    return SeededChannel(id=row["id"], uuid=channel_uuid, org_id=org["id"], tps=tps, address=address)


def create_outgoing(
    db: psycopg.Connection[dict[str, Any]], channel: SeededChannel, text: str, phone: str | None = None
) -> dict[str, Any]:
    """A contact, its URN and a queued outgoing message; returns the payload mailroom would queue."""
    phone = phone or "+2507" + str(uuid.uuid4().int)[:8]
    urn = db.execute(
        "SELECT id, contact_id FROM contacts_contacturn WHERE org_id = %s AND identity = %s",
        (channel.org_id, f"tel:{phone}"),
    ).fetchone()
    if urn is None:
        contact = db.execute(
            "INSERT INTO contacts_contact (uuid, org_id, status, is_active, created_on, modified_on)"
            " VALUES (%s, %s, 'A', TRUE, now(), now()) RETURNING id",
            (str(uuid.uuid4()), channel.org_id),
        ).fetchone()
        assert contact is not None
        urn = db.execute(
            "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path, channel_id, priority)"
            " VALUES (%s, %s, %s, 'tel', %s, %s, 1000) RETURNING id, contact_id",
            (channel.org_id, contact["id"], f"tel:{phone}", phone, channel.id),
        ).fetchone()
        assert urn is not None
    contact = {"id": urn["contact_id"]}
    msg_uuid = str(uuid.uuid4())
    msg = db.execute(
        "INSERT INTO msgs_msg (uuid, org_id, channel_id, contact_id, contact_urn_id, direction, status,"
        " msg_type, visibility, text, high_priority, error_count, created_on, modified_on, queued_on)"
        " VALUES (%s, %s, %s, %s, %s, 'O', 'Q', 'T', 'V', %s, TRUE, 0, now(), now(), now())"
        " RETURNING id, created_on",
        (msg_uuid, channel.org_id, channel.id, contact["id"], urn["id"], text),
    ).fetchone()
    assert msg is not None
    return {
        "id": msg["id"],
        "uuid": msg_uuid,
        "org_id": channel.org_id,
        "channel_id": channel.id,
        "channel_uuid": channel.uuid,
        "contact_id": contact["id"],
        "contact_urn_id": urn["id"],
        "urn": f"tel:{phone}",
        "text": text,
        "high_priority": True,
        "error_count": 0,
        "created_on": msg["created_on"].isoformat(),
        "queued_on": msg["created_on"].isoformat(),
    }


def queue_outgoing(client: redis.Redis, channel: SeededChannel, batch: list[dict[str, Any]], high: bool = True) -> None:
    """Queue one contact's messages as mailroom does: ZADD the array, then mark the queue active."""
    key = f"{channel.queue}/{1 if high else 0}"
    client.zadd(key, {json.dumps(batch): time.time()})
    client.zincrby("msgs:active", 0, channel.queue)


def msg_row(db: psycopg.Connection[dict[str, Any]], msg_id: int) -> dict[str, Any]:
    row = db.execute("SELECT * FROM msgs_msg WHERE id = %s", (msg_id,)).fetchone()
    assert row is not None, f"msgs_msg {msg_id} is missing"
    return row


def aggregator_records(base_url: str, after: int = 0) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/records", params={"after": after}, timeout=5)
    response.raise_for_status()
    return list(response.json()["records"])


def configure_aggregator(base_url: str, **settings: Any) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/config", json=settings, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(name="aggregator")
def aggregator_fixture(tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    """A running aggregator; yields the process and its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        "standin.aggregator",
        {"AGGREGATOR_PORT": str(port), "AGGREGATOR_SEED": "7"},
        tmp_path / f"aggregator-{port}.log",
        f"{base}/health",
    )
    process.start()
    yield process, base
    process.kill()


@pytest.fixture(name="db")
def db_fixture(pg_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    migrate(pg_url)
    conn = connect(pg_url)
    yield conn
    conn.close()


@pytest.fixture(name="redis_client")
def redis_client_fixture(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class CourierFactory:
    """Starts courier processes for one test; every one is killed at teardown."""

    def __init__(self, tmp_path: Path, pg_url: str, redis_url: str) -> None:
        self.tmp_path = tmp_path
        self.pg_url = pg_url
        self.redis_url = redis_url
        self.spool_dir = tmp_path / "spool"
        self.started: list[ServiceProcess] = []

    def start(
        self,
        switches: dict[str, Any] | None = None,
        db_url: str | None = None,
        port: int | None = None,
        wait: bool = True,
        **env: str,
    ) -> tuple[ServiceProcess, str]:
        port = port or free_port()
        base = f"http://127.0.0.1:{port}"
        values = {
            "COURIER_DB": db_url or self.pg_url,
            "COURIER_REDIS": self.redis_url,
            "COURIER_SPOOL_DIR": str(self.spool_dir),
            "COURIER_ADDRESS": "127.0.0.1",
            "COURIER_PORT": str(port),
            "COURIER_MAX_WORKERS": "4",
            # loopback must be reachable for the aggregator; the real default refuses it
            "COURIER_DISALLOWED_NETWORKS": "6.6.6.6",
            "STANDIN_SWITCHES": json.dumps(switches or {}),
            **env,
        }
        process = ServiceProcess("standin.courier", values, self.tmp_path / f"courier-{port}.log", f"{base}/")
        self.started.append(process)
        process.start(wait=wait)
        return process, base

    def close(self) -> None:
        for process in self.started:
            process.kill()


@pytest.fixture(name="couriers")
def couriers_fixture(tmp_path: Path, pg_url: str, redis_url: str, db: Any) -> Iterator[CourierFactory]:
    factory = CourierFactory(tmp_path, pg_url, redis_url)
    yield factory
    factory.close()


def test_relay_cuts_and_restores_connections() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        relay = TcpRelay("127.0.0.1", listener.getsockname()[1])
        try:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5):
                accepted, _ = listener.accept()
                accepted.close()
            relay.down()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", relay.port), timeout=5)
            relay.up()
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5):
                accepted, _ = listener.accept()
                accepted.close()
        finally:
            relay.close()


def test_relay_black_hole_holds_bytes_until_healed() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)
        relay = TcpRelay("127.0.0.1", listener.getsockname()[1])
        try:
            live = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
            accepted, _ = listener.accept()
            relay.hold()
            live.sendall(b"PING\r\n")
            late = socket.create_connection(("127.0.0.1", relay.port), timeout=5)  # accepted, not forwarded
            late.sendall(b"PING\r\n")
            wait_for(lambda: relay.held_bytes == 12, 5, "both requests to be swallowed")
            accepted.settimeout(0.5)
            with pytest.raises(TimeoutError):
                accepted.recv(16)
            listener.settimeout(0.5)
            with pytest.raises(TimeoutError):
                listener.accept()

            relay.heal()

            for client in (live, late):
                with contextlib.suppress(ConnectionResetError):  # an abort may arrive as a reset
                    assert client.recv(16) == b""
                client.close()
            accepted.close()
            listener.settimeout(5)
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as healed:
                forwarded, _ = listener.accept()
                healed.sendall(b"PING\r\n")
                assert forwarded.recv(16) == b"PING\r\n"
                forwarded.close()
        finally:
            relay.close()
