"""The topology model, its loader's located errors, and `resilience topology validate | show`."""

from __future__ import annotations

import random
import shlex
from pathlib import Path

import pytest

from resilience.cli import main
from resilience.topology import (
    HealthCheck,
    HealthKind,
    LocatedError,
    Port,
    Role,
    Service,
    Tier,
    Topology,
    TopologyError,
    TopologyLookupError,
    load_topology,
    parse_param_options,
    parse_set_options,
    parse_topology,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "topologies"
GOOD = DATA / "good"
BAD = DATA / "bad"
TOPOLOGIES = ROOT / "harness" / "topologies"


def errors_of(path: Path, params: dict[str, object] | None = None) -> list[LocatedError]:
    with pytest.raises(TopologyError) as caught:
        load_topology(path, params)
    return caught.value.errors


# ------------------------------------------------------------------------------------------ good files


@pytest.fixture(scope="module")
def full() -> Topology:
    return load_topology(GOOD / "full.yaml")


def test_minimal_file_gets_the_defaults() -> None:
    topology = load_topology(GOOD / "minimal.yaml")
    cache = topology.services["cache"]
    assert (topology.name, topology.description, topology.params) == ("minimal", "", {})
    assert (cache.role, cache.tier, cache.image, cache.replicas) == (Role.REDIS, Tier.INFRA, "redis:6.2", 1)
    assert cache.command is None and cache.entrypoint is None
    assert (cache.env, cache.ports, cache.volumes, cache.health, cache.depends_on) == ({}, (), (), (), ())
    assert (cache.health_timeout, cache.switches, cache.privileged, cache.cap_add) == (60.0, {}, False, ())
    assert cache.line == 4


def test_full_file_is_read_field_by_field(full: Topology) -> None:
    assert list(full.services) == ["db", "kv", "balancer", "courier", "mailroom"]  # file order
    assert full.params == {"n": 1, "workers": 8, "ratio": 0.5, "mode": "async", "debug": False}
    db, kv, balancer, courier = (full.services[n] for n in ("db", "kv", "balancer", "courier"))
    assert db.replicas == 2 and db.health_timeout == 90.5
    assert db.env == {"POSTGRES_PASSWORD": "temba", "SYNC": "false"}  # a rendered boolean, Go-style
    assert db.volumes == ("pgdata:/var/lib/postgresql/data", "/etc/hosts:/etc/extra-hosts:ro")
    assert db.health == (
        HealthCheck(HealthKind.PORT, port=5432),
        HealthCheck(HealthKind.COMMAND, command=("pg_isready", "-q")),
    )
    assert kv.command == ("redis-server", "--appendonly", "yes", "--save", "")  # split like a shell
    assert kv.ports == (Port(6379, "tcp"), Port(6380, "tcp"), Port(5353, "udp"))
    assert [(port, proto) for port, proto in kv.ports][2] == (5353, "udp")
    assert kv.health[0].command == ("redis-cli", "ping") and kv.health[1].pattern == "Ready to accept connections"
    assert balancer.entrypoint == ("haproxy",) and balancer.command == ("-W", "-db", "-f", "/etc/haproxy/haproxy.cfg")
    assert (balancer.privileged, balancer.cap_add, balancer.depends_on) == (True, ("NET_ADMIN",), ("db", "kv"))
    assert balancer.health == (HealthCheck(HealthKind.HTTP, port=80, path="/health", status=204, contains="ok"),)
    assert courier.health == (HealthCheck(HealthKind.HTTP, port=8080, path="/", status=200),)
    assert courier.replicas == 2
    assert courier.switches == {"drop_after_ack": 0.5, "slow": True, "name": "x", "count": 3}


def test_env_values_keep_yaml_scalars_as_written_and_merge_keys_override(full: Topology) -> None:
    courier, mailroom = full.services["courier"], full.services["mailroom"]
    assert courier.env == {
        "COURIER_MAX_WORKERS": "32",
        "COURIER_DEBUG": "false",
        "COURIER_RATIO": "1e3",  # not "1000.0"
        "COURIER_FLAG": "yes",  # not "True"
    }
    assert mailroom.env["COURIER_FLAG"] == "no"  # the explicit key wins over the merged anchor
    assert mailroom.env["COURIER_MAX_WORKERS"] == "32"
    assert mailroom.env["DIR"] == str(GOOD.resolve())  # the built-in topology_dir


def test_params_are_overridden_with_the_type_of_their_default() -> None:
    topology = load_topology(
        GOOD / "full.yaml", {"n": "2", "workers": 1, "ratio": "0.25", "mode": "sync", "debug": "true"}
    )
    assert topology.params == {"n": 2, "workers": 1, "ratio": 0.25, "mode": "sync", "debug": True}
    assert topology.services["courier"].replicas == 3
    assert topology.services["courier"].env["COURIER_MAX_WORKERS"] == "4"
    assert topology.services["courier"].switches["drop_after_ack"] == 0.25
    assert topology.services["db"].env["SYNC"] == "true"


def test_bad_param_overrides_are_reported_together() -> None:
    errors = errors_of(GOOD / "full.yaml", {"n": "two", "debug": "perhaps", "wokers": "3"})
    messages = [e.message for e in errors]
    assert all(e.line is None for e in errors)
    assert any("--param n=two: expected an int like its default 1" in m for m in messages)
    assert any("--param debug=perhaps: expected a boolean" in m for m in messages)
    assert any("--param wokers: the topology declares no such param" in m and "'workers'" in m for m in messages)
    assert str(errors[0]).startswith(f"{GOOD / 'full.yaml'}: --param")


def test_nodes_are_named_service_dash_index(full: Topology) -> None:
    names = [n.name for n in full.nodes()]
    assert names == ["db-1", "db-2", "kv-1", "balancer-1", "courier-1", "courier-2", "mailroom-1", "mailroom-2"]
    spec = full.node("courier-2")
    assert (spec.service, spec.index) == ("courier", 2)
    with pytest.raises(TopologyLookupError, match="no node 'courier-3'"):
        full.node("courier-3")
    with pytest.raises(TopologyLookupError, match="no service 'web'"):
        full.service("web")


def test_start_waves_follow_dependencies(full: Topology) -> None:
    waves = [[s.name for s in wave] for wave in full.start_waves()]
    assert waves == [["db", "kv"], ["balancer"], ["courier", "mailroom"]]


def test_select_by_tier_role_and_service(full: Topology) -> None:
    assert list(full.select(["infra"]).services) == ["db", "kv", "balancer"]
    assert list(full.select(["app"]).services) == ["courier", "mailroom"]
    assert list(full.select(["mailroom,postgres"]).services) == ["db", "mailroom"]  # file order
    assert list(full.select(["balancer", "redis"]).services) == ["kv", "balancer"]
    # a dependency left out of the selection counts as already satisfied
    assert [[s.name for s in w] for w in full.select(["app"]).start_waves()] == [["courier", "mailroom"]]
    assert len(full.select(["courier"]).nodes()) == 2


def test_select_refuses_unknown_and_empty_selectors(full: Topology) -> None:
    with pytest.raises(TopologyError) as caught:
        full.select(["app", "couriers", "s3"])
    messages = [e.message for e in caught.value.errors]
    assert len(messages) == 2
    assert "--only couriers: unknown selector; expected a tier (infra, app)" in messages[0]
    assert "did you mean 'courier'?" in messages[0]
    assert messages[1] == "--only s3: no service of topology full has that tier or role"
    with pytest.raises(TopologyError, match="nothing selected"):
        full.select([" , "])


def test_with_switches_merges_into_a_copy(full: Topology) -> None:
    changed = full.with_switches({"courier": {"drop_after_ack": 0.1, "new": "x"}, "kv": {"slow": True}})
    assert changed.services["courier"].switches == {
        "drop_after_ack": 0.1,
        "slow": True,
        "name": "x",
        "count": 3,
        "new": "x",
    }
    assert changed.services["kv"].switches == {"slow": True}
    assert full.services["courier"].switches["drop_after_ack"] == 0.5  # the original is untouched
    assert changed.services["db"] is full.services["db"]
    with pytest.raises(TopologyError) as caught:
        full.with_switches({"couriers": {"x": 1}, "kv": {"Bad-Name": 1, "ok": [1]}})
    messages = [e.message for e in caught.value.errors]
    assert any("no service 'couriers'" in m and "did you mean 'courier'" in m for m in messages)
    assert any("kv.Bad-Name: bad switch name" in m for m in messages)
    assert any("kv.ok: expected a string, number or boolean" in m for m in messages)


def test_with_images_matches_whole_references_or_repositories(full: Topology) -> None:
    changed = full.with_images(
        {"redis:6.2": "redis:7.2", "nyaruka/courier": "nyaruka/courier:v9.2.2", "resilience-base": "x"}
    )
    assert changed.services["kv"].image == "redis:7.2"
    assert changed.services["courier"].image == "nyaruka/courier:v9.2.2"
    assert changed.services["db"].image == "postgis/postgis:15-3.4"
    assert full.services["kv"].image == "redis:6.2"


def test_services_are_hashable_and_compare_by_value(full: Topology) -> None:
    again = load_topology(GOOD / "full.yaml")
    assert again.services == full.services
    assert hash(again.services["courier"]) == hash(full.services["courier"])


def test_parse_set_options_types_values() -> None:
    assert parse_set_options(
        ["courier.drop_after_ack=0.1", "courier.slow=true", "mailroom.retries=3", "mailroom.mode=fast", "web.x="]
    ) == {
        "courier": {"drop_after_ack": 0.1, "slow": True},
        "mailroom": {"retries": 3, "mode": "fast"},
        "web": {"x": ""},
    }
    assert parse_set_options(["courier.list=[1, 2]"]) == {"courier": {"list": "[1, 2]"}}  # not a scalar: kept as text
    with pytest.raises(TopologyError) as caught:
        parse_set_options(["courier=1", "courier.drop_after_ack", "Courier.x=1"])
    assert [str(e) for e in caught.value.errors] == [
        "--set: 'courier=1': expected SERVICE.SWITCH=VALUE",
        "--set: 'courier.drop_after_ack': expected SERVICE.SWITCH=VALUE",
        "--set: 'Courier.x=1': expected SERVICE.SWITCH=VALUE",
    ]


def test_parse_param_options() -> None:
    assert parse_param_options(["n=2", "url=redis://x:1/15?a=b"]) == {"n": "2", "url": "redis://x:1/15?a=b"}
    with pytest.raises(TopologyError, match="'n': expected NAME=VALUE"):
        parse_param_options(["n"])


# ------------------------------------------------------------------------------------------- bad files

# (file, line, what the message must say): each bad sample's every mistake, in line order.
EXPECTED_ERRORS: dict[str, list[tuple[int | None, list[str]]]] = {
    "yaml_syntax.yaml": [(6, ["YAML syntax error", "expected valid YAML", "indentation"])],
    "unknown_top_key.yaml": [
        (3, ["unknown key 'networks' in the topology; expected one of: version, name, description, params, services"])
    ],
    "unknown_service_key.yaml": [
        (
            7,
            [
                "unknown key 'replica' in service 'courier'; expected one of: role, image, replicas,",
                "did you mean 'replicas'?",
            ],
        )
    ],
    "unknown_role.yaml": [
        (5, ["unknown role 'webapp' for service 'web'; expected one of: web, celery, celery-beat, courier, mailroom,"])
    ],
    "missing_image.yaml": [
        (4, ["service 'courier' has no image; expected `image: NAME[:TAG]`"]),
        (9, ["image of service 'mailroom' must be a non-empty name"]),
    ],
    "bad_replicas.yaml": [
        (9, ["replicas of service 'web' must be an int >= 1; got 0"]),
        (13, ["replicas of service 'celery' must be an int >= 1; got the string 'two'"]),
        (17, ["replicas of service 'courier' must be an int >= 1; got 0"]),  # rendered from "{{ n }}"
        (21, ["replicas of service 'mailroom' must be an int >= 1; got 1.5"]),
    ],
    "bad_port.yaml": [
        (9, ['bad port 70000 in ports of service \'web\'; expected 1..65535, "N/tcp" or "N/udp"']),
        (10, ["bad port '8080/sctp'"]),
        (11, ["bad port 'http'"]),
        (12, ["port 8000/tcp is listed twice in ports of service 'web'"]),
    ],
    "unknown_dependency.yaml": [
        (10, ["service 'courier' depends on unknown service 'postgress'; expected one of: postgres", "did you mean"]),
        (10, ["service 'courier' depends on unknown service 'redis'"]),
    ],
    "dependency_cycle.yaml": [
        (7, ["dependency cycle: lb -> web -> toxiproxy -> lb; expected depends_on to form no cycle"]),
        (19, ["dependency cycle: redis -> sentinel -> redis"]),
    ],
    "duplicate_service.yaml": [(10, ["duplicate service 'courier' (first at line 4)"])],
    "bad_health.yaml": [
        (
            9,
            [
                "unknown health check 'tcp' in health check of service 'courier';",
                "expected one of: port, http, command, log",
            ],
        ),
        (10, ["http health check of service 'courier' has no port; expected `http: {port: N, path: /}`"]),
        (12, ["bad regular expression 'ready ('"]),
        (13, ["must have exactly one key; expected one of: port, http, command, log"]),
    ],
    "health_port_unpublished.yaml": [
        (10, ["uses port 9090, which is not in its ports; expected it listed under ports"]),
        (15, ["health check port 8080 of service 'indexer' needs port 8080 published; expected `ports: [8080]`"]),
    ],
    "undefined_param.yaml": [
        (
            9,
            [
                "replicas of service 'web': undefined param 'm' in template '{{ m + 1 }}';",
                "expected one of the params (n)",
            ],
        ),
        (13, ['got an unquoted template (write it in quotes: "{{ ... }}")']),
    ],
    "bad_service_name.yaml": [
        (4, ["bad service name 'Courier_1'; expected [a-z][a-z0-9-]*"]),
        (11, ["service name 'web-2' is also the name of node web-2 of service 'web'"]),
    ],
    "bad_env_switches.yaml": [
        (7, ["env of service 'courier' must be a mapping; got a list"]),
        (9, ["drop_after_ack in switches of service 'courier' must be a string, number or boolean; got a list"]),
        (14, ["MAILROOM_DB in env of service 'mailroom' must be a string, number or boolean; got a mapping"]),
        (15, ["MAILROOM_ADDRESS in env of service 'mailroom' must be a string, number or boolean; got nothing"]),
        (16, ["switches of service 'mailroom' must be a mapping; got the string 'drop_after_ack=0.1'"]),
    ],
    "bad_volumes.yaml": [
        (9, ["bad volume 'relative/dir:/data'", "neither a volume name nor an absolute host path"]),
        (10, ["bad volume 'spool2:var/spool'", "the target is not an absolute path"]),
        (11, ["bad volume 'spool3:/var/spool/courier:rx'", "not SOURCE:TARGET[:ro|rw]"]),
    ],
    "many_errors.yaml": [
        (1, ["unsupported version 2; expected 1"]),
        (2, ["bad topology name 'Many'"]),
        (3, ["unknown key 'colour' in the topology"]),
        (5, ["param 'n' must have a default that is an int, float, string or boolean; got a list"]),
        (7, ["service 'web' has no image"]),
        (8, ["unknown role 'website'"]),
        (9, ["replicas of service 'web' must be an int >= 1; got -1"]),
        (10, ["bad port 0"]),
        (11, ["depends on unknown service 'nowhere'"]),
        (12, ["health_timeout of service 'web' must be a number of seconds > 0"]),
        (13, ["privileged of service 'web' must be true or false"]),
        (14, ["bad capability 'net_admin'"]),
    ],
}


def test_every_bad_sample_has_expectations() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_bad_sample_reports_every_mistake_with_its_line(name: str) -> None:
    path = BAD / name
    errors = errors_of(path)
    expected = EXPECTED_ERRORS[name]
    assert len(errors) == len(expected), "\n".join(map(str, errors))
    for error, (line, fragments) in zip(errors, expected, strict=True):
        assert error.file == str(path)
        assert error.line == line, str(error)
        for fragment in fragments:
            assert fragment in error.message, str(error)
        assert str(error) == f"{path}:{line}: {error.message}"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", None, "the file is empty"),
        ("- a\n- b\n", 1, "the topology must be a mapping; got a list"),
        ("version: 1\nname: x\n", 1, "missing 'services'"),
        ("name: x\nservices: {}\n", 1, "missing 'version'; expected `version: 1`"),
        ("version: 1\nname: x\nservices: {}\n", 3, "no services; expected at least one service"),
        (
            "version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: i\n    image: j\n",
            7,
            "duplicate key 'image'",
        ),
        ("version: 1\nname: x\nservices:\n  a:\n    role: [web]\n    image: i\n", 5, "role of service 'a' must be"),
        (
            "version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: i\n    command: []\n",
            7,
            "must not be empty",
        ),
        (
            'version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: i\n    command: "a \'b"\n',
            7,
            "cannot split",
        ),
        ("version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: '{{ 1 / 0 }}'\n", 6, "ZeroDivisionError"),
        ("version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: '{{ 1 +'\n", 6, "template syntax error"),
        (
            "version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: i\n    depends_on: [a]\n",
            7,
            "depends on itself",
        ),
        (
            "version: 1\nname: x\nparams: {if: 1, topology_dir: 2}\nservices:\n  a:\n    role: web\n    image: i\n",
            3,
            "bad param name 'if'",
        ),
        (
            "version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: i\n"
            "    replicas: !!python/name:os.system ''\n",
            7,
            "could not determine a constructor",
        ),
        (
            "version: 1\nname: x\nservices:\n  a:\n    role: web\n    image: !!python/object:os.system i\n",
            6,
            "could not determine a constructor",
        ),
        ("version: 1\nname: x\nservices:\n  a: &x\n    role: web\n    image: i\n    <<: 3\n", 4, "bad merge key"),
    ],
)
def test_other_mistakes_are_located(text: str, line: int | None, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    first = errors_of(path)[0]
    assert (first.file, first.line) == (str(path), line), str(first)
    assert fragment in first.message, str(first)


def test_an_error_inside_an_anchor_is_reported_once() -> None:
    text = """version: 1
name: x
services:
  a:
    role: web
    image: i
    env: &shared {GOOD: 1, BAD: [1]}
  b:
    role: celery
    image: i
    env: *shared
"""
    with pytest.raises(TopologyError) as caught:
        parse_topology(text, "t.yaml")
    assert [(e.line, e.message) for e in caught.value.errors] == [
        (7, "BAD in env of service 'a' must be a string, number or boolean; got a list"),
        (7, "BAD in env of service 'b' must be a string, number or boolean; got a list"),
    ]


def test_missing_file_and_directory_are_errors_not_tracebacks(tmp_path: Path) -> None:
    assert "no such file" in str(errors_of(tmp_path / "nope.yaml")[0])
    assert "is a directory" in str(errors_of(tmp_path)[0])
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    assert "cannot read it" in str(errors_of(tmp_path / "latin.yaml")[0])


def test_mangled_files_never_raise_anything_but_topology_error() -> None:
    # Cut, duplicate and corrupt lines of a valid file at random (seeded): whatever comes out must be a
    # Topology or a TopologyError, never another exception.
    source = (GOOD / "full.yaml").read_text().splitlines()
    rng = random.Random(20240611)
    junk = ["", "  ", ":", "- x", "{{", "'", "[", "&a", "*a", "<<: *app_env", "\t", "~", "? x", "!!int x"]
    outcomes = {"valid": 0, "invalid": 0}
    for _ in range(400):
        lines = list(source)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(lines))
            action = rng.randrange(4)
            if action == 0:
                del lines[i]
            elif action == 1:
                lines.insert(i, lines[rng.randrange(len(lines))])
            elif action == 2:
                cut = rng.randrange(len(lines[i]) + 1)
                lines[i] = lines[i][:cut] + rng.choice(junk) + lines[i][cut:]
            else:
                lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()
        try:
            parse_topology("\n".join(lines), "mangled.yaml")
            outcomes["valid"] += 1
        except TopologyError as exc:
            assert exc.errors and all(e.message for e in exc.errors)
            outcomes["invalid"] += 1
    assert outcomes["invalid"] > 100 and outcomes["valid"] > 10, outcomes


