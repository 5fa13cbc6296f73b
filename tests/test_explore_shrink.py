"""Shrinking a failing schedule (resilience/explore/shrink.py) against oracles whose failure rule is known,
so the minimal candidate is known too: ddmin finds exactly the faults that matter, parameters and workload
shrink only while the failure stays, k-of-n repetitions decide, the budget stops it, and the order is fixed."""

from __future__ import annotations

import pytest

from resilience.explore.shrink import (
    MIN_FAULT_SECONDS,
    MIN_RATE,
    Candidate,
    Episode,
    Shrinker,
    ShrinkError,
    ddmin,
    episodes_of,
    fewer_targets,
)
from resilience.faults.base import fault_from_description
from resilience.faults.schedule import parse_schedule
from resilience.workload.runner import WorkloadConfig

SCHEDULE = """
at 5 pause web-1 as pause-web; recover pause-web at 12
at 8 kill courier-1 as kill-courier; recover kill-courier at 30
at 14 restart mailroom-2 as restart-mailroom; recover restart-mailroom at 16
at 20 pg-failover as failover; recover failover at 40
at 42 lb-cut courier courier-1,courier-2 as cut; recover cut at 50
at 52 partition celery-1 | postgres-1,postgres-2 as part; recover part at 60
"""


def failing_candidate() -> Candidate:
    schedule = parse_schedule(SCHEDULE)
    return Candidate(episodes_of(schedule), WorkloadConfig(rate=4, duration=70, seed=3), seed=7)


def overlapping(candidate: Candidate, first: str, second: str) -> bool:
    """The planted rule: the failure shows only while `first` and `second` are both active."""
    by_id = {e.fault.id: e for e in candidate.episodes}
    if first not in by_id or second not in by_id:
        return False
    a, b = by_id[first], by_id[second]
    end = candidate.workload.duration
    return a.start < b.start + b.length(end) and b.start < a.start + a.length(end)


def kill_during_failover(candidate: Candidate, repetition: int) -> frozenset[str]:
    if overlapping(candidate, "kill-courier", "failover"):
        # Timing-dependent, as real faults are: the second repetition misses it.
        return frozenset() if repetition == 1 else frozenset({"inbound.lost", "continuity.stuck"})
    return frozenset({"latency.p99"}) if candidate.episodes else frozenset()


def test_ddmin_finds_exactly_the_pair_that_fails() -> None:
    tests: list[list[int]] = []

    def fails(subset: list[int]) -> bool:
        tests.append(subset)
        return 3 in subset and 6 in subset

    assert ddmin(list(range(8)), fails) == [3, 6]
    again: list[list[int]] = []
    ddmin(list(range(8)), lambda s: again.append(s) or (3 in s and 6 in s))
    assert again == tests  # the same order of tests every time


def test_ddmin_drops_everything_when_the_failure_needs_no_fault() -> None:
    assert ddmin([1, 2, 3], lambda _s: True) == []


def test_shrinks_to_the_two_faults_that_matter_then_their_parameters_and_the_workload() -> None:
    shrinker = Shrinker(kill_during_failover, target="inbound.lost", k=2, n=3)
    minimal = shrinker.shrink(failing_candidate())

    assert [e.fault.id for e in minimal.episodes] == ["kill-courier", "failover"]
    assert overlapping(minimal, "kill-courier", "failover")
    # Each fault was shortened while the overlap lasted; none is shorter than the floor.
    original = {e.fault.id: e for e in failing_candidate().episodes}
    for episode in minimal.episodes:
        assert episode.length(minimal.workload.duration) >= MIN_FAULT_SECONDS
        assert episode.length(70) <= original[episode.fault.id].length(70)
    assert minimal.cost() < failing_candidate().cost()
    assert minimal.workload.rate / 2 < MIN_RATE  # halved until the floor
    last_recovery = max(e.end or e.start for e in minimal.episodes)
    assert last_recovery < minimal.workload.duration < 70
    # Every kept change reproduced, every dropped one did not, and each trial stopped once decided.
    assert all(len(t.failures) in (2, 3) for t in shrinker.journal)
    assert any(not t.reproduced for t in shrinker.journal)


