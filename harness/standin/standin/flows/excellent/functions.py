"""Excellent's built-in functions (goflow's excellent/functions/builtin.go), by name.

Each function gets the raw argument values (any may be an XError) and converts what it needs;
a conversion failure raises EvaluationError, which the caller turns into an error value. Functions
goflow has but the stand-in cannot run (they need assets it does not model) are in UNSUPPORTED.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from ..text import format_number, trim_space
from . import dates
from .values import (
    Environment,
    EvaluationError,
    XArray,
    XError,
    XFunction,
    XObject,
    XValue,
    describe,
    equals,
    new_object,
    render,
    to_array,
    to_boolean,
    to_date,
    to_datetime,
    to_function,
    to_integer,
    to_number,
    to_object,
    to_text,
    to_time,
    truthy,
)

Implementation = Callable[[Environment, Sequence[XValue]], XValue]


@dataclass(frozen=True)
class Function:
    name: str
    min_arguments: int
    max_arguments: int | None
    implementation: Implementation

    @property
    def value(self) -> XFunction:
        return XFunction(self.name, self.checked)

    def checked(self, env: Environment, arguments: Sequence[XValue]) -> XValue:
        count = len(arguments)
        if count < self.min_arguments or (self.max_arguments is not None and count > self.max_arguments):
            raise EvaluationError(f"{self.arity_text()}, got {count}")
        return self.implementation(env, arguments)

    def arity_text(self) -> str:
        if self.max_arguments == self.min_arguments:
            return f"need {self.min_arguments} argument(s)"
        if self.max_arguments is None:
            return f"need at least {self.min_arguments} argument(s)"
        return f"need {self.min_arguments} to {self.max_arguments} argument(s)"


FUNCTIONS: dict[str, Function] = {}

# goflow functions that need what the stand-in does not model, and why
UNSUPPORTED: dict[str, str] = {}


def register(name: str, minimum: int, maximum: int | None = -1) -> Callable[[Implementation], Implementation]:
    def add(implementation: Implementation) -> Implementation:
        FUNCTIONS[name] = Function(name, minimum, minimum if maximum == -1 else maximum, implementation)
        return implementation

    return add


def _first_error(values: Sequence[XValue]) -> XError | None:
    return next((value for value in values if isinstance(value, XError)), None)


# --- type conversion ---------------------------------------------------------------------------

register("text", 1)(lambda env, a: to_text(a[0]))
register("boolean", 1)(lambda env, a: to_boolean(a[0]))
register("number", 1)(lambda env, a: to_number(a[0]))
register("date", 1)(lambda env, a: to_date(env, a[0]))
register("datetime", 1)(lambda env, a: to_datetime(env, a[0]))
register("time", 1)(lambda env, a: to_time(env, a[0]))


@register("array", 0, None)
def _array(env: Environment, args: Sequence[XValue]) -> XValue:
    return _first_error(args) or XArray(tuple(args))


@register("object", 0, None)
def _object(env: Environment, args: Sequence[XValue]) -> XValue:
    error = _first_error(args)
    if error:
        return error
    if len(args) % 2:
        raise EvaluationError("requires an even number of arguments")
    return new_object({to_text(args[i]): args[i + 1] for i in range(0, len(args), 2)})


# --- logic -------------------------------------------------------------------------------------


@register("and", 1, None)
def _and(env: Environment, args: Sequence[XValue]) -> XValue:
    return all(to_boolean(value) for value in args)


@register("or", 1, None)
def _or(env: Environment, args: Sequence[XValue]) -> XValue:
    return any(to_boolean(value) for value in args)


@register("if", 3)
def _if(env: Environment, args: Sequence[XValue]) -> XValue:
    return args[1] if to_boolean(args[0]) else args[2]


# --- text --------------------------------------------------------------------------------------

_PUNCTUATION_CATEGORIES = ("P", "S", "Z", "C")


def extract_words(text: str, delimiters: str) -> list[str]:
    """goflow's word splitting: on the given delimiters, or else on white space and punctuation
    (apostrophes stay in words), each symbol such as an emoji being a word of its own."""
    if delimiters:
        return [word for word in re.split("[" + re.escape(delimiters) + "]", text) if word]
    words: list[str] = []
    current: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "LMN" or char in "'_":
            current.append(char)
            continue
        if current:
            words.append("".join(current))
            current = []
        if category[0] == "S" and category != "Sk" and char not in "$+<=>^`|~":
            words.append(char)
    if current:
        words.append("".join(current))
    return words


register("code", 1)(lambda env, a: _code(to_text(a[0])))
register("char", 1)(lambda env, a: chr(to_integer(a[0])))


def _code(text: str) -> XValue:
    if not text:
        raise EvaluationError("requires a string of at least one character")
    return Decimal(ord(text[0]))


def _optional_text(args: Sequence[XValue], index: int) -> str:
    return to_text(args[index]) if len(args) > index and args[index] is not None else ""


register("split", 1, 2)(lambda env, a: XArray(tuple(extract_words(to_text(a[0]), _optional_text(a, 1)))))


def _go_space(char: str) -> bool:
    return char in "\t\n\v\f\r \x85\xa0" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


@register("trim", 1, 2)
def _trim(env: Environment, args: Sequence[XValue]) -> XValue:
    chars = _optional_text(args, 1)
    return to_text(args[0]).strip(chars) if chars else trim_space(to_text(args[0]))


@register("trim_left", 1, 2)
def _trim_left(env: Environment, args: Sequence[XValue]) -> XValue:
    text, chars = to_text(args[0]), _optional_text(args, 1)
    if chars:
        return text.lstrip(chars)
    start = 0
    while start < len(text) and _go_space(text[start]):
        start += 1
    return text[start:]


@register("trim_right", 1, 2)
def _trim_right(env: Environment, args: Sequence[XValue]) -> XValue:
    text, chars = to_text(args[0]), _optional_text(args, 1)
    if chars:
        return text.rstrip(chars)
    end = len(text)
    while end > 0 and _go_space(text[end - 1]):
        end -= 1
    return text[:end]


@register("title", 1)
def _title(env: Environment, args: Sequence[XValue]) -> XValue:
    # Go's strings.Title: a letter after anything but a letter, digit, mark or `_`/`'` is capitalised
    out: list[str] = []
    previous = " "
    for char in to_text(args[0]).lower():
        boundary = not (unicodedata.category(previous)[0] in "LMN" or previous in "_'")
        out.append(char.upper() if boundary else char)
        previous = char
    return "".join(out)


@register("word", 2, 3)
def _word(env: Environment, args: Sequence[XValue]) -> XValue:
    text, index = to_text(args[0]), to_integer(args[1])
    words = extract_words(text, _optional_text(args, 2))
    offset = index + len(words) if index < 0 else index
    if not 0 <= offset < len(words):
        raise EvaluationError(f"index {index} is out of range for the number of words {len(words)}")
    return words[offset]


@register("remove_first_word", 1)
def _remove_first_word(env: Environment, args: Sequence[XValue]) -> XValue:
    text = to_text(args[0])
    words = extract_words(text, "")
    if len(words) < 2:
        return ""
    rest = text[text.index(words[0]) + len(words[0]) :]
    return rest[rest.index(words[1]) :]


@register("word_slice", 2, 4)
def _word_slice(env: Environment, args: Sequence[XValue]) -> XValue:
    text, start = to_text(args[0]), to_integer(args[1])
    if start < 0:
        raise EvaluationError("must start with a positive index")
    end = to_integer(args[2]) if len(args) >= 3 else -1
    if 0 < end <= start:
        raise EvaluationError("must have a end which is greater than the start")
    words = extract_words(text, _optional_text(args, 3))
    if start >= len(words):
        return ""
    return " ".join(words[start : min(end, len(words))] if end > 0 else words[start:])


register("word_count", 1, 2)(lambda env, a: Decimal(len(extract_words(to_text(a[0]), _optional_text(a, 1)))))


@register("field", 3)
def _field(env: Environment, args: Sequence[XValue]) -> XValue:
    text, index = to_text(args[0]), to_integer(args[1])
    if index < 0:
        raise EvaluationError("cannot use a negative index")
    separator = to_text(args[2])
    fields = text.split(separator) if separator else list(text)
    if separator == " ":
        fields = [item for item in fields if item]
    return trim_space(fields[index]) if index < len(fields) else ""


@register("clean", 1)
def _clean(env: Environment, args: Sequence[XValue]) -> XValue:
    return "".join(char for char in to_text(args[0]) if unicodedata.category(char)[0] != "C")


@register("text_slice", 2, 3)
def _text_slice(env: Environment, args: Sequence[XValue]) -> XValue:
    text = to_text(args[0])
    length = len(text)
    start = to_integer(args[1])
    end = to_integer(args[2]) if len(args) == 3 else length
    start = start + length if start < 0 else start
    end = end + length if end < 0 else end
    return text[max(start, 0) : max(end, 0)] if start < end else ""


register("lower", 1)(lambda env, a: to_text(a[0]).lower())
register("upper", 1)(lambda env, a: to_text(a[0]).upper())


def translate_go_regex(pattern: str) -> str:
    """RE2 syntax Python spells differently: `\\pL`-style classes are refused by `re`."""
    return pattern


@register("regex_match", 2, 3)
def _regex_match(env: Environment, args: Sequence[XValue]) -> XValue:
    text, pattern = to_text(args[0]), to_text(args[1])
    group = to_integer(args[2]) if len(args) == 3 else 0
    try:
        compiled = re.compile(pattern, re.MULTILINE | re.IGNORECASE)
    except re.error as exc:
        raise EvaluationError("invalid regular expression") from exc
    found = compiled.search(text)
    groups = [found.group(0), *found.groups()] if found else []
    if not 0 <= group < len(groups):
        raise EvaluationError("invalid regular expression group")
    return groups[group] or ""


register("text_length", 1)(lambda env, a: Decimal(len(to_text(a[0]))))
register("text_compare", 2)(lambda env, a: Decimal(_compare(to_text(a[0]), to_text(a[1]))))


def _compare(left: str, right: str) -> int:
    # Go compares strings byte-wise, i.e. by UTF-8
    a, b = left.encode(), right.encode()
    return (a > b) - (a < b)


@register("repeat", 2)
def _repeat(env: Environment, args: Sequence[XValue]) -> XValue:
    text, count = to_text(args[0]), to_integer(args[1])
    if count < 0:
        raise EvaluationError(f"must be called with a positive integer, got {count}")
    return text * count


@register("replace", 3, 4)
def _replace(env: Environment, args: Sequence[XValue]) -> XValue:
    text, needle, replacement = to_text(args[0]), to_text(args[1]), to_text(args[2])
    count = to_integer(args[3]) if len(args) == 4 else -1
    return text.replace(needle, replacement, count if count >= 0 else -1)


@register("percent", 1)
def _percent(env: Environment, args: Sequence[XValue]) -> XValue:
    return f"{int((to_number(args[0]) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))}%"


register("url_encode", 1)(lambda env, a: urllib.parse.quote(to_text(a[0]), safe="-_.~"))
register("html_decode", 1)(lambda env, a: html.unescape(to_text(a[0])).replace("\xa0", " "))


# --- numbers ---------------------------------------------------------------------------------


def _places(args: Sequence[XValue]) -> int:
    return to_integer(args[1]) if len(args) > 1 else 0


def _round(number: Decimal, places: int, rounding: str) -> Decimal:
    return number.quantize(Decimal(1).scaleb(-places), rounding=rounding)


register("abs", 1)(lambda env, a: abs(to_number(a[0])))
register("round", 1, 2)(lambda env, a: _round(to_number(a[0]), _places(a), ROUND_HALF_UP))


@register("round_up", 1, 2)
def _round_up(env: Environment, args: Sequence[XValue]) -> XValue:
    number, places = to_number(args[0]), _places(args)
    return -_round(-number, places, ROUND_FLOOR)


register("round_down", 1, 2)(lambda env, a: _round(to_number(a[0]), _places(a), ROUND_FLOOR))
register("max", 1, None)(lambda env, a: max(to_number(value) for value in a))
register("min", 1, None)(lambda env, a: min(to_number(value) for value in a))


@register("mean", 1, None)
def _mean(env: Environment, args: Sequence[XValue]) -> XValue:
    from .expressions import divide

    return divide(sum((to_number(value) for value in args), Decimal(0)), Decimal(len(args)))


@register("mod", 2)
def _mod(env: Environment, args: Sequence[XValue]) -> XValue:
    dividend, divisor = to_number(args[0]), to_number(args[1])
    if divisor == 0:
        raise EvaluationError("division by zero")
    return dividend % divisor


register("rand", 0)(lambda env, a: Decimal(repr(env.random.random())))


@register("rand_between", 2)
def _rand_between(env: Environment, args: Sequence[XValue]) -> XValue:
    low, high = to_number(args[0]), to_number(args[1])
    return (Decimal(repr(env.random.random())) * (high - low + 1) + low).to_integral_value(rounding=ROUND_FLOOR)


# --- dates and times -----------------------------------------------------------------------


@register("parse_datetime", 2, 3)
def _parse_datetime(env: Environment, args: Sequence[XValue]) -> XValue:
    text, layout = to_text(args[0]), to_text(args[1])
    zone = dates.load_zone(to_text(args[2])) if len(args) == 3 else env.timezone
    return dates.datetime_from_parts(dates.parse_layout(text, layout, dates.DATETIME_TOKENS), zone)


@register("datetime_from_epoch", 1)
def _from_epoch(env: Environment, args: Sequence[XValue]) -> XValue:
    seconds = to_number(args[0])
    whole = int(seconds)
    micros = int((seconds - whole) * 1_000_000)
    return datetime.fromtimestamp(whole, env.timezone) + timedelta(microseconds=micros)


def _days_between(later: datetime, earlier: datetime) -> int:
    return (later.date() - earlier.astimezone(later.tzinfo).date()).days


@register("datetime_diff", 3)
def _datetime_diff(env: Environment, args: Sequence[XValue]) -> XValue:
    first, second, unit = to_datetime(env, args[0]), to_datetime(env, args[1]), to_text(args[2])
    seconds = (second - first).total_seconds()
    if unit in ("s", "m", "h"):
        return Decimal(int(seconds / {"s": 1, "m": 60, "h": 3600}[unit]))
    if unit in ("D", "W"):
        days = _days_between(second, first)
        return Decimal(int(days / 7) if unit == "W" else days)
    if unit == "M":
        earlier = first.astimezone(second.tzinfo)
        months = (second.year - earlier.year) * 12 + second.month - earlier.month
        if months > 0 and second.day < earlier.day:
            months -= 1
        elif months < 0 and second.day > earlier.day:
            months += 1
        return Decimal(months)
    if unit == "Y":
        return Decimal(second.year - first.year)
    raise EvaluationError(f"unknown unit: {unit}, must be one of s, m, h, D, W, M, Y")


def add_months(moment: datetime, months: int) -> datetime:
    """Go's AddDate: an overflowing day rolls into the next month (31 Jan + 1 month = 3 Mar)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    first = moment.replace(year=year, month=month + 1, day=1)
    return first + timedelta(days=moment.day - 1)


