"""The certification's decision (resilience/certify/compare.py) on hand-made runs: correctness decides alone,
timings only over repeats and by the stated rule; and the phases' order, progress and ^C/SIGTERM handling
(resilience/certify/run.py) with a world that runs nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from resilience.certify.compare import (
    Decision,
    Phase,
    RunRecord,
    bootstrap_interval,
    certify_runs,
    compare_timing,
    record_of,
)
from resilience.certify.plan import Plan, Thresholds, parse_plan
from resilience.certify.run import CertificationInterrupted, Step, certify, plan_steps, progress_line
from resilience.checks import Validity
from resilience.cluster import ROOT
from resilience.experiment import Experiment
from resilience.interrupts import Terminated
from resilience.workload.runner import WorkloadConfig

THRESHOLDS = Thresholds(latency_growth_pct=50, rto_growth_s=5, throughput_drop_pct=10, min_repeats=3)
LATENCIES = (1.0, 1.1, 0.9, 1.05, 0.95)


def run(
    phase: Phase,
    seed: int,
    latency: float = 1.0,
    rto: float | None = 3.0,
    throughput: float = 4.0,
    validity: str = "true",
    refused: dict[str, int] | None = None,
    experiment: str = "kill-courier",
) -> RunRecord:
    return RunRecord(phase.value, experiment, seed, validity, refused or {}, [], latency, rto, throughput)


def rolls(upgrade: str = "true", rollback: str = "true") -> list[RunRecord]:
    return [
        run(Phase.UPGRADE, 1, validity=upgrade, experiment="certify-upgrade"),
        run(Phase.ROLLBACK, 1, validity=rollback, experiment="certify-rollback"),
    ]


def clean(seeds: int = 3, candidate_latency: tuple[float, ...] = LATENCIES) -> list[RunRecord]:
    baseline = [run(Phase.BASELINE, s, latency=LATENCIES[s]) for s in range(seeds)]
    candidate = [run(Phase.CANDIDATE, s, latency=candidate_latency[s]) for s in range(seeds)]
    return baseline + candidate + rolls()


def test_a_clean_candidate_is_certified() -> None:
    certification = certify_runs(["kill-courier"], clean(), THRESHOLDS)
    assert certification.decision is Decision.CERTIFIED, certification.reasons
    (comparison,) = certification.experiments
    assert comparison.verdict == "ok" and not comparison.new_findings
    latency = next(t for t in comparison.timings if t.metric == "latency_s")
    assert latency.verdict == "ok" and latency.within_noise and latency.change == 0.0


def test_a_finding_new_in_the_candidate_is_a_regression_from_one_run() -> None:
    records = clean(seeds=1)
    records[1] = run(Phase.CANDIDATE, 0, validity="false", refused={"inbound.lost": 7})
    certification = certify_runs(["kill-courier"], records, THRESHOLDS)
    assert certification.decision is Decision.REGRESSION
    assert certification.reasons == [
        "kill-courier: inbound.lost refused on the candidate (7 in seed(s) [0]), never on the current version"
    ]
    assert certification.experiments[0].new_findings == {"inbound.lost": 7}


def test_a_finding_gone_in_the_candidate_is_reported_and_a_shared_one_is_not_new() -> None:
    records = clean()
    records[0] = run(Phase.BASELINE, 0, validity="false", refused={"outbound.duplicated": 1, "inbound.lost": 1})
    records[3] = run(Phase.CANDIDATE, 0, validity="false", refused={"inbound.lost": 2})
    certification = certify_runs(["kill-courier"], records, THRESHOLDS)
    comparison = certification.experiments[0]
    assert comparison.gone_findings == {"outbound.duplicated": 1}
    assert comparison.new_findings == {}
    assert certification.decision is Decision.CERTIFIED


def test_an_invalid_upgrade_or_rollback_is_a_regression_and_an_undecided_one_inconclusive() -> None:
    records = clean()[:-2]
    invalid = records + rolls(rollback="false")
    invalid[-1].refused = {"inbound.lost": 3}
    certification = certify_runs(["kill-courier"], invalid, THRESHOLDS)
    assert certification.decision is Decision.REGRESSION
    assert any(r.startswith("the rolling rollback under load is invalid: inbound.lost") for r in certification.reasons)
    assert certify_runs(["kill-courier"], records + rolls(upgrade="unknown"), THRESHOLDS).decision is (
        Decision.INCONCLUSIVE
    )


def test_a_slower_candidate_is_refused_on_latency_not_on_correctness() -> None:
    slower = tuple(value * 2.5 for value in LATENCIES)
    certification = certify_runs(["kill-courier"], clean(seeds=5, candidate_latency=slower), THRESHOLDS)
    assert certification.decision is Decision.REGRESSION
    comparison = certification.experiments[0]
    assert comparison.new_findings == {}
    latency = next(t for t in comparison.timings if t.metric == "latency_s")
    assert latency.verdict == "regression" and latency.low is not None and latency.low > 50
    assert [r for r in certification.reasons if "refused" in r] == []
    assert any("p95 MO→reply latency +150.0 %" in r and "regression" in r for r in certification.reasons)


def test_one_run_against_one_run_is_never_a_timing_regression() -> None:
    records = [run(Phase.BASELINE, 0, latency=1.0), run(Phase.CANDIDATE, 0, latency=5.0), *rolls()]
    certification = certify_runs(["kill-courier"], records, THRESHOLDS)
    assert certification.decision is Decision.INCONCLUSIVE
    latency = next(t for t in certification.experiments[0].timings if t.metric == "latency_s")
    assert latency.verdict == "inconclusive" and "1 run(s) a version" in latency.note
    # Within the threshold on one run: not tested, and it does not block.
    small = [run(Phase.BASELINE, 0, latency=1.0), run(Phase.CANDIDATE, 0, latency=1.2), *rolls()]
    assert certify_runs(["kill-courier"], small, THRESHOLDS).decision is Decision.CERTIFIED


def outcome_with_latency(p95_s: float, p99_s: float) -> SimpleNamespace:
    """What record_of reads of an experiment's Outcome: a valid run whose latency checker saw these."""
    phases = {"before": {"p95_s": 0.3, "p99_s": 0.4}, "during": {"p95_s": p95_s, "p99_s": p99_s}}
    return SimpleNamespace(
        decision=SimpleNamespace(new=[], validity=Validity.TRUE, reasons=lambda: []),
        results=[SimpleNamespace(name="latency", details={"phases": phases}, counts={})],
        experiment=SimpleNamespace(name="pg-failover-async", workload=WorkloadConfig(rate=4, duration=42)),
        stats=SimpleNamespace(mo_ok=160),
        seconds=70.0,
        run_dir="runs/x",
    )


