"""A dry run on a hosts topology: the real fault code against a HostsRun whose shells never connect.

`resilience plan` plays an experiment's schedule on `PlanRun`, a HostsRun whose shell factory makes a
`RecordingShell` per host: it records every command line the backend would send to that host, in order,
and answers the reads (states, main PIDs, iptables rules, log reads) from `DeploymentModel`, a canned
deployment where every node runs and the first Postgres node is the primary. Commands that change
something change the model (a killed node is then down, an inserted rule is then listed), so that the
recovery that follows is planned against what the inject left. The plan therefore cannot drift from what
the faults really do: it is what they do, with SSH replaced.

Nothing here opens a connection. A fault that talks to a service's own API (Postgres, Redis, HAProxy's
runtime socket, Toxiproxy's HTTP API) reaches it through `endpoint()`, which here stops that fault's
simulation with `NotSimulated` naming the service, node and address; a health wait is recorded as a step.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resilience.backends import hosts_commands as commands
from resilience.backends.hosts import HostsRun
from resilience.backends.ssh import Result
from resilience.topology import Role
from resilience.topology.hosts import ControlKind, Host, HostNode, HostsTopology

if TYPE_CHECKING:
    from resilience.faults.base import BaseFault
    from resilience.faults.schedule import Schedule

# Signals a fault may send through `Backend.signal`; each is matched to its exact command line.
SIGNALS = ("SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
# Stop timeouts a container's `docker stop -t N` may carry (systemd and supervisor use their own).
STOP_TIMEOUTS = range(0, 601)
# A read asked this often within one fault step is a poll that the canned model will never satisfy.
MAX_REPEATS = 25
# Commands through which a fault talks to a service's own API on its host: not answered by the model.
SERVICE_APIS = (
    ("redis-cli", "Redis"),
    ("toxiproxy", "Toxiproxy"),
)
# hosts_commands.haproxy_runtime's payload: `printf '%s\n' LINE | socat ...`
_RUNTIME_LINE = re.compile(r"printf '%s\\n' ('(?:[^']|'\"'\"')*'|\S+) \| socat")
LOG_READS = ("journalctl ", "tail -n ", "supervisorctl tail ", "docker logs ")


class NotSimulated(BaseException):
    """The dry run cannot go on with this fault (it talks to a service's API, or polls for something the
    model never shows). A BaseException, so that a fault's retry loops (`wait_for`) do not swallow it."""


@dataclass(frozen=True)
class PlannedCommand:
    host: str
    command: str  # exactly as the backend would send it ("" for a described step)
    kind: str  # "read" (answered by the model), "change", "exec" (run as given), "wait" (a described step)
    what: str  # in words: "state of courier-1", "SIGKILL of courier-1", ...


@dataclass
class _NodeModel:
    state: str = "running"  # running | paused | exited
    pid: int = 0
    started: int = 0


@dataclass
class DeploymentModel:
    """Every node running, the first Postgres node the primary, no rules: what the plan assumes to start with."""

    hosts: HostsTopology
    nodes: dict[str, _NodeModel] = field(default_factory=dict)
    rules: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # namespace -> `-A CHAIN ...` specs
    primary: str = ""
    log: list[PlannedCommand] = field(default_factory=list)
    haproxy: dict[tuple[str, str], int] = field(default_factory=dict)  # (backend, server) -> srv_admin_state

    def __post_init__(self) -> None:
        self._pids = itertools.count(1000)
        self.lock = threading.RLock()
        for node in self.hosts.nodes():
            self.nodes[node.name] = _NodeModel(pid=next(self._pids), started=next(self._pids))
        postgres = [n.name for n in self.hosts.nodes() if self.hosts.services[n.service].role is Role.POSTGRES]
        self.primary = postgres[0] if postgres else ""
        for service in self.hosts.services.values():
            if service.role not in (Role.LB, Role.SENTINEL):
                self.haproxy.update({(service.name, node.name): 0 for node in service.nodes})

    def start(self, node: str) -> None:
        model = self.nodes[node]
        model.state, model.pid, model.started = "running", next(self._pids), next(self._pids)

    def record(self, entry: PlannedCommand) -> None:
        with self.lock:
            self.log.append(entry)
            repeats = sum(1 for e in self.log if (e.host, e.command) == (entry.host, entry.command))
        if entry.kind in ("read", "exec") and repeats > MAX_REPEATS:
            raise NotSimulated(f"polls {entry.what} on host {entry.host}, which the canned model never changes")

    def take(self) -> list[PlannedCommand]:
        with self.lock:
            taken, self.log = self.log, []
        return taken