@register("datetime_add", 3)
def _datetime_add(env: Environment, args: Sequence[XValue]) -> XValue:
    moment, amount, unit = to_datetime(env, args[0]), to_integer(args[1]), to_text(args[2])
    spans = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1)}
    if unit in spans:
        return moment + spans[unit] * amount
    if unit in ("D", "W"):
        return moment + timedelta(days=amount * (7 if unit == "W" else 1))
    if unit in ("M", "Y"):
        return add_months(moment, amount * (12 if unit == "Y" else 1))
    raise EvaluationError(f"unknown unit: {unit}, must be one of s, m, h, D, W, M, Y")


@register("replace_time", 2)
def _replace_time(env: Environment, args: Sequence[XValue]) -> XValue:
    moment, new_time = to_datetime(env, args[0]), to_time(env, args[1])
    return moment.replace(hour=new_time.hour, minute=new_time.minute, second=new_time.second,
                          microsecond=new_time.microsecond)  # fmt: skip


@register("tz", 1)
def _tz(env: Environment, args: Sequence[XValue]) -> XValue:
    zone = to_datetime(env, args[0]).tzinfo
    name = getattr(zone, "key", None) or (zone.tzname(None) if zone else "UTC")
    return name or "UTC"


register("tz_offset", 1)(lambda env, a: to_datetime(env, a[0]).strftime("%z") or "+0000")


