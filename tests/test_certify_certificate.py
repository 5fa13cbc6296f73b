"""The certificate (resilience/certify/certificate.py): JSON, self-contained HTML and JUnit say the decision
first, the findings new and gone, the timings with their spread, the exact versions and the command; and
`resilience certify` exits with the decision (0/1/2, 130/143 when interrupted) with a world that runs nothing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_certify_decision import FakeWorld, plan, run

import resilience.certify.run as certify_run
from resilience.certify.certificate import new_certificate_dir, write_certificate
from resilience.certify.compare import Phase, RunRecord, certify_runs
from resilience.certify.run import CertifyRun
from resilience.cli import main
from resilience.interrupts import Terminated


def regression_run() -> CertifyRun:
    records = [
        run(Phase.BASELINE, s, latency=1.0 + s / 10, refused={"outbound.duplicated": 1} if s == 1 else None)
        for s in (1, 2, 3)
    ]
    records += [run(Phase.CANDIDATE, 1, validity="false", refused={"inbound.lost": 4})]
    records += [run(Phase.CANDIDATE, s, latency=3.0 + s / 10) for s in (2, 3)]
    records += [
        run(Phase.UPGRADE, 1, experiment="certify-upgrade"),
        run(Phase.ROLLBACK, 1, experiment="certify-rollback"),
    ]
    certification = certify_runs(["kill-courier"], records, plan().thresholds)
    versions = {"current": {"courier": "resilience-node = sha256:aa"}, "candidate": {"courier": "next:1 = sha256:bb"}}
    return CertifyRun(certification, records, 812.5, {"baseline": 300.0, "upgrade": 100.0}, versions)


def test_the_certificate_files_say_the_decision_first_and_name_the_regression(tmp_path: Path) -> None:
    out = new_certificate_dir(tmp_path)
    assert out.name.endswith("-certify")
    paths = write_certificate(regression_run(), plan(), out, "resilience certify plan.yaml")

    data = json.loads(paths["json"].read_text())
    assert next(iter(data)) == "decision" and data["decision"] == "regression"
    assert any(r.startswith("kill-courier: inbound.lost refused on the candidate") for r in data["reasons"])
    (experiment,) = data["experiments"]
    assert experiment["new_findings"] == {"inbound.lost": 4}
    assert experiment["gone_findings"] == {"outbound.duplicated": 1}
    latency = next(t for t in experiment["timings"] if t["metric"] == "latency_s")
    assert latency["current"] == [1.1, 1.2, 1.3] and latency["low"] is not None
    assert data["versions"]["candidate"]["resolved"] == {"courier": "next:1 = sha256:bb"}
    assert data["seeds"] == [1, 2] and data["command"] == "resilience certify plan.yaml"
    assert paths["plan"].read_text() == plan().text

    html = paths["html"].read_text()
    assert html.index("REGRESSION") < html.index("Why") < html.index("inbound.lost")
    assert "outbound.duplicated" in html and "next:1 = sha256:bb" in html and "resilience certify plan.yaml" in html
    assert "data:image/png;base64," in html  # the figures, inline: the page stands alone
    assert 'src="http' not in html and "<link" not in html

    suite = ET.fromstring(paths["junit"].read_bytes())
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["kill-courier correctness"].find("failure") is not None
    assert "inbound.lost" in cases["kill-courier correctness"].find("failure").get("message", "")  # type: ignore[union-attr]
    assert cases["rolling upgrade"].find("failure") is None
    assert int(suite.get("failures", "0")) >= 1
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["decision"] == "regression"


def test_an_interrupted_certificate_says_so(tmp_path: Path) -> None:
    records = [run(Phase.BASELINE, 1)]
    certification = certify_runs(["kill-courier"], records, plan().thresholds, interrupted="SIGINT")
    paths = write_certificate(CertifyRun(certification, records, 5.0, {}, {}), plan(), tmp_path, "resilience certify p")
    assert json.loads(paths["json"].read_text())["decision"] == "interrupted"
    assert "INTERRUPTED" in paths["html"].read_text()
    suite = ET.fromstring(paths["junit"].read_bytes())
    assert [c.find("error").get("type") for c in suite.iter("testcase") if c.get("name") == "rolling upgrade"] == [  # type: ignore[union-attr]
        "interrupted"
    ]


class CliWorld(FakeWorld):
    """A FakeWorld that `resilience certify` builds in place of Docker's."""

    outcome: dict[str, object] = {}

    def __init__(self, plan: object, **_kwargs: object) -> None:
        super().__init__(self.outcome.get("stop_at"), self.outcome.get("interrupt", KeyboardInterrupt))  # type: ignore[arg-type]

    def execute(self, step: certify_run.Step, reports_root: Path) -> RunRecord:
        record = super().execute(step, reports_root)
        if step.phase is Phase.CANDIDATE and self.outcome.get("lose"):
            record.validity, record.refused = "false", {"inbound.lost": 2}
        return record


