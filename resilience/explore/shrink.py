"""Shrinking a failing run to the smallest one that still fails the same way.

A candidate is a fault schedule, seen as episodes (one fault from its inject to its recover), and the
workload that ran under it. Shrinking goes in three passes, each keeping a change only when the smaller
candidate still reproduces the failure:

1. the schedule's episodes, by delta debugging (Zeller's ddmin: drop halves, then quarters, ... then
   single episodes, and keep any subset that still fails);
2. each remaining episode's parameters: a shorter fault (recovered earlier), fewer targets (a partition's
   groups, an lb cut's servers), an earlier start;
3. the run: the whole schedule moved earlier (keeping a quiet start), a lower rate, a shorter duration
   (never shorter than the schedule needs).

A fault's effect depends on timing, so "still fails" is judged over repetitions: a candidate reproduces
when at least `k` of `n` runs fail with the target finding (checker and kind, e.g. `inbound.lost`).
Repetitions stop as soon as the answer is known. Every run is in the journal, in order, so that the
same seed and the same oracle give the same shrinking order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from resilience.faults.base import BaseFault, FaultSpecError
from resilience.faults.schedule import Schedule, Step
from resilience.workload.runner import WorkloadConfig

MIN_FAULT_SECONDS = 2.0  # a fault shorter than this no longer reaches RapidPro's timeouts: not worth trying
MIN_RATE = 0.5
DURATION_MARGIN = 5.0  # seconds the workload runs past the last recovery, so the recovery is exercised
QUIET_START = 5.0  # seconds of workload before the first fault, to see the steady state (the generator's default)


class ShrinkError(ValueError):
    """The shrinking settings are not usable (k > n, k < 1)."""


@dataclass(frozen=True)
class Episode:
    """One fault from its inject to its recover (None: recovered when the schedule ends)."""

    fault: BaseFault
    start: float
    end: float | None

    def length(self, schedule_end: float) -> float:
        return (self.end if self.end is not None else schedule_end) - self.start

    def describe(self) -> str:
        until = f"{self.end:g}" if self.end is not None else "end"
        return f"{self.fault.kind} {' '.join(self.fault.to_args())} @{self.start:g}-{until}"


@dataclass(frozen=True)
class Candidate:
    episodes: tuple[Episode, ...]
    workload: WorkloadConfig
    seed: int | None = None  # the schedule's seed, carried for the record

    def schedule(self) -> Schedule:
        steps: list[Step] = []
        for episode in self.episodes:
            steps.append(Step(episode.start, "inject", episode.fault))
            if episode.end is not None:
                steps.append(Step(episode.end, "recover", episode.fault))
        return Schedule(steps, seed=self.seed, source="<shrunk>")

    def key(self) -> str:
        """Equal for candidates that would run the same: the schedule's text and the workload."""
        return self.schedule().to_text() + repr(dataclasses.astuple(self.workload))

    def cost(self) -> tuple[int, float, float, float]:
        """Smaller is simpler: fewer faults, then less fault time, then a shorter and lighter workload."""
        end = self.workload.duration
        return (
            len(self.episodes),
            round(sum(e.length(end) for e in self.episodes), 3),
            self.workload.duration,
            self.workload.rate,
        )

    def describe(self) -> str:
        faults = "; ".join(e.describe() for e in self.episodes) or "no faults"
        return f"{faults} | rate {self.workload.rate:g}/s for {self.workload.duration:g} s"


def episodes_of(schedule: Schedule) -> tuple[Episode, ...]:
    recovered = {s.fault.id: s.at for s in schedule.steps if s.action == "recover"}
    return tuple(Episode(s.fault, s.at, recovered.get(s.fault.id)) for s in schedule.steps if s.action == "inject")


# An oracle runs a candidate once (repetition = 0, 1, ...) and returns the keys (`checker.kind`) of the
# findings the verdict rule refused; an empty set when the run passed.
Oracle = Callable[[Candidate, int], frozenset[str]]


@dataclass(frozen=True)
class Trial:
    candidate: Candidate
    change: str  # what this candidate changed, in words
    failures: tuple[frozenset[str], ...]  # each repetition's refused keys
    reproduced: bool


