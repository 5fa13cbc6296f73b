"""The hosts topology: an existing deployment (VMs, bare metal) described by the hosts it runs on and what runs
where, with no image. The hosts backend (resilience/backends/hosts.py) acts on it over SSH.

A hosts file is read with the same YAML reader as a topology file (yaml_reader.py) and reports every mistake
as `FILE:LINE: what; expected ...`, all at once. The schema is documented in docs/hosts.md. A file says
`kind: hosts`; faults refuse to act on its nodes unless it says `allow_faults: true`.
"""

from __future__ import annotations

import enum
import posixpath
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from resilience.topology.errors import TopologyError, did_you_mean
from resilience.topology.loader import (
    check_kind,
    check_version,
    parse_health,
    parse_ports,
    parse_restart,
    parse_timeout,
    read_description,
    read_name,
    read_yaml_file,
    read_yaml_root,
)
from resilience.topology.model import (
    ROLE_NAMES,
    SERVICE_NAME,
    HealthCheck,
    Port,
    RestartPolicy,
    Role,
    Service,
    Topology,
)
from resilience.topology.yaml_reader import FAILED, Failed, YamlReader

KIND = "hosts"
_TOP_KEYS = ("version", "kind", "name", "description", "allow_faults", "ssh", "hosts", "services")
_HOST_KEYS = ("address", "peer_address", "ports", "ssh")
_SSH_KEYS = ("user", "port", "identity_file", "ssh_config", "sudo", "sudo_user", "connect_timeout")
_CONTROL_KEYS = ("systemd", "supervisor", "container")
_SERVICE_KEYS = (
    "role",
    "nodes",
    *_CONTROL_KEYS,
    "ports",
    "logs",
    "health",
    "health_timeout",
    "restart",
    "failover",
    "haproxy",
    "upgrade",
)
_NODE_KEYS = ("host", *_CONTROL_KEYS, "logs")
_LOG_KINDS = ("journald", "file")
_PG_METHODS = ("pg_ctl", "patronictl", "repmgr")
_UPGRADE_KEYS = ("command", "rollback", "run_on", "timeout", "restart")
_RUN_ON = ("host", "harness")
# What a declared command may name, filled in when it runs (str.format fields): {node} {host} {address} are
# the node the command is run for, its host and the address its peers dial it at.
_NODE_FIELDS = ("node", "host", "address")
PROMOTE_FIELDS = (*_NODE_FIELDS, "old_primary", "old_primary_host", "old_primary_address")
REJOIN_FIELDS = (*_NODE_FIELDS, "new_primary", "new_primary_host", "new_primary_address")
UPGRADE_FIELDS = (*_NODE_FIELDS, "version")
# Commands of the failover methods that have a standard tool, when the file gives none (docs/hosts.md).
# Patroni: a manual failover to the standby's member (named as its host, Patroni's default); the old
# primary's Patroni rewinds or re-clones it when it starts again, so its rejoin is starting the node.
# repmgr: run as postgres with the packages' configuration file; the rejoin rewinds the old primary
# against the new one and starts it.
DEFAULT_PG_COMMANDS: dict[str, dict[str, tuple[str, ...]]] = {
    "patronictl": {
        "promote": ("patronictl", "-c", "/etc/patroni/patroni.yml", "failover", "--candidate", "{host}", "--force"),
        "rejoin": (),
    },
    "repmgr": {
        "promote": ("runuser", "-u", "postgres", "--", "repmgr", "-f", "/etc/repmgr.conf", "standby", "promote"),
        "rejoin": (
            "runuser", "-u", "postgres", "--", "repmgr", "-f", "/etc/repmgr.conf", "node", "rejoin",
            "-d", "host={new_primary_address} user=repmgr dbname=repmgr", "--force-rewind",
        ),
    },
}  # fmt: skip
_MAX_NAME = 40
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")  # a DNS name, IPv4 or IPv6 literal
_UNIX_USER = re.compile(r"[a-z_][a-z0-9_.-]*\$?")
# systemd unit names: what `systemctl` accepts without escaping (templates such as postgresql@15-main too).
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|scope)")
_PROGRAM = re.compile(r"[A-Za-z0-9_.:-]+")  # a supervisor program, or group:program
_CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ControlKind(enum.StrEnum):
    SYSTEMD = "systemd"
    SUPERVISOR = "supervisor"
    CONTAINER = "container"


