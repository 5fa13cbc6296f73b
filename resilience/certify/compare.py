"""The certification's decision: correctness first, then timings by a stated statistical rule.

Correctness decides on its own: a finding refused on the candidate that no run on the current version
refused, an experiment whose decision turns false, an upgrade or rollback run that is not valid: each is a
regression, from one run. Timings are noisy on a shared machine, so they decide only over repeats: per
experiment and figure, the difference of the two versions' medians with a bootstrap interval
(resampling each version's runs, `confidence` two-sided). A regression is a difference whose whole interval
is beyond the threshold; a median difference beyond it whose interval reaches back under it is
inconclusive (noise could explain it), and so is any difference beyond it with fewer than `min_repeats`
runs a version (one run against one run decides nothing).
"""

from __future__ import annotations

import enum
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from resilience.certify.plan import Thresholds

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20261203  # fixed: the same runs always give the same interval


class Decision(enum.Enum):
    CERTIFIED = "certified"
    REGRESSION = "regression"
    INCONCLUSIVE = "inconclusive"
    INTERRUPTED = "interrupted"


class Phase(enum.Enum):
    BASELINE = "baseline"
    UPGRADE = "upgrade"
    CANDIDATE = "candidate"
    ROLLBACK = "rollback"


@dataclass
class RunRecord:
    """What the certification keeps of one experiment run (from an Outcome, or made by hand in tests)."""

    phase: str  # Phase value
    experiment: str
    seed: int
    validity: str  # "true" / "false" / "unknown": the experiment's decision
    refused: dict[str, int] = field(default_factory=dict)  # finding key -> how many refused (decision.new)
    reasons: list[str] = field(default_factory=list)
    latency_s: float | None = None  # MO→reply under the fault, at the plan's percentile (p95 by default)
    rto_s: float | None = None
    throughput_per_s: float | None = None
    seconds: float = 0.0
    run_dir: str = ""

    @property
    def version(self) -> str:
        return "current" if self.phase in (Phase.BASELINE.value, Phase.ROLLBACK.value) else "candidate"


METRICS = {
    # figure: (how the candidate's growth is measured, the threshold's field, a word for it)
    "latency_s": ("relative", "latency_growth_pct", "MO→reply latency"),
    "rto_s": ("absolute", "rto_growth_s", "longest outage (RTO)"),
    "throughput_per_s": ("drop", "throughput_drop_pct", "acknowledged MOs per second"),
}


@dataclass
class TimingComparison:
    experiment: str
    metric: str
    current: list[float]
    candidate: list[float]
    unit: str  # "%" or "s"
    threshold: float
    change: float | None  # candidate vs current, in `unit`, positive = worse
    low: float | None  # the bootstrap interval of `change`
    high: float | None
    verdict: str  # "ok", "regression", "inconclusive"
    within_noise: bool
    note: str = ""


@dataclass
class ExperimentComparison:
    experiment: str
    current: list[RunRecord]
    candidate: list[RunRecord]
    new_findings: dict[str, int]  # refused on the candidate, never on the current version
    gone_findings: dict[str, int]  # refused on the current version, never on the candidate
    timings: list[TimingComparison]
    verdict: str  # "ok", "regression", "inconclusive": correctness and timings together
    reasons: list[str]
    correctness: str = "ok"  # the verdict on correctness alone


@dataclass
class Certification:
    decision: Decision
    reasons: list[str]
    experiments: list[ExperimentComparison]
    upgrade: list[RunRecord]
    rollback: list[RunRecord]
    interrupted: str = ""  # "SIGINT" / "SIGTERM" when the run was stopped

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision"] = self.decision.value
        return data


def median_change(kind: str, current: Sequence[float], candidate: Sequence[float]) -> float | None:
    """How much worse the candidate's median is: % growth, seconds more, or % drop (positive = worse)."""
    before, after = statistics.median(current), statistics.median(candidate)
    if kind == "absolute":
        return after - before
    if before <= 0:
        return None
    if kind == "relative":
        return (after - before) / before * 100
    return (before - after) / before * 100


