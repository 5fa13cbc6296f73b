"""Experiment reports: journal.json, results.json, a self-contained report.html, and terminal summaries.

See docs/reports.md.
"""

from resilience.report.build import create_run_dir, generate_report, run_dir_name, update_latest
from resilience.report.console import Progress, format_progress, print_summary, verdict_table
from resilience.report.journal import (
    FaultRecord,
    Finding,
    Journal,
    JournalError,
    Probe,
    TopologyInfo,
    Versions,
    derive_findings,
    faults_from_history,
    read_journal,
    write_journal,
)
from resilience.report.results import ResultsError, RunResults, read_results, write_results
from resilience.report.run import ReportError, RunData, load_run

__all__ = [
    "FaultRecord",
    "Finding",
    "Journal",
    "JournalError",
    "Probe",
    "Progress",
    "ReportError",
    "ResultsError",
    "RunData",
    "RunResults",
    "TopologyInfo",
    "Versions",
    "create_run_dir",
    "derive_findings",
    "faults_from_history",
    "format_progress",
    "generate_report",
    "load_run",
    "print_summary",
    "read_journal",
    "read_results",
    "run_dir_name",
    "update_latest",
    "verdict_table",
    "write_journal",
    "write_results",
]