class LogKind(enum.StrEnum):
    JOURNALD = "journald"  # journalctl -u UNIT
    FILE = "file"  # a file on the host
    SUPERVISOR = "supervisor"  # supervisorctl tail
    CONTAINER = "container"  # docker logs


@dataclass(frozen=True)
class Control:
    """How a node's process is controlled on its host: a systemd unit, a supervisor program or a container."""

    kind: ControlKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.name}"


@dataclass(frozen=True)
class LogSource:
    kind: LogKind
    name: str  # the unit, path, program or container

    @classmethod
    def default_for(cls, control: Control) -> LogSource:
        kind = {
            ControlKind.SYSTEMD: LogKind.JOURNALD,
            ControlKind.SUPERVISOR: LogKind.SUPERVISOR,
            ControlKind.CONTAINER: LogKind.CONTAINER,
        }[control.kind]
        return cls(kind, control.name)


@dataclass(frozen=True)
class SshSettings:
    """How the harness reaches a host (paramiko, through pytest-testinfra). None: paramiko's or the
    ssh_config's own default."""

    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    ssh_config: str | None = None
    sudo: bool = False
    sudo_user: str | None = None
    connect_timeout: float = 10.0

    def merged(self, overrides: Mapping[str, Any]) -> SshSettings:
        return SshSettings(**{**self.__dict__, **overrides})


@dataclass(frozen=True)
class Host:
    name: str
    address: str  # what the harness dials, for SSH and for the services' ports
    ssh: SshSettings
    peer_address: str = ""  # what the other hosts dial it at ("": its address)
    # Where the harness reaches a service port when the host's ports are forwarded (NAT, the test bed):
    # service port -> the port the harness dials at `address`. A port not listed is dialled as it is.
    ports: dict[int, int] = field(default_factory=dict, hash=False)
    line: int = 0

    @property
    def dialled_by_peers(self) -> str:
        return self.peer_address or self.address


@dataclass(frozen=True)
class HostNode:
    """One node of a service: `courier-2` is the second entry of the service's `nodes`."""

    name: str
    service: str
    host: str
    control: Control
    logs: LogSource


@dataclass(frozen=True)
class PostgresFailover:
    method: str  # pg_ctl | patronictl | repmgr: how this installation promotes a standby
    promote: tuple[str, ...]  # run on the host of the standby to promote (PROMOTE_FIELDS filled in)
    # Run on the host of the old primary, while it is down, to make it follow the new one (REJOIN_FIELDS);
    # the node is started afterwards unless the command did. Empty: starting it is enough (Patroni).
    rejoin: tuple[str, ...]


@dataclass(frozen=True)
class UpgradeCommands:
    """How a service's nodes are moved to another version on this installation (the rolling-upgrade fault)."""

    command: tuple[str, ...]  # for one node ({node} {host} {address} {version})
    rollback: tuple[str, ...]  # the same for going back ({version}: the version before); default: command
    run_on: str = "host"  # "host": on the node's host over SSH; "harness": here (ansible-playbook --limit)
    timeout: float = 600.0
    restart: bool = True  # restart the node after the command (False: the command restarts it itself)


@dataclass(frozen=True)
class SentinelFailover:
    master: str  # the master name the Sentinels watch
    sentinels: str  # the service whose nodes are the Sentinels


@dataclass(frozen=True)
class HostService:
    name: str
    role: Role
    nodes: tuple[HostNode, ...]
    ports: tuple[Port, ...] = ()
    health: tuple[HealthCheck, ...] = ()
    health_timeout: float = 60.0
    restart: RestartPolicy | None = None
    failover: PostgresFailover | SentinelFailover | None = None
    haproxy_socket: str | None = None  # the lb's runtime API socket on its host
    upgrade: UpgradeCommands | None = None
    line: int = 0


