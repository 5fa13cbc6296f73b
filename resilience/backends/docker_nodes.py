"""The Docker backend's node operations: `DockerRun`, the Backend protocol (base.py) over one run's containers.

Every container it acts on is looked up by name and must carry the run's label (labels.RUN): it never
acts on anything else. Bringing runs up and down, and reaping them, is docker.py's.
"""

from __future__ import annotations

import datetime
import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from resilience.backends import labels
from resilience.backends.base import BackendError, NetfilterError, NodeStatus
from resilience.topology import HealthKind, Service, Topology
from resilience.waits import (
    CommandSucceeds,
    HttpOk,
    LogLine,
    PortOpen,
    WaitStrategy,
    wait_until_healthy,
)

IPTABLES_TIMEOUT = 20


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
    """A running (or partly running) topology as containers: implements base.Backend. Besides the protocol
    it offers what only Docker has (the container, the engine's client, the host pid), for the Docker
    lifecycle (docker.py) and the Docker-only faults (rolling-upgrade)."""

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
        """Its process runs, or its restart policy is about to run it again (Docker's "restarting": the
        back-off between a crash and the next start), so a wait for its health goes on."""
        return self.state(node) in {"running", "paused", "restarting"}

    def restart_policy(self, node: str) -> str:
        """The policy Docker applies to the node, in the topology's words (`always`, `on-failure:3`, `no`)."""
        container = self.container(node)
        policy = container.attrs["HostConfig"].get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        retries = int(policy.get("MaximumRetryCount") or 0)
        return f"{name}:{retries}" if name == "on-failure" and retries else name

    def restart_count(self, node: str) -> int:
        """How often its restart policy restarted it since it was last started by hand (Docker's RestartCount)."""
        container = self.container(node)
        return int(container.attrs.get("RestartCount") or 0)

    def started_at(self, node: str) -> str:
        """Docker's State.StartedAt (each lookup inspects the container anew)."""
        return str(self.container(node).attrs["State"]["StartedAt"])

    def exited_at(self, node: str) -> float | None:
        """Docker's State.FinishedAt (nanoseconds, read to the microsecond), while the container is not running."""
        state = self.container(node).attrs["State"]
        if state.get("Running"):
            return None
        finished = str(state.get("FinishedAt") or "")
        try:
            moment = datetime.datetime.fromisoformat(finished)
        except ValueError:
            return None
        return moment.timestamp() if moment.year > 1 else None  # never exited: 0001-01-01T00:00:00Z

    def image(self, node: str) -> str:
        """The id of the image the node's container was made from."""
        return str(self.container(node).image.id)

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
        put_files(self.container(node), {path: content}, mode)

    # -- node operations (the faults act through these) -----------------------------------------------
    def signal(self, node: str, signal: str = "SIGKILL") -> None:
        self.container(node).kill(signal=signal)

    def kill(self, node: str) -> None:
        """SIGKILL through Docker's API. Docker takes that for an operator's act: the node stays down whatever
        its restart policy, until it is started again (daemon/kill.go cancels the restart manager)."""
        self.signal(node, "SIGKILL")

    def crash(self, node: str) -> None:
        """SIGKILL the node's init from the host, behind Docker's back: Docker sees its process die on its own,
        as in a crash, and its restart policy acts as a supervisor's would. Needs the engine's host and root."""
        container = self.container(node)
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        if pid <= 0:
            raise BackendError(f"{node} is not running, it has no process to crash")
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            cgroups = ""
        # A pid of another host's engine would name some process of ours: only one in the node's cgroup is it.
        if container.id not in cgroups:
            raise BackendError(
                f"{node}: its process {pid} is not visible from here (is the Docker engine on another host?); "
                f"a crash is a SIGKILL sent from the engine's host"
            )
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it died meanwhile: crashed all the same
        except PermissionError:
            raise BackendError(f"{node}: no permission to SIGKILL its process {pid}; a crash needs root") from None

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

    def iptables(self, node: str, args: Sequence[str]) -> str:
        """From the host, where we are root: the nodes run without NET_ADMIN, and the host's iptables edits
        the node's own tables, which live and die with its network namespace (`nsenter -t PID -n`)."""
        _require_host_access()
        pid = self.host_pid(node)
        command = ["nsenter", "-t", str(pid), "-n", "iptables", "-w", "5", *args]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=IPTABLES_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise NetfilterError(
                f"{node}: `iptables {' '.join(args)}` did not finish within {IPTABLES_TIMEOUT} s"
            ) from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            if not os.path.exists(f"/proc/{pid}"):
                detail += f" (process {pid} is not visible from here: is the Docker engine on another host?)"
            raise NetfilterError(f"{node}: `iptables {' '.join(args)}` failed: {detail}")
        return result.stdout

    def disconnect(self, node: str) -> None:
        self.client.networks.get(self.network_name).disconnect(self.container(node), force=True)

    def connect(self, node: str) -> None:
        spec = self.topology.node(node)
        network = self.client.networks.get(self.network_name)
        network.reload()
        attached = {c.name for c in network.containers}
        if self.container_name(node) not in attached:
            network.connect(self.container(node), aliases=[node, spec.service])

    def connected_nodes(self) -> set[str]:
        network = self.client.networks.get(self.network_name)
        network.reload()
        prefix = self.container_name("")
        return {c.name.removeprefix(prefix) for c in network.containers if c.name.startswith(prefix)}

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


def put_files(container: Container, files: dict[str, str | bytes], mode: int = 0o644) -> None:
    """Copy files into a container (created or running) in one archive."""
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


def _require_host_access() -> None:
    if shutil.which("nsenter") is None or shutil.which("iptables") is None:
        raise NetfilterError("network faults need `nsenter` and `iptables` on the Docker host (util-linux, iptables)")
    if os.geteuid() != 0:
        raise NetfilterError(
            f"network faults enter the nodes' network namespaces from the host, which needs root; "
            f"this process runs as uid {os.geteuid()}"
        )
