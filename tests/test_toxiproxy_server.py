"""The Toxiproxy-API server (harness/toxiproxy) driven as users drive Toxiproxy.

Calls go through the toxiproxy-python 0.1.1 client where it has them; httpx covers what that client
lacks (`POST /populate`, toxic updates, raw status codes and bodies). Each test gets its own server
on a free loopback port, in front of small TCP echo servers in this process.
"""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "harness" / "toxiproxy"
BINARY = CRATE / "target" / "release" / "toxiproxy-server"

START_TIMEOUT = 10.0
IO_TIMEOUT = 5.0
# A round trip on loopback through the proxy takes well under a millisecond; this bound only has to
# separate "no toxic" from the delays the toxics below add (300 ms and more), on a busy 2-core box.
FAST = 0.15


def _cargo() -> str | None:
    found = shutil.which("cargo")
    if found:
        return found
    home_cargo = Path.home() / ".cargo" / "bin" / "cargo"
    return str(home_cargo) if home_cargo.exists() else None


@pytest.fixture(scope="session")
def server_binary() -> Path:
    """The release binary, built (or brought up to date) with the locked dependencies."""
    cargo = _cargo()
    if cargo is None:
        if BINARY.exists():
            return BINARY
        pytest.fail(f"{BINARY} is missing and cargo is not installed to build it")
    build = subprocess.run(
        [cargo, "build", "--release", "--locked", "--manifest-path", str(CRATE / "Cargo.toml")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if build.returncode != 0:
        pytest.fail(f"cargo build of {CRATE} failed:\n{build.stderr[-4000:]}")
    return BINARY


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"toxiproxy-server exited with {process.returncode}: {process.stderr}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"toxiproxy-server did not listen on {port} within {START_TIMEOUT}s")


@dataclass
class Server:
    port: int
    process: subprocess.Popen[str]
    http: httpx.Client
    client: Toxiproxy


def start_server(binary: Path, *extra: str) -> tuple[int, subprocess.Popen[str]]:
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-host", "127.0.0.1", "-port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, process)
    return port, process


def stop_server(process: subprocess.Popen[str]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=IO_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=IO_TIMEOUT)
        raise AssertionError("toxiproxy-server did not stop on SIGTERM") from None


@pytest.fixture
def server(server_binary: Path) -> Iterator[Server]:
    port, process = start_server(server_binary)
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=IO_TIMEOUT) as http:
        yield Server(port, process, http, client)
    assert stop_server(process) == 0


class EchoServer:
    """Echoes each connection's bytes (after `prefix`) until EOF or a line `close`; notes when
    each chunk arrived, to tell a delay on the way in from one on the way out."""

    def __init__(self, prefix: bytes = b"") -> None:
        prefix_bytes = prefix
        self.arrivals: list[float] = []
        arrivals = self.arrivals

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while True:
                    try:
                        data = self.request.recv(65536)
                    except OSError:
                        return
                    arrivals.append(time.monotonic())
                    if not data or data == b"close\n":
                        return
                    self.request.sendall(prefix_bytes + data)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def connect(listen: str) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=IO_TIMEOUT)


def round_trip(conn: socket.socket, message: bytes = b"ping\n") -> tuple[float, bytes]:
    started = time.monotonic()
    conn.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = conn.recv(65536)
        if not chunk:
            break
        received += chunk
    return time.monotonic() - started, received


def read_until_closed(conn: socket.socket) -> tuple[float, bytes]:
    """Reads until EOF; returns the seconds it took and the bytes read."""
    started = time.monotonic()
    received = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return time.monotonic() - started, received
        received += chunk


def make_proxy(server: Server, upstream: str, name: str = "echo") -> Proxy:
    return server.client.create(upstream=upstream, name=name, listen="127.0.0.1:0")


# --- the API's basics ------------------------------------------------------------------------


def test_version_answers_json(server: Server) -> None:
    answer = server.http.get("/version")
    assert answer.status_code == 200
    assert answer.json()["version"].endswith("noxious-1.0.4")
    assert server.client.version() == answer.content


