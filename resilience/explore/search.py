"""Exploration: seeded random schedules, one after another within a time budget, until one fails; then shrink it.

Each schedule comes from the existing generator (bounded blast radius) with a seed drawn from the
exploration's own seed, so the same seed gives the same sequence of schedules. A run "fails" when the
experiment rule refuses a finding (a violation, or an unknown no allowance declares); the finding to
shrink toward is the first refused key in a fixed order (correctness before timing), so shrinking aims at
the same failure every time. No run is started that the budget cannot finish, judged from the runs so far.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from resilience.checks import Validity
from resilience.explore.shrink import Candidate, Shrinker, episodes_of
from resilience.faults.schedule import GeneratorSettings, generate_schedule
from resilience.topology import Topology
from resilience.workload.runner import WorkloadConfig

# Which failure to shrink toward when a run has several: a lost or duplicated message before a stall,
# before a slow reply. Keys of checkers not listed come last, alphabetically.
CHECKER_PRECEDENCE = ("inbound", "outbound", "continuity", "availability", "latency", "logs")
FIRST_RUN_OVERHEAD_S = 90.0  # steady state, quiescence, snapshot and report around the workload, before any run


class ExploreError(ValueError):
    """Exploration settings that cannot work (a budget shorter than one run, bad repetitions)."""


@dataclass(frozen=True)
class TrialOutcome:
    validity: Validity  # the experiment rule's decision
    refused: frozenset[str]  # `checker.kind` of each finding the rule did not excuse
    run_dir: Path | None = None
    seconds: float = 0.0


class TrialRunner(Protocol):
    def __call__(self, candidate: Candidate, label: str) -> TrialOutcome:
        """Run the candidate once on the cluster (healing and quiescing after it) and judge it."""
        ...


@dataclass(frozen=True)
class ExploreSettings:
    budget_s: float
    seed: int
    generator: GeneratorSettings
    workload: WorkloadConfig
    k: int = 2  # a shrunk candidate still fails when k of n repetitions fail the same way
    n: int = 3
    max_schedules: int = 1000  # a bound on the search, beside the budget
    # The checkers ("inbound") or findings ("inbound.lost") whose refusal stops the search and is shrunk
    # (empty: every one). A run that fails only on others (e.g. latency on a loaded CI machine, or a weak spot
    # already known and filed) is recorded and the search goes on.
    chase: tuple[str, ...] = ()

    def chased(self, refused: frozenset[str]) -> frozenset[str]:
        if not self.chase:
            return refused
        return frozenset(key for key in refused if key in self.chase or key.split(".", 1)[0] in self.chase)

    def check(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ExploreError(f"--repeat: expected 1 ≤ k ≤ n, got {self.k} of {self.n}")
        if self.budget_s <= 0:
            raise ExploreError(f"--budget: expected a positive duration, got {self.budget_s:g} s")


@dataclass
class Budget:
    """The wall-clock budget, and what one more run is expected to cost (the slowest so far, or a first guess)."""

    total_s: float
    first_guess_s: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)
    slowest_s: float = 0.0

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def affords_another(self) -> bool:
        return self.elapsed_s + (self.slowest_s or self.first_guess_s) <= self.total_s

    def spent(self, seconds: float) -> None:
        self.slowest_s = max(self.slowest_s, seconds)


@dataclass(frozen=True)
class Played:
    """One schedule of the search, or one candidate of the shrinking, as the journal keeps it."""

    phase: str  # "search" or "shrink"
    label: str
    candidate: Candidate
    outcome: TrialOutcome


@dataclass
class ExploreResult:
    played: list[Played]
    failing: Candidate | None = None  # the first failing schedule, as found
    target: str | None = None  # the finding shrunk toward
    minimal: Candidate | None = None
    shrink_runs: int = 0
    budget_spent: bool = False  # the budget ended the search or the shrinking early
    seconds: float = 0.0

    @property
    def search_runs(self) -> int:
        return sum(p.phase == "search" for p in self.played)


def schedule_seeds(seed: int) -> Callable[[], int]:
    """The exploration's sequence of schedule seeds: the same seed, the same sequence."""
    rng = random.Random(seed)
    return lambda: rng.randrange(1, 2**31)


def shrink_target(refused: Sequence[str] | frozenset[str]) -> str:
    def rank(key: str) -> tuple[int, str]:
        checker = key.split(".", 1)[0]
        order = CHECKER_PRECEDENCE.index(checker) if checker in CHECKER_PRECEDENCE else len(CHECKER_PRECEDENCE)
        return order, key

    return min(refused, key=rank)


def explore(
    settings: ExploreSettings,
    topology: Topology,
    runner: TrialRunner,
    say: Callable[[str], None] = lambda _m: None,
    clock: Callable[[], float] = time.monotonic,
    into: ExploreResult | None = None,
) -> ExploreResult:
    """Search, then shrink. `into` is filled as it goes, so an interrupted exploration still has its runs."""
    settings.check()
    budget = Budget(settings.budget_s, settings.workload.duration + FIRST_RUN_OVERHEAD_S, clock)
    if not budget.affords_another():
        raise ExploreError(
            f"--budget {settings.budget_s:g} s cannot hold one run (about {budget.first_guess_s:g} s: the workload's "
            f"{settings.workload.duration:g} s and {FIRST_RUN_OVERHEAD_S:g} s around it)"
        )
    result = into if into is not None else ExploreResult(played=[])
    next_seed = schedule_seeds(settings.seed)

    def play(phase: str, candidate: Candidate, label: str) -> TrialOutcome:
        started = clock()
        outcome = runner(candidate, label)
        budget.spent(clock() - started)
        result.played.append(Played(phase, label, candidate, outcome))
        return outcome

    for number in range(1, settings.max_schedules + 1):
        if not budget.affords_another():
            result.budget_spent = True
            break
        schedule_seed = next_seed()
        schedule = generate_schedule(topology, schedule_seed, settings.generator)
        workload = dataclasses.replace(settings.workload, seed=schedule_seed)
        candidate = Candidate(episodes_of(schedule), workload, seed=schedule_seed)
        outcome = play("search", candidate, f"schedule {number} (seed {schedule_seed})")
        refused = ", ".join(sorted(outcome.refused)) or "-"
        say(
            f"schedule {number} seed {schedule_seed}: {outcome.validity.value} (refused: {refused}) "
            f"[{budget.elapsed_s:.0f}/{settings.budget_s:.0f} s]"
        )
        chased = settings.chased(outcome.refused)
        if outcome.validity is Validity.FALSE and chased:
            result.failing = candidate
            result.target = shrink_target(chased)
            break
    if result.failing is not None and result.target is not None:
        say(f"shrinking toward {result.target} ({settings.k} of {settings.n} repetitions must fail)")
        counter = iter(range(1, 1_000_000))

        def oracle(candidate: Candidate, repetition: int) -> frozenset[str]:
            label = f"shrink {next(counter)} (repetition {repetition + 1}): {candidate.describe()}"
            outcome = play("shrink", candidate, label)
            say(f"{label}: {', '.join(sorted(outcome.refused)) or 'passed'}")
            return outcome.refused

        shrinker = Shrinker(oracle, result.target, settings.k, settings.n, may_run=budget.affords_another)
        try:
            result.minimal = shrinker.shrink(result.failing)
        finally:
            result.minimal = result.minimal or shrinker.best
            result.shrink_runs = shrinker.runs
            result.seconds = budget.elapsed_s
        result.budget_spent = result.budget_spent or shrinker.exhausted
    result.seconds = budget.elapsed_s
    return result
