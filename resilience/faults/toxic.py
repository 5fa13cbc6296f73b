"""toxic: a Toxiproxy toxic on one of the proxies every RapidPro service reaches Postgres or Redis through.

Types and attributes are Toxiproxy's: latency (latency, jitter ms), timeout (timeout ms; 0 = hold data
forever), reset_peer (timeout ms), bandwidth (rate KB/s), slicer (average_size, size_variation bytes,
delay µs), slow_close (delay ms), limit_data (bytes). The toxic is named `rs_<fault id>`, so recovery
deletes only it.

The mechanism (`mechanism`, learned before the fault is registered, and reported in its facts): a
Toxiproxy node (role proxy) wherever the run has one, through its API at the node's endpoint; on a hosts
run without one, `tc netem` on the hosts of the service `proxy` names (faults/netem.py: latency and
bandwidth, downstream, what those hosts send from the service's port); otherwise the fault says why
there is none.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

from resilience.backends.hosts_data import host_commands
from resilience.faults import netem
from resilience.faults.base import BaseFault, Facts, FaultError, FaultSpecError
from resilience.faults.toxiproxy_api import ToxiproxyApi, toxic_name

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.topology import Topology

TOXIC_TYPES = ("latency", "timeout", "reset_peer", "bandwidth", "slicer", "slow_close", "limit_data")
STREAMS = ("downstream", "upstream")
TOXIPROXY = "toxiproxy"
NETEM = "netem"
MECHANISMS = (TOXIPROXY, NETEM)


@dataclasses.dataclass(kw_only=True)
class ToxicFault(BaseFault):
    kind = "toxic"
    positional = ("proxy", "type")

    proxy: str  # the Toxiproxy proxy: "postgres" or "redis" in the standard topologies
    type: str
    attributes: dict[str, int] = dataclasses.field(default_factory=dict)
    stream: str = "downstream"
    toxicity: float = 1.0
    node: str = ""  # the proxy node; "" = the run's (first) node of role proxy
    mechanism: str = ""  # toxiproxy | netem; "": Toxiproxy if the run has one, else netem on a hosts run
    device: str = ""  # netem: the hosts' device ("": the one routing to the other hosts)
    qdiscs: dict[str, str] = dataclasses.field(default_factory=dict)  # netem, learned: node -> device

    def validate(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise FaultSpecError(f"toxic: type must be one of {', '.join(TOXIC_TYPES)}, got {self.type!r}")
        if self.stream not in STREAMS:
            raise FaultSpecError(f"toxic: stream must be one of {', '.join(STREAMS)}, got {self.stream!r}")
        if not 0 <= self.toxicity <= 1:
            raise FaultSpecError(f"toxic: toxicity must be in [0, 1], got {self.toxicity}")
        if self.mechanism and self.mechanism not in MECHANISMS:
            raise FaultSpecError(f"toxic: mechanism must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}")

    def targets(self) -> list[str]:
        return [self.node] if self.node else []

    def footprint(self, topology: Topology) -> Counter[str]:
        return Counter()  # it slows or breaks traffic; it takes no node out

    def check_topology(self, topology: Topology) -> list[str]:
        has_proxy = any(s.role.value == "proxy" for s in topology.services.values())
        # Without a Toxiproxy a hosts run delays the service itself (netem); inject says if it cannot.
        delayed = any(self.proxy in (s.name, s.role.value) for s in topology.services.values())
        if not has_proxy and not delayed:
            return [f"topology {topology.name} has no service of role proxy (nor a service {self.proxy!r}) for a toxic"]
        return super().check_topology(topology)

    def resolve(self, run: Backend) -> None:
        if not self.mechanism:
            self.mechanism = self._choose(run)
        if self.mechanism == TOXIPROXY:
            if not self.node:
                self.node = run.nodes_of("proxy")[0] if run.nodes_of("proxy") else ""
            if not self.node:
                raise FaultError(f"toxic: run {run.run_id} has no Toxiproxy (no node of role proxy)")
            return
        hosts = host_commands(run)
        if hosts is None:
            raise FaultError(f"toxic: mechanism netem needs a hosts run; run {run.run_id} has none")
        netem.Shape.of_toxic(self.type, self.attributes, self.stream, self.toxicity)  # refuse before acting
        if not self.qdiscs:
            service, _ = netem.service_port(hosts, self.proxy)
            nodes = [self.node] if self.node else run.nodes_of(service)
            self.qdiscs = {node: self.device or netem.route_device(hosts, node) for node in nodes}

    def _choose(self, run: Backend) -> str:
        if run.nodes_of("proxy"):
            return TOXIPROXY
        if host_commands(run) is not None:
            return NETEM
        raise FaultError(
            f"toxic: run {run.run_id} has no Toxiproxy (no node of role proxy) and is not a hosts run, where "
            f"tc netem could stand in: no mechanism for a {self.type} toxic"
        )

    @property
    def toxic_name(self) -> str:
        return toxic_name(self.id)

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        if self.mechanism == NETEM:
            return self._inject_netem(run)
        body: dict[str, Any] = {
            "name": self.toxic_name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }
        created = ToxiproxyApi(run, self.node).add_toxic(self.proxy, body)
        return {
            "mechanism": TOXIPROXY,
            "toxic": self.toxic_name,
            "node": self.node,
            "attributes": created.get("attributes", {}),
        }

    def _inject_netem(self, run: Backend) -> Facts:
        hosts = host_commands(run)
        if hosts is None:  # pragma: no cover - resolve refused already
            raise FaultError("toxic: netem needs a hosts run")
        shape = netem.Shape.of_toxic(self.type, self.attributes, self.stream, self.toxicity)
        service, port = netem.service_port(hosts, self.proxy)
        for node, device in self.qdiscs.items():
            netem.add(hosts, node, device, self.id, port, shape)
        handle = f"{netem.netem_handle(self.id):x}:"
        return {
            "mechanism": NETEM,
            "service": service,
            "shape": str(shape),
            "from_port": port,
            "qdiscs": {node: f"{device} root handle {handle}" for node, device in self.qdiscs.items()},
        }

    def recover(self, run: Backend) -> Facts:
        if self.mechanism == NETEM:
            hosts = host_commands(run)
            if hosts is None:
                raise FaultError(f"toxic {self.id} was applied with tc netem on hosts; run {run.run_id} has none")
            removed = {node: netem.remove(hosts, node, device, self.id) for node, device in self.qdiscs.items()}
            return {"mechanism": NETEM, "removed": sorted(n for n, done in removed.items() if done)}
        self.resolve(run)
        if run.state(self.node) != "running":
            # A stopped proxy lost its toxics with its memory; a paused one is thawed by its own fault.
            return {"removed": False, "proxy_state": run.state(self.node)}
        return {"removed": ToxiproxyApi(run, self.node).remove_toxic(self.proxy, self.toxic_name)}

    def to_args(self) -> list[str]:
        tokens = [self.proxy, self.type]
        defaults = {"stream": "downstream", "toxicity": 1.0, "node": "", "mechanism": "", "device": ""}
        tokens += [f"{k}={getattr(self, k)}" for k, default in defaults.items() if getattr(self, k) != default]
        return tokens + [f"{k}={v}" for k, v in self.attributes.items()]

    @classmethod
    def from_args(cls, args: list[str], options: dict[str, str], topology: Topology | None) -> ToxicFault:
        """`toxic PROXY TYPE [stream=..] [toxicity=..] [node=..] ATTRIBUTE=VALUE...`."""
        if len(args) > len(cls.positional):
            raise FaultSpecError(f"toxic: too many arguments {' '.join(args)!r}; expected <proxy> <type>")
        own = {"stream", "toxicity", "node", "id", "mechanism", "device"}
        given = {k: v for k, v in options.items() if k in own}
        attributes = {k: v for k, v in options.items() if k not in own}
        return cls.from_description(
            {**dict(zip(cls.positional, args, strict=False)), **given, "attributes": attributes},
        )