@dataclass(frozen=True)
class HostsTopology:
    name: str
    path: Path
    allow_faults: bool
    hosts: dict[str, Host] = field(hash=False)
    services: dict[str, HostService] = field(hash=False)  # in file order
    description: str = ""

    def nodes(self) -> list[HostNode]:
        return [node for service in self.services.values() for node in service.nodes]

    def node(self, name: str) -> HostNode:
        for node in self.nodes():
            if node.name == name:
                return node
        raise KeyError(f"hosts topology {self.name} has no node {name!r}")

    def host_of(self, node: str) -> Host:
        return self.hosts[self.node(node).host]

    def as_topology(self) -> Topology:
        """The run's Topology (Backend.topology): the same services and node names, the image standing for
        how each is controlled (there is none to pull)."""
        services = {
            s.name: Service(
                name=s.name,
                role=s.role,
                image=f"hosts:{s.nodes[0].control.kind.value}",
                replicas=len(s.nodes),
                ports=s.ports,
                health=s.health,
                health_timeout=s.health_timeout,
                restart=s.restart,
                line=s.line,
            )
            for s in self.services.values()
        }
        return Topology(name=self.name, path=self.path, params={}, services=services, description=self.description)


def is_hosts_file(path: Path | str) -> bool:
    """Whether a YAML file says `kind: hosts` (cheap; a file that cannot be read is not one)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.get("kind") == KIND


def load_hosts(path: Path | str) -> HostsTopology:
    """Load and validate a hosts topology file; raise TopologyError listing every mistake in it."""
    path = Path(path)
    return parse_hosts(read_yaml_file(path, "a hosts topology YAML file", TopologyError.single), path)


def parse_hosts(text: str, path: Path | str) -> HostsTopology:
    """Validate hosts topology YAML `text` as if read from `path` (which names the file in errors)."""
    path = Path(path)
    file = str(path)
    loader, root = read_yaml_root(text, file, "version, kind, hosts, services")
    topology_dir = str(path.resolve().parent)
    reader = YamlReader(file, loader, {"topology_dir": topology_dir})
    top = reader.mapping(root, "the hosts topology")
    if isinstance(top, Failed):
        raise TopologyError(reader.errors)
    reader.check_keys(top, _TOP_KEYS, "the hosts topology")

    check_version(reader, root, top)
    check_kind(reader, root, top, KIND, "a hosts topology", " (a file without it is a Docker topology)")
    name = read_name(reader, root, top, "topology")
    description = read_description(reader, top)
    allow_faults = False
    if "allow_faults" in top:
        flag = reader.boolean(top["allow_faults"][1], "allow_faults")
        allow_faults = flag if isinstance(flag, bool) else False

    defaults = SshSettings()
    if "ssh" in top:
        parsed = _parse_ssh(reader, top["ssh"][1], "ssh", topology_dir)
        defaults = defaults.merged(parsed) if not isinstance(parsed, Failed) else defaults

    hosts: dict[str, Host] = {}
    if "hosts" not in top:
        reader.error(root, "missing 'hosts'; expected a mapping of host name to {address, ssh}")
    else:
        hosts = _parse_hosts(reader, top["hosts"][1], defaults, topology_dir)

    services: dict[str, HostService] = {}
    if "services" not in top:
        reader.error(root, "missing 'services'; expected a mapping of service name to service")
    else:
        services = _parse_services(reader, top["services"][1], hosts, "hosts" in top)

    if reader.errors:
        raise TopologyError(reader.errors)
    return HostsTopology(name, path, allow_faults, hosts, services, description)


def _expand_path(value: str, topology_dir: str) -> str:
    """`~` is the harness user's home; a relative path is relative to the hosts file."""
    expanded = posixpath.expanduser(value)
    return expanded if posixpath.isabs(expanded) else posixpath.normpath(posixpath.join(topology_dir, expanded))


