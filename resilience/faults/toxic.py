"""toxic: a Toxiproxy toxic on one of the proxies every RapidPro service reaches Postgres or Redis through.

Types and attributes are Toxiproxy's: latency (latency, jitter ms), timeout (timeout ms; 0 = hold data
forever), reset_peer (timeout ms), bandwidth (rate KB/s), slicer (average_size, size_variation bytes,
delay µs), slow_close (delay ms), limit_data (bytes). The toxic is named `rs_<fault id>`, so recovery
deletes only it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

from resilience.faults.base import BaseFault, Facts, FaultSpecError, nodes_with_role
from resilience.faults.toxiproxy_api import ToxiproxyApi, toxic_name

if TYPE_CHECKING:
    from resilience.backends.docker import DockerRun
    from resilience.topology import Topology

TOXIC_TYPES = ("latency", "timeout", "reset_peer", "bandwidth", "slicer", "slow_close", "limit_data")
STREAMS = ("downstream", "upstream")


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

    def validate(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise FaultSpecError(f"toxic: type must be one of {', '.join(TOXIC_TYPES)}, got {self.type!r}")
        if self.stream not in STREAMS:
            raise FaultSpecError(f"toxic: stream must be one of {', '.join(STREAMS)}, got {self.stream!r}")
        if not 0 <= self.toxicity <= 1:
            raise FaultSpecError(f"toxic: toxicity must be in [0, 1], got {self.toxicity}")

    def targets(self) -> list[str]:
        return [self.node] if self.node else []

    def footprint(self, topology: Topology) -> Counter[str]:
        return Counter()  # it slows or breaks traffic; it takes no node out

    def check_topology(self, topology: Topology) -> list[str]:
        if not any(s.role.value == "proxy" for s in topology.services.values()):
            return [f"topology {topology.name} has no service of role proxy for a toxic"]
        return super().check_topology(topology)

    def resolve(self, run: DockerRun) -> None:
        if not self.node:
            self.node = nodes_with_role(run, "proxy")[0]

    @property
    def toxic_name(self) -> str:
        return toxic_name(self.id)

    def inject(self, run: DockerRun) -> Facts:
        self.resolve(run)
        body: dict[str, Any] = {
            "name": self.toxic_name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }
        created = ToxiproxyApi(run, self.node).add_toxic(self.proxy, body)
        return {"toxic": self.toxic_name, "node": self.node, "attributes": created.get("attributes", {})}

    def recover(self, run: DockerRun) -> Facts:
        self.resolve(run)
        if run.state(self.node) != "running":
            # A stopped proxy lost its toxics with its memory; a paused one is thawed by its own fault.
            return {"removed": False, "proxy_state": run.state(self.node)}
        return {"removed": ToxiproxyApi(run, self.node).remove_toxic(self.proxy, self.toxic_name)}

    def to_args(self) -> list[str]:
        tokens = [self.proxy, self.type]
        defaults = {"stream": "downstream", "toxicity": 1.0, "node": ""}
        tokens += [f"{k}={getattr(self, k)}" for k, default in defaults.items() if getattr(self, k) != default]
        return tokens + [f"{k}={v}" for k, v in self.attributes.items()]

    @classmethod
    def from_args(cls, args: list[str], options: dict[str, str], topology: Topology | None) -> ToxicFault:
        """`toxic PROXY TYPE [stream=..] [toxicity=..] [node=..] ATTRIBUTE=VALUE...`."""
        if len(args) > len(cls.positional):
            raise FaultSpecError(f"toxic: too many arguments {' '.join(args)!r}; expected <proxy> <type>")
        own = {"stream", "toxicity", "node", "id"}
        given = {k: v for k, v in options.items() if k in own}
        attributes = {k: v for k, v in options.items() if k not in own}
        return cls.from_description(
            {**dict(zip(cls.positional, args, strict=False)), **given, "attributes": attributes},
        )