def test_the_same_oracle_gives_the_same_shrinking_order() -> None:
    first = Shrinker(kill_during_failover, target="inbound.lost")
    second = Shrinker(kill_during_failover, target="inbound.lost")
    first.shrink(failing_candidate())
    second.shrink(failing_candidate())
    assert [(t.change, t.reproduced) for t in first.journal] == [(t.change, t.reproduced) for t in second.journal]


def test_a_failure_of_another_kind_does_not_count_as_reproduced() -> None:
    shrinker = Shrinker(kill_during_failover, target="inbound.lost")
    without_failover = tuple(e for e in failing_candidate().episodes if e.fault.id != "failover")
    candidate = Candidate(without_failover, WorkloadConfig(rate=4, duration=70))
    assert not shrinker.reproduces(candidate, "no failover")  # it still fails, on latency.p99 only
    assert shrinker.journal[-1].failures[0] == frozenset({"latency.p99"})


def test_k_of_n_stops_repeating_once_decided() -> None:
    calls: list[int] = []

    def once_in_three(_candidate: Candidate, repetition: int) -> frozenset[str]:
        calls.append(repetition)
        return frozenset({"inbound.lost"}) if repetition == 2 else frozenset()

    shrinker = Shrinker(once_in_three, target="inbound.lost", k=2, n=3)
    assert not shrinker.reproduces(failing_candidate(), "as is")
    assert calls == [0, 1]  # after two misses, two hits out of three are out of reach
    calls.clear()
    always = Shrinker(lambda _c, r: calls.append(r) or frozenset({"inbound.lost"}), target="inbound.lost", k=2, n=3)
    assert always.reproduces(failing_candidate(), "as is")
    assert calls == [0, 1]  # two hits decide it


def test_the_budget_stops_shrinking_and_keeps_the_best_so_far() -> None:
    allowed = iter(range(6))
    shrinker = Shrinker(kill_during_failover, target="inbound.lost", may_run=lambda: next(allowed, None) is not None)
    result = shrinker.shrink(failing_candidate())
    assert shrinker.exhausted and shrinker.runs == 6
    assert overlapping(result, "kill-courier", "failover")  # whatever it kept still reproduces
    assert result.cost() <= failing_candidate().cost()


@pytest.mark.parametrize(("k", "n"), [(0, 3), (4, 3)])
def test_impossible_repetition_settings_are_refused(k: int, n: int) -> None:
    with pytest.raises(ShrinkError, match="1 ≤ k ≤ n"):
        Shrinker(kill_during_failover, target="inbound.lost", k=k, n=n)


def test_fewer_targets_keeps_each_variant_valid() -> None:
    partition = fault_from_description({"kind": "partition", "id": "p", "groups": [["a"], ["b", "c"]]})
    variants = {change: f.groups for change, f in fewer_targets(partition)}  # type: ignore[attr-defined]
    assert variants == {"groups without b": [["a"], ["c"]], "groups without c": [["a"], ["b"]]}
    cut = fault_from_description({"kind": "lb-cut", "id": "c", "backend": "courier", "servers": ["c-1", "c-2"]})
    assert [f.servers for _c, f in fewer_targets(cut)] == [["c-2"], ["c-1"]]  # type: ignore[attr-defined]
    single = fault_from_description({"kind": "kill", "id": "k", "node": "courier-1"})
    assert list(fewer_targets(single)) == []


def test_an_episode_never_recovered_lasts_until_the_schedule_ends() -> None:
    fault = fault_from_description({"kind": "kill", "id": "k", "node": "courier-1"})
    assert Episode(fault, 10, None).length(70) == 60
    schedule = Candidate((Episode(fault, 10, None),), WorkloadConfig()).schedule()
    assert [(s.at, s.action) for s in schedule.steps] == [(10, "inject")]


def test_a_candidate_already_tried_is_not_run_again() -> None:
    runs: list[str] = []

    def oracle(candidate: Candidate, repetition: int) -> frozenset[str]:
        runs.append(candidate.key())
        return kill_during_failover(candidate, repetition)

    shrinker = Shrinker(oracle, target="inbound.lost")
    shrinker.shrink(failing_candidate())
    tried = [t.candidate.key() for t in shrinker.journal]
    assert len(tried) == len(set(tried))  # each candidate judged once
    assert len(runs) == shrinker.runs
