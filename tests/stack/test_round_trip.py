"""One MO through the whole stack: load balancer → courier → mailroom's flow → courier → the phone network,
and the network's delivered callback back into msgs_msg."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from stack_support import Database, Phone, poll

from resilience.cli import main
from resilience.cluster import Cluster

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

QUICK_REPLY = "Resilience lab: this number runs a short registration survey. Send JOIN to register."


def test_mo_gets_the_flows_reply_and_its_delivered_status(
    cluster: Cluster, phone: Callable[[], Phone], database: Database
) -> None:
    handset = phone()
    received = handset.send("info")
    assert received.accepted, received

    (reply,) = handset.replies(1)
    assert reply.text == QUICK_REPLY

    def settled() -> list[dict[str, object]] | None:
        rows = database.msgs([handset.urn])
        outgoing = [r for r in rows if r["direction"] == "O"]
        return rows if outgoing and all(r["status"] == "D" for r in outgoing) else None

    rows = poll("the reply's delivered status (D) in msgs_msg", settled, timeout=20)
    inbound = [r for r in rows if r["direction"] == "I"]
    outbound = [r for r in rows if r["direction"] == "O"]
    assert [(r["uuid"], r["status"]) for r in inbound] == [(received.msg_uuid, "H")]
    # The aggregator was sent the row's id ({{id}}), so the delivered callback could find it.
    assert [(str(r["id"]), r["text"]) for r in outbound] == [(reply.msg_id, QUICK_REPLY)]
    assert outbound[0]["sent_on"] is not None


def test_smoke_command_passes(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke", "--run", cluster.run.run_id]) == 0
    out = capsys.readouterr().out
    assert "MO -> flow reply at the aggregator" in out
    assert "delivered status (D) landed in msgs_msg: ok" in out