# -------------------------------------------------------------------------------- the real topologies


def test_standin_topology_validates() -> None:
    topology = load_topology(TOPOLOGIES / "standin-ha.yaml")
    assert topology.name == "standin-ha"
    assert {s.role for s in topology.services.values()} == set(Role)


def test_rapidpro_topology_is_the_whole_ha_list_with_real_images() -> None:
    topology = load_topology(TOPOLOGIES / "rapidpro-ha.yaml")
    by_role = {role: [s for s in topology.services.values() if s.role is role] for role in Role}
    assert all(len(services) == 1 for services in by_role.values()), "one service per role"
    role = {r: s[0] for r, s in by_role.items()}
    expected = {
        Role.WEB: ("nyaruka/rapidpro:v9.2.5", 2),
        Role.CELERY: ("nyaruka/rapidpro:v9.2.5", 2),
        Role.CELERY_BEAT: ("nyaruka/rapidpro:v9.2.5", 1),
        Role.COURIER: ("nyaruka/courier:v9.2.1", 2),
        Role.MAILROOM: ("nyaruka/mailroom:v9.2.2", 2),
        Role.INDEXER: ("nyaruka/indexer:v9.2.0", 1),
        Role.POSTGRES: ("postgis/postgis:15-3.4", 2),
        Role.REDIS: ("redis:6.2", 2),
        Role.SENTINEL: ("redis:6.2", 3),
        Role.ELASTICSEARCH: (None, 2),
        Role.LB: ("haproxy:2.6", 1),
        Role.PROXY: ("ghcr.io/shopify/toxiproxy:2.9.0", 1),
        Role.AGGREGATOR: ("resilience-node", 1),
    }
    for r, (image, replicas) in expected.items():
        assert role[r].replicas == replicas, r
        assert image is None or role[r].image == image, r
    assert role[Role.ELASTICSEARCH].image.startswith("elasticsearch:8.")
    assert role[Role.ARCHIVER].image.startswith("nyaruka/rp-archiver:v9.")
    assert role[Role.ARCHIVER].replicas == 1

    # The Django image's own entrypoint would run runserver, and a beat inside every worker: replaced.
    def started_program(service: Service) -> list[str]:
        assert service.entrypoint == ("/bin/sh", "-c") and service.command is not None
        last = service.command[-1].replace("\\\n", " ").strip().splitlines()[-1]
        return shlex.split(last)

    assert started_program(role[Role.CELERY_BEAT])[:5] == ["exec", ".venv/bin/celery", "-A", "temba", "beat"]
    worker = started_program(role[Role.CELERY])
    assert worker[:5] == ["exec", ".venv/bin/celery", "-A", "temba", "worker"]
    assert "-B" not in worker and "--beat" not in worker
    web = started_program(role[Role.WEB])
    assert web[:3] == ["exec", ".venv/bin/gunicorn", "temba.wsgi:application"] and "0.0.0.0:8000" in web
    assert Port(8000, "tcp") in role[Role.WEB].ports

    courier, mailroom = role[Role.COURIER].env, role[Role.MAILROOM].env
    assert courier["COURIER_DB"].startswith("postgres://temba:temba@toxiproxy:15432/temba")
    assert courier["COURIER_REDIS"] == mailroom["MAILROOM_REDIS"] == "redis://toxiproxy:16379/15"
    assert courier["COURIER_DISALLOWED_NETWORKS"] == "6.6.6.6"
    assert courier["COURIER_MAX_WORKERS"] == "32"
    spool = courier["COURIER_SPOOL_DIR"]
    assert any(v.split(":")[1] == spool and not v.startswith("/") for v in role[Role.COURIER].volumes)
    assert mailroom["MAILROOM_ADDRESS"] == "0.0.0.0"
    assert (mailroom["MAILROOM_HANDLER_WORKERS"], mailroom["MAILROOM_BATCH_WORKERS"]) == ("32", "4")
    assert mailroom["MAILROOM_ELASTIC"].startswith("http://")
    assert role[Role.INDEXER].env["INDEXER_ELASTIC_URL"] == mailroom["MAILROOM_ELASTIC"]
    assert role[Role.ARCHIVER].env["ARCHIVER_DB"].startswith("postgres://temba:temba@toxiproxy:15432/temba")

    bigger = load_topology(TOPOLOGIES / "rapidpro-ha.yaml", {"n": "2", "courier_workers": "8"})
    assert [bigger.services[s.name].replicas for s in (role[Role.WEB], role[Role.COURIER])] == [3, 3]
    assert bigger.services[role[Role.COURIER].name].env["COURIER_MAX_WORKERS"] == "8"
    assert bigger.services[role[Role.CELERY_BEAT].name].replicas == 1