def test_small_writes_are_not_held_back(server: Server) -> None:
    """A reply written in two small pieces passes at once (Toxiproxy's sockets are TCP_NODELAY;
    noxious' are not, and without quick ACKs a third of such round trips stalled ~90 ms)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def reply_in_two_writes() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while conn.recv(100):
                conn.sendall(b"+")
                conn.sendall(b"OK\n")

    replier = threading.Thread(target=reply_in_two_writes, daemon=True)
    replier.start()
    host, port = listener.getsockname()[:2]
    proxy = make_proxy(server, f"{host}:{port}")
    slow = 0
    with connect(proxy.listen) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(200):
            started = time.monotonic()
            conn.sendall(b"GET ")
            conn.sendall(b"key\n")
            received = b""
            while not received.endswith(b"\n"):
                chunk = conn.recv(100)
                assert chunk, "the proxy closed the connection"
                received += chunk
            slow += time.monotonic() - started > 0.04
    listener.close()
    replier.join(timeout=IO_TIMEOUT)
    assert slow < 10


def test_created_proxy_is_listed_and_relays(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    host, port = proxy.listen.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) != 0, "the reported listen must be the bound address"
    listed = server.client.proxies()
    assert list(listed) == ["echo"]
    assert listed["echo"].enabled is True and listed["echo"].upstream == echo.address
    with connect(proxy.listen) as conn:
        elapsed, received = round_trip(conn)
    assert received == b"ping\n" and elapsed < FAST


def test_create_answers_201_with_toxiproxy_shape(server: Server, echo: EchoServer) -> None:
    answer = server.http.post("/proxies", json={"name": "db", "listen": "127.0.0.1:0", "upstream": echo.address})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["enabled"] is True and body["toxics"] == []
    assert server.http.get("/proxies/db").json() == body


def test_disabled_proxy_refuses_connections_until_enabled(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    open_conn = connect(proxy.listen)
    assert round_trip(open_conn)[1] == b"ping\n"

    proxy.disable()
    assert server.http.get("/proxies/echo").json()["enabled"] is False
    # Disabling closes the connections it carried, as Toxiproxy does.
    assert read_until_closed(open_conn)[1] == b""
    open_conn.close()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)

    proxy.enable()
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[1] == b"ping\n"


def test_delete_removes_the_proxy_and_its_listener(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    assert proxy.destroy() is True
    assert server.client.proxies() == {}
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)


def test_update_changes_upstream_for_new_connections(server: Server, echo: EchoServer) -> None:
    other = EchoServer(prefix=b"other:")
    try:
        proxy = make_proxy(server, echo.address)
        answer = server.http.post("/proxies/echo", json={"upstream": other.address})
        assert answer.status_code == 200
        assert answer.json()["upstream"] == other.address
        assert answer.json()["listen"] == proxy.listen, "an unchanged listen keeps its port"
        with connect(proxy.listen) as conn:
            assert round_trip(conn, b"hi\n")[1] == b"other:hi\n"
    finally:
        other.close()


def test_listen_port_in_use_is_500_and_creates_nothing(server: Server, echo: EchoServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        answer = server.http.post("/proxies", json={"name": "busy", "listen": busy, "upstream": echo.address})
    assert answer.status_code == 500
    assert "in use" in answer.json()["error"].lower()
    assert server.http.get("/proxies/busy").status_code == 404


def test_single_toxic_is_shown_and_wrong_methods_are_405(server: Server, echo: EchoServer) -> None:
    make_proxy(server, echo.address)
    created = server.http.post("/proxies/echo/toxics", json={"type": "timeout", "stream": "upstream"})
    assert created.status_code == 200
    shown = server.http.get("/proxies/echo/toxics/timeout_upstream")
    assert shown.status_code == 200 and shown.json() == created.json()
    assert shown.json()["attributes"] == {"timeout": 0}
    # PATCH is Toxiproxy's current spelling of an update; POST the older one.
    patched = server.http.patch("/proxies/echo/toxics/timeout_upstream", json={"attributes": {"timeout": 5}})
    assert patched.status_code == 200 and patched.json()["attributes"] == {"timeout": 5}
    assert server.http.put("/proxies/echo").status_code == 405
    assert server.http.delete("/proxies").json() == {"error": "method not allowed", "status": 405}


def test_browser_user_agent_is_refused(server: Server) -> None:
    answer = server.http.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert answer.status_code == 403
    assert server.http.get("/proxies", headers={"User-Agent": "curl/8"}).status_code == 200


# --- errors as Toxiproxy's ---------------------------------------------------------------------


def test_duplicate_proxy_is_409(server: Server, echo: EchoServer) -> None:
    proxy_json = {"name": "echo", "listen": "127.0.0.1:0", "upstream": echo.address}
    make_proxy(server, echo.address)
    # Toxiproxy.create() checks for duplicates itself, so the server's 409 is reached through the
    # client's APIConsumer.
    with pytest.raises(ProxyExists):
        APIConsumer.post("/proxies", json=proxy_json)
    answer = server.http.post("/proxies", json=proxy_json)
    assert answer.status_code == 409
    assert answer.json() == {"error": "proxy already exists", "status": 409}


def test_unknown_proxy_and_toxic_are_404(server: Server, echo: EchoServer) -> None:
    with pytest.raises(NotFound):
        APIConsumer.get("/proxies/missing")
    for method, path in [
        ("GET", "/proxies/missing"),
        ("DELETE", "/proxies/missing"),
        ("POST", "/proxies/missing"),
        ("GET", "/proxies/missing/toxics"),
    ]:
        answer = server.http.request(method, path, json={})
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"error": "proxy not found", "status": 404}
    proxy = make_proxy(server, echo.address)
    with pytest.raises(NotFound):
        proxy.destroy_toxic("missing")
    answer = server.http.delete("/proxies/echo/toxics/missing")
    assert answer.status_code == 404
    assert answer.json() == {"error": "toxic not found", "status": 404}
    assert server.http.get("/nowhere").status_code == 404


def test_bad_json_is_400(server: Server) -> None:
    with pytest.raises(InvalidToxic):
        APIConsumer.post("/proxies", data="{not json")
    answer = server.http.post("/proxies", content=b"{not json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == 400 and body["error"].startswith("bad request body: ")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "x", "listen": "127.0.0.1:0"}, "missing required field: upstream"),
        ({"name": "x", "listen": "127.0.0.1:0", "upstream": "no-port"}, "bad request body: field `upstream`"),
        ({"name": "x", "enabled": "yes", "upstream": "127.0.0.1:1"}, "bad request body: field `enabled`"),
    ],
)
def test_bad_proxy_fields_are_400(server: Server, body: dict[str, object], error: str) -> None:
    answer = server.http.post("/proxies", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    assert server.http.get("/proxies").json() == {}


@pytest.mark.parametrize(
    ("toxic", "error"),
    [
        ({"type": "teleport"}, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid, can be either upstream or downstream"),
        ({"type": "latency", "attributes": {"latency": -5}}, "bad request body: attribute `latency`"),
        ({"type": "latency", "toxicity": 1.5}, "bad request body: field `toxicity`"),
        ({"type": "latency", "attributes": {"latency": 5, "jitter": 10}}, "bad request body: attribute `jitter`"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, "bad request body: attribute `average_size`"),
    ],
)
def test_bad_toxics_are_400(server: Server, echo: EchoServer, toxic: dict[str, object], error: str) -> None:
    make_proxy(server, echo.address)
    answer = server.http.post("/proxies/echo/toxics", json=toxic)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)
    assert server.http.get("/proxies/echo/toxics").json() == []


def test_duplicate_toxic_is_409(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="latency", attributes={"latency": 10})
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", attributes={"latency": 20})
    assert [toxic.attributes["latency"] for toxic in proxy.toxics().values()] == [10]


# --- toxics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_toxic_delays_until_removed(server: Server, echo: EchoServer, stream: str) -> None:
    proxy = make_proxy(server, echo.address)
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[0] < FAST

        proxy.add_toxic(type="latency", stream=stream, attributes={"latency": 300})
        toxic = proxy.get_toxic(f"latency_{stream}")
        assert toxic is not None and toxic.attributes == {"latency": 300, "jitter": 0}
        # The toxic reaches a connection that was open before it was added ...
        delayed, received = round_trip(conn)
        assert received == b"ping\n"
        assert 0.29 <= delayed < 2.0
        # ... and new connections.
        with connect(proxy.listen) as fresh:
            assert round_trip(fresh)[0] >= 0.29

        proxy.destroy_toxic(f"latency_{stream}")
        assert proxy.toxics() == {}
        assert round_trip(conn)[0] < FAST


def test_toxics_act_on_their_own_stream(server: Server, echo: EchoServer) -> None:
    """Upstream toxics delay the way to the server, downstream ones the way back, on connections
    open before each change too (noxious' own live update swaps the two)."""
    proxy = make_proxy(server, echo.address)

    def way_in_and_round_trip(conn: socket.socket) -> tuple[float, float]:
        seen = len(echo.arrivals)
        started = time.monotonic()
        elapsed, received = round_trip(conn)
        assert received == b"ping\n"
        return echo.arrivals[seen] - started, elapsed

    with connect(proxy.listen) as conn:
        proxy.add_toxic(type="latency", stream="downstream", attributes={"latency": 300})
        way_in, total = way_in_and_round_trip(conn)
        assert way_in < FAST and total >= 0.29
        proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 300})
        way_in, total = way_in_and_round_trip(conn)
        assert 0.29 <= way_in < 0.29 + FAST and total >= 0.58
        proxy.destroy_toxic("latency_downstream")
        way_in, total = way_in_and_round_trip(conn)
        assert way_in >= 0.29 and total < 0.29 + FAST


