"""The reaper's own program: runs inside a run's reaper container, standard library only.

It is copied into the container (resilience/reaper.py) and started with the owner attached to its
stdin. Docker closes a container's stdin when its one attached client goes (StdinOnce), and the
kernel closes that client's connection however the owner process dies, SIGKILL included. So the
end of stdin means "the owner is gone": then remove, through the engine's socket, everything
labelled `resilience.run=<this run>` and nothing else, thawing paused nodes first, and exit (the
container is auto-removed).

Deliberately free of the `resilience` package and of third-party libraries: the node image has a
Python, not our virtualenv.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

RUN_LABEL = "resilience.run"
SOCKET = "/var/run/docker.sock"
TIMEOUT = 30.0  # one API call; the whole reap is bounded by the number of objects times this


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self._path)


def api(method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = _UnixConnection(SOCKET)
    try:
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        connection.request(method, url)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(body) if body else None
    except ValueError:
        return response.status, body.decode(errors="replace")


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} reaper: {message}", flush=True)


def labelled(kind: str, run_id: str) -> list[dict[str, Any]]:
    """Objects of `kind` whose run label is exactly this run (the filter, then checked again here)."""
    query = {"filters": json.dumps({"label": [f"{RUN_LABEL}={run_id}"]})}
    if kind == "containers":
        query["all"] = "1"
    status, body = api("GET", {"containers": "/containers/json"}.get(kind, f"/{kind}"), query)
    if status != 200:
        log(f"listing {kind} failed: {status} {body}")
        return []
    items = body.get("Volumes") or [] if kind == "volumes" else body or []
    return [i for i in items if (i.get("Labels") or {}).get(RUN_LABEL) == run_id]


def reap(run_id: str, me: str) -> int:
    """Remove the run; returns how many objects could not be removed."""
    started = time.monotonic()
    failed = 0
    containers = [c for c in labelled("containers", run_id) if not c["Id"].startswith(me)]
    # Revert what can be reverted before removal: a frozen (paused) node is thawed so that it dies
    # like any other. Rules and toxics live in the nodes' network namespaces and processes, and go
    # with them.
    for container in containers:
        if container.get("State") == "paused":
            api("POST", f"/containers/{container['Id']}/unpause")

    def remove(container: dict[str, Any]) -> bool:
        status, body = api("DELETE", f"/containers/{container['Id']}", {"force": "1", "v": "1"})
        if status not in (204, 404):
            log(f"container {container['Names']}: {status} {body}")
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        failed += sum(not ok for ok in pool.map(remove, containers))
    for network in labelled("networks", run_id):
        for attempt in range(5):
            status, body = api("DELETE", f"/networks/{network['Id']}")
            if status in (204, 404):
                break
            time.sleep(0.5 * (attempt + 1))
        else:
            failed += 1
            log(f"network {network['Name']}: {status} {body}")
    for volume in labelled("volumes", run_id):
        status, body = api("DELETE", f"/volumes/{volume['Name']}", {"force": "1"})
        if status not in (204, 404):
            failed += 1
            log(f"volume {volume['Name']}: {status} {body}")
    log(f"run {run_id}: removed {len(containers)} containers in {time.monotonic() - started:.1f} s, {failed} failed")
    return failed


def main() -> int:
    run_id = os.environ["RESILIENCE_RUN"]
    me = socket.gethostname()  # Docker sets a container's hostname to the start of its id
    log(f"watching run {run_id}")
    while os.read(sys.stdin.fileno(), 65536):  # the owner never writes: anything read is ignored
        pass
    log("owner gone (stdin closed)")
    return 1 if reap(run_id, me) else 0


if __name__ == "__main__":
    sys.exit(main())
