"""Availability and recovery, on a virtual clock so that every figure is exact."""

from __future__ import annotations

import pytest

from resilience.checks import availability
from resilience.checks.result import Validity
from resilience.checks.synthetic import WorldBuilder
from resilience.history import FAIL, OK, CompletionType

URN = "tel:+250780000001"


class Timeline:
    """MOs and faults at chosen seconds from the history's start (requests take no time)."""

    def __init__(self) -> None:
        self.world = WorldBuilder(request_s=0.0)
        self.origin = self.world.now
        self.sent = 0

    def at(self, second: float) -> None:
        self.world.now = self.origin + int(second * 1e9)

    def mo(self, second: float, outcome: CompletionType = OK) -> None:
        self.at(second)
        self.sent += 1
        self.world.mo(URN, f"m{self.sent}", conversation="c", step=self.sent, expect=(), outcome=outcome)

    def inject(self, second: float, kind: str = "kill", fault_id: str = "f1", outcome: CompletionType = OK) -> None:
        self.at(second)
        self.world.inject(kind, fault_id, ["courier-1"], outcome=outcome)

    def recover(self, second: float, fault_id: str = "f1") -> None:
        self.at(second)
        self.world.recover(fault_id)


def outage() -> Timeline:
    timeline = Timeline()
    for whole in range(5):
        timeline.mo(whole)
    timeline.inject(5)
    for during in (5.5, 6.5, 7.5):
        timeline.mo(during, FAIL)
    timeline.recover(8)
    timeline.mo(8.5, FAIL)
    for after in (9.5, 10.5, 11.5):
        timeline.mo(after)
    return timeline


def test_figures_of_one_outage() -> None:
    world = outage().world
    result = availability.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE  # no bound was set
    assert result.counts["ok"] == 8 and result.counts["fail"] == 4
    assert result.counts["success_ratio"] == pytest.approx(8 / 12, abs=1e-6)
    (fault,) = result.details["faults"]
    assert fault["fault"] == "kill" and fault["targets"] == ["courier-1"]
    assert (fault["start_s"], fault["end_s"]) == (5.0, 8.0)
    assert fault["first_ok_after_inject_s"] == 4.5
    assert fault["time_to_recover_s"] == 1.5
    assert (fault["unavailable_s"], fault["unavailable_from_s"]) == (4.5, 5.0)
    assert fault["ops_during"] == {"fail": 3} and fault["success_ratio_during"] == 0.0
    assert fault["never_recovered"] is False
    assert result.counts["max_time_to_recover_s"] == 1.5 and result.counts["max_unavailable_s"] == 4.5
    per_second = {row[0]: row[1:] for row in result.details["per_second"]}
    assert per_second[4] == [1, 0, 0] and per_second[5] == [0, 1, 0] and per_second[9] == [1, 0, 0]
    assert sorted(per_second) == list(range(12))


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"max_recovery_s": 1.0}, Validity.FALSE),
        ({"max_recovery_s": 2.0}, Validity.TRUE),
        ({"max_unavailable_s": 4.0}, Validity.FALSE),
        ({"max_unavailable_s": 5}, Validity.TRUE),
        ({"min_success_ratio": 0.7}, Validity.FALSE),
        ({"min_success_ratio": 0.6}, Validity.TRUE),
    ],
)
def test_bounds_both_ways(options: dict[str, float], valid: Validity) -> None:
    world = outage().world
    result = availability.check(world.recorded(), world.snapshot(), options)
    assert result.valid is valid
    assert (result.examples != []) == (valid is Validity.FALSE and "min_success_ratio" not in options)


def never_recovering() -> Timeline:
    timeline = Timeline()
    timeline.mo(0)
    timeline.inject(1)
    timeline.recover(2)
    for second in range(3, 13):
        timeline.mo(second, FAIL)
    return timeline


@pytest.mark.parametrize(
    ("options", "valid"),
    [({}, Validity.UNKNOWN), ({"max_recovery_s": 5.0}, Validity.FALSE), ({"max_recovery_s": 20.0}, Validity.UNKNOWN)],
)
def test_a_service_that_never_came_back(options: dict[str, float], valid: Validity) -> None:
    world = never_recovering().world
    result = availability.check(world.recorded(), world.snapshot(), options)
    assert result.valid is valid
    assert result.counts["never_recovered"] == 1
    assert result.details["faults"][0]["tried_after_recover_s"] == 10.0


