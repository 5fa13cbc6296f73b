"""A foreman per queue: pops a task whenever one of its N workers is free, as real v9's Foreman.

Popped tasks live only in this process: a SIGKILL loses them. A graceful stop stops popping and waits
for the tasks in hand to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from standin.mailroom.queues import FairSortedQueue, QueuedTask

log = logging.getLogger("mailroom.foreman")

Perform = Callable[[QueuedTask], Awaitable[None]]


class Foreman:
    def __init__(self, queue: FairSortedQueue, workers: int, perform: Perform, idle_sleep: float) -> None:
        self.queue = queue
        self.workers = workers
        self._perform = perform
        self._idle_sleep = idle_sleep
        self._free = asyncio.Semaphore(workers)
        self._in_hand: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> int:
        return len(self._in_hand)

    async def run(self, stopping: asyncio.Event) -> None:
        log.info("%s: %d workers started and waiting", self.queue.base, self.workers)
        while not stopping.is_set():
            await self._free.acquire()
            if stopping.is_set():
                self._free.release()
                break
            try:
                task = await self.queue.pop()
            except Exception as exc:  # Redis trouble: the worker goes back, as real
                log.error("%s: error popping task: %s", self.queue.base, exc)
                task = None
            if task is None:
                self._free.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=self._idle_sleep)
                continue
            worker = asyncio.create_task(self._work(task))
            self._in_hand.add(worker)
            worker.add_done_callback(self._finished)
        if self._in_hand:
            log.info("%s: waiting for %d tasks in hand", self.queue.base, len(self._in_hand))
            await asyncio.gather(*self._in_hand, return_exceptions=True)
        log.info("%s: foreman stopped", self.queue.base)

    def _finished(self, worker: asyncio.Task[None]) -> None:
        self._in_hand.discard(worker)
        self._free.release()

    async def _work(self, task: QueuedTask) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._perform(task)
            log.info(
                "%s: task %s complete (org_id=%s) in %.3fs",
                self.queue.base,
                task.type,
                task.org_id,
                loop.time() - started,
            )
        except Exception as exc:  # a failed task is logged and gone, as real
            log.error(
                "%s: error running task %s (org_id=%s): %s: %s",
                self.queue.base,
                task.type,
                task.org_id,
                type(exc).__name__,
                exc,
            )
        finally:
            try:
                await self.queue.done(task.org_id)
            except Exception as exc:
                log.error("%s: unable to mark task as complete: %s", self.queue.base, exc)
