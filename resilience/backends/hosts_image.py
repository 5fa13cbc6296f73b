"""The "VM-like" host image: the offline base image plus Debian's openssh-server, supervisor and sudo, and a
`deploy` user allowed sudo without a password, as on a provisioned VM.

It is kept out of resilience/images.py on purpose: that file is part of the base image's content hash, so
touching it rebuilds the base (minutes) for everyone. The packages come from Debian's archive like the
base's (apt inside the build); each container makes its own SSH host keys when it starts (hosts_testbed.py).
"""

from __future__ import annotations

import io
import tarfile
import time

import docker
import docker.errors

from resilience import images
from resilience.backends import engine

HOST_REPO = "resilience-host"
PACKAGES = ("openssh-server", "supervisor", "sudo")
# Bump when the Dockerfile below changes.
RECIPE_VERSION = "1"
DEPLOY_USER = "deploy"


def dockerfile(base: str) -> str:
    return (
        f"FROM {base}\n"
        "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
        f"{' '.join(PACKAGES)} >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/* "
        # Host keys are made per container at its start, never baked into the image.
        "&& rm -f /etc/ssh/ssh_host_*\n"
        f"RUN useradd -m -s /bin/bash {DEPLOY_USER} "
        f"&& echo '{DEPLOY_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{DEPLOY_USER} "
        f"&& chmod 440 /etc/sudoers.d/{DEPLOY_USER} && mkdir -p /run/sshd /var/log/supervisor\n"
    )


def host_tag(base: str | None = None) -> str:
    import hashlib

    base = base or images.base_tag()
    digest = hashlib.sha256((RECIPE_VERSION + dockerfile(base)).encode()).hexdigest()[:12]
    return f"{HOST_REPO}:{digest}"


def build_host(client: docker.DockerClient | None = None, log: images.Log = print) -> images.BuildResult:
    """Build the host image on the current base (which must exist: `resilience images build`)."""
    client = client or engine.connect()
    base = images.base_tag()
    tag = host_tag(base)
    _prune_stale(client, tag, log)
    try:
        client.images.get(tag)
        return images.BuildResult(tag, built=False, seconds=0.0)
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.get(base)
    except docker.errors.ImageNotFound:
        raise images.ImageBuildError(f"{tag} is built on {base}, which does not exist: run `make images`") from None
    started = time.monotonic()
    log(f"building {tag} (openssh-server, supervisor, sudo from Debian)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile(base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    for attempt in (1, 2):
        try:
            client.images.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, tag=tag, rm=True, pull=False)
            break
        except docker.errors.BuildError as exc:
            lines = [str(chunk.get("stream", chunk.get("error", ""))).strip() for chunk in exc.build_log]
            if engine.no_space(" ".join(lines) + str(exc)):
                raise engine.disk_full(f"the build of {tag}") from None
            if attempt == 2:
                raise images.ImageBuildError("host image build failed:\n" + "\n".join(lines[-15:])) from None
            log("  the build failed (the Debian archive may have hiccupped); trying once more")
    return images.BuildResult(tag, built=True, seconds=time.monotonic() - started)


def _prune_stale(client: docker.DockerClient, keep: str, log: images.Log) -> None:
    """Older host images hold older bases' layers (a gigabyte each) alive: remove them unless in use."""
    for image in client.images.list(name=HOST_REPO):
        for stale in (t for t in image.tags if t.startswith(HOST_REPO + ":") and t != keep):
            try:
                client.images.remove(stale, noprune=False)
                log(f"  removed stale image {stale}")
            except docker.errors.APIError:
                pass  # a container still uses it