@dataclass
class Shrinker:
    """Shrinks toward the smallest candidate whose runs keep failing with `target` (a `checker.kind` key)."""

    oracle: Oracle
    target: str
    k: int = 2
    n: int = 3
    # Asked before each run: False stops shrinking (the budget is spent) and keeps the best so far.
    may_run: Callable[[], bool] = lambda: True
    journal: list[Trial] = field(default_factory=list)
    exhausted: bool = False
    # The simplest candidate reproduced so far: what an interrupted shrinking still hands over.
    best: Candidate | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ShrinkError(f"shrinking needs 1 ≤ k ≤ n (k of n repetitions must fail), got k={self.k} n={self.n}")

    @property
    def runs(self) -> int:
        return sum(len(t.failures) for t in self.journal)

    def reproduces(self, candidate: Candidate, change: str) -> bool:
        """Whether `candidate` fails with the target in k of n runs; a candidate already tried (ddmin's
        complement of two halves is the other half) is answered from the journal, not run again."""
        key = candidate.key()
        for trial in self.journal:
            if trial.candidate.key() == key:
                return trial.reproduced
        failures: list[frozenset[str]] = []
        hits = 0
        for repetition in range(self.n):
            if hits >= self.k or hits + (self.n - repetition) < self.k:
                break  # decided either way
            if not self.may_run():
                self.exhausted = True
                break
            keys = self.oracle(candidate, repetition)
            failures.append(keys)
            hits += self.target in keys
        reproduced = hits >= self.k
        self.journal.append(Trial(candidate, change, tuple(failures), reproduced))
        if reproduced and (self.best is None or candidate.cost() < self.best.cost()):
            self.best = candidate
        return reproduced

    # -- the three passes ---------------------------------------------------------------------------------
    def shrink(self, failing: Candidate) -> Candidate:
        """The smallest candidate found that still reproduces; `failing` itself is not re-run."""
        best = self.drop_episodes(failing)
        best = self.shrink_parameters(best)
        return self.shrink_run(best)

    def drop_episodes(self, candidate: Candidate) -> Candidate:
        def test(subset: Sequence[Episode]) -> bool:
            smaller = dataclasses.replace(candidate, episodes=tuple(subset))
            dropped = [e.describe() for e in candidate.episodes if e not in subset]
            return self.reproduces(smaller, "without " + "; ".join(dropped))

        kept = ddmin(list(candidate.episodes), test, stop=lambda: self.exhausted)
        return dataclasses.replace(candidate, episodes=tuple(kept))

    def shrink_parameters(self, candidate: Candidate) -> Candidate:
        best = candidate
        for index in range(len(candidate.episodes)):
            progress = True
            while progress and not self.exhausted:
                progress = False
                for change, episode in smaller_episodes(best.episodes[index], best.workload.duration):
                    episodes = list(best.episodes)
                    episodes[index] = episode
                    trial = dataclasses.replace(best, episodes=tuple(episodes))
                    if self.reproduces(trial, change):
                        best, progress = trial, True
                        break
                    if self.exhausted:
                        break
        return best

    def shrink_run(self, candidate: Candidate) -> Candidate:
        best = candidate
        progress = True
        while progress and not self.exhausted:
            progress = False
            for change, trial in smaller_runs(best):
                if self.reproduces(trial, change):
                    best, progress = trial, True
                    break
                if self.exhausted:
                    break
        return best


def ddmin(items: list[Any], test: Callable[[list[Any]], bool], stop: Callable[[], bool] = lambda: False) -> list[Any]:
    """Zeller's ddmin: a 1-minimal sublist of `items` for which `test` holds (`test(items)` is assumed).
    Subsets are tried before complements, in order, so the sequence of tests is deterministic."""
    granularity = 2
    while len(items) >= 2 and not stop():
        chunks = _split(items, granularity)
        reduced = False
        for chunk in chunks:
            if test(chunk):
                items, granularity, reduced = chunk, 2, True
                break
            if stop():
                return items
        if not reduced:
            for i in range(len(chunks)):
                complement = [x for j, c in enumerate(chunks) if j != i for x in c]
                if test(complement):
                    items, granularity, reduced = complement, max(granularity - 1, 2), True
                    break
                if stop():
                    return items
        if not reduced:
            if granularity >= len(items):
                break
            granularity = min(len(items), granularity * 2)
    if len(items) == 1 and not stop() and test([]):
        return []  # the failure needs no fault at all: a bug of the steady state
    return items


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return [c for c in chunks if c]


