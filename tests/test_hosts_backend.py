"""The hosts backend without hosts: HostsRun (resilience/backends/hosts.py) over a fake shell — what it runs
where, what it refuses, how it reads states and logs, and that one hung host does not hold up another."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable

import pytest

from resilience.backends import hosts_commands as commands
from resilience.backends.base import Backend, BackendError, NetfilterError
from resilience.backends.hosts import WORKERS_PER_HOST, FaultsNotAllowed, HostsRun
from resilience.backends.hosts_logs import leading_time, render, timed_lines
from resilience.backends.ssh import HostShell, Result, hostspec
from resilience.faults import netfilter
from resilience.topology import parse_hosts
from resilience.topology.hosts import Host, LogKind

YAML = """\
version: 1
kind: hosts
name: staging
allow_faults: {allow}
ssh: {{user: deploy, sudo: true}}
hosts:
  app-1: {{address: 10.0.0.11}}
  app-2: {{address: 10.0.0.12, ports: {{8080: 18080}}}}
  db-1: {{address: 10.0.0.21, ssh: {{port: 2222}}}}
services:
  courier:
    role: courier
    systemd: courier.service
    nodes: [app-1, {{host: app-2, supervisor: courier}}]
    ports: [8080]
  redis:
    role: redis
    container: redis
    nodes: [db-1]
