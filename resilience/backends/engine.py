"""The host's side of the backend in plain words: reaching the Docker engine, and the host tools and
resources a command needs (nsenter/iptables, disk space, free ports).

Each problem becomes one line saying what is missing and how to fix it (`explain`), so that the CLI can
print it and exit with ExitCode.BAD_INPUT instead of a library's traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import traceback

import docker
import docker.errors

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
# The program a FileNotFoundError names -> the Debian package that provides it.
HOST_TOOLS = {
    "nsenter": "util-linux",
    "iptables": "iptables",
    "docker": "docker.io (or docker-ce-cli)",
    "debootstrap": "debootstrap",
    "cargo": "cargo",
    "tar": "tar",
}
PORT_TAKEN = ("port is already allocated", "address already in use")
NO_SPACE = "no space left on device"


class EnvironmentProblem(RuntimeError):
    """The host cannot do what was asked (no engine, a missing tool, a full disk, a taken port).

    The message is one line: what is missing and how to fix it."""


class EngineUnavailable(EnvironmentProblem):
    """The Docker engine cannot be reached."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


def connect() -> docker.DockerClient:
    """A client of the engine DOCKER_HOST names (the local socket by default), or EngineUnavailable."""
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(_unreachable(exc)) from None


def require_network_tools() -> None:
    """Network faults enter nodes' namespaces from the host: `nsenter` and `iptables`, as root."""
    for tool in ("nsenter", "iptables"):
        if shutil.which(tool) is None:
            raise EnvironmentProblem(
                f"`{tool}` is not installed on this host; network faults need it: "
                f"apt-get install {HOST_TOOLS[tool]} (or put it on PATH)"
            )
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            f"network faults enter the nodes' network namespaces from the host, which needs root; "
            f"this process runs as uid {os.geteuid()}: run it with sudo"
        )


def no_space(text: str) -> bool:
    return NO_SPACE in text.lower()


def disk_full(during: str) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"no space left on device during {during}: free disk space (df -h; docker system df; "
        f"docker builder prune), then retry"
    )


def explain(exc: BaseException) -> str | None:
    """One line for an environment problem anywhere in `exc`'s chain; None when it is something else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        line = _explain_one(current, exc)
        if line:
            return line
        current = current.__cause__ or current.__context__
    return None


def _explain_one(exc: BaseException, outermost: BaseException) -> str | None:
    if isinstance(exc, EnvironmentProblem):
        return str(exc)
    text = str(exc)
    if isinstance(exc, docker.errors.APIError):
        detail = str(exc.explanation or exc)
        if any(p in detail.lower() for p in PORT_TAKEN):
            return (
                f"a port is already taken: {detail.strip()}; stop what listens there (ss -ltnp) "
                f"or take down the run that holds it (resilience status --run ID)"
            )
        if no_space(detail):
            return str(disk_full("a Docker operation"))
        return None
    if isinstance(exc, docker.errors.BuildError):
        log = " ".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)
        return str(disk_full("an image build")) if no_space(log + text) else None
    if isinstance(exc, docker.errors.DockerException) and "Error while fetching server API version" in text:
        return _unreachable(exc)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            where = f" writing {exc.filename}" if exc.filename else ""
            return str(disk_full(f"a write{where}"))
        if isinstance(exc, FileNotFoundError) and exc.filename in HOST_TOOLS:
            return f"`{exc.filename}` is not installed on this host: apt-get install {HOST_TOOLS[exc.filename]}"
        if isinstance(exc, ConnectionError) and _raised_by_docker(outermost):
            return _unreachable(exc)
    if type(exc).__module__.startswith(("requests", "urllib3")) and _raised_by_docker(outermost):
        # The engine went away while a command was talking to it.
        return _unreachable(exc)
    return None


def _raised_by_docker(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return any(f"{os.sep}docker{os.sep}" in frame.filename for frame in frames)


def _unreachable(exc: BaseException) -> str:
    text = repr(exc) + str(exc)
    address = engine_address()
    if "Permission denied" in text or "PermissionError" in text:
        return (
            f"no permission to use the Docker engine at {address}: run as root or add your user to the "
            f"docker group (then log in again)"
        )
    if "FileNotFoundError" in text or "No such file" in text:
        reason = "its socket does not exist"
    elif "refused" in text.lower():
        reason = "connection refused"
    elif "timed out" in text.lower() or "Timeout" in text:
        reason = "timed out"
    else:
        reason = text.splitlines()[0][:160] if text else type(exc).__name__
    return (
        f"cannot reach the Docker engine at {address} ({reason}): start it (systemctl start docker) "
        f"or point DOCKER_HOST at a running engine"
    )
