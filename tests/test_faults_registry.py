"""The fault registry: atomic per-run file, clear errors, several writers; and crash-safe cleanup — a
harness SIGKILLed with faults applied leaves them to `revert_leftovers`, with or without its file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resilience.backends.docker import DockerBackend, DockerRun
from resilience.faults import KillFault, PauseFault, Registry, revert_leftovers
from resilience.faults.leftovers import find_leftovers
from resilience.faults.probes import can_connect
from resilience.faults.registry import (
    STATE_DIR_ENV,
    RegistryError,
    default_state_dir,
    forget_vanished_runs,
    recorded_runs,
    remember_engine,
)

# -------------------------------------------------------------------------------------------- the file


def test_register_update_release(tmp_path: Path) -> None:
    registry = Registry("run1", tmp_path)
    fault = KillFault(node="courier-1", id="k1")
    registry.register(fault)
    on_disk = json.loads((tmp_path / "run1.json").read_text())
    assert on_disk["run_id"] == "run1"
    assert on_disk["faults"]["k1"]["description"] == fault.describe()
    assert on_disk["faults"]["k1"]["applied"] is False
    fault.wait_healthy = False
    registry.update(fault)
    entry = registry.entries()["k1"]
    assert entry["applied"] is True and entry["description"]["wait_healthy"] is False
    registry.release("k1")
    assert registry.entries() == {}
    assert not (tmp_path / "run1.json").exists()  # nothing active: no file
    registry.release("k1")  # releasing twice is harmless
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_an_active_id_cannot_be_registered_again(tmp_path: Path) -> None:
    registry = Registry("run1", tmp_path)
    registry.register(KillFault(node="courier-1", id="k1"))
    with pytest.raises(RegistryError, match=r"k1 is still registered as active for run run1.*resilience cleanup"):
        registry.register(KillFault(node="courier-2", id="k1"))


def test_a_corrupt_file_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "run1.json").write_text('{"run_id": "run1",\n "faults": {oops}}')
    with pytest.raises(RegistryError, match=r"run1\.json:2: not JSON"):
        Registry("run1", tmp_path).entries()
    (tmp_path / "run2.json").write_text('{"run_id": "run9", "faults": {}}')
    with pytest.raises(RegistryError, match="belongs to run 'run9', not 'run2'"):
        Registry("run2", tmp_path).entries()


def test_state_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert Registry("r").path == tmp_path / "elsewhere" / "r.json"
    monkeypatch.delenv(STATE_DIR_ENV)
    assert default_state_dir() == Path.home() / ".cache" / "resilience" / "faults"


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    # Each writer registers and releases its own faults; the lock keeps every update (no lost write).
    script = textwrap.dedent(
        f"""
        import sys
        from resilience.faults import KillFault, Registry
        registry = Registry("shared", {str(tmp_path)!r})
        me = sys.argv[1]
        for i in range(25):
            registry.register(KillFault(node="courier-1", id=f"{{me}}-{{i}}"))
        for i in range(0, 25, 2):
            registry.release(f"{{me}}-{{i}}")
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(4)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0, 0]
    kept = Registry("shared", tmp_path).entries()
    assert sorted(kept) == sorted(f"w{n}-{i}" for n in range(4) for i in range(1, 25, 2))


# ------------------------------------------------------------------------------------ crash and cleanup

CRASHING_HARNESS = textwrap.dedent(
    """
    import os, signal, sys
    import docker
    from resilience.backends.docker import DockerRun
    from resilience.faults import LbCutFault, Nemesis, PartitionFault, PauseFault, Registry, ToxicFault
    from resilience.history import History
    from resilience.topology import load_topology

    run_id, state_dir, topology = sys.argv[1], sys.argv[2], sys.argv[3]
    run = DockerRun(docker.from_env(), run_id, load_topology(topology).select(["infra"]))
    nemesis = Nemesis(run, History(None, run_id=run_id), Registry(run_id, state_dir))
    nemesis.inject(PartitionFault(groups=[["sentinel-1"], ["sentinel-2"]]))
    nemesis.inject(ToxicFault(proxy="redis", type="latency", attributes={"latency": 200}))
    nemesis.inject(PauseFault(node="s3-1"))
    nemesis.inject(LbCutFault(backend="postgres"))
    print("applied", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # as a harness killed mid-experiment: no finally runs
    """
)


