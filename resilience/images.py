"""Offline images: built from Debian packages and PyPI wheels, because no registry can be reached.

Two images, each tagged by a content hash of what went into it, so a second build is a no-op:
- `resilience-base:<hash>`: a debootstrapped bookworm with the infrastructure programs (PostgreSQL 15,
  Redis + Sentinel, HAProxy), a Python venv with the stand-ins' wheels, and our Toxiproxy-API server.
- `resilience-node:<hash>`: the base plus the stand-in code, node entrypoints and fixtures. It changes
  whenever that code changes, and builds in seconds on top of the cached base.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from resilience.backends import engine

ROOT = Path(__file__).resolve().parent.parent
RECIPE_DIR = ROOT / "harness" / "images"
TOXIPROXY_DIR = ROOT / "harness" / "toxiproxy"
NODE_SOURCES = (ROOT / "harness" / "standin", ROOT / "harness" / "config", ROOT / "fixtures")
CACHE_DIR = Path(os.environ.get("RESILIENCE_IMAGE_CACHE", "/var/tmp/resilience-images"))
SUITE = "bookworm"
MIRROR = os.environ.get("RESILIENCE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_REPO = "resilience-base"
NODE_REPO = "resilience-node"
# Bump when the build steps below change in a way the recipe files do not show.
RECIPE_VERSION = "3"

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """A build step failed; the message names the step and the tail of its output."""


@dataclass(frozen=True)
class BuildResult:
    tag: str
    built: bool  # False when the tag already existed
    seconds: float


def _files_under(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and "target" not in p.relative_to(path).parts[:1]
            )
    return files


def _digest(files: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def base_tag() -> str:
    recipe = [RECIPE_DIR / "packages.txt", RECIPE_DIR / "requirements.txt", Path(__file__)]
    toxiproxy = _files_under([TOXIPROXY_DIR / "Cargo.toml", TOXIPROXY_DIR / "Cargo.lock", TOXIPROXY_DIR / "src"])
    return f"{BASE_REPO}:{_digest([*recipe, *toxiproxy], RECIPE_VERSION + SUITE)}"


def node_tag(base: str | None = None) -> str:
    return f"{NODE_REPO}:{_digest(_files_under(NODE_SOURCES), base or base_tag())}"


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _run(step: str, cmd: list[str], log: Log, **kwargs: object) -> str:
    log(f"  {step}: {' '.join(cmd[:6])}{' …' if len(cmd) > 6 else ''}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        if engine.no_space(proc.stdout + proc.stderr):
            raise engine.disk_full(f"image build step '{step}' (under {CACHE_DIR})")
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ImageBuildError(f"image build step '{step}' failed (exit {proc.returncode}):\n{tail}")
    return str(proc.stdout)


def _image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def build_toxiproxy(log: Log) -> Path:
    """Compile our Toxiproxy-API server (harness/toxiproxy) with cargo; returns the binary."""
    if not (TOXIPROXY_DIR / "Cargo.toml").exists():
        raise ImageBuildError(f"{TOXIPROXY_DIR}/Cargo.toml is missing: the Toxiproxy-API server cannot be built")
    _run(
        "cargo build toxiproxy-server",
        ["cargo", "build", "--release", "--locked", "--manifest-path", str(TOXIPROXY_DIR / "Cargo.toml")],
        log,
    )
    binary = TOXIPROXY_DIR / "target" / "release" / "toxiproxy-server"
    if not binary.exists():
        raise ImageBuildError(f"cargo succeeded but {binary} does not exist")
    return binary


def _download_wheels(dest: Path, log: Log) -> list[str]:
    requirements = _lines(RECIPE_DIR / "requirements.txt")
    # pip cannot evaluate python_full_version markers for another interpreter (field notes): the image's
    # python is 3.11.2, so async-timeout is listed explicitly in requirements.txt.
    _run(
        "pip download wheels",
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            str(dest),
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "any",
            *requirements,
        ],
        log,
    )
    return requirements


def _debootstrap(rootfs: Path, log: Log) -> None:
    packages = _lines(RECIPE_DIR / "packages.txt")
    _run(
        "debootstrap",
        ["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, str(rootfs), MIRROR],
        log,
    )
    shutil.copy("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    (rootfs / "usr" / "sbin" / "policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    (rootfs / "usr" / "sbin" / "policy-rc.d").chmod(0o755)
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], check=True)
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        _run("apt-get update", ["chroot", str(rootfs), "apt-get", "update", "-qq"], log, env=env)
        _run(
            "apt-get install",
            ["chroot", str(rootfs), "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            log,
            env=env,
        )
        _run("apt-get clean", ["chroot", str(rootfs), "apt-get", "clean"], log, env=env)
    finally:
        subprocess.run(["umount", "-l", str(rootfs / "proc")], check=False)
    (rootfs / "usr" / "sbin" / "policy-rc.d").unlink()
    shutil.rmtree(rootfs / "var" / "lib" / "apt" / "lists", ignore_errors=True)


def _install_python(rootfs: Path, log: Log) -> None:
    wheels = rootfs / "tmp" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    requirements = _download_wheels(wheels, log)
    _run("venv", ["chroot", str(rootfs), "python3", "-m", "venv", "/opt/venv"], log)
    _run(
        "pip install offline",
        [
            "chroot",
            str(rootfs),
            "/opt/venv/bin/pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            "/tmp/wheels",
            *requirements,
        ],
        log,
    )
    shutil.rmtree(wheels)


def build_base(client: docker.DockerClient, log: Log, force: bool = False) -> BuildResult:
    tag = base_tag()
    if not force and _image_exists(client, tag):
        return BuildResult(tag, built=False, seconds=0.0)
    started = time.monotonic()
    log(f"building {tag} from Debian {SUITE} packages (about a minute or two)")
    toxiproxy = build_toxiproxy(log)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(rootfs, log)
        _install_python(rootfs, log)
        shutil.copy(toxiproxy, rootfs / "usr" / "local" / "bin" / "toxiproxy-server")
        changes = [
            "ENV PATH=/opt/resilience/bin:/opt/venv/bin:/usr/lib/postgresql/15/bin:"
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
        ]
        cmd = ["docker", "import", *[arg for c in changes for arg in ("--change", c)], "-", tag]
        log(f"  docker import {tag}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            if engine.no_space(imported.stderr):
                raise engine.disk_full(f"docker import {tag}")
            raise ImageBuildError(f"docker import failed: {imported.stderr.strip()}")
    return BuildResult(tag, built=True, seconds=time.monotonic() - started)


def _node_context(base: str) -> bytes:
    """A tar build context: the Dockerfile plus the stand-ins, node config and fixtures."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dockerfile = (
            f"FROM {base}\n"
            "COPY standin /opt/standin\n"
            "COPY config /opt/resilience\n"
            "COPY fixtures /opt/fixtures\n"
            "ENV PYTHONPATH=/opt/standin PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1\n"
            "WORKDIR /opt/standin\n"
        ).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for src, name in zip(NODE_SOURCES, ("standin", "config", "fixtures"), strict=True):
            directory = tarfile.TarInfo(name)
            directory.type = tarfile.DIRTYPE
            directory.mode = 0o755
            tar.addfile(directory)
            for f in _files_under([src]):
                tar.add(f, arcname=f"{name}/{f.relative_to(src)}")
    return buf.getvalue()


