"""The Docker backend: realises a topology as labelled containers on one bridge network per run.

Everything it creates carries `resilience.run=<run id>`; it never lists, changes or removes anything
without that label. Ports are published on 127.0.0.1 only, so the host never dials a bridge address.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import docker.models.networks
from docker.models.containers import Container

from resilience import images
from resilience.backends import labels
from resilience.backends.render import files_for
from resilience.topology import HealthKind, NodeSpec, Service, Topology
from resilience.waits import (
    CommandSucceeds,
    HttpOk,
    LogLine,
    PortOpen,
    WaitStrategy,
    wait_until_healthy,
)

Log = Callable[[str], None]


class BackendError(RuntimeError):
    """Something the backend was asked to do could not be done; the message says what and on which node."""


@dataclass(frozen=True)
class NodeStatus:
    node: str
    service: str
    role: str
    state: str  # docker's: running, paused, exited, created, missing
    healthy: bool
    reason: str
    ports: dict[int, int]  # container port -> published host port on 127.0.0.1


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    owner: str
    keep: bool
    topology: str
    containers: int
    created: float

    @property
    def orphaned(self) -> bool:
        # A run without an owner label was not made by this backend: only `resilience cleanup` removes it.
        return bool(self.owner) and not self.keep and not labels.owner_alive(self.owner)


def strategies_for(service: Service) -> list[WaitStrategy]:
    result: list[WaitStrategy] = []
    for check in service.health:
        if check.kind is HealthKind.PORT:
            result.append(PortOpen(int(check.port or 0)))
        elif check.kind is HealthKind.HTTP:
            result.append(HttpOk(int(check.port or 0), check.path or "/", check.status or 200, check.contains))
        elif check.kind is HealthKind.COMMAND:
            result.append(CommandSucceeds(tuple(check.command or ())))
        elif check.kind is HealthKind.LOG:
            result.append(LogLine(check.pattern or ""))
    return result


class DockerRun:
    """A running (or partly running) topology: the handle faults, probes and the workload act through."""

    def __init__(self, client: docker.DockerClient, run_id: str, topology: Topology) -> None:
        self.client = client
        self.run_id = run_id
        self.topology = topology
        self.original_topology = topology  # as brought up, before any reconfigure()
        self.network_name = f"rs-{run_id}"

    # -- lookup -------------------------------------------------------------------------------------
    def container_name(self, node: str) -> str:
        return f"rs-{self.run_id}-{node}"

    def container(self, node: str) -> Container:
        try:
            container = self.client.containers.get(self.container_name(node))
        except docker.errors.NotFound:
            raise BackendError(f"node {node} of run {self.run_id} does not exist") from None
        if container.labels.get(labels.RUN) != self.run_id:
            raise BackendError(f"container {container.name} is not labelled with run {self.run_id}")
        return container

    def node_names(self) -> list[str]:
        return [n.name for n in self.topology.nodes()]

    def nodes_of(self, service_or_role: str) -> list[str]:
        return [
            n.name
            for n in self.topology.nodes()
            if n.service == service_or_role or self.topology.services[n.service].role.value == service_or_role
        ]

    # -- addresses ----------------------------------------------------------------------------------
    def published(self, node: str, port: int) -> tuple[str, int] | None:
        container = self.container(node)
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
        if not bindings:
            container.reload()
            bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp")
        if not bindings:
            return None
        return ("127.0.0.1", int(bindings[0]["HostPort"]))

    def endpoint(self, node: str, port: int) -> tuple[str, int]:
        address = self.published(node, port)
        if address is None:
            raise BackendError(f"port {port} of {node} is not published (add it to the service's ports)")
        return address

    def url(self, node: str, port: int, path: str = "") -> str:
        host, host_port = self.endpoint(node, port)
        return f"http://{host}:{host_port}{path}"

    def address(self, node: str) -> str:
        """The node's address on the run's network: for use inside the network only, never dialled from the host."""
        container = self.container(node)
        return str(container.attrs["NetworkSettings"]["Networks"][self.network_name]["IPAddress"])

    def host_pid(self, node: str) -> int:
        """The node's main process as the host sees it, for `nsenter -t PID -n` into its network namespace."""
        container = self.container(node)
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        if pid <= 0:
            raise BackendError(f"{node} is not running, it has no process")
        return pid

    # -- state --------------------------------------------------------------------------------------
    def state(self, node: str) -> str:
        try:
            container = self.container(node)
        except BackendError:
            return "missing"
        container.reload()
        return str(container.status)

    def is_running(self, node: str) -> bool:
        return self.state(node) in {"running", "paused"}

    def exec(self, node: str, cmd: Sequence[str], user: str | None = None) -> tuple[int, str]:
        container = self.container(node)
        try:
            result = container.exec_run(list(cmd), user=user or "", demux=False)
        except docker.errors.APIError as exc:
            return 126, str(exc.explanation or exc)
        output = result.output.decode(errors="replace") if result.output else ""
        return int(result.exit_code if result.exit_code is not None else 126), output

    def exec_ok(self, node: str, cmd: Sequence[str], user: str | None = None) -> str:
        rc, out = self.exec(node, cmd, user)
        if rc != 0:
            raise BackendError(f"`{' '.join(cmd)}` on {node} exited {rc}: {out.strip()[-400:]}")
        return out

    def logs(self, node: str, tail: int | None = None, since: float | None = None, timestamps: bool = False) -> str:
        try:
            container = self.container(node)
        except BackendError:
            return ""
        kwargs: dict[str, object] = {"timestamps": timestamps}
        if tail is not None:
            kwargs["tail"] = tail
        if since is not None:
            kwargs["since"] = int(since)
        return container.logs(**kwargs).decode(errors="replace")

    def put_file(self, node: str, path: str, content: str | bytes, mode: int = 0o644) -> None:
        self._put_files(self.container(node), {path: content}, mode)

    @staticmethod
    def _put_files(container: Container, files: dict[str, str | bytes], mode: int = 0o644) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size = len(data)
                info.mode = mode
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        if not container.put_archive("/", buf.getvalue()):
            raise BackendError(f"could not copy {', '.join(files)} into {container.name}")

    # -- node operations (the faults act through these) -----------------------------------------------
    def signal(self, node: str, signal: str = "SIGKILL") -> None:
        self.container(node).kill(signal=signal)

    def kill(self, node: str) -> None:
        self.signal(node, "SIGKILL")

    def stop(self, node: str, timeout: int = 10) -> None:
        self.container(node).stop(timeout=timeout)

    def start(self, node: str) -> None:
        self.container(node).start()

    def restart(self, node: str, timeout: int = 10) -> None:
        self.container(node).restart(timeout=timeout)

    def pause(self, node: str) -> None:
        self.container(node).pause()

    def unpause(self, node: str) -> None:
        container = self.container(node)
        container.reload()
        if container.status == "paused":
            container.unpause()

    def disconnect(self, node: str) -> None:
        self.client.networks.get(self.network_name).disconnect(self.container(node), force=True)

    def connect(self, node: str) -> None:
        spec = self.topology.node(node)
        network = self.client.networks.get(self.network_name)
        network.reload()
        attached = {c.name for c in network.containers}
        if self.container_name(node) not in attached:
            network.connect(self.container(node), aliases=[node, spec.service])

    def wait_healthy(self, node: str, timeout: float | None = None) -> float:
        service = self.topology.services[self.topology.node(node).service]
        return wait_until_healthy(self, node, strategies_for(service), timeout or service.health_timeout)

    def status(self) -> list[NodeStatus]:
        rows: list[NodeStatus] = []
        for spec in self.topology.nodes():
            service = self.topology.services[spec.service]
            state = self.state(spec.name)
            healthy, reason = False, state
            ports: dict[int, int] = {}
            if state == "running":
                failing = next(
                    (p for p in (s.probe(self, spec.name) for s in strategies_for(service)) if not p.ok), None
                )
                healthy, reason = failing is None, "" if failing is None else failing.reason
                for port, _proto in service.ports:
                    address = self.published(spec.name, port)
                    if address:
                        ports[port] = address[1]
            rows.append(NodeStatus(spec.name, spec.service, service.role.value, state, healthy, reason, ports))
        return rows