@pytest.mark.docker
@pytest.mark.parametrize("with_file", [True, False], ids=["from-the-registry", "by-scanning-the-run"])
def test_a_killed_harness_leaves_nothing_after_cleanup(infra_run: DockerRun, tmp_path: Path, with_file: bool) -> None:
    harness = subprocess.run(
        [sys.executable, "-c", CRASHING_HARNESS, infra_run.run_id, str(tmp_path), str(infra_run.topology.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert harness.returncode == -signal.SIGKILL, harness.stderr
    assert "applied" in harness.stdout
    left = {x.what for x in find_leftovers(infra_run)}
    assert left == {"iptables", "toxic", "paused", "maint"}
    assert not can_connect(infra_run, "sentinel-1", "sentinel-2", 26379, timeout=0.5)
    registry = Registry(infra_run.run_id, tmp_path)
    assert len(registry.entries()) == 4
    if not with_file:
        registry.path.unlink()

    report = revert_leftovers(DockerBackend(), infra_run.run_id, state_dir=tmp_path)

    assert find_leftovers(infra_run) == [], report
    assert registry.entries() == {}
    assert can_connect(infra_run, "sentinel-1", "sentinel-2", 26379)
    assert infra_run.state("s3-1") == "running"
    if with_file:
        assert sum(line.startswith("fault ") and "recovered" in line for line in report) == 4
    else:
        assert any("resumed (was paused)" in line for line in report)
        assert any("deleted toxic redis/rs_" in line for line in report)
        assert any("deleted iptables rule" in line for line in report)
        assert any("postgres/" in line and "ready" in line for line in report)
        assert any("postgres: " in line and "UP again by health check" in line for line in report), report
    # The standby behind the role check did not come back as UP with the cut lifted.
    from resilience.faults.haproxy_api import HaproxyRuntime

    assert sorted(s.up for s in HaproxyRuntime(infra_run, "lb-1").servers_of("postgres")) == [False, True]


@pytest.mark.docker
def test_a_fault_that_cannot_be_recovered_stays_registered(infra_run: DockerRun, tmp_path: Path) -> None:
    registry = Registry(infra_run.run_id, tmp_path)
    registry.register(PauseFault(node="ghost-1", id="ghost"))
    report = revert_leftovers(DockerBackend(), infra_run.run_id, state_dir=tmp_path)
    assert any(line.startswith("fault ghost: recovery failed, kept registered") for line in report), report
    assert list(registry.entries()) == ["ghost"]
    registry.discard()


@pytest.mark.docker
def test_cleanup_of_a_run_that_is_gone_forgets_its_faults(tmp_path: Path) -> None:
    registry = Registry("0000000000gone", tmp_path)
    registry.register(KillFault(node="courier-1"))
    report = revert_leftovers(DockerBackend(), "0000000000gone", state_dir=tmp_path)
    assert len(report) == 1 and "run 0000000000gone is gone" in report[0]
    assert registry.entries() == {}


def test_the_registry_of_a_reaped_run_is_forgotten_once_its_harness_is_dead_and_only_then(tmp_path: Path) -> None:
    """The reaper removes a SIGKILLed harness's run on the engine but cannot reach this host's registry file:
    the next `up` or `cleanup` forgets it. Never a file of a live harness, of another host, of a run still on
    the engine, of a run on another engine, of a hosts run (it has an origin), or one written within the
    grace time."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()

    def record(run_id: str, owner: str, origin: dict[str, str] | None = None, age_s: float = 600,
               engine: str | None = "engine-a") -> Path:  # fmt: skip
        data: dict[str, object] = {"version": 1, "run_id": run_id,
                                   "faults": {"k1": {"owner": owner, "applied": True, "description": {}}}}  # fmt: skip
        if origin is not None:
            data["origin"] = origin
        if engine is not None:
            data["engine"] = engine
        path = tmp_path / f"{run_id}.json"
        path.write_text(json.dumps(data))
        old = path.stat().st_mtime - age_s
        os.utime(path, (old, old))
        return path

    reaped = record("rs-reaped", f"{host}:{dead.pid}")
    kept = [
        record("rs-live-harness", f"{host}:{os.getpid()}"),
        record("rs-other-host", f"elsewhere:{dead.pid}"),
        record("rs-still-here", f"{host}:{dead.pid}"),
        record("rs-on-engine-b", f"{host}:{dead.pid}", engine="engine-b"),
        record("rs-engine-unknown", f"{host}:{dead.pid}", engine=None),
        record("rs-on-hosts", f"{host}:{dead.pid}", origin={"target": "staging"}, engine=None),
        record("rs-just-written", f"{host}:{dead.pid}", age_s=0),
    ]
    lines: list[str] = []

    forgotten = forget_vanished_runs({"rs-still-here"}, "engine-a", state_dir=tmp_path, grace_s=120, log=lines.append)

    assert forgotten == ["rs-reaped"] and not reaped.exists()
    assert all(path.exists() for path in kept)
    assert lines == ["forgot the fault registry of run rs-reaped: the run is gone and so is its harness"]
    assert forget_vanished_runs(set(), "", state_dir=tmp_path, grace_s=0) == [], "no engine ID: judge nothing"


def test_a_docker_run_s_faults_are_registered_with_its_engine(tmp_path: Path) -> None:
    remember_engine("rs-engine-test", "engine-a")
    registry = Registry("rs-engine-test", tmp_path)
    registry.register(KillFault(node="courier-1", id="k1"))
    try:
        assert json.loads(registry.path.read_text())["engine"] == "engine-a"
    finally:
        registry.release("k1")


def test_a_file_released_while_the_runs_are_listed_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live harness unlinks its file when its last fault is recovered: listing must not trip over that."""
    (tmp_path / "rs-gone.json").write_text("{}")
    (tmp_path / "rs-here.json").write_text("{}")
    real_stat = Path.stat

    def vanishing(path: Path, *args: object, **kwargs: object) -> os.stat_result:
        if path.name == "rs-gone.json":
            raise FileNotFoundError(path)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", vanishing)
    assert recorded_runs(tmp_path) == ["rs-here"]
