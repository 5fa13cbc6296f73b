"""The reaper: a harness SIGKILLed with faults applied leaves nothing of its run within 60 s, with no
command run after it, and a run of someone else on the same engine is untouched (resilience/reaper.py).

Both harnesses run at once (a partition with a paused node on the two Redis nodes; a Postgres failover
by partition with a toxic on the smallest topology that has a primary, a standby, the balancer and the
proxy), so the test costs one bring-up, not two.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import docker
import pytest

from resilience import reaper
from resilience.backends import labels
from resilience.backends.docker import DockerBackend, RunInfo, iter_labelled
from resilience.faults.leftovers import find_leftovers
from resilience.ownership import OWNER_ENV
from resilience.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
REAP_BOUND = 60.0

HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from resilience.backends.docker import DockerBackend
    from resilience.faults import Nemesis, PartitionFault, PauseFault, PgFailoverFault, Registry, ToxicFault
    from resilience.history import History
    from resilience.topology import load_topology

    case, state_dir, topology = sys.argv[1:4]
    only = {"partition": ["redis"], "pg-failover": ["postgres", "redis", "lb", "toxiproxy"]}[case]
    run = DockerBackend().up(load_topology(Path(topology)).select(only), log=lambda m: None)
    print(run.run_id, flush=True)
    nemesis = Nemesis(run, History(None, run_id=run.run_id), Registry(run.run_id, state_dir))
    if case == "partition":
        nemesis.inject(PartitionFault(groups=[["redis-1"], ["redis-2"]]))
        nemesis.inject(PauseFault(node="redis-2"))
    else:
        nemesis.inject(ToxicFault(proxy="postgres", type="latency", attributes={"latency": 100}))
        nemesis.inject(PgFailoverFault(method="partition"))
    print("applied", flush=True)
    time.sleep(600)  # killed long before
    """
)
EXPECTED = {"partition": {"iptables", "paused"}, "pg-failover": {"iptables", "toxic"}}


