"""Shared helpers and fixtures for the mailroom, indexer and archiver stand-in tests (no tests here).

A test module imports the fixtures it uses (`db_fixture`, `rds_fixture`, `migrated_pg_fixture`,
`search_node_fixture`): they stay local to that module instead of being registered for every test.

They play the other parts: the web's schema (migrated with the Django stand-in), the org seed, and
courier's side of the Redis contract (inbound message rows and events exactly as architecture.md
lays them out), and they run the services as real processes so signals behave as in a container.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
STANDIN_SRC = ROOT / "harness" / "standin"
SHARED_FLOWS = ROOT.parent / "shared" / "flows"
FAVORITES = SHARED_FLOWS / "favorites_v13.json"
REGISTRATION = ROOT / "fixtures" / "flows" / "registration.json"

TABLES = (
    "flows_flowrun",
    "flows_flowsession",
    "flows_flowstart",
    "msgs_msg",
    "triggers_trigger",
    "flows_flow",
    "contacts_contacturn",
    "contacts_contact",
    "channels_channel",
    "orgs_org",
)

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
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


@pytest.fixture(scope="session", name="migrated_pg")
def migrated_pg_fixture(pg_url: str) -> str:
    """The test database with RapidPro's schema, migrated by the Django stand-in."""
    env = {**os.environ, "DATABASE_URL": pg_url, "PYTHONPATH": str(STANDIN_SRC)}
    done = subprocess.run(
        [sys.executable, str(STANDIN_SRC / "manage.py"), "migrate", "--no-input"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")
    return pg_url


# Org ids are not reused within a session: a mailroom that outlives a test keeps an org's assets 5 s by id,
# as real v9.2 does, and would serve the previous test's channels to the next test's org.
_ORG_IDS = itertools.count(1, 1000)


@pytest.fixture(name="db")
def db_fixture(migrated_pg: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to an emptied database."""
    with psycopg.connect(migrated_pg, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        conn.execute("SELECT setval(pg_get_serial_sequence('orgs_org', 'id'), %s, false)", (next(_ORG_IDS),))
        conn.execute("DROP TABLE IF EXISTS archives_archive")  # the archiver stand-in creates it
        yield conn


@pytest.fixture(name="rds")
def rds_fixture(redis_url: str) -> Iterator[redis.Redis]:
    """A Redis client on the test DB, flushed."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@dataclass
class Seed:
    org_id: int
    channel_id: int
    channel_uuid: str
    tps: int
    flows: dict[str, int] = field(default_factory=dict)  # name -> id
    flow_uuids: dict[str, str] = field(default_factory=dict)  # name -> uuid


def seed_org(
    conn: psycopg.Connection[Any],
    exports: list[Path] | None = None,
    keywords: dict[str, list[str]] | None = None,
    tps: int = 10,
) -> Seed:
    """An org with an EX channel, the flows of `exports`, and keyword triggers {flow name: [keywords]}."""
    org_id = conn.execute(
        "INSERT INTO orgs_org (uuid, name, is_active, created_on) VALUES (%s, 'Test Org', true, now()) RETURNING id",
        (str(uuid.uuid4()),),
    ).fetchone()[0]  # type: ignore[index]
    channel_uuid = str(uuid.uuid4())
    channel_id = conn.execute(
        "INSERT INTO channels_channel (uuid, org_id, channel_type, name, address, config, tps, is_active, "
        "created_on) VALUES (%s, %s, 'EX', 'External', '+250788000000', '{}', %s, true, now()) RETURNING id",
        (channel_uuid, org_id, tps),
    ).fetchone()[0]  # type: ignore[index]
    seed = Seed(org_id=org_id, channel_id=channel_id, channel_uuid=channel_uuid, tps=tps)
    for path in exports or []:
        export = json.loads(path.read_text())
        for flow in export["flows"]:
            flow_id = conn.execute(
                "INSERT INTO flows_flow (uuid, org_id, name, flow_type, spec_version, definition, is_active, "
                "created_on, modified_on) VALUES (%s, %s, %s, 'M', %s, %s, true, now(), now()) RETURNING id",
                (flow["uuid"], org_id, flow["name"], flow.get("spec_version", "13.0.0"), json.dumps(flow)),
            ).fetchone()[0]  # type: ignore[index]
            seed.flows[flow["name"]] = flow_id
            seed.flow_uuids[flow["name"]] = flow["uuid"]
    for flow_name, words in (keywords or {}).items():
        conn.execute(
            "INSERT INTO triggers_trigger (org_id, trigger_type, keywords, match_type, flow_id, is_active) "
            "VALUES (%s, 'K', %s, 'F', %s, true)",
            (org_id, words, seed.flows[flow_name]),
        )
    return seed


@dataclass(frozen=True)
class Inbound:
    msg_id: int
    msg_uuid: str
    contact_id: int
    urn_id: int


def receive(
    conn: psycopg.Connection[Any],
    rds: redis.Redis | None,
    seed: Seed,
    urn: str,
    text: str,
    created_on: datetime | None = None,
) -> Inbound:
    """What courier does on an EX receive: contact get-or-create, msg row P, then the Redis events.

    With `rds` None the events are not pushed (a lost courier push: the message stays P).
    """
    scheme, path = urn.split(":", 1)
    row = conn.execute(
        "SELECT id, contact_id FROM contacts_contacturn WHERE org_id = %s AND identity = %s", (seed.org_id, urn)
    ).fetchone()
    new_contact = row is None
    if row is None:
        contact_id = conn.execute(
            "INSERT INTO contacts_contact (uuid, org_id, fields, status, is_active, created_on, modified_on) "
            "VALUES (%s, %s, '{}', 'A', true, now(), now()) RETURNING id",
            (str(uuid.uuid4()), seed.org_id),
        ).fetchone()[0]  # type: ignore[index]
        urn_id = conn.execute(
            "INSERT INTO contacts_contacturn (org_id, contact_id, identity, scheme, path, priority, channel_id) "
            "VALUES (%s, %s, %s, %s, %s, 1000, %s) RETURNING id",
            (seed.org_id, contact_id, urn, scheme, path, seed.channel_id),
        ).fetchone()[0]  # type: ignore[index]
    else:
        urn_id, contact_id = row
    msg_uuid = str(uuid.uuid4())
    created = created_on or datetime.now(UTC)
    msg_id = conn.execute(
        "INSERT INTO msgs_msg (uuid, org_id, channel_id, contact_id, contact_urn_id, direction, status, msg_type, "
        "visibility, text, error_count, created_on, modified_on) "
        "VALUES (%s, %s, %s, %s, %s, 'I', 'P', 'T', 'V', %s, 0, %s, %s) RETURNING id",
        (msg_uuid, seed.org_id, seed.channel_id, contact_id, urn_id, text, created, created),
    ).fetchone()[0]  # type: ignore[index]
    inbound = Inbound(msg_id=msg_id, msg_uuid=msg_uuid, contact_id=contact_id, urn_id=urn_id)
    if rds is not None:
        push_msg_event(rds, seed, inbound, urn, text, new_contact)
    return inbound


def push_msg_event(
    rds: redis.Redis, seed: Seed, inbound: Inbound, urn: str, text: str, new_contact: bool = False
) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event = {
        "type": "msg_event",
        "org_id": seed.org_id,
        "task": {
            "contact_id": inbound.contact_id,
            "org_id": seed.org_id,
            "channel_id": seed.channel_id,
            "msg_id": inbound.msg_id,
            "msg_uuid": inbound.msg_uuid,
            "msg_external_id": None,
            "urn": urn,
            "urn_id": inbound.urn_id,
            "text": text,
            "attachments": [],
            "new_contact": new_contact,
            "created_on": now,
        },
        "queued_on": now,
    }
    task = {
        "type": "handle_contact_event",
        "org_id": seed.org_id,
        "task": {"contact_id": inbound.contact_id},
        "queued_on": now,
    }
    with rds.pipeline(transaction=True) as pipe:
        pipe.rpush(f"c:{seed.org_id}:{inbound.contact_id}", json.dumps(event))
        pipe.zadd(f"handler:{seed.org_id}", {json.dumps(task): time.time() - 10_000_000})
        pipe.zincrby("handler:active", 0, str(seed.org_id))
        pipe.execute()


def courier_batches(rds: redis.Redis, seed: Seed, priority: int) -> list[list[dict[str, Any]]]:
    """The message batches waiting in courier's queue of the seed's channel, oldest first."""
    key = f"msgs:{seed.channel_uuid}|{seed.tps}/{priority}"
    return [json.loads(item) for item in rds.zrange(key, 0, -1)]


def queued_texts(rds: redis.Redis, seed: Seed, priority: int) -> list[str]:
    return [m["text"] for batch in courier_batches(rds, seed, priority) for m in batch]


def outgoing(conn: psycopg.Connection[Any], contact_id: int | None = None) -> list[tuple[Any, ...]]:
    """(id, text, status, high_priority, next_attempt) of outgoing messages, in creation order."""
    where = "AND contact_id = %s" if contact_id is not None else ""
    params = (contact_id,) if contact_id is not None else ()
    return conn.execute(
        f"SELECT id, text, status, high_priority, next_attempt FROM msgs_msg WHERE direction = 'O' {where} ORDER BY id",
        params,
    ).fetchall()


def msg_status(conn: psycopg.Connection[Any], msg_id: int) -> str:
    return str(conn.execute("SELECT status FROM msgs_msg WHERE id = %s", (msg_id,)).fetchone()[0])  # type: ignore[index]


class ServiceProcess:
    """A stand-in service run as `python -m standin.<name>`, its output kept in a log file."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, "PYTHONPATH": str(STANDIN_SRC), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(STANDIN_SRC),
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def wait_for_log(self, needle: str, timeout: float = 15.0) -> None:
        wait_for(lambda: needle in self.log() or self._died(), timeout, f"{needle!r} in {self.module} log")
        if needle not in self.log():
            raise AssertionError(f"{self.module} exited ({self.proc.returncode}):\n{self.log()}")

    def _died(self) -> bool:
        return self.proc.poll() is not None

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


class MailroomProcess(ServiceProcess):
    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        super().__init__("standin.mailroom", env, log_path)
        self.port = port

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/mr/", timeout=5).json())


def start_mailroom(
    tmp_path: Path,
    pg: str,
    redis_url: str,
    switches: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "mailroom",
) -> MailroomProcess:
    port = free_port()
    env = {
        "MAILROOM_DB": pg,
        "MAILROOM_REDIS": redis_url,
        "MAILROOM_ELASTIC": "http://127.0.0.1:1",  # nothing listens: no search unless a test gives one
        "MAILROOM_ADDRESS": "127.0.0.1",
        "MAILROOM_PORT": str(port),
        "MAILROOM_HANDLER_WORKERS": "4",
        "MAILROOM_BATCH_WORKERS": "2",
        "MAILROOM_DB_POOL_SIZE": "6",
        "STANDIN_SWITCHES": json.dumps(switches or {}),
        **(extra_env or {}),
    }
    proc = MailroomProcess(env, tmp_path / f"{name}.log", port)
    proc.wait_for_log("mailroom started")
    return proc


def osmem_binary() -> Path:
    """The offline OpenSearch-API node of the pip package `osmem-server`, wherever it is installed."""
    try:
        import osmem_server  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("osmem-server is not installed (pip install osmem-server)")
    binary = Path(osmem_server.__file__).parent / "bin" / "osmem-server"
    if not binary.exists():
        pytest.skip(f"osmem-server binary missing at {binary}")
    return binary


class SearchNode:
    """An in-memory OpenSearch-API node (osmem-server) on a loopback port, started and stopped at will."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SearchNode:
        self._proc = subprocess.Popen(
            [str(osmem_binary()), "-addr", f"127.0.0.1:{self.port}", "-parent-pid", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=10, what=f"osmem-server on {self.url}")
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._proc = None


@pytest.fixture(name="search_node")
def search_node_fixture() -> Iterator[SearchNode]:
    node = SearchNode().start()
    yield node
    node.stop()


class TcpProxy:
    """A loopback TCP relay whose live connections can be cut at once (a failover behind a stable address),
    refused (a dead server), or held (a black hole: bytes are taken from the sender and kept, never delivered,
    until released)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        import threading

        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._held: set[socket.socket] = set()  # sources whose bytes are kept back
        self._kept: list[tuple[socket.socket, bytes]] = []  # (destination, bytes) in arrival order
        self._hold_new = False
        self._refusing = False
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
                if self._hold_new:
                    self._held.update((client, server))
                self.accepted += 1
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    if src in self._held:
                        self._kept.append((dst, data))
                        continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self._held.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut_all(self) -> int:
        """Reset every live connection (new ones are still accepted); returns how many were cut."""
        with self._lock:
            live = list(self._sockets)
            self._kept.clear()
        for sock in live:
            self._drop(sock)
        return len(live) // 2

    def down(self) -> int:
        """Cut every live connection and close new ones at once, as a dead server behind a load balancer."""
        self._refusing = True
        return self.cut_all()

    def up(self) -> None:
        self._refusing = False

    def hold(self, new_too: bool = False) -> int:
        """Black-hole the live connections (and, with `new_too`, the ones still to come): the sockets stay
        open and everything sent is kept back. Returns how many connections are held."""
        with self._lock:
            self._held.update(self._sockets)
            self._hold_new = new_too
            return len(self._sockets) // 2

    def release(self) -> None:
        """Deliver what was kept back, in order, and let bytes through again."""
        with self._lock:
            for dst, data in self._kept:
                with contextlib.suppress(OSError):
                    dst.sendall(data)
            self._kept.clear()
            self._held.clear()
            self._hold_new = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut_all()


def proxied_pg(pg_url: str, proxy: TcpProxy) -> str:
    return psycopg.conninfo.make_conninfo(pg_url, host="127.0.0.1", port=str(proxy.port))


def pg_proxy(pg_url: str) -> TcpProxy:
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    return TcpProxy(str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432))))


def redis_proxy(redis_url: str) -> tuple[TcpProxy, str]:
    """A relay in front of the test Redis and the URL that goes through it."""
    host, rest = redis_url.split("//", 1)[1].split(":", 1)
    port, redis_db = rest.split("/", 1)
    proxy = TcpProxy(host, int(port))
    return proxy, f"redis://127.0.0.1:{proxy.port}/{redis_db}"


class RedisMonitor:
    """The commands Redis executes (MONITOR on a raw socket), each with the server's timestamp."""

    def __init__(self, redis_url: str) -> None:
        import threading

        host, rest = redis_url.split("//", 1)[1].split(":", 1)
        self._sock = socket.create_connection((host, int(rest.split("/", 1)[0])), timeout=5)
        self._sock.sendall(b"MONITOR\r\n")
        self._lines: list[str] = []
        self._stop = threading.Event()
        self._buffer = b""
        self._read_line()  # +OK
        self._lines.clear()
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read_line(self) -> None:
        while b"\r\n" not in self._buffer:
            self._buffer += self._sock.recv(65536)
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        self._lines.append(line.decode(errors="replace"))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self._buffer += chunk
            while b"\r\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\r\n", 1)
                self._lines.append(line.decode(errors="replace"))

    def commands(self, *words: str) -> list[tuple[float, str]]:
        """(server time, line) of the commands whose line contains every one of `words` (quoted as MONITOR
        shows them)."""
        needles = [f'"{w}"' for w in words]
        found = []
        for line in list(self._lines):
            if line.startswith("+") and all(n in line for n in needles):
                found.append((float(line[1:].split(" ", 1)[0]), line))
        return found

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
