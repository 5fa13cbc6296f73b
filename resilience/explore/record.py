"""The exploration's record: `reports/<time>-explore/` with journal.json (every run, in order, with its
outcome and report) and index.html (the first failing schedule and the minimal one side by side)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jinja2

from resilience.explore.search import ExploreResult, ExploreSettings, Played
from resilience.explore.shrink import Candidate

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("resilience.explore", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def candidate_record(candidate: Candidate) -> dict[str, Any]:
    workload = candidate.workload
    return {
        "seed": candidate.seed,
        "faults": len(candidate.episodes),
        "schedule": candidate.schedule().to_text(),
        "workload": {"rate": workload.rate, "duration": workload.duration, "seed": workload.seed},
    }


def _played(played: Played, record_dir: Path) -> dict[str, Any]:
    outcome = played.outcome
    report = None
    if outcome.run_dir is not None:
        report = os.path.relpath(outcome.run_dir / "report.html", record_dir)
    return {
        "phase": played.phase,
        "label": played.label,
        "verdict": outcome.validity.value,
        "refused": sorted(outcome.refused),
        "seconds": round(outcome.seconds, 1),
        "report": report,
        "candidate": candidate_record(played.candidate),
    }


def journal(
    result: ExploreResult,
    settings: ExploreSettings,
    base: str,
    record_dir: Path,
    *,
    found_module: str = "",
    interrupted: str = "",
) -> dict[str, Any]:
    """Every key is documented in docs/explore.md, and every one is always there (the page reads them all:
    the benchmark once wrote a journal without `interrupted` and the page failed to render)."""
    return {
        "base_experiment": base,
        "seed": settings.seed,
        "budget_s": settings.budget_s,
        "repetitions": {"k": settings.k, "n": settings.n},
        "generator": settings.generator.__dict__ | {"kinds": list(settings.generator.kinds)},
        "search_runs": result.search_runs,
        "shrink_runs": result.shrink_runs,
        "seconds": round(result.seconds, 1),
        "budget_spent": result.budget_spent,
        "target": result.target,
        "failing": candidate_record(result.failing) if result.failing else None,
        "minimal": candidate_record(result.minimal) if result.minimal else None,
        "runs": [_played(p, record_dir) for p in result.played],
        "found_module": found_module,
        "interrupted": interrupted,
    }


def write_record(record_dir: Path, data: dict[str, Any]) -> Path:
    record_dir.mkdir(parents=True, exist_ok=True)
    (record_dir / "journal.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    page = record_dir / "index.html"
    page.write_text(_ENV.get_template("explore.html.j2").render(j=data))
    return page