@register("epoch", 1)
def _epoch(env: Environment, args: Sequence[XValue]) -> XValue:
    moment = to_datetime(env, args[0])
    whole = Decimal(int(moment.timestamp()))
    return whole + Decimal(moment.microsecond) / Decimal(1_000_000)


register("now", 0)(lambda env, a: env.now.astimezone(env.timezone))
register("today", 0)(lambda env, a: env.now.astimezone(env.timezone).date())


@register("date_from_parts", 3)
def _date_from_parts(env: Environment, args: Sequence[XValue]) -> XValue:
    year, month, day = (to_integer(value) for value in args)
    if not 1 <= month <= 12:
        raise EvaluationError("invalid value for month, must be 1-12")
    return date(year, month, 1) + timedelta(days=day - 1)


register("weekday", 1)(lambda env, a: Decimal((to_date(env, a[0]).weekday() + 1) % 7))


@register("week_number", 1)
def _week_number(env: Environment, args: Sequence[XValue]) -> XValue:
    day = to_date(env, args[0])
    first = date(day.year, 1, 1)
    start_of_first_week = first - timedelta(days=(first.weekday() + 1) % 7)
    return Decimal((day - start_of_first_week).days // 7 + 1)


@register("parse_time", 2)
def _parse_time(env: Environment, args: Sequence[XValue]) -> XValue:
    return dates.time_from_parts(dates.parse_layout(to_text(args[0]), to_text(args[1]), dates.TIME_TOKENS))


@register("time_from_parts", 3)
def _time_from_parts(env: Environment, args: Sequence[XValue]) -> XValue:
    hour, minute, second = (to_integer(value) for value in args)
    for value, name, top in ((hour, "hour", 23), (minute, "minute", 59), (second, "second", 59)):
        if not 0 <= value <= top:
            raise EvaluationError(f"invalid value for {name}, must be 0-{top}")
    return time(hour, minute, second)


# --- arrays and objects ------------------------------------------------------------------------


@register("contains", 2)
def _contains(env: Environment, args: Sequence[XValue]) -> XValue:
    items = to_array(args[0]).items
    if isinstance(args[1], XError):
        return args[1]
    return any(equals(item, args[1]) for item in items)


register("join", 2)(lambda env, a: to_text(a[1]).join(to_text(item) for item in to_array(a[0]).items))
register("reverse", 1)(lambda env, a: XArray(tuple(reversed(to_array(a[0]).items))))


@register("sort", 1)
def _sort(env: Environment, args: Sequence[XValue]) -> XValue:
    items = to_array(args[0]).items
    if len(items) < 2:
        return XArray(items)
    kinds = {type(item) for item in items}
    if len(kinds) != 1:
        raise EvaluationError("can't sort array of different types")
    if not isinstance(items[0], str | Decimal | bool | date | time):
        raise EvaluationError(f"{describe(items[0])} isn't a comparable type")
    return XArray(tuple(sorted(items, key=lambda item: item.encode() if isinstance(item, str) else item)))  # type: ignore[arg-type, return-value]


register("sum", 1)(lambda env, a: sum((to_number(item) for item in to_array(a[0]).items), Decimal(0)))


@register("unique", 1)
def _unique(env: Environment, args: Sequence[XValue]) -> XValue:
    seen: list[XValue] = []
    for item in to_array(args[0]).items:
        if not any(equals(item, other) for other in seen):
            seen.append(item)
    return XArray(tuple(seen))


register("concat", 2)(lambda env, a: XArray(to_array(a[0]).items + to_array(a[1]).items))


def _call(function: XFunction, env: Environment, arguments: Sequence[XValue]) -> XValue:
    from .expressions import call

    return call(function, env, arguments)


@register("filter", 2)
def _filter(env: Environment, args: Sequence[XValue]) -> XValue:
    items, function = to_array(args[0]).items, to_function(args[1])
    return XArray(tuple(item for item in items if to_boolean(_call(function, env, [item]))))


@register("foreach", 2, None)
def _foreach(env: Environment, args: Sequence[XValue]) -> XValue:
    items, function = to_array(args[0]).items, to_function(args[1])
    out = []
    for item in items:
        value = _call(function, env, [item, *args[2:]])
        if isinstance(value, XError):
            return value
        out.append(value)
    return XArray(tuple(out))


@register("foreach_value", 2, None)
def _foreach_value(env: Environment, args: Sequence[XValue]) -> XValue:
    source, function = to_object(args[0]), to_function(args[1])
    out: dict[str, XValue] = {}
    for key, item in source.properties.items():
        value = _call(function, env, [item, *args[2:]])
        if isinstance(value, XError):
            return value
        out[key] = value
    return new_object(out)


register("keys", 1)(lambda env, a: XArray(tuple(sorted(to_object(a[0]).properties))))


@register("extract", 2)
def _extract(env: Environment, args: Sequence[XValue]) -> XValue:
    return to_object(args[0]).get(to_text(args[1]))[0]


@register("extract_object", 2, None)
def _extract_object(env: Environment, args: Sequence[XValue]) -> XValue:
    source = to_object(args[0])
    names = [to_text(value) for value in args[1:]]
    return new_object({name: source.get(name)[0] for name in names})


# --- encoded text: URNs, attachments, JSON -------------------------------------------------------

_URN = re.compile(r"(?P<scheme>[a-z][a-z0-9]*):(?P<path>[^?#]+)(?:\?(?P<query>[^#]*))?(?:#(?P<display>.*))?")


def parse_urn(text: str) -> tuple[str, str, str]:
    found = _URN.fullmatch(text)
    if found is None:
        raise EvaluationError(f"{text} is not a valid URN: scheme or path cannot be empty")
    return found["scheme"], found["path"], found["display"] or ""


@register("urn_parts", 1)
def _urn_parts(env: Environment, args: Sequence[XValue]) -> XValue:
    scheme, path, display = parse_urn(to_text(args[0]))
    return new_object({"scheme": scheme, "path": path, "display": display})


@register("format_urn", 1)
def _format_urn(env: Environment, args: Sequence[XValue]) -> XValue:
    # a tel URN stays in international form: national formatting needs libphonenumber's metadata
    _scheme, path, display = parse_urn(to_text(args[0]))
    return display or path


@register("attachment_parts", 1)
def _attachment_parts(env: Environment, args: Sequence[XValue]) -> XValue:
    text = to_text(args[0])
    content_type, _, url = text.partition(":")
    if not url or "/" not in content_type:
        content_type, url = "", text
    return new_object({"content_type": content_type, "url": url})


def from_json(data: object) -> XValue:
    if data is None or isinstance(data, bool | str):
        return data
    if isinstance(data, Decimal):
        return data
    if isinstance(data, int | float):
        return Decimal(str(data))
    if isinstance(data, list):
        return XArray(tuple(from_json(item) for item in data))
    if isinstance(data, dict):
        return new_object({key: from_json(item) for key, item in data.items()})
    raise EvaluationError("unsupported JSON")


@register("parse_json", 1)
def _parse_json(env: Environment, args: Sequence[XValue]) -> XValue:
    try:
        return from_json(json.loads(to_text(args[0]), parse_float=Decimal, parse_int=Decimal))
    except ValueError as exc:
        raise EvaluationError(f"unable to parse JSON: {exc}") from exc


def to_json(value: XValue) -> str:
    if isinstance(value, XError):
        raise EvaluationError(value.message)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, str | date | time):
        return json.dumps(render(value), ensure_ascii=False)
    if isinstance(value, XArray):
        return "[" + ",".join(to_json(item) for item in value.items) + "]"
    if isinstance(value, XObject):
        keys = sorted(value.properties)
        return "{" + ",".join(f"{json.dumps(key)}:{to_json(value.properties[key])}" for key in keys) + "}"
    return "null"


