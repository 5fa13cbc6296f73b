"""A reaper per run that removes it when its owner process dies, however it dies (SIGKILL included).

As testcontainers' Ryuk: before a run's network and nodes exist, `start_reaper` creates a small
container `rs-<run>-reaper` from the node image, with the engine's socket mounted and no network, and
this process attaches to its stdin. The engine holds that attachment for as long as this process
lives; when the process dies the kernel closes its connection, Docker closes the reaper's stdin
(StdinOnce), and the reaper (resilience/reaper_agent.py) removes everything labelled with the run,
then itself. Nothing needs to run later, and the heartbeat lives on the engine: any host that shares
it sees a run as watched while its reaper container runs (RunInfo.watched).

Only runs that are not kept get a reaper (`resilience up` and --resilience-keep-cluster keep theirs on
purpose); on a kept run, `watch_faults` reverts a dead harness's faults instead (below).
RESILIENCE_REAPER=off turns it off; RESILIENCE_REAPER_SOCKET names the engine's socket as the engine's
host sees it (default /var/run/docker.sock).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

from resilience.backends import labels

ENABLED_ENV = "RESILIENCE_REAPER"
SOCKET_ENV = "RESILIENCE_REAPER_SOCKET"
DEFAULT_SOCKET = "/var/run/docker.sock"
ROLE = "reaper"  # its labels.ROLE, so listings can tell it from the run's nodes
AGENT = Path(__file__).with_name("reaper_agent.py")
AGENT_IN_CONTAINER = "/opt/resilience-reaper/agent.py"

# The attachments of this process, one per run it owns. Held until the process ends: closing one is
# what tells the reaper to reap, so they are never closed by hand (down removes the reaper instead).
_attachments: dict[str, Any] = {}

Log = Callable[[str], None]


def enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(ENABLED_ENV, "on").lower() not in ("off", "0", "false", "no")


def container_name(run_id: str) -> str:
    return f"rs-{run_id}-{ROLE}"


def start_reaper(client: docker.DockerClient, run_id: str, image: str, common: dict[str, str], log: Log) -> bool:
    """Create the run's reaper and attach to it; True when it watches the run. A refusal (e.g. an engine
    whose socket cannot be mounted) is reported and the run goes on without one."""
    if not enabled():
        return False
    socket_path = os.environ.get(SOCKET_ENV, DEFAULT_SOCKET)
    # ^C or SIGTERM waits until the reaper is made and attached: cut short, its creation could still be
    # under way in the engine when the harness's teardown lists the run, and it would outlive both.
    with signals_held(signal.SIGINT, signal.SIGTERM):
        return _start(client, run_id, image, common, socket_path, log)


@contextlib.contextmanager
def signals_held(*signums: signal.Signals) -> Iterator[None]:
    """Hold these signals (delivered when the block ends), around an engine call that must not be left in
    flight by an exception: the engine would finish it after the harness's teardown had looked. A no-op
    outside the main thread (signals are handled in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start(
    client: docker.DockerClient, run_id: str, image: str, common: dict[str, str], socket_path: str, log: Log
) -> bool:
    try:
        container = client.containers.create(
            image,
            command=["python3", "-u", AGENT_IN_CONTAINER],
            name=container_name(run_id),
            environment={"RESILIENCE_RUN": run_id},
            labels={**common, labels.ROLE: ROLE, labels.NODE: ROLE},
            volumes={socket_path: {"bind": "/var/run/docker.sock", "mode": "rw"}},
            user="0",  # the socket is root's
            network_mode="none",  # it talks to the engine only, through the socket
            stdin_open=True,
            detach=False,  # with stdin_open: StdinOnce, so our leaving closes its stdin
            auto_remove=True,
            init=True,
            mem_limit="64m",
        )
        container.put_archive("/", _agent_tar())
        # Attached before it starts: there is no moment when it runs without an owner.
        _attachments[run_id] = client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
        container.start()
    except docker.errors.APIError as exc:
        log(f"run {run_id}: no reaper ({exc.explanation or exc}); a killed harness leaves it to `resilience cleanup`")
        _attachments.pop(run_id, None)
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(container_name(run_id)).remove(force=True)
        return False
    return True


def _agent_tar() -> bytes:
    data = AGENT.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(AGENT_IN_CONTAINER.lstrip("/"))
        info.size = len(data)
        info.mode = 0o644
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------------------------ faults on a kept run
# A kept run (`resilience up`, --resilience-keep-cluster, reused with --resilience-reuse-cluster) has no
# reaper: it must outlive its harness. The faults a harness applies to it must not: the first fault this
# process registers on a kept run starts a detached watcher on this host, holding the read end of a pipe
# whose write end only this process has. When this process dies, however, the pipe ends and the watcher
# recovers the faults this process registered (resilience.faults.registry.revert_owned), and only those.
_fault_watchers: dict[str, Any] = {}


def watch_faults(run_id: str, state_dir: Path) -> None:
    """Start the fault watcher for a kept run, once per run and process; a no-op for any other run."""
    if run_id in _fault_watchers or not enabled():
        return
    _fault_watchers[run_id] = None  # decided once, whatever the outcome
    try:
        from resilience.backends import engine

        networks = engine.connect().networks.list(filters={"label": f"{labels.RUN}={run_id}"})
    except Exception:  # no engine here (a unit test of the registry): nothing to watch
        return
    if not any((n.attrs.get("Labels") or {}).get(labels.KEEP) == "true" for n in networks):
        return  # not kept: its reaper removes the whole run
    _fault_watchers[run_id] = subprocess.Popen(
        [sys.executable, "-m", "resilience.reaper", run_id, str(state_dir), labels.owner_label()],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in our process group: ^C in our terminal is ours, not its
    )


def _watch(run_id: str, state_dir: str, owner: str) -> int:
    while os.read(sys.stdin.fileno(), 65536):  # the owner never writes: anything read is ignored
        pass
    from resilience.backends.docker import DockerBackend
    from resilience.faults.registry import revert_owned

    for line in revert_owned(DockerBackend(), run_id, owner, state_dir):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_watch(*sys.argv[1:4]))
