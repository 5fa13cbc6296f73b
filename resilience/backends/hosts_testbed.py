"""A "VM-like" test bed for the hosts backend: containers of the host image (hosts_image.py) that each run
sshd and supervisord, with a key pair made for the test bed, on a network of their own where each dials
the others by name, reached from the harness only through ports published on 127.0.0.1. Once a host is
up the harness talks to it over SSH alone; Docker only creates and removes it.

The containers carry the label `resilience.testbed=<id>` and the owner label (labels.OWNER), so that a
test bed whose process died is removed by the next one (`reap_orphans`), never one of a live process.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container

from resilience.backends import labels
from resilience.backends.docker_nodes import put_files
from resilience.backends.hosts_image import DEPLOY_USER, build_host

TESTBED = "resilience.testbed"
SSH_PORT = 22
INIT = "/usr/local/sbin/testbed-init"
# The container's init: host keys of its own, the test bed's public key for `deploy`, supervisord (which
# daemonizes), then sshd in the foreground as the container's main process.
_INIT_SCRIPT = f"""#!/bin/sh
set -e
ssh-keygen -A >/dev/null
install -d -m 700 -o {DEPLOY_USER} -g {DEPLOY_USER} /home/{DEPLOY_USER}/.ssh
printf '%s\\n' "$AUTHORIZED_KEY" > /home/{DEPLOY_USER}/.ssh/authorized_keys
chown {DEPLOY_USER}:{DEPLOY_USER} /home/{DEPLOY_USER}/.ssh/authorized_keys
chmod 600 /home/{DEPLOY_USER}/.ssh/authorized_keys
supervisord -c /etc/supervisor/supervisord.conf
exec /usr/sbin/sshd -D -e
"""


def generate_keypair(directory: Path) -> tuple[Path, str]:
    """An Ed25519 key pair for this test bed: the private key's file (0600) and the public key's line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "id_ed25519"
    path.write_bytes(private)
    path.chmod(0o600)
    return path, public.decode() + " resilience-testbed"


def supervisor_program(
    name: str,
    command: str,
    log_file: str,
    autorestart: str = "true",
    autostart: bool = True,
    startretries: int = 3,
    stopwaitsecs: int = 5,
) -> str:
    """A supervisor program section: its own process group, stderr into its log, stopped as a group."""
    return (
        f"[program:{name}]\n"
        f"command={command.replace('%', '%%')}\n"
        f"autostart={'true' if autostart else 'false'}\n"
        f"autorestart={autorestart}\nstartsecs=1\nstartretries={startretries}\n"
        f"redirect_stderr=true\nstdout_logfile={log_file}\n"
        f"stopasgroup=true\nkillasgroup=true\nstopwaitsecs={stopwaitsecs}\n"
    )


@dataclass
class BedHost:
    name: str
    container: Container
    ssh_port: int
    ports: dict[int, int] = field(default_factory=dict)  # service port -> the port published on 127.0.0.1


class SshTestBed:
    """Host containers for one test bed; `hosts_yaml` describes them as a hosts topology."""

    def __init__(self, client: docker.DockerClient, key_dir: Path) -> None:
        self.client = client
        self.id = labels.new_run_id()
        self.identity_file, self.public_key = generate_keypair(key_dir)
        self.hosts: dict[str, BedHost] = {}
        self.image = build_host(client).tag
        self.labels = {TESTBED: self.id, labels.OWNER: labels.owner_label(), labels.CREATED: str(int(time.time()))}
        # The hosts' own network: each host dials another by its name (peer_address), as VMs on a LAN.
        self.network = f"rs-testbed-{self.id}"
        client.networks.create(self.network, driver="bridge", labels=self.labels)

    def add_host(
        self,
        name: str,
        programs: dict[str, str],
        ports: tuple[int, ...] = (),
        *,
        image: str | None = None,
        aliases: tuple[str, ...] = (),
        files: dict[str, str | bytes] | None = None,
        executables: dict[str, str | bytes] | None = None,
    ) -> BedHost:
        """Create and start one host running `programs` (supervisor sections, by file name) under supervisor.

        `image` replaces the bed's host image (one built on it), `aliases` are further names the other hosts
        dial it by (the names of the nodes it holds), `files` and `executables` are written before it starts."""
        container = self.client.containers.create(
            image or self.image,
            command=[INIT],
            name=f"rs-testbed-{self.id}-{name}",
            hostname=name,
            labels=self.labels,
            environment={"AUTHORIZED_KEY": self.public_key},
            ports={f"{p}/tcp": ("127.0.0.1", None) for p in (SSH_PORT, *ports)},
            cap_add=["NET_ADMIN"],  # iptables in the host's own namespace, as root on a VM may
            init=True,
            network=self.network,
            networking_config={self.network: self.client.api.create_endpoint_config(aliases=[name, *aliases])},
            detach=True,
        )
        configs: dict[str, str | bytes] = {f"/etc/supervisor/conf.d/{n}.conf": text for n, text in programs.items()}
        put_files(container, {**configs, **(files or {})})
        put_files(container, {INIT: _INIT_SCRIPT, **(executables or {})}, mode=0o755)
        container.start()
        container.reload()
        published = container.attrs["NetworkSettings"]["Ports"]
        mapped = {p: int(published[f"{p}/tcp"][0]["HostPort"]) for p in (SSH_PORT, *ports)}
        host = BedHost(name, container, mapped.pop(SSH_PORT), mapped)
        self.hosts[name] = host
        return host

    def wait_for_ssh(self, host: BedHost, timeout: float = 60.0) -> None:
        """Until sshd answers with its banner (docker-proxy accepts before sshd listens)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            host.container.reload()
            if host.container.status != "running":
                logs = host.container.logs(tail=10).decode(errors="replace")
                raise RuntimeError(f"test host {host.name} exited: {logs}")
            try:
                with socket.create_connection(("127.0.0.1", host.ssh_port), timeout=2) as conn:
                    conn.settimeout(5)
                    if conn.recv(64).startswith(b"SSH-"):
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise RuntimeError(f"sshd of test host {host.name} did not answer within {timeout:.0f} s: {last}")

    def hosts_yaml(self, services: str, allow_faults: bool = True, name: str = "testbed") -> str:
        """A hosts topology of the test bed's hosts, with `services` (YAML, indented by two) under services."""
        lines = [
            "version: 1",
            "kind: hosts",
            f"name: {name}",
            f"allow_faults: {'true' if allow_faults else 'false'}",
            f"ssh: {{user: {DEPLOY_USER}, identity_file: {shlex.quote(str(self.identity_file))}, sudo: true}}",
            "hosts:",
        ]
        for host in self.hosts.values():
            ports = ", ".join(f"{p}: {h}" for p, h in host.ports.items())
            lines.append(
                f"  {host.name}: {{address: 127.0.0.1, peer_address: {host.name}, "
                f"ports: {{{ports}}}, ssh: {{port: {host.ssh_port}}}}}"
            )
        lines.append("services:")
        return "\n".join(lines) + "\n" + services

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(docker.errors.NotFound):
                host.container.remove(force=True)
        self.hosts.clear()
        with contextlib.suppress(docker.errors.NotFound):
            self.client.networks.get(self.network).remove()


def reap_orphans(client: docker.DockerClient) -> int:
    """Remove test bed hosts (and their networks) whose owning process is gone; how many hosts were removed."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": TESTBED}):
        if not labels.owner_alive(container.labels.get(labels.OWNER, "")):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
                removed += 1
    for network in client.networks.list(filters={"label": TESTBED}):
        if not labels.owner_alive((network.attrs.get("Labels") or {}).get(labels.OWNER, "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
    return removed