register("json", 1)(lambda env, a: to_json(a[0]))


# --- formatting --------------------------------------------------------------------------------


def format_number_grouped(number: Decimal, places: int, grouped: bool) -> str:
    text = (
        format_number(number)
        if places < 0
        else f"{_round(number, places, ROUND_HALF_EVEN if False else ROUND_HALF_UP):f}"
    )
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("-").partition(".")
    if grouped:
        whole = f"{int(whole):,}"
    out = whole + ("." + fraction if fraction else "")
    return ("-" + out) if negative else out


def format_value(env: Environment, value: XValue) -> str:
    """goflow's Format: numbers grouped, dates and times in the environment's formats."""
    if isinstance(value, XError) or value is None:
        return ""
    if isinstance(value, Decimal):
        return format_number_grouped(value, -1, True)
    if isinstance(value, datetime):
        local = value.astimezone(env.timezone)
        return dates.format_layout(local, f"{env.date_format} {env.time_format}", dates.DATETIME_TOKENS)
    if isinstance(value, date):
        return dates.format_layout(value, env.date_format, dates.DATE_TOKENS)
    if isinstance(value, time):
        return dates.format_layout(value, env.time_format, dates.TIME_TOKENS)
    if isinstance(value, XArray):
        return ", ".join(format_value(env, item) for item in value.items)
    if isinstance(value, XObject):
        if value.has_default:
            return format_value(env, value.default)
        return "\n".join(f"{key}: {format_value(env, value.properties[key])}" for key in sorted(value.properties))
    return render(value)


