"""A seeded random schedule for a mixed run, kept within the blast-radius bounds.

Random faults of the allowed kinds, never more than `max_down_per_service` (1) nodes of a service out at once,
and never a whole service unless it is in `allow_outage`. The same seed gives the same schedule.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from resilience.faults.base import FAULT_KINDS, BaseFault, fault_from_description
from resilience.faults.schedule.model import Schedule, ScheduleError, Step

if TYPE_CHECKING:
    from resilience.topology import Topology

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
NODE_KINDS = ("kill", "crash", "stop", "restart", "pause", "isolate", "loss", "partition")
# What `targets` may name per kind: services (checked against the topology), or these methods.
SERVICE_TARGETED = frozenset({*NODE_KINDS, "lb-cut", "rolling-restart"})
METHODS: dict[str, tuple[str, ...]] = {"pg-failover": ("kill", "partition"), "search-loss": ("kill", "pause")}
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
    # kind -> what it may act on: services for the faults on nodes and for lb-cut and rolling-restart, the
    # method for pg-failover and search-loss (`--faults kill:courier pg-failover:kill`). A kind not named
    # here acts on anything the topology allows.
    targets: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def check(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ScheduleError([f"unknown fault kind(s) {', '.join(unknown)}; expected: {', '.join(FAULT_KINDS)}"])
        problems = []
        for kind, choices in self.targets.items():
            if kind not in self.kinds:
                problems.append(f"targets for {kind}, which is not among the kinds drawn ({', '.join(self.kinds)})")
            elif kind in METHODS:
                wrong = [c for c in choices if c not in METHODS[kind]]
                if wrong:
                    problems.append(f"{kind}: no method {', '.join(wrong)}; expected: {', '.join(METHODS[kind])}")
            elif kind not in SERVICE_TARGETED:
                problems.append(f"{kind} takes no target; targets are for {', '.join(sorted(SERVICE_TARGETED))}")
            if not choices:
                problems.append(f"{kind}: an empty target list")
        if problems:
            raise ScheduleError(problems)
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

    def aimed(self, kind: str, services: list[str]) -> list[str]:
        """The services among these that `targets` lets this kind act on."""
        wanted = self.settings.targets.get(kind)
        return services if wanted is None else [s for s in services if s in wanted]

    def node_candidates(self, kind: str) -> list[str]:
        services = {
            name
            for name, s in self.topology.services.items()
            if (s.role.value in INTERCHANGEABLE_ROLES and s.replicas > 1) or self.may_lose_all(name)
        }
        services = set(self.aimed(kind, sorted(services)))
        return [n.name for n in self.topology.nodes() if n.service in services]

    def build(self, kind: str, number: int) -> BaseFault | None:
        """A random fault of this kind for this topology, or None when the topology cannot take one."""
        rng = self.rng
        fault_id = f"{kind}-{number}"
        nodes = self.node_candidates(kind)
        if kind in NODE_KINDS and not nodes:
            return None
        params: dict[str, Any] = {"kind": kind, "id": fault_id}
        if kind in ("kill", "crash", "stop", "restart", "pause", "isolate"):
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
        elif kind in METHODS:
            params["method"] = rng.choice(self.settings.targets.get(kind, METHODS[kind]))
        elif kind == "lb-cut":
            pools = self.aimed(kind, self.services_with_role(*HTTP_POOLS))
            if not pools or not self.services_with_role("lb"):
                return None
            service = rng.choice(pools)
            servers = self.topology.services[service].node_names()
            whole = self.may_lose_all(service) and rng.random() < 0.5
            role = self.topology.services[service].role.value
            params.update(backend=role, servers=[] if whole else [rng.choice(servers)])
        elif kind == "rolling-restart":
            services = self.aimed(
                kind,
                [s for s in self.services_with_role(*INTERCHANGEABLE_ROLES) if self.topology.services[s].replicas > 1],
            )
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
    for kind, services in settings.targets.items():
        missing = [s for s in services if kind in SERVICE_TARGETED and s not in topology.services]
        if missing:
            raise ScheduleError(
                [f"{kind}: topology {topology.name} has no service {', '.join(missing)}; "
                 f"it has {', '.join(sorted(topology.services))}"]
            )  # fmt: skip
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
