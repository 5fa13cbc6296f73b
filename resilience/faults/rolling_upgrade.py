"""rolling-upgrade: move each node of a service to another image in turn, each healthy before the next.

What an operator does to roll out a new RapidPro version: stop one node gracefully (SIGTERM, then
SIGKILL after `timeout`), replace its container by one of the new image (same name, network aliases,
env, switches and volumes), wait until it is healthy, go on. Never more than one node of the service
is down, so an n+1 service should not lose a request; what the experiment then proves is that the old
and the new version work side by side while both run.

Recovery rolls back the same way (an operator's rollback), so a shared cluster ends as it began; with
`rollback=false` it only makes sure every node runs the new image and is healthy (certifying the
upgrade for good, on a cluster of its own). The image the service ran before is recorded at resolve
time, so a `resilience cleanup` in another process can still roll back after a SIGKILL.

How a node is moved is an `UpgradePath` chosen from the run. Docker: replacing its container by one of
another image (DockerBackend.recreate, the engine's image store), which the Backend protocol does not
cover. A hosts run: the command its hosts file declares for the service (`upgrade: {command, rollback,
run_on, timeout, restart}`), with `image` as the version ({version}), run for one node at a time on its
host over SSH (or here, `run_on: harness`, for an ansible-playbook limited to {host}), then the node is
restarted (unless `restart: false`) and must be healthy before the next; the rollback command runs with
{version} the fault's `from_image`, which on hosts must be given when the rollback names {version}.
Kubernetes would be a Deployment's rollout (docs/kubernetes.md).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Protocol

from resilience.backends import hosts_commands
from resilience.backends.base import BackendError
from resilience.backends.hosts import FaultsNotAllowed
from resilience.backends.hosts_data import HostCommands, host_commands, node_fields
from resilience.faults.base import Facts, FaultError, FaultSpecError, bring_back
from resilience.faults.service_roll import ServiceRollFault
from resilience.topology.hosts import UpgradeCommands, fill

if TYPE_CHECKING:
    from resilience.backends.base import Backend
    from resilience.backends.docker import DockerRun


@dataclasses.dataclass(kw_only=True)
class RollingUpgradeFault(ServiceRollFault):
    kind = "rolling-upgrade"
    positional = ("service", "image")

    image: str  # the new image: a tag on this engine (built or `docker load`ed), e.g. nyaruka/courier:v10.0.0
    rollback: bool = True
    from_image: str = ""  # learned: the service's image as the topology wrote it before the upgrade

    def validate(self) -> None:
        super().validate()
        if not self.image.strip():
            raise FaultSpecError("rolling-upgrade: image must name the image to roll out, e.g. image=repo:tag")

    def resolve(self, run: Backend) -> None:
        if self.service not in run.topology.services:
            raise FaultError(f"run {run.run_id} has no service {self.service!r}")
        super().resolve(run)
        path = upgrade_path(run, self.service)
        if not self.from_image and isinstance(path, DockerImages):
            self.from_image = run.topology.services[self.service].image
        path.check(self)

    def inject(self, run: Backend) -> Facts:
        self.resolve(run)
        path = upgrade_path(run, self.service)
        healthy_after = path.roll(self, run, self.image, back=False)
        return {
            "order": list(self.nodes),
            "from": self.from_image,
            "to": self.image,
            "by": path.describe(),
            "healthy_after_s": healthy_after,
        }

    def recover(self, run: Backend) -> Facts:
        self.resolve(run)
        if self.rollback:
            back = upgrade_path(run, self.service).roll(self, run, self.from_image, back=True)
            return {"rolled_back": sorted(back), "image": self.from_image}
        return {node: bring_back(run, node, True, self.health_timeout) for node in self.nodes}

    def roll_images(self, run: Backend, image: str) -> dict[str, float]:
        """Docker: move every node not yet on `image` to it (UpgradePath DockerImages)."""
        return self._roll(run, image, _local_image_id(_docker(run), image))

    def _roll(self, run: Backend, image: str, image_id: str) -> dict[str, float]:
        """Move every node not yet on `image_id` to it, one at a time; already-moved nodes are skipped,
        so a roll cut short is finished by running it again."""
        from resilience.backends.docker import DockerBackend

        docker_run = _docker(run)
        backend = DockerBackend(docker_run.client)
        service = run.topology.services[self.service]
        run.topology = run.topology.with_service(dataclasses.replace(service, image=image))
        healthy_after: dict[str, float] = {}
        moved = 0
        for node in self.nodes:
            if run.state(node) != "missing" and run.image(node) == image_id:
                continue
            if moved and self.settle:
                time.sleep(self.settle)
            if run.state(node) == "running":
                run.stop(node, timeout=self.timeout)
            backend.recreate(docker_run, node)
            healthy_after[node] = round(run.wait_healthy(node, timeout=self.health_timeout), 3)
            self.back_in_rotation(run, node)
            moved += 1
        return healthy_after


class UpgradePath(Protocol):
    def describe(self) -> str: ...

    def check(self, fault: RollingUpgradeFault) -> None:
        """Refuse (FaultError) before any node is touched when the roll cannot be done."""
        ...

    def roll(self, fault: RollingUpgradeFault, run: Backend, version: str, back: bool) -> dict[str, float]:
        """Move the fault's nodes to `version` one at a time, each healthy before the next; the seconds each
        took to be healthy."""
        ...


class DockerImages:
    """Recreate each container from another image on this engine."""

    def describe(self) -> str:
        return "docker image"

    def check(self, fault: RollingUpgradeFault) -> None:
        """The images are looked up on the engine by `roll`, before any node is touched."""

    def roll(self, fault: RollingUpgradeFault, run: Backend, version: str, back: bool) -> dict[str, float]:
        return fault.roll_images(run, version)


@dataclasses.dataclass(frozen=True)
class DeclaredUpgrade:
    """A hosts file's `upgrade:` commands, run for one node at a time."""

    run: HostCommands
    commands: UpgradeCommands

    def describe(self) -> str:
        return f"the hosts file's upgrade command (on the {self.commands.run_on})"

    def command_for(self, node: str, version: str, back: bool) -> tuple[str, ...]:
        argv = self.commands.rollback if back else self.commands.command
        return fill(argv, {**node_fields(self.run.hosts, node), "version": version})

    def check(self, fault: RollingUpgradeFault) -> None:
        if not fault.rollback or fault.from_image:
            return
        if any("{version}" in word for word in self.commands.rollback):
            raise FaultError(
                f"rolling-upgrade of {fault.service}: the hosts file's rollback command names {{version}}, so the "
                f"version to roll back to must be given as from_image=VERSION (or rollback=false)"
            )

    def roll(self, fault: RollingUpgradeFault, run: Backend, version: str, back: bool) -> dict[str, float]:
        healthy_after: dict[str, float] = {}
        for position, node in enumerate(fault.nodes):
            if position and fault.settle:
                time.sleep(fault.settle)
            argv = self.command_for(node, version, back)
            what = f"{'rolling back' if back else 'upgrading'} {node} to {version}"
            try:
                if self.commands.run_on == "harness":
                    self.run.run_here(node, argv, what, self.commands.timeout)
                else:
                    self.run.run_for(node, hosts_commands.declared(argv), what, timeout=self.commands.timeout)
            except FaultsNotAllowed:
                raise
            except BackendError as exc:
                raise FaultError(str(exc)) from None
            if self.commands.restart:
                run.restart(node, timeout=fault.timeout)
            elif run.state(node) not in ("running", "restarting"):
                run.start(node)
            healthy_after[node] = round(run.wait_healthy(node, timeout=fault.health_timeout), 3)
            fault.back_in_rotation(run, node)
        return healthy_after


