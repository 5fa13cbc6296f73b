"""Reading a certification plan (`kind: certification`): `load_plan(PATH)`.

Read with the topology files' YAML reader, so every mistake is `FILE:LINE: what; expected ...`, all of a file's
mistakes at once, misspelt keys with a suggestion, never a traceback. The format is in docs/certify.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from resilience.target import Target, TargetError, load_target
from resilience.topology.errors import LocatedError, TopologyError, did_you_mean
from resilience.topology.loader import (
    check_kind,
    check_version,
    load_topology,
    read_description,
    read_yaml_file,
    read_yaml_root,
)
from resilience.topology.model import Topology
from resilience.topology.yaml_reader import Failed, YamlReader

KIND = "certification"
# Three faults that each hit a different tier, and the catalogue's shortest: a kill of each app tier
# that carries messages, and an asynchronous Postgres failover (the recovery point a release may change).
CERTIFICATION_SET = ("kill-courier", "kill-mailroom", "pg-failover-async")
DEFAULT_REPEATS = 3
_TOP_KEYS = (
    "version",
    "kind",
    "name",
    "description",
    "target",
    "current",
    "candidate",
    "experiments",
    "workload",
    "seeds",
    "repeats",
    "upgrade",
    "thresholds",
)
_TARGET_KEYS = ("topology", "params", "deployment", "hosts")
_VERSION_KEYS = ("version", "images", "versions")
_WORKLOAD_KEYS = ("rate", "duration", "reply_timeout", "resend_attempts")
_UPGRADE_KEYS = ("rate", "duration", "quiesce_timeout")
_THRESHOLD_KEYS = (
    "latency_percentile",
    "latency_growth_pct",
    "rto_growth_s",
    "throughput_drop_pct",
    "confidence",
    "min_repeats",
)
LATENCY_PERCENTILES = (50, 95, 99)


class PlanError(TopologyError):
    """A plan that cannot be used as written: every mistake, `FILE:LINE: what; expected ...`, one a line."""


@dataclass(frozen=True)
class Thresholds:
    """What a timing may do before the candidate is refused (docs/certify.md, "The decision rule")."""

    # Which MO→reply latency percentile under the fault is compared. p95, not p99: a failover's few MOs that
    # courier spools in its sub-second outage are replied ~30 s later (the spool flush) in every version,
    # and whether one lands there is a lottery that makes p99 bimodal (docs/certify.md, "Measured here");
    # the outage itself is judged by the RTO.
    latency_percentile: int = 95
    latency_growth_pct: float = 50.0  # that latency, candidate over current
    rto_growth_s: float = 5.0  # the longest outage (no acknowledged MO) of a fault, candidate minus current
    throughput_drop_pct: float = 10.0  # acknowledged MOs per second, current over candidate
    confidence: float = 0.9  # of the bootstrap interval of each difference of medians
    min_repeats: int = 3  # fewer runs a version: a timing over its threshold is inconclusive, never a regression


@dataclass(frozen=True)
class Version:
    label: str  # what the certificate calls it, e.g. 9.3.0
    images: dict[str, str]  # service -> image (Docker), or the {version} its hosts file's upgrade command takes


@dataclass(frozen=True)
class PhaseLoad:
    """The workload of the rolling upgrade and rollback phases: long enough to cover every tier's roll."""

    rate: float = 3.0
    # Rolling courier, mailroom and web (two nodes each) took 16.5 s here, starting 3 s in; a minute keeps
    # both versions serving side by side under load well past it. A staging deployment whose upgrade
    # commands take longer sets its own (`upgrade: {duration: ...}`).
    duration: float = 60.0
    quiesce_timeout: float = 90.0


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    topology_file: Path
    topology: Topology
    current: Version
    candidate: Version
    experiments: tuple[str, ...] = CERTIFICATION_SET
    # rate, duration, reply_timeout, resend_attempts over every experiment's own (the last two over the
    # upgrade's and rollback's too)
    workload: dict[str, float] = field(default_factory=dict)
    seeds: tuple[int, ...] = (1, 2, 3)
    upgrade: PhaseLoad = field(default_factory=PhaseLoad)
    thresholds: Thresholds = field(default_factory=Thresholds)
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the file as read: copied into the certificate, so it says exactly what was certified
    deployment: Target | None = None  # a user's deployment (docs/target.md) instead of a Docker topology

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def services(self) -> tuple[str, ...]:
        """The services the upgrade moves, in the order the candidate lists them (the order they roll in)."""
        return tuple(self.candidate.images)


