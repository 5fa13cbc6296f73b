"""Regenerate a run's report from its files, name new run directories, and keep `reports/latest` current."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import jinja2
from rich.console import Console

from resilience.report.console import print_summary
from resilience.report.html import write_html
from resilience.report.run import RUN_DIR_NAME, ReportError, load_run

LATEST = "latest"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def generate_report(run_dir: Path | str, *, console: Console | None = None) -> Path:
    """Write `run_dir/report.html` from the run's files and return its path; with `console`, also print the
    verdict table and what was missing. Raises ReportError (never another traceback) when `run_dir` is not
    a run directory or the page cannot be written; missing or broken files are noted in the page instead."""
    run = load_run(run_dir)
    try:
        path = write_html(run)
    except OSError as exc:
        raise ReportError(f"{exc.filename or run.run_dir}: cannot write the report ({exc.strerror})") from None
    except jinja2.TemplateNotFound as exc:
        # a wheel built without the package data (pyproject's [tool.setuptools.package-data])
        raise ReportError(f"resilience/report/templates/{exc.name} is missing from this installation") from None
    if console is not None:
        print_summary(
            console, run.checks, run.verdict, title=f"{run.experiment} — {run.run_dir.name}", problems=run.problems,
            report=str(path),
        )  # fmt: skip
    return path


def run_dir_name(experiment: str, when: dt.datetime | None = None) -> str:
    """`<YYYYmmdd-HHMMSS>-<experiment>` in UTC, the experiment name made safe for a path."""
    moment = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    safe = _UNSAFE.sub("-", experiment).strip("-.") or "experiment"
    return f"{moment:%Y%m%d-%H%M%S}-{safe}"


def create_run_dir(reports_root: Path | str, experiment: str, when: dt.datetime | None = None) -> Path:
    """A new, empty run directory (with `logs/`); a second run in the same second gets a `-2` suffix."""
    root = Path(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    name = run_dir_name(experiment, when)
    for attempt in range(1, 1000):
        candidate = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        (candidate / "logs").mkdir()
        return candidate
    raise ReportError(f"{root}: cannot find a free run directory name for {name}")


def _stamp(path: Path) -> str | None:
    named = RUN_DIR_NAME.match(path.name)
    return named.group("stamp") if named else None


def _newest(root: Path, candidate: Path) -> Path:
    """`candidate`, unless a run directory under `root` carries a later time in its name. A candidate
    whose name carries no time is taken as it is: the caller has just finished it."""
    stamp = _stamp(candidate)
    if stamp is None:
        return candidate
    newest = (stamp, candidate.name, candidate)
    for path in root.iterdir():
        other = _stamp(path)
        if other is not None and path.is_dir() and not path.is_symlink() and (other, path.name) > newest[:2]:
            newest = (other, path.name, path)
    return newest[2]


def update_latest(reports_root: Path | str, run_dir: Path | str) -> Path:
    """Point `reports_root/latest` at the newest run directory (normally `run_dir`, unless a newer run has
    already finished) and return the link's path. The link is replaced atomically; a `latest` that is not
    a symlink is never removed."""
    root, run_dir = Path(reports_root), Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run directory")
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        raise ReportError(f"{link}: exists and is not a symlink; not replacing it")
    newest = _newest(root, run_dir)
    target = newest.name if newest.parent.resolve() == root.resolve() else str(newest.resolve())
    temporary = root / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target, target_is_directory=True)
    temporary.replace(link)
    return link
