"""The hosts faults on real SSH (the VM-like test bed of hosts_testbed.py): HAProxy's runtime API through the
UNIX socket the hosts file declares (socat over SSH; HAProxy's TCP stats port is not even bound), a rolling
upgrade by the file's command on each host in turn and its rollback, and latency on a kernel without netem,
which says so and leaves the hosts' qdiscs as they were."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest

from resilience.backends import engine
from resilience.backends.hosts import FaultsNotAllowed, HostsRun, wait_for_state
from resilience.backends.hosts_testbed import SshTestBed, reap_orphans, supervisor_program
from resilience.faults import FaultError, LbCutFault
from resilience.faults.haproxy_api import HaproxyRuntime, HostUnixSocket, runtime_transport
from resilience.faults.rolling_upgrade import RollingUpgradeFault
from resilience.faults.toxic import ToxicFault
from resilience.topology import parse_hosts

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")]

RUN_ID = "0000000000fa17"
SOCKET = "/run/haproxy/admin.sock"
HAPROXY_CFG = (
    "global",
    f"  stats socket {SOCKET} mode 600 level admin",
    "defaults",
    "  mode tcp",
    "  timeout connect 1s",
    "  timeout client 5s",
    "  timeout server 5s",
    "backend courier",
    "  server courier-1 127.0.0.1:18081",
    "  server courier-2 127.0.0.1:18082",
)
HAPROXY = (
    "mkdir -p /run/haproxy /etc/haproxy && printf '%s\\n' "
    + " ".join(shlex.quote(line) for line in HAPROXY_CFG)
    + " > /etc/haproxy/rs.cfg && exec haproxy -db -f /etc/haproxy/rs.cfg"
)
# The "application": prints the version it was started with; its version file is what the upgrade writes.
APP = "mkdir -p /opt/app && [ -s /opt/app/version ] || echo 1.0 > /opt/app/version; v=$(cat /opt/app/version); "
APP += 'while true; do echo "version $v"; sleep 0.5; done'
# A start script whose real work is a child process (as a postmaster under a wrapper).
WRAPPER = "sh -c 'sleep 10007 & wait'"
SERVICES = f"""\
  wrapper:
    role: aggregator
    supervisor: wrapper
    nodes: [vm-2]
  lb:
    role: lb
    supervisor: haproxy
    nodes: [vm-1]
    haproxy: {{socket: {SOCKET}}}
  app:
    role: courier
    supervisor: app
    nodes: [vm-1, vm-2]
    ports: [8080]
    logs: {{file: /var/log/app.log}}
    health:
      - command: [test, -s, /opt/app/version]
    upgrade:
      command: [sh, -c, "test {{version}} != bad && echo {{version}} > /opt/app/version"]
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshTestBed]:
    client = engine.connect()
    reap_orphans(client)
    bed = SshTestBed(client, tmp_path_factory.mktemp("keys"))
    try:
        app = {"app": supervisor_program("app", f"sh -c {shlex.quote(APP)}", "/var/log/app.log")}
        lb = {"haproxy": supervisor_program("haproxy", f"sh -c {shlex.quote(HAPROXY)}", "/var/log/haproxy.log")}
        wrapper = {"wrapper": supervisor_program("wrapper", WRAPPER, "/var/log/wrapper.log")}
        hosts = [bed.add_host("vm-1", {**app, **lb}), bed.add_host("vm-2", {**app, **wrapper})]
        for host in hosts:
            bed.wait_for_ssh(host)
        yield bed
    finally:
        bed.close()


def _run(bed: SshTestBed, allow: bool = True) -> HostsRun:
    return HostsRun(parse_hosts(bed.hosts_yaml(SERVICES, allow_faults=allow), "testbed.yaml"), RUN_ID)


@pytest.fixture(scope="module")
def run(bed: SshTestBed) -> Iterator[HostsRun]:
    run = _run(bed)
    for node in run.node_names():
        wait_for_state(run, node, {"running"}, timeout=60)
    yield run
    run.close()


