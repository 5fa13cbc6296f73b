"""The certification plan (resilience/certify/plan.py): what a good one gives, and every mistake as
`FILE:LINE: ...; expected` (all at once, no traceback, also through `resilience certify`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from resilience.certify.plan import CERTIFICATION_SET, Plan, PlanError, load_plan, parse_plan
from resilience.cli import main
from resilience.cluster import ROOT

TOPOLOGY = ROOT / "harness" / "topologies" / "standin-ha.yaml"
CATALOGUE = ("kill-courier", "kill-mailroom", "pg-failover-async", "kill-web", "rolling-upgrade")

GOOD = textwrap.dedent(
    f"""\
    version: 1
    kind: certification
    name: next-standin
    target:
      topology: {TOPOLOGY}
    current:
      version: 9.2.0
    candidate:
      version: 9.3.0
      images:
        courier: resilience-upgrade:next
        mailroom: resilience-upgrade:next
    experiments: [kill-courier, kill-web]
    workload: {{duration: 30}}
    seeds: [7, 8, 9, 10]
    upgrade: {{rate: 2, duration: 60}}
    thresholds:
      latency_growth_pct: 25
      rto_growth_s: 3
      min_repeats: 4
    """
)


def parse(text: str) -> Plan:
    return parse_plan(text, "plan.yaml", CATALOGUE)


def errors_of(text: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse(text)
    return [str(e) for e in caught.value.errors]


def test_a_good_plan_gives_every_field() -> None:
    plan = parse(GOOD)
    assert plan.name == "next-standin"
    assert plan.candidate.images == {"courier": "resilience-upgrade:next", "mailroom": "resilience-upgrade:next"}
    # The current version defaults to what the topology runs, service by service, in the candidate's order.
    assert plan.current.images == {"courier": "resilience-node", "mailroom": "resilience-node"}
    assert (plan.current.label, plan.candidate.label) == ("9.2.0", "9.3.0")
    assert plan.services == ("courier", "mailroom")
    assert plan.experiments == ("kill-courier", "kill-web")
    assert plan.workload == {"duration": 30.0}
    assert plan.seeds == (7, 8, 9, 10)
    assert (plan.upgrade.rate, plan.upgrade.duration) == (2.0, 60.0)
    assert plan.thresholds.latency_growth_pct == 25 and plan.thresholds.rto_growth_s == 3
    assert plan.thresholds.throughput_drop_pct == 10.0 and plan.thresholds.min_repeats == 4
    assert len(plan.sha256) == 64 and plan.text == GOOD


def test_defaults_are_the_certification_set_and_three_repeats() -> None:
    text = GOOD.replace("experiments: [kill-courier, kill-web]\n", "").replace("seeds: [7, 8, 9, 10]\n", "")
    plan = parse_plan(text, "plan.yaml", CERTIFICATION_SET)
    assert plan.experiments == CERTIFICATION_SET
    assert plan.seeds == (1, 2, 3)
    assert parse(text.replace("version: 1\n", "version: 1\nrepeats: 5\n", 1)).seeds == (1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("kind: certification", "kind: target", 2, "is not a certification plan; expected `kind: certification`"),
        ("version: 1\n", "version: 2\n", 1, "unsupported version 2; expected 1"),
        ("courier: resilience-upgrade:next", "courrier: x", 11, "no service 'courrier'; expected one of"),
        ("[kill-courier, kill-web]", "[kill-courier, kill-curier]", 13, "no experiment 'kill-curier' in the catalogue"),
        ("[kill-courier, kill-web]", "[kill-courier, kill-courier]", 13, "listed twice"),
        ("[kill-courier, kill-web]", "[rolling-upgrade]", 13, "moves the versions itself"),
        ("seeds: [7, 8, 9, 10]", "seeds: [7, 7]", 15, "seed 7 is listed twice"),
        ("seeds: [7, 8, 9, 10]", "seeds: [x]", 15, "seed must be an int >= 0"),
        ("{duration: 30}", "{duration: -3}", 14, "duration of workload must be a number > 0.0; got -3"),
        (
            "{duration: 30}",
            "{speed: 3}",
            14,
            "unknown key 'speed' in workload; expected one of: rate, duration",
        ),
        ("rto_growth_s: 3", "rto_growth_s: soon", 19, "rto_growth_s of thresholds must be a number > 0.0"),
        ("min_repeats: 4", "min_repeats: 1", 20, "min_repeats of thresholds must be an int in 2..50; got 1"),
        (
            "min_repeats: 4",
            "min_repeats: 4\n  latency_percentile: 90",
            21,
            "latency_percentile of thresholds is 90; expected one of 50, 95, 99",
        ),
        ("thresholds:", "threshold:", 17, "unknown key 'threshold' in the plan; expected one of"),
        ("version: 9.3.0\n  images:", "version: 9.3.0\n  imagez:", 10, "unknown key 'imagez' in candidate"),
    ],
)
def test_each_mistake_is_located_and_says_what_was_expected(old: str, new: str, line: int, fragment: str) -> None:
    assert old in GOOD
    errors = errors_of(GOOD.replace(old, new, 1))
    located = [e for e in errors if e.startswith(f"plan.yaml:{line}: ")]
    assert any(fragment in e for e in located), errors


def test_every_mistake_at_once_in_file_order() -> None:
    text = GOOD.replace("kind: certification", "kind: nope").replace("seeds: [7, 8, 9, 10]", "seeds: 3")
    errors = errors_of(text)
    assert [e.split(":")[1] for e in errors] == ["2", "15"], errors


def test_missing_keys_and_same_images_are_named() -> None:
    assert any("missing 'target'" in e for e in errors_of("version: 1\nkind: certification\ncandidate: {}\n"))
    assert any(
        "missing 'candidate'" in e
        for e in errors_of(f"version: 1\nkind: certification\ntarget: {{topology: {TOPOLOGY}}}\n")
    )
    same = GOOD.replace("resilience-upgrade:next", "resilience-node")
    assert any("run the same images" in e for e in errors_of(same))
    only_current = GOOD.replace("  version: 9.2.0\n", "  images: {web: resilience-node}\n")
    assert any("current names service 'web' but candidate does not" in e for e in errors_of(only_current))


def test_a_bare_hosts_file_is_refused_for_the_deployment_target() -> None:
    errors = errors_of(GOOD.replace(f"  topology: {TOPOLOGY}\n", "  hosts: staging.yaml\n"))
    assert any(e.startswith("plan.yaml:5: ") and "target: {deployment: NAME}" in e for e in errors), errors


DEPLOYMENT_HOSTS = textwrap.dedent(
    """\
    version: 1
    kind: hosts
    name: staging
    hosts:
      app-1: {address: 10.0.0.11}
      app-2: {address: 10.0.0.12}
    services:
      courier:
        role: courier
        systemd: courier.service
        nodes: [app-1, app-2]
        upgrade: {command: "apt-get install -y courier={version}"}
      mailroom:
        role: mailroom
        systemd: mailroom.service
        nodes: [app-1, app-2]
    """
)
DEPLOYMENT_TARGET = textwrap.dedent(
    """\
    version: 1
    kind: target
    name: staging
    hosts: hosts.yaml
    lb_url: https://staging.example.org/
    api_token: kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk
    channel_uuid: 2A5F0C34-1234-4321-8888-0123456789AB
    aggregator: {url: "http://127.0.0.1:8070", send_url: "http://10.0.0.5:8070/send"}
    database: postgres://ro:pw@db.internal:5432/temba
    flows: [Favorites]
    """
)
DEPLOYMENT_PLAN = textwrap.dedent(
    """\
    version: 1
    kind: certification
    target:
      deployment: staging.yaml
    current:
      version: 9.2.5
      versions: {courier: 9.2.1}
    candidate:
      version: 9.3.0
      versions: {courier: 9.3.0}
    experiments: [kill-courier]
    """
)


def deployment_plan(tmp_path: Path, text: str = DEPLOYMENT_PLAN) -> Path:
    (tmp_path / "hosts.yaml").write_text(DEPLOYMENT_HOSTS)
    (tmp_path / "staging.yaml").write_text(DEPLOYMENT_TARGET)
    (tmp_path / "plan.yaml").write_text(text)
    return tmp_path / "plan.yaml"


def test_a_deployment_plan_rolls_versions_through_the_hosts_files_upgrade_commands(tmp_path: Path) -> None:
    plan = load_plan(deployment_plan(tmp_path), CATALOGUE)
    assert plan.deployment is not None and plan.deployment.name == "staging"
    assert plan.topology_file == tmp_path / "hosts.yaml"
    assert set(plan.topology.services) == {"courier", "mailroom"}
    assert plan.current.images == {"courier": "9.2.1"} and plan.candidate.images == {"courier": "9.3.0"}
    assert plan.services == ("courier",)


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("versions: {courier: 9.3.0}", "images: {courier: 9.3.0}", 10, "images in candidate: a deployment is moved"),
        ("versions: {courier: 9.3.0}", "versions: {mailroom: 9.3.0}", 9, "declares no `upgrade:` for it"),
        ("  versions: {courier: 9.2.1}\n", "", 6, "current names no version for courier"),
        ("versions: {courier: 9.3.0}", "versions: {courier: 9.2.1}", 6, "name the same versions"),
        ("deployment: staging.yaml", "deployment: nowhere.yaml", 4, "cannot be used"),
        ("  deployment: staging.yaml\n", "  deployment: staging.yaml\n  topology: t.yaml\n", 4, "not both"),
    ],
)
def test_each_deployment_mistake_is_located(tmp_path: Path, old: str, new: str, line: int, fragment: str) -> None:
    assert old in DEPLOYMENT_PLAN
    with pytest.raises(PlanError) as caught:
        load_plan(deployment_plan(tmp_path, DEPLOYMENT_PLAN.replace(old, new)), CATALOGUE)
    errors = [str(e) for e in caught.value.errors]
    assert any(e.startswith(f"{tmp_path / 'plan.yaml'}:{line}: ") and fragment in e for e in errors), errors


def test_a_deployment_without_a_hosts_file_cannot_be_certified(tmp_path: Path) -> None:
    path = deployment_plan(tmp_path)
    (tmp_path / "staging.yaml").write_text(DEPLOYMENT_TARGET.replace("hosts: hosts.yaml\n", ""))
    with pytest.raises(PlanError) as caught:
        load_plan(path, CATALOGUE)
    assert any("names no hosts file" in str(e) for e in caught.value.errors)


def test_the_topology_is_relative_to_the_plan_and_its_own_mistakes_are_located_there(tmp_path: Path) -> None:
    (tmp_path / "topo.yaml").write_text("version: 1\nname: t\nservices:\n  courier: {role: nope}\n")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(GOOD.replace(str(TOPOLOGY), "topo.yaml"))
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file, CATALOGUE)
    text = str(caught.value)
    assert f"{tmp_path / 'topo.yaml'}:4: " in text
    assert f"{plan_file}:5: topology" in text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "the file is empty"), ("- a\n", "the plan must be a mapping"), ("a: [\n", "YAML syntax error")],
)
def test_files_that_are_not_a_plan(text: str, fragment: str) -> None:
    assert any(fragment in e for e in errors_of(text))


def test_the_command_says_every_mistake_and_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(GOOD.replace("kind: certification", "kind: nope"))
    assert main(["certify", str(plan_file)]) == 3
    err = capsys.readouterr().err
    assert f"{plan_file}:2: kind 'nope' is not a certification plan" in err
    assert "Traceback" not in err
    assert main(["certify", str(tmp_path / "missing.yaml")]) == 3
    assert "no such file" in capsys.readouterr().err


def test_dry_run_lists_every_run_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(GOOD.replace("kill-web", "kill-mailroom").replace("seeds: [7, 8, 9, 10]", "seeds: [7, 8]"))
    assert main(["certify", str(plan_file), "--dry-run"]) == 0
    rows = [line.split()[:4] for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == ["baseline"] * 4 + ["upgrade"] + ["candidate"] * 4 + ["rollback"]
    assert rows[0][1:] == ["kill-courier", "seed", "7"] and rows[3][1:] == ["kill-mailroom", "seed", "8"]
