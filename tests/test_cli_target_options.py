"""--target NAME / --hosts FILE on the command line and --resilience-target in pytest, without Docker or SSH:
the options parse, reach the hosts code paths, and the plugin's `cluster` is the target's over a HostsRun
(no Docker cluster brought up)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from resilience import cli_hosts
from resilience.cli import main

pytest_plugins = ["pytester"]
NO_CACHE = ("-p", "no:cacheprovider")

HOSTS = """\
version: 1
kind: hosts
name: staging
allow_faults: true
ssh: {user: deploy}
hosts:
  app-1: {address: 10.0.0.11}
services:
  courier: {role: courier, systemd: courier.service, nodes: [app-1]}
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


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    path = tmp_path / "staging-hosts.yaml"
    path.write_text(HOSTS)
    return path


@pytest.mark.parametrize(
    ("argv", "handler"),
    [
        (["status", "--target", "staging"], "status"),
        (["logs", "courier-1", "--hosts", "h.yaml", "--tail", "5"], "logs"),
        (["cleanup", "--target", "staging"], "cleanup"),
        (["cleanup", "--hosts", "h.yaml"], "cleanup"),
    ],
)
def test_cluster_commands_hand_a_deployment_to_the_hosts_backend(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], handler: str
) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(cli_hosts, handler, lambda args: seen.append(args) or 0)
    assert main(argv) == 0
    assert len(seen) == 1
    assert (seen[0].target, seen[0].hosts) == (("staging", None) if "--target" in argv else (None, "h.yaml"))


def test_target_and_hosts_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["status", "--target", "staging", "--hosts", "h.yaml"])
    assert stopped.value.code == 3
    assert "not allowed with argument" in capsys.readouterr().err


def test_logs_of_an_unknown_node_says_which_exist_without_contacting_a_host(
    hosts_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_ssh(*_args: object) -> None:
        raise AssertionError("a host was contacted")

    monkeypatch.setattr("resilience.backends.ssh.HostShell.__init__", no_ssh)
    assert main(["logs", "courer-1", "--hosts", str(hosts_file)]) == 3
    assert "no node courer-1 in hosts file" in capsys.readouterr().err
    assert main(["status", "--hosts", str(hosts_file.with_name("missing.yaml"))]) == 3
    assert "missing.yaml: no such file" in capsys.readouterr().err


def test_the_plugin_offers_resilience_target(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--resilience-target=NAME*"])


def test_resilience_target_wires_a_hosts_run_into_the_target_cluster(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"targets/staging": TARGET, "targets/staging-hosts": HOSTS})
    pytester.makeconftest(
        """
        import pytest
        import resilience.pytest_plugin as plugin
        from resilience.cluster import Cluster

        def for_target(cls, run, target):  # stands in for the database and API reads of a real target
            return ("target cluster", run, target)

        def no_docker(*args, **kwargs):
            raise AssertionError("the Docker cluster was used")

        Cluster.for_target = classmethod(for_target)
        plugin.start_cluster = no_docker
        plugin.attach_cluster = no_docker
        """
    )
    pytester.makepyfile(
        """
        from resilience.backends.hosts import HostsRun
        from resilience.faults.registry import _ORIGINS

        def test_cluster(cluster):
            what, run, target = cluster
            assert what == "target cluster" and target.name == "staging"
            assert isinstance(run, HostsRun) and run.hosts.name == "staging"
            assert run.node_names() == ["courier-1"]
            assert _ORIGINS[run.run_id]["target"] == "staging"
            assert _ORIGINS[run.run_id]["hosts_file"].endswith("targets/staging-hosts.yaml")
        """
    )
    result = pytester.runpytest_subprocess("--resilience-target", "staging", *NO_CACHE)
    result.assert_outcomes(passed=1)


def test_an_unknown_target_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one(): pass")
    result = pytester.runpytest_subprocess("--resilience-target", "nowhere", *NO_CACHE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if "--resilience-target" in line]
    assert errors and errors[0].startswith("ERROR: --resilience-target: "), result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_run_passes_its_target_to_the_experiments_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    import resilience.cli_experiments as cli_experiments

    seen: list[list[str]] = []
    monkeypatch.setattr("pytest.main", lambda argv, plugins: seen.append(argv) or 0)
    assert main(["run", "kill-courier", "--target", "staging"]) == 0
    assert seen and seen[0][seen[0].index("--resilience-target") + 1] == "staging"
    assert cli_experiments._find("kill-courier").path.name in seen[0][0]
