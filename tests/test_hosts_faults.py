"""The faults that need more than the Backend protocol, on a hosts run over a fake shell: which command runs
on which host (Postgres promotion and rejoin by the declared commands, HAProxy's runtime API through the
declared socket, tc netem where no Toxiproxy runs, a rolling upgrade by the declared command), that a
failing command fails the fault loudly, and that nothing disturbs a node without `allow_faults: true`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from resilience.backends import hosts_commands as commands
from resilience.backends.hosts import FaultsNotAllowed, HostsRun
from resilience.backends.hosts_data import host_commands
from resilience.backends.ssh import HostShell, Result
from resilience.faults import FaultError, LbCutFault, PgFailoverFault, RollingRestartFault, fault_from_description
from resilience.faults.haproxy_api import HaproxyRuntime, HostUnixSocket, TcpSocket, runtime_transport
from resilience.faults.isolate import IsolateFault
from resilience.faults.netem import netem_handle
from resilience.faults.pg_failover import DeclaredPromotion, FailoverMethod, promotion_for
from resilience.faults.redis_failover import RedisFailoverFault, SentinelSetup, _node_named, sentinel_setup
from resilience.faults.rolling_upgrade import RollingUpgradeFault
from resilience.faults.toxic import ToxicFault
from resilience.topology import parse_hosts
from resilience.topology.errors import TopologyError
from resilience.topology.hosts import Host

RUN_ID = "0000000000c0de"
PG_UNIT = "postgresql@15-main.service"
HEAD = """\
version: 1
kind: hosts
name: staging
allow_faults: {allow}
ssh: {{user: deploy, sudo: true}}
hosts:
  app-1: {{address: 10.0.0.11}}
  app-2: {{address: 10.0.0.12}}
  db-1: {{address: 10.0.0.21, peer_address: db-1.lan}}
  db-2: {{address: 10.0.0.22, peer_address: db-2.lan}}
  lb-1: {{address: 10.0.0.5}}
services:
"""
SERVICES = """\
  courier:
    role: courier
    systemd: courier.service
    nodes: [app-1, app-2]
    ports: [8080]
    upgrade:
      command: apt-get install -y courier={version}
  postgres:
    role: postgres
    systemd: postgresql@15-main.service
    nodes: [db-1, db-2]
    ports: [5432]
    failover:
      method: pg_ctl
      promote: pg_ctlcluster 15 main promote
      rejoin: [/usr/local/bin/pg-rejoin, --from, "{new_primary_address}"]
  redis:
    role: redis
    systemd: redis-server.service
    nodes: [db-1, db-2]
    ports: [6379]
    failover: {master: mymaster, sentinels: watchers}
  watchers:
    role: sentinel
    systemd: redis-sentinel.service
    nodes: [db-1, db-2, app-1]
"""
LB = """\
  lb:
    role: lb
    systemd: haproxy.service
    nodes: [lb-1]
    haproxy: {socket: /run/haproxy/admin.sock}
"""
SERVERS_STATE = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n"
    "3 courier 1 courier-1 10.0.0.11 2 0 1\n3 courier 2 courier-2 10.0.0.12 2 0 1\n"
)


class Fake:
    """Hosts as the fake shell sees them: which systemd units run on which host, and Postgres's roles."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.stopped: set[tuple[str, str]] = set()  # (host, unit)
        self.pg_role = {"db-1": "primary", "db-2": "standby"}
        self.failing: dict[str, Result] = {}  # a pattern in a command -> its answer

    def commands_on(self, host: str) -> list[str]:
        return [command for h, command in self.log if h == host]

    def answer(self, host: str, command: str) -> Result:
        for pattern, result in self.failing.items():
            if pattern in command:
                return result
        if command.startswith("proc()"):
            unit = re.search(r"systemctl show -p LoadState .* (\S+) \|", command)
            running = unit is not None and (host, unit.group(1)) not in self.stopped
            if not running:
                return Result(0, "sd_LoadState=loaded\nsd_ActiveState=inactive\nsd_SubState=dead\npid=0\n", "")
            return Result(
                0, "sd_LoadState=loaded\nsd_ActiveState=active\nsd_SubState=running\npid=42\nproc_state=S\n", ""
            )
        if "pg_is_in_recovery()" in command:
            return Result(0, {"primary": "f\n", "standby": "t\n"}[self.pg_role[host]], "")
        if "pg_stat_wal_receiver" in command:
            other = next(h for h, role in self.pg_role.items() if role == "primary")
            return Result(0, f"streaming|{other}.lan\n", "")
        if command.startswith("pid=$(systemctl show -p MainPID --value ") and "kill -KILL" in command:
            self.stopped.add((host, command.split("systemctl stop ")[-1].strip("'")))
        elif command.startswith("systemctl start "):
            self.stopped.discard((host, command.removeprefix("systemctl start ").strip("'")))
        elif command == "pg_ctlcluster 15 main promote":
            self.pg_role[host] = "primary"
        elif command.startswith("/usr/local/bin/pg-rejoin"):
            self.pg_role[host] = "standby"
        elif "socat" in command and "show servers state" in command:
            return Result(0, SERVERS_STATE, "")
        elif command.startswith("a=$(getent ahostsv4"):
            return Result(0, "eth0\n", "")
        elif command.startswith("if tc qdisc show"):
            return Result(0, "removed\n", "")
        return Result(0, "", "")


