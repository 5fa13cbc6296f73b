"""The registry remembers where a hosts run is (its target or hosts file), so that `cleanup --target` in a later
process can rebuild it, and a Docker cleanup never forgets such a record. No Docker, no SSH."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resilience.backends.base import BackendError
from resilience.backends.hosts_target import Deployment, choose_deployment
from resilience.faults.kill import KillFault
from resilience.faults.registry import Registry, recorded_runs, remember_origin, revert_leftovers

HOSTS = """\
version: 1
kind: hosts
name: staging
allow_faults: true
hosts:
  app-1: {address: 10.0.0.11}
services:
  courier: {role: courier, systemd: courier.service, nodes: [app-1]}
"""


class NoDockerRun:
    """A run finder that finds nothing, as Docker's does for a run it never made."""

    def attach(self, run_id: str | None = None) -> object:
        raise BackendError(f"no run {run_id} on this engine")


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    path = tmp_path / "staging.yaml"
    path.write_text(HOSTS)
    return choose_deployment(None, str(path))


def test_a_hosts_run_s_faults_are_recorded_with_its_origin(deployment: Deployment, tmp_path: Path) -> None:
    run = deployment.open_run("0000000000abcd")  # never contacts a host until asked to act
    Registry(run.run_id, tmp_path).register(KillFault(node="courier-1", id="down"))
    data = json.loads((tmp_path / "0000000000abcd.json").read_text())
    assert data["origin"] == {"backend": "hosts", "hosts_file": str(deployment.hosts_file), "target": None}
    assert Registry(run.run_id, tmp_path).origin() == data["origin"]
    assert recorded_runs(tmp_path) == ["0000000000abcd"]
    assert deployment.matches(data["origin"])


def test_a_docker_run_s_record_has_no_origin(tmp_path: Path) -> None:
    Registry("0000000000d0c4", tmp_path).register(KillFault(node="courier-1"))
    assert Registry("0000000000d0c4", tmp_path).origin() is None


def test_a_docker_cleanup_leaves_a_hosts_run_s_record_for_cleanup_target(
    deployment: Deployment, tmp_path: Path
) -> None:
    remember_origin("0000000000beef", deployment.origin())
    registry = Registry("0000000000beef", tmp_path)
    registry.register(KillFault(node="courier-1", id="down"))
    report = revert_leftovers(NoDockerRun(), "0000000000beef", state_dir=tmp_path)  # type: ignore[arg-type]
    assert report == [f"run 0000000000beef is on {deployment.hosts_file}: left for cleanup --target"]
    assert list(registry.entries()) == ["down"]  # kept: only cleanup --target can revert it


def test_an_origin_matches_its_target_by_name_or_its_hosts_file(deployment: Deployment) -> None:
    named = Deployment(deployment.hosts, deployment.hosts_file, "staging")
    assert named.matches({"backend": "hosts", "hosts_file": "/elsewhere/moved.yaml", "target": "staging"})
    assert named.matches({"backend": "hosts", "hosts_file": str(deployment.hosts_file), "target": None})
    assert not named.matches({"backend": "hosts", "hosts_file": "/elsewhere/other.yaml", "target": "prod"})
    assert not deployment.matches(None)
    assert not deployment.matches({"backend": "docker"})
