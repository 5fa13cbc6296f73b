"""journal.json and results.json: round trips, located errors, faults from the history, findings."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from resilience.checks.result import CheckResult, Validity
from resilience.history import FAIL, NEMESIS, OK, History
from resilience.report import (
    Finding,
    Journal,
    JournalError,
    Probe,
    ResultsError,
    TopologyInfo,
    Versions,
    create_run_dir,
    derive_findings,
    faults_from_history,
    read_journal,
    read_results,
    run_dir_name,
    write_journal,
    write_results,
)

NS = 1_000_000_000


def result(name: str = "inbound", valid: Validity = Validity.FALSE) -> CheckResult:
    return CheckResult(
        name=name,
        valid=valid,
        counts={"lost": 2, "success_ratio": 0.5, "ok": 10},
        examples=[{"kind": "lost", "urn": "tel:+250780000001", "op": 4}, {"kind": "duplicated", "op": 9}],
        details={"per_second": [[0, 1, 0, 0]], "quiescent": True},
    )


def full_journal() -> Journal:
    return Journal(
        experiment="kill-courier",
        run_id="r1",
        description="SIGKILL one courier",
        expectations="no loss",
        seed=42,
        topology=TopologyInfo("standin-ha", "harness/topologies/standin-ha.yaml", ["courier-1"]),
        versions=Versions(images={"node": "resilience-node:abc"}),
        started_at="2024-05-01T12:00:00Z",
        finished_at="2024-05-01T12:01:00Z",
        wall_time_s=60.0,
        workload={"rate": 2.0, "duration": 30},
        steady_state_before={"healthy": Probe(True, "14/14")},
        steady_state_after={"healthy": Probe(False, "courier-1 down")},
        checks=[result()],
        verdict=Validity.FALSE,
        findings=[Finding("inbound: lost", known=False, detail="2 lost")],
    )


def test_journal_round_trip_keeps_every_field_and_the_counts_ints(tmp_path: Path) -> None:
    journal = full_journal()
    write_journal(tmp_path, journal)
    back = read_journal(tmp_path)
    assert back == journal
    assert type(back.checks[0].counts["lost"]) is int
    assert type(back.checks[0].counts["success_ratio"]) is float
    assert back.verdict is Validity.FALSE
    assert json.loads((tmp_path / "journal.json").read_text())["verdict"] == "false"


def test_journal_errors_name_the_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"journal\.json: no such file"):
        read_journal(tmp_path)
    path = tmp_path / "journal.json"
    path.write_text("[1, 2")
    with pytest.raises(JournalError, match="not JSON"):
        read_journal(tmp_path)
    path.write_text("[]")
    with pytest.raises(JournalError, match="expected a JSON object, got list"):
        read_journal(tmp_path)
    raw = full_journal().to_dict()
    raw["steady_state_after"]["healthy"]["ok"] = "yes"
    path.write_text(json.dumps(raw))
    with pytest.raises(JournalError, match=r"Expected `bool`, got `str` - at `\$\.steady_state_after\[\.\.\.\]\.ok`"):
        read_journal(tmp_path)
    raw = full_journal().to_dict()
    raw["checks"][0]["valid"] = "maybe"
    path.write_text(json.dumps(raw))
    with pytest.raises(JournalError, match=r"Invalid enum value 'maybe' - at `\$\.checks\[0\]\.valid`"):
        read_journal(tmp_path)
    raw = full_journal().to_dict()
    raw["journal_version"] = 99
    path.write_text(json.dumps(raw))
    with pytest.raises(JournalError, match="journal_version 99"):
        read_journal(tmp_path)
    raw = full_journal().to_dict()
    del raw["experiment"]
    path.write_text(json.dumps(raw))
    with pytest.raises(JournalError, match="missing required field `experiment`"):
        read_journal(tmp_path)


def test_results_round_trip(tmp_path: Path) -> None:
    checks = [result(), result("latency", Validity.TRUE)]
    write_results(tmp_path, checks, Validity.FALSE)
    back = read_results(tmp_path)
    assert back.checks == checks and back.verdict is Validity.FALSE and back.problems == []
    assert back.written_at is not None and back.written_at.endswith("Z")


def test_results_notes_a_verdict_the_checks_do_not_merge_to(tmp_path: Path) -> None:
    write_results(tmp_path, [result("latency", Validity.TRUE)], Validity.FALSE)
    assert read_results(tmp_path).problems == ["the recorded verdict is false but the checks merge to true"]


def test_results_errors(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"results\.json: no such file"):
        read_results(tmp_path)
    with pytest.raises(ResultsError, match="must be a Validity"):
        write_results(tmp_path, [], "false")  # type: ignore[arg-type]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"checks": [{"name": "x", "valid": "true", "examples": [{}] * 11}], "verdict": "true"}))
    with pytest.raises(ResultsError, match=r"11 examples; at most 10 are kept - at `\$\.checks\[0\]`"):
        read_results(tmp_path)
    path.write_text(json.dumps({"checks": [], "verdict": "true", "extra": 1}))
    with pytest.raises(ResultsError, match="unknown field `extra`"):
        read_results(tmp_path)
    path.write_text(
        json.dumps({"checks": [{"name": "x", "valid": "true", "counts": {"a": "many"}}], "verdict": "true"})
    )
    with pytest.raises(ResultsError, match=r"got `str` - at `\$\.checks\[0\]\.counts\[\.\.\.\]`"):
        read_results(tmp_path)


def test_results_refuse_values_json_cannot_hold(tmp_path: Path) -> None:
    bad = CheckResult("x", Validity.TRUE, details={"when": object()})
    with pytest.raises(ResultsError, match="not JSON-serialisable"):
        write_results(tmp_path, [bad], Validity.TRUE)


class Clock:
    def __init__(self) -> None:
        self.now = 100 * NS

    def __call__(self) -> int:
        return self.now

    def at(self, second: float) -> None:
        self.now = 100 * NS + int(second * NS)


def test_faults_from_history_pairs_inject_and_recover() -> None:
    clock = Clock()
    history = History(None, run_id="r", clock=clock)
    op = history.invoke(NEMESIS, "inject", {"fault": "postgres-failover", "id": "f1", "targets": ["postgres-1"]})
    clock.at(0.5)
    history.complete(op, OK, {"id": "f1", "promoted": "postgres-2"})
    clock.at(2.0)
    op = history.invoke(NEMESIS, "inject", {"fault": "kill", "id": 7, "targets": "courier-1"})
    history.complete(op, OK)
    clock.at(3.0)
    op = history.invoke(NEMESIS, "cleanup", {"note": "no window"})
    history.complete(op, OK)
    clock.at(4.0)
    op = history.invoke(NEMESIS, "recover", {"id": "f1"})
    clock.at(4.25)
    history.complete(op, OK, {"id": "f1", "promoted": "postgres-1"})
    clock.at(5.0)
    op = history.invoke(NEMESIS, "recover", {"id": 7})
    history.complete(op, FAIL, {"error": "container gone"})
    clock.at(6.0)
    op = history.invoke(NEMESIS, "inject", {"fault": "partition", "id": "f3", "targets": []})
    history.complete(op, FAIL, {"error": "iptables missing"})

    failover, kill, partition = faults_from_history(history.recorded())
    assert (failover.id, failover.kind, failover.targets) == ("f1", "postgres-failover", ["postgres-1"])
    assert failover.injected_s == 0.0 and failover.recovered_s == 4.25 and failover.duration_s == 4.25
    assert failover.facts == {"promoted": "postgres-2", "recover_promoted": "postgres-1"}
    assert failover.recovered and failover.injected_at and failover.recovered_at
    assert failover.label == "postgres-failover postgres-1"
    assert (kill.id, kill.targets, kill.injected_s) == ("7", ["courier-1"], 2.0)
    assert kill.recover_outcome == FAIL and kill.recovered_s is None and not kill.recovered
    assert kill.facts == {"error": "container gone"}
    assert partition.inject_outcome == FAIL and partition.recover_outcome is None
    assert partition.facts == {"error": "iptables missing"}


def test_derive_findings_groups_the_decision_by_kind_and_excuse() -> None:
    from resilience.checks.model import view_of
    from resilience.checks.result import Finding
    from resilience.checks.synthetic import WorldBuilder
    from resilience.verdict import Allowance, decide
    from resilience.verdict.policy import make_policy

    world = WorldBuilder()
    world.advance(10)
    world.inject("kill", "f1", ["courier-1"])
    world.advance(5)
    world.recover("f1", "kill")
    world.advance(30)
    lost = [Finding("outbound", "lost", Validity.FALSE, at, op=n) for n, at in enumerate((11.0, 12.0, 44.0))]
    outbound = CheckResult.of_findings("outbound", lost, {"lost": 3}, [], {})
    logs = CheckResult.of_findings("logs", [Finding("logs", "no_data", Validity.UNKNOWN)], {}, [], {})
    policy = make_policy(
        [Allowance("outbound.lost", "kill courier-1", 2, "courier killed after the pop")], expected={"latency": "true"}
    )
    latency = CheckResult.of_findings("latency", [Finding("latency", "no_data", Validity.UNKNOWN)], {}, [], {})
    decision = decide(policy, [outbound, latency, logs], view_of(world.recorded()))
    findings = {(f.title, f.known): f for f in derive_findings(decision)}
    assert set(findings) == {
        ("latency: expected true, got unknown", False),
        ("outbound: lost", True),
        ("outbound: lost", False),
        ("logs: no data", False),
        ("latency: no data", False),
    }
    assert "courier killed after the pop" in findings[("outbound: lost", True)].detail
    assert "outside every allowance window" in findings[("outbound: lost", False)].detail


def test_run_dir_names(tmp_path: Path) -> None:
    when = dt.datetime(2024, 5, 1, 14, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert run_dir_name("kill courier/1", when) == "20240501-120005-kill-courier-1"
    assert run_dir_name("///", when) == "20240501-120005-experiment"
    first = create_run_dir(tmp_path, "kill", when)
    second = create_run_dir(tmp_path, "kill", when)
    assert first.name == "20240501-120005-kill" and second.name == "20240501-120005-kill-2"
    assert (first / "logs").is_dir() and (second / "logs").is_dir()
