"""Schedules: when to inject which fault and when to recover it; written by hand or generated from a seed.

The text form, one statement per line or separated by ';' ('#' starts a comment):

    at 10 kill courier-1; recover at 25
    at 30 partition courier-1 | postgres one_way=true as cut   # a service name stands for its nodes
    at 32 toxic redis latency latency=500 jitter=50 for 8      # `for D`: recover D seconds later
    recover cut at 45
    at 50 pg-failover method=partition

`at T KIND ARGS... [as NAME] [for D]` injects (ARGS: the kind's positional arguments, then NAME=VALUE
options); `recover [NAME] at T` or `at T recover [NAME]` recovers NAME, or the latest fault not yet
recovered. Times are seconds from the start (`10`, `2.5s`, `500ms`, `1m`). A fault never recovered
explicitly is recovered when the schedule ends.

`generate_schedule(topology, seed, ...)` draws a schedule for a mixed run: random faults of the allowed
kinds, never more than `max_down_per_service` (1) nodes of a service out at once, and never a whole
service unless it is in `allow_outage`. The same seed gives the same schedule; it is kept in the result.

`run_schedule(nemesis, schedule, stop_event)` plays it with monotonic timing and recovers everything
still active at the end, or as soon as `stop_event` is set.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from resilience.faults.base import FAULT_KINDS, BaseFault, FaultSpecError, fault_from_description

if TYPE_CHECKING:
    from resilience.faults.nemesis import Nemesis
    from resilience.topology import Topology

Action = Literal["inject", "recover"]


class ScheduleError(ValueError):
    """A schedule is malformed or does not fit the topology; lists every problem with its line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class Step:
    at: float  # seconds from the start of the schedule
    action: Action
    fault: BaseFault
    line: int = 0  # where the text form wrote it (0: generated)


@dataclasses.dataclass
class Schedule:
    steps: list[Step]
    seed: int | None = None  # set for a generated schedule: the same seed gives the same schedule
    source: str = "<schedule>"
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)  # the generator's settings

    def __post_init__(self) -> None:
        # Stable: at equal times the text's order (and an inject before its own recover) is kept.
        self.steps = sorted(self.steps, key=lambda s: s.at)

    def faults(self) -> list[BaseFault]:
        return [s.fault for s in self.steps if s.action == "inject"]

    @property
    def duration(self) -> float:
        return self.steps[-1].at if self.steps else 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "source": self.source,
            "parameters": self.parameters,
            "steps": [{"at": s.at, "action": s.action, "fault": s.fault.describe()} for s in self.steps],
        }

    def to_text(self) -> str:
        """The text form (parse_schedule reads it back to an equal schedule)."""
        lines = [f"# seed {self.seed}"] if self.seed is not None else []
        for step in self.steps:
            if step.action == "inject":
                args = " ".join([step.fault.kind, *step.fault.to_args()])
                lines.append(f"at {_seconds(step.at)} {args} as {step.fault.id}")
            else:
                lines.append(f"recover {step.fault.id} at {_seconds(step.at)}")
        return "\n".join(lines) + "\n"

    def check(self, topology: Topology) -> None:
        """Raise ScheduleError if a fault names what the topology does not have."""
        problems = [
            f"{self.source}:{step.line}: {problem}" if step.line else f"{self.source}: {step.fault.id}: {problem}"
            for step in self.steps
            if step.action == "inject"
            for problem in step.fault.check_topology(topology)
        ]
        if problems:
            raise ScheduleError(problems)