def _parse_ssh(reader: YamlReader, node: Node, what: str, topology_dir: str) -> dict[str, Any] | Failed:
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    before = len(reader.errors)
    reader.check_keys(entries, _SSH_KEYS, what)
    settings: dict[str, Any] = {}
    for key in ("user", "sudo_user"):
        if key in entries:
            value = reader.text(entries[key][1], f"{key} of {what}", "a user name")
            if isinstance(value, str) and _UNIX_USER.fullmatch(value):
                settings[key] = value
            elif isinstance(value, str):
                reader.error(entries[key][1], f"bad {key} {value!r} in {what}; expected a user name like deploy")
    if "port" in entries:
        port = reader.integer(entries["port"][1], f"port of {what}", 1, 65535)
        if not isinstance(port, Failed):
            settings["port"] = port
    for key in ("identity_file", "ssh_config"):
        if key in entries:
            value = reader.text(entries[key][1], f"{key} of {what}", "a path")
            if isinstance(value, str) and value.strip():
                settings[key] = _expand_path(value.strip(), topology_dir)
            elif isinstance(value, str):
                reader.error(entries[key][1], f"{key} of {what} is empty; expected a path")
    if "sudo" in entries:
        sudo = reader.boolean(entries["sudo"][1], f"sudo of {what}")
        if isinstance(sudo, bool):
            settings["sudo"] = sudo
    if "connect_timeout" in entries:
        timeout = parse_timeout(reader, entries["connect_timeout"][1], f"connect_timeout of {what}")
        if not isinstance(timeout, Failed):
            settings["connect_timeout"] = timeout
    return FAILED if len(reader.errors) > before else settings


def _parse_hosts(reader: YamlReader, node: Node, defaults: SshSettings, topology_dir: str) -> dict[str, Host]:
    entries = reader.mapping(node, "hosts", duplicate="duplicate host {key!r}")
    if isinstance(entries, Failed):
        return {}
    if not entries:
        reader.error(node, "no hosts; expected at least one host")
    hosts: dict[str, Host] = {}
    for name, (key_node, value_node) in entries.items():
        what = f"host {name!r}"
        if not _HOST_NAME.fullmatch(name):
            reader.error(key_node, f"bad host name {name!r}; expected [A-Za-z0-9][A-Za-z0-9_.-]*")
            continue
        fields = reader.mapping(value_node, what)
        if isinstance(fields, Failed):
            continue
        reader.check_keys(fields, _HOST_KEYS, what)
        addresses = {"address": name, "peer_address": ""}  # a host's name is its address unless it says otherwise
        for key in addresses:
            if key in fields:
                value = reader.text(fields[key][1], f"{key} of {what}", "a host name or IP address")
                if isinstance(value, str) and _ADDRESS.fullmatch(value):
                    addresses[key] = value
                elif isinstance(value, str):
                    reader.error(fields[key][1], f"bad {key} {value!r} of {what}; expected a host name or IP")
        ports: dict[int, int] = {}
        if "ports" in fields:
            ports = _parse_forwarded(reader, fields["ports"][1], f"ports of {what}")
        settings = defaults
        if "ssh" in fields:
            parsed = _parse_ssh(reader, fields["ssh"][1], f"ssh of {what}", topology_dir)
            if not isinstance(parsed, Failed):
                settings = defaults.merged(parsed)
        hosts[name] = Host(
            name, addresses["address"], settings, addresses["peer_address"], ports, key_node.start_mark.line + 1
        )
    return hosts


def _parse_forwarded(reader: YamlReader, node: Node, what: str) -> dict[int, int]:
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return {}
    ports: dict[int, int] = {}
    for key, (key_node, value_node) in entries.items():
        if not key.isdigit() or not 1 <= int(key) <= 65535:
            reader.error(key_node, f"bad port {key!r} in {what}; expected `SERVICE_PORT: PORT_THE_HARNESS_DIALS`")
            continue
        value = reader.integer(value_node, f"{key} in {what}", 1, 65535)
        if not isinstance(value, Failed):
            ports[int(key)] = value
    return ports


