"""Virtual contacts conversing with flows through the load balancer, every request recorded in the history.

Open loop: conversations start on a fixed schedule whatever the system's state (a slow RapidPro does not
slow the arrivals, as real phones do not wait). Within a conversation the contact waits for the replies
it is owed before answering, as a person would, and gives up on a step after `reply_timeout`.
Bounded in count and time; it stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from resilience.history import FAIL, INFO, OK, History
from resilience.rapidpro.aggregator import AggregatorClient
from resilience.rapidpro.api import ApiClient, ApiError
from resilience.rapidpro.courier import CourierClient
from resilience.snapshot import Delivery
from resilience.workload.script import Script, new_token, render


@dataclass(frozen=True)
class WorkloadConfig:
    rate: float = 2.0  # MOs per second offered, on average
    duration: float = 30.0  # seconds during which new conversations start
    seed: int = 1
    reply_timeout: float = 20.0  # seconds a contact waits for the replies owed to one step
    think_time: float = 0.2  # seconds between seeing a reply and answering
    api_start_ratio: float = 0.0  # fraction of conversations started by an API flow start
    resend_attempts: int = 2  # how often a contact re-sends (a new text) a step that got no reply
    max_conversations: int = 10_000
    urn_prefix: str = "+2507"


@dataclass
class Conversation:
    id: str
    urn: str
    script: Script
    values: dict[str, str]
    api_start: bool
    sent: list[str] = field(default_factory=list)
    completed: bool = False


@dataclass
class WorkloadStats:
    conversations: int = 0
    completed: int = 0
    mo_ok: int = 0
    mo_fail: int = 0
    mo_info: int = 0
    starts: int = 0
    deliveries: int = 0
    urns: list[str] = field(default_factory=list)


Progress = Callable[[WorkloadStats], None]

URN_BLOCK = 1000
"""URNs a run takes; a run of more conversations overlaps only the blocks of the seconds right after its start."""
URN_BLOCKS = 10**8 // URN_BLOCK


def plan_conversations(scripts: list[Script], config: WorkloadConfig, salt: int) -> list[tuple[float, Conversation]]:
    """The seeded schedule: (start offset in seconds, conversation). Same seed and salt, same plan."""
    rng = random.Random(config.seed)
    mean_steps = sum(len(s.steps) for s in scripts) / len(scripts)
    conversation_rate = config.rate / mean_steps
    count = min(config.max_conversations, max(1, int(config.duration * conversation_rate)))
    plan = []
    for i in range(count):
        script = scripts[i % len(scripts)]
        # Runs on one cluster share its contacts table: each run (salt = its start second) takes its own block
        # of URNs, so no contact of an earlier run carries its rows and runs into this one's snapshot. Once,
        # 7919·salt + 104729·i + noise put a run's contact on one of the run 53 s before (certification).
        number = ((salt % URN_BLOCKS) * URN_BLOCK + i) % 10**8
        urn = f"tel:{config.urn_prefix}{number:08d}"
        conversation = Conversation(
            id=f"c{i}",
            urn=urn,
            script=script,
            values=script.choose_values(rng),
            api_start=rng.random() < config.api_start_ratio,
        )
        plan.append((i / conversation_rate, conversation))
    return plan


class Workload:
    def __init__(
        self,
        history: History,
        courier: CourierClient,
        aggregator: AggregatorClient,
        scripts: list[Script],
        config: WorkloadConfig,
        api: ApiClient | None = None,
        flow_uuids: dict[str, str] | None = None,
        salt: int = 0,
    ) -> None:
        self.history = history
        self.courier = courier
        self.aggregator = aggregator
        self.api = api
        self.flow_uuids = flow_uuids or {}
        self.config = config
        self.plan = plan_conversations(scripts, config, salt)
        self.stats = WorkloadStats(conversations=len(self.plan), urns=[c.urn for _, c in self.plan])
        self._inbox: dict[str, asyncio.Queue[Delivery]] = defaultdict(asyncio.Queue)
        self._stop_polling = asyncio.Event()
        self._after_seq = 0

    # -- the aggregator's side: one poller dispatches every MT to the contact it was sent to -----------
    async def _poll_aggregator(self) -> None:
        urns = set(self.stats.urns)
        while not self._stop_polling.is_set():
            try:
                batch = await asyncio.to_thread(self.aggregator.records, self._after_seq)
            except httpx.HTTPError:
                batch = []
            for delivery in batch:
                self._after_seq = max(self._after_seq, delivery.seq)
                to = delivery.to if delivery.to.startswith("tel:") else f"tel:{delivery.to}"
                if to in urns:
                    self.stats.deliveries += 1
                    self._inbox[to].put_nowait(delivery)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_polling.wait(), timeout=0.1)

    async def _await_replies(self, urn: str, count: int) -> bool:
        deadline = time.monotonic() + self.config.reply_timeout
        got = 0
        while got < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._inbox[urn].get(), timeout=remaining)
            except TimeoutError:
                return False
            got += 1
        return True

    # -- one contact ----------------------------------------------------------------------------------
    def _flow(self, conversation: Conversation) -> str:
        return self.flow_uuids.get(conversation.script.flow, conversation.script.flow)

    async def _send_mo(self, conversation: Conversation, step: int, expect: list[str]) -> str:
        """Send one MO; returns the completion type."""
        text = conversation.sent[-1]
        op = self.history.invoke(
            conversation.id,
            "mo",
            {
                "urn": conversation.urn,
                "text": text,
                "conversation": conversation.id,
                "step": step,
                "expect": expect,
                "flow": self._flow(conversation),
                "final": step == len(conversation.script.steps) - 1,
            },
        )
        try:
            received = await self.courier.receive(conversation.urn.removeprefix("tel:"), text)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            self.history.complete(op, INFO, {"error": type(exc).__name__})
            self.stats.mo_info += 1
            return INFO
        if received.accepted:
            self.history.complete(op, OK, {"msg_uuid": received.msg_uuid, "status": received.status})
            self.stats.mo_ok += 1
            return OK
        self.history.complete(op, FAIL, {"status": received.status, "body": received.body[:200]})
        self.stats.mo_fail += 1
        return FAIL

    async def _api_start(self, conversation: Conversation, expect: list[str]) -> bool:
        flow_uuid = self.flow_uuids.get(conversation.script.flow)
        op = self.history.invoke(
            conversation.id,
            "start",
            {
                "flow": flow_uuid,
                "urns": [conversation.urn],
                "conversation": conversation.id,
                "step": 0,
                "expect": expect,
                "final": len(conversation.script.steps) == 1,
            },
        )
        assert self.api is not None
        try:
            await asyncio.to_thread(self.api.start_flow, str(flow_uuid), [conversation.urn])
        except ApiError as exc:
            self.history.complete(op, FAIL if exc.status < 500 else INFO, {"status": exc.status})
            return False
        except httpx.HTTPError as exc:
            self.history.complete(op, INFO, {"error": type(exc).__name__})
            return False
        self.history.complete(op, OK, {})
        self.stats.starts += 1
        return True

    async def _converse(self, conversation: Conversation) -> None:
        rng = random.Random(f"{self.config.seed}-{conversation.id}")
        steps = conversation.script.steps
        first = 0
        if conversation.api_start and self.api is not None and conversation.script.flow in self.flow_uuids:
            expect = [render(e, conversation.values, []) for e in steps[0].expect]
            if not await self._api_start(conversation, expect):
                return
            if not await self._await_replies(conversation.urn, len(expect)):
                return
            # Step 0 (the keyword) was replaced by the API start: keep the step numbering of `sent`.
            conversation.sent.append("")
            first = 1
        for index in range(first, len(steps)):
            step = steps[index]
            answered = False
            for _attempt in range(1 + self.config.resend_attempts):
                base = render(step.send, conversation.values, conversation.sent)
                text = f"{base} {new_token(rng)}"
                conversation.sent.append(text)
                expect = [render(e, conversation.values, conversation.sent) for e in step.expect]
                outcome = await self._send_mo(conversation, index, expect)
                if outcome == FAIL:
                    conversation.sent.pop()
                    await asyncio.sleep(1.0)
                    continue
                if await self._await_replies(conversation.urn, len(expect)):
                    answered = True
                    break
                conversation.sent.pop()
                # No reply: a person would say it again (a new text, so courier's de-dup does not eat it).
            if not answered:
                return
            await asyncio.sleep(self.config.think_time)
        conversation.completed = True
        self.stats.completed += 1

    async def run(self, progress: Progress | None = None) -> WorkloadStats:
        poller = asyncio.create_task(self._poll_aggregator())
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        try:
            for offset, conversation in self.plan:
                delay = started + offset - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._converse(conversation)))
                if progress:
                    progress(self.stats)
            # Every conversation is bounded by its steps × attempts × reply_timeout; wait for them all.
            bound = (
                max(len(c.script.steps) for _, c in self.plan)
                * (1 + self.config.resend_attempts)
                * (self.config.reply_timeout + 2)
            )
            if tasks:
                await asyncio.wait(tasks, timeout=bound)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._stop_polling.set()
            await poller
        return self.stats
