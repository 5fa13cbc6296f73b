"""Courier's HTTP side (EX receive and status callbacks, health) and the process lifecycle."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from redis.asyncio import Redis

from standin.common.switches import Switches

from .access import AccessConfig
from .channels import Channel, ChannelCache
from .config import CourierConfig
from .db import Database
from .dedup import SeenMessages
from .inbound import SPOOL_SUBDIR as MSGS_SUBDIR
from .inbound import InboundWriter, IncomingMsg
from .outqueue import OutgoingQueue
from .redis_pool import open_redis
from .responses import error_response, msg_accepted, status_accepted
from .sender import Foreman
from .sent_guard import SentGuard
from .spool import SpoolFlusher, discard_spooled, ensure_spool_dirs
from .statuses import SPOOL_SUBDIR as STATUSES_SUBDIR
from .statuses import StatusUpdate, StatusWriter
from .timefmt import parse_rfc3339, utcnow
from .urns import URNError, parse_phone

log = logging.getLogger("courier")

UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STATUS_BY_ACTION = {"sent": "S", "delivered": "D", "failed": "F"}
HEALTH_TIMEOUT_S = 1.0
# STANDIN_VERSION lets an upgrade drill give a derived image its own version to report.
VERSION = os.environ.get("STANDIN_VERSION") or "9.2.2-standin"
SHUTDOWN_TIMEOUT_S = 45.0
# exit status of a Go program that panics, as courier v9.2.1 does without Redis at start
PANIC_EXIT_CODE = 2


@dataclass
class Courier:
    config: CourierConfig
    switches: Switches
    db: Database
    redis: Redis
    channels: ChannelCache
    inbound: InboundWriter
    statuses: StatusWriter

    async def channel_for(self, request: web.Request) -> Channel:
        channel = await self.channels.get(request.match_info["uuid"])
        if channel.channel_type != "EX":
            raise LookupError("channel type wrong")
        return channel


async def _form(request: web.Request) -> MultiDict[str]:
    """Body fields first, then query fields, as Go's ParseForm orders them."""
    merged: MultiDict[str] = MultiDict()
    if request.method in ("POST", "PUT", "PATCH") and request.can_read_body:
        body: MultiDictProxy[object] = await request.post()
        for key, value in body.items():
            if isinstance(value, str):
                merged.add(key, value)
    for key, value in request.query.items():
        merged.add(key, value)
    return merged


def _field(form: MultiDict[str], names: tuple[str, ...]) -> str:
    for name in names:
        if name in form:
            return form.getone(name)
    return ""


async def handle_receive(request: web.Request) -> web.Response:
    courier: Courier = request.app["courier"]
    try:
        channel = await courier.channel_for(request)
    except Exception as exc:
        return error_response(str(exc) or type(exc).__name__)
    try:
        form = await _form(request)
    except Exception as exc:
        return error_response(f"invalid request: {exc}")
    sender = _field(form, ("from", "sender"))
    text = _field(form, ("text",))
    date_text = _field(form, ("date", "time"))
    if not sender:
        return error_response("must have one of 'sender' or 'from' set")
    received_on = utcnow()
    if date_text:
        try:
            received_on = parse_rfc3339(date_text)
        except ValueError:
            return error_response("invalid date format, must be RFC 3339")
    try:
        urn = parse_phone(sender)
    except URNError as exc:
        return error_response(str(exc))

    msg = IncomingMsg(channel=channel, urn=urn, text=text, received_on=received_on)
    if courier.switches.chance("drop_after_ack"):
        log.info("drop_after_ack: acknowledging msg %s without writing it", msg.uuid)
        return msg_accepted(msg)
    await courier.inbound.check_seen(msg)
    try:
        await courier.inbound.write(msg)
    except Exception as exc:
        return error_response(str(exc) or type(exc).__name__)
    if msg.already_written:
        log.info("duplicate msg from %s, answered with %s", urn.identity, msg.uuid)
    else:
        log.info("msg %s received from %s (id %s)", msg.uuid, urn.identity, msg.id or "spooled")
    return msg_accepted(msg)


async def handle_status(request: web.Request) -> web.Response:
    courier: Courier = request.app["courier"]
    try:
        channel = await courier.channel_for(request)
    except Exception as exc:
        return error_response(str(exc) or type(exc).__name__)
    action = request.match_info["action"]
    try:
        form = await _form(request)
    except Exception as exc:
        return error_response(f"invalid request: {exc}")
    raw_id = _field(form, ("id",))
    if not raw_id:
        return error_response("field 'id' required")
    try:
        msg_id = int(raw_id)
    except ValueError:
        return error_response(f"field 'id' must be an integer, got {raw_id!r}")
    update = StatusUpdate(channel.uuid, channel.id, msg_id, STATUS_BY_ACTION[action])
    courier.statuses.queue(update)
    return status_accepted(update)