class FakeShell(HostShell):
    def __init__(self, host: Host, fake: Fake) -> None:
        super().__init__(host)
        self.fake = fake

    def run(self, command: str, timeout: float = 60.0) -> Result:
        self.fake.log.append((self.host.name, command))
        return self.fake.answer(self.host.name, command)


def make_run(allow: bool = True, extra: str = LB, services: str = SERVICES) -> tuple[HostsRun, Fake]:
    fake = Fake()
    hosts = parse_hosts(HEAD.format(allow="true" if allow else "false") + services + extra, "staging.yaml")
    return HostsRun(hosts, RUN_ID, shell_factory=lambda host: FakeShell(host, fake), command_timeout=5), fake


# -- Postgres failover by the declared commands ------------------------------------------------------------


def test_pg_failover_promotes_and_rejoins_by_the_declared_commands_on_the_right_hosts() -> None:
    run, fake = make_run(extra="")
    fault = PgFailoverFault(method="kill", standby_wait=2, rejoin_timeout=5)
    fault.resolve(run)
    assert (fault.primary, fault.standby) == ("postgres-1", "postgres-2")
    fake.log.clear()
    facts = fault.inject(run)
    assert facts.pop("took_hold_after_s") >= 0  # when the primary was killed, for the verdict's window
    assert facts == {"old_primary": "postgres-1", "new_primary": "postgres-2", "promoted_by": FailoverMethod.PG_CTL}
    assert any(f'kill -KILL "$pid"; systemctl stop {PG_UNIT}' in c for c in fake.commands_on("db-1"))
    assert "pg_ctlcluster 15 main promote" in fake.commands_on("db-2")
    assert "pg_ctlcluster 15 main promote" not in fake.commands_on("db-1")

    fake.log.clear()
    facts = fault.recover(run)
    assert facts["rejoined_as"] == "standby" and facts["of"] == "postgres-2"
    on_db1 = fake.commands_on("db-1")
    # The rejoin runs on the old primary's host while it is down, naming the new primary as its peers dial
    # it; then the node is started.
    rejoin = on_db1.index("/usr/local/bin/pg-rejoin --from db-2.lan")
    assert on_db1.index(f"systemctl start {PG_UNIT}") > rejoin
    assert not any("pg-rejoin" in c for c in fake.commands_on("db-2"))


def test_a_failing_promotion_fails_the_fault_with_the_hosts_answer() -> None:
    run, fake = make_run(extra="")
    fake.failing["pg_ctlcluster"] = Result(1, "", "pg_ctl: cannot promote server; server is not in standby mode\n")
    fault = PgFailoverFault(method="kill", standby_wait=2)
    with pytest.raises(FaultError, match=r"postgres-2: promoting it \(pg_ctl\) failed on host db-2 \(exit 1\)") as e:
        fault.inject(run)
    assert "server is not in standby mode" in str(e.value)


def test_a_failing_rejoin_fails_the_recovery_loudly() -> None:
    run, fake = make_run(extra="")
    fault = PgFailoverFault(method="kill", standby_wait=2)
    fault.inject(run)
    fake.failing["pg-rejoin"] = Result(2, "pg_basebackup: error: could not connect\n", "")
    with pytest.raises(FaultError, match=r"rejoining it to postgres-2 \(pg_ctl\) failed on host db-1 \(exit 2\)"):
        fault.recover(run)