def _facts(node: HostNode, model: _NodeModel) -> str:
    running = model.state in ("running", "paused")
    proc = (
        f"pid={model.pid}\nproc_state={'T' if model.state == 'paused' else 'S'}\nproc_start={model.started}\n"
        f"exe=/usr/bin/{node.service}@1700000000\n"
        if running
        else "pid=0\n"
    )
    if node.control.kind is ControlKind.SYSTEMD:
        active = (
            "sd_ActiveState=active\nsd_SubState=running" if running else "sd_ActiveState=inactive\nsd_SubState=dead"
        )
        return f"sd_LoadState=loaded\n{active}\nsd_NRestarts=0\nsd_Restart=on-failure\n{proc}"
    if node.control.kind is ControlKind.SUPERVISOR:
        status = f"RUNNING   pid {model.pid}, uptime 1:00:00" if running else "STOPPED   Dec 03 12:00 PM"
        return f"sv_status={node.control.name}   {status}\n{proc}"
    word = "paused" if model.state == "paused" else model.state
    return (
        f"ct={word} {model.pid if running else 0} 2026-01-01T00:00:{model.started % 60:02d}Z 0 sha256:plan always:0\n"
    )


class RecordingShell:
    """Stands in for ssh.HostShell on one host: records each command and answers it from the model; never
    connects to anything."""

    def __init__(self, host: Host, model: DeploymentModel) -> None:
        self.host = host
        self.model = model
        self._nodes = [n for n in model.hosts.nodes() if n.host == host.name]
        self._table: dict[str, tuple[str, HostNode]] = {}
        for node in self._nodes:
            for sig in SIGNALS:
                self._table[commands.signal(node, sig)] = (f"signal {sig}", node)
            timeouts = STOP_TIMEOUTS if node.control.kind is ControlKind.CONTAINER else (10,)
            for timeout in timeouts:
                self._table[commands.stop(node, timeout)] = ("stop", node)
                self._table[commands.restart(node, timeout)] = ("restart", node)
            self._table[commands.facts(node)] = ("facts", node)
            self._table[commands.main_pid(node)] = ("pid", node)
            self._table[commands.crash(node)] = ("crash", node)
            self._table[commands.kill(node)] = ("kill", node)
            self._table[commands.start(node)] = ("start", node)
            self._table[commands.pause(node)] = ("pause", node)
            self._table[commands.pause(node, resume=True)] = ("unpause", node)

    def describe(self) -> str:
        return f"host {self.host.name} (not contacted: a dry run)"

    def close(self) -> None:
        """Nothing was opened."""

    def run(self, command: str, timeout: float = 60.0) -> Result:
        with self.model.lock:
            return self._answer(command)

    # -- answers ------------------------------------------------------------------------------------
    def _answer(self, command: str) -> Result:
        known = self._table.get(command)
        if known is not None:
            return self._operation(command, *known)
        if "iptables -w 5 " in command:
            return self._iptables(command)
        if command.startswith(LOG_READS):
            self._record(command, "read", "log lines (none in the model)")
            return Result(0, "", "")
        return self._exec(command)

    def _record(self, command: str, kind: str, what: str) -> None:
        self.model.record(PlannedCommand(self.host.name, command, kind, what))

    def _operation(self, command: str, operation: str, node: HostNode) -> Result:
        model = self.model.nodes[node.name]
        if operation == "facts":
            self._record(command, "read", f"state of {node.name}")
            return Result(0, _facts(node, model), "")
        if operation == "pid":
            self._record(command, "read", f"main PID of {node.name}")
            return Result(0, f"{model.pid if model.state != 'exited' else 0}\n", "")
        self._record(command, "change", f"{operation} {node.name} ({node.control})")
        down = model.state == "exited"
        needs_process = operation in ("crash", "kill", "pause") or operation.startswith("signal")
        if down and needs_process and node.control.kind is not ControlKind.CONTAINER:
            return Result(commands.NOT_RUNNING, "", f"{node.control} has no running process\n")
        if operation in ("kill", "stop", "signal SIGTERM", "signal SIGINT", "signal SIGQUIT"):
            model.state = "exited"
        elif operation in ("start", "restart", "crash", "signal SIGKILL"):
            self.model.start(node.name)  # a crash is answered by its supervisor's restart
        elif operation in ("pause", "signal SIGSTOP"):
            model.state = "paused"
        elif operation in ("unpause", "signal SIGCONT") and model.state == "paused":
            model.state = "running"
        return Result(0, "", "")

    def _namespace(self, command: str) -> str:
        if command.startswith("iptables "):
            return f"host {self.host.name}"
        for node in self._nodes:
            if commands.main_pid(node) in command:
                return f"container {node.name}"
        return f"host {self.host.name}"

    def _iptables(self, command: str) -> Result:
        namespace = self._namespace(command)
        args = shlex.split(command.split("iptables -w 5 ", 1)[1])
        rules = self.model.rules.setdefault(namespace, [])
        if not args or args[0] in ("-S", "-L", "--list-rules", "--list"):
            self._record(command, "read", f"iptables rules of {namespace}")
            listing = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT", *(shlex.join(r) for r in rules)]
            return Result(0, "\n".join(listing) + "\n", "")
        self._record(command, "change", f"iptables {args[0]} in {namespace}")
        if args[0] in ("-I", "-A"):
            chain = args[1]
            rest = args[3:] if args[0] == "-I" and len(args) > 2 and args[2].isdigit() else args[2:]
            rules.insert(0, ("-A", chain, *rest))
        elif args[0] == "-D" and ("-A", *args[1:]) in rules:
            rules.remove(("-A", *args[1:]))
        elif args[0] == "-D":
            return Result(1, "", "iptables: Bad rule (does a matching rule exist in that chain?).\n")
        return Result(0, "", "")

    def _exec(self, command: str) -> Result:
        """A command a fault runs as given (exec, put_file): answered where the model knows the question."""
        runtime = _RUNTIME_LINE.search(command)
        if runtime is not None and "UNIX-CONNECT:" in command:
            return self._haproxy(command, shlex.split(runtime.group(1))[0])
        self._record(command, "exec", "as given")
        api = next((name for marker, name in SERVICE_APIS if marker in command), None)
        if api is not None:
            raise NotSimulated(f"talks to {api} on host {self.host.name}, which the canned model does not answer")
        postgres_here = [n.name for n in self._nodes if self.model.hosts.services[n.service].role is Role.POSTGRES]
        if "pg_is_in_recovery()" in command:
            return Result(0, "f\n" if self.model.primary in postgres_here else "t\n", "")
        if "pg_stat_wal_receiver" in command and self.model.primary:
            address = self.model.hosts.hosts[self.model.hosts.node(self.model.primary).host].dialled_by_peers
            return Result(0, f"streaming|{address}\n", "")
        if "promote" in command and postgres_here:
            self.model.primary = postgres_here[0]
        return Result(0, "", "")

    def _haproxy(self, command: str, line: str) -> Result:
        """HAProxy's runtime API as the model has it: a backend per service, its nodes as servers (as the
        harness's own haproxy.cfg; the plan says so), the postgres backend UP only on the primary."""
        servers = self.model.haproxy
        if line.strip() == "show servers state":
            self._record(command, "read", "HAProxy's server states (model: a backend per service)")
            rows = ["1", "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state"]
            for index, ((backend, server), admin) in enumerate(servers.items(), start=1):
                up = (
                    self.model.primary == server
                    if backend == "postgres"
                    else self.model.nodes[server].state == "running"
                )
                rows.append(f"{index} {backend} {index} {server} - {2 if up else 0} {admin}")
            return Result(0, "\n".join(rows) + "\n", "")
        self._record(command, "change", f"HAProxy runtime API: {line}")
        for part in (p.strip() for p in line.split(";")):
            words = part.split()
            if len(words) >= 5 and words[:2] == ["set", "server"] and words[3] == "state":
                key = tuple(words[2].split("/", 1))
                if key not in servers:
                    return Result(0, "No such server.\n", "")
                servers[key] = 1 if words[4] == "maint" else 8 if words[4] == "drain" else 0  # type: ignore[index]
        return Result(0, "", "")


