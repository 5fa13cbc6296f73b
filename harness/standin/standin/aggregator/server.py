"""The aggregator's HTTP API: any path records a send; /config, /records and /health control it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import time
from dataclasses import dataclass, field

import httpx
from aiohttp import web

from .behaviour import Behaviour, BehaviourError
from .parsing import parse_send
from .records import MTRecord, RecordStore

log = logging.getLogger("aggregator")

CONTROL_PATHS = ("/config", "/records", "/health")
DEFAULT_PAGE = 10_000


@dataclass
class CallbackStats:
    scheduled: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass
class Aggregator:
    behaviour: Behaviour
    records: RecordStore
    rng: random.Random
    client: httpx.AsyncClient
    callbacks: CallbackStats = field(default_factory=CallbackStats)
    unparsed: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def deliver_callback(self, behaviour: Behaviour, channel_uuid: str, msg_id: str) -> None:
        await asyncio.sleep(behaviour.delivered_delay_ms / 1000)
        url = f"{behaviour.callback_base.rstrip('/')}/c/ex/{channel_uuid}/{behaviour.callback}"
        for attempt in range(behaviour.callback_retries + 1):
            try:
                response = await self.client.post(url, params={"id": msg_id})
                if response.status_code // 100 == 2:
                    self.callbacks.succeeded += 1
                    return
                log.warning("callback %s?id=%s answered %d", url, msg_id, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("callback %s?id=%s failed: %s", url, msg_id, exc)
            if attempt < behaviour.callback_retries:
                await asyncio.sleep(1.0)
        self.callbacks.failed += 1


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def handle_send(request: web.Request) -> web.StreamResponse:
    aggregator: Aggregator = request.app["aggregator"]
    behaviour = aggregator.behaviour
    received_wall_ns = time.time_ns()
    body = await request.read()
    try:
        fields = parse_send(request.content_type, body, dict(request.query))
    except ValueError as exc:
        aggregator.unparsed += 1
        log.warning("unparseable send to %s: %s", request.path, exc)
        fields = {}

    hang = aggregator.rng.random() < behaviour.timeout_rate
    failed = not hang and aggregator.rng.random() < behaviour.error_rate
    status = behaviour.error_status if failed else behaviour.status
    answer = "hang" if hang else str(status)
    if behaviour.record_failed or (not hang and status // 100 == 2):
        raw_id = fields.get("id", "")
        aggregator.records.add(
            MTRecord(
                seq=0,
                msg_id=int(raw_id) if raw_id.lstrip("-").isdigit() else None,
                raw_id=raw_id,
                to=fields.get("to", ""),
                sender=fields.get("from", ""),
                text=fields.get("text", ""),
                channel=fields.get("channel", "") or behaviour.channel_uuid,
                method=request.method,
                path=request.path,
                received_wall_ns=received_wall_ns,
                answer=answer,
            )
        )

    if hang:
        await asyncio.sleep(behaviour.hang_ms / 1000)
        # no answer at all: the sender sees its own timeout, or a closed connection after hang_ms
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)
    if behaviour.latency_ms:
        await asyncio.sleep(behaviour.latency_ms / 1000)
    channel_uuid = fields.get("channel", "") or behaviour.channel_uuid
    if status // 100 == 2 and behaviour.callback and behaviour.callback_base and channel_uuid and fields.get("id"):
        aggregator.callbacks.scheduled += 1
        task = asyncio.create_task(aggregator.deliver_callback(behaviour, channel_uuid, fields["id"]))
        aggregator.tasks.add(task)
        task.add_done_callback(aggregator.tasks.discard)
    return web.Response(status=status, text=behaviour.body)


async def handle_get_config(request: web.Request) -> web.Response:
    aggregator: Aggregator = request.app["aggregator"]
    return web.json_response(aggregator.behaviour.as_dict())


async def handle_post_config(request: web.Request) -> web.Response:
    aggregator: Aggregator = request.app["aggregator"]
    try:
        changes = await request.json()
    except ValueError as exc:
        return _error(400, f"config: body is not JSON ({exc})")
    try:
        aggregator.behaviour = aggregator.behaviour.updated(changes)
    except BehaviourError as exc:
        return _error(400, str(exc))
    log.info("config now %s", aggregator.behaviour.as_dict())
    return web.json_response(aggregator.behaviour.as_dict())


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer, got {raw!r}"}),
            content_type="application/json",
        ) from None
    return value


async def handle_get_records(request: web.Request) -> web.Response:
    aggregator: Aggregator = request.app["aggregator"]
    after = _int_param(request, "after", 0)
    limit = max(1, _int_param(request, "limit", DEFAULT_PAGE))
    found = aggregator.records.after(after, limit)
    last_returned = found[-1].seq if found else after
    return web.json_response(
        {
            "records": [r.as_json() for r in found],
            "last_seq": aggregator.records.last_seq,
            "more": last_returned < aggregator.records.last_seq,
            "dropped": aggregator.records.dropped,
        }
    )


async def handle_delete_records(request: web.Request) -> web.Response:
    aggregator: Aggregator = request.app["aggregator"]
    cleared = aggregator.records.clear()
    return web.json_response({"cleared": cleared, "last_seq": aggregator.records.last_seq})


async def handle_health(request: web.Request) -> web.Response:
    aggregator: Aggregator = request.app["aggregator"]
    return web.json_response(
        {
            "status": "ok",
            "records": len(aggregator.records),
            "last_seq": aggregator.records.last_seq,
            "dropped": aggregator.records.dropped,
            "unparsed": aggregator.unparsed,
            "callbacks": vars(aggregator.callbacks),
        }
    )


def build_app(aggregator: Aggregator) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app["aggregator"] = aggregator
    app.router.add_get("/config", handle_get_config)
    app.router.add_post("/config", handle_post_config)
    app.router.add_get("/records", handle_get_records)
    app.router.add_delete("/records", handle_delete_records)
    app.router.add_get("/health", handle_health)
    app.router.add_route("*", "/{tail:.*}", handle_send)
    return app


async def serve(port: int, behaviour: Behaviour, capacity: int, seed: int | None) -> int:
    client = httpx.AsyncClient(timeout=10.0)
    aggregator = Aggregator(behaviour, RecordStore(capacity), random.Random(seed), client)
    runner = web.AppRunner(build_app(aggregator), handle_signals=False, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    log.info("aggregator listening on %d (capacity %d, %s)", port, capacity, behaviour.as_dict())
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await runner.cleanup()
    for task in list(aggregator.tasks):
        task.cancel()
    await client.aclose()
    return 0
