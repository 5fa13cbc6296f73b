"""The Docker backend's lifecycle: realises a topology as labelled containers on one bridge network per run,
finds runs, attaches to one, reconfigures and recreates nodes, takes runs down and reaps orphans.

Everything it creates carries `resilience.run=<run id>`; it never lists, changes or removes anything
without that label. Ports are published on 127.0.0.1 only, so the host never dials a bridge address.
The node operations faults act through are docker_nodes.py's `DockerRun` (the Backend protocol, base.py);
it and the names below are imported from here as before.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import docker
import docker.errors
import docker.models.networks
from docker.models.containers import Container

from resilience import images, ownership, reaper
from resilience.backends import engine, labels
from resilience.backends.base import BackendError, NodeStatus
from resilience.backends.docker_nodes import DockerRun, put_files, strategies_for
from resilience.backends.render import files_for, node_environment
from resilience.topology import NodeSpec, RestartName, RestartPolicy, Topology

# Imported from here by the CLI, tests and benchmarks since before the split.
__all__ = [
    "REAPER_GRACE_SECONDS",
    "BackendError",
    "DockerBackend",
    "DockerRun",
    "NoRunError",
    "NodeStatus",
    "RunInfo",
    "docker_restart_policy",
    "iter_labelled",
    "strategies_for",
]

Log = Callable[[str], None]
REAPER_GRACE_SECONDS = 60.0


class NoRunError(BackendError):
    """No run to act on: none is up, the one named does not exist, or none is the caller's (the message
    then lists the candidates, with their owners and ages)."""


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    owner: str
    keep: bool
    topology: str
    containers: int
    created: float
    user: str = ""  # who owns it (labels.USER); "" for runs made before that label existed
    reaper: bool = False  # it was given a reaper (labels.REAPER)
    watched: bool = False  # its reaper runs: its owner's heartbeat holds (resilience/reaper.py)

    @property
    def orphaned(self) -> bool:
        """Its owner is gone and it was not kept. A run without an owner label was not made by this backend:
        only `resilience cleanup` removes it. A watched run never is; one whose reaper has stopped while
        the run remains lost its heartbeat, wherever its owner ran; one without a reaper is judged by its
        owner's process, which only its own host can see (labels.owner_alive)."""
        if not self.owner or self.keep or self.watched:
            return False
        if self.reaper:
            # Its reaper is made before anything else of the run; give a run being made time to start it.
            return time.time() - self.created > REAPER_GRACE_SECONDS
        return not labels.owner_alive(self.owner)