# ---------------------------------------------------------------------------------------------- stand-in host
# The VM-like host of the full stand-in bed (hosts_standin.py): the host image above plus what the node image
# adds to the base (the stand-ins, the node scripts and config, the fixtures), copied from the node image, so
# the build is offline (no apt) and takes seconds once both exist. Tagged by a hash of both tags and the recipe.
STANDIN_REPO = "resilience-standin-host"
STANDIN_RECIPE_VERSION = "1"
# The node image's PATH (images.py's base recipe); sudo's secure_path, so commands over SSH find what the
# node image's processes find, as an operator's profile would on a provisioned VM.
NODE_PATH = (
    "/opt/resilience/bin:/opt/venv/bin:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
    "/usr/bin:/sbin:/bin"
)
SUDO_ENV_FILE = "/etc/resilience/sudo.env"
STANDIN_DIR = "/opt/standin"
# runuser without its watching parent (util-linux forks one for the PAM session): `runuser -u postgres --
# postgres` then leaves the postmaster itself as the supervised process, as systemd's User= would, so a
# SIGKILL of the program's pid kills Postgres as it kills a container. Anything else goes to the real one.
_RUNUSER_SHIM = """#!/bin/sh
if [ "$1" = "-u" ] && [ "$3" = "--" ]; then
    user=$2; shift 3
    home=$(getent passwd "$user" | cut -d: -f6)
    exec env HOME="$home" USER="$user" LOGNAME="$user" setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
fi
exec /usr/sbin/runuser "$@"
"""


def standin_dockerfile(host: str, node: str) -> str:
    sudoers = "\\n".join(
        (f'Defaults secure_path="{NODE_PATH}"', f"Defaults env_file={SUDO_ENV_FILE}", f"Defaults runcwd={STANDIN_DIR}")
    )
    shim = _RUNUSER_SHIM.replace("\\", "\\\\").replace("\n", "\\n").replace("'", "'\\''")
    return (
        f"FROM {host}\n"
        f"COPY --from={node} /opt/standin /opt/standin\n"
        f"COPY --from={node} /opt/resilience /opt/resilience\n"
        f"COPY --from={node} /opt/fixtures /opt/fixtures\n"
        "ENV PYTHONPATH=/opt/standin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n"
        f"WORKDIR {STANDIN_DIR}\n"
        f"RUN printf '{sudoers}\\n' > /etc/sudoers.d/10-standin && chmod 440 /etc/sudoers.d/10-standin "
        f"&& mkdir -p /etc/resilience /run/haproxy /var/log/resilience && touch {SUDO_ENV_FILE} "
        f"&& printf '{shim}' > /usr/local/sbin/runuser && chmod 755 /usr/local/sbin/runuser "
        "&& visudo -c >/dev/null\n"
    )


def standin_host_tag(host: str | None = None, node: str | None = None) -> str:
    import hashlib

    host = host or host_tag()
    node = node or images.resolve_image(images.NODE_REPO)
    digest = hashlib.sha256((STANDIN_RECIPE_VERSION + standin_dockerfile(host, node)).encode()).hexdigest()[:12]
    return f"{STANDIN_REPO}:{digest}"


def build_standin_host(client: docker.DockerClient | None = None, log: images.Log = print) -> images.BuildResult:
    """Build the stand-in host image on the current host and node images (the node image must exist:
    `make images`; the host image is built here if missing)."""
    client = client or engine.connect()
    host = build_host(client, log).tag
    node = images.resolve_image(images.NODE_REPO)
    tag = standin_host_tag(host, node)
    try:
        client.images.get(tag)
        return images.BuildResult(tag, built=False, seconds=0.0)
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.get(node)
    except docker.errors.ImageNotFound:
        raise images.ImageBuildError(
            f"{tag} copies the stand-ins from {node}, which does not exist: run `make images`"
        ) from None
    started = time.monotonic()
    log(f"building {tag} ({host} + the stand-ins of {node})")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = standin_dockerfile(host, node).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    try:
        client.images.build(fileobj=io.BytesIO(buf.getvalue()), custom_context=True, tag=tag, rm=True, pull=False)
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).strip() for chunk in exc.build_log]
        if engine.no_space(" ".join(lines) + str(exc)):
            raise engine.disk_full(f"the build of {tag}") from None
        raise images.ImageBuildError("stand-in host image build failed:\n" + "\n".join(lines[-15:])) from None
    _prune_stale_repo(client, STANDIN_REPO, tag, log)
    return images.BuildResult(tag, built=True, seconds=time.monotonic() - started)


def _prune_stale_repo(client: docker.DockerClient, repo: str, keep: str, log: images.Log) -> None:
    for image in client.images.list(name=repo):
        for stale in (t for t in image.tags if t.startswith(repo + ":") and t != keep):
            try:
                client.images.remove(stale, noprune=False)
                log(f"  removed stale image {stale}")
            except docker.errors.APIError:
                pass
