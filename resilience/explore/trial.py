"""One exploration run on a cluster: a candidate (schedule + workload) played as an experiment that keeps the
base experiment's verdict policy (its allowances, bounds and declared unknowns), judged by the same rule."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path

from resilience.cluster import Cluster
from resilience.experiment import Experiment, Progress, run_experiment
from resilience.explore.search import TrialOutcome
from resilience.explore.shrink import Candidate
from resilience.verdict.by_kind import allowances_for


def kinds_without_allowances(base: Experiment, kinds: Iterable[str]) -> tuple[str, ...]:
    """The kinds the generator may draw whose weak spots the base experiment's allowances do not name."""
    covered = {allowance.fault.split()[0] for allowance in base.allowances}
    return tuple(kind for kind in dict.fromkeys(kinds) if kind not in covered)


def with_weak_spots(base: Experiment, kinds: tuple[str, ...]) -> Experiment:
    """The base experiment, its allowances extended by the documented weak spots of `kinds` (by_kind.py)."""
    return dataclasses.replace(base, allowances=(*base.allowances, *allowances_for(kinds)))


def candidate_experiment(base: Experiment, candidate: Candidate, name: str) -> Experiment:
    """The base experiment with the candidate's schedule and workload: the same rule judges every run."""
    return dataclasses.replace(
        base,
        name=name,
        schedule=candidate.schedule().to_text(),
        generator={},
        workload=candidate.workload,
    )


@dataclasses.dataclass
class ClusterTrials:
    """A TrialRunner over a live cluster; each run's record goes under `reports_root`."""

    cluster: Cluster
    base: Experiment
    reports_root: Path
    progress: Progress | None = None
    count: int = 0

    def __call__(self, candidate: Candidate, label: str) -> TrialOutcome:
        self.count += 1
        experiment = candidate_experiment(self.base, candidate, f"explore-{self.count:03d}")
        experiment = dataclasses.replace(experiment, description=f"{label}: {candidate.describe()}")
        started = time.monotonic()
        outcome = run_experiment(self.cluster, experiment, self.reports_root, progress=self.progress)
        return TrialOutcome(
            validity=outcome.decision.validity,
            refused=frozenset(j.finding.key for j in outcome.decision.new),
            run_dir=outcome.run_dir,
            seconds=time.monotonic() - started,
        )
