"""How long around a fault its documented effects may show, per fault kind (seconds before its injection,
after its recovery). Measured effects, not wishes: e.g. a kill's lost reply is owed by an MO sent up to
a few seconds before the kill (popped, not yet sent), and a failover's effects trail its recovery while
clients reconnect."""

from __future__ import annotations

DEFAULT_WINDOW = (5.0, 10.0)
WINDOWS: dict[str, tuple[float, float]] = {
    "kill": (5.0, 10.0),
    "crash": (5.0, 10.0),
    "stop": (5.0, 10.0),
    "restart": (5.0, 10.0),
    "pause": (5.0, 10.0),
    "lb-cut": (2.0, 5.0),
    "partition": (5.0, 15.0),
    "isolate": (5.0, 15.0),
    "loss": (5.0, 15.0),
    "toxic": (5.0, 15.0),
    "pg-failover": (5.0, 20.0),
    "redis-failover": (5.0, 20.0),
    "search-loss": (5.0, 10.0),
    "rolling-restart": (5.0, 10.0),
    "rolling-upgrade": (5.0, 10.0),
}


def window_for(kind: str) -> tuple[float, float]:
    return WINDOWS.get(kind, DEFAULT_WINDOW)
