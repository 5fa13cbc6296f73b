"""The topology model: services, roles, replicas, health waits, start order, and the names they may take."""

from __future__ import annotations

import enum
import graphlib
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from resilience.topology.errors import LocatedError, TopologyError, did_you_mean


class Tier(enum.StrEnum):
    INFRA = "infra"
    APP = "app"


class Role(enum.StrEnum):
    WEB = "web"
    CELERY = "celery"
    CELERY_BEAT = "celery-beat"
    COURIER = "courier"
    MAILROOM = "mailroom"
    INDEXER = "indexer"
    ARCHIVER = "archiver"
    POSTGRES = "postgres"
    REDIS = "redis"
    SENTINEL = "sentinel"
    ELASTICSEARCH = "elasticsearch"
    LB = "lb"
    PROXY = "proxy"
    S3 = "s3"
    # The aggregator plays the phone network that courier sends to: test equipment on the app side.
    AGGREGATOR = "aggregator"

    @property
    def tier(self) -> Tier:
        return Tier.INFRA if self in _INFRA_ROLES else Tier.APP


_INFRA_ROLES = frozenset({Role.POSTGRES, Role.REDIS, Role.SENTINEL, Role.ELASTICSEARCH, Role.LB, Role.PROXY, Role.S3})

# The names a topology's parts may take, and the values a switch or param may hold.
TIER_NAMES = [t.value for t in Tier]
ROLE_NAMES = [r.value for r in Role]
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]*")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SWITCH_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def is_plain_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


class HealthKind(enum.StrEnum):
    PORT = "port"
    HTTP = "http"
    COMMAND = "command"
    LOG = "log"


@dataclass(frozen=True)
class HealthCheck:
    """One wait strategy; a node is healthy when all of its service's checks pass."""

    kind: HealthKind
    port: int | None = None  # PORT, HTTP
    path: str = "/"  # HTTP
    status: int | None = None  # HTTP: the expected status (200 unless given)
    contains: str | None = None  # HTTP: a substring the body must hold
    command: tuple[str, ...] = ()  # COMMAND: run inside the node, exit 0
    pattern: str | None = None  # LOG: a regex searched in the node's log

    def describe(self) -> str:
        if self.kind is HealthKind.PORT:
            return f"port {self.port}"
        if self.kind is HealthKind.HTTP:
            extra = f" containing {self.contains!r}" if self.contains else ""
            return f"http :{self.port}{self.path} -> {self.status}{extra}"
        if self.kind is HealthKind.COMMAND:
            return "command " + shlex.join(self.command)
        return f"log /{self.pattern}/"


