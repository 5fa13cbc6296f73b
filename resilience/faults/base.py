"""What every fault shares: the Fault protocol, the catalogue of kinds, descriptions and their round trip.

A fault is a small mutable dataclass. Its parameters say what to do; a few fields are filled in by
`resolve` or `inject` when left empty (e.g. which node was the primary), so that its description
after injection holds everything a later process needs to recover it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology

Facts = dict[str, Any]
T = TypeVar("T")


class FaultError(RuntimeError):
    """A fault could not be applied or removed; the message names the fault, the node and what went wrong."""


class FaultSpecError(ValueError):
    """A fault's parameters or description are malformed; the message says which and what was expected."""


@runtime_checkable
class Fault(Protocol):
    """Jepsen's nemesis in our words: one reversible fault."""

    id: str

    @property
    def kind(self) -> str:
        """e.g. "kill", "partition", "pg-failover"."""
        ...

    def targets(self) -> list[str]:
        """The nodes it acts on."""
        ...

    def inject(self, run: Backend) -> Facts:
        """Apply it; return facts to record (e.g. the new primary)."""
        ...

    def recover(self, run: Backend) -> Facts:
        """Remove it. Idempotent: safe twice, or after an inject that crashed half-way."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters (and learned state) from which `fault_from_description` re-creates it."""
        ...


FAULT_KINDS: dict[str, type[BaseFault]] = {}


def new_fault_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(3)}"


@dataclasses.dataclass(kw_only=True)
class BaseFault:
    """The shared implementation. Subclasses are kw_only dataclasses that set `kind` and register themselves."""

    kind: ClassVar[str] = ""
    # The parameters that the text form takes positionally, in order (see from_args).
    positional: ClassVar[tuple[str, ...]] = ()

    id: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind in FAULT_KINDS and FAULT_KINDS[cls.kind].__qualname__ != cls.__qualname__:
                raise TypeError(f"fault kind {cls.kind!r} is defined twice")
            FAULT_KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        if not self.id:
            self.id = new_fault_id(self.kind)
        self.validate()

    # -- to be specialised ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check parameters that do not need a topology; raise FaultSpecError."""

    def targets(self) -> list[str]:
        raise NotImplementedError

    def resolve(self, run: Backend) -> None:
        """Fill in what depends on the run's current state (e.g. today's primary) before registration."""

    def inject(self, run: Backend) -> Facts:
        raise NotImplementedError

    def recover(self, run: Backend) -> Facts:
        raise NotImplementedError

    def check_topology(self, topology: Topology) -> list[str]:
        """Problems with this fault on `topology` (unknown nodes, missing services); empty when fine."""
        return unknown_nodes(topology, self.targets())

    def footprint(self, topology: Topology) -> Counter[str]:
        """How many nodes of each service this fault takes out of service while it lasts."""
        return Counter(topology.node(node).service for node in self.targets())

    # -- shared -------------------------------------------------------------------------------------------
    def parameters(self) -> dict[str, Any]:
        """The description without kind and id: what the history records alongside them."""
        return {k: v for k, v in self.describe().items() if k not in ("kind", "id")}

    def describe(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"kind": self.kind, **msgspec.to_builtins(fields)}

    @classmethod
    def from_description(cls, description: Mapping[str, Any], where: str = "") -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in description.items() if k != "kind"}
        unknown = sorted(set(values) - names)
        if unknown:
            raise FaultSpecError(
                f"{_at(where)}{cls.kind} has no parameter {', '.join(map(repr, unknown))}; "
                f"expected some of: {', '.join(sorted(names - {'id'}))}"
            )
        try:
            return msgspec.convert(values, type=cls, strict=False)
        except msgspec.ValidationError as exc:
            raise FaultSpecError(f"{_at(where)}{cls.kind}: {_plain(exc, cls.kind)}") from None
        except FaultSpecError as exc:
            raise FaultSpecError(f"{_at(where)}{exc}") from None

    def to_args(self) -> list[str]:
        """The text form's arguments (read back by from_args): the positional parameters while they are
        set, then each other parameter not at its default as NAME=VALUE."""
        positional: list[str] = []
        options: list[str] = []
        for field in dataclasses.fields(self):
            if field.name == "id":
                continue
            value = getattr(self, field.name)
            if field.default is not dataclasses.MISSING:
                default: Any = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = dataclasses.MISSING
            if value == default:
                continue
            if field.name in self.positional and len(positional) == self.positional.index(field.name):
                positional.append(format_value(value))
            else:
                options.append(f"{field.name}={format_value(value)}")
        return positional + options

    @classmethod
    def from_args(cls, args: list[str], options: dict[str, str], topology: Topology | None) -> Self:
        """Build from the text form: `args` fill `positional` in order; `options` are NAME=VALUE.

        A parameter typed as a list takes a comma-separated value.
        """
        if len(args) > len(cls.positional):
            expected = " ".join(f"<{p}>" for p in cls.positional) or "no positional arguments"
            raise FaultSpecError(f"{cls.kind}: too many arguments {' '.join(args)!r}; expected {expected}")
        values: dict[str, Any] = dict(zip(cls.positional, args, strict=False))
        for key, value in options.items():
            name = key.replace("-", "_")
            if name in values:
                raise FaultSpecError(f"{cls.kind}: {key} is given twice")
            values[name] = value
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, value in list(values.items()):
            if isinstance(value, str) and "list" in str(types.get(name, "")):
                values[name] = [part for part in value.split(",") if part]
        return cls.from_description(values)