def test_pg_failover_without_allow_faults_touches_nothing() -> None:
    run, fake = make_run(allow=False, extra="")
    for method in ("kill", "partition"):
        with pytest.raises(FaultsNotAllowed, match="allow_faults: true"):
            PgFailoverFault(method=method, standby_wait=2).inject(run)
    assert not any("kill -KILL" in c or "promote" in c or "iptables -w 5 -I" in c for _, c in fake.log)


def test_a_partition_on_hosts_spares_the_harnesss_ssh_session() -> None:
    run, fake = make_run(extra="")
    fault = PgFailoverFault(method="partition", standby_wait=2)
    fault.inject(run)
    rules = [c for c in fake.commands_on("db-1") if c.startswith("iptables -w 5 -I")]
    # Only the traffic with the file's other hosts is dropped, never "all but loopback" (SSH among it).
    assert not any("'!'" in rule for rule in rules)
    assert {re.search(r"-[sd] (\S+)", rule).group(1) for rule in rules} == {  # type: ignore[union-attr]
        "10.0.0.11",
        "10.0.0.12",
        "db-2.lan",
        "10.0.0.5",
    }
    assert all(f"resilience:{RUN_ID}:{fault.id}" in rule for rule in rules)


def test_isolate_on_hosts_spares_the_harnesss_ssh_session_and_its_recovery_removes_the_rules() -> None:
    # Everything but loopback would cut the SSH session the recovery itself needs.
    run, fake = make_run(extra="")
    fault = IsolateFault(node="postgres-1")
    facts = fault.inject(run)
    rules = [c for c in fake.commands_on("db-1") if c.startswith("iptables -w 5 -I")]
    assert facts == {"method": "iptables", "rules": len(rules)} and rules
    assert not any("'!'" in rule for rule in rules)
    assert all(re.search(r"-[sd] (10\.0\.0\.\d+|db-2\.lan)", rule) for rule in rules)


def test_patronictl_and_repmgr_have_default_commands() -> None:
    services = SERVICES.replace(
        "method: pg_ctl\n      promote: pg_ctlcluster 15 main promote\n"
        '      rejoin: [/usr/local/bin/pg-rejoin, --from, "{new_primary_address}"]',
        "method: {method}",
    )
    patroni, _ = make_run(extra="", services=services.replace("{method}", "patronictl"))
    promotion = promotion_for(patroni)
    assert isinstance(promotion, DeclaredPromotion) and promotion.method is FailoverMethod.PATRONICTL
    assert promotion.promote_command("postgres-2", "postgres-1") == (
        "patronictl -c /etc/patroni/patroni.yml failover --candidate db-2 --force"
    )
    assert promotion.rejoin_command("postgres-1", "postgres-2") is None  # Patroni rejoins it when it starts

    repmgr, _ = make_run(extra="", services=services.replace("{method}", "repmgr"))
    promotion = promotion_for(repmgr)
    assert isinstance(promotion, DeclaredPromotion)
    assert promotion.promote_command("postgres-2", "postgres-1") == (
        "runuser -u postgres -- repmgr -f /etc/repmgr.conf standby promote"
    )
    assert promotion.rejoin_command("postgres-1", "postgres-2") == (
        "runuser -u postgres -- repmgr -f /etc/repmgr.conf node rejoin -d "
        "'host=db-2.lan user=repmgr dbname=repmgr' --force-rewind"
    )


def test_pg_ctl_needs_its_commands_and_placeholders_are_checked() -> None:
    services = SERVICES.replace('rejoin: [/usr/local/bin/pg-rejoin, --from, "{new_primary_address}"]', "")
    with pytest.raises(TopologyError, match="has no rejoin; expected `rejoin: COMMAND`"):
        make_run(services=services)
    services = SERVICES.replace("{new_primary_address}", "{new_primary_adress}")
    with pytest.raises(TopologyError, match=r"unknown placeholder \{new_primary_adress\}.*did you mean"):
        make_run(services=services)


# -- HAProxy's runtime API through the declared socket -------------------------------------------------------