def load_plan(path: Path | str, catalogue: tuple[str, ...] | None = None) -> Plan:
    """The plan at `path`; raise PlanError listing every mistake in it. `catalogue`: the experiment names
    allowed (default: the catalogue in experiments/)."""
    path = Path(path)
    return parse_plan(read_yaml_file(path, "a certification plan YAML file", PlanError.single), path, catalogue)


def _catalogue_names() -> tuple[str, ...]:
    from resilience.cli_experiments import catalogue

    return tuple(entry.name for entry in catalogue())


def parse_plan(text: str, path: Path | str, catalogue: tuple[str, ...] | None = None) -> Plan:
    """Validate plan YAML `text` as if read from `path` (which names the file in errors and anchors `topology`)."""
    path = Path(path)
    file = str(path)
    try:
        loader, root = read_yaml_root(text, file, "version, kind, target, current, candidate, ...")
    except TopologyError as exc:
        raise PlanError(exc.errors) from None
    reader = YamlReader(file, loader, {})
    top = reader.mapping(root, "the plan")
    if isinstance(top, Failed):
        raise PlanError(reader.errors)
    reader.check_keys(top, _TOP_KEYS, "the plan")
    check_version(reader, root, top)
    check_kind(reader, root, top, KIND, "a certification plan")
    name = path.stem
    if "name" in top:
        value = reader.text(top["name"][1], "name")
        if isinstance(value, str) and value.strip():
            name = value.strip()
    description = read_description(reader, top)

    topology_file, topology, params = _target(reader, top, root, path)
    deployment = _deployment(reader, top, path)
    if deployment is not None:
        topology_file, topology = _deployment_topology(reader, top, deployment)
    key = "versions" if deployment is not None else "images"
    current_node, candidate_node = top.get("current", (None, None))[1], top.get("candidate", (None, None))[1]
    if candidate_node is None:
        reader.error(root, f"missing 'candidate'; expected `candidate: {{version: LABEL, {key}: {{SERVICE: ...}}}}`")
    candidate = _version(reader, candidate_node, "candidate", topology, True, deployment) if candidate_node else None
    current = _version(reader, current_node, "current", topology, False, deployment) if current_node else None
    if candidate is not None and deployment is not None:
        current = _deployment_current(reader, current, current_node or root, candidate)
        _check_upgrade_declared(reader, candidate_node, candidate, deployment)
    elif candidate is not None:
        current = _complete_current(reader, current, current_node or root, candidate, topology)

    experiments: tuple[str, ...] = CERTIFICATION_SET
    if "experiments" in top:
        experiments = _experiments(reader, top["experiments"][1], catalogue)
    workload = _numbers(reader, top, "workload", _WORKLOAD_KEYS)
    seeds = _seeds(reader, top)
    phase = _numbers(reader, top, "upgrade", _UPGRADE_KEYS)
    thresholds = _thresholds(reader, top)
    if reader.errors or candidate is None or current is None or topology is None or topology_file is None:
        raise PlanError(reader.errors or [LocatedError(file, None, "the plan is incomplete")])
    return Plan(
        name=name,
        path=path,
        topology_file=topology_file,
        topology=topology,
        current=current,
        candidate=candidate,
        experiments=experiments,
        workload=workload,
        seeds=seeds,
        upgrade=PhaseLoad(**phase),
        thresholds=thresholds,
        description=description,
        params=params,
        text=text,
        deployment=deployment,
    )


