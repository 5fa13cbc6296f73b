"""`python -m standin.mailroom`: run until SIGTERM/SIGINT (graceful) — SIGKILL loses tasks in hand."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from standin.common.switches import SwitchError
from standin.mailroom.config import load_config
from standin.mailroom.envreader import SettingError
from standin.mailroom.service import Mailroom, RedisUnreachable
from standin.mailroom.switches import load_mailroom_switches


async def _serve() -> None:
    config = load_config()
    switches = load_mailroom_switches(seed=_seed())
    mailroom = Mailroom(config, switches)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await mailroom.start()
    await stop.wait()
    await mailroom.stop()


def _seed() -> int | None:
    raw = os.environ.get("STANDIN_SEED", "").strip()
    return int(raw) if raw.lstrip("-").isdigit() else None


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("MAILROOM_LOG_LEVEL", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(_serve())
    except (SwitchError, SettingError) as exc:
        print(f"mailroom: {exc}", file=sys.stderr)
        return 2
    except RedisUnreachable as exc:  # real v9.2.2 panics (exit status 2); a supervisor restarts it
        print(f"mailroom: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. MAILROOM_PORT already taken
        print(f"mailroom: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