def _parse_services(
    reader: YamlReader, node: Node, hosts: Mapping[str, Host], hosts_given: bool
) -> dict[str, HostService]:
    entries = reader.mapping(node, "services", duplicate="duplicate service {key!r}")
    if isinstance(entries, Failed):
        return {}
    if not entries:
        reader.error(node, "no services; expected at least one service")
    services: dict[str, HostService] = {}
    for name, (key_node, value_node) in entries.items():
        if len(name) > _MAX_NAME or not SERVICE_NAME.fullmatch(name):
            reader.error(
                key_node, f"bad service name {name!r}; expected [a-z][a-z0-9-]* of at most {_MAX_NAME} characters"
            )
            continue
        service = _parse_service(reader, name, key_node, value_node, hosts, hosts_given)
        if service is not None:
            services[name] = service
    _check_sentinels(reader, entries, services)
    return services


def _parse_control(
    reader: YamlReader, entries: Mapping[str, tuple[ScalarNode, Node]], what: str
) -> Control | Failed | None:
    """The one control key among entries: None when there is none, FAILED when it is wrong (recorded)."""
    given = [key for key in _CONTROL_KEYS if key in entries]
    if len(given) > 1:
        reader.error(
            entries[given[1]][0],
            f"{what} says both {given[0]!r} and {given[1]!r}; expected one of: {', '.join(_CONTROL_KEYS)}",
        )
        return FAILED
    if not given:
        return None
    kind = ControlKind(given[0])
    value_node = entries[kind.value][1]
    value = reader.text(value_node, f"{kind.value} of {what}", _CONTROL_EXPECTED[kind])
    if isinstance(value, Failed):
        return FAILED
    if kind is ControlKind.SYSTEMD and _PROGRAM.fullmatch(value) and "." not in value:
        reader.error(value_node, f"systemd unit {value!r} of {what} has no suffix; expected {value}.service")
        return FAILED
    if not _CONTROL_PATTERN[kind].fullmatch(value):
        reader.error(value_node, f"bad {kind.value} {value!r} of {what}; expected {_CONTROL_EXPECTED[kind]}")
        return FAILED
    return Control(kind, value)


_CONTROL_PATTERN = {ControlKind.SYSTEMD: _UNIT, ControlKind.SUPERVISOR: _PROGRAM, ControlKind.CONTAINER: _CONTAINER}
_CONTROL_EXPECTED = {
    ControlKind.SYSTEMD: "a unit name such as courier.service",
    ControlKind.SUPERVISOR: "a supervisor program name such as courier (or group:program)",
    ControlKind.CONTAINER: "a container name on that host",
}


def _parse_logs(reader: YamlReader, node: Node, what: str) -> LogSource | Failed:
    expected = "`{journald: UNIT}` or `{file: /abs/path}`"
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    if len(entries) != 1:
        return reader.error(node, f"{what} must have exactly one key; expected {expected}")
    ((kind, (key_node, value_node)),) = entries.items()
    if kind not in _LOG_KINDS:
        return reader.error(
            key_node, f"unknown log source {kind!r} in {what}; expected {expected}" + did_you_mean(kind, _LOG_KINDS)
        )
    value = reader.text(value_node, f"{kind} of {what}", "a unit name" if kind == "journald" else "an absolute path")
    if isinstance(value, Failed):
        return FAILED
    if kind == "file" and not value.startswith("/"):
        return reader.error(value_node, f"log file {value!r} of {what} is not absolute; expected an absolute path")
    if kind == "journald" and not _UNIT.fullmatch(value):
        return reader.error(value_node, f"bad journald unit {value!r} in {what}; expected a unit like courier.service")
    return LogSource(LogKind(kind), value)


