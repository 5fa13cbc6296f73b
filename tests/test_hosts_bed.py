"""The stand-in bed's plan, without Docker: where standin-ha's nodes go on the SSH hosts, how each is started
(the Docker backend's command and environment), and the hosts file that describes it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from resilience.backends.hosts_standin import (
    HAPROXY_SOCKET,
    STANDIN_HA_LAYOUT,
    LayoutError,
    Placement,
    host_files,
    launcher,
    services_yaml,
)
from resilience.backends.render import files_for, node_environment
from resilience.topology import Topology, load_topology, parse_hosts

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = "0000000000beef"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").with_switches(
        {"courier": {"drop_after_ack": 0.1, "note": 'it\'s "quoted" $HOME'}}
    )


def hosts_text(placement: Placement) -> str:
    hosts = "\n".join(
        f"  {h}: {{address: 127.0.0.1, peer_address: {h}, ssh: {{port: {2200 + i}}}}}"
        for i, h in enumerate(placement.hosts)
    )
    return f"version: 1\nkind: hosts\nname: bed\nallow_faults: true\nhosts:\n{hosts}\nservices:\n" + services_yaml(
        placement
    )


def test_the_default_layout_places_every_node_once_without_port_clashes(topology: Topology) -> None:
    placement = Placement(topology, STANDIN_HA_LAYOUT)
    assert sorted(placement.host_of) == sorted(n.name for n in topology.nodes())
    assert placement.ports_of("lb-1") == (80, 5432, 6379, 8070, 8404, 8474, 9000, 9200, 9999, 15432, 16379, 26379)
    # The names the topology's addresses use resolve to the host that holds them.
    assert {"lb", "toxiproxy", "aggregator", "search", "s3"} <= set(placement.aliases_of("lb-1"))
    assert {"postgres-1", "redis-1", "sentinel-1"} <= set(placement.aliases_of("db-1"))


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({**STANDIN_HA_LAYOUT, "db-2": ("postgres-2", "redis-2")}, "sentinel-2 is placed on no host"),
        ({**STANDIN_HA_LAYOUT, "db-3": ("sentinel-2",)}, "sentinel-2 is placed on both db-2 and db-3"),
        ({**STANDIN_HA_LAYOUT, "db-3": ("postgres-9",)}, "host db-3: postgres-9 is no node of topology"),
        (
            {**STANDIN_HA_LAYOUT, "db-1": ("postgres-1", "redis-1", "sentinel-1", "lb-1"), "lb-1": ("toxiproxy-1",)},
            "host db-1: port 5432 of both postgres-1 and lb-1",
        ),
    ],
)
def test_a_bad_layout_is_refused_with_what_is_wrong(topology: Topology, layout: dict, message: str) -> None:
    with pytest.raises(LayoutError, match=message):
        Placement(topology, {h: tuple(n) for h, n in layout.items()})


@pytest.mark.parametrize("node", ["courier-1", "postgres-2", "web-2"])
def test_a_node_starts_with_the_docker_backends_command_and_environment(
    topology: Topology, node: str, tmp_path: Path
) -> None:
    spec = topology.node(node)
    script = launcher(topology, spec, RUN_ID)
    assert script.rstrip().endswith("exec " + " ".join(topology.services[spec.service].command or ()))
    # Run it with the command swapped for `env`: what the shell exports is exactly the Docker env, quotes and all.
    probe = tmp_path / "launch"
    probe.write_text(script.rsplit("exec ", 1)[0].replace("cd /opt/standin\n", "") + "exec env -0\n")
    out = subprocess.run(["sh", str(probe)], capture_output=True, check=True, env={}).stdout.decode()
    exported = dict(item.split("=", 1) for item in out.split("\0") if item and "=" in item)
    expected = node_environment(topology, spec, RUN_ID)
    assert {k: exported[k] for k in expected} == expected
    assert expected["RESILIENCE_NODE"] == node and expected["RESILIENCE_PEERS"].startswith(f"{spec.service}-1,")
    if spec.service == "courier":
        assert json.loads(expected["STANDIN_SWITCHES"])["note"] == 'it\'s "quoted" $HOME'


def test_each_host_gets_its_nodes_rendered_config_and_haproxy_an_admin_socket(topology: Topology) -> None:
    placement = Placement(topology, STANDIN_HA_LAYOUT)
    lb = host_files(placement, "lb-1", RUN_ID)
    rendered = files_for(topology, topology.node("lb-1"), RUN_ID)["/etc/haproxy/haproxy.cfg"]
    haproxy = str(lb["/etc/haproxy/haproxy.cfg"])
    assert f"stats socket {HAPROXY_SOCKET} mode 660 level admin" in haproxy
    # Nothing else differs: the same backends and checks as the Docker rendering.
    assert [ln for ln in haproxy.splitlines() if HAPROXY_SOCKET not in ln] == rendered.splitlines()
    assert {"/etc/toxiproxy.json", "/etc/redis/sentinel.conf"} <= set(lb)
    db = host_files(placement, "db-2", RUN_ID)
    assert "replicaof redis-1 6379" in str(db["/etc/redis/redis.conf"])
    sudo_env = str(host_files(placement, "app-1", RUN_ID)["/etc/resilience/sudo.env"])
    assert "DATABASE_URL=postgres://temba:temba@toxiproxy:15432/temba\n" in sudo_env
    assert "PYTHONPATH=/opt/standin\n" in sudo_env


def test_the_hosts_file_describes_the_same_nodes_on_their_hosts(topology: Topology) -> None:
    placement = Placement(topology, STANDIN_HA_LAYOUT)
    hosts = parse_hosts(hosts_text(placement), "bed.yaml")
    nodes = {n.name: n for n in hosts.nodes()}
    assert sorted(nodes) == sorted(n.name for n in topology.nodes())
    for name, node in nodes.items():
        assert node.host == placement.host_of[name]
        assert node.control.name == topology.node(name).service
    for name, service in topology.services.items():
        mirrored = hosts.as_topology().services[name]
        assert (mirrored.role, mirrored.ports, mirrored.health) == (service.role, service.ports, service.health)
        assert mirrored.restart_policy == service.restart_policy