def test_the_runtime_api_goes_through_the_declared_socket_on_the_lbs_host() -> None:
    run, fake = make_run()
    assert isinstance(runtime_transport(run, "lb-1"), HostUnixSocket)
    fault = LbCutFault(backend="courier", servers=["courier-2"])
    fault.inject(run)
    on_lb = fake.commands_on("lb-1")
    assert commands.haproxy_runtime("/run/haproxy/admin.sock", "show servers state") in on_lb
    assert commands.haproxy_runtime("/run/haproxy/admin.sock", "set server courier/courier-2 state maint") in on_lb
    assert "socat stdio UNIX-CONNECT:/run/haproxy/admin.sock" in on_lb[-1]
    assert not any("haproxy" in c for h, c in fake.log if h != "lb-1")


def test_without_a_declared_socket_the_tcp_port_is_used() -> None:
    run, _ = make_run(extra=LB.replace("    haproxy: {socket: /run/haproxy/admin.sock}\n", ""))
    transport = runtime_transport(run, "lb-1")
    assert isinstance(transport, TcpSocket) and transport.address == ("10.0.0.5", 9999)


def test_an_haproxy_error_answer_fails_the_cut() -> None:
    run, fake = make_run()
    fake.failing["state maint"] = Result(0, "No such server.\n", "")
    with pytest.raises(FaultError, match="No such server"):
        LbCutFault(backend="courier", servers=["courier-2"]).inject(run)
    fake.failing["state maint"] = Result(1, "", "2025/01/01 socat[7] E connect(5, AF=1 ...): No such file\n")
    with pytest.raises(FaultError, match=r"through /run/haproxy/admin.sock failed on host lb-1 \(exit 1\)"):
        LbCutFault(backend="courier", servers=["courier-2"]).inject(run)


def test_reading_the_runtime_api_is_allowed_changing_it_is_not_without_allow_faults() -> None:
    run, fake = make_run(allow=False)
    assert [s.server for s in HaproxyRuntime(run, "lb-1").servers_of("courier")] == ["courier-1", "courier-2"]
    with pytest.raises(FaultsNotAllowed):
        LbCutFault(backend="courier", servers=["courier-2"]).inject(run)
    assert not any("state maint" in c for _, c in fake.log)


# -- Redis failover through the declared Sentinels -------------------------------------------------------------


def test_the_sentinels_and_master_name_come_from_the_hosts_file() -> None:
    run, _ = make_run()
    assert sentinel_setup(run) == SentinelSetup("mymaster", "watchers")
    assert sentinel_setup(run, "other") == SentinelSetup("other", "watchers")
    fault = RedisFailoverFault()
    fault._setup(run)
    assert (fault.master_name, fault.sentinels) == ("mymaster", "watchers")
    assert fault_from_description(fault.describe()).describe() == fault.describe()  # cleanup in another process
    # Sentinel may name a node by its host's peer address or name.
    assert _node_named(run, "db-2.lan") == "redis-2" and _node_named(run, "db-1") == "redis-1"


# -- latency without a Toxiproxy: tc netem -----------------------------------------------------------------------


def test_latency_without_a_toxiproxy_is_tc_netem_on_the_services_hosts_and_removed_exactly() -> None:
    run, fake = make_run()
    fault = ToxicFault(proxy="postgres", type="latency", attributes={"latency": 200, "jitter": 20})
    fault.resolve(run)
    assert fault.mechanism == "netem" and fault.qdiscs == {"postgres-1": "eth0", "postgres-2": "eth0"}
    handle = netem_handle(fault.id)
    facts = fault.inject(run)
    assert facts["mechanism"] == "netem" and facts["shape"] == "delay 200ms ± 20ms"
    assert facts["qdiscs"] == {n: f"eth0 root handle {handle:x}:" for n in ("postgres-1", "postgres-2")}
    for host in ("db-1", "db-2"):
        assert commands.netem_add("eth0", handle, 5432, 200, 20, 0) in fake.commands_on(host)
    added = commands.netem_add("eth0", handle, 5432, 200, 20, 0)
    assert "tc qdisc add dev eth0 root" in added and "replace" not in added and "sport 5432 0xffff" in added

    # Recovery in another process (a killed run's cleanup) removes that handle and nothing else.
    fake.log.clear()
    again = fault_from_description(fault.describe())
    assert again.recover(run) == {"mechanism": "netem", "removed": ["postgres-1", "postgres-2"]}
    removal = commands.netem_remove("eth0", handle)
    assert fake.log == [("db-1", removal), ("db-2", removal)]
    assert f'grep -q "^qdisc prio {handle:x}: root"' in removal