def _parse_service(
    reader: YamlReader,
    name: str,
    key_node: ScalarNode,
    node: Node,
    hosts: Mapping[str, Host],
    hosts_given: bool,
) -> HostService | None:
    what = f"service {name!r}"
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return None
    reader.check_keys(entries, _SERVICE_KEYS, what)
    before = len(reader.errors)

    role: Role | None = None
    if "role" not in entries:
        reader.error(key_node, f"{what} has no role; expected `role:` one of: {', '.join(ROLE_NAMES)}")
    else:
        value = reader.text(entries["role"][1], f"role of {what}")
        if isinstance(value, str) and value in ROLE_NAMES:
            role = Role(value)
        elif isinstance(value, str):
            reader.error(
                entries["role"][1],
                f"unknown role {value!r} for {what}; expected one of: {', '.join(ROLE_NAMES)}"
                + did_you_mean(value, ROLE_NAMES),
            )

    control = _parse_control(reader, entries, what)
    logs: LogSource | None = None
    if "logs" in entries:
        parsed_logs = _parse_logs(reader, entries["logs"][1], f"logs of {what}")
        logs = parsed_logs if isinstance(parsed_logs, LogSource) else None

    nodes: list[HostNode] = []
    if "nodes" not in entries:
        reader.error(key_node, f"{what} has no nodes; expected `nodes: [HOST, ...]` naming hosts of this file")
    else:
        nodes = _parse_nodes(reader, name, entries["nodes"][1], what, control, logs, hosts, hosts_given)

    fields: dict[str, Any] = {}
    if "ports" in entries:
        fields["ports"] = parse_ports(reader, entries["ports"][1], f"ports of {what}")
    if "health" in entries:
        fields["health"] = parse_health(reader, entries["health"][1], f"health of {what}")
    if "health_timeout" in entries:
        fields["health_timeout"] = parse_timeout(reader, entries["health_timeout"][1], f"health_timeout of {what}")
    if "restart" in entries:
        fields["restart"] = parse_restart(reader, entries["restart"][1], f"restart of {what}")
    if "failover" in entries:
        fields["failover"] = _parse_failover(reader, entries["failover"][1], f"failover of {what}", role)
    elif role is Role.POSTGRES and len(nodes) > 1:
        reader.error(
            key_node,
            f"{what} has {len(nodes)} nodes but no failover; expected `failover: {{method: "
            f"{'|'.join(_PG_METHODS)}, promote: CMD, rejoin: CMD}}`",
        )
    if "haproxy" in entries:
        fields["haproxy_socket"] = _parse_haproxy(reader, entries["haproxy"][1], f"haproxy of {what}", role)
    if "upgrade" in entries:
        fields["upgrade"] = _parse_upgrade(reader, entries["upgrade"][1], f"upgrade of {what}")

    if len(reader.errors) > before or role is None:
        return None
    return HostService(
        name=name,
        role=role,
        nodes=tuple(nodes),
        line=key_node.start_mark.line + 1,
        **{k: v for k, v in fields.items() if v is not FAILED},
    )


