"""goflow's date layouts (`YYYY-MM-DD tt:mm`, ...) for formatting and for parse_datetime/parse_time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .values import EvaluationError

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_IGNORED = " :,T-_/."
_DATE_TOKENS = ("YYYY", "YY", "MMMM", "MMM", "MM", "M", "DD", "D", "EEEE", "EEE")
_TIME_TOKENS = ("tt", "t", "hh", "h", "mm", "m", "ss", "s", "fffffffff", "ffffff", "fff", "aa", "AA")
_ZONE_TOKENS = ("ZZZ", "Z")


def split_layout(layout: str, tokens: tuple[str, ...]) -> list[str]:
    """The layout's tokens, longest first; an unknown letter is an error (as goflow's)."""
    parts: list[str] = []
    position = 0
    ordered = sorted(tokens, key=len, reverse=True)
    while position < len(layout):
        for token in ordered:
            if layout.startswith(token, position):
                parts.append(token)
                position += len(token)
                break
        else:
            char = layout[position]
            if char not in _IGNORED:
                raise EvaluationError(f"'{layout[position:]}' is not a valid format")
            parts.append(char)
            position += 1
    return parts


def format_layout(value: date | time | datetime, layout: str, tokens: tuple[str, ...]) -> str:
    out: list[str] = []
    for part in split_layout(layout, tokens):
        out.append(_format_token(value, part))
    return "".join(out)


def _format_token(value: date | time | datetime, token: str) -> str:
    if isinstance(value, date):
        day_value: date = value
        if token == "YYYY":
            return f"{day_value.year:04d}"
        if token == "YY":
            return f"{day_value.year % 100:02d}"
        if token == "MMMM":
            return _MONTHS[day_value.month - 1]
        if token == "MMM":
            return _MONTHS[day_value.month - 1][:3]
        if token == "MM":
            return f"{day_value.month:02d}"
        if token == "M":
            return str(day_value.month)
        if token == "DD":
            return f"{day_value.day:02d}"
        if token == "D":
            return str(day_value.day)
        if token == "EEEE":
            return _DAYS[day_value.weekday()]
        if token == "EEE":
            return _DAYS[day_value.weekday()][:3]
    if isinstance(value, datetime | time):
        moment = value
        hour12 = moment.hour % 12 or 12
        simple = {
            "tt": f"{moment.hour:02d}",
            "t": str(moment.hour),
            "hh": f"{hour12:02d}",
            "h": str(hour12),
            "mm": f"{moment.minute:02d}",
            "m": str(moment.minute),
            "ss": f"{moment.second:02d}",
            "s": str(moment.second),
            "fff": f"{moment.microsecond // 1000:03d}",
            "ffffff": f"{moment.microsecond:06d}",
            "fffffffff": f"{moment.microsecond:06d}000",
            "aa": "am" if moment.hour < 12 else "pm",
            "AA": "AM" if moment.hour < 12 else "PM",
        }
        if token in simple:
            return simple[token]
    if isinstance(value, datetime) and token in _ZONE_TOKENS:
        offset = value.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds()) // 60
        if token == "Z" and minutes == 0:
            return "Z"
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        return f"{sign}{hours:02d}:{mins:02d}"
    return token


DATE_TOKENS = _DATE_TOKENS
TIME_TOKENS = _TIME_TOKENS
DATETIME_TOKENS = _DATE_TOKENS + _TIME_TOKENS + _ZONE_TOKENS


def goflow_layout(layout: str) -> str:
    """The environment's date/time format names are layouts too (`YYYY-MM-DD`, `tt:mm`)."""
    return layout


def load_zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise EvaluationError(f"unknown time zone {name}") from exc


_PARSE_PATTERNS = {
    "YYYY": r"(?P<year>\d{4})",
    "YY": r"(?P<year2>\d{2})",
    "MM": r"(?P<month>\d{2})",
    "M": r"(?P<month>\d{1,2})",
    "DD": r"(?P<day>\d{2})",
    "D": r"(?P<day>\d{1,2})",
    "tt": r"(?P<hour>\d{2})",
    "t": r"(?P<hour>\d{1,2})",
    "hh": r"(?P<hour12>\d{2})",
    "h": r"(?P<hour12>\d{1,2})",
    "mm": r"(?P<minute>\d{2})",
    "m": r"(?P<minute>\d{1,2})",
    "ss": r"(?P<second>\d{2})(?:\.(?P<fraction>\d+))?",
    "s": r"(?P<second>\d{1,2})(?:\.(?P<fraction>\d+))?",
    "fff": r"(?P<fraction>\d{3})",
    "ffffff": r"(?P<fraction>\d{6})",
    "fffffffff": r"(?P<fraction>\d{9})",
    "aa": r"(?P<ampm>am|pm)",
    "AA": r"(?P<ampm>AM|PM)",
    "Z": r"(?P<zone>Z|[+-]\d{2}:?\d{2})",
    "ZZZ": r"(?P<zone>[+-]\d{2}:?\d{2})",
}


def parse_layout(text: str, layout: str, tokens: tuple[str, ...]) -> dict[str, str]:
    pattern = "".join(
        _PARSE_PATTERNS[part] if part in _PARSE_PATTERNS else re.escape(part) for part in split_layout(layout, tokens)
    )
    match = re.fullmatch(pattern, text.strip(), re.ASCII)
    if match is None:
        raise EvaluationError(f"'{text}' couldn't be parsed with the format '{layout}'")
    return {key: value for key, value in match.groupdict().items() if value is not None}


def time_from_parts(parts: dict[str, str]) -> time:
    hour = int(parts.get("hour", parts.get("hour12", "0")))
    if "hour12" in parts:
        ampm = parts.get("ampm", "am").lower()
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    micros = int(parts.get("fraction", "0")[:6].ljust(6, "0"))
    try:
        return time(hour, int(parts.get("minute", "0")), int(parts.get("second", "0")), micros)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc


def datetime_from_parts(parts: dict[str, str], zone: tzinfo) -> datetime:
    year = int(parts["year"]) if "year" in parts else 2000 + int(parts.get("year2", "0"))
    moment = time_from_parts(parts)
    if "zone" in parts:
        raw = parts["zone"]
        if raw == "Z":
            zone = UTC
        else:
            digits = raw.replace(":", "")
            sign = -1 if digits[0] == "-" else 1
            zone = timezone(sign * timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5])))
    try:
        day = date(year, int(parts.get("month", "1")), int(parts.get("day", "1")))
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    return datetime.combine(day, moment, tzinfo=zone)
