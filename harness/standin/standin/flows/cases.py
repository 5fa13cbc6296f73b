"""Router case tests with goflow's semantics (flows/routers/cases/tests.go at v0.198, mailroom v9).

Each test takes the router's operand and the case's evaluated arguments and says whether it matched
and with what: the match becomes the result's value. Text tests compare word tokens case-insensitively
(has_phrase keeps goflow's quirk: after a mismatch it does not re-try the same word as the start of the
phrase); number tests take the first number in the text that satisfies the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .context import XObject, XValue, to_text
from .excellent import functions as excellent_functions
from .excellent.values import Environment, EvaluationError, XError, new_object, to_datetime, to_time
from .text import collate_equals, find_numbers, format_number, parse_literal_number, tokenize, trim_space


class CaseArgumentError(ValueError):
    """An argument a test cannot use (not a number, not a regular expression): the case does not match."""


@dataclass(frozen=True)
class CaseMatch:
    match: str
    extra: tuple[tuple[str, str], ...] = ()  # has_pattern's groups, by number


CaseOutcome = CaseMatch | None
CaseFunction = Callable[[XValue, Sequence[XValue]], CaseOutcome]


@dataclass(frozen=True)
class CaseTest:
    name: str
    min_arguments: int
    max_arguments: int | None  # None: any number
    numeric_arguments: bool
    function: CaseFunction


def _tokens(value: XValue) -> list[str]:
    return tokenize(trim_space(to_text(value)))


def has_any_word(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    words = _tokens(arguments[0])
    matches = [hay for hay in _tokens(operand) if any(collate_equals(hay, word) for word in words)]
    return CaseMatch(" ".join(matches)) if matches else None


def has_all_words(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    words = _tokens(arguments[0])
    hays = _tokens(operand)
    found = [False] * len(words)
    matches = []
    for hay in hays:
        hit = False
        for index, word in enumerate(words):
            if collate_equals(hay, word):
                found[index] = True
                hit = True
        if hit:
            matches.append(hay)
    return CaseMatch(" ".join(matches)) if all(found) else None


def has_phrase(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    words = _tokens(arguments[0])
    if not words:
        return CaseMatch("")
    matches: list[str] = []
    for hay in _tokens(operand):
        if collate_equals(hay, words[len(matches)]):
            matches.append(hay)
            if len(matches) == len(words):
                return CaseMatch(" ".join(matches))
        else:
            matches = []
    return None


def has_only_phrase(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    words = _tokens(arguments[0])
    hays = _tokens(operand)
    if len(hays) != len(words):
        return None
    if all(collate_equals(hay, word) for hay, word in zip(hays, words, strict=True)):
        return CaseMatch(" ".join(hays))
    return None


def has_beginning(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    hay = trim_space(to_text(operand))
    beginning = trim_space(to_text(arguments[0]))
    if not hay or not beginning or len(hay) < len(beginning):
        return None
    segment = hay[: len(beginning)]
    return CaseMatch(segment) if segment.lower() == beginning.lower() else None


def has_text(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    text = trim_space(to_text(operand))
    return CaseMatch(text) if text else None


def has_only_text(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    text = to_text(operand)
    return CaseMatch(text) if text == to_text(arguments[0]) else None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """goflow's `(?mi)` + trimmed pattern; raises CaseArgumentError if Python cannot compile it."""
    try:
        return re.compile(trim_space(pattern), re.MULTILINE | re.IGNORECASE)
    except re.error as exc:
        raise CaseArgumentError(f"{pattern!r} is not a valid regular expression: {exc}") from exc


