"""The full VM-like stand-in deployment: the services of a Docker topology (standin-ha.yaml) laid out on a few
SSH hosts of the stand-in host image (hosts_image.py), each node a supervisor program, described by a hosts
file so that the harness acts on it through the hosts backend (HostsRun) alone.

Each node starts as the Docker backend would start its container: the service's command, its env plus the
RESILIENCE_* variables and stand-in switches, and the configuration files render.py makes for its role. A
host holds several nodes, so it answers to all their names (and their services') on the bed's network, and
its ports must not clash. Docker only creates and removes the hosts; the programs are started over SSH, in
the topology's dependency waves, each wave healthy before the next.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker
import yaml

from resilience.backends.hosts import HostsRun
from resilience.backends.hosts_image import STANDIN_DIR, SUDO_ENV_FILE, build_standin_host
from resilience.backends.hosts_testbed import SshTestBed, supervisor_program
from resilience.backends.render import files_for, node_environment
from resilience.topology import HealthKind, NodeSpec, RestartName, Role, Service, Topology, load_hosts

Log = Callable[[str], None]

# The layout of standin-ha on five hosts: the app tier's n+1 split over two hosts, the data tier's pairs over
# two more, the load balancer with the test equipment and the third Sentinel on the fifth.
STANDIN_HA_LAYOUT: dict[str, tuple[str, ...]] = {
    "app-1": ("web-1", "celery-1", "courier-1", "mailroom-1", "celery-beat-1", "indexer-1"),
    "app-2": ("web-2", "celery-2", "courier-2", "mailroom-2", "archiver-1"),
    "db-1": ("postgres-1", "redis-1", "sentinel-1"),
    "db-2": ("postgres-2", "redis-2", "sentinel-2"),
    "lb-1": ("lb-1", "toxiproxy-1", "aggregator-1", "sentinel-3", "search-1", "s3-1"),
}
LAUNCHERS = "/usr/local/lib/resilience/nodes"
LOGS = "/var/log/resilience"
# HAProxy's runtime API as a unix socket on the lb's host (the hosts file's `haproxy.socket`), beside the TCP
# socket the Docker rendering has; the backends and checks are the rendered ones, unchanged.
HAPROXY_SOCKET = "/run/haproxy/admin.sock"
PGDATA = "/var/lib/postgresql/data"
PG_PROMOTE = f"runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl promote -w -D {PGDATA}"
# pg-node decides its role at every start: with another primary among its peers it re-clones as its standby.
PG_REJOIN = "supervisorctl start postgres"
# How long a stop waits for a node before SIGKILL: Docker's stop timeout, which the faults' graceful stops use
# (service_roll.py's default), so a restarted node gets the same time to finish its work on both backends.
STOP_TIMEOUT_S = 10
# Python's settings for commands run over SSH (sudo's env_file), as the node image's ENV gives its processes.
_PYTHON_ENV = {"PYTHONPATH": STANDIN_DIR, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


class LayoutError(ValueError):
    """The layout does not place the topology's nodes once each, or two nodes of a host clash."""


def launcher(topology: Topology, node: NodeSpec, run_id: str) -> str:
    """The script a node's supervisor program runs: its environment, then its service's command by exec, so
    the program's pid is the service's process (as a container's init runs it)."""
    service = topology.services[node.service]
    argv = [*(service.entrypoint or ()), *(service.command or ())]
    if not argv:
        raise LayoutError(f"service {node.service} has no command: a host cannot run its image's default")
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in node_environment(topology, node, run_id).items())
    header = f"#!/bin/sh\n# {node.name} of run {run_id}, as the Docker backend starts it.\ncd {STANDIN_DIR}\n"
    return f"{header}{exports}exec {shlex.join(argv)}\n"


def _autorestart(service: Service) -> str:
    name = service.restart_policy.name
    if name is RestartName.ALWAYS:
        return "true"
    return "unexpected" if name is RestartName.ON_FAILURE else "false"


def _restart_text(service: Service) -> str:
    policy = service.restart_policy
    if policy.name is RestartName.ON_FAILURE and policy.max_retries:
        return f"on-failure:{policy.max_retries}"
    return policy.name.value


def _health(service: Service) -> list[dict[str, object]]:
    checks: list[dict[str, object]] = []
    for check in service.health:
        if check.kind is HealthKind.HTTP:
            http: dict[str, object] = {"port": check.port, "path": check.path or "/"}
            if check.status and check.status != 200:
                http["status"] = check.status
            if check.contains:
                http["contains"] = check.contains
            checks.append({"http": http})
        elif check.kind is HealthKind.COMMAND:
            checks.append({"command": list(check.command or ())})
        elif check.kind is HealthKind.LOG:
            checks.append({"log": check.pattern or ""})
        elif check.kind is HealthKind.PORT:
            checks.append({"port": check.port})
    return checks