def _parse_nodes(
    reader: YamlReader,
    service: str,
    node: Node,
    what: str,
    control: Control | Failed | None,
    logs: LogSource | None,
    hosts: Mapping[str, Host],
    hosts_given: bool,
) -> list[HostNode]:
    items = reader.sequence(node, f"nodes of {what}", "host names or {host: NAME, ...} mappings")
    if isinstance(items, Failed):
        return []
    if not items:
        reader.error(node, f"nodes of {what} is empty; expected at least one host")
    result: list[HostNode] = []
    seen: dict[tuple[str, Control], Node] = {}
    for index, item in enumerate(items, start=1):
        item_what = f"node {index} of {what}"
        node_control, node_logs = control, logs
        if isinstance(item, ScalarNode):
            host_node: Node = item
        else:
            fields = reader.mapping(item, item_what)
            if isinstance(fields, Failed):
                continue
            reader.check_keys(fields, _NODE_KEYS, item_what)
            if "host" not in fields:
                reader.error(item, f"{item_what} has no host; expected `host: NAME`")
                continue
            host_node = fields["host"][1]
            own = _parse_control(reader, fields, item_what)
            node_control = control if own is None else own
            if "logs" in fields:
                parsed = _parse_logs(reader, fields["logs"][1], f"logs of {item_what}")
                node_logs = parsed if isinstance(parsed, LogSource) else node_logs
        host = reader.text(host_node, f"host of {item_what}", "a host name")
        if isinstance(host, Failed):
            continue
        if host not in hosts:
            if hosts_given:
                reader.error(
                    host_node,
                    f"{item_what} names unknown host {host!r}; expected one of: {', '.join(hosts) or 'none'}"
                    + did_you_mean(host, hosts),
                )
            continue
        if isinstance(node_control, Failed):
            continue
        if node_control is None:
            reader.error(
                item,
                f"{item_what} says nothing of how it is controlled; expected one of "
                f"`systemd: UNIT`, `supervisor: PROGRAM` or `container: NAME` on the service or the node",
            )
            continue
        if (host, node_control) in seen:
            reader.error(
                host_node,
                f"{item_what} repeats host {host!r} with the same {node_control}"
                f" (first at line {seen[(host, node_control)].start_mark.line + 1}); expected another host or unit",
            )
            continue
        seen[(host, node_control)] = host_node
        result.append(
            HostNode(
                name=f"{service}-{index}",
                service=service,
                host=host,
                control=node_control,
                logs=node_logs or LogSource.default_for(node_control),
            )
        )
    return result


def _parse_failover(
    reader: YamlReader, node: Node, what: str, role: Role | None
) -> PostgresFailover | SentinelFailover | Failed:
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    if role is Role.POSTGRES:
        reader.check_keys(entries, ("method", "promote", "rejoin"), what)
        method: str | Failed = FAILED
        if "method" not in entries:
            reader.error(node, f"{what} has no method; expected one of: {', '.join(_PG_METHODS)}")
        else:
            value = reader.text(entries["method"][1], f"method of {what}")
            if isinstance(value, str) and value in _PG_METHODS:
                method = value
            elif isinstance(value, str):
                reader.error(
                    entries["method"][1],
                    f"unknown Postgres failover method {value!r} in {what}; expected one of: "
                    f"{', '.join(_PG_METHODS)}" + did_you_mean(value, _PG_METHODS),
                )
        defaults = DEFAULT_PG_COMMANDS.get(method, {}) if isinstance(method, str) else {}
        commands: dict[str, tuple[str, ...]] = dict(defaults)
        for key, example, names in (
            ("promote", "pg_ctlcluster 15 main promote", PROMOTE_FIELDS),
            ("rejoin", "a script that re-clones it", REJOIN_FIELDS),
        ):
            if key not in entries:
                if key not in commands:
                    reader.error(node, f"{what} has no {key}; expected `{key}: COMMAND` (e.g. {example})")
                continue
            argv = _declared_command(reader, entries[key][1], f"{key} of {what}", names)
            if not isinstance(argv, Failed):
                commands[key] = argv
        if isinstance(method, Failed) or len(commands) < 2:
            return FAILED
        return PostgresFailover(method, commands["promote"], commands["rejoin"])
    if role is Role.REDIS:
        reader.check_keys(entries, ("method", "master", "sentinels"), what)
        if "method" in entries:
            value = reader.text(entries["method"][1], f"method of {what}")
            if isinstance(value, str) and value != "sentinel":
                reader.error(entries["method"][1], f"unknown Redis failover method {value!r}; expected sentinel")
        master = "rapidpro"
        if "master" in entries:
            value = reader.text(entries["master"][1], f"master of {what}", "a Sentinel master name")
            if isinstance(value, Failed):
                return FAILED
            master = value
        sentinels = "sentinel"
        if "sentinels" in entries:
            value = reader.text(entries["sentinels"][1], f"sentinels of {what}", "a service name")
            if isinstance(value, Failed):
                return FAILED
            sentinels = value
        return SentinelFailover(master, sentinels)
    if role is None:
        return FAILED
    return reader.error(node, f"{what}: a {role.value} service has no failover; expected it on postgres or redis only")