def test_a_kernel_without_netem_is_said_so_and_left_as_it_was() -> None:
    run, fake = make_run()
    fake.failing["tc qdisc add"] = Result(
        commands.NETEM_UNAVAILABLE, "", "netem unavailable: Error: Specified qdisc kind is unknown.\n"
    )
    fault = ToxicFault(proxy="postgres", type="latency", attributes={"latency": 100})
    with pytest.raises(FaultError) as caught:
        fault.inject(run)
    message = str(caught.value)
    assert "no Toxiproxy (a service of role proxy)" in message
    assert "the kernel of host db-1 has no netem (sch_netem)" in message and "qdisc kind is unknown" in message
    script = commands.netem_add("eth0", netem_handle(fault.id), 5432, 100, 0, 0)
    # The probe comes first; should netem on the device fail after the prio qdisc was added, that one goes.
    probe, _, rest = script.partition(" prio bands 4")
    assert "tc qdisc add dev lo root" in probe and "netem delay 0ms" in probe
    assert f"tc qdisc del dev eth0 root handle {netem_handle(fault.id):x}:" in rest.split("netem delay 100ms")[1]


def test_netem_refuses_what_it_cannot_do_before_touching_a_host() -> None:
    run, fake = make_run()
    for fault in (
        ToxicFault(proxy="postgres", type="latency", stream="upstream", attributes={"latency": 100}),
        ToxicFault(proxy="postgres", type="reset_peer", attributes={"timeout": 100}),
        ToxicFault(proxy="postgres", type="latency", toxicity=0.5, attributes={"latency": 100}),
    ):
        with pytest.raises(FaultError, match=r"downstream|needs a Toxiproxy|toxicity=1"):
            fault.resolve(run)
    assert fake.log == []


def test_a_toxiproxy_in_the_hosts_file_is_used_and_netem_never_runs() -> None:
    proxy = "  toxiproxy:\n    role: proxy\n    systemd: toxiproxy.service\n    nodes: [app-1]\n    ports: [8474]\n"
    run, fake = make_run(extra=LB + proxy)
    fault = ToxicFault(proxy="postgres", type="latency", attributes={"latency": 100})
    fault.resolve(run)
    assert (fault.mechanism, fault.node) == ("toxiproxy", "toxiproxy-1")
    assert fake.log == []


def test_netem_without_allow_faults_adds_nothing() -> None:
    run, fake = make_run(allow=False)
    with pytest.raises(FaultsNotAllowed):
        ToxicFault(proxy="postgres", type="latency", attributes={"latency": 100}).inject(run)
    assert not any("tc qdisc add" in c for _, c in fake.log)


# -- rolling upgrade and restart by the declared commands ----------------------------------------------------


def test_a_rolling_upgrade_runs_the_declared_command_node_by_node_and_rolls_back() -> None:
    run, fake = make_run()
    fault = RollingUpgradeFault(service="courier", image="10.0.1", from_image="9.2.1")
    facts = fault.inject(run)
    assert facts["order"] == ["courier-1", "courier-2"] and facts["to"] == "10.0.1"
    steps = [(h, c) for h, c in fake.log if c.startswith(("apt-get", "systemctl restart"))]
    assert steps == [
        ("app-1", "apt-get install -y courier=10.0.1"),
        ("app-1", "systemctl restart courier.service"),
        ("app-2", "apt-get install -y courier=10.0.1"),
        ("app-2", "systemctl restart courier.service"),
    ]
    fake.log.clear()
    assert fault.recover(run) == {"rolled_back": ["courier-1", "courier-2"], "image": "9.2.1"}
    assert [(h, c) for h, c in fake.log if c.startswith("apt-get")] == [
        ("app-1", "apt-get install -y courier=9.2.1"),
        ("app-2", "apt-get install -y courier=9.2.1"),
    ]


