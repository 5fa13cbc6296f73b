"""Configuration files a node needs before it starts, rendered from the topology (harness/config/templates).

The Go services of RapidPro dial one Postgres and one Redis address, so the load balancer's stable
addresses and the proxy in front of them are derived from the topology here rather than written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from resilience.topology import NodeSpec, Role, Topology

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "harness" / "config" / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)

# role -> (health path for HAProxy's check, default port) for the HTTP pools behind the load balancer
HTTP_POOLS: dict[Role, tuple[str, str, int]] = {
    Role.WEB: ("web", "/", 8000),
    Role.COURIER: ("courier", "/", 8080),
    Role.MAILROOM: ("mailroom", "/mr/", 8090),
}
SENTINEL_MASTER_NAME = "rapidpro"


def node_environment(topology: Topology, node: NodeSpec, run_id: str) -> dict[str, str]:
    """The environment a node's process gets, whichever backend starts it: the service's env, who it is in the
    run, and the stand-in switches (STANDIN_SWITCHES)."""
    service = topology.services[node.service]
    peers = [n.name for n in topology.nodes() if n.service == node.service]
    env = {
        **{k: str(v) for k, v in service.env.items()},
        "RESILIENCE_RUN": run_id,
        "RESILIENCE_NODE": node.name,
        "RESILIENCE_SERVICE": node.service,
        "RESILIENCE_INDEX": str(node.index),
        "RESILIENCE_PEERS": ",".join(peers),
    }
    if service.switches:
        env["STANDIN_SWITCHES"] = json.dumps(service.switches)
    return env


def _render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


def _node_names(topology: Topology, role: Role) -> list[str]:
    return [n.name for n in topology.nodes() if topology.services[n.service].role is role]


def _first_port(topology: Topology, role: Role, default: int) -> int:
    for service in topology.services.values():
        if service.role is role and service.ports:
            return service.ports[0][0]
    return default


def files_for(topology: Topology, node: NodeSpec, run_id: str) -> dict[str, str]:
    """Paths inside the node -> file contents, for the node's role (empty for roles that need none)."""
    role = topology.services[node.service].role
    if role is Role.LB:
        pools = [
            {
                "name": name,
                "check_path": path,
                "port": _first_port(topology, pool_role, port),
                "servers": _node_names(topology, pool_role),
            }
            for pool_role, (name, path, port) in HTTP_POOLS.items()
        ]
        return {
            "/etc/haproxy/haproxy.cfg": _render(
                "haproxy.cfg.j2",
                run_id=run_id,
                http_pools=pools,
                postgres=_node_names(topology, Role.POSTGRES),
                redis=_node_names(topology, Role.REDIS),
            )
        }
    if role is Role.REDIS:
        master = _node_names(topology, Role.REDIS)[0]
        return {"/etc/redis/redis.conf": _render("redis.conf.j2", run_id=run_id, node=node.name, master=master)}
    if role is Role.SENTINEL:
        sentinels = _node_names(topology, Role.SENTINEL)
        return {
            "/etc/redis/sentinel.conf": _render(
                "sentinel.conf.j2",
                run_id=run_id,
                node=node.name,
                master=_node_names(topology, Role.REDIS)[0],
                master_name=SENTINEL_MASTER_NAME,
                quorum=len(sentinels) // 2 + 1,
                down_after_ms=int(topology.params.get("sentinel_down_after_ms", 1000)),
                failover_timeout_ms=int(topology.params.get("sentinel_failover_timeout_ms", 5000)),
            )
        }
    if role is Role.PROXY:
        lb = _node_names(topology, Role.LB)
        upstream = lb[0] if lb else "lb"
        proxies = [
            {"name": "postgres", "listen": 15432, "upstream": f"{upstream}:5432"},
            {"name": "redis", "listen": 16379, "upstream": f"{upstream}:6379"},
        ]
        return {"/etc/toxiproxy.json": _render("toxiproxy.json.j2", proxies=proxies)}
    return {}
