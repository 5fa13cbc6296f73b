"""The hosts backend: `HostsRun`, the Backend protocol (base.py) over an existing deployment's hosts, reached
only over SSH (ssh.py). Nodes are what a hosts topology (resilience/topology/hosts.py) says runs where:
a systemd unit, a supervisor program or a container on a host; the command lines are hosts_commands.py's.

Commands run in a thread pool, each host on its own connection, so a slow or hung host holds up only the
operations on its own nodes. Operations that disturb a node refuse unless the topology says
`allow_faults: true` (FaultsNotAllowed); reading state, logs and rules, and running commands, do not.
Hosts the topology does not name are never contacted.
"""

from __future__ import annotations

import concurrent.futures
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from resilience.backends import hosts_commands as commands
from resilience.backends import hosts_logs
from resilience.backends.base import BackendError, NetfilterError, NodeStatus
from resilience.backends.ssh import TIMED_OUT, HostShell, HostUnreachable, Result
from resilience.topology import Topology
from resilience.topology.hosts import ControlKind, Host, HostNode, HostsTopology
from resilience.waits import wait_until_healthy

T = TypeVar("T")
COMMAND_TIMEOUT = 60.0  # seconds a command may take on its host, unless the operation says otherwise
WORKERS_PER_HOST = 6  # commands in flight on one host at once (faults, probes, log reads of a run)
# The SSH exit status for "could not run it at all", which exec reports for an unreachable host.
SSH_FAILED = 255
_STATE_OF_SYSTEMD = {"active": "running", "reloading": "running", "deactivating": "running", "activating": "restarting"}
_STATE_OF_SUPERVISOR = {
    "RUNNING": "running",
    "STOPPING": "running",
    "STARTING": "restarting",
    "BACKOFF": "restarting",
    "STOPPED": "exited",
    "EXITED": "exited",
    "FATAL": "exited",
}
_SYSTEMD_RESTART = {"always": "always", "on-failure": "on-failure", "no": "no"}


class FaultsNotAllowed(BackendError):
    """The hosts topology does not say `allow_faults: true`: nothing that disturbs a node is done."""


ShellFactory = Callable[[Host], HostShell]


