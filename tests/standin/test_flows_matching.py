"""goflow's text rules and router case tests, each proven to match and not to match.

Expected values come from the examples in goflow's documentation of its tests
(flows/routers/cases/tests.go), which goflow's own test suite checks.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from standin.flows.cases import CASE_TESTS, CaseArgumentError, run_case
from standin.flows.context import XObject
from standin.flows.excellent.values import XError
from standin.flows.text import find_numbers, format_number, snakify, tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("hello, world! it's me", ["hello", "world", "it's", "me"]),
        ("I like 👍 and $5", ["I", "like", "👍", "and", "$", "5"]),
        ("cafe\u0301 au_lait", ["cafe\u0301", "au_lait"]),  # a combining mark stays in its word
        ("  ", []),
    ],
)
def test_tokenize_splits_words_and_keeps_symbols_as_words(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    ("name", "key"),
    [("Result 1", "result_1"), ("  What's your name? ", "what_s_your_name_"), ("Ünïcode  Name", "ünïcode_name")],
)
def test_snakify_makes_result_keys(name: str, key: str) -> None:
    assert snakify(name) == key


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("the number is 42", ["42"]),
        ("العدد ٤٢", ["42"]),
        ("1,000 or 4.50 or -5 or .5", ["1000", "4.5", "-5", "0.5"]),
        ("I'd say 8/10", ["8", "10"]),
        ("forty two", []),
        ("x²", []),  # a numeral goflow finds but cannot parse
    ],
)
def test_find_numbers_follows_goflow(text: str, numbers: list[str]) -> None:
    assert [format_number(n) for n in find_numbers(text)] == numbers


def test_format_number_drops_trailing_zeros_and_negative_zero() -> None:
    assert format_number(Decimal("7.000")) == "7"
    assert format_number(Decimal("-0")) == "0"
    assert format_number(Decimal("100")) == "100"


RESULT = XObject(default="yes", properties={"value": "yes", "category": "Success"})

# (test, operand, arguments, expected match or None for no match)
CASES: list[tuple[str, object, list[object], str | None]] = [
    ("has_any_word", "The Quick Brown Fox", ["fox quick"], "Quick Fox"),
    ("has_any_word", "The Quick Brown Fox", ["red fox"], "Fox"),
    ("has_any_word", "The Quick Brown Fox", ["red green"], None),
    ("has_any_word", "favourites", ["favourite"], None),  # whole words only
    ("has_all_words", "the quick brown FOX", ["the fox"], "the FOX"),
    ("has_all_words", "the quick brown fox", ["red fox"], None),
    ("has_phrase", "the quick brown fox", ["brown fox"], "brown fox"),
    ("has_phrase", "the Quick Brown fox", ["quick fox"], None),
    ("has_phrase", "the Quick Brown fox", [""], ""),
    ("has_phrase", "a a b", ["a b"], None),  # goflow does not retry the word that broke a partial match
    ("has_only_phrase", "Quick Brown", ["quick brown"], "Quick Brown"),
    ("has_only_phrase", "The Quick Brown Fox", ["quick brown"], None),
    ("has_only_phrase", "the Quick Brown fox", [""], None),
    ("has_only_phrase", "", [""], ""),
    ("has_beginning", "The Quick Brown", ["the quick"], "The Quick"),
    ("has_beginning", "The Quick Brown", ["the   quick"], None),
    ("has_beginning", "The Quick Brown", ["quick brown"], None),
    ("has_text", "quick brown", [], "quick brown"),
    ("has_text", "  padded  ", [], "padded"),
    ("has_text", "", [], None),
    ("has_text", " \n", [], None),
    ("has_only_text", "foo", ["foo"], "foo"),
    ("has_only_text", "foo", ["FOO"], None),
    ("has_only_text", "foo", [" foo "], None),
    ("has_pattern", "Buy cheese please", [r"buy (\w+)"], "Buy cheese"),
    ("has_pattern", "Sell cheese please", [r"buy (\w+)"], None),
    ("has_number", "the number is 42", [], "42"),
    ("has_number", "العدد ٤٢", [], "42"),
    ("has_number", "the number is forty two", [], None),
    ("has_number_between", "the number is 42", ["40", "44"], "42"),
    ("has_number_between", "the number is 42", ["50", "60"], None),
    ("has_number_between", "the number is not there", ["50", "60"], None),
    ("has_number_lt", "the number is 42", ["44"], "42"),
    ("has_number_lt", "the number is 42", ["40"], None),
    ("has_number_lte", "the number is 42", ["42"], "42"),
    ("has_number_lte", "the number is 42", ["40"], None),
    ("has_number_eq", "the number is 42", ["42"], "42"),
    ("has_number_eq", "the number is 42", ["40"], None),
    ("has_number_gte", "the number is 42", ["42"], "42"),
    ("has_number_gte", "the number is 42", ["45"], None),
    ("has_number_gt", "the number is 42", ["40"], "42"),
    ("has_number_gt", "the number is 42", ["42"], None),
    ("has_number_gt", "5 then 50", ["10"], "50"),  # the first number that passes, not the first number
    ("has_category", RESULT, ["Success", "Failure"], "Success"),
    ("has_category", RESULT, ["Failure"], None),
    # goflow's documented examples for the date, time, e-mail, phone and error tests (default environment:
    # UTC, YYYY-MM-DD; a date without a time takes the time of the engine's clock)
    ("has_date", "the date is 2017-01-15 10:30", [], "2017-01-15T10:30:00.000000Z"),
    ("has_date", "there is no date here, just a year 2017", [], None),
    ("has_date_lt", "the date is 2017-01-15 10:30", ["2017-06-01"], "2017-01-15T10:30:00.000000Z"),
    ("has_date_lt", "the date is 2017-01-15", ["2017-01-01"], None),
    ("has_date_eq", "the date is 2017-01-15 10:30", ["2017-01-15"], "2017-01-15T10:30:00.000000Z"),
    ("has_date_eq", "there is no date here, just a year 2017", ["2017-06-01"], None),
    ("has_date_gt", "the date is 2017-01-15 10:30", ["2017-01-01"], "2017-01-15T10:30:00.000000Z"),
    ("has_date_gt", "the date is 2017-01-15", ["2017-03-15"], None),
    ("has_time", "the time is 10:30", [], "10:30:00.000000"),
    ("has_time", "there is no time here, just the number 25", [], None),
    ("has_email", "my email is foo1@bar.com, please respond", [], "foo1@bar.com"),
    ("has_email", "i'm not sharing my email", [], None),
    ("has_phone", "my number is +12067799294 thanks", [], "+12067799294"),
    ("has_phone", "my number is none of your business", ["US"], None),
    ("has_error", XError('unable to convert "foo" to a datetime'), [], 'unable to convert "foo" to a datetime'),
    ("has_error", "hello", [], None),
    ("has_value", "  hello  ", [], "hello"),
    ("has_value", "   ", [], None),
]


@pytest.mark.parametrize(("test", "operand", "arguments", "expected"), CASES)
def test_case(test: str, operand: object, arguments: list[object], expected: str | None) -> None:
    outcome = run_case(test, operand, arguments)  # type: ignore[arg-type]
    assert (outcome.match if outcome else None) == expected


def test_every_supported_case_type_is_proven_both_ways() -> None:
    matched = {test for test, _, _, expected in CASES if expected is not None}
    missed = {test for test, _, _, expected in CASES if expected is None}
    assert matched == set(CASE_TESTS) == missed


def test_case_type_names_are_case_insensitive() -> None:
    outcome = run_case("HAS_ANY_WORD", "red", ["Red"])
    assert outcome is not None and outcome.match == "red"


@pytest.mark.parametrize(
    ("test", "operand", "arguments"),
    [
        ("has_number_between", "42", ["forty", "50"]),
        ("has_pattern", "text", ["(unclosed"]),
        ("has_category", "just text", ["Success"]),
    ],
)
def test_unusable_arguments_raise(test: str, operand: str, arguments: list[object]) -> None:
    with pytest.raises(CaseArgumentError):
        run_case(test, operand, arguments)  # type: ignore[arg-type]