def _at(where: str) -> str:
    return f"{where}: " if where else ""


def format_value(value: Any) -> str:
    """A parameter as the text form writes it (the inverse of from_args' coercion)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    return str(value)


def _plain(exc: msgspec.ValidationError, kind: str) -> str:
    """msgspec's wording in ours: `Expected int, got str - at $.node` -> `expected int, got str (parameter node)`."""
    text = str(exc).removeprefix(f"{kind}: ")
    missing = re.fullmatch(r"Object missing required field `(\w+)`", text)
    if missing:
        return f"missing parameter {missing.group(1)}"
    head, sep, path = text.rpartition(" - at `$.")
    head = head[:1].lower() + head[1:]
    return f"{head} (parameter {path.rstrip('`')})" if sep else text


def fault_from_description(description: Mapping[str, Any], where: str = "") -> BaseFault:
    """Re-create a fault from its `describe()` (e.g. from the registry file of a crashed run)."""
    kind = description.get("kind")
    if not isinstance(kind, str) or kind not in FAULT_KINDS:
        raise FaultSpecError(
            f"{_at(where)}unknown fault kind {kind!r}; expected one of: {', '.join(sorted(FAULT_KINDS))}"
        )
    return FAULT_KINDS[kind].from_description(description, where)


def unknown_nodes(topology: Topology, nodes: Iterable[str]) -> list[str]:
    known = [n.name for n in topology.nodes()]
    problems = []
    for node in nodes:
        if node not in known:
            close = difflib.get_close_matches(node, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{node!r} is not a node of topology {topology.name}{hint}")
    return problems


def expand_nodes(topology: Topology | None, names: Iterable[str]) -> list[str]:
    """Node names, with a service or role name standing for all of its nodes (needs the topology)."""
    nodes: list[str] = []
    for name in names:
        if topology is not None and name not in {n.name for n in topology.nodes()}:
            members = [n.name for n in topology.nodes() if name in (n.service, topology.services[n.service].role.value)]
            if members:
                nodes.extend(m for m in members if m not in nodes)
                continue
        if name not in nodes:
            nodes.append(name)
    return nodes


def nodes_with_role(run: Backend, role: str) -> list[str]:
    nodes = run.nodes_of(role)
    if not nodes:
        raise FaultError(f"run {run.run_id} has no node with role or service {role!r}")
    return nodes


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> tuple[T, float]:
    """Poll `check` until it returns something other than None/False; return it and the seconds taken.

    Exceptions from `check` count as "not yet" (the thing being waited for is usually mid-restart);
    the last one is quoted when the wait times out.
    """
    started = time.monotonic()
    deadline = started + timeout
    last_error = ""
    while True:
        try:
            result = check()
        except Exception as exc:  # a probe of a node mid-restart fails in many ways; all mean "not yet"
            result, last_error = None, f"{type(exc).__name__}: {exc}"
        if result is not None and result is not False:
            return result, time.monotonic() - started
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise FaultError(f"{what}: not within {timeout:.0f} s{detail}")
        time.sleep(interval)


def bring_back(run: Backend, node: str, wait_healthy: bool, health_timeout: float | None) -> Facts:
    """Start `node` unless it runs (unpausing it if frozen) or its restart policy is about to start it (it
    is "restarting"); then, if asked, wait until its health checks pass."""
    state = run.state(node)
    if state == "missing":
        raise FaultError(f"{node} of run {run.run_id} no longer exists: nothing to bring back")
    facts: Facts = {"was": state}
    if state == "paused":
        run.unpause(node)
    elif state not in ("running", "restarting"):
        run.start(node)
    if wait_healthy:
        facts["healthy_after_s"] = round(run.wait_healthy(node, timeout=health_timeout), 3)
    return facts
