"""`resilience plan`: every command a run's faults would send to which host, from the faults' own code against a
dry-run HostsRun, with nothing run and nothing contacted (no Docker, no SSH, no socket)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from resilience.backends import hosts_commands as commands
from resilience.backends.hosts_dryrun import PlanRun, plan_schedule
from resilience.cli import main
from resilience.faults.schedule import parse_schedule
from resilience.topology import load_hosts

HOSTS = """\
version: 1
kind: hosts
name: staging
allow_faults: {allow}
ssh: {{user: deploy, sudo: true}}
hosts:
  app-1: {{address: 10.0.0.11}}
  app-2: {{address: 10.0.0.12}}
  db-1: {{address: 10.0.0.21}}
  db-2: {{address: 10.0.0.22}}
  lb-1: {{address: 10.0.0.5}}
services:
  courier:
    role: courier
    systemd: courier.service
    nodes: [app-1, {{host: app-2, supervisor: courier}}]
    ports: [8080]
    health:
      - http: {{port: 8080, path: /, contains: courier}}
  mailroom:
    role: mailroom
    systemd: mailroom.service
    nodes: [app-1, app-2]
  postgres:
    role: postgres
    systemd: postgresql@15-main.service
    nodes: [db-1, db-2]
    ports: [5432]
    failover: {{method: pg_ctl, promote: pg_ctlcluster 15 main promote, rejoin: /usr/local/bin/pg-rejoin}}
  lb:
    role: lb
    systemd: haproxy.service
    nodes: [lb-1]
    ports: [5432]
    haproxy: {{socket: /run/haproxy/admin.sock}}
"""

TARGET = """\
version: 1
kind: target
name: staging
hosts: staging-hosts.yaml
lb_url: http://10.0.0.5
api_token: abcdef0123456789abcdef
channel_uuid: 8c1b2a4e-1f0e-4b7a-9c55-2b1f6f0b8d11
aggregator: {url: "http://127.0.0.1:8070", send_url: "http://10.0.0.99:8070/send"}
database: postgres://ro@10.0.0.21:5432/temba
flows: {registration: ~, quick_reply: ~}
"""


class ConnectionAttempted(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_connection(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any socket connection, any SSH shell: the test fails, naming what was dialled."""
    attempts: list[str] = []

    def refuse(what: str):  # type: ignore[no-untyped-def]
        def raiser(*args, **kwargs):  # type: ignore[no-untyped-def]
            attempts.append(f"{what} {args[1:] or args}")
            raise ConnectionAttempted(f"a plan tried to connect: {what} {args[1:] or args}")

        return raiser

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr("resilience.backends.ssh.HostShell.__init__", refuse("HostShell"))
    return attempts


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    path = tmp_path / "staging-hosts.yaml"
    path.write_text(HOSTS.format(allow="true"))
    return path


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def section(out: str, header: str) -> str:
    """The lines of the plan's step whose header starts with `header`."""
    block = out.split(f"\n{header}", 1)[1]
    return block.split("\n\n", 1)[0]


def test_kill_courier_names_the_host_and_the_exact_kill_and_start(
    hosts_file: Path, capsys: pytest.CaptureFixture[str], no_connection: list[str]
) -> None:
    code, out = plan(capsys, "kill-courier", "--hosts", str(hosts_file))
    assert code == 0, out
    courier_1 = load_hosts(hosts_file).node("courier-1")
    inject = section(out, "at 8 s: inject kill courier-1")
    assert f"  app-1        change  {commands.kill(courier_1)}" in inject.splitlines()
    recover = section(out, "at 20 s: recover kill courier-1")
    assert f"  app-1        change  {commands.start(courier_1)}" in recover.splitlines()
    assert "wait    until courier-1's health checks pass" in recover
    # Only app-1, courier-1's host, is named; the kill comes before the recovery.
    assert {line.split()[0] for line in (inject + recover).splitlines()[1:] if line.strip()} == {"app-1"}
    assert out.index(commands.kill(courier_1)) < out.index(commands.start(courier_1))
    assert "allow_faults: true" in out and "REFUSED" not in out
    assert no_connection == []


