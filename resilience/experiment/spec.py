"""What an experiment is (its workload, schedule and verdict policy) and what a run of it produced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from resilience.checks import CheckResult, Validity, merge
from resilience.cluster import ROOT
from resilience.verdict import power
from resilience.verdict.allowances import Allowance
from resilience.verdict.decision import Decision, Status
from resilience.verdict.policy import Policy, make_policy
from resilience.workload.runner import WorkloadConfig, WorkloadStats

SCRIPTS_DIR = ROOT / "fixtures" / "conversations"
REPORTS_DIR = ROOT / "reports"


class SteadyState(Enum):
    """What the runner does when the cluster fails its steady-state probe before the workload."""

    # Restart the app tier as an operator would, probe again, and refuse to run if it is still broken.
    ENFORCE = "enforce"
    # Only record the probe: for runs on a cluster broken on purpose (a planted stand-in bug drops the probe's
    # own message too), whose verdict is the point.
    RECORD = "record"


@dataclass
class Experiment:
    name: str
    description: str = ""
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    schedule: str = ""  # the fault schedule's text form ("at 10 kill courier-1; recover at 25"), "" = none
    # With schedule == "generate": the settings of a seeded random schedule (faults.schedule.GeneratorSettings).
    generator: dict[str, Any] = field(default_factory=dict)
    scripts: tuple[str, ...] = ("registration", "quick_reply")
    checker_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The exact verdict a checker must reach (its findings are then not judged one by one); rarely needed.
    expected: dict[str, Validity] = field(default_factory=dict)
    # What the experiment expects to observe, in words (shown first in the report).
    expectations: str = ""
    # Documented RapidPro weak spots, each bounded to its fault, a window and a maximum (resilience.verdict).
    allowances: tuple[Allowance, ...] = ()
    # "checker" or "checker.kind" -> why that checker cannot decide in this experiment.
    unknown: dict[str, str] = field(default_factory=dict)
    # fault kind -> recovery bounds over resilience/verdict/bounds.py's defaults.
    bounds: dict[str, dict[str, float]] = field(default_factory=dict)
    quiesce_timeout: float = 90.0
    # How the simulated aggregator answers during the run (rapidpro.aggregator.AggregatorConfig fields).
    aggregator: dict[str, Any] = field(default_factory=dict)
    steady_state: SteadyState = SteadyState.ENFORCE

    @property
    def policy(self) -> Policy:
        """The verdict policy, checked (PolicyError names the offending entry)."""
        patterns = (self.checker_options.get("logs") or {}).get("patterns") or {}
        return make_policy(
            self.allowances, self.unknown, self.expected, self.bounds, tuple(patterns),
            where=f"experiment {self.name}",
        )  # fmt: skip


@dataclass
class Outcome:
    experiment: Experiment
    run_dir: Path
    results: list[CheckResult]
    merged: Validity
    stats: WorkloadStats
    quiescent: bool
    steady_before: dict[str, Any]
    steady_after: dict[str, Any]
    seconds: float
    decision: Decision

    @property
    def unmet(self) -> list[str]:
        """The checkers whose findings the experiment does not excuse (or whose exact expectation failed)."""
        return self.decision.failing_checkers()

    @property
    def as_expected(self) -> bool:
        return self.decision.validity is Validity.TRUE

    def summary(self) -> str:
        return summarise(self.experiment.name, self.run_dir, self.results, self.decision)


Progress = Callable[[str], None]
DECISION_WORDS = {Validity.TRUE: "valid", Validity.FALSE: "INVALID", Validity.UNKNOWN: "UNKNOWN"}


def summarise(name: str, run_dir: Path, results: list[CheckResult], decision: Decision) -> str:
    """The decision first, then each checker with its counts, then which finding broke which rule."""
    lines = [f"{name}: decision {DECISION_WORDS[decision.validity]} (checkers merge to {merge(results).value}; "
             f"{run_dir})"]  # fmt: skip
    allowed = Counter(j.finding.key for j in decision.judgements if j.status is Status.ALLOWED)
    for result in results:
        counts = ", ".join(f"{k}={v}" for k, v in list(result.counts.items())[:8])
        new = decision.new_kinds(result.name)
        mark = f"  <-- {decision.unmet[result.name]}" if result.name in decision.unmet else ""
        if new:
            mark = f"  <-- not excused: {', '.join(new)}"
        lines.append(f"  {result.name:<13} {result.valid.value:<8} {counts}{mark}")
    if allowed:
        lines.append("  allowed: " + ", ".join(f"{key} x{n}" for key, n in sorted(allowed.items())))
    lines.append(f"  power: {power.describe(decision.power)}")
    reasons = decision.reasons()
    if reasons:
        lines.append("  why:")
        lines.extend(f"    {line}" for line in reasons)
    return "\n".join(lines)