def test_open_connection_keeps_its_bytes_across_toxic_changes(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    chunks = [bytes([index]) * 1024 for index in range(60)]
    expected = b"".join(chunks)
    with connect(proxy.listen) as conn:

        def send_slowly() -> None:
            for chunk in chunks:
                conn.sendall(chunk)
                time.sleep(0.01)

        sender = threading.Thread(target=send_slowly)
        sender.start()
        # Each change moves the connection to a new engine while bytes are in flight.
        for _ in range(3):
            proxy.add_toxic(type="latency", attributes={"latency": 50})
            time.sleep(0.1)
            proxy.destroy_toxic("latency_downstream")
            time.sleep(0.05)
        received = b""
        while len(received) < len(expected):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join(timeout=IO_TIMEOUT)
    assert received == expected


def test_unreachable_upstream_closes_the_client(server: Server) -> None:
    proxy = make_proxy(server, f"127.0.0.1:{free_port()}")
    with connect(proxy.listen) as conn:
        try:
            elapsed, received = read_until_closed(conn)
        except ConnectionResetError:
            return
    assert received == b"" and elapsed < 1.0


def test_toxic_update_merges_attributes(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="latency", name="slow", attributes={"latency": 300, "jitter": 5})
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[0] >= 0.29
        # toxiproxy-python 0.1.1 has no toxic update: httpx sends it.
        answer = server.http.post("/proxies/echo/toxics/slow", json={"attributes": {"latency": 10}, "toxicity": 0.5})
        assert answer.status_code == 200
        assert answer.json() == {
            "attributes": {"latency": 10, "jitter": 5},
            "name": "slow",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 0.5,
        }
        assert round_trip(conn)[0] < FAST


def test_timeout_toxic_cuts_connections_without_passing_data(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="timeout", attributes={"timeout": 300})
    with connect(proxy.listen) as conn:
        conn.sendall(b"ping\n")
        elapsed, received = read_until_closed(conn)
    assert received == b""
    assert 0.25 <= elapsed < 3.0

    proxy.destroy_toxic("timeout_downstream")
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[1] == b"ping\n"


def test_timeout_zero_holds_connections_open(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(proxy.listen) as conn:
        conn.sendall(b"ping\n")
        conn.settimeout(0.6)
        with pytest.raises(TimeoutError):
            conn.recv(100)


def test_reset_peer_toxic_resets_connections(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    with connect(proxy.listen) as before:
        assert round_trip(before)[1] == b"ping\n"
        proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 0})
        with pytest.raises(ConnectionResetError):
            round_trip(before)
    with connect(proxy.listen) as conn, pytest.raises(ConnectionResetError):
        round_trip(conn)

    proxy.destroy_toxic("reset_peer_upstream")
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[1] == b"ping\n"


def test_reset_peer_waits_for_its_timeout(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 400})
    with connect(proxy.listen) as conn:
        started = time.monotonic()
        # Downstream: the request passes, its echo is dropped and the reset follows the timeout.
        conn.sendall(b"ping\n")
        with pytest.raises(ConnectionResetError):
            read_until_closed(conn)
        assert time.monotonic() - started >= 0.38


