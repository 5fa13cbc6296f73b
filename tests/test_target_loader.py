"""The target file (resilience/target): what a good one gives, every mistake as `FILE:LINE: ...; expected` (all
at once, no traceback, also through `resilience target check`), `env:VAR` secrets and where NAME is looked for."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from resilience.cli import main
from resilience.target import Target, TargetError, load_target, parse_target, resolve_target_path

REGISTRATION = "3a1d5c8e-7b2f-4c61-9d0e-5f8a2b6c4e10"
CHANNEL = "2A5F0C34-1234-4321-8888-0123456789AB"
ENV = {"RP_TOKEN": "k" * 40, "RP_DSN": "postgres://ro:s3cret@db.internal:5432/temba"}

GOOD = textwrap.dedent(
    f"""\
    version: 1
    kind: target
    name: staging
    description: our staging org
    lb_url: https://staging.example.org/
    api_token: env:RP_TOKEN
    channel_uuid: {CHANNEL}
    aggregator:
      url: http://127.0.0.1:8070
      send_url: http://10.0.0.5:8070/send
    database: env:RP_DSN
    redis: redis://:pw@10.0.0.21:6379/15
    flows:
      Registration: {REGISTRATION}
      Quick reply: ~
    """
)

HOSTS = textwrap.dedent(
    """\
    version: 1
    kind: hosts
    name: staging
    hosts:
      app-1: {address: 10.0.0.11}
    services:
      courier:
        role: courier
        systemd: courier.service
        nodes: [app-1]
    """
)


def parse(text: str, environ: dict[str, str] | None = None, path: str = "t.yaml") -> Target:
    return parse_target(text, path, ENV if environ is None else environ)


def errors_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(TargetError) as caught:
        parse(text, environ)
    return [str(e) for e in caught.value.errors]


def replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


def test_a_good_target_gives_every_field() -> None:
    target = parse(GOOD)
    assert target.name == "staging" and target.description == "our staging org"
    assert target.hosts_file is None and target.load_hosts() is None
    assert target.lb_url == "https://staging.example.org"  # no trailing slash: paths are appended to it
    assert target.api_token == "k" * 40
    assert target.channel_uuid == CHANNEL.lower()
    assert (target.aggregator_url, target.aggregator_send_url) == ("http://127.0.0.1:8070", "http://10.0.0.5:8070/send")
    assert target.database_dsn == ENV["RP_DSN"]
    assert target.redis_url == "redis://:pw@10.0.0.21:6379/15"
    assert target.flows == {"Registration": REGISTRATION, "Quick reply": ""}
    assert target.unresolved_flows == ["Quick reply"]
    assert target.secret_sources == {"api_token": "env:RP_TOKEN", "database": "env:RP_DSN", "redis": "the file"}


def test_flows_as_a_list_of_names_and_no_redis() -> None:
    text = replace(f"  Registration: {REGISTRATION}\n  Quick reply: ~\n", "  - Registration\n  - Quick reply\n")
    target = parse(text.replace("redis: redis://:pw@10.0.0.21:6379/15\n", ""))
    assert target.flows == {"Registration": "", "Quick reply": ""}
    assert target.redis_url is None


def test_libpq_key_value_dsn_is_accepted() -> None:
    target = parse(replace("database: env:RP_DSN", "database: host=db port=5432 dbname=temba user=ro"))
    assert target.database_dsn == "host=db port=5432 dbname=temba user=ro"


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        ("version: 1", "version: 2", 1, "unsupported version 2; expected 1"),
        ("kind: target", "kind: hosts", 2, "kind 'hosts' is not a target; expected `kind: target`"),
        ("name: staging", "name: Staging", 3, "bad target name 'Staging'; expected [a-z][a-z0-9-]*"),
        ("lb_url:", "lb_ur:", 5, "unknown key 'lb_ur' in the target; expected one of:"),
        ("lb_url: https://staging.example.org/", "lb_url: staging.example.org", 5, "is not an http:// or https://"),
        ("lb_url: https://staging.example.org/", "lb_url: http://h:port", 5, "is not a URL"),
        ("api_token: env:RP_TOKEN", "api_token: env:NOT_SET", 6, "NOT_SET is not set; expected `export NOT_SET=...`"),
        ("api_token: env:RP_TOKEN", "api_token: env:1x", 6, "bad variable name '1x'"),
        ("api_token: env:RP_TOKEN", "api_token: Token abc", 6, "starts with 'Token '; expected the key alone"),
        ("api_token: env:RP_TOKEN", 'api_token: ""', 6, "api_token is empty"),
        ("api_token: env:RP_TOKEN", "api_token: [a]", 6, "api_token must be"),
        (f"channel_uuid: {CHANNEL}", "channel_uuid: 12", 7, "channel_uuid '12' is not a UUID"),
        ("  url: http://127.0.0.1:8070", "  ur: http://127.0.0.1:8070", 9, "unknown key 'ur' in aggregator"),
        ("  send_url: http://10.0.0.5:8070/send", "  send_url: 10.0.0.5:8070", 10, "send_url of aggregator"),
        ("database: env:RP_DSN", "database: mysql://db/temba", 11, "database is not a Postgres DSN"),
        ("database: env:RP_DSN", "database: host='db", 11, "is not a DSN libpq can read"),
        ("redis: redis://:pw@10.0.0.21:6379/15", "redis: redis://10.0.0.21:6379", 12, "names no database number"),
        ("redis: redis://:pw@10.0.0.21:6379/15", "redis: http://10.0.0.21/15", 12, "is not redis:// or rediss://"),
        (f"  Registration: {REGISTRATION}", "  Registration: 42", 14, "uuid of flow 'Registration' is '42', not a"),
        ("flows:\n", "flows: {}\n", 13, "flows is empty; expected"),
        ("flows:\n", "flows: 3\n", 13, "flows must be a list of flow names"),
    ],
)
def test_each_mistake_is_located_and_says_what_was_expected(old: str, new: str, line: int, fragment: str) -> None:
    text = replace(old, new)
    if new.startswith("flows: "):  # the flows' entries go with the key they belonged to
        text = text.split("flows:")[0] + new
    errors = errors_of(text)
    assert any(e.startswith(f"t.yaml:{line}: ") and fragment in e for e in errors), errors
    # Nothing else is wrong, but a misspelt key also leaves the key it meant missing.
    assert len(errors) == (2 if "unknown key" in fragment else 1), errors


def test_a_misspelt_key_gets_a_suggestion() -> None:
    (error,) = errors_of(replace("channel_uuid:", "chanel_uuid:").replace(f"chanel_uuid: {CHANNEL}\n", "") + "")
    assert "missing 'channel_uuid'" in error
    errors = errors_of(replace("channel_uuid:", "chanel_uuid:"))
    assert any("(did you mean 'channel_uuid'?)" in e for e in errors), errors


def test_every_mistake_at_once_in_file_order() -> None:
    text = replace("version: 1", "version: 3").replace("kind: target", "kind: nope").replace("flows:", "flow:")
    errors = errors_of(text, environ={})
    lines = [int(e.split(":")[1]) for e in errors]
    assert lines == sorted(lines)
    assert len(errors) >= 5, errors  # version, kind, two unset variables, the misspelt key, missing flows


def test_missing_required_keys_are_each_named() -> None:
    errors = errors_of("version: 1\nkind: target\n")
    for key in ("name", "lb_url", "api_token", "channel_uuid", "aggregator", "database", "flows"):
        assert any(f"missing '{key}'" in e for e in errors), (key, errors)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "t.yaml: the file is empty"),
        ("- a\n- b\n", "t.yaml:1: the target must be a mapping"),
        ("version: 1\n  kind: x\n", "t.yaml:2: YAML syntax error"),
        ("version: 1\nversion: 1\n", "t.yaml:2: duplicate key 'version'"),
    ],
)
def test_files_that_are_not_a_target_mapping(text: str, fragment: str) -> None:
    errors = errors_of(text)
    assert any(e.startswith(fragment) for e in errors), errors


def test_an_empty_variable_is_an_error_at_its_line() -> None:
    (error,) = errors_of(GOOD, environ={**ENV, "RP_TOKEN": "  "})
    assert error.startswith("t.yaml:6: api_token comes from env:RP_TOKEN, but RP_TOKEN is empty")


def test_hosts_is_relative_to_the_target_file_and_validated(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yaml").write_text(HOSTS)
    path = tmp_path / "staging.yaml"
    path.write_text(replace("lb_url:", "hosts: inventory/hosts.yaml\nlb_url:"))
    target = load_target(path, ENV)
    assert target.hosts_file == tmp_path / "inventory" / "hosts.yaml"
    hosts = target.load_hosts()
    assert hosts is not None and [n.name for n in hosts.nodes()] == ["courier-1"]


def test_a_bad_hosts_file_reports_its_own_lines_and_the_target_line(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text(HOSTS.replace("role: courier", "role: couriers"))
    path = tmp_path / "staging.yaml"
    path.write_text(replace("lb_url:", "hosts: hosts.yaml\nlb_url:"))
    with pytest.raises(TargetError) as caught:
        load_target(path, ENV)
    text = str(caught.value)
    assert f"{tmp_path / 'hosts.yaml'}:8: unknown role 'couriers'" in text
    assert f"{path}:5: hosts file" in text and "has the mistakes above" in text


def test_a_missing_hosts_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "staging.yaml"
    path.write_text(replace("lb_url:", "hosts: nowhere.yaml\nlb_url:"))
    with pytest.raises(TargetError) as caught:
        load_target(path, ENV)
    assert str(caught.value).startswith(f"{path}:5: hosts file '{tmp_path / 'nowhere.yaml'}' does not exist")


def test_a_name_is_looked_for_in_targets_then_in_resilience_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "staging.yaml").write_text(GOOD)
    environ = {"RESILIENCE_TARGETS": f"{first}{os.pathsep}{second}"}
    assert resolve_target_path("staging", environ) == second / "staging.yaml"
    (first / "staging.yaml").write_text(GOOD)
    assert resolve_target_path("staging", environ) == first / "staging.yaml"
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "staging.yaml").write_text(GOOD)
    assert resolve_target_path("staging", environ) == Path("targets/staging.yaml")
    # A path ending in .yaml is used as it is, even where a target of that name exists.
    assert resolve_target_path("other/staging.yaml", environ) == Path("other/staging.yaml")


def test_an_unknown_name_says_where_it_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError) as caught:
        resolve_target_path("prod", {})
    assert str(caught.value) == (
        "prod: no such target; looked for targets/prod.yaml ($RESILIENCE_TARGETS is not set); "
        "expected a file there, or a path ending in .yaml"
    )
    with pytest.raises(TargetError, match="neither a target name nor a YAML file"):
        resolve_target_path("../x", {})
    with pytest.raises(TargetError, match=r"missing\.yaml: no such file; expected a target YAML file"):
        load_target("missing.yaml", {})


def test_the_cli_prints_located_errors_and_exits_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RP_TOKEN", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text(replace("version: 1", "version: 7"))
    for action in ("check", "show"):
        assert main(["target", action, str(path)]) == 3
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and captured.out == ""
        assert f"{path}:1: unsupported version 7; expected 1" in captured.err
        assert f"{path}:6: api_token comes from env:RP_TOKEN, but RP_TOKEN is not set" in captured.err


def test_show_masks_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "t.yaml"
    path.write_text(GOOD)
    assert main(["target", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "k" * 40 not in out and "s3cret" not in out and ":pw@" not in out
    assert "kkkk…  (from env:RP_TOKEN)" in out
    assert "postgres://ro:***@db.internal:5432/temba  (from env:RP_DSN)" in out
    assert "Quick reply: (found by name through the API)" in out
