"""Topologies: what a run is made of (model), how a topology file is read (loader, over yaml_reader), and the
command-line options that adjust one (options);
an existing deployment's hosts file (hosts). Errors are located: `FILE:LINE: what; expected ...`.

Everything a caller needs is importable from here: `from resilience.topology import Topology, load_topology`.
"""

from resilience.topology.errors import LocatedError, TopologyError
from resilience.topology.hosts import HostsTopology, is_hosts_file, load_hosts, parse_hosts
from resilience.topology.loader import load_topology, parse_topology
from resilience.topology.model import (
    HealthCheck,
    HealthKind,
    NodeSpec,
    Port,
    RestartName,
    RestartPolicy,
    Role,
    Service,
    Tier,
    Topology,
    TopologyLookupError,
)
from resilience.topology.options import parse_param_options, parse_set_options
from resilience.topology.yaml_reader import BUILTIN_TEMPLATE_NAMES

__all__ = [
    "BUILTIN_TEMPLATE_NAMES",
    "HealthCheck",
    "HealthKind",
    "HostsTopology",
    "LocatedError",
    "NodeSpec",
    "Port",
    "RestartName",
    "RestartPolicy",
    "Role",
    "Service",
    "Tier",
    "Topology",
    "TopologyError",
    "TopologyLookupError",
    "is_hosts_file",
    "load_hosts",
    "load_topology",
    "parse_hosts",
    "parse_param_options",
    "parse_set_options",
    "parse_topology",
]
