"""Expression templates: goflow's scanning rules, the supported references and clear refusals."""

from __future__ import annotations

import re

import pytest
from standin.flows.context import SUPPORTED_REFERENCES, XObject
from standin.flows.templates import TemplateError, evaluate, parse_template, resolve_in

CONTEXT = XObject(
    default="",
    properties={
        "input": XObject(default="I like red", properties={"text": "I like red"}),
        "results": XObject(
            default="",
            properties={
                "color": XObject(
                    default="RED",
                    properties={"value": "RED", "category": "Red", "category_localized": "Rojo", "input": "x"},
                )
            },
        ),
        "contact": XObject(
            default="Ann",
            properties={"name": "Ann", "fields": XObject(default="", properties={"age": "34"}, missing_ok=True)},
        ),
        "fields": XObject(default="", properties={"age": "34"}, missing_ok=True),
    },
)


def render(source: str) -> tuple[str, list[str]]:
    return evaluate(parse_template(source), resolve_in(CONTEXT))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi @contact.name!", "Hi Ann!"),
        ("Hi @contact.", "Hi Ann."),  # a trailing period ends the reference
        ("@contact", "Ann"),
        ("you said @input and @input.text", "you said I like red and I like red"),
        ("@results.color", "RED"),
        ("@results.color.value/@results.color.category/@results.color.category_localized", "RED/Red/Rojo"),
        ("@Results.Color.Category", "Red"),  # references are case-insensitive
        ("age @fields.age, @contact.fields.age", "age 34, 34"),
        ('@(lower(results.color)) and @(UPPER("x"))', "red and X"),
        ("@(lower(results.color.category))", "red"),
        ("write to me@example.com", "write to me@example.com"),  # not a context top level: literal
        ("@@contact.name", "@contact.name"),
        ("50 @ 2", "50 @ 2"),
        ("open @(lower(", "open @(lower("),  # an unclosed expression stays literal
        ("", ""),
    ],
)
def test_templates_render(source: str, expected: str) -> None:
    assert render(source) == (expected, [])


def test_unset_result_renders_empty_with_an_error() -> None:
    text, errors = render("value: [@results.missing]")
    assert text == "value: []"
    assert errors and "missing" in errors[0]


def test_unset_field_renders_empty_without_error() -> None:
    assert render("[@fields.district]") == ("[]", [])


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ("@webhook.json", "'webhook' is not supported (the engine does not simulate call_webhook"),
        ("@ticket.subject", "'ticket' is not supported"),
        ("@contact.nickname", "'contact.nickname' is not supported"),
        ("@results.color.colour", "'results.color.colour' is not supported"),
        ("@(1 +)", "unexpected 'the end'"),
        ('@(results.color = "red" $)', "'$' is not part of the Excellent language"),
        ('@(has_district(input, "Kigali"))', "function has_district() is not supported"),
        ("@(frobnicate(results.color))", "function frobnicate() is not a goflow function"),
        ('@(lower(results.color, "x"))', "lower() takes 1 argument"),
        ("@(lower(trigger.params))", "'trigger' is not supported"),
        ("@()", "empty expression"),
    ],
)
def test_unsupported_templates_are_refused(source: str, complaint: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(complaint)):
        parse_template(source)


def test_supported_references_are_listed() -> None:
    assert "input.text" in SUPPORTED_REFERENCES
    assert "results.<key>.category_localized" in SUPPORTED_REFERENCES
    assert "contact.fields.<key>" in SUPPORTED_REFERENCES
    assert "child.run.status" in SUPPORTED_REFERENCES
