"""Latency: MO invocation to first owed reply, by phase, with bounds both ways."""

from __future__ import annotations

import pytest

from resilience.checks import latency
from resilience.checks.latency import percentiles
from resilience.checks.model import NS_PER_S
from resilience.checks.result import Validity
from resilience.checks.synthetic import WorldBuilder
from resilience.history import INFO

REPLY = ("Hi!",)


def slowed_world() -> WorldBuilder:
    """10 MOs before a fault (0.42 s each), 10 during it (3.02 s), 10 after (0.42 s)."""
    world = WorldBuilder(reply_delay_s=0.4, request_s=0.02)
    sent = 0

    def send_ten() -> None:
        nonlocal sent
        for _ in range(10):
            sent += 1
            world.mo(f"tel:+2507800000{sent:02d}", f"hi {sent}", conversation=str(sent), step=0, expect=REPLY)
            world.advance(1)

    send_ten()
    world.inject("netem-delay", "slow", ["postgres-1"])
    world.reply_delay_ns = 3 * NS_PER_S
    send_ten()
    world.recover("slow")
    world.reply_delay_ns = int(0.4 * NS_PER_S)
    send_ten()
    return world


def test_percentiles_by_phase() -> None:
    world = slowed_world()
    result = latency.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE
    assert result.counts == {"samples": 30, "unanswered": 0, "before_count": 10, "during_count": 10, "after_count": 10}
    phases = result.details["phases"]
    assert phases["before"]["p50_s"] == pytest.approx(0.42) and phases["before"]["p99_s"] == pytest.approx(0.42)
    assert phases["during"]["p50_s"] == pytest.approx(3.02) and phases["during"]["max_s"] == pytest.approx(3.02)
    assert phases["after"]["p95_s"] == pytest.approx(0.42)
    assert result.details["faults"]["slow"]["count"] == 10


@pytest.mark.parametrize(("bound", "valid"), [(1.0, Validity.FALSE), (3.5, Validity.TRUE)])
def test_p99_bound_both_ways(bound: float, valid: Validity) -> None:
    world = slowed_world()
    result = latency.check(world.recorded(), world.snapshot(), {"max_p99_s": bound})
    assert result.valid is valid
    if valid is Validity.FALSE:
        assert result.examples == [
            {"kind": "too_slow", "phase": "during", "measure": "p99_s", "value": 3.02, "bound": bound}
        ]


def test_a_reply_that_never_came_is_unanswered() -> None:
    world = WorldBuilder()
    world.mo("tel:+250780000001", "hi", conversation="a", step=0, expect=REPLY)
    world.mo("tel:+250780000002", "hi 2", conversation="b", step=0, expect=REPLY)
    snapshot = world.snapshot()
    snapshot.aggregator.pop()
    result = latency.check(world.recorded(), snapshot)
    assert result.counts["samples"] == 1 and result.counts["unanswered"] == 1


def test_each_reply_is_claimed_once_in_time_order() -> None:
    # The same contact asks twice; the first MO's fate is unknown but it was taken. Its reply must not
    # be credited to the second MO, which gets its own (later) reply.
    world = WorldBuilder(reply_delay_s=5.0, request_s=0.0)
    urn = "tel:+250780000001"
    world.mo(urn, "hi 1", conversation="a", step=0, expect=REPLY, outcome=INFO, accepted=True)
    world.advance(2)
    world.mo(urn, "hi 2", conversation="a", step=0, expect=REPLY)
    result = latency.check(world.recorded(), world.snapshot())
    assert result.counts["samples"] == 1
    assert result.details["phases"]["before"]["p50_s"] == pytest.approx(5.0)


def test_no_samples_is_unknown() -> None:
    world = WorldBuilder()
    world.mo("tel:+250780000001", "hi", conversation="a", step=0, expect=())
    assert latency.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN


def test_percentiles_of_few_samples() -> None:
    assert percentiles([])["p99_s"] is None
    assert percentiles([2.0])["p50_s"] == 2.0
    figures = percentiles([float(n) for n in range(1, 101)])
    assert (figures["p50_s"], figures["p95_s"], figures["p99_s"], figures["max_s"]) == (50.5, 95.05, 99.01, 100.0)
