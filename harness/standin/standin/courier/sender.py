"""The foreman and its senders: pop outgoing messages, guard against re-sends, send, record the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

import httpx

from .access import AccessConfig
from .channels import Channel, ChannelCache
from .db import Database
from .dedup import SeenMessages
from .external import build_requests
from .outqueue import OutgoingQueue, Popped
from .sent_guard import SentGuard
from .sessions import session_wait, update_session_timeout
from .statuses import StatusUpdate, StatusWriter

log = logging.getLogger("courier.sender")

IDLE_SLEEP_S = 0.25
# The foreman's 30 s context: in v9.2.1 only the channel lookup sees it, never the Redis pop, so a pop
# from a black-holed Redis blocks the foreman (and all sending) until the connection is closed.
POP_TIMEOUT_S = 30.0
USER_AGENT = "Courier/v9.2.1-standin"

WIRED, ERRORED, FAILED = "W", "E", "F"


class SendOutcome(Exception):
    """A send that did not succeed, carrying the status it leaves the message in."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Foreman:
    def __init__(
        self,
        queue: OutgoingQueue,
        channels: ChannelCache,
        seen: SeenMessages,
        guard: SentGuard,
        statuses: StatusWriter,
        access: AccessConfig,
        db: Database,
        max_workers: int,
        use_sent_guard: bool,
        nonretryable_fails: bool,
        send_timeout_s: float,
        session_timeouts: bool,
    ) -> None:
        self._queue = queue
        self._channels = channels
        self._seen = seen
        self._guard = guard
        self._statuses = statuses
        self._access = access
        self._db = db
        self._slots = asyncio.Semaphore(max_workers)
        self._use_sent_guard = use_sent_guard
        self._nonretryable_fails = nonretryable_fails
        self._send_timeout_s = send_timeout_s
        self._session_timeouts = session_timeouts
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            timeout=send_timeout_s,
            limits=httpx.Limits(
                max_connections=max(1, max_workers), max_keepalive_connections=8, keepalive_expiry=15.0
            ),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._assign(), name="foreman")

    async def stop(self) -> None:
        """Stop popping and let every sender finish the message it holds."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._client.aclose()

    async def _assign(self) -> None:
        while not self._stopping.is_set():
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            job: tuple[Popped, Channel] | None = None
            try:
                job = await self._next()
            except Exception as exc:
                log.error("error popping outgoing msg: %s", exc)
            if job is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=IDLE_SLEEP_S)
                continue
            task = asyncio.create_task(self._send_then_free(*job))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _next(self) -> tuple[Popped, Channel] | None:
        popped = await self._queue.pop()
        if popped is None:
            return None
        try:
            async with asyncio.timeout(POP_TIMEOUT_S):
                channel = await self._channels.get(str(popped.payload.get("channel_uuid", "")))
        except Exception:
            # the message is already out of Redis: it stays Q in the database (as in courier)
            await self._queue.complete(popped.queue)
            raise
        urn = str(popped.payload.get("urn", ""))
        try:
            await self._seen.clear(SeenMessages.fingerprint(channel.uuid, urn.split("?", 1)[0]))
        except Exception as exc:
            log.warning("clearing seen msgs failed: %s", exc)
        return popped, channel

    async def _send_then_free(self, popped: Popped, channel: Channel) -> None:
        try:
            await self.send_message(popped, channel)
        except Exception as exc:
            log.exception("unexpected error sending msg: %s", exc)
        finally:
            self._slots.release()

    async def send_message(self, popped: Popped, channel: Channel) -> None:
        msg = popped.payload
        msg_id = int(msg["id"])
        if msg.get("is_resend"):
            await self._quietly(self._guard.clear(msg_id), "clearing sent status")
        already_sent = False
        if self._use_sent_guard:
            try:
                already_sent = await self._guard.was_sent(msg_id)
            except Exception as exc:
                log.error("error looking up msg %s was sent: %s", msg_id, exc)

        if channel.channel_type != "EX":
            status = FAILED
            log.error("no handler for channel type %s", channel.channel_type)
        elif already_sent:
            status = WIRED
            log.warning("duplicate send of msg %s, marking as wired", msg_id)
        else:
            status = await self._send(channel, msg)

        if status == ERRORED:
            await self._quietly(self._guard.clear(msg_id), "clearing sent flags")
        self._statuses.queue(StatusUpdate(channel.uuid, channel.id, msg_id, status))
        await self._quietly(self._queue.complete(popped.queue), "marking queue task complete")
        if status == WIRED:
            await self._quietly(self._guard.mark_sent(msg_id), "recording sent msg")
            if self._session_timeouts:
                await self._quietly(self._move_session_timeout(msg), "updating session timeout")

    async def _move_session_timeout(self, msg: dict[str, Any]) -> None:
        wait = session_wait(msg)
        if wait is not None:
            await update_session_timeout(self._db, wait)

    async def _send(self, channel: Channel, msg: dict[str, Any]) -> str:
        msg_id = msg.get("id")
        try:
            requests = build_requests(channel, msg, USER_AGENT)
            for request in requests:
                await self._request(request.method, request.url, request.headers, request.body, request.response_check)
        except SendOutcome as outcome:
            log.info("msg %s not sent (%s): %s", msg_id, outcome.status, outcome)
            return outcome.status
        except ValueError as exc:
            log.error("msg %s not sent: %s", msg_id, exc)
            return FAILED if self._nonretryable_fails else ERRORED
        log.info("msg %s wired", msg_id)
        return WIRED

    async def _request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, response_check: str
    ) -> None:
        try:
            await self._access.check(url)
            async with asyncio.timeout(self._send_timeout_s):
                response = await self._client.request(method, url, headers=headers, content=body)
        except Exception as exc:
            raise SendOutcome(ERRORED, f"connection failed: {exc!s} ({type(exc).__name__})") from None
        if response.status_code // 100 == 5:
            raise SendOutcome(ERRORED, f"connection failed: status {response.status_code}")
        not_retryable = FAILED if self._nonretryable_fails else ERRORED
        if response.status_code // 100 != 2:
            raise SendOutcome(not_retryable, f"response status code {response.status_code}")
        if response_check and response_check not in response.text:
            raise SendOutcome(not_retryable, "response not expected values")

    @staticmethod
    async def _quietly(operation: Awaitable[object], what: str) -> None:
        try:
            await operation
        except Exception as exc:
            log.error("error %s: %s", what, exc)
