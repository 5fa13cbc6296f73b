"""The topology's per-service `restart` policy: the defaults by role, the forms it takes, located errors,
the shipped topologies' choices, and how the Docker backend spells it."""

from __future__ import annotations

from pathlib import Path

import pytest

from resilience.backends.docker import docker_restart_policy
from resilience.topology import RestartName, RestartPolicy, Role, Service, TopologyError, load_topology, parse_topology

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = ROOT / "harness" / "topologies"
APP_ROLES = ("web", "celery", "celery-beat", "courier", "mailroom", "indexer", "archiver")
UNSUPERVISED_ROLES = ("postgres", "redis", "sentinel", "elasticsearch", "lb", "proxy", "s3", "aggregator")


def _one_service(role: str, extra: str = "") -> str:
    return f"version: 1\nname: t\nservices:\n  svc:\n    role: {role}\n    image: img\n{extra}"


@pytest.mark.parametrize("role", APP_ROLES)
def test_rapidpro_services_default_to_always(role: str) -> None:
    service = parse_topology(_one_service(role), "t.yaml").services["svc"]
    assert service.restart is None  # not written in the file
    assert service.restart_policy == RestartPolicy(RestartName.ALWAYS)


@pytest.mark.parametrize("role", UNSUPERVISED_ROLES)
def test_infra_and_test_equipment_default_to_no(role: str) -> None:
    service = parse_topology(_one_service(role), "t.yaml").services["svc"]
    assert service.restart_policy == RestartPolicy(RestartName.NO)


def test_every_role_has_a_default_decided_here() -> None:
    assert sorted((*APP_ROLES, *UNSUPERVISED_ROLES)) == sorted(r.value for r in Role)


def test_a_service_built_in_code_gets_its_roles_default() -> None:
    assert str(Service(name="c", role=Role.COURIER, image="i").restart_policy) == "always"
    assert str(Service(name="p", role=Role.POSTGRES, image="i").restart_policy) == "no"


@pytest.mark.parametrize(
    ("written", "policy"),
    [
        ("always", "always"),
        ("on-failure", "on-failure"),
        ("on-failure:3", "on-failure:3"),
        ('"no"', "no"),
        ("no", "no"),  # a bare `no` is YAML's false; the loader takes it as written
        ('"{{ policy }}"', "on-failure:2"),
    ],
)
def test_the_forms_restart_takes(written: str, policy: str) -> None:
    text = "version: 1\nname: t\nparams:\n  policy: on-failure:2\nservices:\n  svc:\n    role: postgres\n"
    text += f"    image: img\n    restart: {written}\n"
    service = parse_topology(text, "t.yaml").services["svc"]
    assert str(service.restart_policy) == policy
    assert service.restart == RestartPolicy.parse(policy)


@pytest.mark.parametrize(
    ("written", "fragments"),
    [
        ("alway", ["bad restart of service 'svc': 'alway'", "expected one of: always, on-failure, on-failure:N, no",
                   "(did you mean 'always'?)"]),
        ("on-failure:0", ["'on-failure:0'", "(N is a number of retries >= 1)"]),
        ("on-failure:x", ["'on-failure:x'", "(N is a number of retries >= 1)"]),
        ("always:3", ["'always:3'"]),
        ("unless-stopped", ["'unless-stopped'", "use always"]),
        ("false", ["'false'", "(did you mean 'no'?)"]),
        ("[always]", ["restart of service 'svc' must be one of: always, on-failure, on-failure:N, no; got a list"]),
        ('"{{ nope }}"', ["undefined param 'nope'"]),
    ],
)  # fmt: skip
def test_bad_restart_is_located(written: str, fragments: list[str]) -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(_one_service("courier", f"    replicas: 2\n    restart: {written}\n"), "bad.yaml")
    (error,) = caught.value.errors
    assert (error.file, error.line) == ("bad.yaml", 8)
    for fragment in fragments:
        assert fragment in error.message


def test_a_misspelt_key_suggests_restart() -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(_one_service("courier", "    restrat: always\n"), "bad.yaml")
    (error,) = caught.value.errors
    assert error.line == 7 and "(did you mean 'restart'?)" in error.message


@pytest.mark.parametrize("name", ["standin-ha.yaml", "rapidpro-ha.yaml"])
def test_shipped_topologies_supervise_the_app_tier_only(name: str) -> None:
    topology = load_topology(TOPOLOGIES / name)
    policies = {s.name: str(s.restart_policy) for s in topology.services.values()}
    assert {n for n, p in policies.items() if p == "always"} == {
        "web", "celery", "celery-beat", "courier", "mailroom", "indexer", "archiver"
    }  # fmt: skip
    assert {n for n, p in policies.items() if p != "always"} == {
        n for n, p in policies.items() if p == "no"
    }  # everything else is "no"
    # Written out where it matters to a reader: the data tier, the test equipment, the services that exit.
    written = {s.name for s in topology.services.values() if s.restart is not None}
    assert written == {"postgres", "redis", "aggregator", "courier", "mailroom"}


@pytest.mark.parametrize(
    ("policy", "docker"),
    [
        ("always", {"Name": "always"}),
        ("no", {"Name": "no"}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
    ],
)
def test_the_backend_spells_it_as_docker_does(policy: str, docker: dict[str, object]) -> None:
    assert docker_restart_policy(RestartPolicy.parse(policy)) == docker
