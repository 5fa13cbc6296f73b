"""Which deployment a command acts on: a target (`--target NAME`, resilience/target.py) or a hosts file
(`--hosts FILE`), turned into its hosts topology and the origin the fault registry records, so that a
later process (`resilience cleanup --target NAME`) can rebuild the same HostsRun after this one died.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resilience.backends.hosts import HostsRun, ShellFactory
from resilience.backends.ssh import HostShell
from resilience.topology import TopologyError, is_hosts_file, load_hosts
from resilience.topology.hosts import HostsTopology

if TYPE_CHECKING:
    from resilience.cluster import Cluster
    from resilience.target import Target


class TargetChoiceError(ValueError):
    """The target or hosts file named cannot be used; the message says which and what was expected."""


@dataclass(frozen=True)
class Deployment:
    """A deployment the harness did not create, as a command names it."""

    hosts: HostsTopology
    hosts_file: Path  # absolute
    target: str | None = None  # the target's name when named by one

    @property
    def label(self) -> str:
        return f"target {self.target} ({self.hosts_file})" if self.target else f"hosts file {self.hosts_file}"

    def origin(self) -> dict[str, Any]:
        """What the fault registry keeps for a run on this deployment (registry.remember_origin)."""
        return {"backend": "hosts", "hosts_file": str(self.hosts_file), "target": self.target}

    def matches(self, origin: dict[str, Any] | None) -> bool:
        """Whether a registry record's origin is a run on this deployment."""
        if not origin or origin.get("backend") != "hosts":
            return False
        if self.target is not None and origin.get("target") == self.target:
            return True
        return origin.get("hosts_file") == str(self.hosts_file)

    def open_run(self, run_id: str | None = None, shell_factory: ShellFactory = HostShell) -> HostsRun:
        """A HostsRun on these hosts whose faults the registry records with this deployment's origin."""
        from resilience.backends import labels
        from resilience.faults.registry import remember_origin

        run = HostsRun(self.hosts, run_id or labels.new_run_id(), shell_factory=shell_factory)
        remember_origin(run.run_id, self.origin())
        return run


def _from_target(name: str) -> Deployment:
    from resilience.target import TargetError, load_target

    try:
        target = load_target(name)
        hosts = target.load_hosts()
    except (TargetError, TopologyError) as exc:
        raise TargetChoiceError(f"--target {name}: {exc}") from None
    if hosts is None or target.hosts_file is None:
        raise TargetChoiceError(
            f"--target {name}: {target.path} names no hosts file, so nothing can be done on its nodes; "
            "expected `hosts: FILE` (a `kind: hosts` file, docs/hosts.md)"
        )
    return Deployment(hosts, Path(target.hosts_file).resolve(), target.name)


def choose_deployment(target: str | None, hosts_file: str | None) -> Deployment:
    """The deployment named by --target or --hosts (exactly one). Raises TargetChoiceError, or TopologyError
    with the hosts file's located mistakes."""
    if target and hosts_file:
        raise TargetChoiceError("give --target NAME or --hosts FILE, not both")
    if hosts_file:
        path = Path(hosts_file)
        if path.is_file() and not is_hosts_file(path):
            raise TargetChoiceError(f"--hosts {hosts_file}: not a hosts file; expected `kind: hosts` in it")
        return Deployment(load_hosts(path), path.resolve())
    if target:
        return _from_target(target)
    raise TargetChoiceError("name the deployment: --target NAME or --hosts FILE")


def open_target(target: Target) -> tuple[Cluster, Any]:
    """The cluster of a loaded target: its nodes through a HostsRun on its hosts file (None without one),
    whose faults the registry records with the target (`resilience cleanup --target NAME` finds them); the
    run too, for closing. Used by `pytest --resilience-target` and by `resilience certify` on a deployment."""
    from resilience.cluster import Cluster

    hosts = target.load_hosts()
    run = None
    if hosts is not None and target.hosts_file is not None:
        run = Deployment(hosts, Path(target.hosts_file).resolve(), target.name).open_run()
    return Cluster.for_target(run, target), run
