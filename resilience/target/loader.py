"""Reading a target file (`kind: target`): `load_target(NAME_OR_PATH)`.

Read with the topology files' YAML reader, so every mistake is `FILE:LINE: what; expected ...`, all of a file's
mistakes at once (the hosts file it names included), misspelt keys with a suggestion, never a traceback.
A value may be written `env:VAR` to take it from the environment, so that no secret needs to be in the file.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from yaml.nodes import MappingNode, Node, ScalarNode

from resilience.target.model import SECRET_FIELDS, Target, TargetError
from resilience.topology.errors import LocatedError, TopologyError
from resilience.topology.hosts import HostsTopology, load_hosts
from resilience.topology.loader import (
    check_kind,
    check_version,
    read_description,
    read_name,
    read_yaml_file,
    read_yaml_root,
)
from resilience.topology.yaml_reader import NULL_TAG, Failed, YamlReader

KIND = "target"
TARGETS_DIR = Path("targets")  # relative to the working directory
TARGETS_ENV = "RESILIENCE_TARGETS"
_TOP_KEYS = (
    "version",
    "kind",
    "name",
    "description",
    "hosts",
    "lb_url",
    "api_token",
    "channel_uuid",
    "aggregator",
    "database",
    "redis",
    "flows",
)
_AGGREGATOR_KEYS = ("url", "send_url")
_ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_REDIS_SCHEMES = ("redis", "rediss")
_REDIS_DB = re.compile(r"/\d+")


def resolve_target_path(name_or_path: str, environ: Mapping[str, str] | None = None) -> Path:
    """A path ending in .yaml/.yml as it is; a NAME as ./targets/NAME.yaml, then $RESILIENCE_TARGETS/NAME.yaml
    (each directory of it, when it lists several the way PATH does)."""
    environ = os.environ if environ is None else environ
    if name_or_path.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    if not _TARGET_NAME.fullmatch(name_or_path):
        raise TargetError.single(
            name_or_path, "is neither a target name nor a YAML file; expected NAME or a path ending in .yaml"
        )
    places = [TARGETS_DIR]
    extra = environ.get(TARGETS_ENV, "")
    places += [Path(p) for p in extra.split(os.pathsep) if p]
    for place in places:
        candidate = place / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(p / f"{name_or_path}.yaml") for p in places)
    unset = "" if extra else f" (${TARGETS_ENV} is not set)"
    raise TargetError.single(
        name_or_path,
        f"no such target; looked for {looked}{unset}; expected a file there, or a path ending in .yaml",
    )


def load_target(name_or_path: str | Path, environ: Mapping[str, str] | None = None) -> Target:
    """The target NAME (or the file at a path); raise TargetError listing every mistake in it."""
    path = Path(name_or_path) if isinstance(name_or_path, Path) else resolve_target_path(name_or_path, environ)
    return parse_target(read_yaml_file(path, "a target YAML file", TargetError.single), path, environ)


def parse_target(text: str, path: Path | str, environ: Mapping[str, str] | None = None) -> Target:
    """Validate target YAML `text` as if read from `path` (which names the file in errors and anchors `hosts`)."""
    path = Path(path)
    file = str(path)
    try:
        loader, root = read_yaml_root(text, file, "version, kind, name, lb_url, api_token, channel_uuid, ...")
    except TopologyError as exc:
        raise TargetError(exc.errors) from None
    reader = _TargetReader(file, loader, os.environ if environ is None else environ)
    top = reader.mapping(root, "the target")
    if isinstance(top, Failed):
        raise TargetError(reader.errors)
    reader.check_keys(top, _TOP_KEYS, "the target")
    check_version(reader, root, top)
    check_kind(reader, root, top, KIND, "a target")
    name = read_name(reader, root, top, "target")
    description = read_description(reader, top)

    hosts_file: Path | None = None
    hosts: HostsTopology | None = None
    if "hosts" in top:
        hosts_file, hosts = _parse_hosts(reader, top["hosts"][1], path)

    lb_url = reader.required_url(top, root, "lb_url", "the load balancer's URL, e.g. https://staging.example.org")
    api_token = reader.required_text(top, root, "api_token", "the key of an API token of the org")
    if api_token and api_token.lower().startswith("token "):
        reader.error(
            top["api_token"][1], "api_token starts with 'Token '; expected the key alone (the harness adds 'Token ')"
        )
    channel_uuid = reader.required_text(top, root, "channel_uuid", "the UUID of the org's EX channel")
    if channel_uuid and not _is_uuid(channel_uuid):
        reader.error(
            top["channel_uuid"][1],
            f"channel_uuid {channel_uuid!r} is not a UUID; expected the UUID of the org's EX channel "
            "(the last part of its page's URL)",
        )

    aggregator_url = aggregator_send_url = ""
    if "aggregator" not in top:
        reader.error(
            root,
            "missing 'aggregator'; expected `aggregator: {url: URL the harness reads, "
            "send_url: URL the channel sends to}`",
        )
    else:
        entries = reader.mapping(top["aggregator"][1], "aggregator")
        if not isinstance(entries, Failed):
            reader.check_keys(entries, _AGGREGATOR_KEYS, "aggregator")
            node = top["aggregator"][1]
            aggregator_url = reader.required_url(
                entries,
                node,
                "url",
                "where the harness reaches the aggregator, e.g. http://127.0.0.1:8070",
                "aggregator",
            )
            aggregator_send_url = reader.required_url(
                entries,
                node,
                "send_url",
                "the channel's send URL: the aggregator as the deployment reaches it, e.g. http://10.0.0.5:8070/send",
                "aggregator",
            )

    database_dsn = ""
    if "database" not in top:
        reader.error(root, "missing 'database'; expected a read-only DSN, e.g. postgres://ro@db:5432/temba, or env:VAR")
    else:
        value = reader.secret_text(top["database"][1], "database", "a Postgres DSN")
        if isinstance(value, str):
            problem = _dsn_problem(value)
            if problem:
                reader.error(top["database"][1], f"database {problem}; expected a DSN like postgres://ro@db:5432/temba")
            else:
                database_dsn = value

    redis_url: str | None = None
    if "redis" in top and top["redis"][1].tag != NULL_TAG:
        value = reader.secret_text(top["redis"][1], "redis", "a Redis URL")
        if isinstance(value, str):
            problem = _redis_problem(value)
            if problem:
                reader.error(
                    top["redis"][1],
                    f"redis {problem}; expected redis://HOST:PORT/DB with mailroom's database number "
                    "(RapidPro's default is 15)",
                )
            else:
                redis_url = value

    flows: dict[str, str] = {}
    if "flows" not in top:
        reader.error(
            root,
            "missing 'flows'; expected a mapping of flow name to uuid (or ~ to find it by name), or a list of names",
        )
    else:
        flows = _parse_flows(reader, top["flows"][1])

    if reader.errors:
        raise TargetError(reader.errors)
    return Target(
        name=name,
        path=path,
        hosts_file=hosts_file,
        lb_url=lb_url,
        api_token=api_token,
        channel_uuid=channel_uuid.lower(),
        aggregator_url=aggregator_url,
        aggregator_send_url=aggregator_send_url,
        database_dsn=database_dsn,
        redis_url=redis_url,
        flows=flows,
        description=description,
        secret_sources=dict(reader.sources),
        hosts=hosts,
    )


class _TargetReader(YamlReader):
    """The YAML reader with what a target's values add: `env:VAR`, and required URLs and strings."""

    def __init__(self, file: str, loader: object, environ: Mapping[str, str]) -> None:
        super().__init__(file, loader, {})  # type: ignore[arg-type]
        self.environ = environ
        self.sources: dict[str, str] = {}

    def secret_text(self, node: Node, what: str, expected: str) -> str | Failed:
        """A string, or `env:VAR`: the variable's value (unset or empty is an error at this line)."""
        value = self.text(node, what, f"{expected}, or env:VAR")
        if isinstance(value, Failed):
            return value
        value = value.strip()
        if not value.startswith(_ENV_PREFIX):
            if what in SECRET_FIELDS:
                self.sources[what] = "the file"
            return value
        variable = value[len(_ENV_PREFIX) :].strip()
        if not _ENV_NAME.fullmatch(variable):
            return self.error(node, f"{what}: bad variable name {variable!r} in {value!r}; expected env:NAME")
        resolved = self.environ.get(variable, "").strip()
        if not resolved:
            state = "is empty" if variable in self.environ else "is not set"
            return self.error(
                node,
                f"{what} comes from env:{variable}, but {variable} {state}; expected `export {variable}=...` "
                f"({expected}) before running resilience, or the value written here",
            )
        self.sources[what] = f"env:{variable}"
        return resolved

    def required_text(
        self, entries: Mapping[str, tuple[ScalarNode, Node]], parent: Node, key: str, expected: str, where: str = ""
    ) -> str:
        what = f"{key} of {where}" if where else key
        if key not in entries:
            self.error(parent, f"missing '{key}'{' in ' + where if where else ''}; expected {expected}")
            return ""
        value = self.secret_text(entries[key][1], what, expected)
        if isinstance(value, Failed):
            return ""
        if not value:
            self.error(entries[key][1], f"{what} is empty; expected {expected}")
        return value

    def required_url(
        self, entries: Mapping[str, tuple[ScalarNode, Node]], parent: Node, key: str, expected: str, where: str = ""
    ) -> str:
        value = self.required_text(entries, parent, key, expected, where)
        if not value:
            return ""
        problem = _url_problem(value)
        if problem:
            what = f"{key} of {where}" if where else key
            self.error(entries[key][1], f"{what} {value!r} {problem}; expected {expected}")
            return ""
        return value.rstrip("/") if key != "send_url" else value


