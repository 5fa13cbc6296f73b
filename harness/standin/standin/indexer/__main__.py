"""`python -m standin.indexer`: poll every INDEXER_POLL seconds until SIGTERM (finishes the pass in hand)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from standin.common.switches import SwitchError, load_switches
from standin.indexer.config import IndexerConfig, load_config
from standin.indexer.indexer import ContactIndexer
from standin.mailroom.envreader import SettingError

log = logging.getLogger("indexer")
VERSION = "9.2.0-standin"


def _status_app(indexer: ContactIndexer) -> web.Application:
    async def index(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "component": "indexer",
                "version": VERSION,
                "last_pass": indexer.last_pass.isoformat() if indexer.last_pass else None,
                "last_error": indexer.last_error,
                "indexed": indexer.total_indexed,
            }
        )

    app = web.Application()
    app.router.add_get("/", index)
    return app


async def _serve(config: IndexerConfig) -> None:
    indexer = ContactIndexer(
        config.db,
        config.elastic_url,
        config.contacts_index,
        config.contacts_shards,
        config.contacts_replicas,
        config.batch_size,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    if config.port:
        runner = web.AppRunner(_status_app(indexer), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.address, config.port).start()
    log.info("indexer started (poll %.1fs, index %s at %s)", config.poll, config.contacts_index, config.elastic_url)
    while not stop.is_set():
        try:
            stats = await indexer.index_once()
            indexer.last_error = None
            log.info(
                "indexed contacts: fetched=%d created=%d updated=%d deleted=%d conflicted=%d",
                stats.fetched,
                stats.created,
                stats.updated,
                stats.deleted,
                stats.conflicted,
            )
        except Exception as exc:  # any failure: log and try again next poll, as real
            indexer.last_error = f"{type(exc).__name__}: {exc}"
            log.error("error indexing contacts: %s", indexer.last_error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=config.poll)
    if runner is not None:
        await runner.cleanup()
    log.info("indexer stopped")


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("INDEXER_LOG_LEVEL", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        load_switches("indexer", [])  # no switches: refuse any, loudly
        config = load_config()
    except (SwitchError, SettingError) as exc:
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
