"""The snapshot model: JSON round trip, located errors, time conversions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from resilience.checks.synthetic import clean_world
from resilience.snapshot import (
    Delivery,
    SnapshotError,
    iso_to_wall_ns,
    read_snapshot,
    snapshot_from_dict,
    wall_ns_to_iso,
    write_snapshot,
)


def test_round_trip(tmp_path: Path) -> None:
    _, snapshot = clean_world(2)
    snapshot.logs = {"courier-1": ["started"]}
    snapshot.runs[0].path = ["node-1", "node-2"]
    snapshot.runs[0].results = {"color": {"value": "red"}}
    write_snapshot(snapshot, tmp_path / "snapshot.json")
    assert read_snapshot(tmp_path / "snapshot.json") == snapshot


def test_integer_message_ids_are_read_as_strings() -> None:
    raw = {"aggregator": [{"seq": 1, "msg_id": 42, "to": "+250788", "text": "hi", "received_wall_ns": 5}]}
    (delivery,) = snapshot_from_dict(raw).aggregator
    assert delivery.msg_id == "42" and delivery.recipient == "tel:+250788" and delivery.accepted


def test_unknown_record_fields_are_ignored_and_optional_ones_default() -> None:
    raw = {"msgs": [{"id": 1, "uuid": "u", "direction": "O", "status": "Q", "text": "t", "org_id": 7}]}
    (msg,) = snapshot_from_dict(raw).msgs
    assert msg.error_count == 0 and msg.urn is None


MSG: dict[str, Any] = {"id": 1, "uuid": "u", "direction": "I", "status": "P", "text": "hi"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], r"s.json: expected a JSON object at the top, got list"),
        ({"msg": []}, r"unknown top-level keys \['msg'\]"),
        ({"quiescent": "yes"}, r"quiescent: expected true or false"),
        ({"msgs": {}}, r"msgs: expected a list, got dict"),
        ({"msgs": [MSG, {k: v for k, v in MSG.items() if k != "uuid"}]}, r"msgs\[1\]: missing field 'uuid'"),
        ({"msgs": [{**MSG, "id": "1"}]}, r"msgs\[0\].id: expected int, got '1'"),
        ({"msgs": [{**MSG, "id": True}]}, r"msgs\[0\].id: expected int, got True"),
        ({"msgs": [{**MSG, "status": "Z"}]}, r"msgs\[0\].status: 'Z' is not one of DEFHIPQSW"),
        ({"msgs": [{**MSG, "direction": "X"}]}, r"msgs\[0\].direction: 'X' is not I or O"),
        ({"msgs": [{**MSG, "urn": 5}]}, r"msgs\[0\].urn: expected str or null, got 5"),
        ({"runs": [{"uuid": "r", "flow_uuid": "f", "status": "W", "path": [1]}]}, r"runs\[0\].path: expected a list"),
        ({"sessions": [{"uuid": "s", "status": "A"}]}, r"sessions\[0\].status: 'A' is not one of CFIWX"),
        ({"logs": {"web-1": "line"}}, r"logs\['web-1'\]: expected a list of strings"),
    ],
)
def test_bad_snapshots_are_located(raw: object, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        snapshot_from_dict(raw, "s.json")


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no such snapshot file"):
        read_snapshot(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"msgs": [\n  {"id": 1,,}\n]}')
    with pytest.raises(SnapshotError, match=r"broken.json:2: not JSON"):
        read_snapshot(broken)


def test_iso_times_convert_to_wall_nanoseconds_and_back() -> None:
    assert iso_to_wall_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert iso_to_wall_ns("1970-01-01T02:00:01+02:00") == 1_000_000_000
    assert iso_to_wall_ns("1970-01-01 00:00:02") == 2_000_000_000  # naive: UTC, as psycopg may print
    wall = 1_795_000_000_123_456_000
    assert iso_to_wall_ns(wall_ns_to_iso(wall)) == wall


def test_json_written_is_plain(tmp_path: Path) -> None:
    _, snapshot = clean_world(1)
    snapshot.aggregator = [Delivery(1, "9", "tel:+1", "ünïcode", 3, "200")]
    write_snapshot(snapshot, tmp_path / "s.json")
    raw = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert raw["aggregator"] == [
        {"seq": 1, "msg_id": "9", "to": "tel:+1", "text": "ünïcode", "received_wall_ns": 3, "answer": "200"}
    ]
