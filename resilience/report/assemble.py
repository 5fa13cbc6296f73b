"""A finished experiment run's record: results.json, journal.json (what was planned, what happened, what
was found) and report.html, assembled from the run's outcome, its cluster and its history."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from resilience import images
from resilience.history import History

if TYPE_CHECKING:
    from resilience.cluster import Cluster
    from resilience.experiment.spec import Outcome


def write_run_record(outcome: Outcome, cluster: Cluster, history: History, started_wall: float) -> None:
    """results.json, journal.json and report.html of a finished run; reports/latest points at it."""
    from resilience.report.build import generate_report, update_latest
    from resilience.report.journal import (
        Journal,
        Probe,
        TopologyInfo,
        Versions,
        derive_findings,
        faults_from_history,
        write_journal,
    )
    from resilience.report.results import write_results

    experiment = outcome.experiment
    write_results(outcome.run_dir, outcome.results, outcome.merged, outcome.decision)
    topology = cluster.run.topology

    def probes(state: dict[str, Any]) -> dict[str, Probe]:
        detail = state.get("round_trip_error") or f"{state.get('round_trip_seconds', '?')} s"
        unhealthy = ", ".join(f"{n}: {r}" for n, r in state.get("unhealthy", {}).items())
        found = {
            "every node healthy": Probe(bool(state.get("nodes_healthy")), unhealthy),
            "MO -> reply round trip": Probe(bool(state.get("round_trip")), str(detail)),
        }
        restored = state.get("restored")
        if restored:  # the first probe failed: an earlier experiment left the cluster broken
            first = restored["first_probe"]
            why = first.get("round_trip_error") or ", ".join(f"{n}: {r}" for n, r in first.get("unhealthy", {}).items())
            found["found broken, restored by restarting " + ", ".join(restored["restarted"])] = Probe(False, why)
        return found

    journal = Journal(
        experiment=experiment.name,
        run_id=outcome.run_dir.name,
        description=experiment.description,
        expectations=experiment.expectations,
        seed=experiment.workload.seed,
        topology=TopologyInfo(topology.name, str(topology.path), [n.name for n in topology.nodes()]),
        versions=Versions(images={s.name: images.resolve_image(s.image) for s in topology.services.values()}),
        started_at=dt.datetime.fromtimestamp(started_wall, dt.UTC).isoformat(),
        finished_at=dt.datetime.now(dt.UTC).isoformat(),
        wall_time_s=round(outcome.seconds, 2),
        workload=asdict(experiment.workload)
        | {k: v for k, v in asdict(outcome.stats).items() if k != "urns"}
        | {"schedule": experiment.schedule, "quiescent": outcome.quiescent},
        steady_state_before=probes(outcome.steady_before),
        steady_state_after=probes(outcome.steady_after),
        faults=faults_from_history(history.recorded()),
        checks=outcome.results,
        verdict=outcome.merged,
        findings=derive_findings(outcome.decision),
    )
    write_journal(outcome.run_dir, journal)
    generate_report(outcome.run_dir)
    update_latest(outcome.run_dir.parent, outcome.run_dir)
