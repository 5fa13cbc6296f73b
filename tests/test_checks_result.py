"""Verdict merging, results, option parsing, and running every checker together."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from resilience.checks import CHECKERS, Validity, merge, run_all
from resilience.checks.analysis import Analysis
from resilience.checks.options import OptionsError, parse_options
from resilience.checks.result import CheckResult, Examples
from resilience.checks.synthetic import WorldBuilder, clean_world
from resilience.history import INFO

T, F, U = Validity.TRUE, Validity.FALSE, Validity.UNKNOWN


@pytest.mark.parametrize(
    ("validities", "merged"),
    [([], T), ([T, T], T), ([T, U], U), ([U, T, F], F), ([F, U], F), ([U], U)],
)
def test_false_beats_unknown_beats_true(validities: list[Validity], merged: Validity) -> None:
    assert merge(validities) is merged
    assert merge(CheckResult("x", v) for v in validities) is merged


def test_results_keep_at_most_ten_examples() -> None:
    examples = Examples()
    for n in range(25):
        examples.add("lost", n=n)
    assert [e["n"] for e in examples.items] == list(range(10))
    with pytest.raises(ValueError, match="at most 10"):
        CheckResult("x", T, examples=[{}] * 11)
    assert CheckResult("x", F, {"lost": 1}).to_dict() == {
        "name": "x", "valid": "false", "counts": {"lost": 1}, "examples": [], "details": {}, "findings": [],
    }  # fmt: skip


@dataclass(frozen=True)
class Sample:
    count: int = 0
    ratio: float | None = None
    names: tuple[str, ...] = ()
    table: dict[str, str] | None = None
    strict: bool = False


def test_options_from_mappings() -> None:
    assert parse_options(Sample, None, "s") == Sample()
    given = Sample(count=3)
    assert parse_options(Sample, given, "s") is given
    parsed = parse_options(Sample, {"count": 2, "ratio": 1, "names": ["a", "b"], "table": {"k": "v"}}, "s")
    assert parsed == Sample(2, 1.0, ("a", "b"), {"k": "v"}, False)
    assert isinstance(parsed.ratio, float)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cuont": 1}, r"s: unknown option\(s\) \['cuont'\]; known: \['count', 'names'"),
        ({"count": True}, r"s.count: True is not int"),
        ({"ratio": "high"}, r"s.ratio: 'high' is not float \| None"),
        ({"names": ["a", 1]}, r"s.names\[1\]: 1 is not str"),
        ({"strict": 1}, r"s.strict: 1 is not bool"),
        ([1], r"s: options must be a mapping"),
    ],
)
def test_bad_options_are_named(raw: object, message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse_options(Sample, raw, "s")  # type: ignore[arg-type]


def test_run_all_runs_every_checker_with_its_own_options() -> None:
    history, snapshot = clean_world(2)
    results = run_all(history, snapshot, {"outbound": {"allowed_duplicates": 3}})
    assert [r.name for r in results] == list(CHECKERS)
    assert merge(results) is U  # the logs checker has no logs to read
    assert merge(r for r in results if r.name != "logs") is T
    only = run_all(history, snapshot, only=["inbound"])
    assert [r.name for r in only] == ["inbound"]
    with pytest.raises(OptionsError, match=r"unknown checker\(s\) \['inbund'\]"):
        run_all(history, snapshot, {"inbund": {}})
    with pytest.raises(OptionsError, match=r"inbound: unknown option"):
        run_all(history, snapshot, {"inbound": {"nope": 1}})


def test_an_analysis_belongs_to_its_inputs() -> None:
    history, snapshot = clean_world(1)
    other_history, _ = clean_world(1)
    analysis = Analysis(history, snapshot)
    for name, check in CHECKERS.items():
        if name != "logs":
            assert check(history, snapshot, analysis=analysis).valid is T
            with pytest.raises(ValueError, match="made for another history"):
                check(other_history, snapshot, analysis=analysis)


def test_results_with_findings_are_plain_json() -> None:
    world = WorldBuilder()
    world.conversation("tel:+250780000001", "a", outcomes={1: INFO})
    world.inject("postgres-failover", "f1", ["postgres-1"])
    world.recover("f1")
    world.conversation("tel:+250780000002", "b")
    snapshot = world.snapshot(logs={"web-1": ["Traceback (most recent call last):"]})
    snapshot.msgs = [m for m in snapshot.msgs if m.text not in ("favorites [a.0]", "red [b.1]")]  # before and after
    snapshot.aggregator.pop()
    results = run_all(world.recorded(), snapshot)
    # The losses are well before and after the failover's window: inbound's, not the failover's RPO.
    assert {r.name for r in results if r.valid is F} == {"inbound", "outbound", "continuity", "logs"}
    for result in results:
        assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
