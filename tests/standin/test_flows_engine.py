"""The engine on real RapidPro exports, on the project's fixture flows and on small synthetic flows."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin.flows import (
    Contact,
    Engine,
    FlowError,
    SessionError,
    Sprint,
    load_export,
    load_triggers,
    match_keyword_trigger,
    seeded_uuid_factory,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "flows"
NOW = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)

FAVORITES = "aef60b1e-14ab-4095-81ee-fce02b3e320d"
RATE_US = "d6a23704-c558-40c0-b850-5102cf69896c"
REGISTRATION = "3a1d5c8e-7b2f-4c61-9d0e-5f8a2b6c4e10"
QUICK_REPLY = "8e6b2d4f-1c3a-4f5e-a7b9-0d2c4e6f8a21"


def contact(**overrides: Any) -> Contact:
    values: dict[str, Any] = {"uuid": "c0ffee00-0000-4000-8000-000000000001", "urn": "tel:+250788000001"}
    values.update(overrides)
    return Contact(**values)


def converse(engine: Engine, flow_uuid: str, who: Contact, answers: list[str]) -> list[Sprint]:
    """Start `flow_uuid` and answer each wait in turn; every sprint's state goes through JSON as
    mailroom stores it."""
    sprints = [engine.start(flow_uuid, who, NOW)]
    for offset, answer in enumerate(answers, start=1):
        state = json.loads(json.dumps(sprints[-1].session_state))
        sprints.append(engine.resume(state, sprints[-1].contact, answer, NOW + timedelta(seconds=offset)))
    return sprints


@pytest.fixture(scope="module")
def shared_flows(shared_dir: Path) -> dict[str, Any]:
    flows = {}
    for path in sorted((shared_dir / "flows").glob("*.json")):
        flows.update(load_export(path))
    return flows


@pytest.fixture(scope="module")
def fixture_flows() -> dict[str, Any]:
    flows = {}
    for path in sorted(FIXTURES.glob("*.json")):
        flows.update(load_export(path))
    return flows


# --- real exports -------------------------------------------------------------------------------


def test_every_shared_export_loads(shared_dir: Path) -> None:
    paths = sorted((shared_dir / "flows").glob("*.json"))
    assert paths, "no exports in ../shared/flows"
    for path in paths:
        flows = load_export(path)
        assert flows and all(flow.spec_version.startswith("13.") for flow in flows.values())


def test_favorites_whole_conversation_with_retries(shared_flows: dict[str, Any]) -> None:
    engine = Engine(shared_flows, uuid_factory=seeded_uuid_factory(7))
    sprints = converse(engine, FAVORITES, contact(), ["purple", "I like RED!", "beer?", "turbo king", "Eric"])

    assert [s.messages for s in sprints] == [
        ["What is your favorite color?"],
        ["I don't know that color. Try again."],
        ["Good choice, I like Red too! What is your favorite beer?"],
        ["I don't know that one, try again please."],
        ["Mmmmm... delicious Turbo King. If only they made red Turbo King! Lastly, what is your name?"],
        ["Thanks Eric, we are all done!"],
    ]
    assert [s.session_status for s in sprints] == ["W", "W", "W", "W", "W", "C"]
    (run,) = sprints[-1].runs
    assert run.status == "C" and run.exited_on == NOW + timedelta(seconds=5) and run.responded
    assert {key: (r["value"], r["category"], r["input"]) for key, r in run.results.items()} == {
        "color": ("RED", "Red", "I like RED!"),
        "beer": ("turbo king", "Turbo King", "turbo king"),
        "name": ("Eric", "All Responses", "Eric"),
    }
    color_wait, beer_wait, name_wait = (
        "5ebd5006-67d8-4df5-b584-14cee383e720",
        "062479aa-51c8-4aac-b8e0-78385ad005a3",
        "c3232f80-09a1-4d10-a0f5-3d429e6d9b6e",
    )
    nodes = [step["node_uuid"] for step in run.path]
    assert nodes.count(color_wait) == 2 and nodes.count(beer_wait) == 2 and nodes.count(name_wait) == 1
    assert all(step["exit_uuid"] for step in run.path)  # every step was left by an exit
    assert run.path[1]["exit_uuid"] == "f1f0affb-e998-4664-be72-24cd25bf88e5"  # "purple" left by Other


def test_favorites_exit_without_destination_completes_the_run(shared_flows: dict[str, Any]) -> None:
    engine = Engine(shared_flows, uuid_factory=seeded_uuid_factory(1))
    last = converse(engine, FAVORITES, contact(), ["cyan"])[-1]
    assert last.messages == [] and last.session_status == "C"
    assert last.runs[0].results["color"]["category"] == "Cyan"


def test_favorites_in_the_contacts_language_only_when_the_org_allows_it(shared_flows: dict[str, Any]) -> None:
    spanish = contact(language="spa")
    allowed = Engine(shared_flows, allowed_languages=["eng", "spa"]).start(FAVORITES, spanish, NOW)
    assert allowed.messages == ["¿Cuál es tu color favorito?"]
    assert Engine(shared_flows).start(FAVORITES, spanish, NOW).messages == ["What is your favorite color?"]


def test_rate_us_has_number(shared_flows: dict[str, Any]) -> None:
    engine = Engine(shared_flows, uuid_factory=seeded_uuid_factory(2))
    sprints = converse(engine, RATE_US, contact(), ["eight", "great, 8 out of 10"])
    assert [s.messages for s in sprints] == [
        ["How do you rate the experience? Answer with a number below 10"],
        ["Please, pick a valid number "],
        ["Thank, we recorded your answer as 8"],
    ]
    result = sprints[-1].runs[0].results["result_1"]
    assert (result["value"], result["category"], result["input"]) == ("8", "Has Number", "great, 8 out of 10")


def test_old_style_keyword_trigger_is_read(shared_dir: Path) -> None:
    (trigger,) = load_triggers(shared_dir / "flows" / "rating_10.json")
    assert trigger.keywords == ("rating",) and trigger.flow_uuid == RATE_US


# --- our fixtures --------------------------------------------------------------------------------


def test_registration_with_every_retry(fixture_flows: dict[str, Any]) -> None:
    engine = Engine(fixture_flows, uuid_factory=seeded_uuid_factory(3))
    answers = ["   ", "Ann Smith", "old enough", "130", "34", "Gisenyi town"]
    sprints = converse(engine, REGISTRATION, contact(fields={"district": "unknown"}), answers)
    assert [s.messages for s in sprints] == [
        ["Welcome to registration. What is your name?"],
        ["Sorry, we need your name to register you. What is your name?"],
        ["Thanks Ann Smith. How old are you?"],
        ["Please send your age as a number between 1 and 120."],
        ["Please send your age as a number between 1 and 120."],
        ["Which district do you live in?"],
        ["Thanks Ann Smith, you are registered. Age: 34. District: Rubavu."],
    ]
    last = sprints[-1]
    assert last.session_status == "C"
    assert last.contact.name == "Ann Smith"
    assert last.contact.fields == {"age": "34", "district": "Rubavu"}
    results = last.runs[0].results
    assert results["district"]["value"] == "Gisenyi" and results["age"]["value"] == "34"
    assert [s.wait_timeout_seconds for s in sprints] == [None, None, None, None, None, 3600, None]
    assert sprints[5].timeout_on == sprints[5].wait_started_on + timedelta(seconds=3600)


def test_registration_other_district_is_accepted(fixture_flows: dict[str, Any]) -> None:
    last = converse(Engine(fixture_flows), REGISTRATION, contact(), ["Bo", "20", "Nyagatare"])[-1]
    assert last.messages == ["Thanks Bo, you are registered. Age: 20. District: Other."]
    assert last.runs[0].results["district"]["value"] == "Nyagatare"


def test_registration_timeout_takes_the_timeout_category(fixture_flows: dict[str, Any]) -> None:
    engine = Engine(fixture_flows, uuid_factory=seeded_uuid_factory(4))
    waiting = converse(engine, REGISTRATION, contact(), ["Bo", "20"])[-1]
    assert waiting.wait_timeout_seconds == 3600
    timed_out = engine.timeout(waiting.session_state, waiting.contact, NOW + timedelta(hours=1))
    assert timed_out.messages == ["We did not hear from you, so registration has stopped. Send JOIN to start again."]
    assert timed_out.session_status == "C"
    result = timed_out.runs[0].results["district"]
    assert (result["category"], result["value"], result["input"]) == ("No Response", "", "")
    assert any(event["type"] == "wait_timed_out" for event in timed_out.events)


def test_timeout_on_a_wait_without_timeout_is_refused(fixture_flows: dict[str, Any]) -> None:
    first = Engine(fixture_flows).start(REGISTRATION, contact(), NOW)
    assert first.wait_timeout_seconds is None
    with pytest.raises(SessionError, match="has no timeout"):
        Engine(fixture_flows).timeout(first.session_state, first.contact, NOW)


def test_quick_reply_is_one_shot(fixture_flows: dict[str, Any]) -> None:
    sprint = Engine(fixture_flows).start(QUICK_REPLY, contact(), NOW)
    assert sprint.messages == ["Resilience lab: this number runs a short registration survey. Send JOIN to register."]
    assert sprint.session_status == "C" and sprint.wait_timeout_seconds is None
    assert [run.status for run in sprint.runs] == ["C"]


def test_fixture_keyword_triggers() -> None:
    triggers = load_triggers(FIXTURES / "registration.json") + load_triggers(FIXTURES / "quick_reply.json")
    assert {(t.keywords, t.flow_uuid, t.match_type) for t in triggers} == {
        (("join",), REGISTRATION, "F"),
        (("info",), QUICK_REPLY, "F"),
    }
    assert match_keyword_trigger(triggers, "JOIN please").flow_uuid == REGISTRATION  # type: ignore[union-attr]
    assert match_keyword_trigger(triggers, "info").flow_uuid == QUICK_REPLY  # type: ignore[union-attr]
    assert match_keyword_trigger(triggers, "joining now") is None
    assert match_keyword_trigger(triggers, "please join") is None
    assert match_keyword_trigger(triggers, "") is None


def test_only_word_trigger_needs_the_word_alone() -> None:
    export = {"triggers": [{"trigger_type": "K", "keywords": ["stop"], "match_type": "O", "flow": {"uuid": "f"}}]}
    triggers = load_triggers(export)
    assert match_keyword_trigger(triggers, " Stop! ") is not None
    assert match_keyword_trigger(triggers, "stop it") is None


def test_keyword_start_takes_the_trigger_text_as_input(fixture_flows: dict[str, Any]) -> None:
    sprint = Engine(fixture_flows).start(REGISTRATION, contact(), NOW, trigger_text="join")
    assert sprint.session_status == "W" and sprint.runs[0].responded


# --- determinism and session state ---------------------------------------------------------------


def test_same_seed_same_session(fixture_flows: dict[str, Any]) -> None:
    def play(seed: int) -> list[Any]:
        sprints = converse(
            Engine(fixture_flows, uuid_factory=seeded_uuid_factory(seed)), REGISTRATION, contact(), ["A"]
        )
        return [(s.session_state, s.events) for s in sprints]

    assert play(11) == play(11)
    assert play(11) != play(12)


def test_input_contact_is_not_changed(fixture_flows: dict[str, Any]) -> None:
    who = contact(fields={"age": "3"})
    last = converse(Engine(fixture_flows), REGISTRATION, who, ["Zed", "40"])[-1]
    assert who.name is None and who.fields == {"age": "3"}
    assert last.contact.name == "Zed" and last.contact.fields["age"] == "40"


def test_resume_refuses_bad_states(fixture_flows: dict[str, Any]) -> None:
    engine = Engine(fixture_flows)
    done = engine.start(QUICK_REPLY, contact(), NOW)
    with pytest.raises(SessionError, match="only a waiting"):
        engine.resume(done.session_state, contact(), "hi", NOW)
    waiting = engine.start(REGISTRATION, contact(), NOW)
    with pytest.raises(SessionError, match="belongs to contact"):
        engine.resume(waiting.session_state, contact(uuid="someone-else"), "hi", NOW)
    with pytest.raises(SessionError, match="format"):
        engine.resume({"runs": []}, contact(), "hi", NOW)
    broken = json.loads(json.dumps(waiting.session_state))
    broken["runs"][0]["created_on"] = "yesterday"
    with pytest.raises(SessionError, match="created_on"):
        engine.resume(broken, contact(), "hi", NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.start(REGISTRATION, contact(), datetime(2024, 1, 1))
    with pytest.raises(FlowError, match="not among the engine's flows"):
        engine.start("00000000-0000-4000-8000-000000000000", contact(), NOW)


def test_session_whose_flow_is_gone_fails(fixture_flows: dict[str, Any], shared_flows: dict[str, Any]) -> None:
    waiting = Engine(fixture_flows).start(REGISTRATION, contact(), NOW)
    failed = Engine(shared_flows).resume(waiting.session_state, contact(), "Ann", NOW)
    assert failed.session_status == "F" and [run.status for run in failed.runs] == ["F"]
    assert any(event["type"] == "failure" for event in failed.events)


# --- synthetic flows: enter_flow, actions, failures ----------------------------------------------


def uuid_of(name: str) -> str:
    """Readable, stable uuids for synthetic flows: the name's hash in uuid form."""
    digest = hashlib.sha1(name.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def send(text: str, to: str | None = None, *more: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A node sending `text` (then running `more` actions), named `name` or its text, going on to `to`."""
    return {
        "uuid": uuid_of(f"node {name or text}"),
        "actions": [{"type": "send_msg", "uuid": uuid_of(f"action {text}"), "text": text}, *more],
        "exits": [{"uuid": uuid_of(f"exit {text}"), "destination_uuid": uuid_of(f"node {to}") if to else None}],
    }


def switch(
    name: str,
    cases: list[tuple[str, list[str], str]],
    *,
    operand: str = "@input.text",
    default: str | None = None,
    wait: bool = True,
    actions: list[dict[str, Any]] | None = None,
    result_name: str | None = None,
) -> dict[str, Any]:
    """A switch node named `name`; each case is (type, arguments, destination node name)."""
    categories, exits, rows = [], [], []
    targets = [(f"{name} case {i}", t, a, dest) for i, (t, a, dest) in enumerate(cases)]
    if default:
        targets.append((f"{name} other", None, None, default))
    for label, kind, arguments, destination in targets:
        category = {"uuid": uuid_of(f"category {label}"), "name": label, "exit_uuid": uuid_of(f"exit {label}")}
        categories.append(category)
        exits.append({"uuid": category["exit_uuid"], "destination_uuid": uuid_of(f"node {destination}")})
        if kind:
            rows.append(
                {
                    "uuid": uuid_of(f"case {label}"),
                    "type": kind,
                    "arguments": arguments,
                    "category_uuid": category["uuid"],
                }
            )
    router: dict[str, Any] = {"type": "switch", "operand": operand, "cases": rows, "categories": categories}
    if default:
        router["default_category_uuid"] = categories[-1]["uuid"]
    if wait:
        router["wait"] = {"type": "msg"}
    if result_name:
        router["result_name"] = result_name
    return {"uuid": uuid_of(f"node {name}"), "actions": actions or [], "router": router, "exits": exits}


def flow(name: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": uuid_of(f"flow {name}"),
        "name": name,
        "spec_version": "13.1.0",
        "language": "eng",
        "type": "messaging",
        "nodes": list(nodes),
    }


def export(*flows: dict[str, Any]) -> dict[str, Any]:
    return {"version": "13", "flows": list(flows)}


def enter(child: str, terminal: bool = False) -> dict[str, Any]:
    return {
        "type": "enter_flow",
        "uuid": uuid_of(f"enter {child}"),
        "terminal": terminal,
        "flow": {"uuid": uuid_of(f"flow {child}"), "name": child},
    }


CHILD = flow(
    "Child",
    send("child asks", "child answer"),
    switch("child answer", [("has_text", [], "child thanks")], result_name="Answer"),
    send("child got @results.answer", name="child thanks"),
)


@pytest.mark.parametrize("status_operand", ["@child.run.status", "@child.status"])
def test_enter_flow_runs_the_child_then_returns_to_the_parent(status_operand: str) -> None:
    parent = flow(
        "Parent",
        switch(
            "subflow",
            [("has_only_text", ["completed"], "parent done")],
            operand=status_operand,
            wait=False,
            actions=[enter("Child")],
        ),
        send("parent done, @contact.name", name="parent done"),
    )
    engine = Engine(load_export(export(parent, CHILD)), uuid_factory=seeded_uuid_factory(5))
    sprints = converse(engine, uuid_of("flow Parent"), contact(name="Kim"), ["blue"])
    assert sprints[0].messages == ["child asks"]
    assert sprints[0].current_flow_uuid == uuid_of("flow Child")
    parent_run, child_run = sprints[0].runs
    assert (parent_run.status, child_run.status, child_run.parent_uuid) == ("A", "W", parent_run.uuid)
    assert sprints[1].messages == ["child got blue", "parent done, Kim"]
    assert [run.status for run in sprints[1].runs] == ["C", "C"]
    assert sprints[1].session_status == "C"
    assert sprints[1].runs[0].path[0]["exit_uuid"] == uuid_of("exit subflow case 0")


def test_parent_whose_flow_is_gone_fails_when_its_child_ends() -> None:
    parent = flow(
        "Parent",
        switch(
            "subflow",
            [("has_only_text", ["completed"], "done")],
            operand="@child.status",
            wait=False,
            actions=[enter("Child")],
        ),
        send("done"),
    )
    waiting = Engine(load_export(export(parent, CHILD))).start(uuid_of("flow Parent"), contact(), NOW)
    only_child = Engine(load_export(export(CHILD)))
    ended = only_child.resume(waiting.session_state, contact(), "blue", NOW)
    assert ended.messages == ["child got blue"]
    assert [run.status for run in ended.runs] == ["F", "C"] and ended.session_status == "F"


def test_terminal_enter_flow_completes_the_parent_at_once() -> None:
    parent = flow("Parent", send("before", None, enter("Child", terminal=True)))
    sprint = Engine(load_export(export(parent, CHILD))).start(uuid_of("flow Parent"), contact(), NOW)
    assert sprint.messages == ["before", "child asks"]
    assert [run.status for run in sprint.runs] == ["C", "W"]


def test_router_without_match_or_default_fails_the_session() -> None:
    only_yes = flow("Strict", switch("ask", [("has_any_word", ["yes"], "ok")]), send("ok"))
    engine = Engine(load_export(export(only_yes)))
    waiting = engine.start(uuid_of("flow Strict"), contact(), NOW)
    assert engine.resume(waiting.session_state, contact(), "yes", NOW).session_status == "C"
    failed = engine.resume(waiting.session_state, contact(), "no", NOW)
    assert failed.session_status == "F" and failed.runs[0].status == "F"
    assert [e["text"] for e in failed.events if e["type"] == "failure"] == [
        f"router on node[uuid={uuid_of('node ask')}] failed to pick a category"
    ]


def test_endless_loop_without_wait_fails_after_100_steps() -> None:
    loop = flow("Loop", send("again", "again"))
    sprint = Engine(load_export(export(loop))).start(uuid_of("flow Loop"), contact(), NOW)
    assert sprint.session_status == "F" and len(sprint.messages) == 100
    assert "maximum number of steps" in next(e for e in sprint.events if e["type"] == "failure")["text"]


def test_actions_set_results_fields_and_name() -> None:
    actions = [
        {
            "type": "set_run_result",
            "uuid": uuid_of("a1"),
            "name": "Score",
            "value": "@fields.points",
            "category": "High",
        },
        {
            "type": "set_contact_field",
            "uuid": uuid_of("a2"),
            "field": {"key": "points", "name": "Points"},
            "value": " ",
        },
        {
            "type": "set_contact_field",
            "uuid": uuid_of("a3"),
            "field": {"key": "tier", "name": "Tier"},
            "value": "@results.score.category",
        },
        {"type": "set_contact_name", "uuid": uuid_of("a4"), "name": "  @(upper(contact.name))  "},
        {"type": "set_run_result", "uuid": uuid_of("a5"), "name": "Broken", "value": "@results.nothing"},
        {"type": "send_msg", "uuid": uuid_of("a6"), "text": "@contact.name: @results.score (@contact.fields.tier)"},
    ]
    acts = flow("Acts", {"uuid": uuid_of("node acts"), "actions": actions, "exits": [{"uuid": uuid_of("exit acts")}]})
    before = contact(name="Lu", fields={"points": "9"})
    sprint = Engine(load_export(export(acts))).start(uuid_of("flow Acts"), before, NOW)
    assert sprint.messages == ["LU: 9 (High)"]  # later actions see what earlier ones changed
    assert sprint.contact.fields == {"tier": "High"}  # an empty value clears a field
    assert sprint.contact.name == "LU"
    score = sprint.runs[0].results["score"]
    assert (score["value"], score["category"], score["input"]) == ("9", "High", "")
    assert "broken" not in sprint.runs[0].results  # a failing template skips the action, as goflow
    types = [event["type"] for event in sprint.events]
    assert types.count("contact_field_changed") == 2 and "contact_name_changed" in types and "error" in types


def test_split_by_expression_and_by_result_category() -> None:
    split = flow(
        "Split",
        switch(
            "by age",
            [("has_number_gte", ["18"], "by group")],
            operand="@fields.age",
            wait=False,
            default="by group",
            result_name="Group",
        ),
        switch(
            "by group",
            [("has_category", ["by age case 0"], "adult")],
            operand="@results.group",
            wait=False,
            default="minor",
        ),
        send("adult @results.group.category", name="adult"),
        send("minor"),
    )
    engine = Engine(load_export(export(split)))
    start = uuid_of("flow Split")
    assert engine.start(start, contact(fields={"age": "30"}), NOW).messages == ["adult by age case 0"]
    assert engine.start(start, contact(fields={"age": "12"}), NOW).messages == ["minor"]
    assert engine.start(start, contact(), NOW).messages == ["minor"]
    visited = [step["node_uuid"] for step in engine.start(start, contact(), NOW).runs[0].path]
    assert visited == [uuid_of("node by age"), uuid_of("node by group"), uuid_of("node minor")]


def test_localized_case_arguments_and_category_names() -> None:
    ask = switch("ask", [("has_any_word", ["yes"], "thanks")], default="thanks", result_name="Answer")
    yes_category = ask["router"]["categories"][0]["uuid"]
    case_uuid = ask["router"]["cases"][0]["uuid"]
    definition = flow(
        "Bilingual", send("ask?", "ask"), ask, send("thanks @results.answer.category_localized", name="thanks")
    )
    definition["localization"] = {
        "fra": {case_uuid: {"arguments": ["oui"]}, yes_category: {"name": ["Oui"]}},
    }
    engine = Engine(load_export(export(definition)), allowed_languages=["fra"])
    french = contact(language="fra")
    last = converse(engine, uuid_of("flow Bilingual"), french, ["oui"])[-1]
    assert last.messages == ["thanks Oui"]
    assert last.runs[0].results["answer"]["category"] == "ask case 0"
    assert converse(engine, uuid_of("flow Bilingual"), french, ["yes"])[-1].messages == ["thanks ask other"]


def test_trigger_message_answers_a_wait_at_the_first_node() -> None:
    ask_first = flow(
        "Ask First",
        switch("first", [("has_any_word", ["yes"], "ok")], default="ok", result_name="First"),
        send("ok @results.first (@input)", name="ok"),
    )
    engine = Engine(load_export(export(ask_first)))
    triggered = engine.start(uuid_of("flow Ask First"), contact(), NOW, trigger_text="YES please")
    assert triggered.messages == ["ok YES (YES please)"] and triggered.session_status == "C"
    plain = engine.start(uuid_of("flow Ask First"), contact(), NOW)
    assert plain.messages == [] and plain.session_status == "W"
