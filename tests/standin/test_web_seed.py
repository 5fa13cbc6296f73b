"""Web stand-in: `manage.py seed_org` seeds the harness' org idempotently and refuses bad exports clearly."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_web_support import SEND_URL, SHARED_FLOWS, WebStack, run_manage, seed

# fixtures web_stack, web_db come from the support module
pytest_plugins = ["test_web_support"]

EX_BODY = (
    "id={{id}}&text={{text}}&to={{to}}&to_no_plus={{to_no_plus}}&from={{from}}"
    "&from_no_plus={{from_no_plus}}&channel={{channel}}"
)


@pytest.fixture()
def exports() -> Path:
    if not SHARED_FLOWS.is_dir():
        pytest.skip(f"{SHARED_FLOWS} is not present beside the checkout")
    return SHARED_FLOWS


def count(conn: psycopg.Connection[Any], sql: str, *params: Any) -> int:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def test_seed_creates_org_token_channel_flows_and_triggers(
    seeded: dict[str, Any], web_db: psycopg.Connection[Any], exports: Path
) -> None:
    out = seeded
    assert set(out) == {"org_id", "org_uuid", "channel_uuid", "api_token", "flows"}
    assert out["flows"] == {
        "Favorites": "aef60b1e-14ab-4095-81ee-fce02b3e320d",
        "Rate us": "d6a23704-c558-40c0-b850-5102cf69896c",
    }
    org = web_db.execute("SELECT uuid::text, name FROM orgs_org WHERE id = %s", (out["org_id"],)).fetchone()
    assert org == (out["org_uuid"], "Resilience")
    token = web_db.execute(
        "SELECT org_id, is_active FROM api_apitoken WHERE key = %s", (out["api_token"],)
    ).fetchone()
    assert token == (out["org_id"], True) and len(out["api_token"]) == 40
    channel = web_db.execute(
        "SELECT org_id, channel_type, config, tps, is_active FROM channels_channel WHERE uuid = %s",
        (out["channel_uuid"],),
    ).fetchone()
    assert channel is not None
    org_id, channel_type, config, tps, is_active = channel
    assert (org_id, channel_type, tps, is_active) == (out["org_id"], "EX", 10, True)
    assert config["send_url"] == SEND_URL
    assert (config["method"], config["content_type"], config["body"], config["max_length"]) == (
        "POST",
        "urlencoded",
        EX_BODY,
        640,
    )
    flow = web_db.execute(
        "SELECT flow_type, spec_version, definition FROM flows_flow WHERE uuid = %s",
        (out["flows"]["Favorites"],),
    ).fetchone()
    assert flow is not None
    exported = json.loads((exports / "favorites_v13.json").read_text())["flows"][0]
    assert flow == ("M", "13.0.0", exported)
    triggers = web_db.execute(
        "SELECT t.trigger_type, t.keywords, t.match_type, f.name FROM triggers_trigger t "
        "JOIN flows_flow f ON f.id = t.flow_id WHERE t.org_id = %s",
        (out["org_id"],),
    ).fetchall()
    assert triggers == [("K", ["rating"], "F", "Rate us")]


def test_seed_is_idempotent_and_follows_a_new_send_url(
    web_stack: WebStack, web_db: psycopg.Connection[Any], seeded: dict[str, Any], exports: Path
) -> None:
    org_id = seeded["org_id"]
    try:
        again = seed(web_stack, "--flows", str(exports), "--send-url", "http://elsewhere:9/x")
        assert again == seeded
        assert count(web_db, "SELECT count(*) FROM orgs_org WHERE name = 'Resilience'") == 1
        assert count(web_db, "SELECT count(*) FROM channels_channel WHERE org_id = %s", org_id) == 1
        assert count(web_db, "SELECT count(*) FROM api_apitoken WHERE org_id = %s", org_id) == 1
        assert count(web_db, "SELECT count(*) FROM flows_flow WHERE org_id = %s", org_id) == 2
        assert count(web_db, "SELECT count(*) FROM triggers_trigger WHERE org_id = %s", org_id) == 1
        send_url = web_db.execute(
            "SELECT config->>'send_url' FROM channels_channel WHERE org_id = %s", (org_id,)
        )
        assert send_url.fetchone() == ("http://elsewhere:9/x",)
    finally:
        seed(web_stack, "--flows", str(exports), "--send-url", SEND_URL)


def synthetic_export(tmp_path: Path, name: str = "Synthetic") -> tuple[Path, str]:
    """A minimal valid export with fresh UUIDs (flow UUIDs are unique across orgs)."""
    flow_uuid = str(uuid.uuid4())
    flow = {**GOOD_FLOW, "uuid": flow_uuid, "name": name, "nodes": [{**NODE, "uuid": str(uuid.uuid4())}]}
    return write(tmp_path, f"{name}.json", {"version": "13", "flows": [flow]}), flow_uuid


def test_tps_and_org_name_are_taken_from_the_arguments(
    web_stack: WebStack, web_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path, flow_uuid = synthetic_export(tmp_path)
    out = seed(web_stack, "--flows", str(path), "--send-url", SEND_URL, "--name", "Seven", "--tps", "7")
    assert out["flows"] == {"Synthetic": flow_uuid}
    row = web_db.execute(
        "SELECT o.name, c.tps FROM channels_channel c JOIN orgs_org o ON o.id = c.org_id WHERE c.uuid = %s",
        (out["channel_uuid"],),
    ).fetchone()
    assert row == ("Seven", 7)


def test_seeded_org_gets_the_harness_api_rates_and_an_empty_rate_leaves_rapidpros_default(
    web_stack: WebStack, web_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path, _ = synthetic_export(tmp_path, "Rates")
    name = f"Rates {uuid.uuid4().hex[:6]}"

    def api_rates(org_id: int) -> Any:
        return web_db.execute("SELECT api_rates FROM orgs_org WHERE id = %s", (org_id,)).fetchone()[0]  # type: ignore[index]

    seeded = seed(web_stack, "--flows", str(path), "--send-url", SEND_URL, "--name", name)
    # the harness's own choice: real orgs start with {} and so with RapidPro's 2500/hour on every scope
    assert api_rates(seeded["org_id"]) == dict.fromkeys(("v2", "v2.contacts", "v2.messages", "v2.runs"), "100000/hour")
    again = seed(web_stack, "--flows", str(path), "--send-url", SEND_URL, "--name", name, "--api-rate", "")
    assert again["org_id"] == seeded["org_id"] and api_rates(seeded["org_id"]) == {}
    done = run_manage(web_stack.env(), "seed_org", "--flows", str(path), "--send-url", SEND_URL, "--api-rate", "x")
    assert done.returncode == 1 and "--api-rate: expected <requests>/<second|minute|hour|day>" in done.stderr


def test_a_flow_of_another_org_is_refused(web_stack: WebStack, tmp_path: Path) -> None:
    path, _ = synthetic_export(tmp_path)
    seed(web_stack, "--flows", str(path), "--send-url", SEND_URL, "--name", "Owner")
    done = run_manage(
        web_stack.env(), "seed_org", "--flows", str(path), "--send-url", SEND_URL, "--name", "Thief"
    )
    assert done.returncode == 1
    assert f"{path}: " in done.stderr and "already belongs to another org" in done.stderr


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


NODE = {"uuid": "11111111-1111-4111-8111-111111111111", "actions": [], "exits": []}
GOOD_FLOW = {
    "uuid": "22222222-2222-4222-8222-222222222222",
    "name": "Ok",
    "spec_version": "13.0.0",
    "nodes": [NODE],
}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{ not json", "line 1 column 3: not valid JSON"),
        ([], 'top level: expected a JSON object with "version" and "flows"'),
        ({"version": "11", "flows": [GOOD_FLOW]}, "\"version\": expected an export version >= 13, got '11'"),
        ({"version": "13", "flows": []}, '"flows": expected a non-empty list of flow objects'),
        (
            {"version": "13", "flows": [{**GOOD_FLOW, "uuid": "nope"}]},
            "flows[0].uuid: expected a UUID string",
        ),
        (
            {"version": "13", "flows": [{**GOOD_FLOW, "nodes": []}]},
            "flows[0].nodes: expected a non-empty list",
        ),
        (
            {"version": "13", "flows": [{**GOOD_FLOW, "nodes": [{}]}]},
            "flows[0].nodes[0]: expected a node object",
        ),
        ({"version": "13", "flows": [{**GOOD_FLOW, "type": "sms"}]}, "flows[0].type: expected one of"),
        (
            {
                "version": "13",
                "flows": [GOOD_FLOW],
                "triggers": [{"trigger_type": "K", "keyword": "x", "flow": {}}],
            },
            "triggers[0].flow.uuid: expected the UUID of a flow in the same export",
        ),
    ],
)
def test_bad_export_is_a_clear_error_and_exit_1(
    web_stack: WebStack, web_db: psycopg.Connection[Any], tmp_path: Path, content: Any, expected: str
) -> None:
    path = write(tmp_path, "bad.json", content)
    orgs_before = count(web_db, "SELECT count(*) FROM orgs_org")

    done = run_manage(
        web_stack.env(), "seed_org", "--flows", str(path), "--send-url", SEND_URL, "--name", "Bad"
    )

    assert done.returncode == 1
    assert f"{path}: " in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert count(web_db, "SELECT count(*) FROM orgs_org") == orgs_before  # nothing half-seeded


def test_good_export_in_the_same_shape_is_accepted(web_stack: WebStack, tmp_path: Path) -> None:
    """The counterpart of the refusals: the minimal export they spoil is itself valid."""
    path = write(tmp_path, "ok.json", {"version": "13", "flows": [GOOD_FLOW]})
    out = seed(web_stack, "--flows", str(path), "--send-url", SEND_URL, "--name", "Minimal")
    assert out["flows"] == {"Ok": GOOD_FLOW["uuid"]}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--flows", "/no/such/place", "--send-url", SEND_URL], "/no/such/place: no such file or directory"),
        (["--flows", "{empty}", "--send-url", SEND_URL], "directory holds no *.json flow export"),
        (["--flows", "{flows}", "--send-url", "aggregator:8070"], "--send-url: expected an http(s):// URL"),
        (["--flows", "{flows}", "--send-url", SEND_URL, "--tps", "0"], "--tps: expected a positive integer"),
    ],
)
def test_bad_arguments_are_clear_errors(
    web_stack: WebStack, exports: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    filled = [a.format(empty=empty, flows=exports) for a in args]
    done = run_manage(web_stack.env(), "seed_org", *filled)
    assert done.returncode == 1
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