def _seconds(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------------------------- text form

_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_time(text: str) -> float:
    match = _TIME.fullmatch(text)
    if match is None:
        raise FaultSpecError(f"expected a time like 10, 2.5s, 500ms or 1m, got {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def _statements(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        for statement in line.split("#", 1)[0].split(";"):
            if statement.strip():
                yield number, statement.strip()


def parse_schedule(text: str, topology: Topology | None = None, source: str = "<schedule>") -> Schedule:
    """Read the text form. Every problem is reported at once, each with its line and statement."""
    problems: list[str] = []
    steps: list[Step] = []
    faults: dict[str, tuple[BaseFault, float]] = {}  # name -> (fault, injected at)
    recovered: set[str] = set()

    for line, statement in _statements(text):

        def fail(message: str, line: int = line, statement: str = statement) -> None:
            problems.append(f"{source}:{line}: `{statement}`: {message}")

        words = statement.split()
        try:
            if words[0] == "recover":
                # recover [NAME] at T
                if len(words) not in (3, 4) or words[-2] != "at":
                    raise FaultSpecError("expected `recover [NAME] at TIME`")
                name, at = (words[1] if len(words) == 4 else None), parse_time(words[-1])
            elif words[0] == "at" and len(words) >= 3 and words[2] == "recover":
                # at T recover [NAME]
                if len(words) > 4:
                    raise FaultSpecError("expected `at TIME recover [NAME]`")
                name, at = (words[3] if len(words) == 4 else None), parse_time(words[1])
            elif words[0] == "at" and len(words) >= 3:
                fault, at, recover_after = _parse_inject(words, topology, len(faults) + 1)
                if fault.id in faults:
                    raise FaultSpecError(f"the name {fault.id} is already used by an earlier fault")
                faults[fault.id] = (fault, at)
                steps.append(Step(at, "inject", fault, line))
                if recover_after is not None:
                    steps.append(Step(at + recover_after, "recover", fault, line))
                    recovered.add(fault.id)
                continue
            else:
                raise FaultSpecError(
                    "expected `at TIME KIND [ARGS...] [as NAME] [for DURATION]`, `recover [NAME] at TIME` "
                    "or `at TIME recover [NAME]`"
                )
        except FaultSpecError as exc:
            fail(str(exc))
            continue
        # A recover statement.
        if name is None:
            pending = [n for n in faults if n not in recovered]
            if not pending:
                fail("there is no fault left to recover (each one before is recovered already)")
                continue
            name = pending[-1]
        if name not in faults:
            hint = difflib.get_close_matches(name, list(faults), n=1)
            known = f"did you mean {hint[0]}?" if hint else f"faults so far: {', '.join(faults) or 'none'}"
            fail(f"no fault is named {name!r} ({known})")
            continue
        if name in recovered:
            fail(f"{name} is already recovered")
            continue
        fault, injected_at = faults[name]
        if at < injected_at:
            fail(f"recovers {name} at {_seconds(at)} s, before it is injected at {_seconds(injected_at)} s")
            continue
        recovered.add(name)
        steps.append(Step(at, "recover", fault, line))

    if not problems and not steps:
        problems.append(f"{source}: the schedule is empty; expected statements like `at 10 kill courier-1`")
    schedule = Schedule(steps, source=source)
    if topology is not None and not problems:
        try:
            schedule.check(topology)
        except ScheduleError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ScheduleError(problems)
    return schedule


def _parse_inject(words: list[str], topology: Topology | None, number: int) -> tuple[BaseFault, float, float | None]:
    at = parse_time(words[1])
    kind, rest = words[2], words[3:]
    if kind not in FAULT_KINDS:
        hint = difflib.get_close_matches(kind, list(FAULT_KINDS), n=1)
        more = f" (did you mean {hint[0]}?)" if hint else ""
        raise FaultSpecError(f"unknown fault kind {kind!r}{more}; expected one of: {', '.join(sorted(FAULT_KINDS))}")
    name: str | None = None
    recover_after: float | None = None
    # Trailing `as NAME` and `for DURATION`, in either order.
    while len(rest) >= 2 and rest[-2] in ("as", "for"):
        keyword, value = rest[-2], rest[-1]
        if keyword == "as":
            if name is not None or not _NAME.fullmatch(value):
                raise FaultSpecError(f"`as` takes one name of letters, digits, '-', '_' or '.', got {value!r}")
            name = value
        else:
            if recover_after is not None:
                raise FaultSpecError("`for` is given twice")
            recover_after = parse_time(value)
        rest = rest[:-2]
    args: list[str] = []
    options: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if sep:
            if not key or not value:
                raise FaultSpecError(f"expected NAME=VALUE, got {word!r}")
            if key in options:
                raise FaultSpecError(f"{key} is given twice")
            options[key] = value
        elif options and word != "|":
            raise FaultSpecError(f"positional argument {word!r} after NAME=VALUE options")
        else:
            args.append(word)
    fault = FAULT_KINDS[kind].from_args(args, options, topology)
    fault.id = name or f"{kind}-{number}"
    return fault, at, recover_after


# --------------------------------------------------------------------------------------------- generator

DEFAULT_KINDS = (
    "kill",
    "stop",
    "restart",
    "pause",
    "partition",
    "isolate",
    "loss",
    "toxic",
    "pg-failover",
    "redis-failover",
    "lb-cut",
    "rolling-restart",
)
# Roles whose nodes are interchangeable: any one of them may be killed, frozen or cut off. Stateful
# primaries (postgres, redis) are hit through their failover faults instead.
INTERCHANGEABLE_ROLES = ("web", "celery", "courier", "mailroom", "sentinel")
HTTP_POOLS = ("web", "courier", "mailroom")  # HAProxy's backends in front of these roles
TOXIC_CHOICES: dict[str, Callable[[random.Random], dict[str, int]]] = {
    "latency": lambda rng: {"latency": (ms := rng.choice((100, 250, 500, 1000))), "jitter": ms // 5},
    "timeout": lambda rng: {"timeout": rng.choice((0, 2000))},
    "reset_peer": lambda rng: {"timeout": rng.choice((0, 500))},
    "bandwidth": lambda rng: {"rate": rng.choice((8, 32, 128))},
    "slicer": lambda rng: {"average_size": 64, "size_variation": 32, "delay": rng.choice((100, 1000))},
}


@dataclasses.dataclass(frozen=True)
class GeneratorSettings:
    duration: float = 120.0  # seconds; no fault outlasts it
    kinds: tuple[str, ...] = DEFAULT_KINDS
    fault_seconds: tuple[float, float] = (5.0, 15.0)  # how long each fault lasts
    gap_seconds: tuple[float, float] = (3.0, 10.0)  # between one fault's start (or end) and the next
    start_after: float = 5.0  # a quiet start, to measure the steady state
    max_concurrent: int = 1
    max_down_per_service: int = 1
    allow_outage: tuple[str, ...] = ()  # services that may lose all their nodes at once

    def check(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ScheduleError([f"unknown fault kind(s) {', '.join(unknown)}; expected: {', '.join(FAULT_KINDS)}"])
        for name in ("fault_seconds", "gap_seconds"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ScheduleError([f"{name}: expected 0 ≤ low ≤ high, got ({low}, {high})"])
        if self.max_concurrent < 1 or self.max_down_per_service < 1:
            raise ScheduleError(["max_concurrent and max_down_per_service must be ≥ 1"])


@dataclasses.dataclass
class _Placed:
    start: float
    end: float
    fault: BaseFault
    services: set[str]  # every service it touches
    footprint: Counter[str]


class _Generator:
    def __init__(self, topology: Topology, settings: GeneratorSettings, rng: random.Random) -> None:
        self.topology = topology
        self.settings = settings
        self.rng = rng
        self.placed: list[_Placed] = []

    # which services exist, by role
    def services_with_role(self, *roles: str) -> list[str]:
        return sorted(s.name for s in self.topology.services.values() if s.role.value in roles)

    def may_lose_all(self, service: str) -> bool:
        return service in self.settings.allow_outage

    def limit(self, service: str) -> int:
        replicas = self.topology.services[service].replicas
        if self.may_lose_all(service):
            return replicas
        return min(self.settings.max_down_per_service, replicas - 1)

    def node_candidates(self) -> list[str]:
        services = {
            name
            for name, s in self.topology.services.items()
            if (s.role.value in INTERCHANGEABLE_ROLES and s.replicas > 1) or self.may_lose_all(name)
        }
        return [n.name for n in self.topology.nodes() if n.service in services]

    def build(self, kind: str, number: int) -> BaseFault | None:
        """A random fault of this kind for this topology, or None when the topology cannot take one."""
        rng = self.rng
        fault_id = f"{kind}-{number}"
        nodes = self.node_candidates()
        if kind in ("kill", "stop", "restart", "pause", "isolate", "loss", "partition") and not nodes:
            return None
        params: dict[str, Any] = {"kind": kind, "id": fault_id}
        if kind in ("kill", "stop", "restart", "pause", "isolate"):
            params["node"] = rng.choice(nodes)
        elif kind == "loss":
            params.update(node=rng.choice(nodes), probability=rng.choice((0.1, 0.2, 0.3, 0.5)))
        elif kind == "partition":
            node = rng.choice(nodes)
            own = self.topology.node(node).service
            others = sorted(s for s in self.topology.services if s != own)
            if not others:
                return None
            other = rng.choice(others)
            peers = [n.name for n in self.topology.nodes() if n.service == other]
            params.update(groups=[[node], peers], one_way=rng.random() < 0.25)
        elif kind == "toxic":
            if not self.services_with_role("proxy"):
                return None
            toxic_type = rng.choice(sorted(TOXIC_CHOICES))
            params.update(
                proxy=rng.choice(("postgres", "redis")), type=toxic_type, attributes=TOXIC_CHOICES[toxic_type](rng)
            )
        elif kind == "pg-failover":
            params["method"] = rng.choice(("kill", "partition"))
        elif kind == "search-loss":
            params["method"] = rng.choice(("kill", "pause"))
        elif kind == "lb-cut":
            pools = [s for s in self.services_with_role(*HTTP_POOLS)]
            if not pools or not self.services_with_role("lb"):
                return None
            service = rng.choice(pools)
            servers = self.topology.services[service].node_names()
            whole = self.may_lose_all(service) and rng.random() < 0.5
            role = self.topology.services[service].role.value
            params.update(backend=role, servers=[] if whole else [rng.choice(servers)])
        elif kind == "rolling-restart":
            services = [
                s for s in self.services_with_role(*INTERCHANGEABLE_ROLES) if self.topology.services[s].replicas > 1
            ]
            if not services:
                return None
            params["service"] = rng.choice(services)
        fault = fault_from_description(params)
        return None if fault.check_topology(self.topology) else fault

    def touched(self, fault: BaseFault) -> set[str]:
        services = {self.topology.node(n).service for n in fault.targets()}
        if fault.kind == "lb-cut":
            services |= set(self.services_with_role(fault.backend))  # type: ignore[attr-defined]
        return services | set(fault.footprint(self.topology))

    def fits(self, fault: BaseFault, start: float, end: float) -> bool:
        footprint = fault.footprint(self.topology)
        if any(count > self.limit(service) for service, count in footprint.items()):
            return False
        overlapping = [p for p in self.placed if p.start < end and start < p.end]
        if len(overlapping) >= self.settings.max_concurrent:
            return False
        touched = self.touched(fault)
        if any(p.services & touched for p in overlapping):
            return False
        down = footprint + sum((p.footprint for p in overlapping), Counter())
        if any(count > self.limit(service) for service, count in down.items()):
            return False
        return self.cooled_down(fault, start)

    def cooled_down(self, fault: BaseFault, start: float) -> bool:
        """Sentinel will not fail the same master name over again within 2 × failover-timeout."""
        if fault.kind not in ("redis-failover", "pg-failover"):
            return True
        timeout_ms = float(self.topology.params.get("sentinel_failover_timeout_ms", 5000))
        cooldown = 2 * timeout_ms / 1000 + 5 if fault.kind == "redis-failover" else 10.0
        return all(p.end + cooldown <= start for p in self.placed if p.fault.kind == fault.kind)

    def run(self) -> list[Step]:
        settings = self.settings
        at = settings.start_after
        number = 0
        while at + settings.fault_seconds[0] <= settings.duration:
            length = round(self.rng.uniform(*settings.fault_seconds), 1)
            end = min(round(at + length, 1), settings.duration)
            for _attempt in range(12):
                kind = self.rng.choice(sorted(settings.kinds))
                fault = self.build(kind, number + 1)
                if fault is not None and self.fits(fault, at, end):
                    number += 1
                    self.placed.append(_Placed(at, end, fault, self.touched(fault), fault.footprint(self.topology)))
                    break
            gap = round(self.rng.uniform(*settings.gap_seconds), 1)
            # One at a time: the next starts after this one ends; else after a gap from this start.
            at = round((end if settings.max_concurrent == 1 else at) + gap, 1)
        steps = []
        for placed in self.placed:
            steps.append(Step(placed.start, "inject", placed.fault))
            steps.append(Step(placed.end, "recover", placed.fault))
        return steps


def generate_schedule(topology: Topology, seed: int, settings: GeneratorSettings | None = None) -> Schedule:
    """A random schedule for a mixed run; the same (topology, seed, settings) always gives the same one."""
    settings = settings or GeneratorSettings()
    settings.check()
    unknown = [s for s in settings.allow_outage if s not in topology.services]
    if unknown:
        raise ScheduleError([f"allow_outage: topology {topology.name} has no service {', '.join(unknown)}"])
    steps = _Generator(topology, settings, random.Random(seed)).run()
    if not steps:
        raise ScheduleError(
            [
                f"no fault of kinds {', '.join(settings.kinds)} fits topology {topology.name} within "
                f"{settings.duration:g} s and the blast-radius bounds; allow more kinds, time or outages"
            ]
        )
    return Schedule(steps, seed=seed, source=f"<generated seed {seed}>", parameters=dataclasses.asdict(settings))


def down_at(schedule: Schedule, topology: Topology, moment: float) -> Counter[str]:
    """Nodes out of service per service at `moment` (inject ≤ moment < recover), by the faults' footprints."""
    injected = {s.fault.id: s.at for s in schedule.steps if s.action == "inject"}
    recovered = {s.fault.id: s.at for s in schedule.steps if s.action == "recover"}
    total: Counter[str] = Counter()
    for fault in schedule.faults():
        if injected[fault.id] <= moment < recovered.get(fault.id, float("inf")):
            total += fault.footprint(topology)
    return total


# --------------------------------------------------------------------------------------------- playing


@dataclasses.dataclass
class StepResult:
    at: float  # planned, seconds from the start
    started: float  # actual, seconds from the start
    action: Action
    fault_id: str
    kind: str
    ok: bool
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str = ""


@dataclasses.dataclass
class ScheduleOutcome:
    seed: int | None
    results: list[StepResult] = dataclasses.field(default_factory=list)
    cancelled: bool = False
    cleanup_errors: list[str] = dataclasses.field(default_factory=list)
    error: str = ""  # what stopped the player itself, if anything did

    @property
    def ok(self) -> bool:
        return not self.error and not self.cleanup_errors and all(r.ok for r in self.results)


def run_schedule(
    nemesis: Nemesis,
    schedule: Schedule,
    stop_event: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ScheduleOutcome:
    """Play `schedule` (blocking; run it in a thread, or use ScheduleRunner). A step that fails is recorded
    and the rest carry on. At the end, or once `stop_event` is set, every fault this run injected and
    that is still active is recovered, newest first."""
    stop_event = stop_event or threading.Event()
    # Faults learn state while injected (e.g. the primary): play a copy, so the schedule can be replayed.
    steps = copy.deepcopy(schedule.steps)
    outcome = ScheduleOutcome(seed=schedule.seed)
    injected: list[BaseFault] = []
    started = clock()
    try:
        for step in steps:
            delay = started + step.at - clock()
            if (delay > 0 and stop_event.wait(delay)) or stop_event.is_set():
                outcome.cancelled = True
                break
            result = StepResult(step.at, clock() - started, step.action, step.fault.id, step.fault.kind, True)
            active = {f.id for f in nemesis.active()}
            try:
                if step.action == "inject":
                    injected.append(step.fault)
                    result.facts = nemesis.inject(step.fault)
                elif step.fault.id in active:
                    result.facts = nemesis.recover(step.fault)
                else:
                    result.facts = {"note": "not active (its inject did not take place)"}
            except Exception as exc:  # recorded in the history by the nemesis; the schedule goes on
                result.ok, result.error = False, str(exc) or type(exc).__name__
            outcome.results.append(result)
    except BaseException as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        active = {f.id for f in nemesis.active()}
        for fault in reversed(injected):
            if fault.id in active:
                try:
                    nemesis.recover(fault)
                except Exception as exc:  # keep going: the others must still be recovered
                    outcome.cleanup_errors.append(f"{fault.kind} {fault.id}: {exc}")
    return outcome


class ScheduleRunner:
    """Plays a schedule in a background thread: `with ScheduleRunner(nemesis, schedule) as runner: ...`.

    Leaving the block (normally, by an exception or ^C) stops the schedule and waits for its recoveries.
    """

    def __init__(self, nemesis: Nemesis, schedule: Schedule) -> None:
        self.nemesis = nemesis
        self.schedule = schedule
        self.stop_event = threading.Event()
        self.outcome: ScheduleOutcome | None = None
        self._thread = threading.Thread(target=self._play, name="nemesis-schedule", daemon=True)

    def _play(self) -> None:
        try:
            self.outcome = run_schedule(self.nemesis, self.schedule, self.stop_event)
        except BaseException as exc:  # run_schedule has recovered what it could; keep the reason
            self.outcome = ScheduleOutcome(seed=self.schedule.seed, error=f"{type(exc).__name__}: {exc}")

    def start(self) -> ScheduleRunner:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the schedule to finish by itself; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> ScheduleOutcome:
        self.stop_event.set()
        self._thread.join()
        assert self.outcome is not None
        return self.outcome

    def __enter__(self) -> ScheduleRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
