"""The exploration loop (resilience/explore/search.py) with a runner whose failure rule is planted and a clock
that runs time forward per run: it stops at the first failure and shrinks it, respects the budget, and the
same seed gives the same schedules and the same shrinking order."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from resilience.checks import Validity
from resilience.cluster import DEFAULT_TOPOLOGY
from resilience.explore.record import journal, write_record
from resilience.explore.search import ExploreError, ExploreSettings, TrialOutcome, explore, shrink_target
from resilience.explore.shrink import QUIET_START, Candidate
from resilience.faults.schedule import GeneratorSettings
from resilience.topology import load_topology
from resilience.workload.runner import WorkloadConfig

TOPOLOGY = load_topology(DEFAULT_TOPOLOGY)
GENERATOR = GeneratorSettings(duration=50, kinds=("kill", "pause", "pg-failover"), start_after=5, max_concurrent=2)
RUN_SECONDS = 100.0


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


class PlantedRunner:
    """Fails with inbound.lost when a courier is killed while Postgres fails over (the planted combination)."""

    def __init__(self, clock: FakeClock, planted: bool = True) -> None:
        self.clock = clock
        self.planted = planted
        self.labels: list[str] = []

    def __call__(self, candidate: Candidate, label: str) -> TrialOutcome:
        self.clock.now += RUN_SECONDS
        self.labels.append(label)
        if self.planted and self.kill_during_failover(candidate):
            return TrialOutcome(Validity.FALSE, frozenset({"inbound.lost", "latency.p99"}))
        return TrialOutcome(Validity.TRUE, frozenset())

    @staticmethod
    def kill_during_failover(candidate: Candidate) -> bool:
        end = candidate.workload.duration
        kills = [e for e in candidate.episodes if e.fault.kind == "kill" and "courier" in e.fault.targets()[0]]
        failovers = [e for e in candidate.episodes if e.fault.kind == "pg-failover"]
        return any(
            k.start < f.start + f.length(end) and f.start < k.start + k.length(end) for k in kills for f in failovers
        )


def settings(budget_s: float = 20_000, seed: int = 4) -> ExploreSettings:
    return ExploreSettings(budget_s, seed, GENERATOR, WorkloadConfig(rate=4, duration=55))


def test_finds_the_planted_combination_and_shrinks_it_to_the_two_faults_that_matter() -> None:
    clock = FakeClock()
    result = explore(settings(), TOPOLOGY, PlantedRunner(clock), clock=clock)

    assert result.failing is not None and result.target == "inbound.lost"
    assert result.search_runs >= 1 and result.played[result.search_runs - 1].outcome.validity is Validity.FALSE
    assert result.minimal is not None
    assert sorted(e.fault.kind for e in result.minimal.episodes) == ["kill", "pg-failover"]
    assert PlantedRunner.kill_during_failover(result.minimal)
    assert result.minimal.cost() < result.failing.cost()
    # Moved to the start (after the quiet seconds), so the minimal run is short.
    assert min(e.start for e in result.minimal.episodes) == QUIET_START
    assert result.minimal.workload.duration < result.failing.workload.duration / 2
    assert result.shrink_runs == sum(p.phase == "shrink" for p in result.played) > 0
    assert not result.budget_spent


def test_without_the_planted_bug_every_schedule_passes_until_the_budget_ends() -> None:
    clock = FakeClock()
    budget = 1000.0
    result = explore(settings(budget_s=budget), TOPOLOGY, PlantedRunner(clock, planted=False), clock=clock)
    assert result.failing is None and result.minimal is None and result.budget_spent
    assert all(p.outcome.validity is Validity.TRUE for p in result.played)
    # No run was started that the budget could not finish.
    assert result.search_runs == int(budget // RUN_SECONDS) and clock.now <= budget


def test_a_record_of_nothing_found_writes_and_renders(tmp_path: Path) -> None:
    """The benchmark's 30-minute exploration found nothing and then failed to render its page (a journal
    without `interrupted`): every documented key is always in the journal."""
    clock = FakeClock()
    chosen = settings(budget_s=350.0)
    result = explore(chosen, TOPOLOGY, PlantedRunner(clock, planted=False), clock=clock)
    data = journal(result, chosen, "nightly_mixed", tmp_path)
    assert data["interrupted"] == "" and data["found_module"] == "" and data["minimal"] is None
    page = write_record(tmp_path, data).read_text()
    assert "the budget (350.0 s) ended it" in page
    assert json.loads((tmp_path / "journal.json").read_text())["search_runs"] == 3


def test_the_same_seed_plays_the_same_schedules_and_shrinks_in_the_same_order() -> None:
    def labels(seed: int) -> list[str]:
        clock = FakeClock()
        runner = PlantedRunner(clock)
        explore(settings(seed=seed), TOPOLOGY, runner, clock=clock)
        return runner.labels

    assert labels(4) == labels(4)
    assert labels(4)[0] != labels(5)[0]  # another seed, another first schedule


def test_a_budget_shorter_than_one_run_is_refused_before_anything_runs() -> None:
    clock = FakeClock()
    runner = PlantedRunner(clock)
    with pytest.raises(ExploreError, match="cannot hold one run"):
        explore(settings(budget_s=60), TOPOLOGY, runner, clock=clock)
    assert runner.labels == []


def test_the_target_is_correctness_before_timing() -> None:
    assert shrink_target({"latency.p99", "inbound.lost", "continuity.stuck"}) == "inbound.lost"
    assert shrink_target({"latency.p99", "zzz.other"}) == "latency.p99"


def test_a_failure_of_a_checker_not_chased_is_recorded_and_the_search_goes_on() -> None:
    clock = FakeClock()

    class SlowThenLost(PlantedRunner):
        def __call__(self, candidate: Candidate, label: str) -> TrialOutcome:
            outcome = super().__call__(candidate, label)
            if len(self.labels) == 1:  # the first schedule fails on latency alone
                return TrialOutcome(Validity.FALSE, frozenset({"latency.slow_during"}))
            return outcome

    chasing = dataclasses.replace(settings(), chase=("inbound", "outbound", "continuity", "availability"))
    result = explore(chasing, TOPOLOGY, SlowThenLost(clock), clock=clock)
    assert result.played[0].outcome.refused == {"latency.slow_during"}
    assert result.target == "inbound.lost" and result.search_runs > 1
    other_clock = FakeClock()
    everything = explore(settings(), TOPOLOGY, SlowThenLost(other_clock), clock=other_clock)
    assert everything.target == "latency.slow_during" and everything.search_runs == 1


def test_a_chased_finding_names_one_kind_of_a_checker() -> None:
    chasing = dataclasses.replace(settings(), chase=("inbound.lost", "latency"))
    assert chasing.chased(frozenset({"inbound.unhandled", "inbound.lost", "latency.slow_during", "logs.panic"})) == {
        "inbound.lost",
        "latency.slow_during",
    }
    assert chasing.chased(frozenset({"inbound.unhandled"})) == set(), "another inbound kind is not chased"
