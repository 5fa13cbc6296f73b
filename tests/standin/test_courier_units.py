"""Courier stand-in, pure pieces: request building, text splitting, URNs, access checks, de-dup keys, config."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from standin.common.switches import SwitchError
from standin.courier.access import AccessConfig, RequestNotPermitted
from standin.courier.channels import Channel
from standin.courier.config import DEFAULT_DISALLOWED_NETWORKS, ConfigError, load_config, parse_networks
from standin.courier.dedup import SeenMessages, text_hash
from standin.courier.external import build_requests, encode_value, split_text
from standin.courier.responses import go_json
from standin.courier.sender import Foreman
from standin.courier.sessions import SessionWait, session_wait
from standin.courier.switches import DECLARED, load
from standin.courier.timefmt import parse_rfc3339, rfc3339
from standin.courier.urns import URNError, parse_phone

MSG = {"id": 42, "urn": "tel:+250788123123", "text": "Hi & bye <3", "channel_uuid": "c"}


def channel(**config: object) -> Channel:
    return Channel(
        id=1,
        uuid="8eb23e93-5ecb-45ba-b726-3b064e0c56ab",
        org_id=1,
        channel_type="EX",
        name="ex",
        address="+12065550100",
        tps=10,
        config={"send_url": "http://agg/send", **config},
    )


def test_default_body_is_urlencoded_with_every_variable() -> None:
    [request] = build_requests(channel(), MSG, "Courier/test")

    assert request.method == "POST" and request.url == "http://agg/send"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body is not None
    fields = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert fields == {
        "id": "42",
        "text": "Hi & bye <3",
        "to": "+250788123123",
        "to_no_plus": "250788123123",
        "from": "+12065550100",
        "from_no_plus": "12065550100",
        "channel": "8eb23e93-5ecb-45ba-b726-3b064e0c56ab",
    }


def test_json_and_xml_bodies_encode_values_for_their_format() -> None:
    [as_json] = build_requests(
        channel(content_type="json", body='{"id":{{id}},"text":{{text}},"qr":{{quick_replies}}}'), MSG, "UA"
    )
    [as_xml] = build_requests(channel(content_type="xml", body="<m><t>{{text}}</t></m>"), MSG, "UA")

    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.body is not None and json.loads(as_json.body) == {"id": "42", "text": "Hi & bye <3", "qr": []}
    assert b"\\u0026" in as_json.body and b"\\u003c" in as_json.body  # escaped as Go does
    assert as_xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert as_xml.body == b"<m><t>Hi &amp; bye &lt;3</t></m>"


def test_get_method_substitutes_into_the_url_and_sends_no_body() -> None:
    [request] = build_requests(channel(method="GET", send_url="http://agg/s?to={{to}}&text={{text}}"), MSG, "UA")

    assert request.method == "GET" and request.body is None
    assert request.url == "http://agg/s?to=%2B250788123123&text=Hi+%26+bye+%3C3"


def test_authorization_headers_and_response_check_come_from_config() -> None:
    [request] = build_requests(
        channel(send_authorization="Token abc", headers={"X-Key": 7}, mt_response_check="OK"), MSG, "UA"
    )

    assert request.headers["Authorization"] == "Token abc"
    assert request.headers["X-Key"] == "7"
    assert request.headers["User-Agent"] == "UA"
    assert request.response_check == "OK"


def test_missing_send_url_is_a_config_error() -> None:
    bare = Channel(1, "u", 1, "EX", "n", "+1", 0, {})
    with pytest.raises(ValueError, match="send_url"):
        build_requests(bare, MSG, "UA")


def test_long_text_is_split_into_parts_one_request_each() -> None:
    text = "word " * 70  # 350 bytes
    parts = split_text(text.strip(), 160)

    assert len(parts) == 3
    assert all(len(p.encode()) <= 160 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert len(build_requests(channel(max_length=160), {**MSG, "text": text}, "UA")) == 3
    assert len(build_requests(channel(max_length=640), {**MSG, "text": text}, "UA")) == 1


def test_encode_value_urlencoded_matches_go_query_escape() -> None:
    assert encode_value("a b+c/é~_.-", "urlencoded") == "a+b%2Bc%2F%C3%A9~_.-"


@pytest.mark.parametrize(
    ("raw", "identity"),
    [
        ("+250788123123", "tel:+250788123123"),
        (" +1 (206) 555-0100 ", "tel:+12065550100"),
        ("250788123123", "tel:+250788123123"),
    ],
)
def test_phone_numbers_normalise_to_e164(raw: str, identity: str) -> None:
    assert parse_phone(raw).identity == identity


@pytest.mark.parametrize("raw", ["12", "0788123123", "+0123456789", "hello"])
def test_impossible_numbers_are_refused(raw: str) -> None:
    with pytest.raises(URNError, match="not a possible number"):
        parse_phone(raw)


def test_default_disallowed_networks_block_private_and_loopback_only() -> None:
    access = AccessConfig(parse_networks(DEFAULT_DISALLOWED_NETWORKS))

    for blocked in ("127.0.0.1", "10.1.2.3", "172.20.0.5", "192.168.1.1", "169.254.1.1", "::1", "fe80::1"):
        assert access.is_disallowed(blocked), blocked
    for allowed in ("127.0.0.2", "8.8.8.8", "172.32.0.1"):
        assert not access.is_disallowed(allowed), allowed


def test_access_check_resolves_the_host() -> None:
    access = AccessConfig(parse_networks("127.0.0.1"))

    with pytest.raises(RequestNotPermitted):
        asyncio.run(access.check("http://localhost:8070/send"))
    asyncio.run(AccessConfig(()).check("http://localhost:8070/send"))


def test_config_reads_real_env_names_and_rejects_bad_values() -> None:
    config = load_config({"COURIER_PORT": "9090", "COURIER_MAX_WORKERS": "3", "COURIER_DISALLOWED_NETWORKS": ""})

    assert (config.port, config.max_workers, config.disallowed_networks) == (9090, 3, ())
    assert config.address == "0.0.0.0" and config.spool_dir == "/var/spool/courier"
    assert len(load_config({}).disallowed_networks) == 7
    with pytest.raises(ConfigError, match="COURIER_DB"):
        load_config({"COURIER_DB": "mysql://x"})
    with pytest.raises(ConfigError, match="COURIER_MAX_WORKERS"):
        load_config({"COURIER_MAX_WORKERS": "-1"})


def test_seen_msgs_keys_are_truncated_interval_timestamps() -> None:
    seen = SeenMessages.__new__(SeenMessages)
    seen._interval_s = 2
    moment = datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC).timestamp()

    assert seen.keys(moment) == ["seen-msgs:2024-03-01T10:00:04", "seen-msgs:2024-03-01T10:00:02"]
    assert text_hash("hi") == "fa95c5321643bf025460922e0f6a25301c46a0f0"  # SHA1 of text + "|" + attachments, as courier
    assert text_hash("hi") != text_hash("hi", ["image/png:x"])


def test_times_round_trip_in_go_format() -> None:
    moment = datetime(2024, 3, 1, 10, 0, 5, 120000, tzinfo=UTC)

    assert rfc3339(moment) == "2024-03-01T10:00:05.12Z"
    assert rfc3339(moment.replace(microsecond=0)) == "2024-03-01T10:00:05Z"
    assert parse_rfc3339("2024-03-01T12:00:05.12+02:00") == moment
    with pytest.raises(ValueError):
        parse_rfc3339("2024-03-01 10:00")


def test_responses_are_compact_go_json() -> None:
    assert go_json({"a": "<b>&é"}) == '{"a":"\\u003cb\\u003e\\u0026é"}\n'


def test_every_switch_documents_its_contract_line_except_planted_bugs() -> None:
    for switch in DECLARED:
        assert switch.doc
        assert switch.contract or "PLANTED BUG" in switch.doc, switch.name
    assert load("")["drop_after_ack"] == 0.0
    with pytest.raises(SwitchError, match=r"unknown switch courier\.nope"):
        load('{"nope": 1}')


def test_v9_2_defaults_of_the_switches() -> None:
    defaults = load("")

    assert defaults["redis_read_timeout_s"] == 0.0 and defaults["redis_connect_timeout_s"] == 30.0
    assert defaults["exit_without_redis"] is True
    assert defaults["nonretryable_fails"] is True
    assert defaults["session_timeouts"] is True


class _BlackHoledQueue:
    """An outgoing queue whose pop never gets its reply, as on a black-holed Redis."""

    def __init__(self) -> None:
        self.pops = 0

    async def pop(self) -> None:
        self.pops += 1
        await asyncio.Event().wait()


def test_foreman_pop_is_not_bounded_by_its_30_s_context(monkeypatch: pytest.MonkeyPatch) -> None:
    # v9.2.1 passes the foreman's context to the channel lookup only; the Redis pop never sees it
    monkeypatch.setattr("standin.courier.sender.POP_TIMEOUT_S", 0.05)
    queue = _BlackHoledQueue()

    async def scenario() -> None:
        fakes: Any = None
        foreman = Foreman(queue, fakes, fakes, fakes, fakes, fakes, fakes, 4, True, True, 30.0, True)  # type: ignore[arg-type]
        foreman.start()
        await asyncio.sleep(0.5)
        with pytest.raises(TimeoutError):  # a stuck foreman also holds up a graceful stop, as in v9.2.1
            await asyncio.wait_for(foreman.stop(), timeout=0.2)
        await foreman._client.aclose()

    asyncio.run(scenario())

    assert queue.pops == 1


def test_session_wait_is_read_from_the_last_message_of_a_sprint() -> None:
    last = {"id": 1, "session_id": 7, "session_status": "W", "session_timeout": 300}
    last["session_wait_started_on"] = "2024-05-01T10:00:00.123456789Z"  # Go writes nanoseconds

    assert session_wait(last) == SessionWait(7, datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), 300)
    assert session_wait({"id": 2, "session_id": 7, "session_status": "W"}) is None


def test_the_planted_discard_spool_on_start_deletes_spooled_msgs_unread(tmp_path: Any) -> None:
    from standin.courier.spool import discard_spooled, write_to_spool

    (tmp_path / "msgs").mkdir()
    write_to_spool(str(tmp_path), "msgs", {"uuid": "a1", "text": "hi"})
    write_to_spool(str(tmp_path), "msgs", {"uuid": "b2", "text": "yo"})
    assert load(None)["discard_spool_on_start"] is False  # planted: off unless a test turns it on
    assert discard_spooled(str(tmp_path), "msgs") == ["a1", "b2"]
    assert list((tmp_path / "msgs").iterdir()) == []