@dataclass
class Placement:
    """Where each node of the topology runs: host -> its nodes, checked once."""

    topology: Topology
    hosts: dict[str, tuple[str, ...]]
    host_of: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        known = {n.name for n in self.topology.nodes()}
        self.host_of = {}
        problems: list[str] = []
        for host, nodes in self.hosts.items():
            for node in nodes:
                if node not in known:
                    problems.append(f"host {host}: {node} is no node of topology {self.topology.name}")
                elif node in self.host_of:
                    problems.append(f"{node} is placed on both {self.host_of[node]} and {host}")
                else:
                    self.host_of[node] = host
        problems += [f"{n} is placed on no host" for n in sorted(known - set(self.host_of))]
        for host, nodes in self.hosts.items():
            services = [self.topology.node(n).service for n in nodes if n in known]
            problems += [
                f"host {host}: two nodes of {s}" for s in sorted({s for s in services if services.count(s) > 1})
            ]
            owner: dict[int, str] = {}
            for node in (n for n in nodes if n in known):
                for port in self.topology.services[self.topology.node(node).service].ports:
                    if port.number in owner:
                        problems.append(f"host {host}: port {port.number} of both {owner[port.number]} and {node}")
                    owner[port.number] = node
        if problems:
            raise LayoutError("; ".join(problems))

    def nodes_on(self, host: str) -> list[NodeSpec]:
        return [self.topology.node(n) for n in self.hosts[host]]

    def ports_of(self, host: str) -> tuple[int, ...]:
        return tuple(sorted({p.number for n in self.nodes_on(host) for p in self.topology.services[n.service].ports}))

    def aliases_of(self, host: str) -> tuple[str, ...]:
        """The names another host dials this one by: its nodes', and their services' (`toxiproxy`, `lb`)
        where the topology's addresses use a service's name."""
        names = [n.name for n in self.nodes_on(host)] + [n.service for n in self.nodes_on(host)]
        return tuple(dict.fromkeys(x for x in names if x != host))


def host_files(placement: Placement, host: str, run_id: str) -> dict[str, str | bytes]:
    """The configuration files render.py makes for the host's nodes, and sudo's environment for commands
    over SSH (the variables its nodes agree on, as an operator's profile on the VM would set them)."""
    files: dict[str, str | bytes] = {}
    env: dict[str, str] = dict(_PYTHON_ENV)
    clashing: set[str] = set()
    for node in placement.nodes_on(host):
        for path, text in files_for(placement.topology, node, run_id).items():
            if path in files:
                raise LayoutError(f"host {host}: {path} is needed by two of its nodes")
            if path == "/etc/haproxy/haproxy.cfg":
                text = _with_admin_socket(text)
            files[path] = text
        for key, value in placement.topology.services[node.service].env.items():
            if env.get(key, str(value)) != str(value):
                clashing.add(key)
            env.setdefault(key, str(value))
    files[SUDO_ENV_FILE] = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items() if k not in clashing)
    return files


def _with_admin_socket(config: str) -> str:
    lines = config.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip().startswith("stats socket "):
            lines.insert(i + 1, f"    stats socket {HAPROXY_SOCKET} mode 660 level admin\n")
            return "".join(lines)
    raise LayoutError("the rendered haproxy.cfg has no `stats socket` line to put the admin socket beside")


def services_yaml(placement: Placement) -> str:
    """The hosts file's `services:` section (indented by two): each service's nodes on their hosts, as
    supervisor programs named after the service, with the topology's ports, health and restart policy."""
    topology = placement.topology
    services: dict[str, dict[str, object]] = {}
    for name, service in topology.services.items():
        nodes = [n for n in topology.nodes() if n.service == name]
        entry: dict[str, object] = {
            "role": service.role.value,
            "supervisor": name,
            "nodes": [placement.host_of[n.name] for n in nodes],
            "logs": {"file": f"{LOGS}/{name}.log"},
            "restart": _restart_text(service),
            "health_timeout": int(service.health_timeout),
        }
        if service.ports:
            entry["ports"] = [p.number for p in service.ports]
        if service.health:
            entry["health"] = _health(service)
        if service.role is Role.POSTGRES and len(nodes) > 1:
            entry["failover"] = {"method": "pg_ctl", "promote": PG_PROMOTE, "rejoin": PG_REJOIN}
        if service.role is Role.REDIS:
            sentinels = [s for s, spec in topology.services.items() if spec.role is Role.SENTINEL]
            entry["failover"] = {"master": "rapidpro", **({"sentinels": sentinels[0]} if sentinels else {})}
        if service.role is Role.LB:
            entry["haproxy"] = {"socket": HAPROXY_SOCKET}
        services[name] = entry
    text = yaml.safe_dump(services, sort_keys=False, default_flow_style=None, width=200)
    return "".join(f"  {line}\n" for line in text.splitlines())


