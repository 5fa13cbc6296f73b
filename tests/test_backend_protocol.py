"""The Backend protocol (resilience/backends/base.py): Docker's run implements it, and what acts on nodes
(faults, nemesis, registry, probes, cluster, experiments) depends on it rather than on DockerRun."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from resilience.backends.base import Backend, BackendError, NetfilterError
from resilience.backends.docker import DockerRun
from resilience.faults import netfilter
from resilience.faults.base import FaultError
from resilience.topology import load_topology

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resilience"
# Need what only Docker has (DockerBackend.recreate, the engine's images); see its docstring.
DOCKER_ONLY = {PACKAGE / "faults" / "rolling_upgrade.py"}
ON_THE_PROTOCOL = [
    *sorted((PACKAGE / "faults").rglob("*.py")),
    PACKAGE / "cluster.py",
    PACKAGE / "snapshot.py",
    *sorted((PACKAGE / "experiment").rglob("*.py")),
]


def _static(run: DockerRun) -> Backend:
    return run  # mypy checks that DockerRun is a Backend here


def test_a_docker_run_is_a_backend() -> None:
    topology = load_topology(ROOT / "harness" / "topologies" / "standin-ha.yaml").select(["infra"])
    run = DockerRun(cast(Any, None), "0000000000abcd", topology)  # no engine needed to build the handle
    assert isinstance(run, Backend)
    assert _static(run) is run


@pytest.mark.parametrize(
    "name", [n for n in dir(Backend) if not n.startswith("_") and inspect.isfunction(getattr(Backend, n))]
)
def test_docker_run_takes_the_protocols_parameters(name: str) -> None:
    """Same parameter names, kinds and defaults: a caller written against the protocol works on Docker."""
    wanted = inspect.signature(getattr(Backend, name))
    actual = inspect.signature(getattr(DockerRun, name))
    assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == [
        (p.name, p.kind, p.default) for p in wanted.parameters.values()
    ], f"DockerRun.{name}{actual} differs from Backend.{name}{wanted}"


def test_every_operation_is_documented() -> None:
    undocumented = [
        name
        for name in dir(Backend)
        if not name.startswith("_")
        and inspect.isfunction(getattr(Backend, name))
        and not getattr(Backend, name).__doc__
    ]
    assert not undocumented


@pytest.mark.parametrize("path", ON_THE_PROTOCOL, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_callers_depend_on_the_protocol_not_on_docker(path: Path) -> None:
    imported = {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "resilience.backends.docker"
        for alias in node.names
    }
    allowed = (
        {"DockerRun", "DockerBackend"}
        if path in DOCKER_ONLY
        else {"DockerBackend"}
        if path.name == "cluster.py"
        else set()
    )
    assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)} from the Docker backend"


class _Rules:
    """A backend whose iptables fails as Docker's does without root, or on a node that is not running."""

    run_id = "0000000000abcd"

    def __init__(self, error: BackendError) -> None:
        self.error = error

    def iptables(self, node: str, args: Sequence[str]) -> str:
        raise self.error


def test_a_rule_failure_is_the_faults_error_with_the_backends_words() -> None:
    run = cast(Backend, _Rules(NetfilterError("db-1: `iptables -S` failed: permission denied")))
    with pytest.raises(FaultError, match=r"^db-1: `iptables -S` failed: permission denied$"):
        netfilter.rules_with(run, "db-1", "resilience:")


def test_a_node_without_a_process_stays_a_backend_error() -> None:
    run = cast(Backend, _Rules(BackendError("db-1 is not running, it has no process")))
    with pytest.raises(BackendError) as caught:
        netfilter.rules_with(run, "db-1", "resilience:")
    assert not isinstance(caught.value, FaultError)