# ---------------------------------------------------------------------------------------------- the CLI


def test_cli_validate_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = GOOD / "full.yaml"
    assert main(["topology", "validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid (5 services, 8 nodes)\n"
    assert main(["topology", "validate", str(path), "--param", "n=3"]) == 0
    assert capsys.readouterr().out == f"{path}: valid (5 services, 12 nodes)\n"


def test_cli_validate_invalid_file_prints_every_error(capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / "bad_port.yaml"
    assert main(["topology", "validate", str(path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:{n}" for n in (9, 10, 11, 12)]
    assert "Traceback" not in captured.err


def test_cli_validate_bad_param_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "validate", str(GOOD / "full.yaml"), "--param", "n"]) == 3
    assert capsys.readouterr().err == "--param: 'n': expected NAME=VALUE\n"
    assert main(["topology", "validate", str(GOOD / "full.yaml"), "--param", "n=x"]) == 3
    assert "--param n=x: expected an int like its default 1" in capsys.readouterr().err


def test_cli_show_lists_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "show", str(GOOD / "full.yaml")]) == 0
    out = capsys.readouterr().out
    for header in ("node", "service", "role", "tier", "image", "ports", "depends_on"):
        assert header in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert list(rows) == ["db-1", "db-2", "kv-1", "balancer-1", "courier-1", "courier-2", "mailroom-1", "mailroom-2"]
    cells = [c.strip() for c in rows["balancer-1"].split("│")[1:-1]]
    assert cells == ["balancer-1", "balancer", "lb", "infra", "haproxy:2.6", "80", "db kv"]
    assert [c.strip() for c in rows["kv-1"].split("│")[1:-1]][5] == "6379 6380 5353/udp"


def test_cli_show_only_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", "show", str(GOOD / "full.yaml"), "--only", "app", "--param", "n=0"]) == 0
    out = capsys.readouterr().out
    assert "courier-1" in out and "mailroom-1" in out and "db-1" not in out and "courier-2" not in out
    assert main(["topology", "show", str(GOOD / "full.yaml"), "--only", "infra,nope"]) == 3
    assert "--only nope: unknown selector" in capsys.readouterr().err
    assert main(["topology", "show", str(BAD / "dependency_cycle.yaml")]) == 3
    assert "dependency cycle" in capsys.readouterr().err


def test_cli_topology_without_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology"]) == 3  # a usage error is bad input
    assert "validate" in capsys.readouterr().err
