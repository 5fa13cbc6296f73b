"""Commands act on the caller's own runs unless told otherwise (resilience/ownership.py).

The selection is tested on fake listings and through the CLI with a fake backend; the real-engine test
makes only labelled networks (no container) and removes them by id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience import cli_cluster, ownership
from resilience.backends import labels
from resilience.backends.docker import DockerBackend, NoRunError, RunInfo
from resilience.cli import main
from resilience.exitcodes import ExitCode

ME = "alice@build-1"
NOW = 1_800_000_000.0


def _run(run_id: str, user: str, minutes_ago: float) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        owner="",
        keep=True,
        topology="standin-ha.yaml",
        containers=23,
        created=NOW - minutes_ago * 60,
        user=user,
    )


RUNS = [
    _run("old-mine", ME, 90),
    _run("bobs", "bob@build-1", 30),
    _run("new-mine", ME, 10),
    _run("ci-job", f"{ME}/gitlab:4711", 5),
    _run("legacy", "", 600),
]


# -- who the caller is ---------------------------------------------------------------------------------------


def test_owner_is_user_at_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ownership.getpass, "getuser", lambda: "alice")
    monkeypatch.setattr(ownership.socket, "gethostname", lambda: "build-1")
    assert ownership.current_owner({}) == ME


@pytest.mark.parametrize(
    ("env", "suffix"),
    [
        ({"CI_JOB_ID": "4711"}, "/gitlab:4711"),
        ({"GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "test"}, "/github:99-2-test"),
        ({"BUILDKITE_JOB_ID": "b-1"}, "/buildkite:b-1"),
    ],
)
def test_a_ci_job_owns_its_own_runs(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], suffix: str) -> None:
    monkeypatch.setattr(ownership.getpass, "getuser", lambda: "alice")
    monkeypatch.setattr(ownership.socket, "gethostname", lambda: "build-1")
    assert ownership.current_owner(env) == ME + suffix


def test_the_owner_can_be_set_outright() -> None:
    assert ownership.current_owner({"RESILIENCE_OWNER": "team-x", "CI_JOB_ID": "1"}) == "team-x"


# -- which run a single-run command acts on -------------------------------------------------------------------


def test_default_is_the_callers_newest_run() -> None:
    assert ownership.choose_run(RUNS, None, ME).run_id == "new-mine"
    assert ownership.choose_run(RUNS, None, f"{ME}/gitlab:4711").run_id == "ci-job"


def test_a_named_run_is_taken_whoever_owns_it() -> None:
    assert ownership.choose_run(RUNS, "bobs", ME).run_id == "bobs"
    assert ownership.choose_run(RUNS, "legacy", ME).run_id == "legacy"


def test_without_an_own_run_the_candidates_are_listed() -> None:
    with pytest.raises(ownership.OwnershipError) as refused:
        ownership.choose_run(RUNS, None, "carol@elsewhere", now=NOW)
    lines = str(refused.value).splitlines()
    assert lines[0] == "none of the 5 run(s) on this engine is owned by carol@elsewhere:"
    assert any(line.split()[:3] == ["bobs", "owner", "bob@build-1"] and line.endswith("age 30 min") for line in lines)
    legacy = next(line for line in lines if line.split()[0] == "legacy")
    assert "(none: made before runs were labelled with an owner)" in legacy and legacy.endswith("age 10 h")
    assert "runs without an owner label predate ownership and are owned by nobody" in lines
    assert lines[-1] == "name one with --run ID"


def test_an_unlabelled_run_is_nobodys() -> None:
    assert not ownership.owned(_run("legacy", "", 1), "")
    with pytest.raises(ownership.OwnershipError, match="owned by nobody"):
        ownership.choose_run([_run("legacy", "", 1)], None, ME)


def test_nothing_up_and_an_unknown_name() -> None:
    with pytest.raises(ownership.OwnershipError, match=r"no run is up"):
        ownership.choose_run([], None, ME)
    with pytest.raises(ownership.OwnershipError, match=r"no run nope on this engine \(runs: old-mine, bobs"):
        ownership.choose_run(RUNS, "nope", ME)


def test_cleanup_selection() -> None:
    assert [r.run_id for r in ownership.choose_runs(RUNS, None, False, ME)] == ["old-mine", "new-mine"]
    assert [r.run_id for r in ownership.choose_runs(RUNS, None, True, ME)] == [r.run_id for r in RUNS]
    assert [r.run_id for r in ownership.choose_runs(RUNS, "bobs", False, ME)] == ["bobs"]


# -- the commands, on a fake backend ---------------------------------------------------------------------------


class FakeBackend:
    def __init__(self) -> None:
        self.removed: list[str] = []
        self.registry_tidied = 0

    def runs(self) -> list[RunInfo]:
        return [r for r in RUNS if r.run_id not in self.removed]

    def down(self, run_id: str, log: object = None) -> None:
        self.removed.append(run_id)

    def forget_vanished_runs(self, log: object = None) -> list[str]:
        self.registry_tidied += 1
        return []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    backend = FakeBackend()
    monkeypatch.setenv("RESILIENCE_OWNER", ME)
    monkeypatch.setattr(cli_cluster, "DockerBackend", lambda: backend)
    monkeypatch.setattr("resilience.faults.registry.revert_leftovers", lambda *_a, **_k: [])
    yield backend


def test_down_removes_the_callers_newest_and_says_so_first(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["down"]) == 0
    assert fake.removed == ["new-mine"]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "removing 1 run(s):" and out[1].split()[:3] == ["new-mine", "owner", ME]


def test_down_refuses_when_the_caller_owns_nothing(
    fake: FakeBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESILIENCE_OWNER", "carol@elsewhere")
    assert main(["down"]) == ExitCode.BAD_INPUT
    assert fake.removed == []
    err = capsys.readouterr().err
    assert err.startswith("resilience down: none of the 5 run(s) on this engine is owned by carol@elsewhere:")
    assert "bob@build-1" in err and "owned by nobody" in err


def test_down_removes_anothers_run_when_named(fake: FakeBackend) -> None:
    assert main(["down", "--run", "bobs"]) == 0
    assert fake.removed == ["bobs"]


def test_cleanup_removes_only_the_callers_runs_and_names_the_rest(
    fake: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cleanup"]) == 0
    assert fake.removed == ["old-mine", "new-mine"]
    assert fake.registry_tidied == 1, "a reaped run's host-side fault registry is forgotten too"
    out = capsys.readouterr().out
    before, after = out.split("cleaned up 2 run(s): old-mine, new-mine")
    assert before.startswith("removing 2 run(s):") and "old-mine" in before and "new-mine" in before
    assert "left alone 3 run(s) of others (name one with --run ID, or all with --all):" in after
    assert "bobs" in after and "ci-job" in after and "legacy" in after


def test_cleanup_all_and_cleanup_run(fake: FakeBackend) -> None:
    assert main(["cleanup", "--run", "legacy"]) == 0
    assert fake.removed == ["legacy"]
    assert main(["cleanup", "--all"]) == 0
    assert fake.removed == ["legacy", "old-mine", "bobs", "new-mine", "ci-job"]


def test_cleanup_of_an_unknown_run_is_bad_input(fake: FakeBackend, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cleanup", "--run", "nope"]) == ExitCode.BAD_INPUT
    assert fake.removed == []
    assert "no run nope on this engine" in capsys.readouterr().err


def test_cleanup_with_nothing_of_ones_own(
    fake: FakeBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESILIENCE_OWNER", "carol@elsewhere")
    assert main(["cleanup"]) == 0
    assert fake.removed == []
    assert capsys.readouterr().out.startswith("nothing to clean up: no run of carol@elsewhere")


# -- on the real engine: labelled networks only, removed by id ---------------------------------------------------


@pytest.fixture
def backend() -> DockerBackend:
    try:
        backend = DockerBackend()
        backend.client.ping()
    except Exception as exc:  # any transport error means "no engine"
        pytest.skip(f"no Docker engine: {exc}")
    return backend


def _network_run(backend: DockerBackend, user: str | None) -> str:
    run_id = f"t{uuid.uuid4().hex[:12]}"
    run_labels = {labels.RUN: run_id, labels.KEEP: "true", labels.CREATED: f"{time.time() - 120:.3f}"}
    if user is not None:
        run_labels[labels.USER] = user
    backend.client.networks.create(f"rs-{run_id}", driver="bridge", labels=run_labels)
    return run_id


def test_on_the_engine_others_runs_are_listed_not_taken(
    backend: DockerBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    me = f"test-{uuid.uuid4().hex[:8]}@nowhere"
    monkeypatch.setenv("RESILIENCE_OWNER", me)
    others = _network_run(backend, "someone-else@elsewhere")
    legacy = _network_run(backend, None)
    try:
        infos = {r.run_id: r for r in backend.runs()}
        assert infos[others].user == "someone-else@elsewhere" and infos[legacy].user == ""
        with pytest.raises(NoRunError, match=f"owned by {me}"):
            backend.attach()
        assert main(["status"]) == ExitCode.BAD_INPUT  # read-only: refuses, lists, touches nothing
        err = capsys.readouterr().err
        assert err.startswith("resilience status: none of the") and f"owned by {me}:" in err
        assert any(line.split()[:3] == [others, "owner", "someone-else@elsewhere"] for line in err.splitlines())
        assert "made before runs were labelled" in next(line for line in err.splitlines() if legacy in line)
        assert {others, legacy} <= {r.run_id for r in backend.runs()}
        assert main(["down", "--run", others]) == 0
        assert capsys.readouterr().out.startswith("removing 1 run(s):")
        assert others not in {r.run_id for r in backend.runs()}
    finally:
        for run_id in (others, legacy):
            backend.down(run_id, log=lambda _m: None)


TINY = """\
version: 1
name: tiny
services:
  redis:
    role: redis
    image: resilience-node
    command: [redis-server, /etc/redis/redis.conf]
    ports: [6379]
    health:
      - command: [redis-cli, ping]
"""


def test_up_labels_the_run_with_its_owner_and_status_finds_it(
    backend: DockerBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    me = f"test-{uuid.uuid4().hex[:8]}@nowhere"
    monkeypatch.setenv("RESILIENCE_OWNER", me)
    # Any node image will do for one Redis (the stand-in code under work may have moved the current tag on).
    built = [t for image in backend.client.images.list(name="resilience-node") for t in image.tags]
    if not built:
        pytest.skip("no resilience-node image (make images)")
    monkeypatch.setenv("RESILIENCE_NODE_IMAGE", built[0])
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    code = main(["up", str(path), "--no-build"])
    out = capsys.readouterr().out
    run_id = next((line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("run ")), "")
    try:
        assert code == 0, out
        assert next(r for r in backend.runs() if r.run_id == run_id).user == me
        assert main(["status"]) == 0  # no --run: the caller's own, newest run
        assert f"run {run_id} (tiny)" in capsys.readouterr().out
    finally:
        if run_id:
            backend.down(run_id, log=lambda _m: None)
