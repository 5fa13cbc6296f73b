"""An adapter for the results.json that resilience/experiment.py writes today, before it writes
results.json with `write_results` and journal.json with `write_journal`:

    {"experiment", "description", "merged", "results": [CheckResult.to_dict()…], "expected": {checker: verdict},
     "unmet": [checker…], "findings": [{"title", "checker", "known", "detail"}…], "workload": {…},
     "steady_state_before": {…}, "steady_state_after": {…}, "seconds", "resilience_version", "quiescent"}

Its checks and verdict become RunResults; the rest becomes a Journal, so that such a run's page still has
its description, expectations and steady state. Remove once experiment.py uses write_results/write_journal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resilience.checks.result import CheckResult, Validity
from resilience.report.journal import Journal, Probe, Versions
from resilience.report.results import RESULTS_FILE, RunResults


def read_legacy_journal(run_dir: Path, results: RunResults) -> Journal | None:
    """The journal a legacy results.json implies, or None when it cannot be read again."""
    try:
        raw = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return legacy_journal(raw, results.checks, results.verdict) if isinstance(raw, dict) else None


def legacy_journal(raw: dict[str, Any], checks: list[CheckResult], verdict: Validity) -> Journal:
    expectations = []
    expected = raw.get("expected")
    if isinstance(expected, dict) and expected:
        verdicts = ", ".join(f"{name} {value}" for name, value in expected.items())
        expectations.append(f"Expected verdicts (others valid): {verdicts}.")
    unmet = raw.get("unmet")
    if isinstance(unmet, list) and unmet:
        expectations.append(f"Not as expected: {', '.join(str(u) for u in unmet)}.")
    findings = raw.get("findings")
    if isinstance(findings, list) and findings:
        expectations.append("Expected observations:")
        for finding in findings:
            if isinstance(finding, dict):
                known = " (known RapidPro v9 behaviour)" if finding.get("known") else ""
                detail = f": {finding['detail']}" if finding.get("detail") else ""
                checker = f" [{finding['checker']}]" if finding.get("checker") else ""
                expectations.append(f"- {finding.get('title', '?')}{checker}{known}{detail}")
    seconds = raw.get("seconds")
    workload = raw.get("workload")
    return Journal(
        experiment=str(raw.get("experiment") or ""),
        description=str(raw.get("description") or ""),
        expectations="\n".join(expectations),
        versions=Versions(resilience=str(raw.get("resilience_version", "unknown")), python="unknown"),
        wall_time_s=float(seconds) if isinstance(seconds, int | float) else None,
        workload=workload if isinstance(workload, dict) else {},
        steady_state_before=probes(raw.get("steady_state_before")),
        steady_state_after=probes(raw.get("steady_state_after")),
        checks=checks,
        verdict=verdict,
    )


def probes(state: Any) -> dict[str, Probe]:
    """A steady-state dict ({"nodes_healthy": bool, "unhealthy": {…}, "round_trip": bool,
    "round_trip_seconds": 0.4, "ok": bool}) as probes: each boolean but the overall "ok" is a probe; the
    other non-empty values whose names start with its name are its detail, and the rest (e.g. "unhealthy")
    explain the first probe that failed."""
    if not isinstance(state, dict):
        return {}
    flags = [name for name, value in state.items() if isinstance(value, bool) and name != "ok"]
    if not flags:
        return {"steady state": Probe(state.get("ok") is True, _detail(state, [n for n in state if n != "ok"]))}
    used: set[str] = set(flags) | {"ok"}
    related = {flag: [n for n in state if n not in used and n.startswith(flag)] for flag in flags}
    used.update(n for names in related.values() for n in names)
    rest = [name for name in state if name not in used]
    failing = next((flag for flag in flags if not state[flag]), flags[0])
    related[failing] += rest
    return {flag.replace("_", " "): Probe(state[flag], _detail(state, related[flag])) for flag in flags}


def _detail(state: dict[str, Any], names: list[str]) -> str:
    return "; ".join(
        f"{name.replace('_', ' ')}: {_text(state[name])}" for name in names if state[name] not in (None, "", {}, [])
    )


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items())
    return str(value)