def _target(
    reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]], root: Node, path: Path
) -> tuple[Path | None, Topology | None, dict[str, Any]]:
    expected = "`target: {topology: FILE}` (a Docker topology, relative to the plan)"
    if "target" not in top:
        reader.error(root, f"missing 'target'; expected {expected}")
        return None, None, {}
    node = top["target"][1]
    entries = reader.mapping(node, "target")
    if isinstance(entries, Failed):
        return None, None, {}
    reader.check_keys(entries, _TARGET_KEYS, "target")
    if "hosts" in entries:
        reader.error(
            entries["hosts"][0],
            "a hosts file alone does not say how to reach the deployment's API, channel and database; expected "
            "`target: {deployment: NAME}`, a target file naming its hosts file (docs/target.md, docs/certify.md)",
        )
    if "deployment" in entries:
        if "topology" in entries or "params" in entries:
            reader.error(
                entries["deployment"][0],
                "give a deployment or a Docker topology (with its params), not both; expected one of "
                "`target: {deployment: NAME}` and `target: {topology: FILE}`",
            )
        return None, None, {}
    params: dict[str, Any] = {}
    if "params" in entries:
        values = reader.mapping(entries["params"][1], "params of target")
        if not isinstance(values, Failed):
            for key, (_k, value_node) in values.items():
                value = reader.scalar(value_node, f"param {key!r}", "an int, float, string or boolean")
                if not isinstance(value, Failed):
                    params[key] = value
    if "topology" not in entries:
        if "hosts" not in entries:
            reader.error(node, f"missing 'topology' in target; expected {expected} or `target: {{deployment: NAME}}`")
        return None, None, params
    value = reader.text(entries["topology"][1], "topology of target", "the path of a topology file")
    if isinstance(value, Failed):
        return None, None, params
    topology_file = Path(value.strip())
    if not topology_file.is_absolute():
        topology_file = path.parent / topology_file
    try:
        topology = load_topology(topology_file, params)
    except TopologyError as exc:
        # Its own mistakes, located in the topology file; the line here says which plan named it.
        reader.errors.extend(exc.errors)
        reader.error(
            entries["topology"][1],
            f"topology {str(topology_file)!r} cannot be used (above); expected a valid Docker topology file",
        )
        return None, None, params
    return topology_file, topology, params


def _deployment(reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]], path: Path) -> Target | None:
    """The target file `target: {deployment: NAME}` names (./targets/NAME.yaml, or a path relative to the
    plan), with its hosts file: the faults and the rolls act on its nodes over SSH."""
    if "target" not in top or not isinstance(top["target"][1], MappingNode):
        return None
    entries = reader.mapping(top["target"][1], "target")
    if isinstance(entries, Failed) or "deployment" not in entries:
        return None
    node = entries["deployment"][1]
    value = reader.text(node, "deployment of target", "a target name (./targets/NAME.yaml) or a target file")
    if not isinstance(value, str) or not value.strip():
        if isinstance(value, str):
            reader.error(node, "deployment of target is empty; expected a target name or a target file")
        return None
    name = value.strip()
    relative = path.parent / name
    try:
        deployment = load_target(relative if ("/" in name or name.endswith((".yaml", ".yml"))) else name)
    except TargetError as exc:
        reader.errors.extend(exc.errors)
        reader.error(node, f"target {name!r} cannot be used (above); expected a valid target file (docs/target.md)")
        return None
    if deployment.hosts_file is None:
        reader.error(
            node,
            f"target {deployment.name} ({deployment.path}) names no hosts file, so nothing can be upgraded or "
            "faulted; expected `hosts: FILE` in it (docs/hosts.md)",
        )
        return None
    return deployment


def _deployment_topology(
    reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]], deployment: Target
) -> tuple[Path | None, Topology | None]:
    try:
        hosts = deployment.load_hosts()
    except TargetError as exc:
        reader.errors.extend(exc.errors)
        return None, None
    if hosts is None or deployment.hosts_file is None:
        return None, None
    return deployment.hosts_file, hosts.as_topology()


