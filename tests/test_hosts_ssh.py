"""The hosts backend on real SSH: one VM-like host (sshd + supervisord in a container of the host image,
reached only through a port published on 127.0.0.1, a key pair made for the test) running a supervised
program that writes a timestamped line every 0.2 s. Every operation goes through SSH; Docker only creates
and removes the host."""

from __future__ import annotations

import calendar
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends import engine
from resilience.backends.base import BackendError, NetfilterError
from resilience.backends.hosts import FaultsNotAllowed, HostsRun, wait_for_state
from resilience.backends.hosts_testbed import SshTestBed, reap_orphans, supervisor_program
from resilience.backends.ssh import HostUnreachable
from resilience.faults import netfilter
from resilience.faults.partition import PartitionFault
from resilience.topology import parse_hosts

# The test bed's host keys are made per container, so paramiko has never seen them (it warns, and goes on).
pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")]

RUN_ID = "0000000000feed"
NODE = "ticker-1"
TICKER = "sh -c 'while true; do echo \"$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) tick\"; sleep 0.2; done'"
SERVICES = """\
  ticker:
    role: aggregator
    supervisor: ticker
    nodes: [vm-1, vm-2]
    logs: {file: /var/log/ticker.log}
    health:
      - log: tick$
      - command: [test, -s, /var/log/ticker.log]
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshTestBed]:
    client = engine.connect()
    reap_orphans(client)
    bed = SshTestBed(client, tmp_path_factory.mktemp("keys"))
    try:
        program = {"ticker": supervisor_program("ticker", TICKER, "/var/log/ticker.log")}
        hosts = [bed.add_host(name, program) for name in ("vm-1", "vm-2")]
        for host in hosts:
            bed.wait_for_ssh(host)
        yield bed
    finally:
        bed.close()


@pytest.fixture(scope="module")
def run(bed: SshTestBed) -> Iterator[HostsRun]:
    run = HostsRun(parse_hosts(bed.hosts_yaml(SERVICES), "testbed.yaml"), RUN_ID)
    for node in run.node_names():
        wait_for_state(run, node, {"running"}, timeout=60)
    yield run
    run.close()


@pytest.fixture
def running(run: HostsRun) -> HostsRun:
    """The ticker running and unfrozen, whatever the test before left."""
    run.unpause(NODE)
    if run.state(NODE) not in ("running", "restarting"):
        run.start(NODE)
    wait_for_state(run, NODE, {"running"}, timeout=60)
    return run


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.2)


def test_commands_run_over_ssh_as_root_through_sudo(running: HostsRun) -> None:
    assert running.exec_ok(NODE, ["id", "-u"]).strip() == "0"
    assert running.exec_ok(NODE, ["id", "-un"], user="deploy").strip() == "deploy"
    rc, out = running.exec(NODE, ["sh", "-c", "echo oops >&2; exit 7"])
    assert (rc, out.strip()) == (7, "oops")
    with pytest.raises(BackendError, match="exited 7"):
        running.exec_ok(NODE, ["sh", "-c", "exit 7"])
    running.put_file(NODE, "/etc/resilience-test/hello.txt", "hello 'world' $HOME\n", mode=0o600)
    assert running.exec_ok(NODE, ["cat", "/etc/resilience-test/hello.txt"]) == "hello 'world' $HOME\n"
    assert running.exec_ok(NODE, ["stat", "-c", "%a", "/etc/resilience-test/hello.txt"]).strip() == "600"


def test_health_and_status_come_over_ssh(running: HostsRun) -> None:
    assert running.wait_healthy(NODE, timeout=30) >= 0
    rows = running.status()
    assert [(r.node, r.service, r.role, r.state, r.healthy) for r in rows] == [
        (node, "ticker", "aggregator", "running", True) for node in ("ticker-1", "ticker-2")
    ]
    assert running.restart_policy(NODE) == "no"  # as the topology declares for the role; supervisor tells none


def test_a_crash_is_restarted_by_the_supervisor(running: HostsRun) -> None:
    before = running.started_at(NODE)
    running.crash(NODE)
    wait_until(
        lambda: running.state(NODE) == "running" and running.started_at(NODE) != before,
        what="supervisor restarting the ticker",
    )


def test_a_kill_keeps_it_down_until_started(running: HostsRun) -> None:
    pid = running.facts(NODE)["pid"]
    running.kill(NODE)
    wait_for_state(running, NODE, {"exited"}, timeout=30)
    assert running.exec(NODE, ["kill", "-0", pid])[0] != 0  # that process is gone
    time.sleep(2)  # past supervisor's restart back-off: it still stays down
    assert running.state(NODE) == "exited"
    running.start(NODE)
    wait_for_state(running, NODE, {"running"}, timeout=30)
    assert running.facts(NODE)["pid"] != pid


def test_stop_and_start(running: HostsRun) -> None:
    running.stop(NODE)
    assert running.state(NODE) == "exited"
    running.start(NODE)
    wait_for_state(running, NODE, {"running"}, timeout=30)
    running.restart(NODE)
    wait_for_state(running, NODE, {"running"}, timeout=30)


def test_pause_freezes_every_process_of_the_program_and_unpause_thaws_them(running: HostsRun) -> None:
    pid = running.facts(NODE)["pid"]
    running.pause(NODE)
    try:
        assert running.state(NODE) == "paused"
        # The program's shell and its `sleep` child: the whole process group is stopped.
        table = [line.split() for line in running.exec_ok(NODE, ["ps", "-e", "-o", "pgid=,stat="]).splitlines()]
        states = [stat for pgid, stat in table if pgid == pid]
        assert len(states) >= 2 and all(s.startswith("T") for s in states), table
        time.sleep(0.5)  # supervisord may still be copying a line written just before the stop
        frozen = running.logs(NODE, tail=1)
        time.sleep(1.0)
        assert running.logs(NODE, tail=1) == frozen  # no line written while frozen
    finally:
        running.unpause(NODE)
    assert running.state(NODE) == "running"
    wait_until(lambda: running.logs(NODE, tail=1) != frozen, what="a new line after the thaw")
    assert running.facts(NODE)["pid"] == pid  # the same process, thawed, not restarted


def test_logs_since_a_time_with_their_timestamps(running: HostsRun) -> None:
    wait_until(lambda: running.logs(NODE, tail=5).count("tick") == 5, what="five lines")
    since = time.time()
    wait_until(lambda: running.logs(NODE, since=since).count("tick") >= 5, what="new lines")
    text = running.logs(NODE, since=since, timestamps=True)
    lines = text.splitlines()
    assert lines and all(line.endswith(" tick") for line in lines)
    stamps = [line.split(" ")[0] for line in lines]
    assert all(s.endswith("Z") and "T" in s for s in stamps)
    assert min(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) for s in stamps) >= int(since)
    # Without `since`, earlier lines are there too.
    assert running.logs(NODE).count("tick") > len(lines)
    assert running.logs(NODE, tail=3).count("\n") == 3


def test_rules_with_our_tag_are_added_and_removed_without_touching_others(running: HostsRun) -> None:
    foreign = ["INPUT", "-p", "tcp", "--dport", "9", "-m", "comment", "--comment", "someone-else", "-j", "ACCEPT"]
    running.exec_ok(NODE, ["iptables", "-A", *foreign])  # a rule of the host's own, not ours
    try:
        netfilter.add_rule(running, NODE, "INPUT", ["-p", "tcp", "--dport", "9999"], "f1")
        ours = netfilter.rules_with(running, NODE, netfilter.run_prefix(RUN_ID))
        assert [r.comment for r in ours] == [f"resilience:{RUN_ID}:f1"]
        with pytest.raises(NetfilterError, match="refusing"):
            running.iptables(NODE, ["-F", "INPUT"])
        with pytest.raises(NetfilterError, match="refusing"):
            running.iptables(NODE, ["-D", *foreign])
        assert netfilter.remove_fault_rules(running, [NODE], "f1") == 1
        rules = running.iptables(NODE, ["-S"])
        assert "resilience:" not in rules and "someone-else" in rules
    finally:
        running.exec(NODE, ["iptables", "-D", *foreign])


def test_without_allow_faults_nothing_is_disturbed(bed: SshTestBed, running: HostsRun) -> None:
    guarded = HostsRun(parse_hosts(bed.hosts_yaml(SERVICES, allow_faults=False), "testbed.yaml"), RUN_ID)
    try:
        before = guarded.started_at(NODE)
        with pytest.raises(FaultsNotAllowed):
            guarded.kill(NODE)
        with pytest.raises(FaultsNotAllowed):
            guarded.pause(NODE)
        assert guarded.state(NODE) == "running" and guarded.started_at(NODE) == before
    finally:
        guarded.close()


def test_an_unreachable_host_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = f"""\
version: 1
kind: hosts
name: gone
allow_faults: true
hosts:
  vm-9: {{address: 127.0.0.1, ssh: {{user: deploy, port: {port}, connect_timeout: 3}}}}