def test_full_prints_the_reads_command_lines_too(hosts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    courier_2 = load_hosts(hosts_file).node("courier-2")  # a supervisor program on app-2
    code, out = plan(capsys, "--hosts", str(hosts_file), "--schedule", "at 1 kill courier-2; recover at 2", "--full")
    assert code == 0, out
    assert f"app-2        read    {commands.facts(courier_2)}" in out
    assert f"app-2        change  {commands.kill(courier_2)}" in out


def test_a_partition_plans_its_tagged_rules_and_deletes_the_same_ones(
    hosts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = plan(capsys, "--hosts", str(hosts_file), "--schedule", "at 1 partition courier-1 | postgres-1 as cut")
    assert code == 0, out
    inject = section(out, "at 1 s: inject partition")
    recover = section(out, "at the end: recover partition")
    added = [line.split("change  ")[1] for line in inject.splitlines() if "change" in line]
    deleted = [line.split("change  ")[1] for line in recover.splitlines() if "change" in line]
    assert len(added) == 2 and all(":cut -j DROP" in rule and " -I INPUT 1 " in rule for rule in added)
    assert sorted(r.replace(" -I INPUT 1 ", " -D INPUT ") for r in added) == sorted(deleted)
    assert "app-1" in inject and "db-1" in inject and "db-2" not in inject + recover


def test_a_fault_that_talks_to_a_service_api_is_named_not_dialled(
    hosts_file: Path, capsys: pytest.CaptureFixture[str], no_connection: list[str]
) -> None:
    code, out = plan(capsys, "pg-failover-async", "--hosts", str(hosts_file))
    assert code == 0, out
    inject = section(out, "at 8 s: inject pg-failover postgres-1")
    assert "db-2         exec    pg_ctlcluster 15 main promote" in inject  # the hosts file's promote, on the standby
    assert "not simulated: pg-failover talks to lb lb-1 on 10.0.0.5:5432 through its own API" in inject
    assert no_connection == []


def test_lb_cut_plans_the_runtime_api_lines_on_the_lb_host(
    hosts_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = plan(capsys, "--hosts", str(hosts_file), "--schedule", "at 1 lb-cut courier for 2")
    assert code == 0, out
    inject, recover = section(out, "at 1 s: inject lb-cut"), section(out, "at 3 s: recover lb-cut")
    for server in ("courier-1", "courier-2"):
        assert f"'set server courier/{server} state maint' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock" in inject
        assert f"'set server courier/{server} state ready' | socat" in recover
    assert {line.split()[0] for line in (inject + recover).splitlines()[1:] if line.strip()} == {"lb-1"}


def test_the_plan_runs_the_faults_own_code_and_no_real_shell(hosts_file: Path) -> None:
    """The dry run's HostsRun never makes a real HostShell: the autouse fixture makes that raise."""
    run = PlanRun(load_hosts(hosts_file), "0123456789abcd")
    schedule = parse_schedule("at 1 pause mailroom-2; recover at 2", run.topology)
    steps = plan_schedule(run, schedule)
    assert [(s.action, s.kind, s.targets) for s in steps] == [
        ("inject", "pause", ["mailroom-2"]),
        ("recover", "pause", ["mailroom-2"]),
    ]
    changes = [(c.host, c.command) for s in steps for c in s.commands if c.kind == "change"]
    mailroom_2 = load_hosts(hosts_file).node("mailroom-2")
    assert changes == [
        ("app-2", commands.pause(mailroom_2)),
        ("app-2", commands.pause(mailroom_2, resume=True)),
    ]


def test_a_file_without_allow_faults_is_planned_and_said_to_be_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "guarded.yaml"
    path.write_text(HOSTS.format(allow="false"))
    code, out = plan(capsys, "kill-courier", "--hosts", str(path))
    assert code == 0, out
    assert f"REFUSED: a run would be refused: {path} says allow_faults: false" in out
    assert "inject kill courier-1" in out  # still shows what it would have done


def test_a_target_name_resolves_to_its_hosts_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "staging-hosts.yaml").write_text(HOSTS.format(allow="true"))
    (tmp_path / "staging.yaml").write_text(TARGET)
    monkeypatch.setenv("RESILIENCE_TARGETS", str(tmp_path))
    code, out = plan(capsys, "kill-mailroom", "--target", "staging")
    assert code == 0, out
    assert out.startswith(f"plan of kill-mailroom on target staging ({tmp_path / 'staging-hosts.yaml'})")
    assert "inject kill mailroom-1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kill-web"], "experiment kill-web:1: 'web-1' is not a node of topology staging"),
        (["kill-corier"], "no experiment 'kill-corier'"),
        ([], "name an EXPERIMENT"),
        (["kill-courier", "--target", "nowhere"], "--target nowhere:"),
    ],
)
def test_mistakes_are_one_clear_line_and_bad_input(
    hosts_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    options = [] if "--target" in args else ["--hosts", str(hosts_file)]
    code, out = plan(capsys, *args, *options)
    assert code == 3 and message in out and "Traceback" not in out, out


def test_a_deployment_must_be_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["plan", "kill-courier"])
    assert stopped.value.code == 3
    assert "one of the arguments --target --hosts is required" in capsys.readouterr().err
