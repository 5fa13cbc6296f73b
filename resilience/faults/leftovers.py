"""Finding and removing what faults leave in a run, without any record of the faults themselves.

The registry file says which faults were active; this looks at the run itself, so that a run whose
harness died before it could even write the file is still cleaned: our iptables rules (by comment) in
every node, toxics named rs_* on the run's proxies, paused nodes, HAProxy servers put in maint by
hand, and nodes detached from the run's network. Only nodes of this run are looked at.

On a deployment we did not create (the hosts backend), `remove_host_leftovers` looks only for what our
faults make there: rules tagged `resilience:` of any run (each host's namespace once, as its nodes share
it; a container node's own), frozen nodes, and nodes a recorded fault acted on that are still down. It
deletes rules one by one, never flushes a chain, and leaves every rule without our tag alone.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resilience.backends.base import BackendError
from resilience.faults.base import FaultError
from resilience.faults.haproxy_api import HaproxyRuntime
from resilience.faults.netfilter import COMMENT_PREFIX, Rule, delete_rule, rules_with, run_prefix
from resilience.faults.toxiproxy_api import TOXIC_PREFIX, ToxiproxyApi

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.backends.hosts import HostsRun


# Checks run every 300 ms with rise 1 (harness/config/templates/haproxy.cfg.j2); a loaded machine delays them.
MAINT_SETTLE_SECONDS = 15.0


@dataclass(frozen=True)
class Leftover:
    what: str  # "detached", "paused", "iptables", "toxic", "maint"
    node: str
    detail: str

    def __str__(self) -> str:
        return f"{self.node}: {self.what} {self.detail}".rstrip()


def _present(run: Backend) -> dict[str, str]:
    states = {node: run.state(node) for node in run.node_names()}
    return {node: state for node, state in states.items() if state != "missing"}


def find_leftovers(run: Backend) -> list[Leftover]:
    """Everything fault-made that is still in place. Nodes that cannot be inspected are reported too."""
    found: list[Leftover] = []
    present = _present(run)
    attached = run.connected_nodes()
    for node, state in present.items():
        if node not in attached:
            found.append(Leftover("detached", node, f"from {run.network_name}"))
        if state == "paused":
            found.append(Leftover("paused", node, ""))
        if state in ("running", "paused"):
            try:
                found.extend(Leftover("iptables", node, str(r)) for r in rules_with(run, node, run_prefix(run.run_id)))
            except FaultError as exc:
                found.append(Leftover("unreadable", node, f"iptables: {exc}"))
    for node in (n for n in run.nodes_of("proxy") if present.get(n) == "running"):
        try:
            api = ToxiproxyApi(run, node)
            for proxy, body in api.proxies().items():
                for toxic in body.get("toxics", []):
                    if str(toxic.get("name", "")).startswith(TOXIC_PREFIX):
                        found.append(Leftover("toxic", node, f"{proxy}/{toxic['name']} ({toxic.get('type')})"))
        except FaultError as exc:
            found.append(Leftover("unreadable", node, f"toxiproxy: {exc}"))
    for node in (n for n in run.nodes_of("lb") if present.get(n) == "running"):
        try:
            for server in HaproxyRuntime(run, node).servers():
                if server.in_maint:
                    found.append(Leftover("maint", node, f"{server.backend}/{server.server}"))
        except FaultError as exc:
            found.append(Leftover("unreadable", node, f"haproxy: {exc}"))
    return found


def remove_leftovers(run: Backend) -> list[str]:
    """Undo what find_leftovers finds, thawing and reconnecting first (a frozen proxy cannot answer)."""
    done: list[str] = []
    for item in _in_repair_order(find_leftovers(run)):
        if item.what == "detached":
            run.connect(item.node)
            done.append(f"{item.node}: reconnected to {run.network_name}")
        elif item.what == "paused":
            run.unpause(item.node)
            done.append(f"{item.node}: resumed (was paused)")
    # Thawed nodes may hold more: look again for what needs an answering node.
    readied: set[tuple[str, str]] = set()
    for item in find_leftovers(run):
        try:
            done.extend(_remove(run, item))
        except FaultError as exc:
            done.append(f"{item.node}: could not remove {item.what} {item.detail}: {exc}")
        else:
            if item.what == "maint":
                readied.add((item.node, item.detail.partition("/")[0]))
    for node, backend in sorted(readied):
        done.append(_settle(run, node, backend))
    return done


def _settle(run: Backend, node: str, backend: str, timeout: float = MAINT_SETTLE_SECONDS) -> str:
    """Servers leave maint forced down (nothing says which were up): wait, bounded, until the backend's
    health checks have brought one back, so that cleanup hands over a balancer that serves again."""
    api = HaproxyRuntime(run, node)
    deadline = time.monotonic() + timeout
    while True:
        try:
            up = sorted(s.server for s in api.servers_of(backend) if s.up)
        except FaultError as exc:
            return f"{node}: {backend}: could not read server states after cleanup: {exc}"
        if up or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if up:
        return f"{node}: {backend}: {', '.join(up)} UP again by health check"
    return f"{node}: {backend}: no server UP {timeout:.0f} s after cleanup (their health checks decide)"


def _in_repair_order(items: list[Leftover]) -> list[Leftover]:
    order = {"detached": 0, "paused": 1}
    return sorted((i for i in items if i.what in order), key=lambda i: order[i.what])


def _remove(run: Backend, item: Leftover) -> list[str]:
    if item.what == "iptables":
        for rule in rules_with(run, item.node, run_prefix(run.run_id)):
            if str(rule) == item.detail:
                delete_rule(run, rule)
                return [f"{item.node}: deleted iptables rule {item.detail}"]
        return []
    if item.what == "toxic":
        proxy, _, rest = item.detail.partition("/")
        name = rest.split(" ", 1)[0]
        if ToxiproxyApi(run, item.node).remove_toxic(proxy, name):
            return [f"{item.node}: deleted toxic {proxy}/{name}"]
        return []
    if item.what == "maint":
        backend, _, server = item.detail.partition("/")
        # Nothing says what it was before: take it back as down and let its health checks decide.
        HaproxyRuntime(run, item.node).make_ready(backend, server, assume_down=True)
        return [f"{item.node}: {backend}/{server} ready (was in maint)"]
    if item.what == "unreadable":
        return [f"{item.node}: could not inspect: {item.detail}"]
    return []


def _namespaces(run: HostsRun) -> dict[str, list[str]]:
    """Network namespace -> the nodes in it: a host's own holds its systemd and supervisor nodes; a container
    node has its own."""
    from resilience.topology.hosts import ControlKind

    spaces: dict[str, list[str]] = {}
    for node in run.hosts.nodes():
        key = (
            f"container {node.name} on host {node.host}"
            if node.control.kind is ControlKind.CONTAINER
            else f"host {node.host}"
        )
        spaces.setdefault(key, []).append(node.name)
    return spaces


def find_host_leftovers(run: HostsRun, stopped: Iterable[str] = ()) -> list[Leftover]:
    """Tagged rules of any run (each namespace read once, through one of its nodes), frozen nodes, and the
    nodes of `stopped` (those a recorded fault acted on) that are down."""
    found: list[Leftover] = []
    states = run.each(run.node_names(), run.state)
    for node in run.node_names():
        if states[node] == "paused":
            found.append(Leftover("paused", node, ""))
        elif node in stopped and states[node] in ("exited", "created"):
            found.append(Leftover("stopped", node, "by a recorded fault"))
    for space, nodes in _namespaces(run).items():
        # A host's rules are read through any of its nodes; a container's only while it runs.
        readable = nodes if space.startswith("host ") else [n for n in nodes if states[n] in ("running", "paused")]
        if not readable:
            continue
        try:
            rules = rules_with(run, readable[0], f"{COMMENT_PREFIX}:")
        except FaultError as exc:
            found.append(Leftover("unreadable", readable[0], f"iptables of {space}: {exc}"))
            continue
        found.extend(Leftover("iptables", rule.node, str(rule)) for rule in rules)
    return found


def remove_host_leftovers(run: HostsRun, stopped: Iterable[str] = ()) -> list[str]:
    """Undo what find_host_leftovers finds: thaw, delete our rules one by one, start what a recorded fault
    left down. One line per action or problem."""
    stopped = list(stopped)
    done: list[str] = []
    for item in find_host_leftovers(run, stopped):
        try:
            if item.what == "paused":
                run.unpause(item.node)
                done.append(f"{item.node}: resumed (was frozen)")
            elif item.what == "stopped":
                run.start(item.node)
                done.append(f"{item.node}: started (left down by a recorded fault)")
            elif item.what == "iptables":
                delete_rule(run, Rule(item.node, tuple(shlex.split(item.detail)), ""))
                done.append(f"{item.node} (host {run.hosts.node(item.node).host}): deleted rule {item.detail}")
            else:
                done.append(f"{item.node}: could not inspect: {item.detail}")
        except (FaultError, BackendError) as exc:
            done.append(f"{item.node}: could not remove {item.what} {item.detail}: {exc}")
    return done
