"""Latency and bandwidth with `tc netem` on the hosts of a service, for a hosts run with no Toxiproxy.

What a service's hosts send from its port (the replies its clients wait for) is delayed or throttled; all
other traffic of the host, the harness's SSH session among it, is left alone (hosts_commands.netem_add:
a prio root qdisc, netem in its fourth band, a u32 filter on the source port). A qdisc cannot carry a
comment, so what was added (node -> device) is recorded on the fault before it is applied, and its handle
is derived from the fault's id: recovery and `resilience cleanup` remove exactly that root qdisc, and only
while it is still ours. A kernel without sch_netem is reported as such, and the attempt leaves nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from resilience.backends import hosts_commands
from resilience.backends.base import BackendError
from resilience.backends.hosts import FaultsNotAllowed
from resilience.backends.hosts_data import HostCommands
from resilience.faults.base import FaultError

NETEM_TYPES = ("latency", "bandwidth")


def netem_handle(fault_id: str) -> int:
    """The root qdisc's major handle for a fault: 1..0xfffe, the same in every process."""
    return int(hashlib.sha256(fault_id.encode()).hexdigest()[:4], 16) % 0xFFFE + 1


@dataclass(frozen=True)
class Shape:
    delay_ms: int = 0
    jitter_ms: int = 0
    rate_kbit: int = 0

    @classmethod
    def of_toxic(cls, toxic_type: str, attributes: dict[str, int], stream: str, toxicity: float) -> Shape:
        """netem's equivalent of a Toxiproxy toxic; FaultError for one it has none of."""
        if toxic_type not in NETEM_TYPES:
            raise FaultError(
                f"toxic {toxic_type} needs a Toxiproxy (a service of role proxy); tc netem does only "
                f"{' and '.join(NETEM_TYPES)}"
            )
        if stream != "downstream":
            raise FaultError("tc netem delays what the service's hosts send: only stream=downstream is possible")
        if toxicity != 1:
            raise FaultError("tc netem acts on every packet from the port: only toxicity=1 is possible")
        if toxic_type == "latency":
            return cls(delay_ms=int(attributes.get("latency", 0)), jitter_ms=int(attributes.get("jitter", 0)))
        return cls(rate_kbit=int(attributes.get("rate", 0)) * 8)  # Toxiproxy's rate is in KB/s

    def __str__(self) -> str:
        if self.rate_kbit:
            return f"rate {self.rate_kbit}kbit"
        return f"delay {self.delay_ms}ms" + (f" ± {self.jitter_ms}ms" if self.jitter_ms else "")


def service_port(run: HostCommands, service_or_role: str) -> tuple[str, int]:
    """The service named (or the first of the role) and its first TCP port."""
    hosts = run.hosts
    service = hosts.services.get(service_or_role) or next(
        (s for s in hosts.services.values() if s.role.value == service_or_role), None
    )
    if service is None:
        raise FaultError(f"hosts file {hosts.path} has no service or role {service_or_role!r} to delay with tc netem")
    ports = [p.number for p in service.ports if p.protocol == "tcp"]
    if not ports:
        raise FaultError(
            f"service {service.name} of {hosts.path} declares no TCP port: netem does not know what to delay"
        )
    return service.name, ports[0]


def route_device(run: HostCommands, node: str) -> str:
    """The device the node's host reaches its peers through (towards another host of the file)."""
    hosts = run.hosts
    own = hosts.node(node).host
    peer = next((h.dialled_by_peers for h in hosts.hosts.values() if h.name != own), "")
    if not peer:
        raise FaultError(f"{node}: its host is the only one of {hosts.path}: give the toxic a device=NAME")
    device = run.run_for(
        node, hosts_commands.in_netns(hosts.node(node), hosts_commands.route_device(peer)), "finding its device",
        disturbs=False,
    ).strip()  # fmt: skip
    if not device:
        raise FaultError(f"{node}: no route from host {own} to {peer}: give the toxic a device=NAME")
    return device


def add(run: HostCommands, node: str, device: str, fault_id: str, port: int, shape: Shape) -> None:
    spec = run.hosts.node(node)
    command = hosts_commands.in_netns(
        spec,
        hosts_commands.netem_add(
            device, netem_handle(fault_id), port, shape.delay_ms, shape.jitter_ms, shape.rate_kbit
        ),
    )
    try:
        run.run_for(node, command, f"tc netem on {device}")
    except FaultsNotAllowed:
        raise
    except BackendError as exc:
        if hosts_commands.NETEM_UNAVAILABLE_MARK in str(exc):
            raise FaultError(
                f"no latency mechanism for {node}: the hosts file has no Toxiproxy (a service of role proxy) and "
                f"the kernel of host {spec.host} has no netem (sch_netem): {exc}"
            ) from None
        raise FaultError(f"tc netem could not be applied: {exc}") from None


def remove(run: HostCommands, node: str, device: str, fault_id: str) -> bool:
    """Remove our root qdisc from the device; False when it is not there (already removed, or replaced)."""
    command = hosts_commands.in_netns(run.hosts.node(node), hosts_commands.netem_remove(device, netem_handle(fault_id)))
    try:
        return run.run_for(node, command, f"removing tc netem from {device}", disturbs=False).strip() == "removed"
    except FaultsNotAllowed:
        raise
    except BackendError as exc:
        raise FaultError(str(exc)) from None
