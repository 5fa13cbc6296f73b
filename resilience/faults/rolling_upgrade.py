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
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from resilience.faults.base import Facts, FaultError, FaultSpecError, bring_back
from resilience.faults.service_roll import ServiceRollFault

if TYPE_CHECKING:
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

    def resolve(self, run: DockerRun) -> None:
        if self.service not in run.topology.services:
            raise FaultError(f"run {run.run_id} has no service {self.service!r}")
        super().resolve(run)
        if not self.from_image:
            self.from_image = run.topology.services[self.service].image

    def inject(self, run: DockerRun) -> Facts:
        self.resolve(run)
        target = _local_image_id(run, self.image)  # refuse before touching a node
        healthy_after = self._roll(run, self.image, target)
        return {"order": list(self.nodes), "from": self.from_image, "to": self.image, "healthy_after_s": healthy_after}

    def recover(self, run: DockerRun) -> Facts:
        self.resolve(run)
        if self.rollback:
            back = self._roll(run, self.from_image, _local_image_id(run, self.from_image))
            return {"rolled_back": sorted(back), "image": self.from_image}
        return {node: bring_back(run, node, True, self.health_timeout) for node in self.nodes}

    def _roll(self, run: DockerRun, image: str, image_id: str) -> dict[str, float]:
        """Move every node not yet on `image_id` to it, one at a time; already-moved nodes are skipped,
        so a roll cut short is finished by running it again."""
        from resilience.backends.docker import DockerBackend

        backend = DockerBackend(run.client)
        service = run.topology.services[self.service]
        run.topology = run.topology.with_service(dataclasses.replace(service, image=image))
        healthy_after: dict[str, float] = {}
        moved = 0
        for node in self.nodes:
            if run.state(node) != "missing" and run.container(node).image.id == image_id:
                continue
            if moved and self.settle:
                time.sleep(self.settle)
            if run.state(node) == "running":
                run.stop(node, timeout=self.timeout)
            backend.recreate(run, node)
            healthy_after[node] = round(run.wait_healthy(node, timeout=self.health_timeout), 3)
            moved += 1
        return healthy_after


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