def test_a_failing_upgrade_command_stops_the_roll_at_that_node() -> None:
    run, fake = make_run()
    fake.failing["courier=10.0.1"] = Result(100, "", "E: Version '10.0.1' for 'courier' was not found\n")
    with pytest.raises(FaultError, match=r"upgrading courier-1 to 10.0.1 failed on host app-1 \(exit 100\)"):
        RollingUpgradeFault(service="courier", image="10.0.1", from_image="9.2.1").inject(run)
    assert fake.commands_on("app-2") == []


def test_a_rollback_needs_the_version_to_go_back_to() -> None:
    run, fake = make_run()
    with pytest.raises(FaultError, match="from_image=VERSION"):
        RollingUpgradeFault(service="courier", image="10.0.1").inject(run)
    assert not any(c.startswith("apt-get") for _, c in fake.log)
    RollingUpgradeFault(service="courier", image="10.0.1", rollback=False).resolve(run)  # no rollback, no need


def test_a_service_without_an_upgrade_command_is_refused() -> None:
    run, _ = make_run()
    with pytest.raises(FaultError, match="declares no `upgrade:` for it"):
        RollingUpgradeFault(service="postgres", image="16", from_image="15").resolve(run)


def test_an_upgrade_run_on_the_harness_runs_here_once_per_host(tmp_path: Path) -> None:
    record = tmp_path / "ran"
    services = SERVICES.replace(
        "command: apt-get install -y courier={version}",
        f'command: [sh, -c, "echo {{host}} {{version}} >> {record}"]\n      run_on: harness\n      restart: false',
    )
    run, fake = make_run(services=services)
    RollingUpgradeFault(service="courier", image="10.0.1", rollback=False).inject(run)
    assert record.read_text() == "app-1 10.0.1\napp-2 10.0.1\n"
    assert not any(c.startswith(("sh -c", "systemctl restart")) for _, c in fake.log)  # nothing else ran

    denied, _ = make_run(allow=False, services=services)
    with pytest.raises(FaultsNotAllowed):
        RollingUpgradeFault(service="courier", image="10.0.2", rollback=False).inject(denied)
    assert "10.0.2" not in record.read_text()


def test_a_rolling_restart_on_hosts_restarts_one_node_after_the_other() -> None:
    run, fake = make_run()
    RollingRestartFault(service="courier").inject(run)
    assert [(h, c) for h, c in fake.log if c.startswith("systemctl restart")] == [
        ("app-1", "systemctl restart courier.service"),
        ("app-2", "systemctl restart courier.service"),
    ]
    denied, _ = make_run(allow=False)
    with pytest.raises(FaultsNotAllowed):
        RollingRestartFault(service="courier").inject(denied)


def test_a_docker_run_has_no_host_commands() -> None:
    class NotHosts:
        run_id = "x"

    assert host_commands(NotHosts()) is None  # type: ignore[arg-type]
    run, _ = make_run()
    assert host_commands(run) is run


def test_the_upgrade_schema_is_checked() -> None:
    bad = SERVICES.replace(
        "command: apt-get install -y courier={version}", "command: apt-get install courier={ver}\n      run_on: there"
    )
    with pytest.raises(TopologyError) as caught:
        make_run(services=bad)
    text = textwrap.dedent(str(caught.value))
    assert "unknown placeholder {ver}" in text and "expected some of: {node}, {host}, {address}, {version}" in text
    assert "bad run_on 'there'" in text and "expected one of: host, harness" in text


def test_a_plan_records_a_harness_side_upgrade_and_runs_nothing(tmp_path: Path) -> None:
    from resilience.backends.hosts_dryrun import PlanRun

    record = tmp_path / "ran"
    services = SERVICES.replace(
        "command: apt-get install -y courier={version}",
        f'command: [sh, -c, "echo {{host}} >> {record}"]\n      run_on: harness\n      restart: false',
    )
    plan = PlanRun(parse_hosts(HEAD.format(allow="false") + services, "staging.yaml"), RUN_ID)
    RollingUpgradeFault(service="courier", image="10.0.1", rollback=False).inject(plan)
    assert not record.exists()
    assert [(c.host, c.command) for c in plan.model.take() if c.host == "harness"] == [
        ("harness", f"sh -c 'echo app-1 >> {record}'"),
        ("harness", f"sh -c 'echo app-2 >> {record}'"),
    ]
