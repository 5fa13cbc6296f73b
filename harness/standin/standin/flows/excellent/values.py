"""Excellent's value model (goflow's excellent/types): text, number, boolean, date, datetime, time,
array, object, function, error and nothing, with goflow's conversions, truthiness and rendering.

Python values stand for most types (str, Decimal, bool, date, datetime, time, None); arrays, objects,
functions and errors have small classes here. Conversions raise EvaluationError; the evaluator turns
that into an XError value, which is how goflow lets errors flow through expressions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from ..text import format_number, parse_literal_number


class EvaluationError(Exception):
    """An expression that fails at run time (an unset result, a bad conversion): it renders empty."""


@dataclass(frozen=True)
class XObject:
    """An object: named properties and, if `has_default`, a default (what it reads as when rendered,
    e.g. a result reads as its value). `missing_ok` objects (contact fields) read a property they lack
    as nothing, as goflow does for a field the contact has no value for; others make it an error."""

    default: XValue = None
    properties: Mapping[str, XValue] = field(default_factory=dict)
    missing_ok: bool = False
    has_default: bool = True

    def get(self, name: str) -> tuple[XValue, bool]:
        wanted = name.lower()
        for key, item in self.properties.items():
            if key.lower() == wanted:
                return item, True
        return None, False


@dataclass(frozen=True)
class XArray:
    items: tuple[XValue, ...] = ()


@dataclass(frozen=True)
class XError:
    message: str


@dataclass(frozen=True)
class XFunction:
    name: str
    call: Callable[[Environment, Sequence[XValue]], XValue] = field(compare=False)


XValue = str | Decimal | bool | date | datetime | time | XArray | XObject | XFunction | XError | None


def new_object(properties: Mapping[str, XValue]) -> XObject:
    """An object without a default, as goflow's object() and parse_json make."""
    return XObject(default=None, properties=dict(properties), has_default=False)


@dataclass
class Environment:
    """What goflow's envs.Environment gives expressions: the org's formats, timezone, country and
    clock. Defaults are goflow's (UTC, YYYY-MM-DD, tt:mm); `now` comes from the engine."""

    timezone: tzinfo = UTC
    date_format: str = "YYYY-MM-DD"
    time_format: str = "tt:mm"
    default_country: str = ""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    random: random.Random = field(default_factory=random.Random)


# --- describing and rendering --------------------------------------------------------------