class DockerBackend:
    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or docker.from_env()

    # -- discovery ------------------------------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        by_run: dict[str, list[Container]] = {}
        for container in self.client.containers.list(all=True, filters={"label": labels.RUN}, ignore_removed=True):
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
                )
            )
        return sorted(infos, key=lambda r: r.created)

    def _network_labels(self, run_id: str) -> dict[str, str]:
        for network in self.client.networks.list(filters={"label": f"{labels.RUN}={run_id}"}):
            return dict(network.attrs.get("Labels") or {})
        return {}

    def attach(self, run_id: str | None = None, topology: Topology | None = None) -> DockerRun:
        """The handle of an existing run (the newest when no id is given)."""
        runs = self.runs()
        if not runs:
            raise BackendError("no run is up (resilience up TOPOLOGY starts one)")
        info = next((r for r in runs if r.run_id == run_id), None) if run_id else runs[-1]
        if info is None:
            raise BackendError(f"no run {run_id}; runs: {', '.join(r.run_id for r in runs)}")
        if topology is None:
            from resilience.topology import load_topology

            meta = self._network_labels(info.run_id)
            path = meta.get(labels.TOPOLOGY) or info.topology
            params = json.loads(meta.get("resilience.params", "{}"))
            only = [s for s in meta.get("resilience.only", "").split(",") if s]
            topology = load_topology(Path(path), params)
            if only:
                topology = topology.select(only)
        return DockerRun(self.client, info.run_id, topology)

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
        run = DockerRun(self.client, run_id, topology)
        common = {
            labels.RUN: run_id,
            labels.OWNER: labels.owner_label(),
            labels.KEEP: "true" if keep else "false",
            labels.TOPOLOGY: str(topology.path),
            labels.CREATED: f"{time.time():.3f}",
        }
        self.client.networks.create(
            run.network_name,
            driver="bridge",
            labels={**common, "resilience.params": json.dumps(params or {}), "resilience.only": ",".join(only)},
        )
        try:
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
            raise BackendError(f"docker refused: {exc.explanation or exc}") from None
        except BaseException:
            log(f"bring-up of run {run_id} failed; removing what it created")
            self.down(run_id, log=lambda _m: None)
            raise
        return run

    def _create_and_start(self, run: DockerRun, node: NodeSpec, common: dict[str, str]) -> None:
        topology = run.topology
        service = topology.services[node.service]
        peers = [n.name for n in topology.nodes() if n.service == node.service]
        env = {
            **{k: str(v) for k, v in service.env.items()},
            "RESILIENCE_RUN": run.run_id,
            "RESILIENCE_NODE": node.name,
            "RESILIENCE_SERVICE": node.service,
            "RESILIENCE_INDEX": str(node.index),
            "RESILIENCE_PEERS": ",".join(peers),
        }
        if service.switches:
            env["STANDIN_SWITCHES"] = json.dumps(service.switches)
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
            DockerRun._put_files(container, dict(files))
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
        containers = self.client.containers.list(all=True, filters=selector, ignore_removed=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(_remove_container, containers))
        stuck = [n.name for n in self.client.networks.list(filters=selector) if not _remove_network(n)]
        for volume in self.client.volumes.list(filters=selector):
            try:
                volume.remove(force=True)
            except docker.errors.APIError as exc:
                log(f"run {run_id}: volume {volume.name} not removed: {exc.explanation or exc}")
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
        return reaped

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
                for endpoint in (network.attrs.get("Containers") or {}):
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