def _url_problem(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "names no host"
    return ""


def _dsn_problem(value: str) -> str:
    if value.startswith(("postgres://", "postgresql://")) or "=" in value:
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError as exc:
            return f"is not a DSN libpq can read ({str(exc).strip()})"
        return ""
    return "is not a Postgres DSN (postgres://USER@HOST:PORT/DB or key=value words)"


def _redis_problem(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in _REDIS_SCHEMES:
        return f"URL {value.split('@')[-1]!r} is not redis:// or rediss://"
    if not parts.hostname:
        return "URL names no host"
    if not _REDIS_DB.fullmatch(parts.path):
        return "URL names no database number"
    return ""


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def _parse_hosts(reader: _TargetReader, node: Node, path: Path) -> tuple[Path | None, HostsTopology | None]:
    value = reader.text(node, "hosts", "the path of a hosts topology file")
    if isinstance(value, Failed):
        return None, None
    if not value.strip():
        reader.error(node, "hosts is empty; expected the path of a hosts topology file (or leave the key out)")
        return None, None
    hosts_file = Path(os.path.expanduser(value.strip()))
    if not hosts_file.is_absolute():
        hosts_file = path.parent / hosts_file
    if not hosts_file.is_file():
        reader.error(node, f"hosts file {str(hosts_file)!r} does not exist; expected a hosts topology (docs/hosts.md)")
        return None, None
    try:
        return hosts_file, load_hosts(hosts_file)
    except TopologyError as exc:
        # Its own mistakes, located in the hosts file; the line here says which target named it.
        reader.errors.extend(exc.errors)
        reader.error(node, f"hosts file {str(hosts_file)!r} has the mistakes above; expected a valid hosts topology")
        return None, None


def _parse_flows(reader: _TargetReader, node: Node) -> dict[str, str]:
    expected = "a mapping of flow name to uuid (or ~ to find it by name), or a list of names"
    flows: dict[str, str] = {}
    before = len(reader.errors)
    if isinstance(node, MappingNode):
        entries = reader.mapping(node, "flows", duplicate="duplicate flow {key!r}")
        if isinstance(entries, Failed):
            return {}
        for name, (key_node, value_node) in entries.items():
            if not name.strip():
                reader.error(key_node, f"flows has an empty name; expected {expected}")
                continue
            if value_node.tag == NULL_TAG:
                flows[name] = ""
                continue
            value = reader.text(value_node, f"uuid of flow {name!r}", "a flow UUID or ~")
            if isinstance(value, str) and _is_uuid(value.strip()):
                flows[name] = value.strip().lower()
            elif isinstance(value, str):
                reader.error(value_node, f"uuid of flow {name!r} is {value!r}, not a UUID; expected a flow UUID or ~")
    else:
        items = reader.sequence(node, "flows", "flow names")
        if isinstance(items, Failed):
            return {}
        for item in items:
            value = reader.text(item, "flow name")
            if not isinstance(value, str):
                continue
            if not value.strip():
                reader.error(item, f"flows has an empty name; expected {expected}")
            elif value in flows:
                reader.error(item, f"duplicate flow {value!r}; expected each flow once")
            else:
                flows[value] = ""
    if not flows and len(reader.errors) == before:
        reader.error(node, f"flows is empty; expected {expected}")
    return flows


__all__ = ["KIND", "LocatedError", "load_target", "parse_target", "resolve_target_path"]
