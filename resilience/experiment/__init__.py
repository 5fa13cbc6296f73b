"""Experiments: what one is (spec.py) and how one runs, phase by phase (phases.py); a run's record is
assembled in resilience/report/assemble.py."""

from resilience.experiment.phases import (
    SteadyStateError,
    new_run_dir,
    restore_steady_state,
    run_experiment,
    steady_state,
)
from resilience.experiment.spec import (
    DECISION_WORDS,
    REPORTS_DIR,
    SCRIPTS_DIR,
    Experiment,
    Outcome,
    Progress,
    SteadyState,
    summarise,
)

__all__ = [
    "DECISION_WORDS",
    "REPORTS_DIR",
    "SCRIPTS_DIR",
    "Experiment",
    "Outcome",
    "Progress",
    "SteadyState",
    "SteadyStateError",
    "new_run_dir",
    "restore_steady_state",
    "run_experiment",
    "steady_state",
    "summarise",
]