"""
RUN_ID = "0000000000abcd"


class FakeShell(HostShell):
    """Records every command line; answers through `answer(host, command)`."""

    def __init__(self, host: Host, log: list[tuple[str, str]], answer: Callable[[str, str], Result]) -> None:
        super().__init__(host)
        self.log = log
        self.answer = answer

    def run(self, command: str, timeout: float = 60.0) -> Result:
        self.log.append((self.host.name, command))
        return self.answer(self.host.name, command)


def make_run(allow: bool = True, answer: Callable[[str, str], Result] | None = None) -> tuple[HostsRun, list]:
    log: list[tuple[str, str]] = []
    reply = answer or (lambda _host, _command: Result(0, "", ""))
    topology = parse_hosts(YAML.format(allow="true" if allow else "false"), "staging.yaml")
    run = HostsRun(topology, RUN_ID, shell_factory=lambda host: FakeShell(host, log, reply))
    return run, log


def test_a_hosts_run_is_a_backend_with_the_protocols_parameters() -> None:
    run, _ = make_run()
    assert isinstance(run, Backend)
    for name in (n for n in dir(Backend) if not n.startswith("_") and inspect.isfunction(getattr(Backend, n))):
        wanted = inspect.signature(getattr(Backend, name))
        actual = inspect.signature(getattr(HostsRun, name))
        assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
            (p.name, p.kind, p.default) for p in wanted.parameters.values()
        ], name
    assert run.node_names() == ["courier-1", "courier-2", "redis-1"]
    assert run.nodes_of("redis") == ["redis-1"] and run.nodes_of("courier") == ["courier-1", "courier-2"]


def test_addresses_are_the_hosts_own_or_as_forwarded() -> None:
    run, log = make_run()
    assert run.endpoint("courier-1", 8080) == ("10.0.0.11", 8080)
    assert run.url("courier-2", 8080, "/c/") == "http://10.0.0.12:18080/c/"
    assert run.address("redis-1") == "10.0.0.21"
    assert log == []  # no host is contacted to tell an address


def test_faults_refuse_without_allow_faults_and_contact_no_host() -> None:
    run, log = make_run(allow=False)
    for operation in (run.kill, run.crash, run.pause, run.signal, run.stop, run.restart):
        with pytest.raises(FaultsNotAllowed, match=r"does not say `allow_faults: true`"):
            operation("courier-1")
    with pytest.raises(FaultsNotAllowed):
        run.put_file("courier-1", "/etc/x", "y")
    comment = netfilter.rule_comment(RUN_ID, "f1")
    with pytest.raises(FaultsNotAllowed):
        run.iptables("courier-1", ["-I", "INPUT", "1", "-m", "comment", "--comment", comment, "-j", "DROP"])
    assert log == []
    run.exec("courier-1", ["true"])  # reading and running commands stay allowed
    run.iptables("courier-1", ["-S"])
    assert [command for _host, command in log][-1].endswith("iptables -w 5 -S")


def test_only_rules_with_our_tag_are_added_or_deleted_and_no_chain_is_flushed() -> None:
    run, log = make_run()
    for args in (
        ["-F"],
        ["-F", "INPUT"],
        ["-X"],
        ["-P", "INPUT", "DROP"],
        ["-I", "INPUT", "1", "-j", "DROP"],
        ["-I", "INPUT", "1", "-m", "comment", "--comment", "resilience:otherrun:f1", "-j", "DROP"],
        ["-D", "INPUT", "-m", "comment", "--comment", "someone-else", "-j", "ACCEPT"],
    ):
        with pytest.raises(NetfilterError, match="refusing"):
            run.iptables("courier-1", args)
    assert log == []
    netfilter.add_rule(run, "courier-1", "INPUT", ["-s", "10.0.0.21"], "f1")
    # A rule a killed run left (another run id) may be deleted: that is what cleanup does.
    run.iptables("courier-1", ["-D", "INPUT", "-m", "comment", "--comment", "resilience:0101:f9", "-j", "DROP"])
    assert [host for host, _ in log] == ["app-1", "app-1"]


def test_each_way_of_control_gets_its_own_commands() -> None:
    run, log = make_run()
    run.kill("courier-1")
    run.kill("courier-2")
    run.kill("redis-1")
    run.pause("courier-1")
    run.iptables("redis-1", ["-S"])
    sent = dict(enumerate(command for _host, command in log))
    assert (
        "systemctl show -p MainPID --value courier.service" in sent[0] and "systemctl stop courier.service" in sent[0]
    )
    assert "supervisorctl pid courier" in sent[1] and "supervisorctl stop courier" in sent[1]
    assert sent[2] == "docker kill redis"
    assert sent[3] == "systemctl kill --signal=SIGSTOP courier.service"
    assert 'nsenter -t "$pid" -n iptables -w 5 -S' in sent[4]
    assert [host for host, _ in log] == ["app-1", "app-2", "db-1", "app-1", "db-1"]


def test_a_host_outside_the_topology_is_never_contacted() -> None:
    run, log = make_run()
    with pytest.raises(BackendError, match="not a host of hosts topology staging; it is never contacted"):
        run.run_on("elsewhere", "true")
    assert log == []


def test_one_hung_host_does_not_hold_up_another() -> None:
    release = threading.Event()

    def answer(host: str, _command: str) -> Result:
        if host == "app-1":
            release.wait(60)
        return Result(0, f"on {host}\n", "")

    run, _ = make_run(answer=answer)
    hung: list[tuple[int, str]] = []
    # More commands than app-1's workers: they tie up app-1's pool, not the other hosts'.
    workers = [
        threading.Thread(target=lambda: hung.append(run.exec("courier-1", ["true"])))
        for _ in range(WORKERS_PER_HOST + 2)
    ]
    for worker in workers:
        worker.start()
    try:
        assert run.exec("courier-2", ["true"]) == (0, "on app-2\n")
        assert run.exec("redis-1", ["true"]) == (0, "on db-1\n")
        assert hung == []  # app-1 is still hung while the others answered
    finally:
        release.set()
        for worker in workers:
            worker.join(30)
    assert hung == [(0, "on app-1\n")] * (WORKERS_PER_HOST + 2)


def test_states_are_read_from_the_supervisors_words() -> None:
    replies = {
        "app-1": "sd_LoadState=loaded\nsd_ActiveState=active\nsd_SubState=running\nsd_NRestarts=2\nsd_Restart=always\n"
        "pid=41\nproc_state=T\nproc_start=900\nexe=/usr/bin/courier@1700000000\n",
        "app-2": "sv_status=courier  BACKOFF   Exited too quickly (process log may have details)\npid=0\n",
        "db-1": "ct=exited 0 2024-01-01T00:00:00Z 3 sha256:abc on-failure:5\n",
    }
    run, _ = make_run(answer=lambda host, _c: Result(0, replies[host], ""))
    assert [run.state(n) for n in run.node_names()] == ["paused", "restarting", "exited"]
    assert run.restart_count("courier-1") == 2 and run.restart_policy("courier-1") == "always"
    assert run.started_at("courier-1") == "41@900" and run.image("courier-1") == "/usr/bin/courier@1700000000"
    assert run.restart_count("redis-1") == 3 and run.restart_policy("redis-1") == "on-failure:5"
    assert run.image("redis-1") == "sha256:abc"
    replies["app-1"] = "sd_LoadState=not-found\nsd_ActiveState=inactive\n"
    assert run.state("courier-1") == "missing"
    replies["app-1"] = "sd_LoadState=loaded\nsd_ActiveState=activating\nsd_SubState=auto-restart\npid=0\n"
    assert run.state("courier-1") == "restarting" and run.is_running("courier-1")


def test_a_command_that_finds_no_process_is_a_clear_error() -> None:
    run, _ = make_run(answer=lambda _h, _c: Result(commands.NOT_RUNNING, "", "systemd: courier.service has none"))
    with pytest.raises(BackendError, match=r"courier-1 \(systemd: courier.service on host app-1\) is not running"):
        run.crash("courier-1")


def test_journald_lines_carry_their_own_times() -> None:
    output = "\n".join(
        json.dumps({"__REALTIME_TIMESTAMP": str(stamp), "MESSAGE": message})
        for stamp, message in ((1_700_000_000_250_000, "first"), (1_700_000_005_000_000, [104, 105]))
    )
    lines = timed_lines(LogKind.JOURNALD, output)
    assert lines == [(1_700_000_000.25, "first"), (1_700_000_005.0, "hi")]
    assert render(lines, None, 1_700_000_001, True) == "2023-11-14T22:13:25.000000Z hi\n"


def test_file_lines_take_the_time_they_start_with_or_their_predecessors() -> None:
    output = (
        "no time yet\n"
        "2023-11-14T22:13:20.5Z started\n"
        "  a continuation line\n"
        'time="2023-11-14T22:13:30+00:00" level=info msg=later\n'
        "[2023-11-14 22:13:40,123] python logging\n"
    )
    lines = timed_lines(LogKind.FILE, output)
    assert [t for t, _ in lines] == [None, 1_700_000_000.5, 1_700_000_000.5, 1_700_000_010.0, 1_700_000_020.123]
    assert render(lines, None, 1_700_000_010, False) == (
        'time="2023-11-14T22:13:30+00:00" level=info msg=later\n[2023-11-14 22:13:40,123] python logging\n'
    )
    assert render(lines, 2, None, False).count("\n") == 2
    # A source with no times at all cannot be cut by time: everything is kept.
    untimed = timed_lines(LogKind.FILE, "a\nb\n")
    assert render(untimed, None, 1_700_000_000, True) == "a\nb\n"
    assert leading_time("2023-11-14T23:13:20+0100 x") == 1_700_000_000.0


def test_the_ssh_hostspec_names_user_address_and_port() -> None:
    topology = parse_hosts(YAML.format(allow="true"), "staging.yaml")
    assert hostspec(topology.hosts["db-1"]) == "paramiko://deploy@10.0.0.21:2222"
    assert hostspec(topology.hosts["app-1"]) == "paramiko://deploy@10.0.0.11"


def test_put_file_writes_a_temporary_then_renames_it_in_chunks_that_fit_a_command_line() -> None:
    topology = parse_hosts(YAML.format(allow="true"), "staging.yaml")
    steps = commands.put_file(topology.node("courier-1"), "/etc/courier/x.conf", b"x" * 100_000, 0o600)
    assert steps[0].startswith("mkdir -p /etc/courier") and steps[-1].startswith("chmod 600 ")
    assert len(steps) == 5 and all(len(step) < 70_000 for step in steps)
    with pytest.raises(BackendError, match="absolute path"):
        commands.put_file(topology.node("courier-1"), "relative", b"", 0o644)