@pytest.mark.parametrize(
    ("outcome", "code", "said"),
    [
        ({}, 0, "CERTIFIED"),
        ({"lose": True}, 1, "REGRESSION"),
        ({"stop_at": 2}, 130, "INTERRUPTED"),
        ({"stop_at": 2, "interrupt": Terminated}, 143, "INTERRUPTED"),
    ],
)
def test_the_command_exits_with_the_decision(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    outcome: dict[str, object],
    code: int,
    said: str,
) -> None:
    the_plan = plan()
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(the_plan.text)
    monkeypatch.setattr(CliWorld, "outcome", outcome)
    monkeypatch.setattr(certify_run, "DockerWorld", CliWorld)
    assert main(["certify", str(plan_file), "--report-dir", str(tmp_path / "reports")]) == code
    out = capsys.readouterr().out
    assert f"\n{said}: " in out
    (certificate,) = (tmp_path / "reports").glob("*-certify/certificate.json")
    assert json.loads(certificate.read_text())["decision"] == said.lower()


def test_junit_refuses_a_slower_candidate_on_its_latency_case_only(tmp_path: Path) -> None:
    records = [run(Phase.BASELINE, s, latency=1.0 + s / 10) for s in (1, 2, 3)]
    records += [run(Phase.CANDIDATE, s, latency=3.0 + s / 10) for s in (1, 2, 3)]
    records += [run(Phase.UPGRADE, 1), run(Phase.ROLLBACK, 1)]
    certification = certify_runs(["kill-courier"], records, plan().thresholds)
    paths = write_certificate(CertifyRun(certification, records, 1.0, {}, {}), plan(), tmp_path, "resilience certify p")
    suite = ET.fromstring(paths["junit"].read_bytes())
    failing = sorted(case.get("name", "") for case in suite.iter("testcase") if case.find("failure") is not None)
    assert failing == ["kill-courier latency_s"]


@pytest.mark.docker
def test_an_image_not_on_the_engine_is_bad_environment_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(plan().text.replace("next:1", "resilience-upgrade:certify-no-such-image"))
    assert main(["certify", str(plan_file), "--report-dir", str(tmp_path / "reports")]) == 3
    err = capsys.readouterr().err
    assert "candidate courier: resilience-upgrade:certify-no-such-image" in err and "Traceback" not in err
    assert list((tmp_path / "reports").iterdir()) == []


def test_the_timeline_draws_one_run_of_each_version_with_its_fault_bands(tmp_path: Path) -> None:
    from test_report import build_run

    from resilience.certify.timeline import paired_runs, run_series, timeline_png

    build_run(tmp_path / "current")
    build_run(tmp_path / "candidate", lost_reply=True)
    current = run(Phase.BASELINE, 5, latency=1.0)
    current.run_dir = str(tmp_path / "current")
    candidate = run(Phase.CANDIDATE, 5, latency=1.2)
    candidate.run_dir = str(tmp_path / "candidate")
    other_seed = run(Phase.CANDIDATE, 6, latency=1.2)
    certification = certify_runs(["kill-courier"], [current, other_seed, candidate], plan().thresholds)
    (comparison,) = certification.experiments

    assert paired_runs(comparison) == (current, candidate)  # the same seed, not the first candidate run
    drawn = run_series(candidate, "candidate")
    assert not drawn.problem and [f.id for f in drawn.faults] == ["f1", "f2"]
    assert any(p is not None for p in drawn.p99) and sum(drawn.acknowledged) == 8  # 8 of the 10 MOs were ok
    assert timeline_png(certification.experiments)

    missing = run(Phase.BASELINE, 5)
    missing.run_dir = str(tmp_path / "gone")
    assert "no such run directory" in run_series(missing, "current").problem
    alone = certify_runs(["kill-courier"], [current], plan().thresholds)
    assert timeline_png(alone.experiments) == "", "no candidate run: nothing to draw side by side"