def _version(
    reader: YamlReader,
    node: Node,
    what: str,
    topology: Topology | None,
    required: bool,
    deployment: Target | None = None,
) -> Version | None:
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return None
    reader.check_keys(entries, _VERSION_KEYS, what)
    key, wrong = ("versions", "images") if deployment is not None else ("images", "versions")
    singular, example = ("version", "the version its upgrade command installs, e.g. 9.3.0") if deployment else (
        "image", "an image, e.g. repo:tag")  # fmt: skip
    if wrong in entries:
        why = (
            "a deployment is moved by its hosts file's upgrade commands, not images"
            if deployment is not None
            else "a Docker topology is moved by images; `versions` is for a deployment's upgrade commands"
        )
        reader.error(entries[wrong][0], f"{wrong} in {what}: {why}; expected `{key}: {{SERVICE: ...}}`")
    images: dict[str, str] = {}
    if key not in entries:
        if required:
            reader.error(node, f"missing '{key}' in {what}; expected a mapping SERVICE: {singular.upper()}")
    else:
        image_entries = reader.mapping(entries[key][1], f"{key} of {what}")
        if not isinstance(image_entries, Failed):
            for service, (key_node, value_node) in image_entries.items():
                image = reader.text(value_node, f"{singular} of {service} in {what}", example)
                if not isinstance(image, str):
                    continue
                if not image.strip():
                    reader.error(value_node, f"{singular} of {service} in {what} is empty; expected {example}")
                elif topology is not None and service not in topology.services:
                    reader.error(
                        key_node,
                        f"{what}: the topology has no service {service!r}; expected one of "
                        f"{', '.join(sorted(topology.services))}" + did_you_mean(service, topology.services),
                    )
                else:
                    images[service] = image.strip()
            if required and not image_entries:
                expected_map = f"a mapping SERVICE: {singular.upper()}"
                reader.error(entries[key][1], f"{key} of {what} is empty; expected {expected_map}")
    label = ""
    if "version" in entries:
        value = reader.text(entries["version"][1], f"version of {what}", "a label, e.g. 9.3.0")
        label = value.strip() if isinstance(value, str) else ""
    return Version(label=label, images=images)


def _deployment_current(reader: YamlReader, current: Version | None, node: Node, candidate: Version) -> Version | None:
    """On a deployment the current version names every service the candidate does: there is no image to
    read it from, and the rollback (and a run cut short) moves the nodes back to it."""
    versions = dict(current.images) if current is not None else {}
    for service in versions:
        if service not in candidate.images:
            reader.error(node, f"current names service {service!r} but candidate does not; expected the same services")
    missing = [service for service in candidate.images if service not in versions]
    if missing:
        reader.error(
            node,
            f"current names no version for {', '.join(missing)}; expected `versions: {{SERVICE: VERSION}}` for every "
            "service the candidate moves (a deployment has no image to read the current one from)",
        )
    ordered = {service: versions[service] for service in candidate.images if service in versions}
    if ordered == candidate.images:
        reader.error(node, "current and candidate name the same versions; expected a candidate that differs")
    return Version(label=current.label if current is not None else "", images=ordered)


def _check_upgrade_declared(reader: YamlReader, node: Node, candidate: Version, deployment: Target) -> None:
    try:
        hosts = deployment.load_hosts()
    except TargetError:
        return  # reported with the topology
    if hosts is None:
        return
    for service in candidate.images:
        declared = hosts.services.get(service)
        if declared is not None and declared.upgrade is None:
            reader.error(
                node,
                f"candidate moves {service}, but hosts file {hosts.path} declares no `upgrade:` for it; expected "
                f"`upgrade: {{command: COMMAND}}` with {{version}} under {service} there (docs/hosts.md)",
            )


def _complete_current(
    reader: YamlReader, current: Version | None, node: Node, candidate: Version, topology: Topology | None
) -> Version | None:
    """The current version names the same services as the candidate; one it leaves out runs the topology's image."""
    images = dict(current.images) if current is not None else {}
    for service in images:
        if service not in candidate.images:
            reader.error(
                node,
                f"current names service {service!r} but candidate does not; expected the same services in both "
                "(the candidate's are the ones rolled)",
            )
    if topology is not None:
        for service in candidate.images:
            if service in topology.services:
                images.setdefault(service, topology.services[service].image)
    ordered = {service: images[service] for service in candidate.images if service in images}
    if ordered == candidate.images:
        reader.error(node, "current and candidate run the same images; expected a candidate that differs")
    return Version(label=current.label if current is not None else "", images=ordered)


def _experiments(reader: YamlReader, node: Node, catalogue: tuple[str, ...] | None) -> tuple[str, ...]:
    items = reader.sequence(node, "experiments", "experiment names (`resilience list`)")
    if isinstance(items, Failed):
        return ()
    known = catalogue if catalogue is not None else _catalogue_names()
    names: list[str] = []
    for item in items:
        value = reader.text(item, "experiment name")
        if not isinstance(value, str):
            continue
        name = value.strip()
        if name in ("rolling-upgrade", "rolling-restart"):
            reader.error(item, f"{name} moves the versions itself; expected a fault experiment (certify rolls them)")
        elif name not in known:
            reader.error(
                item,
                f"no experiment {name!r} in the catalogue; expected a name `resilience list` shows"
                + did_you_mean(name, known),
            )
        elif name in names:
            reader.error(item, f"experiment {name!r} is listed twice; expected each once (repeats: runs it again)")
        else:
            names.append(name)
    if not items:
        reader.error(
            node,
            "experiments is empty; expected at least one name (or leave the key out for "
            f"the certification set: {', '.join(CERTIFICATION_SET)})",
        )
    return tuple(names)


