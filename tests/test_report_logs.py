"""Node logs: timestamps of every common shape, windows around faults, streaming with caps."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from resilience.report.logs import (
    MAX_LINE_CHARS,
    TAIL_LINES,
    Window,
    fault_windows,
    parse_timestamp,
    read_logs,
    read_node_log,
)

NS = 1_000_000_000
NOON = calendar.timegm((2024, 5, 1, 12, 0, 0, 0, 0, 0)) * NS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2024-05-01T12:00:00.123456789Z courier started", NOON + 123_456_789),  # docker logs --timestamps
        ("2024-05-01T12:00:00Z x", NOON),
        ("2024-05-01 12:00:00,250 INFO standin.courier: ok", NOON + 250_000_000),  # Python logging
        ("2024-05-01 12:00:00.5 UTC [71] LOG:  database system is ready", NOON + 500_000_000),  # PostgreSQL
        ("2024-05-01T14:00:00+02:00 local time", NOON),
        ("2024-05-01T11:30:00-0030 odd zone", NOON),
        ('time="2024-05-01T12:00:00Z" level=info msg="started"', NOON),  # logrus
        ("time=2024-05-01T12:00:00.000Z level=INFO", NOON),  # slog
        ("2024-05-01T12:00:00Z", NOON),  # nothing after the time
    ],
)
def test_timestamps_are_read(line: str, expected: int) -> None:
    assert parse_timestamp(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "courier started",
        '  File "x.py", line 3',
        "2024-13-01T12:00:00Z bad month",
        "2024-05-01T25:00:00Z bad hour",
        "2024-05-01T12:00:00Zjunk",
        "12:00:00 time only",
        "",
    ],
)
def test_lines_without_a_timestamp(line: str) -> None:
    assert parse_timestamp(line) is None


def test_a_short_fault_gets_one_window_and_a_long_one_two() -> None:
    (short,) = fault_windows([("f1", 100 * NS, 108 * NS)])
    assert (short.fault_id, short.edge, short.start_ns, short.end_ns) == ("f1", "fault", 95 * NS, 118 * NS)
    inject, recover = fault_windows([("f2", 100 * NS, 200 * NS)])
    assert (inject.edge, inject.start_ns, inject.end_ns) == ("inject", 95 * NS, 110 * NS)
    assert (recover.edge, recover.start_ns, recover.end_ns) == ("recover", 195 * NS, 210 * NS)
    assert inject.key != recover.key
    (open_ended,) = fault_windows([("f3", 100 * NS, None)], before_s=1, after_s=2)
    assert (open_ended.edge, open_ended.start_ns, open_ended.end_ns) == ("inject", 99 * NS, 102 * NS)


def stamp(second: float) -> str:
    return f"2024-05-01T12:00:{second:06.3f}Z"


def test_lines_fall_in_their_windows_and_continuations_follow(tmp_path: Path) -> None:
    path = tmp_path / "mailroom-1.log"
    path.write_text(
        "booting without a timestamp\n"
        f"{stamp(1)} before\n"
        f"{stamp(5)} inside\n"
        "Traceback (most recent call last):\n"
        f"{stamp(9.999)} last inside\n"
        f"{stamp(10)} at the end: outside\n"
    )
    window = Window("f1", "inject", NOON + 5 * NS, NOON + 10 * NS)
    log = read_node_log(path, [window])
    assert log.node == "mailroom-1" and log.timestamped and log.total_lines == 6
    lines = log.excerpts[window.key].lines
    assert [line.number for line in lines] == [3, 4, 5]
    assert lines[1].wall_ns == lines[0].wall_ns and lines[1].trouble
    assert not lines[0].trouble


def test_windows_are_capped_and_the_rest_counted(tmp_path: Path) -> None:
    path = tmp_path / "courier-1.log"
    path.write_text("".join(f"{stamp(i / 100)} line {i}\n" for i in range(500)))
    window = Window("f1", "fault", NOON, NOON + 10 * NS)
    excerpt = read_node_log(path, [window], cap=50).excerpts[window.key]
    assert len(excerpt.lines) == 50 and excerpt.omitted == 450
    assert excerpt.lines[0].text.endswith("line 0")


def test_untimed_logs_keep_their_tail_and_long_lines_are_cut(tmp_path: Path) -> None:
    path = tmp_path / "lb-1.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)) + "x" * 5000 + "\n")
    log = read_node_log(path, [Window("f1", "fault", 0, 2**62)])
    assert not log.timestamped and log.excerpts == {}
    assert len(log.tail) == TAIL_LINES and log.tail[-1].number == 101
    assert len(log.tail[-1].text) == MAX_LINE_CHARS + 2


def test_read_logs_takes_every_log_file(tmp_path: Path) -> None:
    (tmp_path / "b.log").write_text("x\n")
    (tmp_path / "a.log").write_text("y\n")
    (tmp_path / "notes.txt").write_text("z\n")
    (tmp_path / "dir.log").mkdir()
    assert [log.node for log in read_logs(tmp_path, [])] == ["a", "b"]


def test_an_unreadable_log_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    log = read_node_log(tmp_path / "gone.log", [])
    assert log.problem is not None and "gone.log: cannot read" in log.problem