def _declared_command(reader: YamlReader, node: Node, what: str, names: tuple[str, ...]) -> tuple[str, ...] | Failed:
    """A command line whose `{name}` fields are among `names` (filled in when it runs)."""
    argv = reader.argv(node, what)
    if isinstance(argv, Failed):
        return FAILED
    for word in argv:
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(word) if name is not None]
        except ValueError as exc:
            return reader.error(node, f"{what}: bad placeholder in {word!r} ({exc}); a literal brace is {{{{ or }}}}")
        unknown = [name for name in fields if name not in names]
        if unknown:
            return reader.error(
                node,
                f"{what}: unknown placeholder {{{unknown[0]}}}; expected some of: "
                + ", ".join(f"{{{n}}}" for n in names)
                + did_you_mean(unknown[0], names),
            )
    return argv


def fill(argv: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """A declared command with its placeholders filled in (the names were checked when the file was read)."""
    return tuple(word.format_map(values) for word in argv)


def _parse_upgrade(reader: YamlReader, node: Node, what: str) -> UpgradeCommands | Failed:
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    before = len(reader.errors)
    reader.check_keys(entries, _UPGRADE_KEYS, what)
    if "command" not in entries:
        return reader.error(
            node, f"{what} has no command; expected `command: COMMAND` (e.g. apt-get install -y courier={{version}})"
        )
    command = _declared_command(reader, entries["command"][1], f"command of {what}", UPGRADE_FIELDS)
    rollback = command
    if "rollback" in entries:
        rollback = _declared_command(reader, entries["rollback"][1], f"rollback of {what}", UPGRADE_FIELDS)
    run_on = "host"
    if "run_on" in entries:
        value = reader.text(entries["run_on"][1], f"run_on of {what}")
        if isinstance(value, str) and value in _RUN_ON:
            run_on = value
        elif isinstance(value, str):
            reader.error(
                entries["run_on"][1],
                f"bad run_on {value!r} in {what}; expected one of: {', '.join(_RUN_ON)}" + did_you_mean(value, _RUN_ON),
            )
    timeout: float | Failed = 600.0
    if "timeout" in entries:
        timeout = parse_timeout(reader, entries["timeout"][1], f"timeout of {what}")
    restart: bool | Failed = True
    if "restart" in entries:
        restart = reader.boolean(entries["restart"][1], f"restart of {what}")
    if (
        len(reader.errors) > before
        or isinstance(command, Failed)
        or isinstance(rollback, Failed)
        or isinstance(timeout, Failed)
        or isinstance(restart, Failed)
    ):
        return FAILED
    return UpgradeCommands(command, rollback, run_on, timeout, restart)


def _parse_haproxy(reader: YamlReader, node: Node, what: str, role: Role | None) -> str | Failed:
    if role is not None and role is not Role.LB:
        return reader.error(node, f"{what}: only an lb service has an HAProxy runtime API; got role {role.value}")
    entries = reader.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    reader.check_keys(entries, ("socket",), what)
    if "socket" not in entries:
        return reader.error(node, f"{what} has no socket; expected `socket: /run/haproxy/admin.sock`")
    value = reader.text(entries["socket"][1], f"socket of {what}", "an absolute path")
    if isinstance(value, Failed):
        return FAILED
    if not value.startswith("/"):
        return reader.error(entries["socket"][1], f"socket of {what} must be an absolute path; got {value!r}")
    return value


def _check_sentinels(
    reader: YamlReader, entries: Mapping[str, tuple[ScalarNode, Node]], services: Mapping[str, HostService]
) -> None:
    for service in services.values():
        if isinstance(service.failover, SentinelFailover) and service.failover.sentinels not in entries:
            reader.error(
                entries[service.name][0],
                f"failover of service {service.name!r} names Sentinel service {service.failover.sentinels!r}, "
                f"which this file does not define; expected one of: {', '.join(entries)}"
                + did_you_mean(service.failover.sentinels, entries),
            )
