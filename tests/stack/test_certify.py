"""`resilience certify` on the session's cluster: a candidate carrying a planted regression (courier acknowledges
MOs it never writes) is refused, and the certificate names the finding and the experiment.

One short certification (one experiment, one seed, courier only) to stay inside CI's budget; the clean, the
slower and the interrupted candidates are in benchmarks/certify.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker
import pytest

from resilience.certify.certificate import new_certificate_dir, write_certificate
from resilience.certify.compare import Decision
from resilience.certify.plan import load_plan
from resilience.certify.run import DockerWorld, certify, plan_steps
from resilience.cli_experiments import load_experiment
from resilience.cluster import ROOT, Cluster
from resilience.derived_images import derive_image
from resilience.images import resolve_image

pytestmark = pytest.mark.stack

PLAN = """\
version: 1
kind: certification
name: planted-drop
target:
  topology: {topology}
current:
  version: 9.2.0-standin
candidate:
  version: 9.3.0-planted
  images: {{courier: "{image}"}}
experiments: [kill-courier]
workload: {{duration: 22, reply_timeout: 8, resend_attempts: 0}}
seeds: [5]
upgrade: {{rate: 3, duration: 16, quiesce_timeout: 45}}
"""


@pytest.fixture
def planted_candidate(cluster: Cluster) -> str:
    """The node image as a "next version" whose courier acknowledges 8 % of the MOs and drops them: enough to
    lose some of kill-courier's ~80 for sure, few enough that the steady-state probe is seldom one of them
    (a lost probe costs an app-tier restart, ~100 s here)."""
    client = docker.from_env()
    tag = f"resilience-upgrade:certify-planted-{uuid.uuid4().hex[:8]}"
    env = {"STANDIN_VERSION": "9.3.0-standin", "STANDIN_SWITCHES": json.dumps({"drop_after_ack": 0.08})}
    derive_image(client, "resilience-node", tag, env, log=lambda _m: None)
    try:
        yield tag
    finally:
        client.images.remove(tag, force=True)


@pytest.mark.timeout(540)
def test_a_planted_regression_is_refused_naming_the_finding_and_the_experiment(
    cluster: Cluster, planted_candidate: str, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.yaml"
    topology = ROOT / "harness" / "topologies" / "standin-ha.yaml"
    plan_file.write_text(PLAN.format(topology=topology, image=planted_candidate))
    plan = load_plan(plan_file)
    steps = plan_steps(plan, {"kill-courier": load_experiment("kill-courier")})
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)  # shown with -s: where a slow CI run spent its time

    world = DockerWorld(plan, cluster=cluster, say=say)
    out_dir = new_certificate_dir(tmp_path)

    result = certify(plan, steps, world, out_dir / "runs", say)
    paths = write_certificate(result, plan, out_dir, f"resilience certify {plan_file}")

    certification = result.certification
    assert certification.decision is Decision.REGRESSION, "\n".join(lines + certification.reasons)
    # The candidate's kill-courier runs lose acknowledged MOs the current version's did not (or, when the planted
    # drop took the steady-state probe's message too, cannot even carry one round trip).
    named = [r for r in certification.reasons if r.startswith("kill-courier: ") and "refused on the candidate" in r]
    assert any("inbound.lost" in r or "steady_state.broken" in r for r in named), certification.reasons
    (comparison,) = certification.experiments
    assert comparison.verdict == "regression"
    assert set(comparison.new_findings) & {"inbound.lost", "steady_state.broken"}
    # One progress line per run, naming its phase, experiment and version.
    progress = [line for line in lines if line.startswith("[")]
    assert [line.split()[1] for line in progress] == ["baseline", "upgrade", "candidate", "rollback"], lines
    assert "on candidate (9.3.0-planted)" in progress[2] and "ETA" in progress[2]

    data = json.loads(paths["json"].read_text())
    assert data["decision"] == "regression"
    assert "inbound.lost" in paths["html"].read_text() or "steady_state.broken" in paths["html"].read_text()
    assert b'type="regression"' in paths["junit"].read_bytes()

    # The cluster it was given ends on the version it began with: the rollback phase rolled courier back.
    node_image = docker.from_env().images.get(resolve_image("resilience-node")).id
    for node in cluster.run.nodes_of("courier"):
        assert cluster.run.image(node) == node_image
