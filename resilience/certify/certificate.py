"""The certificate: `certificate.json`, a self-contained `certificate.html` and `junit.xml` in
`reports/<time>-certify/`, with the plan it certified copied beside them (`plan.yaml`).

The decision comes first, then per experiment the two versions' verdicts side by side, the findings new in
the candidate and gone from it, each timing's change with its interval over the repeats, the exact images,
seeds and the command that reproduces it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2

from resilience.certify.compare import METRICS, Certification, ExperimentComparison
from resilience.certify.plan import Plan
from resilience.certify.run import CertifyRun
from resilience.certify.timeline import timeline_png

CERTIFICATE_JSON = "certificate.json"
CERTIFICATE_HTML = "certificate.html"
JUNIT_XML = "junit.xml"
PLAN_COPY = "plan.yaml"


def new_certificate_dir(root: Path) -> Path:
    from resilience.experiment import new_run_dir

    return new_run_dir(root, "certify")


def certificate_data(run: CertifyRun, plan: Plan, command: str) -> dict[str, Any]:
    certification = run.certification
    return {
        "decision": certification.decision.value,
        "reasons": certification.reasons,
        "interrupted": certification.interrupted,
        "plan": {"name": plan.name, "file": str(plan.path), "sha256": plan.sha256, "description": plan.description},
        "command": command,
        "versions": {
            "current": {
                "label": plan.current.label,
                "images": plan.current.images,
                "resolved": run.versions.get("current", {}),
            },
            "candidate": {
                "label": plan.candidate.label,
                "images": plan.candidate.images,
                "resolved": run.versions.get("candidate", {}),
            },
        },
        "topology": str(plan.topology_file),
        "experiments": list(plan.experiments),
        "seeds": list(plan.seeds),
        "workload_overrides": plan.workload,
        "thresholds": vars(plan.thresholds),
        "rule": (
            "correctness decides alone: a finding refused on the candidate and never on the current version, or an "
            "invalid upgrade/rollback run, is a regression. Timings: per experiment and figure the difference of the "
            "medians with a bootstrap interval (confidence "
            f"{plan.thresholds.confidence:g}); regression when the whole interval is over the threshold, "
            "inconclusive when only the median is, or when fewer than "
            f"{plan.thresholds.min_repeats} runs a version are over it."
        ),
        "seconds": round(run.seconds, 1),
        "phase_seconds": {phase: round(s, 1) for phase, s in run.phase_seconds.items()},
        **{
            key: value
            for key, value in certification.to_dict().items()
            if key not in ("decision", "reasons", "interrupted")
        },
    }


def write_certificate(run: CertifyRun, plan: Plan, out_dir: Path, command: str) -> dict[str, Path]:
    """Write the three files (and the plan's copy); return their paths by name."""
    data = certificate_data(run, plan, command)
    paths = {
        "json": out_dir / CERTIFICATE_JSON,
        "html": out_dir / CERTIFICATE_HTML,
        "junit": out_dir / JUNIT_XML,
        "plan": out_dir / PLAN_COPY,
    }
    paths["plan"].write_text(plan.text, encoding="utf-8")
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    paths["html"].write_text(render_html(data, run.certification), encoding="utf-8")
    paths["junit"].write_bytes(junit_xml(run.certification, data))
    return paths


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("resilience.certify", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def render_html(data: dict[str, Any], certification: Certification) -> str:
    words = {metric: word for metric, (_kind, _field, word) in METRICS.items()}
    return (
        _environment()
        .get_template("certificate.html.j2")
        .render(
            data=data,
            comparisons=certification.experiments,
            upgrade=certification.upgrade,
            rollback=certification.rollback,
            words=words,
            plot=plot_png(certification.experiments),
            timeline=timeline_png(certification.experiments),
        )
    )


def plot_png(comparisons: list[ExperimentComparison]) -> str:
    """Each experiment's figures, both versions on one axis (a dot a run): a base64 PNG, "" when no figures."""
    panels = [(c, t) for c in comparisons for t in c.timings]
    if not panels:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(METRICS)
    rows = len(comparisons)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.2 * rows), squeeze=False)
    for row, comparison in enumerate(comparisons):
        by_metric = {t.metric: t for t in comparison.timings}
        for column, (metric, (_kind, _field, word)) in enumerate(METRICS.items()):
            ax = axes[row][column]
            timing = by_metric.get(metric)
            ax.set_title(f"{comparison.experiment}: {word}", fontsize=8)
            if timing is None:
                ax.set_axis_off()
                continue
            for position, (values, colour) in enumerate(((timing.current, "#1f77b4"), (timing.candidate, "#d62728"))):
                ax.scatter([position] * len(values), values, color=colour, s=18, alpha=0.8)
                if values:
                    middle = sorted(values)[len(values) // 2]
                    ax.hlines(middle, position - 0.2, position + 0.2, color=colour)
            ax.set_xticks([0, 1], ["current", "candidate"], fontsize=8)
            ax.set_xlim(-0.6, 1.6)
            ax.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


_TIMING_WORDS = tuple(f": {word} " for _kind, _field, word in METRICS.values())


def junit_xml(certification: Certification, data: dict[str, Any]) -> bytes:
    """One test case per experiment (correctness and each timing), plus the upgrade and the rollback: a
    regression is a failure, an inconclusive result an error, so CI shows neither as a pass."""
    suite = ET.Element("testsuite", name=f"certify {data['plan']['name']}")
    cases: list[tuple[str, str, str]] = []  # (name, verdict, message)

    def roll(phase: str, records: list[Any]) -> None:
        if not records:
            verdict = "interrupted" if certification.interrupted else "skipped"
            cases.append((f"rolling {phase}", verdict, "not run"))
            return
        for record in records:
            verdict = {"true": "ok", "false": "regression", "unknown": "inconclusive"}[record.validity]
            cases.append((f"rolling {phase}", verdict, "; ".join(record.reasons[:5]) or "valid"))

    roll("upgrade", certification.upgrade)
    for comparison in certification.experiments:
        correctness = [line for line in comparison.reasons if not any(word in line for word in _TIMING_WORDS)]
        verdict = comparison.correctness
        cases.append((f"{comparison.experiment} correctness", verdict, "; ".join(correctness) or "no new finding"))
        for timing in comparison.timings:
            message = (
                f"change {timing.change} {timing.unit} (interval {timing.low}..{timing.high}), threshold "
                f"{timing.threshold:g} {timing.unit}; {timing.note}"
            )
            cases.append((f"{comparison.experiment} {timing.metric}", timing.verdict, message))
    roll("rollback", certification.rollback)
    failures = errors = skipped = 0
    for name, verdict, message in cases:
        case = ET.SubElement(suite, "testcase", classname="certify", name=name)
        if verdict == "regression":
            failures += 1
            ET.SubElement(case, "failure", type="regression", message=message[:2000])
        elif verdict in ("inconclusive", "interrupted"):
            errors += 1
            ET.SubElement(case, "error", type=verdict, message=message[:2000])
        elif verdict == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=message)
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("decision", data["decision"]),
        ("command", data["command"]),
        ("plan_sha256", data["plan"]["sha256"]),
    ):
        ET.SubElement(properties, "property", name=key, value=str(value))
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    suite.set("time", str(data["seconds"]))
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def reproduce_command(plan_path: Path, argv_tail: list[str]) -> str:
    plan = os.path.relpath(plan_path) if not plan_path.is_absolute() else str(plan_path)
    return " ".join(["resilience", "certify", plan, *argv_tail])
