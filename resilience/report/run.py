"""A run directory read back: every file it should hold, each loaded on its own so that a missing or
broken one costs only its part of the report, with a note saying which file and why.

    reports/<YYYYmmdd-HHMMSS>-<experiment>/
        history.jsonl   the operation log (resilience.history)
        snapshot.json   the final state (resilience.snapshot)
        results.json    the checkers' results (resilience.report.results)
        journal.json    the run's account (resilience.report.journal)
        logs/<node>.log each node's log
        report.html     generated from the above
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from resilience.checks.result import CheckResult, Validity
from resilience.history import HistoryError, RecordedHistory, TruncatedHistoryWarning, read_history
from resilience.report.journal import FaultRecord, Journal, JournalError, faults_from_history, read_journal
from resilience.report.results import ResultsError, RunResults, read_results
from resilience.snapshot import Snapshot, SnapshotError, read_snapshot

HISTORY_FILE = "history.jsonl"
SNAPSHOT_FILE = "snapshot.json"
LOGS_DIR = "logs"
REPORT_FILE = "report.html"
RUN_FILES = (HISTORY_FILE, SNAPSHOT_FILE, "results.json", "journal.json")
_NO_TIMELINE = "timeline, throughput and latency not shown"
RUN_DIR_NAME = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<experiment>.+)$")


class ReportError(ValueError):
    """The run directory cannot be reported on at all; the message names it and says why."""


@dataclass
class RunData:
    run_dir: Path
    journal: Journal | None = None
    history: RecordedHistory | None = None
    snapshot: Snapshot | None = None
    results: RunResults | None = None
    problems: list[str] = field(default_factory=list)
    """One line per file that was missing or unreadable, and what the report left out for it."""

    @property
    def experiment(self) -> str:
        if self.journal is not None and self.journal.experiment:
            return self.journal.experiment
        if self.history is not None and isinstance(self.history.header.meta.get("experiment"), str):
            return str(self.history.header.meta["experiment"])
        named = RUN_DIR_NAME.match(self.run_dir.name)
        return named.group("experiment") if named else self.run_dir.name

    @property
    def checks(self) -> list[CheckResult]:
        if self.results is not None:
            return self.results.checks
        return self.journal.checks if self.journal is not None else []

    @property
    def verdict(self) -> Validity:
        """results.json's verdict (the latest, rewritten by `resilience check`), else the journal's."""
        if self.results is not None:
            return self.results.verdict
        return self.journal.verdict if self.journal is not None else Validity.UNKNOWN

    @property
    def decision(self) -> Validity | None:
        """The experiment's decision (its allowances, bounds and declared unknowns applied), when recorded."""
        recorded = self.results.decision if self.results is not None else None
        try:
            return Validity(recorded["validity"]) if recorded else None
        except (KeyError, ValueError, TypeError):
            return None

    @property
    def power(self) -> str | None:
        """What a valid verdict is worth, in words (resilience/verdict/power.py), when recorded."""
        recorded = self.results.decision if self.results is not None else None
        if not recorded or not isinstance(recorded.get("power"), dict):
            return None
        from resilience.verdict.power import describe

        return describe(recorded["power"])

    @property
    def verdict_source(self) -> str | None:
        if self.results is not None:
            return "results.json"
        return "journal.json" if self.journal is not None else None

    @property
    def faults(self) -> list[FaultRecord]:
        """From the history when it was read (the record of what happened), else the journal's copy."""
        if self.history is not None:
            return faults_from_history(self.history)
        return self.journal.faults if self.journal is not None else []

    @property
    def seed(self) -> int | None:
        if self.journal is not None and self.journal.seed is not None:
            return self.journal.seed
        return self.history.header.seed if self.history is not None else None

    @property
    def topology_name(self) -> str | None:
        if self.journal is not None and self.journal.topology is not None:
            return self.journal.topology.name
        named = self.history.header.meta.get("topology") if self.history is not None else None
        return named if isinstance(named, str) else None

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / LOGS_DIR


def load_run(run_dir: Path | str) -> RunData:
    """Read what there is. Raises ReportError only when `run_dir` is not a run directory at all."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a directory; expected a run directory holding {', '.join(RUN_FILES)}")
    if not any((run_dir / name).exists() for name in RUN_FILES):
        raise ReportError(f"{run_dir}: holds none of {', '.join(RUN_FILES)}; is it a run directory?")
    run = RunData(run_dir)

    journal_problem = None
    try:
        run.journal = read_journal(run_dir)
    except JournalError as exc:
        journal_problem = f"{exc} — description, expectations, steady state and findings not shown"

    history_path = run_dir / HISTORY_FILE
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncatedHistoryWarning)
            run.history = read_history(history_path)
        run.problems.extend(str(w.message) for w in caught if issubclass(w.category, TruncatedHistoryWarning))
    except HistoryError as exc:
        run.problems.append(f"{exc} — {_NO_TIMELINE}")
    except OSError as exc:
        run.problems.append(f"{history_path}: cannot read ({exc.strerror}) — {_NO_TIMELINE}")

    snapshot_path = run_dir / SNAPSHOT_FILE
    try:
        run.snapshot = read_snapshot(snapshot_path)
    except SnapshotError as exc:
        run.problems.append(f"{exc} — latency not shown")
    except OSError as exc:
        run.problems.append(f"{snapshot_path}: cannot read ({exc.strerror}) — latency not shown")

    try:
        run.results = read_results(run_dir)
        run.problems.extend(f"{run_dir / 'results.json'}: {p}" for p in run.results.problems)
    except ResultsError as exc:
        fallback = "the journal's checker results shown" if run.journal is not None else "no checker results"
        run.problems.append(f"{exc} — {fallback}")
    if journal_problem:
        run.problems.insert(0, journal_problem)
    if run.results is None and run.journal is None:
        run.problems.append("no results.json or journal.json: the verdict is unknown")

    if not run.logs_dir.is_dir():
        run.problems.append(f"{run.logs_dir}: no such directory — node logs not shown")
    return run