class RestartName(enum.StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NO = "no"


RESTART_FORMS = ("always", "on-failure", "on-failure:N", "no")


@dataclass(frozen=True)
class RestartPolicy:
    """What supervises a node's process (systemd `Restart=`, a Kubernetes restartPolicy), as Docker applies it:
    `always` restarts it whenever it exits, `on-failure` when it exits non-zero (at most `max_retries` times
    since it was last started by hand; 0: no limit), `no` never."""

    name: RestartName
    max_retries: int = 0

    def __str__(self) -> str:
        if self.name is RestartName.ON_FAILURE and self.max_retries:
            return f"on-failure:{self.max_retries}"
        return self.name.value

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """`always`, `on-failure`, `on-failure:N` (N >= 1) or `no`; ValueError otherwise."""
        name, sep, count = text.strip().partition(":")
        if name not in {n.value for n in RestartName} or (sep and name != RestartName.ON_FAILURE):
            raise ValueError(text)
        if not sep:
            return cls(RestartName(name))
        if not count.isdigit() or int(count) < 1:
            raise ValueError(text)
        return cls(RestartName.ON_FAILURE, int(count))


ALWAYS = RestartPolicy(RestartName.ALWAYS)
NEVER = RestartPolicy(RestartName.NO)
_SUPERVISED_ROLES = frozenset(
    {Role.WEB, Role.CELERY, Role.CELERY_BEAT, Role.COURIER, Role.MAILROOM, Role.INDEXER, Role.ARCHIVER}
)


def default_restart(role: Role) -> RestartPolicy:
    """RapidPro's own services run under a supervisor in production, so they come back after a crash. The
    infrastructure and the test equipment do not by default: a killed Postgres primary or Redis master that
    came back by itself would be a second primary, or an empty master that its replica resyncs from; a
    restarted HAProxy or Toxiproxy would silently drop a fault's maint state or toxics; the offline S3 and
    search keep their data in memory. docs/topology.md, "Restart policies"."""
    return ALWAYS if role in _SUPERVISED_ROLES else NEVER


class Port(NamedTuple):
    """A container port to publish on 127.0.0.1 (unpacks as `(port, proto)`)."""

    number: int
    protocol: str  # "tcp" | "udp"

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


@dataclass(frozen=True)
class Service:
    name: str
    role: Role
    image: str
    replicas: int = 1
    command: tuple[str, ...] | None = None  # None: the image's default
    entrypoint: tuple[str, ...] | None = None  # None: the image's default
    # Mutable mappings are left out of the hash (they are still compared).
    env: dict[str, str] = field(default_factory=dict, hash=False)
    ports: tuple[Port, ...] = ()
    volumes: tuple[str, ...] = ()  # normalised "SOURCE:TARGET" or "SOURCE:TARGET:ro"
    health: tuple[HealthCheck, ...] = ()
    health_timeout: float = 60.0
    depends_on: tuple[str, ...] = ()
    switches: dict[str, bool | int | float | str] = field(default_factory=dict, hash=False)
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    restart: RestartPolicy | None = None  # None: the role's default (restart_policy)
    line: int = 0  # where the service is defined in its file

    @property
    def tier(self) -> Tier:
        return self.role.tier

    @property
    def restart_policy(self) -> RestartPolicy:
        return self.restart if self.restart is not None else default_restart(self.role)

    def node_names(self) -> list[str]:
        return [f"{self.name}-{index}" for index in range(1, self.replicas + 1)]


@dataclass(frozen=True)
class NodeSpec:
    """One container of a service: `courier-2` is index 2 of service `courier`."""

    name: str
    service: str
    index: int


class TopologyLookupError(LookupError):
    """A node, service or selector that the topology does not have (for programmatic callers)."""


@dataclass(frozen=True)
class Topology:
    name: str
    path: Path
    params: dict[str, Any] = field(hash=False)
    services: dict[str, Service] = field(hash=False)  # in file order
    description: str = ""

    def nodes(self) -> list[NodeSpec]:
        return [
            NodeSpec(f"{service.name}-{index}", service.name, index)
            for service in self.services.values()
            for index in range(1, service.replicas + 1)
        ]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes():
            if spec.name == name:
                return spec
        raise TopologyLookupError(
            f"topology {self.name} has no node {name!r}; nodes: {', '.join(n.name for n in self.nodes())}"
        )

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise TopologyLookupError(
                f"topology {self.name} has no service {name!r}; services: {', '.join(self.services)}"
            ) from None

    def start_waves(self) -> list[list[Service]]:
        """Services in dependency order; the services of one wave can start in parallel.

        A dependency on a service outside this topology (left out by `select`) counts as satisfied.
        """
        order = list(self.services)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for service in self.services.values():
            sorter.add(service.name, *(d for d in service.depends_on if d in self.services))
        sorter.prepare()  # the loader has refused cycles, so this cannot raise for a loaded topology
        waves: list[list[Service]] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=order.index)
            waves.append([self.services[name] for name in ready])
            sorter.done(*ready)
        return waves

    def select(self, spec: Iterable[str]) -> Topology:
        """The services named by `spec`: each item a tier, a role or a service name (commas split items)."""
        items = [part.strip() for item in spec for part in item.split(",") if part.strip()]
        if not items:
            raise TopologyError.single(str(self.path), "--only: nothing selected; expected a tier, role or service")
        chosen: set[str] = set()
        problems: list[str] = []
        for item in items:
            matched = {s.name for s in self.services.values() if item in (s.name, s.role.value, s.tier.value)}
            if matched:
                chosen |= matched
            elif item in TIER_NAMES or item in ROLE_NAMES:
                problems.append(f"--only {item}: no service of topology {self.name} has that tier or role")
            else:
                problems.append(
                    f"--only {item}: unknown selector; expected a tier ({', '.join(TIER_NAMES)}), "
                    f"a role ({', '.join(ROLE_NAMES)}) or a service ({', '.join(self.services)})"
                    + did_you_mean(item, [*TIER_NAMES, *ROLE_NAMES, *self.services])
                )
        if problems:
            raise TopologyError([LocatedError(str(self.path), None, p) for p in problems])
        return replace(self, services={n: s for n, s in self.services.items() if n in chosen})

    def with_switches(self, overrides: Mapping[str, Mapping[str, Any]]) -> Topology:
        """A copy whose services' switches are updated from `{service: {switch: value}}`."""
        problems = []
        for service, switches in overrides.items():
            if service not in self.services:
                problems.append(
                    f"--set {service}.*: topology {self.name} has no service {service!r}; "
                    f"expected one of: {', '.join(self.services)}" + did_you_mean(service, self.services)
                )
            for name, value in switches.items():
                if not SWITCH_NAME.fullmatch(name):
                    problems.append(f"--set {service}.{name}: bad switch name; expected {SWITCH_NAME.pattern}")
                if not is_plain_scalar(value):
                    problems.append(f"--set {service}.{name}: expected a string, number or boolean value")
        if problems:
            raise TopologyError([LocatedError("--set", None, p) for p in problems])
        services = {
            name: replace(s, switches={**s.switches, **overrides[name]}) if name in overrides else s
            for name, s in self.services.items()
        }
        return replace(self, services=services)

    def with_images(self, mapping: Mapping[str, str]) -> Topology:
        """A copy with images replaced: keys are images as written in the file, or their repository
        without the tag (`nyaruka/courier` matches `nyaruka/courier:v9.2.1`). Keys that match no service
        are ignored, so one mapping of every built image can be applied to any topology."""
        services = {}
        for name, service in self.services.items():
            new = mapping.get(service.image) or mapping.get(_repository(service.image))
            services[name] = replace(service, image=new) if new else service
        return replace(self, services=services)

    def with_service(self, service: Service) -> Topology:
        """A copy with the service of that name replaced (e.g. by one with another image)."""
        if service.name not in self.services:
            raise KeyError(f"topology {self.name} has no service {service.name!r}")
        return replace(self, services={**self.services, service.name: service})


def _repository(image: str) -> str:
    """`registry:5000/org/name:tag@digest` -> `registry:5000/org/name`."""
    image = image.split("@", 1)[0]
    head, _, last = image.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
