"""A whole conversation of fixtures/conversations/registration.yaml through the stack, and what it left in
RapidPro's tables: the completed run with its results, the contact's name and fields."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from stack_support import Database, Phone

from resilience.experiment import SCRIPTS_DIR
from resilience.workload.script import load_script, new_token, render

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]


def test_registration_conversation(phone: Callable[[], Phone], database: Database) -> None:
    script = load_script(SCRIPTS_DIR / "registration.yaml")
    rng = random.Random(20240601)
    values = script.choose_values(rng)
    handset = phone()

    sent: list[str] = []
    for step in script.steps:
        # A unique token per MO, as the workload adds: courier drops a repeated text within seconds.
        sent.append(f"{render(step.send, values, sent)} {new_token(rng)}")
        expected = [render(text, values, sent) for text in step.expect]
        assert handset.exchange(sent[-1], replies=len(expected)) == expected

    name, age, district = sent[1], values["age"], values["district"]
    assert sent[-1].startswith(district)

    (run,) = database.runs(handset.urn)
    assert (run.flow_name, run.status) == ("Registration", "C")
    results = {key: (r["value"], r["category"]) for key, r in run.results.items()}
    assert results == {
        "name": (name, "Has Name"),
        "age": (age, "Valid Age"),
        "district": (district, district),
    }
    assert database.session_statuses(handset.urn) == ["C"]

    contact = database.contact(handset.urn)
    assert contact.name == name
    assert contact.fields == {"age": age, "district": district}