def _start(case: str, state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, case, str(state_dir), str(TOPOLOGY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _line(harness: subprocess.Popen[str]) -> str:
    assert harness.stdout is not None
    line = harness.stdout.readline().strip()
    if not line:
        harness.kill()
        raise AssertionError(harness.stderr.read() if harness.stderr else "the harness printed nothing")
    return line


@pytest.mark.docker
def test_a_sigkilled_harness_is_reaped_and_no_other_run_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = DockerBackend()
    harnesses = {case: _start(case, tmp_path) for case in EXPECTED}
    # Another owner's run on the same engine (its owner, this test, stays alive throughout).
    monkeypatch.setenv(OWNER_ENV, "someone-else@another-host/ci:1")
    other = backend.up(load_topology(TOPOLOGY).select(["s3"]), log=lambda _m: None)
    run_ids: dict[str, str] = {}
    try:
        for case, harness in harnesses.items():
            run_ids[case] = _line(harness)
        for case, harness in harnesses.items():
            assert _line(harness) == "applied"
            run = backend.attach(run_ids[case])
            assert {x.what for x in find_leftovers(run)} >= EXPECTED[case]
        assert next(r for r in backend.runs() if r.run_id == run_ids["partition"]).watched

        killed = time.monotonic()
        for harness in harnesses.values():
            harness.send_signal(signal.SIGKILL)
        reaped = _wait_reaped(backend.client, set(run_ids.values()), killed)

        timings = ", ".join(f"{case} {reaped[run_ids[case]]:.1f} s" for case in EXPECTED)
        print(f"reaped after SIGKILL: {timings}")
        assert all(seconds < REAP_BOUND for seconds in reaped.values()), timings
        # The other run is whole, still watched by its own reaper, and nothing of it was stopped.
        containers = backend.client.containers.list(all=True, filters={"label": f"{labels.RUN}={other.run_id}"})
        assert sorted((c.name, c.status) for c in containers) == [
            (f"rs-{other.run_id}-reaper", "running"),
            (f"rs-{other.run_id}-s3-1", "running"),
        ]
        info = next(r for r in backend.runs() if r.run_id == other.run_id)
        assert info.watched and not info.orphaned
    finally:
        for harness in harnesses.values():
            if harness.poll() is None:
                harness.kill()
            harness.communicate(timeout=30)
        for run_id in [*run_ids.values(), other.run_id]:
            backend.down(run_id, log=lambda _m: None)


def _wait_reaped(client: docker.DockerClient, run_ids: set[str], since: float) -> dict[str, float]:
    """Seconds from `since` until nothing labelled with each run remains (bounded by twice the promise)."""
    reaped: dict[str, float] = {}
    while len(reaped) < len(run_ids) and time.monotonic() - since < 2 * REAP_BOUND:
        for run_id in run_ids - set(reaped):
            if not list(iter_labelled(client, run_id)):
                reaped[run_id] = time.monotonic() - since
        time.sleep(0.2)
    left = {run_id: list(iter_labelled(client, run_id)) for run_id in run_ids - set(reaped)}
    assert not left, f"still there {2 * REAP_BOUND:.0f} s after SIGKILL: {left}"
    return reaped


# ------------------------------------------------------------------- who counts as orphaned (no Docker)


def _info(**kw: object) -> RunInfo:
    fields: dict[str, object] = {
        "run_id": "r1",
        "owner": "elsewhere:1",
        "keep": False,
        "topology": "t.yaml",
        "containers": 1,
        "created": time.time() - 3600,
    }
    return RunInfo(**{**fields, **kw})  # type: ignore[arg-type]


def test_a_run_of_another_host_is_reaped_only_when_its_heartbeat_has_stopped() -> None:
    assert labels.owner_alive("another-host:1")  # its process table is not ours to read
    assert not _info(owner="another-host:1").orphaned  # no reaper: left to `resilience cleanup`
    assert not _info(owner="another-host:1", reaper=True, watched=True).orphaned
    assert _info(owner="another-host:1", reaper=True, watched=False).orphaned  # its reaper has gone
    # A run being made has its reaper started first: not judged until it has had time to.
    assert not _info(owner="another-host:1", reaper=True, created=time.time()).orphaned


def test_a_run_of_this_host_is_judged_by_its_process() -> None:
    here = socket.gethostname()
    assert not _info(owner=f"{here}:{os.getpid()}").orphaned
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _info(owner=f"{here}:{dead.pid}").orphaned
    assert not _info(owner=f"{here}:{dead.pid}", keep=True).orphaned
    assert not _info(owner="").orphaned  # not made by this backend


def test_the_reaper_can_be_turned_off() -> None:
    assert reaper.enabled({})
    assert not reaper.enabled({reaper.ENABLED_ENV: "off"})


# ------------------------------------------------------------------------ faults on a kept run

KEPT_RUN_HARNESS = textwrap.dedent(
    """
    import sys, time
    from resilience.backends.docker import DockerBackend
    from resilience.faults import Nemesis, PartitionFault, Registry
    from resilience.history import History

    run_id, state_dir = sys.argv[1:3]
    run = DockerBackend().attach(run_id)  # as --resilience-reuse-cluster does
    nemesis = Nemesis(run, History(None, run_id=run_id), Registry(run_id, state_dir))
    nemesis.inject(PartitionFault(groups=[["redis-1"], ["redis-2"]]))
    print("applied", flush=True)
    time.sleep(600)  # killed long before
    """
)


@pytest.mark.docker
def test_a_sigkilled_harness_on_a_kept_run_has_its_own_faults_reverted(tmp_path: Path) -> None:
    from resilience.faults import PauseFault, Registry

    backend = DockerBackend()
    kept = backend.up(load_topology(TOPOLOGY).select(["redis", "s3"]), keep=True, log=lambda _m: None)
    theirs = PauseFault(node="s3-1")  # another owner's fault on the same run: not the watcher's to revert
    try:
        theirs.inject(kept)
        harness = subprocess.Popen(
            [sys.executable, "-c", KEPT_RUN_HARNESS, kept.run_id, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert _line(harness) == "applied"
        assert {x.what for x in find_leftovers(kept)} == {"iptables", "paused"}
        killed = time.monotonic()
        harness.send_signal(signal.SIGKILL)
        harness.communicate(timeout=30)
        while "iptables" in {x.what for x in find_leftovers(kept)} and time.monotonic() - killed < REAP_BOUND:
            time.sleep(0.2)
        seconds = time.monotonic() - killed
        print(f"kept run: the killed harness's partition reverted {seconds:.1f} s after SIGKILL")
        assert [x.what for x in find_leftovers(kept)] == ["paused"]  # theirs stays
        assert Registry(kept.run_id, tmp_path).entries() == {}
        assert all(kept.state(node) in ("running", "paused") for node in kept.node_names())  # the run stays
    finally:
        theirs.recover(kept)
        backend.down(kept.run_id, log=lambda _m: None)


@pytest.mark.docker
def test_up_never_reaps_a_live_run_of_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a second CI container sharing the engine would see it: its runs carry another host in their
    owner label, and only their reaper's heartbeat says whether that owner lives. (Judged on these two
    runs only: a sweep of the whole engine here could act on runs this test does not own.)"""
    from resilience.backends import docker as docker_backend

    backend = DockerBackend()
    topology = load_topology(TOPOLOGY).select(["s3"])
    monkeypatch.setattr(labels, "owner_label", lambda: "another-ci-container:4242")
    watched = backend.up(topology, log=lambda _m: None)
    monkeypatch.setenv(reaper.ENABLED_ENV, "off")
    unwatched = backend.up(topology, log=lambda _m: None)  # an older harness: no reaper, no heartbeat

    def judged() -> dict[str, bool]:
        mine = {watched.run_id, unwatched.run_id}
        return {r.run_id: r.orphaned for r in backend.runs() if r.run_id in mine}

    try:
        assert judged() == {watched.run_id: False, unwatched.run_id: False}
        # Its heartbeat stops (the reaper is gone, its run is not): an orphan, wherever its owner ran,
        # once past the grace a run being made is given.
        backend.client.containers.get(reaper.container_name(watched.run_id)).remove(force=True)
        assert judged() == {watched.run_id: False, unwatched.run_id: False}
        monkeypatch.setattr(docker_backend, "REAPER_GRACE_SECONDS", 0.0)
        assert judged() == {watched.run_id: True, unwatched.run_id: False}
    finally:
        for run in (watched, unwatched):
            backend.down(run.run_id, log=lambda _m: None)