async def handle_index(request: web.Request) -> web.Response:
    courier: Courier = request.app["courier"]
    lines = [f"courier (stand-in for nyaruka/courier v9) version {VERSION}", ""]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await courier.redis.ping()
        lines.append("redis ok")
    except Exception as exc:
        lines.append(f"redis err: {exc or type(exc).__name__}")
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await courier.db.ping()
        lines.append("db ok")
    except Exception as exc:
        lines.append(f"db err: {exc or type(exc).__name__}")
    body = "<html><head><title>courier</title></head><body><pre>\n" + "\n".join(lines) + "\n</pre></body></html>"
    return web.Response(text=body, content_type="text/html")


def build_app(courier: Courier) -> web.Application:
    app = web.Application()
    app["courier"] = courier
    app.router.add_get("/", handle_index)
    receive = f"/c/ex/{{uuid:{UUID_PATTERN}}}/receive"
    status = f"/c/ex/{{uuid:{UUID_PATTERN}}}/{{action:sent|delivered|failed}}"
    for method in ("GET", "POST"):
        app.router.add_route(method, receive, handle_receive)
        app.router.add_route(method, status, handle_status)
    return app


async def redis_reachable(redis: Redis) -> bool:
    """The PING redisx `NewPool` sends before handing out the pool (no deadline but the dial's)."""
    try:
        await redis.ping()
    except Exception as exc:
        log.error("redis not reachable: %s", exc or type(exc).__name__)
        return False
    log.info("redis ok")
    return True


async def serve(config: CourierConfig, switches: Switches) -> int:
    db = Database(config.db)
    await db.open()
    redis = open_redis(
        config.redis, float(switches["redis_read_timeout_s"]), float(switches["redis_connect_timeout_s"])
    )
    if not await redis_reachable(redis) and switches["exit_without_redis"] and config.max_workers > 0:
        # v9.2.1 starts its dethrottler with the nil pool and its first tick, on the next second, panics;
        # without senders there is no dethrottler and courier runs on with the nil pool
        await asyncio.sleep(1.0 - time.time() % 1.0)
        log.error("exiting: no redis pool (courier v9.2.1 panics on a nil pool here)")
        await redis.aclose()
        await db.close()
        return PANIC_EXIT_CODE
    try:
        ensure_spool_dirs(config.spool_dir, [MSGS_SUBDIR, STATUSES_SUBDIR, "events"])
    except OSError as exc:
        log.error("spool directories not writable: %s", exc)
    if switches["discard_spool_on_start"]:
        for uuid in discard_spooled(config.spool_dir, MSGS_SUBDIR):
            log.warning("discard_spool_on_start: discarding spooled msg %s without writing it", uuid)

    channels = ChannelCache(db, float(switches["channel_cache_s"]))
    seen = SeenMessages(redis, int(switches["seen_msgs_interval_s"]))
    statuses = StatusWriter(db, config.spool_dir, int(switches["status_batch_ms"]) / 1000)
    inbound = InboundWriter(
        db,
        redis,
        channels,
        seen,
        config.spool_dir,
        use_spool=bool(switches["spool"]),
        spool_dedup=bool(switches["spool_dedup"]),
        seen_mark_delay_s=int(switches["seen_mark_delay_ms"]) / 1000,
    )
    flusher = SpoolFlusher(
        config.spool_dir, float(switches["spool_flush_s"]), int(switches["spool_delete_delay_ms"]) / 1000
    )
    flusher.register(MSGS_SUBDIR, inbound.flush_spooled)
    flusher.register(STATUSES_SUBDIR, statuses.flush_spooled)
    courier = Courier(config, switches, db, redis, channels, inbound, statuses)

    runner = web.AppRunner(
        build_app(courier), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, config.address, config.port)
    await site.start()

    statuses.start()
    flusher.start()
    stopping = asyncio.Event()
    dethrottler: asyncio.Task[None] | None = None
    foreman: Foreman | None = None
    if config.max_workers > 0:
        queue = OutgoingQueue(redis, float(switches["batch_requeue_s"]))
        dethrottler = asyncio.create_task(queue.dethrottle_forever(stopping), name="dethrottler")
        foreman = Foreman(
            queue,
            channels,
            seen,
            SentGuard(redis),
            statuses,
            AccessConfig(config.disallowed_networks),
            db,
            config.max_workers,
            use_sent_guard=bool(switches["sent_guard"]),
            nonretryable_fails=bool(switches["nonretryable_fails"]),
            send_timeout_s=float(switches["send_timeout_s"]),
            session_timeouts=bool(switches["session_timeouts"]),
        )
        foreman.start()
    log.info(
        "server listening on %s:%d (%d senders, switches %s)",
        config.address,
        config.port,
        config.max_workers,
        switches.as_dict(),
    )

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()

    log.info("stopping: draining senders, requests and status writes")
    if foreman is not None:
        await foreman.stop()
    await runner.cleanup()
    if dethrottler is not None:
        await dethrottler
    await flusher.stop()
    await statuses.stop()
    await redis.aclose()
    await db.close()
    log.info("server stopped")
    return 0