register("format", 1)(lambda env, a: format_value(env, a[0]))


@register("format_date", 1, 2)
def _format_date(env: Environment, args: Sequence[XValue]) -> XValue:
    day = to_date(env, args[0])
    layout = to_text(args[1]) if len(args) > 1 else env.date_format
    return dates.format_layout(day, layout, dates.DATE_TOKENS)


@register("format_datetime", 1, 3)
def _format_datetime(env: Environment, args: Sequence[XValue]) -> XValue:
    moment = to_datetime(env, args[0])
    layout = to_text(args[1]) if len(args) > 1 else f"{env.date_format} {env.time_format}"
    zone = dates.load_zone(to_text(args[2])) if len(args) > 2 else env.timezone
    return dates.format_layout(moment.astimezone(zone), layout, dates.DATETIME_TOKENS)


@register("format_time", 1, 2)
def _format_time(env: Environment, args: Sequence[XValue]) -> XValue:
    moment = to_time(env, args[0])
    layout = to_text(args[1]) if len(args) > 1 else env.time_format
    return dates.format_layout(moment, layout, dates.TIME_TOKENS)


register("format_location", 1)(lambda env, a: trim_space(to_text(a[0]).split(">")[-1]))


@register("format_number", 1, 3)
def _format_number(env: Environment, args: Sequence[XValue]) -> XValue:
    number = to_number(args[0])
    places = to_integer(args[1]) if len(args) > 1 else -1
    if len(args) > 1 and not 0 <= places <= 9:
        raise EvaluationError(f"must take 0-9 number of places, got {places}")
    grouped = to_boolean(args[2]) if len(args) > 2 else True
    return format_number_grouped(number, places, grouped)