def failover(kind: str = "postgres-failover", lost_text: str = "m4") -> tuple[WorldBuilder, str]:
    timeline = Timeline()
    for second in range(4):
        timeline.mo(second)
    timeline.inject(5, kind=kind)
    timeline.recover(6)
    timeline.mo(7)
    world = timeline.world
    # m4 is acknowledged at 3 s, within the 2 s before the failover that replication may not have shipped
    lost = next(m for m in world.msgs if m.text == lost_text)
    world.msgs.remove(lost)
    return world, lost.text


def test_a_failover_that_loses_acknowledged_messages_has_a_recovery_point() -> None:
    world, _ = failover()
    history, snapshot = world.recorded(), world.snapshot()
    result = availability.check(history, snapshot)
    assert result.valid is Validity.FALSE
    assert result.counts["failovers"] == 1 and result.counts["rpo_msgs"] == 1
    (fault,) = result.details["faults"]
    assert fault["rpo_msgs"] == 1 and fault["rpo_window_s"] == [3.0, 6.0]
    assert result.examples[0]["kind"] == "rpo"
    assert availability.check(history, snapshot, {"max_rpo_msgs": 1}).valid is Validity.TRUE
    snapshot.quiescent = False
    assert availability.check(history, snapshot).valid is Validity.UNKNOWN


def test_a_loss_long_before_a_failover_is_not_its_recovery_point() -> None:
    # Issue 8: RPO charged every earlier loss to the next failover.
    world, _ = failover(lost_text="m2")  # acknowledged at 1 s, 4 s before the failover
    result = availability.check(world.recorded(), world.snapshot())
    assert result.valid is Validity.TRUE and result.counts["rpo_msgs"] == 0
    widened = availability.check(world.recorded(), world.snapshot(), {"rpo_lookback_s": 5.0})
    assert widened.valid is Validity.FALSE and widened.counts["rpo_msgs"] == 1


def test_only_failovers_have_a_recovery_point() -> None:
    world, _ = failover(kind="kill")
    history, snapshot = world.recorded(), world.snapshot()
    result = availability.check(history, snapshot)
    assert result.valid is Validity.TRUE and result.counts["failovers"] == 0
    assert "rpo_msgs" not in result.details["faults"][0]
    assert availability.check(history, snapshot, {"failover_kinds": ["kill"]}).valid is Validity.FALSE


def test_losses_after_the_last_failover_are_not_its_recovery_point() -> None:
    timeline = Timeline()
    timeline.mo(0)
    timeline.inject(1, kind="redis-failover")
    timeline.recover(2)
    timeline.mo(3)
    world = timeline.world
    world.msgs.remove(next(m for m in world.msgs if m.text == "m2"))
    result = availability.check(world.recorded(), world.snapshot())
    assert result.counts["rpo_msgs"] == 0 and result.valid is Validity.TRUE


def test_a_fault_that_failed_to_inject_is_ignored_and_an_open_one_has_no_recovery_time() -> None:
    timeline = Timeline()
    timeline.mo(0)
    timeline.inject(1, fault_id="never", outcome=FAIL)
    timeline.inject(2, fault_id="open")
    timeline.mo(3)
    world = timeline.world
    result = availability.check(world.recorded(), world.snapshot())
    (fault,) = result.details["faults"]
    assert fault["id"] == "open" and fault["end_s"] is None
    assert fault["time_to_recover_s"] is None and fault["first_ok_after_inject_s"] == 1.0
    assert result.valid is Validity.TRUE


def test_no_mos_is_unknown() -> None:
    world = WorldBuilder()
    assert availability.check(world.recorded(), world.snapshot()).valid is Validity.UNKNOWN


def test_time_when_nobody_was_sending_is_not_an_outage() -> None:
    # A failover whose recovery (the old primary's rebuild) completes 40 s after the last MO: the fault's
    # outage ends with the last MO tried, not with the history (seen in pg-failover-async, counted as 45 s).
    timeline = Timeline()
    for second in range(5):
        timeline.mo(second)
    timeline.inject(5, kind="pg-failover")
    for second in (5.5, 6.0, 7.0, 8.0):
        timeline.mo(second)
    timeline.recover(48)
    result = availability.check(timeline.world.recorded(), timeline.world.snapshot())
    (fault,) = result.details["faults"]
    assert fault["unavailable_s"] <= 1.0 and not fault["never_recovered"]
    assert result.valid is Validity.TRUE
