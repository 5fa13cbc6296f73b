"""SIGTERM as an exception, so that a cancelled run still reverts its faults.

CI runners and `timeout` stop a job with SIGTERM, which by default ends Python at once: no `finally`
runs, and a partition or a paused node outlives the run until `resilience cleanup`. With this handler
the first SIGTERM raises `Terminated` (a KeyboardInterrupt, so everything that already treats ^C as
"stop, but revert first" does the same for it). Later SIGTERMs are reported and ignored while the
reverts run; SIGKILL remains the way to stop at once, and the fault registry covers that case.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The process was asked to stop with SIGTERM."""


_received = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _received.is_set():
        print("resilience: SIGTERM again: still reverting faults (SIGKILL stops at once)", file=sys.stderr)
        return
    _received.set()
    raise Terminated(f"signal {signum}")


def terminate_gracefully() -> bool:
    """Install the handler; True if it is in place. Only the main thread can, and a handler someone
    else installed (an embedding program's) is left alone."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is _on_sigterm:
        return True
    if current not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True
