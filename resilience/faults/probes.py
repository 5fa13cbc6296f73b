"""Probes that observe a fault's effect from inside the run's network (never dialling a bridge address
from the host): does a TCP connect from one node to another succeed, how many UDP datagrams get through.

They run a few lines of Python in the probing node (Backend.exec), so they need python3 in the
image (the offline node image has it) and no network privileges.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resilience.backends.base import Backend

_CONNECTS = """
import socket, sys
host, port, attempts, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ok = 0
for _ in range(attempts):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        ok += 1
    except OSError:
        pass
print(ok)
"""

_UDP_RECEIVE = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", int(sys.argv[1])))
sock.settimeout(float(sys.argv[2]))
count = 0
try:
    while True:
        sock.recv(64)
        count += 1
except OSError:
    pass
print(count)
"""

_UDP_SEND = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    sock.sendto(b"probe", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.02)
"""


def successful_connects(
    run: Backend, source: str, target: str, port: int, attempts: int = 1, timeout: float = 1.0
) -> int:
    """How many of `attempts` TCP connects from `source` to `target`:`port` (by its address) succeed."""
    address = run.address(target)
    out = run.exec_ok(source, ["python3", "-c", _CONNECTS, address, str(port), str(attempts), str(timeout)])
    return int(out.strip().splitlines()[-1])


def can_connect(run: Backend, source: str, target: str, port: int, timeout: float = 1.0) -> bool:
    return successful_connects(run, source, target, port, 1, timeout) == 1


def udp_delivered(run: Backend, sender: str, receiver: str, count: int = 10, port: int = 47999) -> int:
    """Send `count` datagrams from `sender` to `receiver`; how many arrived (shows one-way cuts that TCP,
    needing both directions, cannot)."""
    received: list[str] = []
    listener = threading.Thread(
        target=lambda: received.append(run.exec_ok(receiver, ["python3", "-c", _UDP_RECEIVE, str(port), "1.5"]))
    )
    listener.start()
    try:
        # The receiver must be bound before the first datagram: give its exec a head start.
        threading.Event().wait(0.5)
        run.exec_ok(sender, ["python3", "-c", _UDP_SEND, run.address(receiver), str(port), str(count)])
    finally:
        listener.join()
    return int(received[0].strip().splitlines()[-1]) if received else 0
