"""What a catalogue run measured against its bounds and allowances, one line per experiment.

    .venv/bin/python benchmarks/catalogue_figures.py [REPORTS_DIR] [--since YYYYMMDD-HHMMSS]

Reads each run directory's results.json (written by the experiment runner or `resilience check`) and prints:
the decision, the worst fault's longest outage and time to recover against their bounds, MO->reply p95
before / during / after, the allowances used (kind x weight) and the detectable loss rate per hop.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any


def figures(run_dir: Path) -> dict[str, Any] | None:
    try:
        results = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    checks = {c["name"]: c for c in results.get("checks", [])}
    decision = results.get("decision") or {}
    availability = checks.get("availability", {})
    faults = availability.get("details", {}).get("faults", [])
    worst = max(faults, key=lambda f: f.get("unavailable_s", 0), default=None)
    phases = checks.get("latency", {}).get("details", {}).get("phases", {})
    allowed = Counter()
    for finding in decision.get("findings", []):
        if finding.get("status") in ("allowed", "declared-unknown"):
            allowed[f"{finding['checker']}.{finding['kind']}"] += finding.get("count", 1)
    new = [
        f"{f['checker']}.{f['kind']}"
        for f in decision.get("findings", [])
        if f.get("status") in ("violation", "unknown")
    ]
    power = decision.get("power", {})
    return {
        "run": run_dir.name,
        "decision": decision.get("validity", "?"),
        "outage": (worst["fault"], worst["unavailable_s"], worst.get("bounds", {}).get("max_unavailable_s"))
        if worst
        else None,
        "recovery": (worst.get("time_to_recover_s"), worst.get("bounds", {}).get("max_recovery_s")) if worst else None,
        "p95": tuple(phases.get(p, {}).get("p95_s") for p in ("before", "during", "after")),
        "allowed": dict(allowed),
        "new": sorted(Counter(new).items()),
        "power": {hop: (v.get("messages"), v.get("detectable_rate")) for hop, v in power.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="?", default="reports", help="the reports directory")
    parser.add_argument("--since", default="", help="only run directories named at or after this stamp")
    args = parser.parse_args()
    for run_dir in sorted(Path(args.reports).iterdir()):
        if not run_dir.is_dir() or run_dir.is_symlink() or run_dir.name < args.since:
            continue
        row = figures(run_dir)
        if row is None:
            continue
        outage = row["outage"]
        outage_text = f"{outage[0]} {outage[1]} s (bound {outage[2]})" if outage else "no fault"
        recovery = row["recovery"]
        recovery_text = f"recover {recovery[0]} s (bound {recovery[1]})" if recovery else ""
        p95 = "/".join("-" if v is None else f"{v:.2f}" for v in row["p95"])
        power = ", ".join(f"{hop} {n} msgs -> {rate:.1%}" for hop, (n, rate) in row["power"].items() if rate)
        print(f"{row['run']}: {row['decision']}")
        print(f"    outage {outage_text}; {recovery_text}; p95 before/during/after {p95} s")
        print(f"    allowed {row['allowed'] or '-'}; not excused {row['new'] or '-'}; power {power}")


if __name__ == "__main__":
    main()
