"""Logs: trouble patterns per node, allowances, custom patterns, bad options."""

from __future__ import annotations

import pytest

from resilience.checks import logs
from resilience.checks.options import OptionsError
from resilience.checks.result import CheckResult, Validity
from resilience.checks.synthetic import WorldBuilder
from resilience.snapshot import Snapshot

QUIET = {
    "courier-1": ['level=info msg="message received"', 'level=info msg="flushed spool"'],
    "postgres-1": ["LOG:  database system is ready to accept connections"],
}


def check_lines(lines: dict[str, list[str]] | None, options: dict[str, object] | None = None) -> CheckResult:
    world = WorldBuilder()
    return logs.check(world.recorded(), Snapshot(logs=lines), options)


def test_quiet_logs_are_valid() -> None:
    result = check_lines(QUIET)
    assert result.valid is Validity.TRUE
    assert result.counts["nodes"] == 2 and result.counts["lines"] == 3 and result.counts["matches"] == 0


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("panic: runtime error: invalid memory address or nil pointer dereference", "panic"),
        ("Traceback (most recent call last):", "traceback"),
        ('ERROR:  duplicate key value violates unique constraint "msgs_msg_pkey"', "duplicate_key"),
        ("2026-01-01 FATAL:  out of memory", "fatal"),
    ],
)
def test_each_default_pattern_is_caught(line: str, pattern: str) -> None:
    result = check_lines({**QUIET, "mailroom-2": ["started", line]})
    assert result.valid is Validity.FALSE
    assert result.counts[pattern] == 1 and result.counts["matches"] == 1
    assert result.details["per_node"]["mailroom-2"] == {pattern: 1}
    assert result.examples == [{"kind": pattern, "node": "mailroom-2", "line_number": 2, "line": line}]


def test_a_line_matching_two_patterns_counts_for_both() -> None:
    result = check_lines({"web-1": ["FATAL panic in worker"]})
    assert result.counts["fatal"] == 1 and result.counts["panic"] == 1 and result.counts["matches"] == 2


@pytest.mark.parametrize(
    "line",
    [
        "FATAL:  the database system is starting up",
        # A standby's walreceiver reconnecting after wal_receiver_timeout (CI saw it under load).
        "2026-12-04 06:27:47.388 UTC [61] FATAL:  terminating walreceiver due to timeout",
    ],
)
def test_expected_postgres_fatals_are_allowed_by_default_only(line: str) -> None:
    restart = {"postgres-2": [line]}
    allowed = check_lines(restart)
    assert allowed.valid is Validity.TRUE and allowed.counts["allowed"] == 1
    assert check_lines(restart, {"default_allowed": False}).valid is Validity.FALSE


def test_configured_allowances_and_patterns() -> None:
    noisy = {"courier-1": ["panic recovered in handler: test-induced", "ERROR: disk full"]}
    assert check_lines(noisy, {"allowed": [r"test-induced"]}).valid is Validity.TRUE
    custom = check_lines(noisy, {"patterns": {"disk": r"disk full"}})
    assert custom.valid is Validity.FALSE
    assert custom.counts["disk"] == 1 and "panic" not in custom.counts


def test_no_logs_is_unknown() -> None:
    assert check_lines(None).valid is Validity.UNKNOWN
    assert check_lines({}).valid is Validity.UNKNOWN


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"patterns": {"bad": "("}}, r"logs.patterns\['bad'\]: '\(' is not a regular expression"),
        ({"allowed": ["[z-a]"]}, r"logs.allowed: .* is not a regular expression"),
        ({"patterns": {"lines": "x"}}, r"names \['lines'\] are taken"),
        ({"allowed": "panic"}, r"logs.allowed: 'panic' is not tuple"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        check_lines(QUIET, options)
