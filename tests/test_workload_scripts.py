"""Conversation scripts: loading, bad input, and agreement with the flows they script."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from resilience.workload.runner import WorkloadConfig, plan_conversations
from resilience.workload.script import ScriptError, load_script, load_scripts, new_token, render

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "fixtures" / "conversations"


def test_every_script_matches_what_its_flow_says() -> None:
    """Play each script against the stand-in's engine: the owed replies are exactly the flow's messages."""
    from standin.flows import Contact, Engine, load_export

    flows = {}
    for export in (ROOT / "fixtures" / "flows").glob("*.json"):
        flows.update(load_export(export))
    by_name = {flow.name: uuid for uuid, flow in flows.items()}
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for script in load_scripts(SCRIPTS).values():
        rng = random.Random(7)
        values = script.choose_values(rng)
        engine = Engine(flows)
        contact = Contact(uuid="c-1", name=None, urn="tel:+250700000001", fields={}, language=None)
        sent: list[str] = []
        state = None
        for index, step in enumerate(script.steps):
            sent.append(f"{render(step.send, values, sent)} {new_token(rng)}")
            expected = [render(e, values, sent) for e in step.expect]
            if index == 0:
                sprint = engine.start(by_name[script.flow], contact, now, trigger_text=sent[-1])
            else:
                sprint = engine.resume(state, contact, sent[-1], now)
            assert sprint.messages == expected, (script.name, index)
            state, contact = sprint.session_state, sprint.contact
        assert sprint.session_status == "C"


def test_plans_are_deterministic_per_seed_and_urns_unique() -> None:
    scripts = list(load_scripts(SCRIPTS).values())
    config = WorkloadConfig(rate=20, duration=30, seed=5)
    first = [(o, c.urn, c.values) for o, c in plan_conversations(scripts, config, salt=3)]
    again = [(o, c.urn, c.values) for o, c in plan_conversations(scripts, config, salt=3)]
    reseeded = WorkloadConfig(rate=20, duration=30, seed=6)
    other = [(o, c.urn, c.values) for o, c in plan_conversations(scripts, reseeded, salt=3)]
    assert first == again
    assert first != other
    assert len({urn for _, urn, _ in first}) == len(first)


def test_runs_started_at_different_seconds_never_share_a_contact() -> None:
    """Runs on one cluster share its contacts: a URN of an earlier run would bring that run's rows and flow
    runs into this one's snapshot (a certification saw a contact of the run 53 s before: a 'repeated' reply)."""
    scripts = list(load_scripts(SCRIPTS).values())
    config = WorkloadConfig(rate=20, duration=60, seed=2)
    start = 1_764_850_000
    earlier = {c.urn for _, c in plan_conversations(scripts, config, salt=start)}
    assert len(earlier) > 100
    for later in [*range(1, 600), 3600, 86_400]:
        urns = {c.urn for _, c in plan_conversations(scripts, config, salt=start + later)}
        assert not earlier & urns, later


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("flow: X\nkeyword: k\nsteps: []\n", "'steps' must be a non-empty list"),
        ("flow: X\nsteps: [{send: a}]\n", "'keyword' must be a non-empty string"),
        ("flow: X\nkeyword: k\nsteps: [{send: a}]\nwhat: 1\n", "unknown key(s) what"),
        ("flow: X\nkeyword: k\nsteps: [{expect: [a]}]\n", "step 0: expected {send: TEXT"),
        ("flow: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_scripts_get_located_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_template_naming_an_unknown_value_is_a_clear_error() -> None:
    with pytest.raises(ScriptError, match="refers to 'nope'"):
        render("{nope}", {}, [])
