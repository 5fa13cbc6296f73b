"""Restart policies on real Docker: a node whose process exits is restarted by its policy (at bring-up
too), a `crash` is answered by the policy while a `kill` holds the node down until recovery, after which
the policy is armed again; a node without a policy stays down after a crash until recovery."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from resilience.backends.docker import BackendError, DockerBackend, DockerRun, iter_labelled
from resilience.faults import CrashFault, KillFault, Nemesis, RollingRestartFault, fault_from_description
from resilience.faults.base import wait_for
from resilience.faults.leftovers import find_leftovers
from resilience.faults.registry import Registry
from resilience.history import History
from resilience.topology import load_topology
from resilience.waits import NodeExited

pytestmark = pytest.mark.docker
# Longer than Docker's first back-offs (100, 200, 400 ms) plus a start on a loaded machine: a node that
# a policy would bring back is back by then.
HELD_SECONDS = 4.0

# `worker` plays courier at v9.2 with Redis unreachable at start: its first life exits 1, and so does every
# life that starts while the host's flag file FLAGS/redis-down exists; the others serve (the container's
# files survive a restart). Its role gives it `always` by default.
# `plain` is an infra node (s3: `no` by default) that never exits on its own.
TOPOLOGY = """\
version: 1
name: restart-test
services:
  worker:
    role: courier
    image: resilience-node
    command:
      - sh
      - -c
      - |
        echo "life starts"
        if [ ! -e /tmp/started ] || [ -e /flags/redis-down ]; then
          touch /tmp/started; echo "no Redis at start"; exit 1
        fi
        exec python -m http.server 8099
    volumes: ["FLAGS:/flags:ro"]
    ports: [8099]
    health:
      - http: {port: 8099, path: /}
  plain:
    role: s3
    image: resilience-node
    command: [python, -m, http.server, "8098"]
    ports: [8098]
    health:
      - http: {port: 8098, path: /}
