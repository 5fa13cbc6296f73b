"""Reading a host node's log output into the Backend protocol's form: lines since a time, optionally each
prefixed by an RFC 3339 time as `docker logs -t` does (the logs checker places lines in time by it).

journald gives each line its own time (`-o json`: __REALTIME_TIMESTAMP); `docker logs -t` prefixes it. A
plain file or a supervisor program's output has only what the program wrote: a line that starts with a
time (ISO 8601, or logfmt's `time=`) is placed by it, a line without one takes its predecessor's, and the
lines before the first timed one have no time. Times without a zone are taken as UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from resilience.topology.hosts import LogKind

_STAMP = re.compile(r"^\W{0,2}(?:time=\"?)?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?")


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leading_time(line: str) -> float | None:
    """The epoch seconds a line starts with, if it starts with a time."""
    match = _STAMP.match(line)
    if not match:
        return None
    whole, fraction, zone = match.groups()
    text = whole.replace(" ", "T") + (f".{fraction[:6]}" if fraction else "")
    if zone and zone != "Z":
        text += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def timed_lines(kind: LogKind, output: str) -> list[tuple[float | None, str]]:
    """Each line of a log command's output with its time (None when it has none)."""
    if kind is LogKind.JOURNALD:
        return list(_journal(output))
    result: list[tuple[float | None, str]] = []
    last: float | None = None
    for line in output.splitlines():
        if kind is LogKind.CONTAINER:
            stamp, _, text = line.partition(" ")
            result.append((leading_time(stamp), text))
            continue
        own = leading_time(line)
        last = own if own is not None else last
        result.append((last, line))
    return result


def _journal(output: str) -> Iterable[tuple[float | None, str]]:
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # `-- No entries --` and the like
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # journald gives non-UTF-8 messages as a list of bytes
            message = bytes(message).decode(errors="replace")
        stamp = entry.get("__REALTIME_TIMESTAMP")
        yield (int(stamp) / 1e6 if stamp else None), str(message)


def render(lines: list[tuple[float | None, str]], tail: int | None, since: float | None, timestamps: bool) -> str:
    # Whole seconds, as Docker cuts. A line without a time is kept only when no line has one: then the
    # source cannot be cut at all.
    if since is not None and any(t is not None for t, _ in lines):
        lines = [(t, text) for t, text in lines if t is not None and t >= int(since)]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    out = [f"{rfc3339(t)} {text}" if timestamps and t is not None else text for t, text in lines]
    return "".join(line + "\n" for line in out)
