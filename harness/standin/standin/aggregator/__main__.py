"""`python -m standin.aggregator`: run the simulated phone network until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from .behaviour import Behaviour, BehaviourError
from .server import serve


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BehaviourError(f"{name}: expected an integer, got {raw!r}") from None


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        port = _int_env("AGGREGATOR_PORT", 8070)
        capacity = _int_env("AGGREGATOR_MAX_RECORDS", 100_000)
        seed_text = os.environ.get("AGGREGATOR_SEED", "").strip()
        seed = _int_env("AGGREGATOR_SEED", 0) if seed_text else None
        behaviour = Behaviour(
            callback_base=os.environ.get("AGGREGATOR_CALLBACK_BASE", ""),
            channel_uuid=os.environ.get("AGGREGATOR_CHANNEL_UUID", ""),
        )
        behaviour.validate()
        if capacity < 1:
            raise BehaviourError(f"AGGREGATOR_MAX_RECORDS: must be at least 1, got {capacity}")
    except BehaviourError as exc:
        print(f"aggregator: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(port, behaviour, capacity, seed))


if __name__ == "__main__":
    sys.exit(main())
