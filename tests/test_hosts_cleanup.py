"""`resilience cleanup --hosts FILE` on the VM-like test bed (test_hosts_ssh.py's two hosts, over SSH only):
a child process injecting faults on the hosts is SIGKILLed mid-fault; its tagged rules, frozen program and
killed program stay behind; cleanup reverts the recorded faults and scans every host for what faults leave,
and removes only that: a rule without our tag survives, and a program nobody's fault stopped stays down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_hosts_ssh import NODE, SERVICES, bed, run, wait_for_state  # noqa: F401 - the module's fixtures, reused

from resilience.backends.hosts import HostsRun
from resilience.backends.hosts_testbed import SshTestBed
from resilience.cli import main
from resilience.faults import netfilter
from resilience.faults.registry import Registry, recorded_runs

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore:Unknown ssh-ed25519 host key")]

OTHER = "ticker-2"
FOREIGN = ["INPUT", "-p", "tcp", "--dport", "9", "-m", "comment", "--comment", "someone-else", "-j", "ACCEPT"]
UNTAGGED = ["OUTPUT", "-p", "tcp", "--dport", "7", "-j", "ACCEPT"]

# The child: a harness that opens the deployment as `run --hosts` would, registers and injects a partition
# between the two hosts, freezes ticker-2 and kills ticker-1 through the nemesis, says so, and hangs on.
CHILD = textwrap.dedent(
    """
    import sys, time
    from resilience.backends.hosts_target import choose_deployment
    from resilience.faults.kill import KillFault
    from resilience.faults.nemesis import Nemesis
    from resilience.faults.partition import PartitionFault
    from resilience.faults.pause import PauseFault
    from resilience.history import History

    run = choose_deployment(None, sys.argv[1]).open_run()
    with History(None, run_id=run.run_id) as history:
        nemesis = Nemesis(run, history)
        nemesis.inject(PartitionFault(groups=[["ticker-1"], ["ticker-2"]], id="cut"))
        nemesis.inject(PauseFault(node="ticker-2", id="freeze"))
        nemesis.inject(KillFault(node="ticker-1", id="down"))
        print(run.run_id, flush=True)
        time.sleep(600)
    """
)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "faults"
    monkeypatch.setenv("RESILIENCE_STATE_DIR", str(directory))
    return directory


@pytest.fixture
def hosts_file(bed: SshTestBed, tmp_path: Path) -> Path:  # noqa: F811 - the imported fixture
    path = tmp_path / "testbed.yaml"
    path.write_text(bed.hosts_yaml(SERVICES))
    return path


@pytest.fixture
def healthy(run: HostsRun) -> Iterator[HostsRun]:  # noqa: F811 - the imported fixture
    """Both tickers running and thawed before and after, with a rule of someone else's and an untagged one on
    vm-1 (removed at the end whatever happened)."""
    for node in run.node_names():
        run.unpause(node)
        if run.state(node) not in ("running", "restarting"):
            run.start(node)
        wait_for_state(run, node, {"running"}, timeout=60)
    run.exec_ok(NODE, ["iptables", "-A", *FOREIGN])
    run.exec_ok(NODE, ["iptables", "-A", *UNTAGGED])
    try:
        yield run
    finally:
        run.exec(NODE, ["iptables", "-D", *FOREIGN])
        run.exec(NODE, ["iptables", "-D", *UNTAGGED])
        for node in run.node_names():
            run.unpause(node)
            if run.state(node) not in ("running", "restarting"):
                run.start(node)


def rules(hosts_run: HostsRun, node: str) -> str:
    return hosts_run.exec_ok(node, ["iptables", "-S"])


def test_cleanup_reverts_what_a_killed_run_left_on_the_hosts_and_nothing_else(
    healthy: HostsRun, hosts_file: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(hosts_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert run_id, child.stderr.read() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-fault: no finally, no recover
        child.wait(10)

    # What the dead run left: its tagged rules on both hosts, ticker-2 frozen, ticker-1 down, all recorded.
    for node in (NODE, OTHER):
        assert netfilter.rules_with(healthy, node, netfilter.run_prefix(run_id)), rules(healthy, node)
    assert healthy.state(OTHER) == "paused" and healthy.state(NODE) == "exited"
    assert recorded_runs(state_dir) == [run_id]
    assert Registry(run_id, state_dir).origin() == {
        "backend": "hosts",
        "hosts_file": str(hosts_file.resolve()),
        "target": None,
    }
    before = {node: rules(healthy, node) for node in (NODE, OTHER)}

    assert main(["cleanup", "--hosts", str(hosts_file)]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) with recorded faults" in out and "fault cut (partition" in out, out

    for node in (NODE, OTHER):
        after = rules(healthy, node)
        assert "resilience:" not in after, after
        # Every other rule is as it was, in its order: nothing flushed, nothing untagged touched.
        assert after.splitlines() == [line for line in before[node].splitlines() if "resilience:" not in line]
    assert "someone-else" in rules(healthy, NODE) and "--dport 7 -j ACCEPT" in rules(healthy, NODE)
    assert healthy.state(OTHER) == "running" and healthy.state(NODE) == "running"
    assert recorded_runs(state_dir) == []


def test_the_scan_finds_tagged_rules_and_frozen_programs_without_any_record(
    healthy: HostsRun, hosts_file: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that died before writing its record: the scan alone removes our rules (each host's once) and
    thaws the frozen program, and leaves a program that no recorded fault stopped as it is."""
    netfilter.add_rule(healthy, NODE, "INPUT", ["-p", "tcp", "--dport", "9999"], "lost")
    netfilter.add_rule(healthy, OTHER, "OUTPUT", ["-p", "tcp", "--dport", "9998"], "lost")
    healthy.pause(OTHER)
    healthy.stop(NODE)  # an operator's stop: no fault recorded it
    try:
        assert main(["cleanup", "--hosts", str(hosts_file)]) == 0
        out = capsys.readouterr().out
        assert "0 run(s) with recorded faults" in out
        assert out.count("deleted rule") == 2 and "could not" not in out, out
        for node in (NODE, OTHER):
            assert "resilience:" not in rules(healthy, node)
        assert "someone-else" in rules(healthy, NODE) and "--dport 7 -j ACCEPT" in rules(healthy, NODE)
        assert healthy.state(OTHER) == "running"
        assert healthy.state(NODE) == "exited"  # not ours to start
    finally:
        healthy.start(NODE)