def test_toxicity_zero_leaves_connections_alone(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="reset_peer", toxicity=0.0, attributes={"timeout": 0})
    proxy.add_toxic(type="latency", toxicity=0.0, attributes={"latency": 300})
    with connect(proxy.listen) as conn:
        elapsed, received = round_trip(conn)
    assert received == b"ping\n" and elapsed < FAST


def test_limit_data_closes_after_the_limit(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.add_toxic(type="limit_data", attributes={"bytes": 10})
    with connect(proxy.listen) as conn:
        conn.sendall(b"0123456789ABCDEF")
        _, received = read_until_closed(conn)
    assert received == b"0123456789"


def test_bandwidth_toxic_slows_transfers(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    payload = b"x" * 5000
    with connect(proxy.listen) as conn:
        assert round_trip(conn, payload)[0] < FAST
        proxy.add_toxic(type="bandwidth", attributes={"rate": 10})  # KB/s: 5000 bytes take 0.5 s
        elapsed, received = round_trip(conn, payload)
    assert received == payload
    assert 0.4 <= elapsed < 3.0


def test_slicer_toxic_delivers_all_bytes_slowly(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    # 10-byte slices, 20 ms apart: 200 bytes arrive in about 0.4 s.
    proxy.add_toxic(type="slicer", attributes={"average_size": 10, "size_variation": 5, "delay": 20000})
    payload = bytes(range(200))
    with connect(proxy.listen) as conn:
        elapsed, received = round_trip(conn, payload)
    assert received == payload
    assert elapsed >= 0.2


def test_slow_close_delays_the_close(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    with connect(proxy.listen) as conn:
        conn.sendall(b"close\n")
        assert read_until_closed(conn)[0] < FAST
    proxy.add_toxic(type="slow_close", attributes={"delay": 400})
    with connect(proxy.listen) as conn:
        conn.sendall(b"close\n")
        elapsed, _ = read_until_closed(conn)
    assert 0.38 <= elapsed < 3.0


def test_toxics_survive_disable_and_apply_on_enable(server: Server, echo: EchoServer) -> None:
    proxy = make_proxy(server, echo.address)
    proxy.disable()
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    proxy.enable()
    with connect(proxy.listen) as conn:
        assert round_trip(conn)[0] >= 0.29


# --- populate, reset, config -------------------------------------------------------------------


def test_populate_creates_keeps_and_replaces(server: Server, echo: EchoServer) -> None:
    other = EchoServer(prefix=b"other:")
    try:
        first_listen = f"127.0.0.1:{free_port()}"
        proxies = [
            {"name": "first", "listen": first_listen, "upstream": echo.address},
            {"name": "second", "listen": f"127.0.0.1:{free_port()}", "upstream": echo.address, "enabled": False},
        ]
        # toxiproxy-python's populate() emulates it with GET and create calls: httpx sends the real one.
        answer = server.http.post("/populate", json=proxies)
        assert answer.status_code == 201
        created = {proxy["name"]: proxy for proxy in answer.json()["proxies"]}
        assert created["first"]["enabled"] is True and created["second"]["enabled"] is False
        with connect(first_listen) as conn:
            assert round_trip(conn)[1] == b"ping\n"

        # An unchanged proxy is kept, toxics and all; a changed one is replaced.
        server.http.post("/proxies/first/toxics", json={"type": "latency", "attributes": {"latency": 5}})
        proxies[1]["upstream"] = other.address
        answer = server.http.post("/populate", json=proxies)
        assert answer.status_code == 201
        shown = server.http.get("/proxies").json()
        assert [toxic["name"] for toxic in shown["first"]["toxics"]] == ["latency_downstream"]
        assert shown["second"]["upstream"] == other.address
    finally:
        other.close()


def test_populate_rejects_bad_input_before_creating_anything(server: Server, echo: EchoServer) -> None:
    proxies = [
        {"name": "first", "listen": "127.0.0.1:0", "upstream": echo.address},
        {"name": "second", "listen": "127.0.0.1:0"},
    ]
    answer = server.http.post("/populate", json=proxies)
    assert answer.status_code == 400
    assert answer.json()["error"] == "missing required field: upstream at proxy 2"
    assert server.http.get("/proxies").json() == {}
    assert server.http.post("/populate", json={"not": "a list"}).status_code == 400


def test_reset_enables_everything_and_removes_toxics(server: Server, echo: EchoServer) -> None:
    first = make_proxy(server, echo.address, name="first")
    second = make_proxy(server, echo.address, name="second")
    first.add_toxic(type="latency", attributes={"latency": 300})
    first.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 0})
    second.disable()

    assert server.client.reset() is True
    assert server.http.post("/reset").status_code == 204
    shown = server.http.get("/proxies").json()
    assert all(proxy["enabled"] and proxy["toxics"] == [] for proxy in shown.values())
    for proxy in (first, second):
        with connect(proxy.listen) as conn:
            elapsed, received = round_trip(conn)
        assert received == b"ping\n" and elapsed < FAST


def test_config_file_creates_proxies_at_start(server_binary: Path, echo: EchoServer, tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([{"name": "db", "listen": listen, "upstream": echo.address}]))
    port, process = start_server(server_binary, "-config", str(config))
    try:
        shown = httpx.get(f"http://127.0.0.1:{port}/proxies", timeout=IO_TIMEOUT).json()
        assert shown["db"]["listen"] == listen and shown["db"]["enabled"] is True
        with connect(listen) as conn:
            assert round_trip(conn)[1] == b"ping\n"
    finally:
        assert stop_server(process) == 0


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ('[{"name": "db",\n  "upstream": }]', "line 2"),
        ('[{"name": "db", "listen": "127.0.0.1:0"}]', "missing required field: upstream at proxy 1"),
        ('{"name": "db"}', "expected a JSON array of proxies"),
    ],
)
def test_bad_config_file_stops_with_a_clear_error(
    server_binary: Path, tmp_path: Path, contents: str, message: str
) -> None:
    config = tmp_path / "toxiproxy.json"
    config.write_text(contents)
    run = subprocess.run(
        [str(server_binary), "-port", str(free_port()), "-config", str(config)],
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
    )
    assert run.returncode == 2
    assert str(config) in run.stderr and message in run.stderr


def test_missing_config_file_and_unknown_flag_exit_2(server_binary: Path, tmp_path: Path) -> None:
    for arguments in (["-config", str(tmp_path / "absent.json")], ["-frobnicate"], ["-port", "http"]):
        run = subprocess.run([str(server_binary), *arguments], capture_output=True, text=True, timeout=IO_TIMEOUT)
        assert run.returncode == 2, arguments
        assert run.stderr.startswith("toxiproxy-server: "), arguments


def test_flags_accept_go_spellings(server_binary: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(server_binary), f"--port={port}", "-host=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, process)
    finally:
        assert stop_server(process) == 0