class PlanRun(HostsRun):
    """A HostsRun for `resilience plan`: recording shells, health waits described, service APIs not dialled."""

    def __init__(self, hosts: HostsTopology, run_id: str) -> None:
        # The plan shows what a run would do, also on a file that refuses faults (the plan says so).
        self.model = DeploymentModel(hosts)
        super().__init__(dataclasses.replace(hosts, allow_faults=True), run_id, shell_factory=self._shell)

    def _shell(self, host: Host) -> RecordingShell:
        return RecordingShell(host, self.model)

    def published(self, node: str, port: int) -> tuple[str, int] | None:
        spec = self.hosts.node(node)
        host = self.hosts.hosts[spec.host]
        raise NotSimulated(
            f"talks to {spec.service} {node} on {host.address}:{host.ports.get(port, port)} through its own API "
            f"(not dialled in a plan)"
        )

    def run_here(self, node: str, argv: Sequence[str], what: str, timeout: float) -> str:
        """A `run_on: harness` command (an upgrade's playbook) is recorded, never run."""
        self.model.record(PlannedCommand("harness", shlex.join(argv), "change", what))
        return ""

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        spec = self.hosts.node(node)
        service = self.topology.services[spec.service]
        checks = "; ".join(c.describe() for c in service.health) or "its state"
        limit = timeout or service.health_timeout
        self.model.record(
            PlannedCommand(spec.host, "", "wait", f"until {node}'s health checks pass ({checks}; up to {limit:.0f} s)")
        )
        return 0.0