def build_node(client: docker.DockerClient, base: str, log: Log, force: bool = False) -> BuildResult:
    tag = node_tag(base)
    if not force and _image_exists(client, tag):
        return BuildResult(tag, built=False, seconds=0.0)
    started = time.monotonic()
    log(f"building {tag}")
    try:
        client.images.build(fileobj=io.BytesIO(_node_context(base)), custom_context=True, tag=tag, rm=True, pull=False)
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream", chunk.get("error", ""))).strip() for chunk in exc.build_log]
        if engine.no_space(" ".join(lines) + str(exc)):
            raise engine.disk_full(f"the build of {tag}") from None
        raise ImageBuildError("node image build failed:\n" + "\n".join(lines[-15:])) from None
    return BuildResult(tag, built=True, seconds=time.monotonic() - started)


def build_all(log: Log = print, force: bool = False) -> list[BuildResult]:
    client = engine.connect()
    base = build_base(client, log, force)
    node = build_node(client, base.tag, log, force)
    prune_stale(client, keep={base.tag, node.tag}, log=log)
    return [base, node]


def prune_stale(client: docker.DockerClient, keep: set[str], log: Log) -> None:
    """Remove our own older image tags (each is ~1 GB); images a container still uses are left alone."""
    for repo in (BASE_REPO, NODE_REPO):
        for image in client.images.list(name=repo):
            stale = [t for t in image.tags if t.startswith(repo + ":") and t not in keep]
            if stale and not (set(image.tags) & keep):
                for tag in stale:
                    try:
                        client.images.remove(tag, noprune=False)
                        log(f"  removed stale image {tag}")
                    except docker.errors.APIError:
                        pass  # in use by a container of a live run


def resolve_image(name: str) -> str:
    """Map the topology's symbolic offline image names to the current content-hashed tags."""
    if name == NODE_REPO:
        # A pinned tag lets a long debugging session keep one image while the stand-in code changes.
        return os.environ.get("RESILIENCE_NODE_IMAGE") or node_tag()
    if name == BASE_REPO:
        return base_tag()
    return name