def test_lb_cut_goes_through_the_declared_socket_over_ssh(run: HostsRun, bed: SshTestBed) -> None:
    assert isinstance(runtime_transport(run, "lb-1"), HostUnixSocket)
    # Only the UNIX socket exists: nothing listens on the TCP stats port a Docker topology would use.
    assert run.exec(("lb-1"), ["sh", "-c", "echo 'show info' | nc -w 1 127.0.0.1 9999"])[1].strip() == ""
    api = HaproxyRuntime(run, "lb-1")
    assert {s.server: s.in_maint for s in api.servers_of("courier")} == {"courier-1": False, "courier-2": False}

    fault = LbCutFault(backend="courier", servers=["courier-2"])
    facts = fault.inject(run)
    try:
        assert facts["maint"] == ["courier-2"]
        assert {s.server: s.in_maint for s in api.servers_of("courier")} == {"courier-1": False, "courier-2": True}
        # Without allow_faults the same socket may be read, never changed.
        denied = _run(bed, allow=False)
        try:
            assert [s.server for s in HaproxyRuntime(denied, "lb-1").servers_of("courier")] == [
                "courier-1",
                "courier-2",
            ]
            with pytest.raises(FaultsNotAllowed):
                LbCutFault(backend="courier", servers=["courier-1"]).inject(denied)
        finally:
            denied.close()
        assert not next(s for s in api.servers_of("courier") if s.server == "courier-1").in_maint
    finally:
        assert fault.recover(run) == {"ready": ["courier-2"]}
    assert not any(s.in_maint for s in api.servers_of("courier"))
    with pytest.raises(FaultError, match="No such server"):
        api.set_state("courier", "courier-9", "maint")


def test_kill_and_crash_take_a_supervisor_programs_children_too(run: HostsRun) -> None:
    def children() -> str:
        return run.exec("wrapper-1", ["pgrep", "-f", "^sleep 10007"])[1].strip()

    assert children()
    run.crash("wrapper-1")
    wait_for_state(run, "wrapper-1", {"running"}, timeout=30)  # supervisor started it again
    assert len(children().split()) == 1  # the old child died with its group; one new one
    run.kill("wrapper-1")
    wait_for_state(run, "wrapper-1", {"exited"}, timeout=30)
    assert children() == ""
    run.start("wrapper-1")


def _versions(run: HostsRun) -> dict[str, str]:
    return {node: run.exec_ok(node, ["cat", "/opt/app/version"]).strip() for node in ("app-1", "app-2")}


def test_a_rolling_upgrade_runs_the_files_command_per_host_and_rolls_back(run: HostsRun) -> None:
    assert _versions(run) == {"app-1": "1.0", "app-2": "1.0"}
    started = {node: run.started_at(node) for node in ("app-1", "app-2")}
    fault = RollingUpgradeFault(service="app", image="2.0", from_image="1.0")
    facts = fault.inject(run)
    try:
        assert facts["order"] == ["app-1", "app-2"] and set(facts["healthy_after_s"]) == {"app-1", "app-2"}
        assert _versions(run) == {"app-1": "2.0", "app-2": "2.0"}
        # Each node was restarted after its command, so it now runs what the command installed.
        assert all(run.started_at(node) != started[node] for node in started)
        assert "version 2.0" in run.logs("app-2", tail=2)
    finally:
        assert fault.recover(run)["rolled_back"] == ["app-1", "app-2"]
    assert _versions(run) == {"app-1": "1.0", "app-2": "1.0"}


def test_a_failing_upgrade_command_stops_the_roll_loudly(run: HostsRun) -> None:
    fault = RollingUpgradeFault(service="app", image="bad", from_image="1.0")
    with pytest.raises(FaultError, match=r"upgrading app-1 to bad failed on host vm-1 \(exit 1\)"):
        fault.inject(run)
    fault.recover(run)
    assert _versions(run) == {"app-1": "1.0", "app-2": "1.0"}


def test_latency_on_a_kernel_without_netem_says_so_and_leaves_nothing(run: HostsRun) -> None:
    fault = ToxicFault(proxy="app", type="latency", attributes={"latency": 100})
    qdiscs_before = run.exec_ok("app-1", ["tc", "qdisc", "show"])
    fault.resolve(run)
    assert fault.mechanism == "netem" and fault.qdiscs == {"app-1": "eth0", "app-2": "eth0"}
    try:
        facts = fault.inject(run)
    except FaultError as exc:
        message = str(exc)
    else:  # a kernel with netem (not this machine's): then it must have been applied, and is removed
        assert facts["mechanism"] == "netem"
        assert fault.recover(run)["removed"] == ["app-1", "app-2"]
        pytest.skip("this kernel has netem: the unavailable path is covered by tests/test_hosts_faults.py")
    assert "no Toxiproxy (a service of role proxy)" in message
    assert "the kernel of host vm-1 has no netem (sch_netem)" in message
    assert run.exec_ok("app-1", ["tc", "qdisc", "show"]) == qdiscs_before
    assert fault.recover(run) == {"mechanism": "netem", "removed": []}