# --- utilities ---------------------------------------------------------------------------------

register("is_error", 1)(lambda env, a: isinstance(a[0], XError))


@register("count", 1)
def _count(env: Environment, args: Sequence[XValue]) -> XValue:
    value = args[0]
    if value is None:
        return Decimal(0)
    if isinstance(value, XArray):
        return Decimal(len(value.items))
    if isinstance(value, XObject):
        return Decimal(len(value.properties))
    raise EvaluationError("value isn't countable")


@register("default", 2)
def _default(env: Environment, args: Sequence[XValue]) -> XValue:
    if isinstance(args[0], XError) or render(args[0]) == "":
        return args[1]
    return args[0]


@register("legacy_add", 2)
def _legacy_add(env: Environment, args: Sequence[XValue]) -> XValue:
    def attempt(convert: Callable[[XValue], XValue], value: XValue) -> XValue:
        try:
            return convert(value)
        except EvaluationError as exc:
            return XError(str(exc))

    first_date, second_date = (attempt(lambda v: to_datetime(env, v), value) for value in args)
    first_number, second_number = (attempt(to_number, value) for value in args)
    if isinstance(first_date, datetime) and isinstance(second_date, datetime):
        raise EvaluationError("cannot operate on two dates")
    if isinstance(first_date, datetime) and isinstance(second_number, Decimal):
        return first_date + timedelta(days=int(second_number))
    if isinstance(second_date, datetime) and isinstance(first_number, Decimal):
        return second_date + timedelta(days=int(first_number))
    for number in (first_number, second_number):
        if isinstance(number, XError):
            return number
    assert isinstance(first_number, Decimal) and isinstance(second_number, Decimal)
    return first_number + second_number


@register("read_chars", 1)
def _read_chars(env: Environment, args: Sequence[XValue]) -> XValue:
    text = to_text(args[0]).lstrip("+")
    for size in (3, 4):
        if len(text) % size == 0 and text:
            return " , ".join(" ".join(text[i : i + size]) for i in range(0, len(text), size))
    return " , ".join(text)


_ = truthy  # re-exported for callers that test values the way functions do
