"""Bad flow files are refused when loaded, with a FlowError that says where and what was expected."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standin.flows import Engine, FlowError, load_export, load_flow, load_triggers

FLOW_UUID = "11111111-1111-4111-8111-111111111111"
ASK = "22222222-2222-4222-8222-222222222222"
THANKS = "33333333-3333-4333-8333-333333333333"


def valid_export() -> dict[str, Any]:
    """A small valid export: ask (wait + switch with a timeout) -> thanks."""
    return {
        "version": "13",
        "flows": [
            {
                "uuid": FLOW_UUID,
                "name": "Tiny",
                "spec_version": "13.0.0",
                "language": "eng",
                "type": "messaging",
                "nodes": [
                    {
                        "uuid": ASK,
                        "actions": [{"type": "send_msg", "uuid": "a0000000-0000-4000-8000-000000000001", "text": "Q?"}],
                        "router": {
                            "type": "switch",
                            "operand": "@input.text",
                            "result_name": "Answer",
                            "wait": {"type": "msg", "timeout": {"seconds": 60, "category_uuid": "c-late"}},
                            "cases": [
                                {
                                    "uuid": "k-1",
                                    "type": "has_number_between",
                                    "arguments": ["1", "5"],
                                    "category_uuid": "c-ok",
                                },
                            ],
                            "categories": [
                                {"uuid": "c-ok", "name": "OK", "exit_uuid": "e-ok"},
                                {"uuid": "c-other", "name": "Other", "exit_uuid": "e-other"},
                                {"uuid": "c-late", "name": "No Response", "exit_uuid": "e-late"},
                            ],
                            "default_category_uuid": "c-other",
                        },
                        "exits": [
                            {"uuid": "e-ok", "destination_uuid": THANKS},
                            {"uuid": "e-other", "destination_uuid": ASK},
                            {"uuid": "e-late", "destination_uuid": None},
                        ],
                    },
                    {
                        "uuid": THANKS,
                        "actions": [
                            {
                                "type": "send_msg",
                                "uuid": "a0000000-0000-4000-8000-000000000002",
                                "text": "Thanks @results.answer",
                            }
                        ],
                        "exits": [{"uuid": "e-end"}],
                    },
                ],
            }
        ],
    }


def ask_node(export: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = export["flows"][0]["nodes"][0]
    return node


def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    export = copy.deepcopy(valid_export())
    change(export)
    return export


def test_the_valid_export_loads() -> None:
    flows = load_export(valid_export())
    assert flows[FLOW_UUID].name == "Tiny" and flows[FLOW_UUID].spec_version == "13.0.0"


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(export: dict[str, Any]) -> None:
        target: Any = export
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()
NODE = ["flows", 0, "nodes", 0]
ROUTER = [*NODE, "router"]

BAD_EXPORTS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    (
        "unknown action type",
        _set([*NODE, "actions", 0], {"type": "call_webhook", "uuid": "a-9", "url": "http://x"}),
        ["flow 'Tiny'", f"node {ASK}", "action type 'call_webhook' is not supported", "send_msg, set_run_result"],
    ),
    (
        "unknown case type",
        _set([*ROUTER, "cases", 0, "type"], "has_district"),
        [f"node {ASK}", "case k-1", "case type 'has_district' is not supported", "location hierarchy", "has_any_word"],
    ),
    (
        "missing node",
        _set([*NODE, "exits", 0, "destination_uuid"], "99999999-9999-4999-8999-999999999999"),
        ["exit e-ok leads to node 99999999-9999-4999-8999-999999999999", "missing node"],
    ),
    ("missing flows", _set(["flows"], _DELETE), ["'flows' must be a list, found nothing"]),
    ("missing nodes", _set(["flows", 0, "nodes"], _DELETE), ["flow 'Tiny'", "'nodes' must be a list"]),
    ("node without uuid", _set([*NODE, "uuid"], _DELETE), ["nodes[0]", "'uuid' must be a string"]),
    ("old export version", _set(["version"], "11.12"), ["export version '11.12' is not supported"]),
    ("old spec version", _set(["flows", 0, "spec_version"], "12.0.0"), ["spec_version '12.0.0' is not supported"]),
    ("voice flow", _set(["flows", 0, "type"], "voice"), ["flow type 'voice' is not supported"]),
    ("random router", _set([*ROUTER, "type"], "random"), ["router type 'random' is not supported"]),
    ("dial wait", _set([*ROUTER, "wait", "type"], "dial"), ["wait type 'dial' is not supported"]),
    (
        "unsupported expression",
        _set(["flows", 0, "nodes", 1, "actions", 0, "text"], 'Thanks @(has_ward(results.answer, "x", "y"))'),
        ["action a0000000-0000-4000-8000-000000000002 (send_msg)", "function has_ward() is not supported"],
    ),
    (
        "unsupported reference",
        _set(["flows", 0, "nodes", 1, "actions", 0, "text"], "Thanks @webhook.json"),
        ["'webhook' is not supported"],
    ),
    (
        "unsupported operand",
        _set([*ROUTER, "operand"], "@ticket.status"),
        ["operand", "'ticket' is not supported"],
    ),
    ("non-numeric bound", _set([*ROUTER, "cases", 0, "arguments"], ["1", "five"]), ["argument 'five' is not a number"]),
    ("wrong arity", _set([*ROUTER, "cases", 0, "arguments"], ["1"]), ["takes 2 argument(s), found 1"]),
    (
        "bad pattern",
        _set(
            [*ROUTER, "cases", 0], {"uuid": "k-1", "type": "has_pattern", "arguments": ["(x"], "category_uuid": "c-ok"}
        ),
        ["'(x' is not a valid regular expression"],
    ),
    (
        "has_category on text",
        _set(
            [*ROUTER, "cases", 0], {"uuid": "k-1", "type": "has_category", "arguments": ["A"], "category_uuid": "c-ok"}
        ),
        ["has_category needs the operand to be a result"],
    ),
    ("case to unknown category", _set([*ROUTER, "cases", 0, "category_uuid"], "c-x"), ["category_uuid c-x is not"]),
    ("category to unknown exit", _set([*ROUTER, "categories", 0, "exit_uuid"], "e-x"), ["exit e-x, which the node"]),
    ("unknown default", _set([*ROUTER, "default_category_uuid"], "c-x"), ["default_category_uuid c-x"]),
    ("timeout category", _set([*ROUTER, "wait", "timeout", "category_uuid"], "c-x"), ["timeout category_uuid c-x"]),
    ("timeout seconds", _set([*ROUTER, "wait", "timeout", "seconds"], "60"), ["'seconds' must be a positive whole"]),
    (
        "attachments",
        _set([*NODE, "actions", 0, "attachments"], ["image/png:http://x/a.png"]),
        ["send_msg with attachments is not supported"],
    ),
    ("duplicate node", _set(["flows", 0, "nodes", 1, "uuid"], ASK), ["node uuid appears twice"]),
    (
        "bad localization",
        _set(["flows", 0, "localization"], {"fra": {"a0000000-0000-4000-8000-000000000001": {"text": "Q?"}}}),
        ["localization.fra", "expected a list of strings"],
    ),
    (
        "unsupported translated text",
        _set(["flows", 0, "localization"], {"fra": {"a0000000-0000-4000-8000-000000000001": {"text": ["@(1+)"]}}}),
        ["localization fra", "unexpected 'the end'"],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=i) for i, c, e in BAD_EXPORTS])
def test_bad_exports_are_refused_with_a_clear_error(
    change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    with pytest.raises(FlowError) as raised:
        load_export(broken(change))
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(broken(_set([*ROUTER, "cases", 0, "type"], "has_intent"))), encoding="utf-8")
    with pytest.raises(FlowError, match=re.escape(f"{path} flows[0]: flow 'Tiny'")):
        load_export(path)


def test_bad_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "truncated.json"
    path.write_text('{"version": "13",\n "flows": [\n', encoding="utf-8")
    with pytest.raises(FlowError, match=re.escape(f"{path}: line 3 column 1: bad JSON")):
        load_export(path)


def test_missing_file_and_non_object(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="cannot read the export"):
        load_export(tmp_path / "absent.json")
    listing = tmp_path / "list.json"
    listing.write_text("[]", encoding="utf-8")
    with pytest.raises(FlowError, match="expected a JSON object, found a list"):
        load_export(listing)


def test_enter_flow_to_an_unknown_flow_is_refused_by_the_engine() -> None:
    export = broken(
        _set([*NODE, "actions", 0], {"type": "enter_flow", "uuid": "a-5", "flow": {"uuid": "f-x", "name": "Gone"}})
    )
    flows = load_export(export)
    with pytest.raises(FlowError, match=r"enters flow 'Gone' \(f-x\), which is not among the engine's flows"):
        Engine(flows)


def test_load_flow_reads_one_definition_as_stored_by_rapidpro() -> None:
    definition = valid_export()["flows"][0]
    assert load_flow(definition).uuid == FLOW_UUID
    with pytest.raises(FlowError, match=r"flows_flow 7: flow 'Tiny'.*case type 'has_ward'"):
        load_flow(broken(_set([*ROUTER, "cases", 0, "type"], "has_ward"))["flows"][0], source="flows_flow 7")


def test_bad_triggers_are_refused() -> None:
    with pytest.raises(FlowError, match=r"triggers\[0\]: a keyword trigger needs 'keywords'"):
        load_triggers({"triggers": [{"trigger_type": "K", "keywords": [], "flow": {"uuid": "f"}}]})
    with pytest.raises(FlowError, match="'match_type' must be 'F' or 'O'"):
        load_triggers(
            {"triggers": [{"trigger_type": "K", "keywords": ["a"], "match_type": "X", "flow": {"uuid": "f"}}]}
        )
    assert load_triggers({"triggers": [{"trigger_type": "C", "flow": {"uuid": "f"}}]}) == []