class DockerBackend:
    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or engine.connect()

    # -- discovery ------------------------------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        by_run: dict[str, list[Container]] = {}
        watched: set[str] = set()
        for container in self.client.containers.list(all=True, filters={"label": labels.RUN}, ignore_removed=True):
            if container.labels.get(labels.ROLE) == reaper.ROLE:
                # Created and never started: its owner died before it could attach (a window of
                # milliseconds); that counts as a heartbeat only while the run is young.
                age = time.time() - float(container.labels.get(labels.CREATED, "0") or 0)
                if container.status == "running" or (container.status == "created" and age < REAPER_GRACE_SECONDS):
                    watched.add(container.labels[labels.RUN])
                by_run.setdefault(container.labels[labels.RUN], [])
                continue
            by_run.setdefault(container.labels[labels.RUN], []).append(container)
        for network in self.client.networks.list(filters={"label": labels.RUN}):
            by_run.setdefault(network.attrs["Labels"][labels.RUN], [])
        infos = []
        for run_id, containers in by_run.items():
            first = containers[0].labels if containers else self._network_labels(run_id)
            infos.append(
                RunInfo(
                    run_id=run_id,
                    owner=first.get(labels.OWNER, ""),
                    keep=first.get(labels.KEEP) == "true",
                    topology=first.get(labels.TOPOLOGY, ""),
                    containers=len(containers),
                    created=float(first.get(labels.CREATED, "0") or 0),
                    user=first.get(labels.USER, ""),
                    reaper=first.get(labels.REAPER) == "true",
                    watched=run_id in watched,
                )
            )
        return sorted(infos, key=lambda r: r.created)

    def _network_labels(self, run_id: str) -> dict[str, str]:
        for network in self.client.networks.list(filters={"label": f"{labels.RUN}={run_id}"}):
            return dict(network.attrs.get("Labels") or {})
        return {}

    def attach(self, run_id: str | None = None, topology: Topology | None = None) -> DockerRun:
        """The handle of an existing run: the one named, else the caller's newest (resilience/ownership.py).

        Raises NoRunError when there is none, listing the runs of others rather than picking one of them."""
        try:
            info = ownership.choose_run(self.runs(), run_id, ownership.current_owner())
        except ownership.OwnershipError as exc:
            raise NoRunError(str(exc)) from None
        if topology is None:
            from resilience.topology import TopologyError, load_topology

            meta = self._network_labels(info.run_id)
            path = meta.get(labels.TOPOLOGY) or info.topology
            params = json.loads(meta.get("resilience.params", "{}"))
            only = [s for s in meta.get("resilience.only", "").split(",") if s]
            try:
                topology = load_topology(Path(path), params)
                if only:
                    topology = topology.select(only)
            except TopologyError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise BackendError(f"run {info.run_id}: cannot read back its topology {path}: {first}") from None
        self._remember_engine(info.run_id)
        return DockerRun(self.client, info.run_id, topology)

    def _remember_engine(self, run_id: str) -> None:
        from resilience.faults.registry import remember_engine

        remember_engine(run_id, self.engine_id)

    # -- lifecycle --------------------------------------------------------------------------------------
    def up(
        self,
        topology: Topology,
        run_id: str | None = None,
        keep: bool = False,
        log: Log = print,
        only: Sequence[str] = (),
        params: dict[str, object] | None = None,
    ) -> DockerRun:
        """Create the network and every node in dependency waves, each wave healthy before the next."""
        self.reap_orphans(log)
        run_id = run_id or labels.new_run_id()
        self._remember_engine(run_id)
        run = DockerRun(self.client, run_id, topology)
        common = {
            labels.RUN: run_id,
            labels.OWNER: labels.owner_label(),
            labels.USER: ownership.current_owner(),
            labels.KEEP: "true" if keep else "false",
            labels.TOPOLOGY: str(topology.path),
            labels.CREATED: f"{time.time():.3f}",
        }
        try:
            if not keep:
                # First, so that a harness killed at any later moment leaves nothing (resilience/reaper.py).
                image = images.resolve_image(images.NODE_REPO)
                if reaper.start_reaper(self.client, run_id, image, {**common, labels.REAPER: "true"}, log):
                    common[labels.REAPER] = "true"
            with reaper.signals_held(signal.SIGINT, signal.SIGTERM):  # see signals_held
                self.client.networks.create(
                    run.network_name,
                    driver="bridge",
                    labels={**common, "resilience.params": json.dumps(params or {}), "resilience.only": ",".join(only)},
                )
            for wave in topology.start_waves():
                nodes = [n for s in wave for n in topology.nodes() if n.service == s.name]
                with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
                    list(pool.map(lambda n: self._create_and_start(run, n, common), nodes))
                    list(pool.map(lambda n: self._await(run, n, log), nodes))
        except docker.errors.ImageNotFound as exc:
            self.down(run_id, log=lambda _m: None)
            raise BackendError(f"{exc.explanation}: build it with `resilience images build`") from None
        except docker.errors.APIError as exc:
            self.down(run_id, log=lambda _m: None)
            problem = engine.explain(exc)  # a port already taken, a full disk: the host's, not the topology's
            if problem:
                raise engine.EnvironmentProblem(problem) from None
            raise BackendError(f"docker refused: {exc.explanation or exc}") from None
        except BaseException:
            log(f"bring-up of run {run_id} failed; removing what it created")
            self.down(run_id, log=lambda _m: None)
            raise
        return run

    def _create_and_start(self, run: DockerRun, node: NodeSpec, common: dict[str, str]) -> None:
        topology = run.topology
        service = topology.services[node.service]
        env = node_environment(topology, node, run.run_id)
        volumes: dict[str, dict[str, str]] = {}
        for spec in service.volumes:
            source, target, mode = _split_volume(spec)
            if not source.startswith("/"):
                scope = run.run_id if source.startswith("shared-") else f"{run.run_id}-{node.name}"
                source = f"rs-{scope}-{source}"
                self._ensure_volume(source, common)
            volumes[source] = {"bind": target, "mode": mode}
        container_labels = {
            **common,
            labels.NODE: node.name,
            labels.SERVICE: node.service,
            labels.ROLE: service.role.value,
        }
        container = self.client.containers.create(
            images.resolve_image(service.image),
            command=list(service.command) if service.command else None,
            entrypoint=list(service.entrypoint) if service.entrypoint else None,
            name=run.container_name(node.name),
            hostname=node.name,
            environment=env,
            labels=container_labels,
            ports={f"{port}/{proto}": ("127.0.0.1", None) for port, proto in service.ports},
            volumes=volumes,
            init=True,
            restart_policy=docker_restart_policy(service.restart_policy),
            privileged=bool(service.privileged),
            cap_add=list(service.cap_add) or None,
            network=run.network_name,
            networking_config={
                run.network_name: self.client.api.create_endpoint_config(aliases=[node.name, node.service])
            },
            detach=True,
        )
        files = files_for(topology, node, run.run_id)
        if files:
            put_files(container, dict(files))
        container.start()

    def reconfigure(self, run: DockerRun, switches: dict[str, dict[str, object]], log: Log = print) -> list[str]:
        """Set the stand-in switches to the topology's own plus `switches` (so `{}` restores the defaults),
        recreating the nodes whose switches change: env is fixed when a container is created.

        Node by node, each healthy before the next, so an n+1 service stays available meanwhile.
        Returns the services recreated.
        """
        wanted = run.original_topology.with_switches(switches)
        current = run.topology.services
        changed = [name for name, service in wanted.services.items() if service.switches != current[name].switches]
        run.topology = wanted
        for service_name in changed:
            for node in [n for n in wanted.nodes() if n.service == service_name]:
                self.recreate(run, node.name)
                self._await(run, node, log)
        return changed

    def recreate(self, run: DockerRun, node: str) -> None:
        """Replace a node's container by a new one made from `run.topology` as it is now (its image, env,
        switches), keeping its name, labels, network aliases and volumes. Does not wait for health."""
        if run.state(node) == "missing":
            # Removed by a recreate that was cut short: the run's labels are on its network too.
            source = self._network_labels(run.run_id)
            if labels.RUN not in source:
                raise BackendError(f"run {run.run_id} has no network: cannot recreate {node}")
        else:
            old = run.container(node)
            source = old.labels
            _remove_container(old)
        common = {
            k: v
            for k, v in source.items()
            if k.startswith("resilience.")
            and k not in (labels.NODE, labels.SERVICE, labels.ROLE, "resilience.params", "resilience.only")
        }
        self._create_and_start(run, run.topology.node(node), common)

    def _ensure_volume(self, name: str, common: dict[str, str]) -> None:
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels={labels.RUN: common[labels.RUN]})

    @staticmethod
    def _await(run: DockerRun, node: NodeSpec, log: Log) -> None:
        seconds = run.wait_healthy(node.name)
        log(f"  {node.name:<14} healthy in {seconds:5.2f} s")

    def down(self, run_id: str, log: Log = print) -> None:
        """Remove every container, network and volume labelled with this run id."""
        selector = {"label": f"{labels.RUN}={run_id}"}
        listed = self.client.containers.list(all=True, filters=selector, ignore_removed=True)
        # The reaper goes last: should this be cut short (^C in a finally), it still removes the rest.
        watchers = [c for c in listed if c.labels.get(labels.ROLE) == reaper.ROLE]
        containers = [c for c in listed if c not in watchers]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(_remove_container, containers))
        stuck = [n.name for n in self.client.networks.list(filters=selector) if not _remove_network(n)]
        for volume in self.client.volumes.list(filters=selector):
            try:
                volume.remove(force=True)
            except docker.errors.APIError as exc:
                log(f"run {run_id}: volume {volume.name} not removed: {exc.explanation or exc}")
        for watcher in watchers:
            _remove_container(watcher)
        log(f"run {run_id}: removed {len(containers)} containers")
        if stuck:
            # Docker 20.10 can keep a stale endpoint count on a network with nothing attached (moby#17217);
            # only a daemon restart clears it. It holds no container and no traffic: say so and go on.
            log(f"run {run_id}: Docker refused to remove network {', '.join(stuck)} (stale endpoints, moby#17217)")

    def reap_orphans(self, log: Log = print) -> list[str]:
        """Remove runs whose owner process is gone and that were not kept on purpose."""
        reaped = []
        for info in self.runs():
            if info.orphaned:
                log(f"reaping run {info.run_id}: its owner {info.owner or '?'} is gone")
                self.down(info.run_id, log=lambda _m: None)
                reaped.append(info.run_id)
        self.forget_vanished_runs(log)
        return reaped

    @cached_property
    def engine_id(self) -> str:
        """The engine's own ID (`docker info`), which tells the runs of one engine from another's."""
        try:
            return str(self.client.info().get("ID") or "")
        except docker.errors.DockerException:
            return ""

    def forget_vanished_runs(self, log: Log = print) -> list[str]:
        """Forget the host-side fault registry of this engine's runs that are gone with their harness.
        Housekeeping only: nothing it meets stops the caller."""
        from resilience.faults.registry import forget_vanished_runs

        try:
            return forget_vanished_runs({r.run_id for r in self.runs()}, self.engine_id, log=log)
        except Exception as exc:  # a state dir we cannot read is no reason to refuse an `up`
            log(f"left the fault registry as it is: {type(exc).__name__}: {exc}")
            return []

    def cleanup(self, run_id: str | None = None, log: Log = print) -> list[str]:
        """Remove one run, or every run carrying our label."""
        targets = [run_id] if run_id else [r.run_id for r in self.runs()]
        for target in targets:
            self.down(target, log=log)
        return targets