def _number(reader: YamlReader, node: Node, what: str, minimum: float, maximum: float | None = None) -> float | Failed:
    expected = f"a number > {minimum}" if maximum is None else f"a number in ({minimum}, {maximum}]"
    value = reader.scalar(node, what, expected)
    if isinstance(value, Failed):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return reader.error(node, f"{what} must be {expected}; got {reader.kind_of(node)}")
    if value <= minimum or (maximum is not None and value > maximum):
        return reader.error(node, f"{what} must be {expected}; got {value}")
    return float(value)


def _numbers(
    reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]], key: str, allowed: tuple[str, ...]
) -> dict[str, float]:
    if key not in top:
        return {}
    entries = reader.mapping(top[key][1], key)
    if isinstance(entries, Failed):
        return {}
    reader.check_keys(entries, allowed, key)
    numbers: dict[str, float] = {}
    for name, (_k, value_node) in entries.items():
        if name == "resend_attempts":
            attempts = reader.integer(value_node, f"{name} of {key}", 0, 10)
            if not isinstance(attempts, Failed):
                numbers[name] = attempts
        elif name in allowed:
            value = _number(reader, value_node, f"{name} of {key}", 0.0)
            if not isinstance(value, Failed):
                numbers[name] = value
    return numbers


def _seeds(reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]]) -> tuple[int, ...]:
    if "seeds" in top and "repeats" in top:
        reader.error(top["repeats"][0], "give seeds or repeats, not both; expected seeds: [1, 2, 3] or repeats: 3")
        return ()
    if "repeats" in top:
        repeats = reader.integer(top["repeats"][1], "repeats", 1, 50)
        return tuple(range(1, repeats + 1)) if isinstance(repeats, int) else ()
    if "seeds" not in top:
        return tuple(range(1, DEFAULT_REPEATS + 1))
    items = reader.sequence(top["seeds"][1], "seeds", "integers")
    if isinstance(items, Failed):
        return ()
    seeds: list[int] = []
    for item in items:
        seed = reader.integer(item, "seed", 0)
        if isinstance(seed, int):
            if seed in seeds:
                reader.error(item, f"seed {seed} is listed twice; expected distinct seeds (each is one repeat)")
            seeds.append(seed)
    if not items:
        reader.error(top["seeds"][1], "seeds is empty; expected at least one seed")
    return tuple(seeds)


def _thresholds(reader: YamlReader, top: Mapping[str, tuple[ScalarNode, Node]]) -> Thresholds:
    if "thresholds" not in top:
        return Thresholds()
    entries = reader.mapping(top["thresholds"][1], "thresholds")
    if isinstance(entries, Failed) or not isinstance(top["thresholds"][1], MappingNode):
        return Thresholds()
    reader.check_keys(entries, _THRESHOLD_KEYS, "thresholds")
    values: dict[str, Any] = {}
    for name, (_k, value_node) in entries.items():
        what = f"{name} of thresholds"
        if name == "min_repeats":
            value: Any = reader.integer(value_node, what, 2, 50)
        elif name == "latency_percentile":
            value = reader.integer(value_node, what, 50, 99)
            if not isinstance(value, Failed) and value not in LATENCY_PERCENTILES:
                expected = ", ".join(map(str, LATENCY_PERCENTILES))
                value = reader.error(value_node, f"{what} is {value}; expected one of {expected}")
        elif name == "confidence":
            value = _number(reader, value_node, what, 0.5, 0.999)
        elif name in _THRESHOLD_KEYS:
            value = _number(reader, value_node, what, 0.0)
        else:
            continue
        if not isinstance(value, Failed):
            values[name] = value
    return Thresholds(**values)


__all__ = [
    "CERTIFICATION_SET",
    "KIND",
    "LATENCY_PERCENTILES",
    "PhaseLoad",
    "Plan",
    "PlanError",
    "Thresholds",
    "Version",
    "load_plan",
    "parse_plan",
]