def bootstrap_interval(
    kind: str, current: Sequence[float], candidate: Sequence[float], confidence: float
) -> tuple[float, float] | None:
    """The `confidence` interval of median_change, resampling each version's runs with replacement."""
    rng = random.Random(BOOTSTRAP_SEED)
    changes: list[float] = []
    for _ in range(BOOTSTRAP_SAMPLES):
        change = median_change(kind, rng.choices(current, k=len(current)), rng.choices(candidate, k=len(candidate)))
        if change is not None:
            changes.append(change)
    if not changes:
        return None
    changes.sort()
    tail = (1 - confidence) / 2
    low = changes[int(tail * (len(changes) - 1))]
    high = changes[round((1 - tail) * (len(changes) - 1))]
    return low, high


def compare_timing(
    experiment: str, metric: str, current: list[float], candidate: list[float], thresholds: Thresholds
) -> TimingComparison | None:
    if not current or not candidate:
        return None
    kind, threshold_field, _word = METRICS[metric]
    threshold = float(getattr(thresholds, threshold_field))
    unit = "s" if kind == "absolute" else "%"
    change = median_change(kind, current, candidate)
    if change is None:
        return TimingComparison(
            experiment,
            metric,
            current,
            candidate,
            unit,
            threshold,
            None,
            None,
            None,
            "ok",
            True,
            "the current version's median is 0: no relative change to measure",
        )
    repeats = min(len(current), len(candidate))
    interval = bootstrap_interval(kind, current, candidate, thresholds.confidence)
    low, high = interval if interval is not None else (change, change)
    within_noise = low <= 0 <= high
    note = ""
    if change <= threshold:
        verdict = "ok"
        if repeats < thresholds.min_repeats:
            note = f"{repeats} run(s) a version: too few to test, within the threshold"
    elif repeats < thresholds.min_repeats:
        verdict = "inconclusive"
        note = f"over the threshold on {repeats} run(s) a version; at least {thresholds.min_repeats} decide"
    elif low > threshold:
        verdict = "regression"
        note = "the whole interval is over the threshold"
    else:
        verdict = "inconclusive"
        note = "the median is over the threshold, but the interval reaches back under it (noise)"
    return TimingComparison(
        experiment,
        metric,
        current,
        candidate,
        unit,
        threshold,
        round(change, 3),
        round(low, 3),
        round(high, 3),
        verdict,
        within_noise,
        note,
    )


def _refused(records: list[RunRecord]) -> Counter[str]:
    total: Counter[str] = Counter()
    for record in records:
        total.update(record.refused)
    return total


def compare_experiment(
    name: str, current: list[RunRecord], candidate: list[RunRecord], thresholds: Thresholds
) -> ExperimentComparison:
    before, after = _refused(current), _refused(candidate)
    new = {key: n for key, n in sorted(after.items()) if key not in before}
    gone = {key: n for key, n in sorted(before.items()) if key not in after}
    reasons: list[str] = []
    verdict = "ok"
    for key, count in new.items():
        seeds = sorted({r.seed for r in candidate if key in r.refused})
        reasons.append(
            f"{name}: {key} refused on the candidate ({count} in seed(s) {seeds}), never on the current version"
        )
        verdict = "regression"
    current_valid = all(r.validity == "true" for r in current) and bool(current)
    for record in candidate:
        if record.validity == "false" and current_valid and not new:
            reasons.append(
                f"{name}: the decision turned false on the candidate (seed {record.seed}): "
                + "; ".join(record.reasons[:3])
            )
            verdict = "regression"
    if verdict == "ok":
        undecided = [r.seed for r in candidate if r.validity == "unknown"]
        if undecided and all(r.validity != "unknown" for r in current):
            reasons.append(f"{name}: undecided on the candidate (seed(s) {undecided}), decided on the current version")
            verdict = "inconclusive"
    correctness = verdict
    timings: list[TimingComparison] = []
    for metric in METRICS:
        values_before = [getattr(r, metric) for r in current if getattr(r, metric) is not None]
        values_after = [getattr(r, metric) for r in candidate if getattr(r, metric) is not None]
        comparison = compare_timing(name, metric, values_before, values_after, thresholds)
        if comparison is None:
            continue
        timings.append(comparison)
        if comparison.verdict == "ok":
            continue
        word = METRICS[metric][2]
        if metric == "latency_s":
            word = f"p{thresholds.latency_percentile} {word}"
        reasons.append(
            f"{name}: {word} {comparison.change:+.1f} {comparison.unit} "
            f"(interval {comparison.low:+.1f}..{comparison.high:+.1f}) "
            f"vs threshold {comparison.threshold:g} {comparison.unit}: {comparison.verdict} ({comparison.note})"
        )
        if comparison.verdict == "regression":
            verdict = "regression"
        elif verdict == "ok":
            verdict = "inconclusive"
    return ExperimentComparison(name, current, candidate, new, gone, timings, verdict, reasons, correctness)