@dataclass
class PlannedStep:
    at: float  # seconds from the schedule's start
    action: str  # inject | recover
    kind: str
    fault_id: str
    targets: list[str]
    commands: list[PlannedCommand]
    not_simulated: str = ""  # why the dry run stopped inside this fault
    error: str = ""  # what the fault raised against the model
    implicit: bool = False  # a recovery the schedule leaves to its end


def plan_schedule(run: PlanRun, schedule: Schedule) -> list[PlannedStep]:
    """Play `schedule` on `run` as the schedule player would, without its waits: every inject (with its
    resolve) and every recovery, those left to the end included, newest first; each step with the commands
    it sent. A fault that stops (not simulated, or an error against the model) keeps its recovery planned."""
    planned: list[PlannedStep] = []
    active: list[BaseFault] = []
    steps = copy.deepcopy(schedule.steps)

    def play(at: float, action: str, fault: BaseFault, implicit: bool = False) -> None:
        run.model.take()
        step = PlannedStep(at, action, fault.kind, fault.id, fault.targets(), [], implicit=implicit)
        try:
            if action == "inject":
                fault.resolve(run)
                fault.inject(run)
            else:
                fault.recover(run)
        except NotSimulated as stop:
            step.not_simulated = str(stop)
        except Exception as exc:  # the fault refused against the canned model: shown, and the plan goes on
            step.error = f"{type(exc).__name__}: {exc}"
        step.commands = run.model.take()
        step.targets = fault.targets()  # resolve may have named them
        planned.append(step)

    for step in steps:
        if step.action == "inject":
            active.append(step.fault)
            play(step.at, "inject", step.fault)
        elif step.fault.id in {f.id for f in active}:
            active = [f for f in active if f.id != step.fault.id]
            play(step.at, "recover", step.fault)
    for fault in reversed(active):
        play(schedule.duration, "recover", fault, implicit=True)
    return planned
