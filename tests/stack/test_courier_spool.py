"""Courier's `spool` switch on the stack, during a Postgres outage cut at Toxiproxy.

On (v9's behaviour): every MO is still acknowledged, written to the spool, and lands in msgs_msg once the
flusher runs after Postgres is back. Off: the same MOs are answered 400 and nothing of them survives.
docs/standin/courier.md, "Inbound" and "Switches".
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from stack_support import TEST_URN_PREFIX, Database, Toxiproxy, poll, switches

from resilience.cluster import Cluster
from resilience.rapidpro.courier import Received, parse_receive

pytestmark = [pytest.mark.stack, pytest.mark.outage, pytest.mark.timeout(300)]

MOS = 200
FLUSH_S = 2.0  # spool_flush_s: v9 flushes every 30 s; shortened so the test need not wait that long
SPOOL_MSGS = "/var/spool/courier/msgs"


@pytest.fixture
def toxiproxy(cluster: Cluster) -> Iterator[Toxiproxy]:
    proxy = Toxiproxy(cluster)
    try:
        yield proxy
    finally:
        if not proxy.enabled("postgres"):
            proxy.set_enabled("postgres", True)
        proxy.close()


def courier_nodes(cluster: Cluster) -> list[str]:
    return cluster.run.nodes_of("courier")


def warm_channel_caches(cluster: Cluster) -> None:
    """One MO straight to each courier (not through the balancer): its channel is cached for 60 s,
    so during the outage the channel lookup succeeds and only the contact and message writes fail."""
    for node in courier_nodes(cluster):
        url = cluster.run.url(node, 8080, f"/c/ex/{cluster.seed.channel_uuid}/receive")
        number = f"{TEST_URN_PREFIX}{secrets.randbelow(10**8):08d}"
        received = parse_receive(httpx.post(url, data={"from": number, "text": f"warm {node}"}, timeout=10))
        assert received.accepted, f"{node} did not accept the warming MO: {received}"


def send_mos(cluster: Cluster, tag: str) -> tuple[list[str], list[Received]]:
    """MOS messages from MOS new contacts through the load balancer, 20 at a time."""
    numbers = [f"{TEST_URN_PREFIX}{secrets.randbelow(10**8):08d}" for _ in range(MOS)]
    url = f"{cluster.lb_url}/c/ex/{cluster.seed.channel_uuid}/receive"

    async def send_all() -> list[Received]:
        limit = asyncio.Semaphore(20)
        async with httpx.AsyncClient(timeout=15) as client:

            async def send(number: str, i: int) -> Received:
                async with limit:
                    return parse_receive(await client.post(url, data={"from": number, "text": f"{tag} {i}"}))

            return list(await asyncio.gather(*(send(n, i) for i, n in enumerate(numbers))))

    return [f"tel:{n}" for n in numbers], asyncio.run(send_all())


def spool_files(cluster: Cluster) -> int:
    total = 0
    for node in courier_nodes(cluster):
        code, out = cluster.run.exec(node, ["sh", "-c", f"ls -1 {SPOOL_MSGS} | wc -l"])
        assert code == 0, out
        total += int(out.strip())
    return total


def assert_stack_serves_again(cluster: Cluster) -> None:
    """A few round trips, so both couriers and both mailrooms behind the balancer are seen to work again."""
    for _ in range(4):
        assert cluster.round_trip(timeout=40) > 0


def test_spool_keeps_mos_through_a_postgres_outage(
    cluster: Cluster, toxiproxy: Toxiproxy, database: Database
) -> None:
    with switches(cluster, {"courier": {"spool_flush_s": FLUSH_S}}):
        assert spool_files(cluster) == 0
        warm_channel_caches(cluster)
        with toxiproxy.cut("postgres"):
            urns, answers = send_mos(cluster, f"spooled {secrets.token_hex(3)}")
            assert [a.status for a in answers] == [200] * MOS
            assert all(a.msg_uuid for a in answers)
            # Acknowledged, yet only on the couriers' disks: Postgres has none of them.
            assert spool_files(cluster) == MOS
            assert database.msgs(urns) == []
        acknowledged = sorted(str(a.msg_uuid) for a in answers)

        def landed() -> list[dict[str, object]] | None:
            rows = database.msgs_by_uuid(acknowledged)
            return rows if len(rows) >= MOS else None

        rows = poll(f"the {MOS} spooled MOs in msgs_msg", landed, timeout=60, interval=0.5)
        assert sorted(str(r["uuid"]) for r in rows) == acknowledged  # each once, none lost
        assert all(r["direction"] == "I" and r["sent_on"] is None for r in rows)  # v9 spools no received date
        poll("the spool emptied", lambda: spool_files(cluster) == 0, timeout=30)
        # The replayed rows are handed to mailroom like any other: none stays pending.
        poll("every replayed MO handled", lambda: all(r["status"] == "H" for r in database.msgs(urns)), 60, 0.5)
    assert_stack_serves_again(cluster)


def test_without_spool_the_same_mos_are_refused_and_lost(
    cluster: Cluster, toxiproxy: Toxiproxy, database: Database
) -> None:
    with switches(cluster, {"courier": {"spool": False, "spool_flush_s": FLUSH_S}}):
        warm_channel_caches(cluster)
        with toxiproxy.cut("postgres"):
            urns, answers = send_mos(cluster, f"unspooled {secrets.token_hex(3)}")
            assert [a.status for a in answers] == [400] * MOS
            assert not any(a.msg_uuid for a in answers)
            assert spool_files(cluster) == 0
        # Several flusher periods after Postgres is back: nothing was kept anywhere to replay.
        time.sleep(3 * FLUSH_S)
        assert_stack_serves_again(cluster)
        assert database.msgs(urns) == []
        assert spool_files(cluster) == 0