services:
  ticker: {{role: aggregator, supervisor: ticker, nodes: [vm-9]}}
"""
    run = HostsRun(parse_hosts(text, "gone.yaml"), RUN_ID)
    try:
        rc, out = run.exec("ticker-1", ["true"])
        assert rc == 255 and f"cannot reach host vm-9 (deploy@127.0.0.1:{port}) over SSH" in out
        assert run.state("ticker-1") == "missing"
        with pytest.raises(HostUnreachable, match="host vm-9"):
            run.kill("ticker-1")
        assert run.logs("ticker-1") == ""
    finally:
        run.close()


def test_a_wrong_key_is_a_clear_error(bed: SshTestBed, tmp_path: Path) -> None:
    from resilience.backends.hosts_testbed import generate_keypair

    other, _ = generate_keypair(tmp_path)
    text = bed.hosts_yaml(SERVICES).replace(str(bed.identity_file), str(other))
    run = HostsRun(parse_hosts(text, "testbed.yaml"), RUN_ID)
    try:
        rc, out = run.exec(NODE, ["true"])
        assert rc == 255 and "cannot reach host vm-1" in out and "identity_file" in out
    finally:
        run.close()


def test_a_hung_host_holds_up_only_its_own_nodes(bed: SshTestBed, running: HostsRun) -> None:
    assert running.exec_ok("ticker-2", ["hostname"]).strip() == "vm-2"  # both connections are open
    frozen = bed.hosts["vm-1"].container
    answers: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: answers.append(running.exec(NODE, ["hostname"])))
    frozen.pause()  # test equipment: the whole of vm-1 stops answering, sshd included
    try:
        worker.start()
        assert running.exec_ok("ticker-2", ["hostname"]).strip() == "vm-2"
        assert running.state("ticker-2") == "running"
        assert worker.is_alive() and answers == []  # vm-1's command still waits
    finally:
        frozen.unpause()
    worker.join(60)
    assert answers == [(0, "vm-1\n")]


def test_a_partition_between_hosts_with_tagged_rules(running: HostsRun) -> None:
    def reaches_vm_2() -> bool:
        return running.exec(NODE, ["nc", "-z", "-w", "2", running.address("ticker-2"), "22"])[0] == 0

    assert running.address("ticker-2") == "vm-2" and reaches_vm_2()
    fault = PartitionFault(groups=[[NODE], ["ticker-2"]])
    fault.inject(running)
    try:
        assert not reaches_vm_2()
        for node in running.node_names():
            assert [r.comment for r in netfilter.rules_with(running, node, netfilter.run_prefix(RUN_ID))] == [
                netfilter.rule_comment(RUN_ID, fault.id)
            ]
    finally:
        recovered = fault.recover(running)
    assert recovered == {"rules_removed": 2}
    assert reaches_vm_2()


def test_a_host_behind_a_proxyjump_bastion_is_reached_through_it(bed: SshTestBed, tmp_path: Path) -> None:
    """vm-2 named by its LAN name only, reachable only through vm-1: the user's ssh_config says so with
    ProxyJump, which paramiko alone ignores (it would dial `vm-2` from the harness and fail)."""
    from resilience.backends.hosts_image import DEPLOY_USER

    jump = bed.hosts["vm-1"]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"""\
Host bastion
    HostName 127.0.0.1
    Port {jump.ssh_port}
Host vm-2-lan
    HostName vm-2
    Port 22
    ProxyJump bastion
Host *
    User {DEPLOY_USER}
    IdentityFile {bed.identity_file}
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
"""
    )
    text = f"""\
version: 1
kind: hosts
name: behind-bastion
allow_faults: true
ssh: {{ssh_config: {config}, sudo: true, connect_timeout: 10}}
hosts:
  vm-2: {{address: vm-2-lan}}
services:
  ticker: {{role: aggregator, supervisor: ticker, nodes: [vm-2]}}
"""
    run = HostsRun(parse_hosts(text, "bastion.yaml"), RUN_ID)
    try:
        rc, out = run.exec("ticker-1", ["hostname"])
        assert (rc, out.strip()) == (0, "vm-2")
    finally:
        run.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ssh_config"], "the translated copy is removed"
