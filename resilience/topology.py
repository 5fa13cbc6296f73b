"""The topology model and its YAML loader: services, roles, replicas, health waits, start order.

Every mistake in a topology file is reported as `FILE:LINE: what is wrong; expected ...`, all of a file's
mistakes at once, never as a traceback. Lines come from PyYAML's composed node tree (each node carries its
start mark), which also lets the loader see duplicate keys that a plain `yaml.safe_load` would silently
merge. The schema is documented in docs/topology.md.
"""

from __future__ import annotations

import difflib
import enum
import graphlib
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import jinja2.meta
import yaml
from jinja2.nativetypes import NativeEnvironment
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# --------------------------------------------------------------------------------------------------- model


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
    line: int = 0  # where the service is defined in its file

    @property
    def tier(self) -> Tier:
        return self.role.tier

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
            elif item in _TIER_NAMES or item in _ROLE_NAMES:
                problems.append(f"--only {item}: no service of topology {self.name} has that tier or role")
            else:
                problems.append(
                    f"--only {item}: unknown selector; expected a tier ({', '.join(_TIER_NAMES)}), "
                    f"a role ({', '.join(_ROLE_NAMES)}) or a service ({', '.join(self.services)})"
                    + _did_you_mean(item, [*_TIER_NAMES, *_ROLE_NAMES, *self.services])
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
                    f"expected one of: {', '.join(self.services)}" + _did_you_mean(service, self.services)
                )
            for name, value in switches.items():
                if not _SWITCH_NAME.fullmatch(name):
                    problems.append(f"--set {service}.{name}: bad switch name; expected {_SWITCH_NAME.pattern}")
                if not _is_plain_scalar(value):
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


# -------------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class LocatedError:
    file: str
    line: int | None  # 1-based; None when the mistake is not on a line (a missing file, a CLI option)
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class TopologyError(Exception):
    """Everything wrong with one topology file (or with options applied to it)."""

    def __init__(self, errors: list[LocatedError]) -> None:
        # A YAML alias repeats its anchor's nodes, and with them their errors: report each once.
        unique = list(dict.fromkeys(errors))
        self.errors = sorted(unique, key=lambda e: (e.file, e.line or 0))
        super().__init__("\n".join(str(e) for e in self.errors))

    @classmethod
    def single(cls, file: str, message: str, line: int | None = None) -> TopologyError:
        return cls([LocatedError(file, line, message)])


# ---------------------------------------------------------------------------------------------- constants

_TIER_NAMES = [t.value for t in Tier]
_ROLE_NAMES = [r.value for r in Role]
_TOP_KEYS = ("version", "name", "description", "params", "services")
_SERVICE_KEYS = (
    "role",
    "image",
    "replicas",
    "command",
    "entrypoint",
    "env",
    "ports",
    "volumes",
    "health",
    "health_timeout",
    "depends_on",
    "switches",
    "privileged",
    "cap_add",
)
_HEALTH_KINDS = [k.value for k in HealthKind]
_HTTP_KEYS = ("port", "path", "status", "contains")
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]*")
_MAX_NAME = 40  # container names are rs-<run>-<node>; keep DNS labels well under 63
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Dots are allowed: the Elasticsearch image reads settings such as `discovery.seed_hosts` from its environment.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_SWITCH_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_CAPABILITY = re.compile(r"[A-Z][A-Z0-9_]*")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PORT_TEXT = re.compile(r"(\d+)(?:/(tcp|udp))?")
# Names every template can use besides the params.
BUILTIN_TEMPLATE_NAMES = ("topology_dir",)
_JINJA_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None", "loop"}
)


class _Failed:
    """Marks a value whose error has already been recorded."""