def describe(value: XValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    if isinstance(value, XArray):
        return "array"
    if isinstance(value, XObject):
        return "object"
    if isinstance(value, XFunction):
        return "function"
    return "error"


def format_iso(moment: datetime) -> str:
    """goflow's ISO form: microseconds always, `Z` for UTC, `+hh:mm` otherwise."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0) and _is_utc(moment.tzinfo):
        return text + "Z"
    return text + _offset_text(offset, colon=True)


def _is_utc(zone: tzinfo | None) -> bool:
    return zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


def _offset_text(offset: timedelta, *, colon: bool) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}" if colon else f"{sign}{hours:02d}{mins:02d}"


def render(value: XValue) -> str:
    """The text a value reads as in a template (goflow's Render)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format_number(value)
    if isinstance(value, datetime):
        return format_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S.%f")
    if isinstance(value, XArray):
        return "[" + ", ".join(render(item) for item in value.items) + "]"
    if isinstance(value, XObject):
        if value.has_default:
            return render(value.default)
        return "{" + ", ".join(f"{key}: {render(value.properties[key])}" for key in sorted(value.properties)) + "}"
    if isinstance(value, XFunction):
        return value.name
    return value.message


def truthy(value: XValue) -> bool:
    if value is None or isinstance(value, XError):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value != "" and value.lower() != "false"
    if isinstance(value, Decimal):
        return value != 0
    if isinstance(value, XArray):
        return bool(value.items)
    if isinstance(value, XObject):
        return truthy(value.default) if value.has_default else bool(value.properties)
    return True


def equals(left: XValue, right: XValue) -> bool:
    """goflow's types.Equals: same type and same value (objects by default and properties)."""
    if left is None or right is None:
        return left is None and right is None
    if _kind(left) != _kind(right):
        return False
    if isinstance(left, XObject) and isinstance(right, XObject):
        if (left.has_default or right.has_default) and not equals(left.default, right.default):
            return False
        if set(left.properties) != set(right.properties):
            return False
        return all(equals(item, right.properties[key]) for key, item in left.properties.items())
    if isinstance(left, XArray) and isinstance(right, XArray):
        return len(left.items) == len(right.items) and all(
            equals(a, b) for a, b in zip(left.items, right.items, strict=True)
        )
    return left == right


def _kind(value: XValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, datetime):
        return "datetime"
    return type(value).__name__


COMPARABLE = (str, Decimal, bool, date, time)


# --- conversions (goflow's ToX*) -----------------------------------------------------------


def _raise_if_error(value: XValue) -> None:
    if isinstance(value, XError):
        raise EvaluationError(value.message)


def to_text(value: XValue) -> str:
    _raise_if_error(value)
    return render(value)


def to_boolean(value: XValue) -> bool:
    _raise_if_error(value)
    return truthy(value)


def to_number(value: XValue) -> Decimal:
    _raise_if_error(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        number = parse_literal_number(value)
        if number is not None:
            return number
    if isinstance(value, XObject) and value.has_default:
        return to_number(value.default)
    raise EvaluationError(f"unable to convert {describe(value)} to a number")


def to_integer(value: XValue) -> int:
    number = int(to_number(value))
    if not -(2**31) <= number < 2**31:
        raise EvaluationError(f"number value {number} is out of range for an integer")
    return number


def to_array(value: XValue) -> XArray:
    _raise_if_error(value)
    if value is None:
        return XArray()
    if isinstance(value, XArray):
        return value
    raise EvaluationError(f"unable to convert {describe(value)} to an array")


def to_object(value: XValue) -> XObject:
    _raise_if_error(value)
    if value is None:
        return new_object({})
    if isinstance(value, XObject):
        return value
    raise EvaluationError(f"unable to convert {describe(value)} to an object")


def to_function(value: XValue) -> XFunction:
    _raise_if_error(value)
    if isinstance(value, XFunction):
        return value
    raise EvaluationError(f"unable to convert {describe(value)} to a function")


def to_date(env: Environment, value: XValue) -> date:
    _raise_if_error(value)
    if isinstance(value, datetime):
        return value.astimezone(env.timezone).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        found = parse_date(env, value)
        if found is not None:
            return found[0]
    if isinstance(value, XObject) and value.has_default:
        return to_date(env, value.default)
    raise EvaluationError(f"unable to convert {describe(value)} to a date")


def to_datetime(env: Environment, value: XValue, *, fill_time: bool = False) -> datetime:
    _raise_if_error(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=env.timezone)
    if isinstance(value, str):
        parsed = parse_datetime_text(env, value, fill_time=fill_time)
        if parsed is not None:
            return parsed
    if isinstance(value, XObject) and value.has_default:
        return to_datetime(env, value.default, fill_time=fill_time)
    raise EvaluationError(f"unable to convert {describe(value)} to a datetime")


def to_time(env: Environment, value: XValue) -> time:
    _raise_if_error(value)
    if isinstance(value, time):
        return value
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, Decimal) and 0 <= int(value) <= 23:
        return time(int(value))
    if isinstance(value, str):
        parsed = parse_time_text(value)
        if parsed is not None:
            return parsed
    if isinstance(value, XObject) and value.has_default:
        return to_time(env, value.default)
    raise EvaluationError(f"unable to convert {describe(value)} to a time")


# --- reading dates and times in text (goflow's envs/dates.go) ------------------------------

_SEPARATORS = r"[-.\\/_ ]"
_DAY_MONTH_YEAR = re.compile(
    rf"\b([0-9]{{1,2}}){_SEPARATORS}([0-9]{{1,2}}){_SEPARATORS}([0-9]{{4}}|[0-9]{{2}})\b", re.ASCII
)
_YEAR_MONTH_DAY = re.compile(
    rf"\b([0-9]{{4}}|[0-9]{{2}}){_SEPARATORS}([0-9]{{1,2}}){_SEPARATORS}([0-9]{{1,2}})\b", re.ASCII
)
_TIME = re.compile(r"\b(\d{1,2})(?:(?::)?(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\W*([aApP][mM])?\b", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_ISO_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)

# which regex group is day, month, year for each date format
_DATE_ORDERS = {
    "YYYY-MM-DD": (_YEAR_MONTH_DAY, 3, 2, 1),
    "DD-MM-YYYY": (_DAY_MONTH_YEAR, 1, 2, 3),
    "MM-DD-YYYY": (_DAY_MONTH_YEAR, 2, 1, 3),
}


def _whole_trim(text: str) -> str:
    return text.strip(" \n\r\t")


def parse_date(env: Environment, text: str) -> tuple[date, str] | None:
    """The first date in `text` in the environment's date order, and the text after it."""
    text = _whole_trim(text)
    iso = _ISO_DATE.match(text[:10])
    if iso and len(text[:10]) == 10:
        try:
            return date(int(iso[1]), int(iso[2]), int(iso[3])), text[10:]
        except ValueError:
            pass
    pattern, day_group, month_group, year_group = _DATE_ORDERS[env.date_format]
    for match in pattern.finditer(text):
        day, month = int(match[day_group]), int(match[month_group])
        if not 1 <= day <= 31 or not 1 <= month <= 12:
            continue
        year_text = match[year_group]
        year = int(year_text)
        if len(year_text) == 2:
            year += 1900 if year > env.now.year % 1000 else 2000
        try:
            return date(year, month, day), text[match.end() :]
        except ValueError:
            # goflow normalises an impossible day (31 April) into the next month
            return date(year, month, 1) + timedelta(days=day - 1), text[match.end() :]
    return None


def parse_time_text(text: str) -> time | None:
    for match in _TIME.finditer(text):
        hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
        ampm = (match[5] or "").lower()
        if hour < 12 and ampm == "pm":
            hour += 12
        elif hour == 12 and ampm == "am":
            hour = 0
        micros = int((match[4] or "0")[:6].ljust(6, "0"))
        if hour == 24 and minute == 0 and second == 0 and micros == 0:
            hour = 0
        if hour > 23 or minute > 59 or second > 59:
            continue
        return time(hour, minute, second, micros)
    return None


def _parse_offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    from datetime import timezone

    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def parse_datetime_text(env: Environment, text: str, *, fill_time: bool = False) -> datetime | None:
    text = _whole_trim(text)
    iso = _ISO_DATETIME.fullmatch(text)
    if iso:
        micros = int((iso[7] or "0")[:6].ljust(6, "0"))
        try:
            return datetime(
                int(iso[1]), int(iso[2]), int(iso[3]), int(iso[4]), int(iso[5]), int(iso[6] or 0), micros,
                tzinfo=_parse_offset(iso[8]),
            )  # fmt: skip
        except ValueError:
            return None
    found = parse_date(env, text)
    if found is None:
        return None
    day, rest = found
    moment = parse_time_text(rest)
    if moment is None:
        moment = env.now.astimezone(env.timezone).time() if fill_time else time(0)
    return datetime.combine(day, moment.replace(tzinfo=None), tzinfo=env.timezone)
