"""The hosts topology schema (resilience/topology/hosts.py): an existing deployment's hosts and what runs where,
validated with located `FILE:LINE:` errors like a Docker topology file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from resilience.topology import TopologyError, is_hosts_file, load_hosts, parse_hosts
from resilience.topology.hosts import ControlKind, LogKind, PostgresFailover, SentinelFailover

GOOD = textwrap.dedent(
    """\
    version: 1
    kind: hosts
    name: staging
    allow_faults: true
    ssh: {user: deploy, identity_file: keys/id_ed25519, sudo: true}
    hosts:
      app-1: {address: 10.0.0.11}
      app-2: {address: 10.0.0.12, ssh: {port: 2222, user: ops}}
      db-1: {address: 10.0.0.21}
      db-2: {address: 10.0.0.22}
      lb-1: {address: 10.0.0.5, ssh: {sudo: false}}
    services:
      courier:
        role: courier
        systemd: courier.service
        nodes: [app-1, {host: app-2, supervisor: courier, logs: {file: /var/log/courier.log}}]
        ports: [8080]
        health:
          - http: {port: 8080, path: /, contains: courier}
      postgres:
        role: postgres
        systemd: postgresql@15-main.service
        nodes: [db-1, db-2]
        ports: [5432]
        failover:
          method: pg_ctl
          promote: pg_ctlcluster 15 main promote
          rejoin: [/usr/local/bin/pg-rejoin, --primary, db-2]
      redis:
        role: redis
        container: redis
        nodes: [db-1, db-2]
        failover: {master: rapidpro}
      sentinel:
        role: sentinel
        systemd: redis-sentinel.service
        nodes: [db-1, db-2, app-1]
      lb:
        role: lb
        systemd: haproxy.service
        nodes: [lb-1]
        logs: {journald: haproxy.service}
        haproxy: {socket: /run/haproxy/admin.sock}
    """
)


def parse(text: str) -> object:
    return parse_hosts(textwrap.dedent(text), "h.yaml")


def errors_of(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        parse(text)
    return [str(e) for e in caught.value.errors]


def test_a_good_file_names_hosts_nodes_and_how_each_is_controlled(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(GOOD)
    assert is_hosts_file(path)
    hosts = load_hosts(path)
    assert hosts.allow_faults is True
    assert [n.name for n in hosts.nodes()][:4] == ["courier-1", "courier-2", "postgres-1", "postgres-2"]
    courier_1, courier_2 = hosts.services["courier"].nodes
    assert (courier_1.host, courier_1.control.kind, courier_1.control.name) == (
        "app-1",
        ControlKind.SYSTEMD,
        "courier.service",
    )
    assert (courier_1.logs.kind, courier_1.logs.name) == (LogKind.JOURNALD, "courier.service")
    assert (courier_2.control.kind, courier_2.logs.kind, courier_2.logs.name) == (
        ControlKind.SUPERVISOR,
        LogKind.FILE,
        "/var/log/courier.log",
    )
    assert hosts.services["redis"].nodes[0].logs.kind is LogKind.CONTAINER
    # SSH settings: top-level defaults, a host's own override on top; relative key paths from the file's dir.
    assert hosts.hosts["app-1"].ssh.user == "deploy"
    assert hosts.hosts["app-1"].ssh.identity_file == str(tmp_path.resolve() / "keys" / "id_ed25519")
    assert (hosts.hosts["app-2"].ssh.user, hosts.hosts["app-2"].ssh.port) == ("ops", 2222)
    assert hosts.hosts["lb-1"].ssh.sudo is False and hosts.hosts["db-1"].ssh.sudo is True
    assert hosts.services["postgres"].failover == PostgresFailover(
        "pg_ctl", ("pg_ctlcluster", "15", "main", "promote"), ("/usr/local/bin/pg-rejoin", "--primary", "db-2")
    )
    assert hosts.services["redis"].failover == SentinelFailover("rapidpro", "sentinel")
    assert hosts.services["lb"].haproxy_socket == "/run/haproxy/admin.sock"
    assert hosts.host_of("courier-2").address == "10.0.0.12"


def test_as_a_topology_it_has_the_same_nodes_for_the_backend_protocol() -> None:
    hosts = parse_hosts(GOOD, "h.yaml")
    topology = hosts.as_topology()
    assert [n.name for n in topology.nodes()] == [n.name for n in hosts.nodes()]
    assert topology.services["courier"].replicas == 2 and topology.services["courier"].ports[0].number == 8080
    assert topology.services["courier"].image == "hosts:systemd"


def test_faults_are_not_allowed_unless_the_file_says_so() -> None:
    text = GOOD.replace("allow_faults: true\n", "")
    assert parse_hosts(text, "h.yaml").allow_faults is False


def test_a_docker_topology_is_not_a_hosts_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("version: 1\nname: x\nservices: {}\n")
    assert not is_hosts_file(path)
    assert not is_hosts_file(tmp_path / "missing.yaml")


def test_unknown_hosts_and_keys_are_located_with_did_you_mean() -> None:
    errors = errors_of(
        """\
        version: 1
        kind: hosts
        name: staging
        hosts:
          app-1: {address: 10.0.0.11}
        services:
          courier:
            role: courier
            systemd: courier.service
            nodes: [app-l]
            portz: [8080]
        """
    )
    assert errors == [
        "h.yaml:10: node 1 of service 'courier' names unknown host 'app-l'; expected one of: app-1"
        " (did you mean 'app-1'?)",
        "h.yaml:11: unknown key 'portz' in service 'courier'; expected one of: role, nodes, systemd, supervisor, "
        "container, ports, logs, health, health_timeout, restart, failover, haproxy, upgrade (did you mean 'ports'?)",
    ]


def test_control_must_be_one_and_well_formed() -> None:
    errors = errors_of(
        """\
        version: 1
        kind: hosts
        name: staging
        hosts:
          app-1: {}
        services:
          courier:
            role: courier
            systemd: courier.service
            supervisor: courier
            nodes: [app-1]
          mailroom:
            role: mailroom
            systemd: mailroom
            nodes: [app-1]
          web:
            role: web
            nodes: [app-1]
        """
    )
    assert errors == [
        "h.yaml:10: service 'courier' says both 'systemd' and 'supervisor'; expected one of: systemd, supervisor, "
        "container",
        "h.yaml:14: systemd unit 'mailroom' of service 'mailroom' has no suffix; expected mailroom.service",
        "h.yaml:18: node 1 of service 'web' says nothing of how it is controlled; expected one of `systemd: UNIT`, "
        "`supervisor: PROGRAM` or `container: NAME` on the service or the node",
    ]


def test_ssh_settings_are_checked() -> None:
    errors = errors_of(
        """\
        version: 1
        kind: hosts
        name: staging
        allow_faults: maybe
        ssh: {user: Deploy Me, port: 70000, sudo: yes please, identitty_file: x}
        hosts:
          app-1: {ssh: {connect_timeout: -1}}
        services:
          courier: {role: courier, systemd: courier.service, nodes: [app-1]}
        """
    )
    assert errors[0] == "h.yaml:4: allow_faults must be true or false; got the string 'maybe'"
    assert any(e.startswith("h.yaml:5: bad user 'Deploy Me' in ssh; expected a user name") for e in errors)
    assert "h.yaml:5: port of ssh must be an int in 1..65535; got 70000" in errors
    assert "h.yaml:5: sudo of ssh must be true or false; got the string 'yes please'" in errors
    assert any(
        e.startswith("h.yaml:5: unknown key 'identitty_file' in ssh") and "did you mean 'identity_file'" in e
        for e in errors
    )
    assert errors[-1].startswith("h.yaml:7: connect_timeout of ssh of host 'app-1' must be a number of seconds > 0")


def test_the_data_tier_says_how_failover_is_done() -> None:
    errors = errors_of(
        """\
        version: 1
        kind: hosts
        name: staging
        hosts: {db-1: {}, db-2: {}, lb-1: {}}
        services:
          postgres:
            role: postgres
            systemd: postgresql.service
            nodes: [db-1, db-2]
          pg2:
            role: postgres
            systemd: postgresql.service
            nodes: [db-1, db-2]
            failover: {method: patroni, promote: patronictl failover --force}
          redis:
            role: redis
            systemd: redis-server.service
            nodes: [db-1, db-2]
            failover: {sentinels: sentinal}
          lb:
            role: lb
            systemd: haproxy.service
            nodes: [lb-1]
            haproxy: {socket: run/haproxy.sock}
            failover: {master: x}
        """
    )
    assert errors == [
        "h.yaml:6: service 'postgres' has 2 nodes but no failover; expected `failover: {method: "
        "pg_ctl|patronictl|repmgr, promote: CMD, rejoin: CMD}`",
        "h.yaml:14: unknown Postgres failover method 'patroni' in failover of service 'pg2'; expected one of: "
        "pg_ctl, patronictl, repmgr (did you mean 'patronictl'?)",
        "h.yaml:14: failover of service 'pg2' has no rejoin; expected `rejoin: COMMAND` (e.g. a script that "
        "re-clones it)",
        "h.yaml:15: failover of service 'redis' names Sentinel service 'sentinal', which this file does not "
        "define; expected one of: postgres, pg2, redis, lb",
        "h.yaml:24: socket of haproxy of service 'lb' must be an absolute path; got 'run/haproxy.sock'",
        "h.yaml:25: failover of service 'lb': a lb service has no failover; expected it on postgres or redis only",
    ]


def test_logs_and_repeated_nodes_are_checked() -> None:
    errors = errors_of(
        """\
        version: 1
        kind: hosts
        name: staging
        hosts: {app-1: {}}
        services:
          courier:
            role: courier
            supervisor: courier
            logs: {file: var/log/courier.log}
            nodes: [app-1, app-1]
          mailroom:
            role: mailroom
            supervisor: mailroom
            logs: {syslog: mailroom}
            nodes: [{hots: app-1}]
        """
    )
    assert errors == [
        "h.yaml:9: log file 'var/log/courier.log' of logs of service 'courier' is not absolute; expected an "
        "absolute path",
        "h.yaml:10: node 2 of service 'courier' repeats host 'app-1' with the same supervisor: courier (first at "
        "line 10); expected another host or unit",
        "h.yaml:14: unknown log source 'syslog' in logs of service 'mailroom'; expected `{journald: UNIT}` or "
        "`{file: /abs/path}`",
        "h.yaml:15: unknown key 'hots' in node 1 of service 'mailroom'; expected one of: host, systemd, supervisor, "
        "container, logs (did you mean 'host'?)",
        "h.yaml:15: node 1 of service 'mailroom' has no host; expected `host: NAME`",
    ]


def test_the_file_itself_must_be_a_hosts_file() -> None:
    errors = errors_of("version: 2\nname: Bad\nservices: {}\n")
    assert errors == [
        "h.yaml:1: unsupported version 2; expected 1",
        "h.yaml:1: missing 'kind'; expected `kind: hosts` (a file without it is a Docker topology)",
        "h.yaml:1: missing 'hosts'; expected a mapping of host name to {address, ssh}",
        "h.yaml:2: bad topology name 'Bad'; expected [a-z][a-z0-9-]*",
        "h.yaml:3: no services; expected at least one service",
    ]
    with pytest.raises(TopologyError, match=r"^nowhere.yaml: no such file"):
        load_hosts("nowhere.yaml")
    with pytest.raises(TopologyError, match=r"^h.yaml:4: YAML syntax error"):
        parse("version: 1\nkind: hosts\nhosts: [\n")


def test_topology_validate_and_show_read_a_hosts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resilience.cli import main

    path = tmp_path / "staging-hosts.yaml"
    path.write_text(GOOD)
    assert main(["topology", "validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["topology", "show", str(path)]) == 0
    assert "courier-2" in capsys.readouterr().out
    path.write_text(GOOD.replace("role: courier", "role: couirer", 1))
    assert main(["topology", "validate", str(path)]) != 0
    assert f"{path}:" in capsys.readouterr().err