FAILED: _Failed = _Failed()
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
# Scalars a string field takes exactly as written; any other tag goes through the (safe) constructor.
_WRITTEN_AS_IS_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "timestamp"))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_plain_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _env_text(value: Any) -> str:
    """Environment values are strings; booleans are written the way Go and Python parse them back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------------- loader


class _Parser:
    """Walks the composed YAML of one file, building the model and recording every error on the way."""

    def __init__(self, file: str, loader: yaml.SafeLoader, context: dict[str, Any]) -> None:
        self.file = file
        self.loader = loader
        self.errors: list[LocatedError] = []
        self.context = context  # template variables: params + builtins
        self.templates = NativeEnvironment(undefined=jinja2.StrictUndefined)

    # -- reporting ----------------------------------------------------------------------------------
    def error(self, where: Node | int | None, message: str) -> _Failed:
        line = where.start_mark.line + 1 if isinstance(where, Node) else where
        self.errors.append(LocatedError(self.file, line, message))
        return FAILED

    @staticmethod
    def kind_of(node: Node) -> str:
        if isinstance(node, MappingNode):
            if node.flow_style and len(node.value) == 1 and isinstance(node.value[0][0], MappingNode):
                return 'an unquoted template (write it in quotes: "{{ ... }}")'
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        if node.tag == _NULL_TAG:
            return "nothing (null)"
        if node.tag == _STR_TAG:
            return f"the string {node.value!r}"
        return str(node.value)  # a number or boolean, as written

    # -- structure ----------------------------------------------------------------------------------
    def mapping(
        self, node: Node, what: str, duplicate: str = "duplicate key {key!r} in {what}"
    ) -> dict[str, tuple[ScalarNode, Node]] | _Failed:
        """The string-keyed entries of a mapping node; duplicate and non-string keys are errors."""
        if not isinstance(node, MappingNode):
            return self.error(node, f"{what} must be a mapping; got {self.kind_of(node)}")
        seen: dict[str, ScalarNode] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, f"keys of {what} must be names; got {self.kind_of(key_node)}")
                continue
            key = key_node.value  # as written: a key `1` or `on` is then judged as the name it spells
            if key in seen:
                self.error(
                    key_node,
                    duplicate.format(key=key, what=what) + f" (first at line {seen[key].start_mark.line + 1})",
                )
            else:
                seen[key] = key_node
        try:
            # Merge keys (`<<: *anchor`) are flattened the way PyYAML's constructor does; an explicit key
            # then overrides a merged one, which is what merge keys are for, not a duplicate.
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            return self.error(node, f"bad merge key: {exc.problem}")
        entries: dict[str, tuple[ScalarNode, Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                entries[key_node.value] = (key_node, value_node)
        return entries

    def check_keys(self, entries: Mapping[str, tuple[ScalarNode, Node]], allowed: Iterable[str], what: str) -> None:
        allowed = list(allowed)
        for key, (key_node, _value) in entries.items():
            if key not in allowed:
                self.error(
                    key_node,
                    f"unknown key {key!r} in {what}; expected one of: {', '.join(allowed)}"
                    + _did_you_mean(key, allowed),
                )

    def sequence(self, node: Node, what: str, expected: str) -> list[Node] | _Failed:
        if not isinstance(node, SequenceNode):
            return self.error(node, f"{what} must be a list of {expected}; got {self.kind_of(node)}")
        return list(node.value)

    # -- scalars ------------------------------------------------------------------------------------
    def scalar(self, node: Node, what: str, expected: str) -> Any:
        """The value of a scalar node: YAML-typed, string scalars rendered as templates."""
        if not isinstance(node, ScalarNode):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            return self.error(node, f"{what}: {exc.problem}; expected {expected}")
        if isinstance(value, str):
            return self.render(node, value, what)
        return value

    def text(self, node: Node, what: str, expected: str = "a string") -> str | _Failed:
        """A string field: numbers and booleans are kept as written (`yes` stays `yes`)."""
        if isinstance(node, ScalarNode) and node.tag in _WRITTEN_AS_IS_TAGS:
            return str(node.value)
        value = self.scalar(node, what, expected)
        if isinstance(value, _Failed):
            return value
        if value is None or not _is_plain_scalar(value):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        return _env_text(value)

    def render(self, node: Node, source: str, what: str) -> Any:
        if "{{" not in source and "{%" not in source:
            return source
        try:
            parsed = self.templates.parse(source)
            missing = sorted(jinja2.meta.find_undeclared_variables(parsed) - set(self.context))
            if missing:
                names = ", ".join(sorted(k for k in self.context if k not in BUILTIN_TEMPLATE_NAMES)) or "none"
                return self.error(
                    node,
                    f"{what}: undefined param {', '.join(repr(m) for m in missing)} in template {source!r}; "
                    f"expected one of the params ({names}) or {', '.join(BUILTIN_TEMPLATE_NAMES)}",
                )
            return self.templates.from_string(source).render(self.context)
        except jinja2.TemplateSyntaxError as exc:
            return self.error(node, f"{what}: template syntax error in {source!r}: {exc.message}")
        except Exception as exc:  # a user's expression can raise anything (1/0, "a" + 1, ...)
            return self.error(node, f"{what}: template {source!r} failed: {type(exc).__name__}: {exc}")

    def integer(self, node: Node, what: str, minimum: int, maximum: int | None = None) -> int | _Failed:
        expected = f"an int >= {minimum}" if maximum is None else f"an int in {minimum}..{maximum}"
        value = self.scalar(node, what, expected)
        if isinstance(value, _Failed):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        if value < minimum or (maximum is not None and value > maximum):
            return self.error(node, f"{what} must be {expected}; got {value}")
        return value

    def boolean(self, node: Node, what: str) -> bool | _Failed:
        value = self.scalar(node, what, "true or false")
        if isinstance(value, _Failed):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            return self.error(node, f"{what} must be true or false; got {self.kind_of(node)}")
        return value

    def argv(self, node: Node, what: str) -> tuple[str, ...] | _Failed:
        """A command line: a list of strings, or one string split the way a shell would."""
        if isinstance(node, SequenceNode):
            words = [self.text(item, f"{what} item", "a string") for item in node.value]
            if any(w is FAILED for w in words):
                return FAILED
            result = tuple(w for w in words if isinstance(w, str))
        else:
            line = self.text(node, what, "a list of strings or a command line")
            if isinstance(line, _Failed):
                return FAILED
            try:
                result = tuple(shlex.split(line))
            except ValueError as exc:
                return self.error(node, f"{what}: cannot split {line!r} like a shell would ({exc})")
        if not result:
            return self.error(node, f"{what} must not be empty; expected a list of strings or a command line")
        return result


# ------------------------------------------------------------------------------------------------ parsing


def load_topology(path: Path | str, params: Mapping[str, Any] | None = None) -> Topology:
    """Load and validate a topology file; raise TopologyError listing every mistake in it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError.single(str(path), "no such file; expected a topology YAML file") from None
    except IsADirectoryError:
        raise TopologyError.single(str(path), "is a directory; expected a topology YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError.single(str(path), f"cannot read it ({exc}); expected a UTF-8 YAML file") from None
    return parse_topology(text, path, params)


def parse_topology(text: str, path: Path | str, params: Mapping[str, Any] | None = None) -> Topology:
    """Validate topology YAML `text` as if read from `path` (which names the file in errors)."""
    path = Path(path)
    file = str(path)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = ", ".join(p for p in (exc.context, exc.problem) if p)
        hint = " (check the indentation of this line and the lines above it)" if "block" in detail else ""
        raise TopologyError.single(
            file, f"YAML syntax error: {detail}; expected valid YAML{hint}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise TopologyError.single(file, f"YAML error: {exc}; expected valid YAML") from None
    finally:
        loader.dispose()
    if root is None:
        raise TopologyError.single(file, "the file is empty; expected a mapping with version, name and services")

    builtins = {"topology_dir": str(path.resolve().parent)}
    parser = _Parser(file, loader, dict(builtins))
    top = parser.mapping(root, "the topology")
    if isinstance(top, _Failed):
        raise TopologyError(parser.errors)
    parser.check_keys(top, _TOP_KEYS, "the topology")

    if "version" not in top:
        parser.error(root, "missing 'version'; expected `version: 1`")
    else:
        version = parser.scalar(top["version"][1], "version", "1")
        if version is not FAILED and (version != 1 or isinstance(version, bool)):
            parser.error(top["version"][1], f"unsupported version {top['version'][1].value}; expected 1")

    name = ""
    if "name" not in top:
        parser.error(root, "missing 'name'; expected `name: NAME` ([a-z][a-z0-9-]*)")
    else:
        value = parser.text(top["name"][1], "name")
        if isinstance(value, str):
            if _SERVICE_NAME.fullmatch(value):
                name = value
            else:
                parser.error(top["name"][1], f"bad topology name {value!r}; expected [a-z][a-z0-9-]*")

    description = ""
    if "description" in top:
        value = parser.text(top["description"][1], "description")
        description = value if isinstance(value, str) else ""

    declared = _parse_params(parser, top["params"][1]) if "params" in top else {}
    resolved = _apply_param_overrides(parser, declared, params or {})
    parser.context.update(resolved)

    services: dict[str, Service] = {}
    if "services" not in top:
        parser.error(root, "missing 'services'; expected a mapping of service name to service")
    else:
        services = _parse_services(parser, top["services"][1])

    if parser.errors:
        raise TopologyError(parser.errors)
    return Topology(name=name, path=path, params=resolved, services=services, description=description)


def _parse_params(parser: _Parser, node: Node) -> dict[str, tuple[Any, Node]]:
    entries = parser.mapping(node, "params")
    if isinstance(entries, _Failed):
        return {}
    declared: dict[str, tuple[Any, Node]] = {}
    for key, (key_node, value_node) in entries.items():
        if not _PARAM_NAME.fullmatch(key) or key in _JINJA_WORDS:
            parser.error(key_node, f"bad param name {key!r}; expected an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            continue
        if key in BUILTIN_TEMPLATE_NAMES:
            parser.error(key_node, f"param {key!r} is a built-in template name; expected another name")
            continue
        if not isinstance(value_node, ScalarNode) or value_node.tag == _NULL_TAG:
            parser.error(
                value_node,
                f"param {key!r} must have a default that is an int, float, string or boolean; "
                f"got {parser.kind_of(value_node)}",
            )
            continue
        try:
            value = parser.loader.construct_object(value_node, deep=True)
        except yaml.MarkedYAMLError as exc:
            parser.error(value_node, f"param {key!r}: {exc.problem}; expected an int, float, string or boolean")
            continue
        if not _is_plain_scalar(value):
            parser.error(value_node, f"param {key!r} must be an int, float, string or boolean; got {value!r}")
            continue
        declared[key] = (value, value_node)
    return declared


def _coerce_param(default: Any, given: Any) -> Any:
    """`given` (often a command-line string) as the type of the param's default; ValueError if it can't be."""
    if isinstance(default, bool):
        if isinstance(given, bool):
            return given
        text = str(given).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ValueError("a boolean (true/false)")
    if isinstance(default, int):
        if isinstance(given, int) and not isinstance(given, bool):
            return given
        if isinstance(given, str) and re.fullmatch(r"\s*-?\d+\s*", given):
            return int(given)
        raise ValueError("an int")
    if isinstance(default, float):
        if isinstance(given, int | float) and not isinstance(given, bool):
            return float(given)
        if isinstance(given, str):
            try:
                return float(given)
            except ValueError:
                pass
        raise ValueError("a number")
    if _is_plain_scalar(given):
        return _env_text(given)
    raise ValueError("a string")


def _apply_param_overrides(
    parser: _Parser, declared: Mapping[str, tuple[Any, Node]], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    resolved = {key: value for key, (value, _node) in declared.items()}
    for key, given in overrides.items():
        if key not in declared:
            parser.error(
                None,
                f"--param {key}: the topology declares no such param; expected one of: "
                f"{', '.join(declared) or 'none'}" + _did_you_mean(key, declared),
            )
            continue
        default = declared[key][0]
        try:
            resolved[key] = _coerce_param(default, given)
        except ValueError as exc:
            parser.error(None, f"--param {key}={given}: expected {exc} like its default {default!r}")
    return resolved


def _parse_services(parser: _Parser, node: Node) -> dict[str, Service]:
    entries = parser.mapping(node, "services", duplicate="duplicate service {key!r}")
    if isinstance(entries, _Failed):
        return {}
    if not entries:
        parser.error(node, "no services; expected at least one service")
        return {}
    services: dict[str, Service] = {}
    depends_lines: dict[tuple[str, str], Node] = {}
    for name, (key_node, value_node) in entries.items():
        if len(name) > _MAX_NAME or not _SERVICE_NAME.fullmatch(name):
            parser.error(
                key_node, f"bad service name {name!r}; expected [a-z][a-z0-9-]* of at most {_MAX_NAME} characters"
            )
            continue
        service = _parse_service(parser, name, key_node, value_node, depends_lines)
        if service is not None:
            services[name] = service
    _check_cross_references(parser, entries, services, depends_lines)
    return services


def _parse_service(
    parser: _Parser,
    name: str,
    key_node: ScalarNode,
    node: Node,
    depends_lines: dict[tuple[str, str], Node],
) -> Service | None:
    what = f"service {name!r}"
    entries = parser.mapping(node, what)
    if isinstance(entries, _Failed):
        return None
    parser.check_keys(entries, _SERVICE_KEYS, what)
    fields: dict[str, Any] = {}
    errors_before = len(parser.errors)

    def field_node(key: str) -> Node | None:
        return entries[key][1] if key in entries else None

    role_node = field_node("role")
    role: Role | _Failed = FAILED
    if role_node is None:
        parser.error(key_node, f"{what} has no role; expected `role:` one of: {', '.join(_ROLE_NAMES)}")
    else:
        value = parser.text(role_node, f"role of {what}")
        if isinstance(value, str):
            if value in _ROLE_NAMES:
                role = Role(value)
            else:
                parser.error(
                    role_node,
                    f"unknown role {value!r} for {what}; expected one of: {', '.join(_ROLE_NAMES)}"
                    + _did_you_mean(value, _ROLE_NAMES),
                )

    image_node = field_node("image")
    if image_node is None:
        parser.error(key_node, f"{what} has no image; expected `image: NAME[:TAG]`")
    else:
        image = parser.text(image_node, f"image of {what}", "an image name")
        if isinstance(image, str):
            if not image.strip() or any(c.isspace() for c in image):
                parser.error(image_node, f"image of {what} must be a non-empty name without spaces; got {image!r}")
            else:
                fields["image"] = image

    parsers: dict[str, Callable[[Node, str], Any]] = {
        "replicas": lambda n, w: parser.integer(n, w, 1),
        "command": parser.argv,
        "entrypoint": parser.argv,
        "env": lambda n, w: _parse_env(parser, n, w),
        "ports": lambda n, w: _parse_ports(parser, n, w),
        "volumes": lambda n, w: _parse_volumes(parser, n, w),
        "health": lambda n, w: _parse_health(parser, n, w),
        "health_timeout": lambda n, w: _parse_timeout(parser, n, w),
        "depends_on": lambda n, w: _parse_depends_on(parser, name, n, w, depends_lines),
        "switches": lambda n, w: _parse_switches(parser, n, w),
        "privileged": parser.boolean,
        "cap_add": lambda n, w: _parse_cap_add(parser, n, w),
    }
    for key, parse in parsers.items():
        value_node = field_node(key)
        if value_node is not None:
            value = parse(value_node, f"{key} of {what}")
            if value is not FAILED:
                fields[key] = value

    health: tuple[HealthCheck, ...] = fields.get("health", ())
    published = {p.number for p in fields.get("ports", ()) if p.protocol == "tcp"}
    health_items = getattr(field_node("health"), "value", [])
    for check, check_node in zip(health, health_items, strict=False):
        if check.port is not None and "ports" in fields and check.port not in published:
            parser.error(
                check_node,
                f"health check {check.describe()} of {what} uses port {check.port}, which is not in its ports; "
                f"expected it listed under ports (the harness reaches a node only through published ports)",
            )
        elif check.port is not None and "ports" not in fields:
            parser.error(
                check_node,
                f"health check {check.describe()} of {what} needs port {check.port} published; "
                f"expected `ports: [{check.port}]`",
            )

    if len(parser.errors) > errors_before or isinstance(role, _Failed) or "image" not in fields:
        return None
    return Service(name=name, role=role, line=key_node.start_mark.line + 1, **fields)


def _parse_env(parser: _Parser, node: Node, what: str) -> dict[str, str] | _Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, _Failed):
        return FAILED
    env: dict[str, str] = {}
    failed = False
    for key, (key_node, value_node) in entries.items():
        if not _ENV_NAME.fullmatch(key):
            parser.error(key_node, f"bad variable name {key!r} in {what}; expected [A-Za-z_][A-Za-z0-9_.]*")
            failed = True
            continue
        value = parser.text(value_node, f"{key} in {what}", "a string, number or boolean")
        if isinstance(value, str):
            env[key] = value
        else:
            failed = True
    return FAILED if failed else env


def _parse_switches(parser: _Parser, node: Node, what: str) -> dict[str, Any] | _Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, _Failed):
        return FAILED
    switches: dict[str, Any] = {}
    failed = False
    for key, (key_node, value_node) in entries.items():
        if not _SWITCH_NAME.fullmatch(key):
            parser.error(key_node, f"bad switch name {key!r} in {what}; expected [a-z_][a-z0-9_]*")
            failed = True
            continue
        value = parser.scalar(value_node, f"{key} in {what}", "a string, number or boolean")
        if value is FAILED:
            failed = True
        elif value is None or not _is_plain_scalar(value):
            parser.error(
                value_node, f"{key} in {what} must be a string, number or boolean; got {parser.kind_of(value_node)}"
            )
            failed = True
        else:
            switches[key] = value
    return FAILED if failed else switches


def _parse_ports(parser: _Parser, node: Node, what: str) -> tuple[Port, ...] | _Failed:
    items = parser.sequence(node, what, 'ports (8080 or "8080/tcp" or "53/udp")')
    if isinstance(items, _Failed):
        return FAILED
    ports: list[Port] = []
    failed = False
    for item in items:
        value = parser.scalar(item, f"port in {what}", 'a port: 1..65535, "N/tcp" or "N/udp"')
        port: Port | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            port = Port(value, "tcp")
        elif isinstance(value, str) and (match := _PORT_TEXT.fullmatch(value.strip())):
            port = Port(int(match.group(1)), match.group(2) or "tcp")
        if value is FAILED:
            failed = True
        elif port is None or not 1 <= port.number <= 65535:
            shown = repr(value) if isinstance(value, str) else parser.kind_of(item)
            parser.error(item, f'bad port {shown} in {what}; expected 1..65535, "N/tcp" or "N/udp"')
            failed = True
        elif port in ports:
            parser.error(item, f"port {port} is listed twice in {what}; expected each port once")
            failed = True
        else:
            ports.append(port)
    return FAILED if failed else tuple(ports)


def _parse_volumes(parser: _Parser, node: Node, what: str) -> tuple[str, ...] | _Failed:
    expected = '"NAME:/path", "/abs/host:/path" and an optional ":ro" or ":rw"'
    items = parser.sequence(node, what, expected)
    if isinstance(items, _Failed):
        return FAILED
    volumes: list[str] = []
    targets: set[str] = set()
    failed = False
    for item in items:
        spec = parser.text(item, f"volume in {what}", expected)
        if isinstance(spec, _Failed):
            failed = True
            continue
        parts = spec.split(":")
        mode = parts.pop() if len(parts) == 3 else "rw"
        problem = None
        if len(parts) != 2 or mode not in ("ro", "rw"):
            problem = "not SOURCE:TARGET[:ro|rw]"
        else:
            source, target = parts
            if source.startswith("/"):
                source = posixpath.normpath(source)
            elif not _VOLUME_NAME.fullmatch(source):
                problem = "the source is neither a volume name nor an absolute host path"
            if not target.startswith("/"):
                problem = "the target is not an absolute path in the container"
            elif (target := posixpath.normpath(target)) in targets:
                problem = f"{target} is mounted twice"
        if problem:
            parser.error(item, f"bad volume {spec!r} in {what}: {problem}; expected {expected}")
            failed = True
            continue
        targets.add(target)
        volumes.append(f"{source}:{target}" + (":ro" if mode == "ro" else ""))
    return FAILED if failed else tuple(volumes)


def _parse_health(parser: _Parser, node: Node, what: str) -> tuple[HealthCheck, ...] | _Failed:
    expected = f"one of: {', '.join(_HEALTH_KINDS)}"
    items = parser.sequence(node, what, f"checks, each a mapping with one key, {expected}")
    if isinstance(items, _Failed):
        return FAILED
    checks: list[HealthCheck] = []
    failed = False
    for item in items:
        check = _parse_health_check(parser, item, f"health check of {what.removeprefix('health of ')}")
        if isinstance(check, HealthCheck):
            checks.append(check)
        else:
            failed = True
    return FAILED if failed else tuple(checks)


def _parse_health_check(parser: _Parser, node: Node, what: str) -> HealthCheck | _Failed:
    kinds = ", ".join(_HEALTH_KINDS)
    entries = parser.mapping(node, what)
    if isinstance(entries, _Failed):
        return FAILED
    if len(entries) != 1:
        return parser.error(node, f"{what} must have exactly one key; expected one of: {kinds}")
    ((kind_name, (key_node, value_node)),) = entries.items()
    if kind_name not in _HEALTH_KINDS:
        return parser.error(
            key_node,
            f"unknown health check {kind_name!r} in {what}; expected one of: {kinds}"
            + _did_you_mean(kind_name, _HEALTH_KINDS),
        )
    kind = HealthKind(kind_name)
    if kind is HealthKind.PORT:
        port = parser.integer(value_node, f"port {what}", 1, 65535)
        return port if isinstance(port, _Failed) else HealthCheck(kind, port=port)
    if kind is HealthKind.COMMAND:
        command = parser.argv(value_node, f"command {what}")
        return command if isinstance(command, _Failed) else HealthCheck(kind, command=command)
    if kind is HealthKind.LOG:
        pattern = parser.text(value_node, f"log {what}", "a regular expression")
        if isinstance(pattern, _Failed):
            return FAILED
        try:
            re.compile(pattern)
        except re.error as exc:
            return parser.error(value_node, f"log {what}: bad regular expression {pattern!r} ({exc})")
        return HealthCheck(kind, pattern=pattern)
    return _parse_http_check(parser, value_node, f"http {what}")


def _parse_http_check(parser: _Parser, node: Node, what: str) -> HealthCheck | _Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, _Failed):
        return FAILED
    before = len(parser.errors)
    parser.check_keys(entries, _HTTP_KEYS, what)
    port: int | _Failed = FAILED
    if "port" not in entries:
        parser.error(node, f"{what} has no port; expected `http: {{port: N, path: /}}`")
    else:
        port = parser.integer(entries["port"][1], f"port of {what}", 1, 65535)
    path = "/"
    if "path" in entries:
        value = parser.text(entries["path"][1], f"path of {what}", "a path starting with /")
        if isinstance(value, str) and not value.startswith("/"):
            parser.error(entries["path"][1], f"path of {what} must start with /; got {value!r}")
        elif isinstance(value, str):
            path = value
    status: int | _Failed = 200
    if "status" in entries:
        status = parser.integer(entries["status"][1], f"status of {what}", 100, 599)
    contains: str | None = None
    if "contains" in entries:
        value = parser.text(entries["contains"][1], f"contains of {what}")
        contains = value if isinstance(value, str) else None
    if len(parser.errors) > before or isinstance(port, _Failed) or isinstance(status, _Failed):
        return FAILED
    return HealthCheck(HealthKind.HTTP, port=port, path=path, status=status, contains=contains)


def _parse_timeout(parser: _Parser, node: Node, what: str) -> float | _Failed:
    value = parser.scalar(node, what, "a number of seconds > 0")
    if isinstance(value, _Failed):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return parser.error(node, f"{what} must be a number of seconds > 0; got {parser.kind_of(node)}")
    return float(value)


def _parse_depends_on(
    parser: _Parser, service: str, node: Node, what: str, depends_lines: dict[tuple[str, str], Node]
) -> tuple[str, ...] | _Failed:
    items = parser.sequence(node, what, "service names")
    if isinstance(items, _Failed):
        return FAILED
    names: list[str] = []
    failed = False
    for item in items:
        value = parser.text(item, f"entry of {what}", "a service name")
        if isinstance(value, _Failed):
            failed = True
        elif value == service:
            parser.error(item, f"service {service!r} depends on itself; expected other services")
            failed = True
        elif value in names:
            parser.error(item, f"{value!r} is listed twice in {what}; expected each service once")
            failed = True
        else:
            names.append(value)
            depends_lines[(service, value)] = item
    return FAILED if failed else tuple(names)


def _parse_cap_add(parser: _Parser, node: Node, what: str) -> tuple[str, ...] | _Failed:
    items = parser.sequence(node, what, "capability names (NET_ADMIN, ...)")
    if isinstance(items, _Failed):
        return FAILED
    caps: list[str] = []
    failed = False
    for item in items:
        value = parser.text(item, f"entry of {what}", "a capability name")
        if isinstance(value, str) and _CAPABILITY.fullmatch(value):
            caps.append(value)
        else:
            if isinstance(value, str):
                parser.error(item, f"bad capability {value!r} in {what}; expected a name like NET_ADMIN")
            failed = True
    return FAILED if failed else tuple(caps)


def _check_cross_references(
    parser: _Parser,
    entries: Mapping[str, tuple[ScalarNode, Node]],
    services: Mapping[str, Service],
    depends_lines: Mapping[tuple[str, str], Node],
) -> None:
    declared = [name for name in entries if _SERVICE_NAME.fullmatch(name)]
    for (service, target), node in depends_lines.items():
        if target not in entries:
            others = [n for n in declared if n != service]
            parser.error(
                node,
                f"service {service!r} depends on unknown service {target!r}; expected "
                + (f"one of: {', '.join(others)}" if others else "a service defined in this file (it has no other)")
                + _did_you_mean(target, others),
            )

    # Node names double as network aliases beside service names, so `web-1` may not name a service while
    # service `web` has a node `web-1`.
    node_owner = {node: s.name for s in services.values() for node in s.node_names()}
    for name, (key_node, _value) in entries.items():
        if name in node_owner:
            parser.error(
                key_node,
                f"service name {name!r} is also the name of node {name} of service {node_owner[name]!r}; "
                f"expected a name that is not <service>-<n>",
            )

    order = list(entries)
    edges = [(a, b) for (a, b) in depends_lines if b in entries]  # file order, for stable reports
    while True:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for a, b in edges:
            sorter.add(a, b)
        try:
            sorter.prepare()
            return
        except graphlib.CycleError as exc:
            # graphlib lists the cycle as [x, ..., x] with each node a dependency of the next; report it
            # as "a depends on b depends on ... a", starting from the service defined first.
            ring = list(reversed(exc.args[1][:-1]))
            start = min(range(len(ring)), key=lambda i: order.index(ring[i]))
            ring = ring[start:] + ring[:start]
            parser.error(
                depends_lines[(ring[0], ring[1 % len(ring)])],
                f"dependency cycle: {' -> '.join([*ring, ring[0]])}; expected depends_on to form no cycle",
            )
            edges.remove((ring[0], ring[1 % len(ring)]))  # break it and look for others


# --------------------------------------------------------------------------------------- command options


def parse_param_options(items: Iterable[str]) -> dict[str, str]:
    """`["n=2", "mode=sync"]` -> `{"n": "2", "mode": "sync"}`; the loader types them like the defaults."""
    params: dict[str, str] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _PARAM_NAME.fullmatch(key.strip()):
            problems.append(LocatedError("--param", None, f"{item!r}: expected NAME=VALUE"))
            continue
        params[key.strip()] = value
    if problems:
        raise TopologyError(problems)
    return params


def parse_set_options(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`["courier.drop_after_ack=0.1"]` -> `{"courier": {"drop_after_ack": 0.1}}`.

    Values are read as YAML scalars (`0.1` a float, `true` a bool, `3` an int); anything else stays a string.
    """
    result: dict[str, dict[str, Any]] = {}
    problems = []
    for item in items:
        target, sep, raw = item.partition("=")
        service, dot, switch = target.strip().partition(".")
        if not sep or not dot or not _SERVICE_NAME.fullmatch(service) or not _SWITCH_NAME.fullmatch(switch):
            problems.append(LocatedError("--set", None, f"{item!r}: expected SERVICE.SWITCH=VALUE"))
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        result.setdefault(service, {})[switch] = value if _is_plain_scalar(value) else raw
    if problems:
        raise TopologyError(problems)
    return result
