"""SIGTERM unwinds like ^C: a harness stopped by a CI cancel (SIGTERM) or by ^C (SIGINT) reverts its faults
itself, with nothing left for a cleanup command (the registry and `resilience cleanup` are for SIGKILL,
tests/test_faults_registry.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resilience.backends.docker import DockerBackend, DockerRun
from resilience.faults import Registry, revert_leftovers
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import can_connect

SLEEPER = textwrap.dedent(
    """
    import sys, time
    from resilience.interrupts import Terminated, terminate_gracefully
    assert terminate_gracefully()
    try:
        try:
            print("waiting", flush=True)
            time.sleep(60)
        finally:
            print("finally ran", flush=True)
            time.sleep(0.5)  # a second SIGTERM arrives here and must not cut this short
            print("finally finished", flush=True)
    except Terminated:
        sys.exit(143)
    """
)


def test_sigterm_raises_once_and_lets_finally_finish() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "waiting"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().strip() == "finally ran"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "finally finished" in out
    assert "still reverting faults" in err


def test_a_handler_of_someone_else_is_left_alone() -> None:
    script = textwrap.dedent(
        """
        import signal
        from resilience.interrupts import terminate_gracefully
        mine = lambda *_: None
        signal.signal(signal.SIGTERM, mine)
        assert terminate_gracefully() is False
        assert signal.getsignal(signal.SIGTERM) is mine
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)


TERMINATED_HARNESS = textwrap.dedent(
    """
    import signal, sys, time
    # ^C raises KeyboardInterrupt even when the test session runs in the background, where a shell starts
    # its children with SIGINT ignored (as a CI job may be).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import docker
    from resilience.backends.docker import DockerRun
    from resilience.faults import Nemesis, PartitionFault, PauseFault, Registry, ToxicFault
    from resilience.history import History
    from resilience.interrupts import Terminated, terminate_gracefully
    from resilience.topology import load_topology

    run_id, state_dir, topology = sys.argv[1], sys.argv[2], sys.argv[3]
    terminate_gracefully()
    run = DockerRun(docker.from_env(), run_id, load_topology(topology).select(["infra"]))
    nemesis = Nemesis(run, History(None, run_id=run_id), Registry(run_id, state_dir))
    try:
        with nemesis.applied(PartitionFault(groups=[["sentinel-1"], ["sentinel-2"]])):
            with nemesis.applied(ToxicFault(proxy="redis", type="latency", attributes={"latency": 200})):
                with nemesis.applied(PauseFault(node="s3-1")):
                    print("applied", flush=True)
                    time.sleep(120)
    except KeyboardInterrupt as exc:
        print("reverted", flush=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    """
)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_an_interrupted_harness_reverts_its_own_faults(
    infra_run: DockerRun, tmp_path: Path, signum: signal.Signals, exit_code: int
) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_HARNESS, infra_run.run_id, str(tmp_path), str(infra_run.topology.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert harness.stdout is not None
        line = harness.stdout.readline().strip()
        assert line == "applied", harness.stderr.read() if harness.stderr else line
        assert {x.what for x in find_leftovers(infra_run)} == {"iptables", "toxic", "paused"}
        harness.send_signal(signum)
        out, err = harness.communicate(timeout=120)
    finally:
        if harness.poll() is None:
            harness.kill()
    assert harness.returncode == exit_code, err
    assert "reverted" in out
    assert find_leftovers(infra_run) == []
    assert Registry(infra_run.run_id, tmp_path).entries() == {}
    # The next `resilience cleanup` finds nothing to revert.
    assert revert_leftovers(DockerBackend(), infra_run.run_id, state_dir=tmp_path) == []
    assert can_connect(infra_run, "sentinel-1", "sentinel-2", 26379)
    assert infra_run.state("s3-1") == "running"