def upgrade_path(run: Backend, service: str) -> UpgradePath:
    """The hosts file's commands on a hosts run (which must declare them); Docker images otherwise."""
    hosts = host_commands(run)
    if hosts is None:
        return DockerImages()
    declared = hosts.hosts.services[service].upgrade if service in hosts.hosts.services else None
    if declared is None:
        raise FaultError(
            f"rolling-upgrade of {service}: hosts file {hosts.hosts.path} declares no `upgrade:` for it; expected "
            f"`upgrade: {{command: COMMAND}}` with {{version}} (e.g. apt-get install -y {service}={{version}})"
        )
    return DeclaredUpgrade(hosts, declared)


def _docker(run: Backend) -> DockerRun:
    from resilience.backends.docker import DockerRun

    if not isinstance(run, DockerRun):
        raise FaultError(f"rolling-upgrade needs the Docker backend; run {run.run_id} is {type(run).__name__}")
    return run


def _local_image_id(run: DockerRun, image: str) -> str:
    import docker.errors

    from resilience.images import resolve_image

    name = resolve_image(image)
    try:
        return str(run.client.images.get(name).id)
    except docker.errors.ImageNotFound:
        raise FaultError(
            f"rolling-upgrade: image {name!r} is not on this Docker engine (nothing is pulled during a run); "
            f"build it or `docker load` it first"
        ) from None
