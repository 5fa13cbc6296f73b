"""Each node's log lines around each fault, from `logs/<node>.log` in a run directory.

`docker logs` carries no timestamps unless asked, so both kinds are supported: a line that starts with a
timestamp (RFC 3339 as Docker writes it, `2024-05-01 12:00:00,123` as Python's logging writes it,
`2024-05-01 12:00:00.123 UTC` as PostgreSQL writes it, or logfmt's `time=…`) is placed in time, and an
untimed line (a traceback's continuation) takes the time of the line before it. A file with no
timestamp at all cannot be placed in time: its tail is shown instead.

Files are streamed: only the lines inside a window and a bounded tail are kept, whatever the log's size.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NS_PER_S = 1_000_000_000
BEFORE_S = 5.0
AFTER_S = 10.0
MAX_LINES_PER_WINDOW = 120
TAIL_LINES = 40
MAX_LINE_CHARS = 400

_TIMESTAMP = re.compile(
    r"""^(?:time="?)?
    (?P<date>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T\ ]
    (?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})
    (?:[.,](?P<fraction>\d{1,9}))?
    \ ?(?P<zone>Z|UTC|[+-]\d{2}:?\d{2})?
    (?=["\s]|$)""",
    re.VERBOSE,
)

# A word of trouble standing as a word: `ERROR:`, `level=error`, `connection refused`, `timed out`; not one
# inside a setting's name or followed by its value (`connect_timeout=2`, `error_rate: 0.0`, `timeout=5s`).
TROUBLE = re.compile(
    r"(?<![\w.-])(?:traceback|panic|fatal|errors?|exceptions?|refused|timeout|timed\ out)"
    r"(?![\w-])(?!\s*[=:]\s*[\d\"'])",
    re.IGNORECASE,
)
# An exception's class name in a traceback's last line: `ValueError:`, `ConnectionRefusedError`.
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")


def parse_timestamp(line: str) -> int | None:
    """Wall-clock ns of the timestamp a log line starts with, or None. A time without a zone is UTC."""
    found = _TIMESTAMP.match(line)
    if found is None:
        return None
    parts = found.groupdict()
    try:
        moment = dt.datetime(
            int(parts["date"]), int(parts["month"]), int(parts["day"]),
            int(parts["hour"]), int(parts["minute"]), int(parts["second"]), tzinfo=dt.UTC,
        )  # fmt: skip
    except ValueError:  # a month 13 or an hour 25: not a timestamp after all
        return None
    seconds = calendar.timegm(moment.utctimetuple())
    fraction = parts["fraction"] or ""
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    zone = parts["zone"]
    offset_s = 0
    if zone and zone not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_s = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return (seconds - offset_s) * NS_PER_S + nanos


@dataclass(frozen=True)
class Window:
    """[start, end) in wall-clock ns around one edge of one fault."""

    fault_id: str
    edge: str  # "inject", "recover", or "fault" when one window covers both
    start_ns: int
    end_ns: int

    @property
    def key(self) -> str:
        return f"{self.fault_id}/{self.edge}"


@dataclass
class LogLine:
    number: int  # 1-based line number in the file
    wall_ns: int | None
    text: str

    @property
    def trouble(self) -> bool:
        return TROUBLE.search(self.text) is not None or EXCEPTION_NAME.search(self.text) is not None

    @property
    def shown(self) -> str:
        """The line with one timestamp: Docker's (when it added one) stands for the program's own after it."""
        found = _TIMESTAMP.match(self.text)
        if found is None:
            return self.text
        rest = self.text[found.end() :].lstrip()
        again = _TIMESTAMP.match(rest)
        if again is None:
            return self.text
        return f"{self.text[: found.end()]} {rest[again.end() :].lstrip()}"


@dataclass
class Excerpt:
    lines: list[LogLine] = field(default_factory=list)
    omitted: int = 0  # lines inside the window beyond the cap


@dataclass
class NodeLog:
    node: str
    path: Path
    timestamped: bool = False
    total_lines: int = 0
    excerpts: dict[str, Excerpt] = field(default_factory=dict)  # window key -> lines in it
    tail: list[LogLine] = field(default_factory=list)
    problem: str | None = None


def fault_windows(
    faults: Iterable[tuple[str, int, int | None]], before_s: float = BEFORE_S, after_s: float = AFTER_S
) -> list[Window]:
    """One window per fault, (id, injected wall ns, recovered wall ns or None): from `before_s` before the
    injection to `after_s` after it, and the same around the recovery; the two are joined when they meet,
    so a short fault gives one window and a long one gives its two edges."""
    windows: list[Window] = []
    before, after = int(before_s * NS_PER_S), int(after_s * NS_PER_S)
    for key, injected, recovered in faults:
        around_inject = (injected - before, injected + after)
        if recovered is None:
            windows.append(Window(key, "inject", *around_inject))
        elif recovered - before <= around_inject[1]:
            windows.append(Window(key, "fault", around_inject[0], max(around_inject[1], recovered + after)))
        else:
            windows.append(Window(key, "inject", *around_inject))
            windows.append(Window(key, "recover", recovered - before, recovered + after))
    return windows


def read_node_log(path: Path, windows: list[Window], *, cap: int = MAX_LINES_PER_WINDOW) -> NodeLog:
    log = NodeLog(node=path.stem, path=path)
    tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
    last_time: int | None = None
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as exc:
        log.problem = f"{path}: cannot read ({exc.strerror})"
        return log
    with handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.rstrip("\n")
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + " …"
            stamp = parse_timestamp(text)
            if stamp is not None:
                last_time = stamp
                log.timestamped = True
            line = LogLine(number, stamp if stamp is not None else last_time, text)
            tail.append(line)
            log.total_lines = number
            if line.wall_ns is None:
                continue
            for window in windows:
                if window.start_ns <= line.wall_ns < window.end_ns:
                    excerpt = log.excerpts.setdefault(window.key, Excerpt())
                    if len(excerpt.lines) < cap:
                        excerpt.lines.append(line)
                    else:
                        excerpt.omitted += 1
    log.tail = list(tail)
    return log


def read_logs(logs_dir: Path, windows: list[Window]) -> list[NodeLog]:
    """Every `*.log` in `logs_dir`, by node name."""
    return [read_node_log(path, windows) for path in sorted(logs_dir.glob("*.log")) if path.is_file()]
