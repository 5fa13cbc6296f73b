"""`python -m standin.archiver`: archive daily at ARCHIVER_START_TIME (or every ARCHIVER_STANDIN_INTERVAL s).

As real: the S3 bucket is checked at start and an unreachable one stops the archiver (exit 1); a failed
archival is retried 5 minutes later (or after the stand-in interval). Single instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

from standin.archiver.archives import MessageArchiver, S3Store
from standin.archiver.config import ArchiverConfig, load_config
from standin.common.switches import SwitchError, load_switches
from standin.mailroom.envreader import EnvReader, SettingError

log = logging.getLogger("archiver")
RETRY_AFTER_FAILURE = 300.0


def next_archival(config: ArchiverConfig, now: datetime) -> datetime:
    if config.interval is not None:
        return now + timedelta(seconds=config.interval)
    hour, minute = config.start_time
    today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


async def _serve(config: ArchiverConfig, store: S3Store) -> int:
    archiver = MessageArchiver(config, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("archiver started (retention %s, delete %s, bucket %s)", config.retention, config.delete, store.bucket)
    first = True
    while not stop.is_set():
        if not (first and config.once):
            wait = (next_archival(config, datetime.now(UTC)) - datetime.now(UTC)).total_seconds()
            log.info("sleeping %.1fs until next archival", wait)
            await _sleep_until(stop, wait)
            if stop.is_set():
                break
        first = False
        while not stop.is_set():
            try:
                totals = await archiver.run()
                log.info("archival done: %s", totals)
                break
            except Exception as exc:  # logged as real, then retried
                retry = config.interval if config.interval is not None else RETRY_AFTER_FAILURE
                log.error("error archiving, will retry in %.0fs: %s: %s", retry, type(exc).__name__, exc)
                await _sleep_until(stop, retry)
        if config.once:
            break
    log.info("archiver stopped")
    return 0


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("ARCHIVER_LOG_LEVEL", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        load_switches("archiver", [])  # no switches: refuse any, loudly
        config = load_config()
        create_bucket = EnvReader().flag("ARCHIVER_STANDIN_CREATE_BUCKET", False)
    except (SwitchError, SettingError) as exc:
        print(f"archiver: {exc}", file=sys.stderr)
        return 2
    try:
        store = S3Store(config)
        store.ensure_bucket(create_bucket)
    except (RuntimeError, ValueError) as exc:
        print(f"archiver: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(config, store))


if __name__ == "__main__":
    sys.exit(main())