"""


@pytest.fixture(scope="module")
def backend() -> DockerBackend:
    try:
        backend = DockerBackend()
        backend.client.ping()
    except Exception as exc:  # docker's errors vary by transport; any means "no engine"
        pytest.skip(f"no Docker engine: {exc}")
    return backend


@pytest.fixture(scope="module")
def flags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flags")


@pytest.fixture(scope="module")
def restart_run(backend: DockerBackend, tmp_path_factory: pytest.TempPathFactory, flags: Path) -> Iterator[DockerRun]:
    path = tmp_path_factory.mktemp("topology") / "restart-test.yaml"
    path.write_text(TOPOLOGY.replace("FLAGS", str(flags)))
    run = backend.up(load_topology(path), log=lambda _m: None)
    try:
        yield run
    finally:
        backend.down(run.run_id, log=lambda _m: None)
        assert list(iter_labelled(backend.client, run.run_id)) == []


@pytest.fixture
def nemesis(restart_run: DockerRun, tmp_path: Path) -> Nemesis:
    return Nemesis(restart_run, History(None, run_id=restart_run.run_id), Registry(restart_run.run_id, tmp_path))


def test_a_node_whose_process_exits_is_restarted_by_its_policy(restart_run: DockerRun) -> None:
    assert restart_run.restart_policy("worker-1") == "always"
    assert restart_run.restart_policy("plain-1") == "no"
    # The bring-up waited through it: the first life exited, the policy ran the second, which serves.
    assert restart_run.restart_count("worker-1") == 1
    assert restart_run.logs("worker-1").count("life starts") == 2
    assert restart_run.state("worker-1") == "running"


@pytest.mark.parametrize(("policy", "lives"), [('"no"', 1), ("on-failure:2", 3)])
def test_without_a_policy_or_past_its_retries_the_bring_up_fails(
    backend: DockerBackend, tmp_path: Path, policy: str, lives: int
) -> None:
    path = tmp_path / "failing.yaml"
    path.write_text(
        "version: 1\nname: failing\nservices:\n  worker:\n    role: courier\n    image: resilience-node\n"
        f"    restart: {policy}\n    command: [sh, -c, 'echo life starts; exit 1']\n    health:\n"
        "      - log: never printed\n    health_timeout: 60\n"
    )
    with pytest.raises(NodeExited) as caught:
        backend.up(load_topology(path), log=lambda _m: None)
    assert str(caught.value).count("life starts") == lives


def test_kill_holds_an_always_node_down_until_recovery_then_the_policy_acts_again(
    restart_run: DockerRun, nemesis: Nemesis
) -> None:
    node = "worker-1"
    kill = KillFault(node=node)
    restarts = restart_run.restart_count(node)
    facts = nemesis.inject(kill)
    try:
        assert facts["state"] == "exited"
        time.sleep(HELD_SECONDS)
        assert restart_run.state(node) == "exited"  # Docker did not restart it
        assert restart_run.restart_count(node) == restarts
        assert restart_run.restart_policy(node) == "always"  # nothing was switched off to hold it
    finally:
        recovered = nemesis.recover(kill)
    assert recovered["was"] == "exited" and restart_run.state(node) == "running"

    # The policy is armed again: a crash now is answered without the harness starting anything.
    crash = CrashFault(node=node, wait_healthy=False)
    facts = nemesis.inject(crash)
    assert facts["policy"] == "always"
    assert facts["state"] in ("restarting", "running")
    wait_for(f"{node} restarted by its policy", lambda: restart_run.restart_count(node) >= 1, 30)
    assert restart_run.state(node) in ("restarting", "running")  # never "exited" between lives
    restart_run.wait_healthy(node)
    recovered = nemesis.recover(crash)
    assert recovered["was"] == "running" and recovered["restarts"] >= 1
    assert nemesis.registry.entries() == {}
    assert find_leftovers(restart_run) == []


def test_a_crash_of_a_node_without_a_policy_lasts_until_recovery(restart_run: DockerRun, nemesis: Nemesis) -> None:
    node = "plain-1"
    crash = CrashFault(node=node)
    facts = nemesis.inject(crash)
    try:
        assert facts == {"policy": "no", "state": "exited", "noticed_after_s": facts["noticed_after_s"]}
        assert restart_run.container(node).attrs["State"]["ExitCode"] == 137
        time.sleep(HELD_SECONDS)
        assert restart_run.state(node) == "exited"
    finally:
        recovered = nemesis.recover(crash)
    assert recovered["was"] == "exited" and "healthy_after_s" in recovered
    assert restart_run.state(node) == "running"


def test_a_rolling_restart_while_redis_is_down_waits_through_the_crash_loop(
    restart_run: DockerRun, nemesis: Nemesis, flags: Path
) -> None:
    """What production does: the restarted node exits at start, its supervisor restarts it with a growing
    back-off, and the roll goes on once a life starts with Redis back (without a policy it fails)."""
    node, down = "worker-1", flags / "redis-down"
    roll = RollingRestartFault(service="worker", timeout=2, health_timeout=90)
    down.touch()
    outcome: dict[str, object] = {}
    roller = threading.Thread(target=lambda: outcome.update(nemesis.inject(roll)))
    try:
        roller.start()
        wait_for(f"{node} crash-looping under its policy", lambda: restart_run.restart_count(node) >= 3, 60)
        assert roller.is_alive()  # the roll waits for it
        assert restart_run.state(node) in ("restarting", "running")
    finally:
        down.unlink()
        roller.join(120)
        nemesis.recover(roll)
    assert outcome["order"] == [node] and restart_run.state(node) == "running"
    assert restart_run.logs(node).count("no Redis at start") >= 4  # the bring-up's first life, then the loop


def test_crash_round_trips_through_its_description_and_text_form() -> None:
    fault = CrashFault(node="courier-1", wait_healthy=False)
    assert fault_from_description(fault.describe()).describe() == fault.describe()
    assert fault.to_args() == ["courier-1", "wait_healthy=false"]


def test_a_crash_needs_the_engines_host(restart_run: DockerRun, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pid that is not the node's (an engine on another host) is refused, never signalled."""
    real = restart_run.container("plain-1")

    class Elsewhere:
        id = real.id
        attrs = {**real.attrs, "State": {**real.attrs["State"], "Pid": os.getpid()}}  # some process of ours

        def reload(self) -> None:
            pass

    monkeypatch.setattr(restart_run, "container", lambda _node: Elsewhere())
    with pytest.raises(BackendError, match="not visible from here"):
        restart_run.crash("plain-1")