class StandinBed:
    """The stand-in deployment on SSH hosts: `up()` gives the HostsRun over it, `close()` removes the hosts."""

    def __init__(
        self,
        client: docker.DockerClient,
        directory: Path,
        topology: Topology,
        layout: Mapping[str, Sequence[str]] = STANDIN_HA_LAYOUT,
        log: Log = print,
    ) -> None:
        self.client = client
        self.directory = directory
        self.topology = topology
        self.original_topology = topology  # as brought up: set_switches({}) returns to it
        self.placement = Placement(topology, {h: tuple(n) for h, n in layout.items()})
        self.log = log
        self.image = build_standin_host(client, log).tag
        self.bed = SshTestBed(client, directory / "keys")
        self.id = self.bed.id
        self.hosts_file = directory / "hosts.yaml"
        self.run: HostsRun | None = None

    def up(self) -> HostsRun:
        """Create the hosts, then over SSH start every node in the topology's waves, each wave healthy."""
        try:
            for host in self.placement.hosts:
                programs = {
                    node.service: supervisor_program(
                        node.service,
                        f"{LAUNCHERS}/{node.name}",
                        f"{LOGS}/{node.service}.log",
                        autorestart=_autorestart(self.topology.services[node.service]),
                        autostart=False,  # started over SSH in dependency order, as the Docker backend does
                        startretries=1000 if _autorestart(self.topology.services[node.service]) == "true" else 3,
                        stopwaitsecs=STOP_TIMEOUT_S,
                    )
                    for node in self.placement.nodes_on(host)
                }
                launchers: dict[str, str | bytes] = {
                    f"{LAUNCHERS}/{n.name}": launcher(self.topology, n, self.id) for n in self.placement.nodes_on(host)
                }
                self.bed.add_host(
                    host,
                    programs,
                    self.placement.ports_of(host),
                    image=self.image,
                    aliases=self.placement.aliases_of(host),
                    files=host_files(self.placement, host, self.id),
                    executables=launchers,
                )
            for bed_host in self.bed.hosts.values():
                self.bed.wait_for_ssh(bed_host)
            self.hosts_file.write_text(
                self.bed.hosts_yaml(services_yaml(self.placement), name=f"{self.topology.name}-hosts")
            )
            self.run = HostsRun(load_hosts(self.hosts_file), self.id)
            for wave in self.topology.start_waves():
                nodes = [n.name for s in wave for n in self.topology.nodes() if n.service == s.name]
                self.run.each(nodes, self.run.start)
                for node, seconds in self.run.each(nodes, self.run.wait_healthy).items():
                    self.log(f"  {node:<14} healthy in {seconds:5.2f} s (on {self.placement.host_of[node]})")
        except BaseException:
            self.close()
            raise
        return self.run

    def set_switches(self, switches: Mapping[str, Mapping[str, object]]) -> list[str]:
        """The stand-in switches set to the topology's own plus `switches` ({} restores them), over SSH: the
        launchers of the services whose switches change are rewritten and their nodes restarted one at a
        time, each healthy before the next. The services changed."""
        assert self.run is not None, "up() first"
        wanted = self.original_topology.with_switches({k: dict(v) for k, v in switches.items()})
        changed = [s for s, spec in wanted.services.items() if spec.switches != self.topology.services[s].switches]
        self.topology = wanted
        for service in changed:
            for node in (n for n in wanted.nodes() if n.service == service):
                self.run.put_file(node.name, f"{LAUNCHERS}/{node.name}", launcher(wanted, node, self.id), mode=0o755)
                self.run.restart(node.name)
                self.run.wait_healthy(node.name)
        return changed

    def close(self) -> None:
        if self.run is not None:
            self.run.close()
            self.run = None
        self.bed.close()


def bring_up(
    client: docker.DockerClient, directory: Path, topology: Topology, log: Log = print
) -> tuple[StandinBed, HostsRun, float]:
    """The bed up on the default layout; with the seconds it took (image build included if it was needed)."""
    started = time.monotonic()
    bed = StandinBed(client, directory, topology, log=log)
    run = bed.up()
    return bed, run, time.monotonic() - started