def _judge_roll(phase: str, records: list[RunRecord]) -> tuple[str, list[str]]:
    verdict, reasons = "ok", []
    for record in records:
        if record.validity == "false":
            found = ", ".join(f"{key} ×{n}" for key, n in sorted(record.refused.items())) or "a bound"
            first = f" (first: {record.reasons[0]})" if record.reasons else ""
            reasons.append(f"the rolling {phase} under load is invalid: {found}{first}")
            verdict = "regression"
        elif record.validity == "unknown" and verdict == "ok":
            reasons.append(f"the rolling {phase} under load could not be decided: " + "; ".join(record.reasons[:3]))
            verdict = "inconclusive"
    return verdict, reasons


def certify_runs(
    experiments: Sequence[str],
    records: list[RunRecord],
    thresholds: Thresholds,
    interrupted: str = "",
    crashed: str = "",
) -> Certification:
    """The decision over every run the certification made (in any order). `crashed`: why a run could not
    finish (the runs after it were not made): inconclusive, unless what was made already shows a regression."""
    by_phase: dict[str, list[RunRecord]] = {phase.value: [] for phase in Phase}
    for record in records:
        by_phase[record.phase].append(record)
    comparisons = []
    for name in experiments:
        current = [r for r in by_phase[Phase.BASELINE.value] if r.experiment == name]
        candidate = [r for r in by_phase[Phase.CANDIDATE.value] if r.experiment == name]
        if current or candidate:
            comparisons.append(compare_experiment(name, current, candidate, thresholds))
    upgrade_verdict, upgrade_reasons = _judge_roll("upgrade", by_phase[Phase.UPGRADE.value])
    rollback_verdict, rollback_reasons = _judge_roll("rollback", by_phase[Phase.ROLLBACK.value])
    verdicts = [upgrade_verdict, rollback_verdict, *(c.verdict for c in comparisons)]
    reasons = upgrade_reasons + [line for c in comparisons for line in c.reasons] + rollback_reasons
    if crashed:
        verdicts.append("inconclusive")
        reasons.append(crashed)
    if interrupted:
        decision = Decision.INTERRUPTED
        reasons.insert(0, f"interrupted by {interrupted}: the certification is incomplete and decides nothing")
    elif "regression" in verdicts:
        decision = Decision.REGRESSION
    elif "inconclusive" in verdicts:
        decision = Decision.INCONCLUSIVE
    else:
        decision = Decision.CERTIFIED
    return Certification(
        decision, reasons, comparisons, by_phase[Phase.UPGRADE.value], by_phase[Phase.ROLLBACK.value], interrupted
    )


def record_of(outcome: Any, phase: Phase, seed: int, percentile: int = 95) -> RunRecord:
    """A run's record from an experiment Outcome: its decision, its refused findings and its three figures
    (the latency at `percentile`: 50, 95 or 99)."""
    refused: Counter[str] = Counter()
    for judgement in outcome.decision.new:
        refused[judgement.finding.key] += max(1, judgement.finding.count)
    results = {result.name: result for result in outcome.results}
    latency_s: float | None = None
    latency = results.get("latency")
    if latency is not None:
        phases = latency.details.get("phases", {})
        # Under the fault when the run had one; a run without faults has only "before".
        for name in ("during", "before"):
            value = (phases.get(name) or {}).get(f"p{percentile}_s")
            if value is not None:
                latency_s = float(value)
                break
    rto: float | None = None
    availability = results.get("availability")
    if availability is not None and availability.counts.get("faults"):
        rto = float(availability.counts.get("max_unavailable_s", 0.0))
    duration = outcome.experiment.workload.duration
    throughput = round(outcome.stats.mo_ok / duration, 3) if duration else None
    return RunRecord(
        phase=phase.value,
        experiment=outcome.experiment.name,
        seed=seed,
        validity=outcome.decision.validity.value,
        refused=dict(refused),
        reasons=list(outcome.decision.reasons()),
        latency_s=latency_s,
        rto_s=rto,
        throughput_per_s=throughput,
        seconds=round(outcome.seconds, 1),
        run_dir=str(outcome.run_dir),
    )
