"""The aggregator (simulated phone network): recording, configured answers, callbacks, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standin.aggregator.behaviour import Behaviour, BehaviourError
from standin.aggregator.parsing import parse_send
from standin.aggregator.records import MTRecord, RecordStore
from test_courier_support import (
    STANDIN_SRC,
    ServiceProcess,
    aggregator_fixture,  # noqa: F401 - fixture
    free_port,
    wait_for,
)

Aggregator = tuple[ServiceProcess, str]
CHANNEL = "8eb23e93-5ecb-45ba-b726-3b064e0c56ab"


def send(base: str, msg_id: int, text: str = "hello", **extra: str) -> httpx.Response:
    form = {"id": str(msg_id), "text": text, "to": "+250788123123", "from": "+12065550100", "channel": CHANNEL}
    return httpx.post(f"{base}/send", data={**form, **extra}, timeout=10)


class CallbackSink:
    """A tiny HTTP server standing in for courier's status endpoints."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    server = CallbackSink()
    yield server
    server.close()


def test_records_every_send_with_its_fields(aggregator: Aggregator) -> None:
    _, base = aggregator

    assert send(base, 11, "first").status_code == 200
    assert send(base, 12, "second").status_code == 200
    as_json = httpx.post(f"{base}/json", json={"id": "13", "text": "third", "to": "+1", "channel": CHANNEL})
    assert as_json.status_code == 200

    records = httpx.get(f"{base}/records").json()["records"]
    assert [(r["seq"], r["msg_id"], r["text"]) for r in records] == [
        (1, 11, "first"),
        (2, 12, "second"),
        (3, 13, "third"),
    ]
    assert records[0]["to"] == "+250788123123" and records[0]["from"] == "+12065550100"
    assert records[0]["channel"] == CHANNEL and records[0]["answer"] == "200" and records[2]["path"] == "/json"
    assert abs(records[0]["received_wall_ns"] / 1e9 - time.time()) < 30
    later = httpx.get(f"{base}/records", params={"after": 2}).json()
    assert [r["seq"] for r in later["records"]] == [3] and later["last_seq"] == 3 and later["more"] is False
    page = httpx.get(f"{base}/records", params={"after": 0, "limit": 2}).json()
    assert len(page["records"]) == 2 and page["more"] is True


def test_delete_clears_records_but_keeps_the_sequence(aggregator: Aggregator) -> None:
    _, base = aggregator
    send(base, 1)
    send(base, 2)

    cleared = httpx.delete(f"{base}/records").json()
    send(base, 3)

    assert cleared == {"cleared": 2, "last_seq": 2}
    assert [r["seq"] for r in httpx.get(f"{base}/records").json()["records"]] == [3]


def test_configured_status_error_rate_and_body(aggregator: Aggregator) -> None:
    _, base = aggregator

    httpx.post(f"{base}/config", json={"status": 503, "body": "busy"})
    failing = send(base, 1)
    httpx.post(f"{base}/config", json={"status": 200, "error_rate": 0.5, "error_status": 429})
    answers = [send(base, n).status_code for n in range(2, 42)]

    assert failing.status_code == 503 and failing.text == "busy"
    assert set(answers) == {200, 429}
    records = httpx.get(f"{base}/records").json()["records"]
    assert len(records) == 41  # the network got every send, whatever it answered
    assert records[0]["answer"] == "503"


def test_record_failed_false_keeps_only_accepted_sends(aggregator: Aggregator) -> None:
    _, base = aggregator
    httpx.post(f"{base}/config", json={"status": 500, "record_failed": False})

    send(base, 1)

    assert httpx.get(f"{base}/records").json()["records"] == []


def test_latency_and_hang(aggregator: Aggregator) -> None:
    _, base = aggregator
    httpx.post(f"{base}/config", json={"latency_ms": 600})
    started = time.monotonic()
    assert send(base, 1).status_code == 200
    assert time.monotonic() - started >= 0.6

    httpx.post(f"{base}/config", json={"latency_ms": 0, "timeout_rate": 1.0, "hang_ms": 300})
    with pytest.raises(httpx.HTTPError):
        send(base, 2)
    httpx.post(f"{base}/config", json={"hang_ms": 5000})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base}/send", data={"id": "3"}, timeout=0.5)
    answers = [r["answer"] for r in httpx.get(f"{base}/records").json()["records"]]
    assert answers == ["200", "hang", "hang"]