class HostsRun:
    """A deployment we did not create, as the harness acts on it: implements base.Backend."""

    def __init__(
        self,
        hosts: HostsTopology,
        run_id: str,
        shell_factory: ShellFactory = HostShell,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.hosts = hosts
        self.run_id = run_id
        self.topology: Topology = hosts.as_topology()
        self.network_name = f"hosts:{hosts.name}"
        self.command_timeout = command_timeout
        self._shells: dict[str, HostShell] = {}
        self._shell_factory = shell_factory
        self._lock = threading.Lock()
        # A pool per host: a host that hangs (a black-holed network holds a channel for minutes) can tie up
        # only its own workers, never those of the other hosts.
        self._pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for shell in self._shells.values():
            shell.close()

    # -- running commands ---------------------------------------------------------------------------
    def _node(self, node: str) -> HostNode:
        try:
            return self.hosts.node(node)
        except KeyError:
            raise BackendError(
                f"hosts topology {self.hosts.name} has no node {node!r}; nodes: {', '.join(self.node_names())}"
            ) from None

    def shell(self, host: str) -> HostShell:
        with self._lock:
            if host not in self._shells:
                self._shells[host] = self._shell_factory(self.hosts.hosts[host])
                self._pools[host] = concurrent.futures.ThreadPoolExecutor(
                    max_workers=WORKERS_PER_HOST, thread_name_prefix=f"hosts-{host}"
                )
            return self._shells[host]

    def run_on(self, host: str, command: str, timeout: float | None = None) -> Result:
        """One command line on a host of the topology, in the pool; raises HostUnreachable, or BackendError
        when the host does not answer in time."""
        if host not in self.hosts.hosts:
            raise BackendError(f"{host!r} is not a host of hosts topology {self.hosts.name}; it is never contacted")
        limit = timeout or self.command_timeout
        shell = self.shell(host)
        future = self._pools[host].submit(shell.run, command, limit)
        # The command is bounded on the host (`timeout`); this bounds a connection that stopped answering.
        wait = limit + self.hosts.hosts[host].ssh.connect_timeout + 15
        try:
            return future.result(timeout=wait)
        except concurrent.futures.TimeoutError:
            raise BackendError(f"{shell.describe()} did not answer within {wait:.0f} s (`{command[:120]}`)") from None

    def _checked(self, node: HostNode, command: str, what: str, timeout: float | None = None) -> str:
        result = self.run_on(node.host, command, timeout)
        if result.rc in TIMED_OUT:
            raise BackendError(f"{node.name}: {what} did not finish in time on host {node.host}")
        if result.rc == commands.NOT_RUNNING:
            raise BackendError(f"{node.name} ({node.control} on host {node.host}) is not running: {what} needs it")
        if result.rc != 0:
            raise BackendError(
                f"{node.name}: {what} failed on host {node.host} (exit {result.rc}): {result.output.strip()[-400:]}"
            )
        return result.stdout

    def run_for(self, node: str, command: str, what: str, disturbs: bool = True, timeout: float | None = None) -> str:
        """A command line on the node's host that the hosts file declares or a fault builds (a promotion,
        an upgrade, HAProxy's socket, tc); its output. `disturbs`: refused unless faults are allowed. Raises
        BackendError with its exit status and output unless it exits 0."""
        if disturbs:
            self._require_faults(what, node)
        spec = self._node(node)
        result = self.run_on(spec.host, command, timeout)
        if result.rc in TIMED_OUT:
            raise BackendError(f"{node}: {what} did not finish in time on host {spec.host} (`{command[:200]}`)")
        if result.rc != 0:
            raise BackendError(
                f"{node}: {what} failed on host {spec.host} (exit {result.rc}) running `{command[:200]}`: "
                f"{result.output.strip()[-400:]}"
            )
        return result.stdout

    def run_here(self, node: str, argv: Sequence[str], what: str, timeout: float) -> str:
        """A command the hosts file declares to run on the harness's machine for a node (`run_on: harness`,
        such as an ansible-playbook limited to its host); always one that disturbs, so refused unless faults
        are allowed. Its output; BackendError unless it exits 0."""
        self._require_faults(what, node)
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise BackendError(f"{node}: {what}: `{argv[0]}` is not installed on this machine") from None
        except subprocess.TimeoutExpired:
            raise BackendError(f"{node}: {what}: `{shlex.join(argv)}` did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-400:]
            raise BackendError(
                f"{node}: {what} failed on this machine (exit {done.returncode}) running `{shlex.join(argv)}`: {output}"
            )
        return done.stdout

    def each(self, nodes: Iterable[str], operation: Callable[[str], T]) -> dict[str, T]:
        """`operation` on every node at once (one thread each), so that one slow host delays only its own
        nodes' results; raises the first error after all have finished."""
        names = list(nodes)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            futures = {name: pool.submit(operation, name) for name in names}
            concurrent.futures.wait(futures.values())
        return {name: future.result() for name, future in futures.items()}

    def _require_faults(self, operation: str, node: str) -> None:
        if not self.hosts.allow_faults:
            raise FaultsNotAllowed(
                f"refusing to {operation} {node}: hosts topology {self.hosts.name} ({self.hosts.path}) does not "
                f"say `allow_faults: true`"
            )

    # -- which nodes --------------------------------------------------------------------------------
    def node_names(self) -> list[str]:
        return [n.name for n in self.hosts.nodes()]

    def nodes_of(self, service_or_role: str) -> list[str]:
        return [
            n.name
            for n in self.hosts.nodes()
            if n.service == service_or_role or self.hosts.services[n.service].role.value == service_or_role
        ]

    # -- state --------------------------------------------------------------------------------------
    def facts(self, node: str) -> dict[str, str]:
        """What the node's supervisor and its main process say now, as KEY=VALUE (hosts_commands.facts)."""
        spec = self._node(node)
        result = self.run_on(spec.host, commands.facts(spec))
        found: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                found[key.strip()] = value.strip()
        return found

    def state(self, node: str) -> str:
        spec = self._node(node)
        try:
            facts = self.facts(node)
        except HostUnreachable:
            return "missing"
        return _state(spec, facts)

    def is_running(self, node: str) -> bool:
        return self.state(node) in {"running", "paused", "restarting"}

    def exited_at(self, node: str) -> float | None:
        """Not recorded in a form comparable across hosts' clocks: the kill command's return bounds it."""
        return None

    def started_at(self, node: str) -> str:
        """The main process's pid and start time (clock ticks since the host booted): a new one each start."""
        facts = self.facts(node)
        if "ct" in facts:
            return facts["ct"].split(" ")[2] if facts["ct"] != "missing" else ""
        return f"{facts.get('pid', '0')}@{facts.get('proc_start', '')}"

    def restart_policy(self, node: str) -> str:
        """systemd's `Restart=` and Docker's policy as they are on the host; a supervisor program's as the
        topology declares it (supervisorctl does not tell its autorestart)."""
        spec = self._node(node)
        if spec.control.kind is ControlKind.SUPERVISOR:
            return str(self.topology.services[spec.service].restart_policy)
        facts = self.facts(node)
        if "ct" in facts and facts["ct"] != "missing":
            name, _, retries = facts["ct"].split(" ")[5].partition(":")
            return f"{name}:{retries}" if name == "on-failure" and retries not in ("", "0") else (name or "no")
        word = facts.get("sd_Restart", "no")
        return _SYSTEMD_RESTART.get(word, word)

    def restart_count(self, node: str) -> int:
        """systemd's NRestarts, Docker's RestartCount; 0 for a supervisor program (supervisor keeps none)."""
        facts = self.facts(node)
        if "ct" in facts and facts["ct"] != "missing":
            return int(facts["ct"].split(" ")[3])
        value = facts.get("sd_NRestarts", "0")
        return int(value) if value.isdigit() else 0

    def image(self, node: str) -> str:
        """The container's image id, or the main process's executable and its modification time (an
        upgrade by package replaces the file). An interpreted service shows its interpreter only."""
        facts = self.facts(node)
        if "ct" in facts and facts["ct"] != "missing":
            return facts["ct"].split(" ")[4]
        if not facts.get("exe"):
            raise BackendError(f"{node} is not running: what it runs cannot be told")
        return facts["exe"]

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        from resilience.backends.docker_nodes import strategies_for

        service = self.topology.services[self._node(node).service]
        return wait_until_healthy(self, node, strategies_for(service), timeout or service.health_timeout)

    def status(self) -> list[NodeStatus]:
        from resilience.backends.docker_nodes import strategies_for

        def one(node: str) -> NodeStatus:
            spec = self._node(node)
            service = self.topology.services[spec.service]
            state = self.state(node)
            healthy, reason = False, state
            if state == "running":
                failing = next((p for p in (s.probe(self, node) for s in strategies_for(service)) if not p.ok), None)
                healthy, reason = failing is None, "" if failing is None else failing.reason
            ports = {p.number: self.endpoint(node, p.number)[1] for p in service.ports if p.protocol == "tcp"}
            return NodeStatus(node, spec.service, service.role.value, state, healthy, reason, ports)

        rows = self.each(self.node_names(), one)
        return [rows[name] for name in self.node_names()]

    # -- addresses ----------------------------------------------------------------------------------
    def address(self, node: str) -> str:
        """The host's address as the other hosts dial it (all nodes of a host share it)."""
        return self.hosts.hosts[self._node(node).host].dialled_by_peers

    def published(self, node: str, port: int) -> tuple[str, int] | None:
        """The host's address and the port: the harness reaches a host's services directly (or through the
        forwarding its `ports` declares)."""
        host = self.hosts.hosts[self._node(node).host]
        return host.address, host.ports.get(port, port)

    def endpoint(self, node: str, port: int) -> tuple[str, int]:
        address = self.published(node, port)
        if address is None:  # pragma: no cover - every port of a host is reachable as declared
            raise BackendError(f"port {port} of {node} is not reachable from here")
        return address

    def url(self, node: str, port: int, path: str = "") -> str:
        host, host_port = self.endpoint(node, port)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{host_port}{path}"

    # -- processes ----------------------------------------------------------------------------------
    def signal(self, node: str, signal: str = "SIGKILL") -> None:
        """The signal to the node's main process (its supervisor then does what it does with the death of
        its process; `kill` is the operator's kill that keeps it down)."""
        self._require_faults(f"send {signal} to", node)
        spec = self._node(node)
        self._checked(spec, commands.signal(spec, signal), f"{signal} to the main process")

    def kill(self, node: str) -> None:
        self._require_faults("kill", node)
        spec = self._node(node)
        self._checked(spec, commands.kill(spec), "SIGKILL of the main process")

    def crash(self, node: str) -> None:
        self._require_faults("crash", node)
        spec = self._node(node)
        self._checked(spec, commands.crash(spec), "SIGKILL of the main process")

    def stop(self, node: str, timeout: int = 10) -> None:
        self._require_faults("stop", node)
        spec = self._node(node)
        self._checked(spec, commands.stop(spec, timeout), "stop", timeout=max(self.command_timeout, timeout + 30))

    def start(self, node: str) -> None:
        spec = self._node(node)
        self._checked(spec, commands.start(spec), "start")

    def restart(self, node: str, timeout: int = 10) -> None:
        self._require_faults("restart", node)
        spec = self._node(node)
        self._checked(spec, commands.restart(spec, timeout), "restart", timeout=max(self.command_timeout, timeout + 30))

    def pause(self, node: str) -> None:
        self._require_faults("pause", node)
        spec = self._node(node)
        self._checked(spec, commands.pause(spec), "SIGSTOP of its processes")

    def unpause(self, node: str) -> None:
        spec = self._node(node)
        if spec.control.kind is not ControlKind.CONTAINER and self.state(node) != "paused":
            return
        self._checked(spec, commands.pause(spec, resume=True), "SIGCONT of its processes")

    # -- inside a node ------------------------------------------------------------------------------
    def exec(self, node: str, cmd: Sequence[str], user: str | None = None) -> tuple[int, str]:
        spec = self._node(node)
        try:
            result = self.run_on(spec.host, commands.exec_(spec, cmd, user))
        except HostUnreachable as exc:
            return SSH_FAILED, str(exc)
        return result.rc, result.output

    def exec_ok(self, node: str, cmd: Sequence[str], user: str | None = None) -> str:
        rc, out = self.exec(node, cmd, user)
        if rc != 0:
            raise BackendError(f"`{' '.join(cmd)}` on {node} exited {rc}: {out.strip()[-400:]}")
        return out

    def put_file(self, node: str, path: str, content: str | bytes, mode: int = 0o644) -> None:
        self._require_faults(f"write {path} on", node)
        spec = self._node(node)
        data = content.encode() if isinstance(content, str) else content
        for step in commands.put_file(spec, path, data, mode):
            self._checked(spec, step, f"writing {path}")

    def logs(self, node: str, tail: int | None = None, since: float | None = None, timestamps: bool = False) -> str:
        spec = self._node(node)
        try:
            result = self.run_on(spec.host, commands.logs(spec, tail, since))
        except HostUnreachable:
            return ""
        if result.rc != 0 and not result.stdout:
            return ""
        lines = hosts_logs.timed_lines(spec.logs.kind, result.stdout)
        return hosts_logs.render(lines, tail, since, timestamps)

    # -- network ------------------------------------------------------------------------------------
    def iptables(self, node: str, args: Sequence[str]) -> str:
        """iptables in the node's namespace (its host's, or its container's). Only reading the rules and
        adding or deleting rules that carry our comment are done: on a host we did not set up, a flush or a
        rule of someone else's is never touched."""
        _check_rule_change(self.run_id, node, args)
        if args and args[0] in ("-I", "-A"):
            self._require_faults("add a network rule on", node)
        spec = self._node(node)
        try:
            result = self.run_on(spec.host, commands.iptables(spec, args))
        except HostUnreachable as exc:
            raise NetfilterError(f"{node}: `iptables {' '.join(args)}`: {exc}") from None
        if result.rc != 0:
            detail = (result.stderr or result.stdout).strip()
            raise NetfilterError(f"{node}: `iptables {' '.join(args)}` failed on host {spec.host}: {detail}")
        return result.stdout

    def disconnect(self, node: str) -> None:
        raise BackendError(
            f"{node}: a host cannot be detached from its network by the harness; isolate it with iptables rules "
            f"(the isolate fault's `iptables` method)"
        )

    def connect(self, node: str) -> None:
        """Every host stays on its network (disconnect is refused), so there is nothing to re-attach."""

    def connected_nodes(self) -> set[str]:
        return set(self.node_names())


def _state(spec: HostNode, facts: dict[str, str]) -> str:
    paused = facts.get("proc_state") == "T"
    if spec.control.kind is ControlKind.CONTAINER:
        status = facts.get("ct", "missing").split(" ")[0]
        return "missing" if status in ("missing", "") else status
    if spec.control.kind is ControlKind.SYSTEMD:
        if facts.get("sd_LoadState") == "not-found":
            return "missing"
        word = _STATE_OF_SYSTEMD.get(facts.get("sd_ActiveState", ""), "exited")
        if facts.get("sd_SubState") == "auto-restart":
            word = "restarting"
        return "paused" if word == "running" and paused else word
    status = facts.get("sv_status", "")
    if "no such process" in status:
        return "missing"
    words = status.split()
    word = _STATE_OF_SUPERVISOR.get(words[1] if len(words) > 1 else "", "exited")
    return "paused" if word == "running" and paused else word


def _check_rule_change(run_id: str, node: str, args: Sequence[str]) -> None:
    """Reading rules is always allowed; a change must be an insert or append carrying this run's comment,
    or a delete of a rule carrying any run's comment (cleanup removes what a killed run left)."""
    if not args or args[0] in ("-S", "-L", "--list-rules", "--list"):
        return
    words = list(args)
    comment = next((words[i + 1] for i, word in enumerate(words[:-1]) if word == "--comment"), "")
    if words[0] in ("-I", "-A") and comment.startswith(f"resilience:{run_id}:"):
        return
    if words[0] == "-D" and comment.startswith("resilience:"):
        return
    raise NetfilterError(
        f"{node}: refusing `iptables {' '.join(args)}`: on a host only rules commented resilience:<run>:<fault> "
        f"are added or deleted, and no chain is flushed"
    )


def wait_for_state(run: HostsRun, node: str, wanted: Iterable[str], timeout: float = 30.0) -> str:
    """Poll the node's state until it is one of `wanted`; the state reached. Raises BackendError on timeout."""
    wanted = set(wanted)
    deadline = time.monotonic() + timeout
    state = run.state(node)
    while state not in wanted:
        if time.monotonic() >= deadline:
            raise BackendError(f"{node} stayed {state!r} for {timeout:.0f} s; expected one of {sorted(wanted)}")
        time.sleep(0.2)
        state = run.state(node)
    return state
