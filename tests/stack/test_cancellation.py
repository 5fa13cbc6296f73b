"""An experiment under pytest, cancelled as a CI runner cancels a job (SIGTERM), reverts its faults
before the process ends: nothing of the schedule is left on the cluster and no cleanup command is needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from resilience.cluster import Cluster
from resilience.faults.leftovers import find_leftovers
from resilience.faults.registry import STATE_DIR_ENV, Registry

pytestmark = pytest.mark.stack

EXPERIMENT = textwrap.dedent(
    """
    import pytest

    @pytest.mark.experiment(
        name="cancelled",
        schedule="at 1 pause archiver-1 as frozen; at 1 toxic postgres latency latency=20 as slow; recover at 90",
        rate=1,
        duration=90,
    )
    def test_cancelled(experiment):
        experiment.run()
    """
)


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def test_a_sigterm_mid_experiment_reverts_the_schedule(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "test_cancelled.py").write_text(EXPERIMENT)
    state_dir = tmp_path / "faults"
    env = {**os.environ, STATE_DIR_ENV: str(state_dir)}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
        "--reuse-cluster", cluster.run.run_id, "--report-dir", str(tmp_path / "reports"),
        str(tmp_path / "test_cancelled.py"),
    ]  # fmt: skip
    harness = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        applied = _wait_for(lambda: {x.what for x in find_leftovers(cluster.run)} >= {"paused", "toxic"}, 120)
        assert applied, f"the schedule's faults never showed: {harness.poll()}"
        harness.send_signal(signal.SIGTERM)
        out, _ = harness.communicate(timeout=180)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert harness.returncode == pytest.ExitCode.INTERRUPTED, out
    assert find_leftovers(cluster.run) == [], out
    assert Registry(cluster.run.run_id, state_dir).entries() == {}
    assert cluster.run.state("archiver-1") == "running"