def has_pattern(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    found = compile_pattern(to_text(arguments[0])).search(to_text(operand))
    if not found:
        return None
    groups = (found.group(0), *(group or "" for group in found.groups()))
    return CaseMatch(found.group(0), tuple((str(index), group) for index, group in enumerate(groups)))


def number_argument(value: XValue) -> Decimal:
    if isinstance(value, Decimal):
        return value
    number = parse_literal_number(to_text(value))
    if number is None:
        raise CaseArgumentError(f"{to_text(value)!r} is not a number")
    return number


def _number_test(check: Callable[[Decimal, Sequence[Decimal]], bool]) -> CaseFunction:
    def test(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
        bounds = [number_argument(argument) for argument in arguments]
        for number in find_numbers(to_text(operand)):
            if check(number, bounds):
                return CaseMatch(format_number(number))
        return None

    return test


def has_category(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    if not isinstance(operand, XObject) or "category" not in operand.properties:
        raise CaseArgumentError("the operand of has_category must be a result (@results.<name>)")
    category = to_text(operand.properties["category"])
    if any(category == to_text(argument) for argument in arguments):
        return CaseMatch(category)
    return None


def has_error(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    return CaseMatch(operand.message) if isinstance(operand, XError) else None


_EMAIL = re.compile(r"([^\W_][-_+$~.\w]*)@([^\W_][-\w]*)(\.[^\W_][-\w]*)+")


def has_email(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    found = _EMAIL.search(to_text(operand))
    return CaseMatch(found.group(0)) if found else None


# a phone number as people type one: optional +, then 7-15 digits with spaces, dots, dashes, brackets
_PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,18}\d")


def has_phone(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    for found in _PHONE.finditer(to_text(operand)):
        digits = "".join(char for char in found.group(0) if char.isdigit())
        if 7 <= len(digits) <= 15:
            return CaseMatch(("+" if found.group(0).startswith("+") else "") + digits)
    return None


_ENV = Environment()


def _date_test(check: Callable[[int], bool] | None) -> CaseFunction:
    def test(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
        env = CASE_ENVIRONMENT[0]
        bound = None
        if check is not None:
            try:
                bound = to_datetime(env, arguments[0])
            except EvaluationError as exc:
                raise CaseArgumentError(str(exc)) from exc
        try:
            value = to_datetime(env, to_text(operand), fill_time=True)
        except EvaluationError:
            return None
        if check is not None and bound is not None:
            day, other = value.astimezone(env.timezone).date(), bound.astimezone(env.timezone).date()
            if not check((day > other) - (day < other)):
                return None
        return CaseMatch(to_text(value))

    return test


def has_time(operand: XValue, arguments: Sequence[XValue]) -> CaseOutcome:
    try:
        return CaseMatch(to_text(to_time(CASE_ENVIRONMENT[0], to_text(operand))))
    except EvaluationError:
        return None


# the environment date tests read text in; the engine sets it for each evaluation
CASE_ENVIRONMENT: list[Environment] = [_ENV]

CASE_TESTS: dict[str, CaseTest] = {
    test.name: test
    for test in (
        CaseTest("has_any_word", 1, 1, False, has_any_word),
        CaseTest("has_all_words", 1, 1, False, has_all_words),
        CaseTest("has_phrase", 1, 1, False, has_phrase),
        CaseTest("has_only_phrase", 1, 1, False, has_only_phrase),
        CaseTest("has_beginning", 1, 1, False, has_beginning),
        CaseTest("has_text", 0, 0, False, has_text),
        CaseTest("has_only_text", 1, 1, False, has_only_text),
        CaseTest("has_pattern", 1, 1, False, has_pattern),
        CaseTest("has_number", 0, 0, True, _number_test(lambda n, b: True)),
        CaseTest("has_number_between", 2, 2, True, _number_test(lambda n, b: b[0] <= n <= b[1])),
        CaseTest("has_number_lt", 1, 1, True, _number_test(lambda n, b: n < b[0])),
        CaseTest("has_number_lte", 1, 1, True, _number_test(lambda n, b: n <= b[0])),
        CaseTest("has_number_gt", 1, 1, True, _number_test(lambda n, b: n > b[0])),
        CaseTest("has_number_gte", 1, 1, True, _number_test(lambda n, b: n >= b[0])),
        CaseTest("has_number_eq", 1, 1, True, _number_test(lambda n, b: n == b[0])),
        CaseTest("has_category", 1, None, False, has_category),
        CaseTest("has_error", 0, 0, False, has_error),
        CaseTest("has_value", 0, 0, False, has_text),
        CaseTest("has_email", 0, 0, False, has_email),
        CaseTest("has_phone", 0, 1, False, has_phone),
        CaseTest("has_date", 0, 0, False, _date_test(None)),
        CaseTest("has_date_lt", 1, 1, False, _date_test(lambda order: order < 0)),
        CaseTest("has_date_eq", 1, 1, False, _date_test(lambda order: order == 0)),
        CaseTest("has_date_gt", 1, 1, False, _date_test(lambda order: order > 0)),
        CaseTest("has_time", 0, 0, False, has_time),
    )
}

# goflow's case tests the stand-in cannot run, and why (a flow using one is refused at load)
UNSUPPORTED_CASE_TESTS: dict[str, str] = {
    "has_group": "the stand-in does not model contact groups",
    "has_intent": "needs an NLU classifier (call_classifier is not modelled)",
    "has_top_intent": "needs an NLU classifier (call_classifier is not modelled)",
    "has_state": "needs the org's location hierarchy, which the stand-in does not model",
    "has_district": "needs the org's location hierarchy, which the stand-in does not model",
    "has_ward": "needs the org's location hierarchy, which the stand-in does not model",
}


def _as_function(test: CaseTest) -> excellent_functions.Implementation:
    """goflow registers every case test as an Excellent function returning {__default__, match}."""

    def call(env: Environment, arguments: Sequence[XValue]) -> XValue:
        CASE_ENVIRONMENT[0] = env
        try:
            outcome = test.function(arguments[0], arguments[1:])
        except CaseArgumentError as exc:
            raise EvaluationError(str(exc)) from exc
        finally:
            CASE_ENVIRONMENT[0] = _ENV
        matched = outcome is not None
        properties: dict[str, XValue] = {"match": outcome.match if outcome else ""}
        if outcome is not None and outcome.extra:
            properties["extra"] = new_object(dict(outcome.extra))
        result = new_object(properties)
        return XObject(default=matched, properties=result.properties)

    return call


for _test in CASE_TESTS.values():
    _maximum = None if _test.max_arguments is None else _test.max_arguments + 1
    excellent_functions.register(_test.name, _test.min_arguments + 1, _maximum)(_as_function(_test))
excellent_functions.UNSUPPORTED.update(UNSUPPORTED_CASE_TESTS)


def run_case(name: str, operand: XValue, arguments: Sequence[XValue], env: Environment | None = None) -> CaseOutcome:
    """Run test `name` (case-insensitive, as goflow); CaseArgumentError if an argument is unusable."""
    CASE_ENVIRONMENT[0] = env or _ENV
    try:
        return CASE_TESTS[name.lower()].function(operand, arguments)
    finally:
        CASE_ENVIRONMENT[0] = _ENV