def _remove_network(network: docker.models.networks.Network, attempts: int = 3) -> bool:
    """Remove a run's network, detaching whatever Docker still lists on it; False if Docker refuses."""
    for attempt in range(attempts):
        try:
            network.remove()
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            try:
                network.reload()
                for endpoint in network.attrs.get("Containers") or {}:
                    network.disconnect(endpoint, force=True)
            except docker.errors.APIError:
                pass
            time.sleep(0.5 * (attempt + 1))
    return False


def _remove_container(container: Container) -> None:
    try:
        if container.status == "paused":
            container.unpause()
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass


def docker_restart_policy(policy: RestartPolicy) -> dict[str, object]:
    """The topology's policy as Docker's HostConfig.RestartPolicy. Docker's back-off between restarts starts
    at 100 ms and doubles up to a minute; a life of 10 s or more starts it over (docs/topology.md)."""
    if policy.name is RestartName.ON_FAILURE:
        return {"Name": "on-failure", "MaximumRetryCount": policy.max_retries}
    return {"Name": policy.name.value}


def _split_volume(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    mode = "rw"
    if len(parts) == 3:
        mode = parts[2]
    return parts[0], parts[1], mode


def iter_labelled(client: docker.DockerClient, run_id: str) -> Iterator[str]:
    """Names of everything that carries this run's label (for tests asserting nothing is left)."""
    selector = {"label": f"{labels.RUN}={run_id}"}
    for container in client.containers.list(all=True, filters=selector, ignore_removed=True):
        yield f"container {container.name}"
    for network in client.networks.list(filters=selector):
        yield f"network {network.name}"
    for volume in client.volumes.list(filters=selector):
        yield f"volume {volume.name}"