def smaller_episodes(episode: Episode, schedule_end: float) -> Iterator[tuple[str, Episode]]:
    """Variants of one episode, simplest change first: recovered sooner, fewer targets, started earlier."""
    length = episode.length(schedule_end)
    if length / 2 >= MIN_FAULT_SECONDS:
        shorter = round(length / 2, 1)
        yield (
            f"{episode.fault.id}: {shorter:g} s instead of {length:g} s",
            dataclasses.replace(episode, end=round(episode.start + shorter, 1)),
        )
    for change, fault in fewer_targets(episode.fault):
        yield f"{episode.fault.id}: {change}", dataclasses.replace(episode, fault=fault)
    if episode.start >= 2 * MIN_FAULT_SECONDS:
        earlier = round(episode.start / 2, 1)
        moved = dataclasses.replace(
            episode, start=earlier, end=None if episode.end is None else round(episode.end - episode.start + earlier, 1)
        )
        yield f"{episode.fault.id}: starts at {earlier:g} s instead of {episode.start:g} s", moved


def fewer_targets(fault: BaseFault) -> Iterator[tuple[str, BaseFault]]:
    """The fault with one target fewer in a list-valued parameter that names nodes (a partition's group,
    an lb cut's servers), each variant still valid for its kind."""
    targets = set(fault.targets())
    for f in dataclasses.fields(fault):
        value = getattr(fault, f.name)
        if not isinstance(value, list) or not value:
            continue
        flat = [x for group in value for x in group] if all(isinstance(g, list) for g in value) else value
        if not set(flat) <= targets:
            continue  # not a list of the fault's nodes (e.g. what inject learned)
        if all(isinstance(group, list) for group in value):  # groups of nodes
            for g, group in enumerate(value):
                for node in group if len(group) > 1 else ():
                    groups = [list(x) for x in value]
                    groups[g] = [n for n in group if n != node]
                    yield from _valid(fault, f.name, groups, f"{f.name} without {node}")
        elif all(isinstance(node, str) for node in value) and len(value) > 1:
            for node in value:
                yield from _valid(fault, f.name, [n for n in value if n != node], f"{f.name} without {node}")


def _valid(fault: BaseFault, name: str, value: Any, change: str) -> Iterator[tuple[str, BaseFault]]:
    try:
        yield change, dataclasses.replace(fault, **{name: value})  # type: ignore[arg-type]
    except FaultSpecError:
        return


def smaller_runs(candidate: Candidate) -> Iterator[tuple[str, Candidate]]:
    """The whole schedule moved earlier (so the run can be shorter), then a lighter, shorter workload."""
    first = min((e.start for e in candidate.episodes), default=QUIET_START)
    if first > QUIET_START:
        shift = round(first - QUIET_START, 1)
        moved = tuple(
            dataclasses.replace(
                e, start=round(e.start - shift, 1), end=None if e.end is None else round(e.end - shift, 1)
            )
            for e in candidate.episodes
        )
        yield f"every fault {shift:g} s earlier", dataclasses.replace(candidate, episodes=moved)
    for change, workload in smaller_workloads(candidate):
        yield change, dataclasses.replace(candidate, workload=workload)


def smaller_workloads(candidate: Candidate) -> Iterator[tuple[str, WorkloadConfig]]:
    workload = candidate.workload
    needed = max((e.end if e.end is not None else e.start for e in candidate.episodes), default=0.0)
    floor = needed + DURATION_MARGIN
    if workload.rate / 2 >= MIN_RATE:
        rate = workload.rate / 2
        yield f"rate {rate:g}/s instead of {workload.rate:g}/s", dataclasses.replace(workload, rate=rate)
    if workload.duration > floor:
        duration = round(max(floor, workload.duration / 2), 1)
        yield (
            f"workload {duration:g} s instead of {workload.duration:g} s",
            dataclasses.replace(workload, duration=duration),
        )