def test_a_failovers_spool_tail_in_the_p99_does_not_decide_at_the_default_p95() -> None:
    # Measured (docs/certify.md): pg-failover-async's p99 under the fault was 6.0, 0.5 and 8.3 s on the
    # current version and 0.6, 14.3 and 15.7 s on a candidate with the same images, as MOs courier spooled
    # in the sub-second outage were replied after the 30 s flush or not; the third run's p95 was 0.53 s
    # (the other p95s here are of that size, for the example). At p99 that clean candidate is inconclusive;
    # at the default p95 it is certified, and the percentile the plan chose is the one the reason names.
    p99s = {Phase.BASELINE: (6.0, 0.5, 8.3), Phase.CANDIDATE: (0.6, 14.3, 15.7)}
    p95s = {Phase.BASELINE: (0.48, 0.41, 0.5), Phase.CANDIDATE: (0.45, 0.52, 0.53)}

    def decide(percentile: int) -> tuple[Decision, list[str]]:
        records = [
            record_of(outcome_with_latency(p95s[phase][seed], p99s[phase][seed]), phase, seed, percentile)
            for phase in (Phase.BASELINE, Phase.CANDIDATE)
            for seed in range(3)
        ]
        thresholds = Thresholds(latency_percentile=percentile, rto_growth_s=5, min_repeats=3)
        certification = certify_runs(["pg-failover-async"], records + rolls(), thresholds)
        return certification.decision, certification.reasons

    decision, reasons = decide(99)
    assert decision is Decision.INCONCLUSIVE
    assert any("p99 MO→reply latency" in r and "noise" in r for r in reasons), reasons
    assert decide(95) == (Decision.CERTIFIED, [])


def test_noise_that_straddles_the_threshold_is_inconclusive() -> None:
    # Medians 1.0 -> 1.6 (+60 %, over 50 %), but the candidate's runs spread from 0.9 to 3: noise could explain it.
    noisy = (0.9, 1.6, 3.0, 1.0, 1.7)
    certification = certify_runs(["kill-courier"], clean(seeds=5, candidate_latency=noisy), THRESHOLDS)
    latency = next(t for t in certification.experiments[0].timings if t.metric == "latency_s")
    assert latency.change is not None and latency.change > 50
    assert latency.low is not None and latency.low < 50
    assert latency.verdict == "inconclusive"
    assert certification.decision is Decision.INCONCLUSIVE


def test_rto_and_throughput_use_their_own_units() -> None:
    rto = compare_timing("x", "rto_s", [3.0, 3.2, 2.9], [9.0, 9.5, 9.2], THRESHOLDS)
    assert rto is not None and rto.unit == "s" and rto.change == pytest.approx(6.2) and rto.verdict == "regression"
    drop = compare_timing("x", "throughput_per_s", [4.0, 4.0, 3.9], [3.9, 4.0, 3.95], THRESHOLDS)
    assert drop is not None and drop.unit == "%" and drop.verdict == "ok"
    assert bootstrap_interval("absolute", [1.0, 2.0], [1.0, 2.0], 0.9) == bootstrap_interval(
        "absolute", [1.0, 2.0], [1.0, 2.0], 0.9
    )


# -- the phases, with a world that runs nothing --------------------------------------------------------------