def test_delivery_callback_is_posted_after_the_delay(aggregator: Aggregator, sink: CallbackSink) -> None:
    _, base = aggregator
    httpx.post(f"{base}/config", json={"callback_base": sink.base, "delivered_delay_ms": 300})

    sent_at = time.monotonic()
    send(base, 77)

    wait_for(lambda: sink.paths, 5, "the delivery callback")
    assert time.monotonic() - sent_at >= 0.3
    assert sink.paths == [f"/c/ex/{CHANNEL}/delivered?id=77"]
    assert httpx.get(f"{base}/health").json()["callbacks"] == {"scheduled": 1, "succeeded": 1, "failed": 0}


def test_no_callback_for_failed_sends_or_when_disabled(aggregator: Aggregator, sink: CallbackSink) -> None:
    _, base = aggregator
    httpx.post(f"{base}/config", json={"callback_base": sink.base, "delivered_delay_ms": 0, "status": 500})
    send(base, 1)
    httpx.post(f"{base}/config", json={"status": 200, "callback": ""})
    send(base, 2)
    httpx.post(f"{base}/config", json={"callback": "sent", "channel_uuid": "fallback-uuid"})
    httpx.post(f"{base}/send", data={"id": "3", "text": "no channel field"})

    wait_for(lambda: sink.paths, 5, "the one callback due")
    time.sleep(0.3)
    assert sink.paths == ["/c/ex/fallback-uuid/sent?id=3"]


def test_failed_callbacks_are_counted(aggregator: Aggregator) -> None:
    _, base = aggregator
    closed = f"http://127.0.0.1:{free_port()}"
    httpx.post(f"{base}/config", json={"callback_base": closed, "delivered_delay_ms": 0})

    send(base, 5)

    wait_for(lambda: httpx.get(f"{base}/health").json()["callbacks"]["failed"] == 1, 5, "a failed callback")


def test_bad_config_is_refused_with_the_reason(aggregator: Aggregator) -> None:
    _, base = aggregator
    cases = [
        ({"latency": 5}, "unknown setting latency"),
        ({"error_rate": 2}, "error_rate must be within [0, 1]"),
        ({"status": "200"}, "status expects a int"),
        ({"callback": "read"}, "callback must be one of"),
    ]
    for body, message in cases:
        response = httpx.post(f"{base}/config", json=body)
        assert response.status_code == 400 and message in response.json()["error"], body
    not_json = httpx.post(f"{base}/config", content=b"{")
    assert not_json.status_code == 400
    assert httpx.get(f"{base}/config").json() == Behaviour().as_dict()
    assert httpx.get(f"{base}/records", params={"after": "x"}).status_code == 400


def test_memory_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        "standin.aggregator",
        {"AGGREGATOR_PORT": str(port), "AGGREGATOR_MAX_RECORDS": "3"},
        tmp_path / "aggregator.log",
        f"{base}/health",
    )
    try:
        process.start()
        for n in range(5):
            send(base, n)
        body = httpx.get(f"{base}/records").json()
        health = httpx.get(f"{base}/health").json()
    finally:
        process.kill()

    assert [r["msg_id"] for r in body["records"]] == [2, 3, 4]
    assert body["dropped"] == 2 and health["dropped"] == 2 and health["records"] == 3


def test_bad_environment_exits_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(STANDIN_SRC), "AGGREGATOR_MAX_RECORDS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "standin.aggregator"], env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 2
    assert "AGGREGATOR_MAX_RECORDS" in result.stderr and "Traceback" not in result.stderr


def test_parse_send_reads_urlencoded_json_xml_and_query() -> None:
    assert parse_send("application/x-www-form-urlencoded", b"id=1&text=a+b&to=%2B1", {}) == {
        "id": "1",
        "text": "a b",
        "to": "+1",
    }
    assert parse_send("application/json", json.dumps({"id": 2, "text": "j"}).encode(), {}) == {"id": "2", "text": "j"}
    assert parse_send("text/xml", b"<msg><id>3</id><text>x &amp; y</text></msg>", {}) == {"id": "3", "text": "x & y"}
    assert parse_send("", b"", {"id": "4", "other": "z"}) == {"id": "4"}
    with pytest.raises(ValueError):
        parse_send("application/json", b"{", {})


def test_record_store_pages_from_a_sequence_number() -> None:
    store = RecordStore(capacity=10)
    for n in range(5):
        store.add(MTRecord(0, n, str(n), "", "", "", "", "POST", "/", 0, "200"))

    assert [r.seq for r in store.after(2, 10)] == [3, 4, 5]
    assert [r.seq for r in store.after(0, 2)] == [1, 2]
    assert store.after(5, 10) == []
    with pytest.raises(BehaviourError):
        Behaviour().updated({"hang_ms": -1})