def plan() -> Plan:
    text = f"""\
version: 1
kind: certification
target: {{topology: {ROOT / "harness" / "topologies" / "standin-ha.yaml"}}}
current: {{version: "1.0"}}
candidate: {{version: "2.0", images: {{courier: next:1}}}}
experiments: [kill-courier]
seeds: [1, 2]
"""
    return parse_plan(text, "plan.yaml", ("kill-courier",))


def steps_of(the_plan: Plan) -> list[Step]:
    experiment = Experiment(
        "kill-courier", workload=WorkloadConfig(rate=4, duration=40), schedule="at 8 kill courier-1"
    )
    return plan_steps(the_plan, {"kill-courier": experiment})


class FakeWorld:
    """Records what it is asked; raises `interrupt` on the run numbered `stop_at`."""

    def __init__(self, stop_at: int | None = None, interrupt: type[KeyboardInterrupt] = KeyboardInterrupt) -> None:
        self.stop_at = stop_at
        self.interrupt = interrupt
        self.executed: list[Step] = []
        self.opened = False
        self.closed: list[bool] = []

    def open(self) -> None:
        self.opened = True

    def versions(self) -> dict[str, dict[str, str]]:
        return {"current": {"courier": "resilience-node = sha256:1"}, "candidate": {"courier": "next:1 = sha256:2"}}

    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        if len(self.executed) == self.stop_at:
            raise self.interrupt("stop")
        self.executed.append(step)
        return run(step.phase, step.seed, experiment=step.experiment.name)

    def close(self, interrupted: bool) -> None:
        self.closed.append(interrupted)


def test_the_phases_run_in_order_with_one_progress_line_each(tmp_path: Path) -> None:
    the_plan = plan()
    steps = steps_of(the_plan)
    world = FakeWorld()
    lines: list[str] = []
    result = certify(the_plan, steps, world, tmp_path, lines.append)
    assert [(s.phase.value, s.seed) for s in world.executed] == [
        ("baseline", 1),
        ("baseline", 2),
        ("upgrade", 1),
        ("candidate", 1),
        ("candidate", 2),
        ("rollback", 1),
    ]
    assert world.executed[2].experiment.schedule == "at 3 rolling-upgrade courier next:1 rollback=false as roll-courier"
    assert world.executed[5].experiment.schedule.startswith("at 3 rolling-upgrade courier resilience-node ")
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 6
    assert progress[3].startswith("[4/6] candidate kill-courier seed 1 on candidate (2.0) | elapsed ")
    assert "ETA" in progress[3]
    assert world.closed == [False]
    assert result.certification.decision is Decision.CERTIFIED


def test_eta_is_the_plans_estimate_scaled_by_the_pace_so_far() -> None:
    the_plan = plan()
    steps = steps_of(the_plan)
    estimate = sum(s.estimate_s for s in steps[1:])
    assert progress_line(1, steps, the_plan, 0.0).endswith(f"ETA {int(estimate) // 60}m{int(estimate) % 60:02d}s")
    # The first run took twice its estimate: the rest is expected to as well.
    twice = 2 * steps[0].estimate_s
    left = int(2 * estimate)
    assert progress_line(1, steps, the_plan, twice).endswith(f"ETA {left // 60}m{left % 60:02d}s")


@pytest.mark.parametrize(("interrupt", "name"), [(KeyboardInterrupt, "SIGINT"), (Terminated, "SIGTERM")])
def test_an_interrupted_certification_closes_the_world_and_says_so(
    tmp_path: Path, interrupt: type[KeyboardInterrupt], name: str
) -> None:
    the_plan = plan()
    world = FakeWorld(stop_at=3, interrupt=interrupt)
    lines: list[str] = []
    # Still an interrupt for whoever called it (a pytest session stops), carrying the partial certificate.
    with pytest.raises(CertificationInterrupted) as stopped:
        certify(the_plan, steps_of(the_plan), world, tmp_path, lines.append)
    assert isinstance(stopped.value, KeyboardInterrupt)
    result = stopped.value.run
    assert len(world.executed) == 3
    assert world.closed == [True]
    certification = result.certification
    assert certification.decision is Decision.INTERRUPTED and certification.interrupted == name
    assert certification.reasons[0].startswith(f"interrupted by {name}: the certification is incomplete")
    assert any("reverting faults and taking the cluster down" in line for line in lines)


class CrashingWorld(FakeWorld):
    def execute(self, step: Step, reports_root: Path) -> RunRecord:
        if len(self.executed) == 3:
            raise RuntimeError("docker refused: no space left on device")
        return super().execute(step, reports_root)


def test_a_run_that_crashes_makes_the_certification_inconclusive_and_says_which(tmp_path: Path) -> None:
    the_plan = plan()
    world = CrashingWorld()
    result = certify(the_plan, steps_of(the_plan), world, tmp_path, lambda _line: None)
    certification = result.certification
    assert world.closed == [False]
    assert certification.decision is Decision.INCONCLUSIVE
    assert certification.reasons[-1].startswith("candidate kill-courier seed 1 could not finish (RuntimeError: docker")
