"""The topology file's schema: `load_topology` reads a YAML file into the model, params and templates applied.

Every mistake in a topology file is reported as `FILE:LINE: what is wrong; expected ...`, all of a file's
mistakes at once, never as a traceback. The schema is documented in docs/topology.md.
"""

from __future__ import annotations

import graphlib
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode

from resilience.topology.errors import TopologyError, did_you_mean
from resilience.topology.model import (
    PARAM_NAME,
    RESTART_FORMS,
    ROLE_NAMES,
    SERVICE_NAME,
    SWITCH_NAME,
    HealthCheck,
    HealthKind,
    Port,
    RestartPolicy,
    Role,
    Service,
    Topology,
    is_plain_scalar,
)
from resilience.topology.yaml_reader import BUILTIN_TEMPLATE_NAMES, FAILED, NULL_TAG, Failed, YamlReader, env_text

_TOP_KEYS = ("version", "name", "description", "params", "services")
_SERVICE_KEYS = (
    "role",
    "image",
    "replicas",
    "command",
    "entrypoint",
    "env",
    "ports",
    "volumes",
    "health",
    "health_timeout",
    "depends_on",
    "switches",
    "privileged",
    "cap_add",
    "restart",
)
_HEALTH_KINDS = [k.value for k in HealthKind]
_HTTP_KEYS = ("port", "path", "status", "contains")
_MAX_NAME = 40  # container names are rs-<run>-<node>; keep DNS labels well under 63
# Dots are allowed: the Elasticsearch image reads settings such as `discovery.seed_hosts` from its environment.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_CAPABILITY = re.compile(r"[A-Z][A-Z0-9_]*")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PORT_TEXT = re.compile(r"(\d+)(?:/(tcp|udp))?")
_JINJA_WORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None", "loop"}
)


def read_yaml_file(path: Path, what: str, error: Callable[[str, str], Exception]) -> str:
    """The text of a YAML file the harness reads (`what`: "a topology YAML file"); `error(file, message)`
    makes the caller's located error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(str(path), f"no such file; expected {what}") from None
    except IsADirectoryError:
        raise error(str(path), f"is a directory; expected {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), f"cannot read it ({exc}); expected a UTF-8 YAML file") from None


def load_topology(path: Path | str, params: Mapping[str, Any] | None = None) -> Topology:
    """Load and validate a topology file; raise TopologyError listing every mistake in it."""
    path = Path(path)
    text = read_yaml_file(path, "a topology YAML file", TopologyError.single)
    return parse_topology(text, path, params)


def parse_topology(text: str, path: Path | str, params: Mapping[str, Any] | None = None) -> Topology:
    """Validate topology YAML `text` as if read from `path` (which names the file in errors)."""
    path = Path(path)
    file = str(path)
    loader, root = read_yaml_root(text, file, "version, name and services")

    builtins = {"topology_dir": str(path.resolve().parent)}
    parser = YamlReader(file, loader, dict(builtins))
    top = parser.mapping(root, "the topology")
    if isinstance(top, Failed):
        raise TopologyError(parser.errors)
    parser.check_keys(top, _TOP_KEYS, "the topology")

    check_version(parser, root, top)

    name = ""
    if "name" not in top:
        parser.error(root, "missing 'name'; expected `name: NAME` ([a-z][a-z0-9-]*)")
    else:
        value = parser.text(top["name"][1], "name")
        if isinstance(value, str):
            if SERVICE_NAME.fullmatch(value):
                name = value
            else:
                parser.error(top["name"][1], f"bad topology name {value!r}; expected [a-z][a-z0-9-]*")

    description = ""
    if "description" in top:
        value = parser.text(top["description"][1], "description")
        description = value if isinstance(value, str) else ""

    declared = _parse_params(parser, top["params"][1]) if "params" in top else {}
    resolved = _apply_param_overrides(parser, declared, params or {})
    parser.context.update(resolved)

    services: dict[str, Service] = {}
    if "services" not in top:
        parser.error(root, "missing 'services'; expected a mapping of service name to service")
    else:
        services = _parse_services(parser, top["services"][1])

    if parser.errors:
        raise TopologyError(parser.errors)
    return Topology(name=name, path=path, params=resolved, services=services, description=description)


def read_yaml_root(text: str, file: str, expected_keys: str) -> tuple[yaml.SafeLoader, Node]:
    """The document's root node (and its loader, which YamlReader needs), or a located YAML error."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = ", ".join(p for p in (exc.context, exc.problem) if p)
        hint = " (check the indentation of this line and the lines above it)" if "block" in detail else ""
        raise TopologyError.single(
            file, f"YAML syntax error: {detail}; expected valid YAML{hint}", mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise TopologyError.single(file, f"YAML error: {exc}; expected valid YAML") from None
    finally:
        loader.dispose()
    if root is None:
        raise TopologyError.single(file, f"the file is empty; expected a mapping with {expected_keys}")
    return loader, root


def check_version(parser: YamlReader, root: Node, top: Mapping[str, tuple[Node, Node]]) -> None:
    """Every topology file, Docker's or hosts', says `version: 1`; anything else is a located error."""
    if "version" not in top:
        parser.error(root, "missing 'version'; expected `version: 1`")
        return
    version = parser.scalar(top["version"][1], "version", "1")
    if version is not FAILED and (version != 1 or isinstance(version, bool)):
        parser.error(top["version"][1], f"unsupported version {top['version'][1].value}; expected 1")


def check_kind(
    parser: YamlReader, root: Node, top: Mapping[str, tuple[Node, Node]], kind: str, what: str, missing: str = ""
) -> None:
    """The file's `kind:` must be `kind` (a hosts topology, a target, a certification plan): located errors."""
    if "kind" not in top:
        parser.error(root, f"missing 'kind'; expected `kind: {kind}`{missing}")
        return
    given = parser.text(top["kind"][1], "kind")
    if isinstance(given, str) and given != kind:
        parser.error(top["kind"][1], f"kind {given!r} is not {what}; expected `kind: {kind}`")


def read_name(parser: YamlReader, root: Node, top: Mapping[str, tuple[Node, Node]], what: str) -> str:
    """The file's required `name:` ([a-z][a-z0-9-]*); "" after recording the error."""
    if "name" not in top:
        parser.error(root, "missing 'name'; expected `name: NAME` ([a-z][a-z0-9-]*)")
        return ""
    value = parser.text(top["name"][1], "name")
    if isinstance(value, str) and SERVICE_NAME.fullmatch(value):
        return value
    if isinstance(value, str):
        parser.error(top["name"][1], f"bad {what} name {value!r}; expected [a-z][a-z0-9-]*")
    return ""


def read_description(parser: YamlReader, top: Mapping[str, tuple[Node, Node]]) -> str:
    """The file's optional `description:` text."""
    if "description" not in top:
        return ""
    value = parser.text(top["description"][1], "description")
    return value if isinstance(value, str) else ""


def _parse_params(parser: YamlReader, node: Node) -> dict[str, tuple[Any, Node]]:
    entries = parser.mapping(node, "params")
    if isinstance(entries, Failed):
        return {}
    declared: dict[str, tuple[Any, Node]] = {}
    for key, (key_node, value_node) in entries.items():
        if not PARAM_NAME.fullmatch(key) or key in _JINJA_WORDS:
            parser.error(key_node, f"bad param name {key!r}; expected an identifier ([A-Za-z_][A-Za-z0-9_]*)")
            continue
        if key in BUILTIN_TEMPLATE_NAMES:
            parser.error(key_node, f"param {key!r} is a built-in template name; expected another name")
            continue
        if not isinstance(value_node, ScalarNode) or value_node.tag == NULL_TAG:
            parser.error(
                value_node,
                f"param {key!r} must have a default that is an int, float, string or boolean; "
                f"got {parser.kind_of(value_node)}",
            )
            continue
        try:
            value = parser.loader.construct_object(value_node, deep=True)
        except yaml.MarkedYAMLError as exc:
            parser.error(value_node, f"param {key!r}: {exc.problem}; expected an int, float, string or boolean")
            continue
        if not is_plain_scalar(value):
            parser.error(value_node, f"param {key!r} must be an int, float, string or boolean; got {value!r}")
            continue
        declared[key] = (value, value_node)
    return declared


def _coerce_param(default: Any, given: Any) -> Any:
    """`given` (often a command-line string) as the type of the param's default; ValueError if it can't be."""
    if isinstance(default, bool):
        if isinstance(given, bool):
            return given
        text = str(given).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ValueError("a boolean (true/false)")
    if isinstance(default, int):
        if isinstance(given, int) and not isinstance(given, bool):
            return given
        if isinstance(given, str) and re.fullmatch(r"\s*-?\d+\s*", given):
            return int(given)
        raise ValueError("an int")
    if isinstance(default, float):
        if isinstance(given, int | float) and not isinstance(given, bool):
            return float(given)
        if isinstance(given, str):
            try:
                return float(given)
            except ValueError:
                pass
        raise ValueError("a number")
    if is_plain_scalar(given):
        return env_text(given)
    raise ValueError("a string")


def _apply_param_overrides(
    parser: YamlReader, declared: Mapping[str, tuple[Any, Node]], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    resolved = {key: value for key, (value, _node) in declared.items()}
    for key, given in overrides.items():
        if key not in declared:
            parser.error(
                None,
                f"--param {key}: the topology declares no such param; expected one of: "
                f"{', '.join(declared) or 'none'}" + did_you_mean(key, declared),
            )
            continue
        default = declared[key][0]
        try:
            resolved[key] = _coerce_param(default, given)
        except ValueError as exc:
            parser.error(None, f"--param {key}={given}: expected {exc} like its default {default!r}")
    return resolved


def _parse_services(parser: YamlReader, node: Node) -> dict[str, Service]:
    entries = parser.mapping(node, "services", duplicate="duplicate service {key!r}")
    if isinstance(entries, Failed):
        return {}
    if not entries:
        parser.error(node, "no services; expected at least one service")
        return {}
    services: dict[str, Service] = {}
    depends_lines: dict[tuple[str, str], Node] = {}
    for name, (key_node, value_node) in entries.items():
        if len(name) > _MAX_NAME or not SERVICE_NAME.fullmatch(name):
            parser.error(
                key_node, f"bad service name {name!r}; expected [a-z][a-z0-9-]* of at most {_MAX_NAME} characters"
            )
            continue
        service = _parse_service(parser, name, key_node, value_node, depends_lines)
        if service is not None:
            services[name] = service
    _check_cross_references(parser, entries, services, depends_lines)
    return services


def _parse_service(
    parser: YamlReader,
    name: str,
    key_node: ScalarNode,
    node: Node,
    depends_lines: dict[tuple[str, str], Node],
) -> Service | None:
    what = f"service {name!r}"
    entries = parser.mapping(node, what)
    if isinstance(entries, Failed):
        return None
    parser.check_keys(entries, _SERVICE_KEYS, what)
    fields: dict[str, Any] = {}
    errors_before = len(parser.errors)

    def field_node(key: str) -> Node | None:
        return entries[key][1] if key in entries else None

    role_node = field_node("role")
    role: Role | Failed = FAILED
    if role_node is None:
        parser.error(key_node, f"{what} has no role; expected `role:` one of: {', '.join(ROLE_NAMES)}")
    else:
        value = parser.text(role_node, f"role of {what}")
        if isinstance(value, str):
            if value in ROLE_NAMES:
                role = Role(value)
            else:
                parser.error(
                    role_node,
                    f"unknown role {value!r} for {what}; expected one of: {', '.join(ROLE_NAMES)}"
                    + did_you_mean(value, ROLE_NAMES),
                )

    image_node = field_node("image")
    if image_node is None:
        parser.error(key_node, f"{what} has no image; expected `image: NAME[:TAG]`")
    else:
        image = parser.text(image_node, f"image of {what}", "an image name")
        if isinstance(image, str):
            if not image.strip() or any(c.isspace() for c in image):
                parser.error(image_node, f"image of {what} must be a non-empty name without spaces; got {image!r}")
            else:
                fields["image"] = image

    parsers: dict[str, Callable[[Node, str], Any]] = {
        "replicas": lambda n, w: parser.integer(n, w, 1),
        "command": parser.argv,
        "entrypoint": parser.argv,
        "env": lambda n, w: _parse_env(parser, n, w),
        "ports": lambda n, w: parse_ports(parser, n, w),
        "volumes": lambda n, w: _parse_volumes(parser, n, w),
        "health": lambda n, w: parse_health(parser, n, w),
        "health_timeout": lambda n, w: parse_timeout(parser, n, w),
        "depends_on": lambda n, w: _parse_depends_on(parser, name, n, w, depends_lines),
        "switches": lambda n, w: _parse_switches(parser, n, w),
        "privileged": parser.boolean,
        "cap_add": lambda n, w: _parse_cap_add(parser, n, w),
        "restart": lambda n, w: parse_restart(parser, n, w),
    }
    for key, parse in parsers.items():
        value_node = field_node(key)
        if value_node is not None:
            value = parse(value_node, f"{key} of {what}")
            if value is not FAILED:
                fields[key] = value

    health: tuple[HealthCheck, ...] = fields.get("health", ())
    published = {p.number for p in fields.get("ports", ()) if p.protocol == "tcp"}
    health_items = getattr(field_node("health"), "value", [])
    for check, check_node in zip(health, health_items, strict=False):
        if check.port is not None and "ports" in fields and check.port not in published:
            parser.error(
                check_node,
                f"health check {check.describe()} of {what} uses port {check.port}, which is not in its ports; "
                f"expected it listed under ports (the harness reaches a node only through published ports)",
            )
        elif check.port is not None and "ports" not in fields:
            parser.error(
                check_node,
                f"health check {check.describe()} of {what} needs port {check.port} published; "
                f"expected `ports: [{check.port}]`",
            )

    if len(parser.errors) > errors_before or isinstance(role, Failed) or "image" not in fields:
        return None
    return Service(name=name, role=role, line=key_node.start_mark.line + 1, **fields)


def _parse_env(parser: YamlReader, node: Node, what: str) -> dict[str, str] | Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    env: dict[str, str] = {}
    failed = False
    for key, (key_node, value_node) in entries.items():
        if not _ENV_NAME.fullmatch(key):
            parser.error(key_node, f"bad variable name {key!r} in {what}; expected [A-Za-z_][A-Za-z0-9_.]*")
            failed = True
            continue
        value = parser.text(value_node, f"{key} in {what}", "a string, number or boolean")
        if isinstance(value, str):
            env[key] = value
        else:
            failed = True
    return FAILED if failed else env


def _parse_switches(parser: YamlReader, node: Node, what: str) -> dict[str, Any] | Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    switches: dict[str, Any] = {}
    failed = False
    for key, (key_node, value_node) in entries.items():
        if not SWITCH_NAME.fullmatch(key):
            parser.error(key_node, f"bad switch name {key!r} in {what}; expected [a-z_][a-z0-9_]*")
            failed = True
            continue
        value = parser.scalar(value_node, f"{key} in {what}", "a string, number or boolean")
        if value is FAILED:
            failed = True
        elif value is None or not is_plain_scalar(value):
            parser.error(
                value_node, f"{key} in {what} must be a string, number or boolean; got {parser.kind_of(value_node)}"
            )
            failed = True
        else:
            switches[key] = value
    return FAILED if failed else switches


def parse_ports(parser: YamlReader, node: Node, what: str) -> tuple[Port, ...] | Failed:
    items = parser.sequence(node, what, 'ports (8080 or "8080/tcp" or "53/udp")')
    if isinstance(items, Failed):
        return FAILED
    ports: list[Port] = []
    failed = False
    for item in items:
        value = parser.scalar(item, f"port in {what}", 'a port: 1..65535, "N/tcp" or "N/udp"')
        port: Port | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            port = Port(value, "tcp")
        elif isinstance(value, str) and (match := _PORT_TEXT.fullmatch(value.strip())):
            port = Port(int(match.group(1)), match.group(2) or "tcp")
        if value is FAILED:
            failed = True
        elif port is None or not 1 <= port.number <= 65535:
            shown = repr(value) if isinstance(value, str) else parser.kind_of(item)
            parser.error(item, f'bad port {shown} in {what}; expected 1..65535, "N/tcp" or "N/udp"')
            failed = True
        elif port in ports:
            parser.error(item, f"port {port} is listed twice in {what}; expected each port once")
            failed = True
        else:
            ports.append(port)
    return FAILED if failed else tuple(ports)


def _parse_volumes(parser: YamlReader, node: Node, what: str) -> tuple[str, ...] | Failed:
    expected = '"NAME:/path", "/abs/host:/path" and an optional ":ro" or ":rw"'
    items = parser.sequence(node, what, expected)
    if isinstance(items, Failed):
        return FAILED
    volumes: list[str] = []
    targets: set[str] = set()
    failed = False
    for item in items:
        spec = parser.text(item, f"volume in {what}", expected)
        if isinstance(spec, Failed):
            failed = True
            continue
        parts = spec.split(":")
        mode = parts.pop() if len(parts) == 3 else "rw"
        problem = None
        if len(parts) != 2 or mode not in ("ro", "rw"):
            problem = "not SOURCE:TARGET[:ro|rw]"
        else:
            source, target = parts
            if source.startswith("/"):
                source = posixpath.normpath(source)
            elif not _VOLUME_NAME.fullmatch(source):
                problem = "the source is neither a volume name nor an absolute host path"
            if not target.startswith("/"):
                problem = "the target is not an absolute path in the container"
            elif (target := posixpath.normpath(target)) in targets:
                problem = f"{target} is mounted twice"
        if problem:
            parser.error(item, f"bad volume {spec!r} in {what}: {problem}; expected {expected}")
            failed = True
            continue
        targets.add(target)
        volumes.append(f"{source}:{target}" + (":ro" if mode == "ro" else ""))
    return FAILED if failed else tuple(volumes)


def parse_health(parser: YamlReader, node: Node, what: str) -> tuple[HealthCheck, ...] | Failed:
    expected = f"one of: {', '.join(_HEALTH_KINDS)}"
    items = parser.sequence(node, what, f"checks, each a mapping with one key, {expected}")
    if isinstance(items, Failed):
        return FAILED
    checks: list[HealthCheck] = []
    failed = False
    for item in items:
        check = _parse_health_check(parser, item, f"health check of {what.removeprefix('health of ')}")
        if isinstance(check, HealthCheck):
            checks.append(check)
        else:
            failed = True
    return FAILED if failed else tuple(checks)


def _parse_health_check(parser: YamlReader, node: Node, what: str) -> HealthCheck | Failed:
    kinds = ", ".join(_HEALTH_KINDS)
    entries = parser.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    if len(entries) != 1:
        return parser.error(node, f"{what} must have exactly one key; expected one of: {kinds}")
    ((kind_name, (key_node, value_node)),) = entries.items()
    if kind_name not in _HEALTH_KINDS:
        return parser.error(
            key_node,
            f"unknown health check {kind_name!r} in {what}; expected one of: {kinds}"
            + did_you_mean(kind_name, _HEALTH_KINDS),
        )
    kind = HealthKind(kind_name)
    if kind is HealthKind.PORT:
        port = parser.integer(value_node, f"port {what}", 1, 65535)
        return port if isinstance(port, Failed) else HealthCheck(kind, port=port)
    if kind is HealthKind.COMMAND:
        command = parser.argv(value_node, f"command {what}")
        return command if isinstance(command, Failed) else HealthCheck(kind, command=command)
    if kind is HealthKind.LOG:
        pattern = parser.text(value_node, f"log {what}", "a regular expression")
        if isinstance(pattern, Failed):
            return FAILED
        try:
            re.compile(pattern)
        except re.error as exc:
            return parser.error(value_node, f"log {what}: bad regular expression {pattern!r} ({exc})")
        return HealthCheck(kind, pattern=pattern)
    return _parse_http_check(parser, value_node, f"http {what}")


def _parse_http_check(parser: YamlReader, node: Node, what: str) -> HealthCheck | Failed:
    entries = parser.mapping(node, what)
    if isinstance(entries, Failed):
        return FAILED
    before = len(parser.errors)
    parser.check_keys(entries, _HTTP_KEYS, what)
    port: int | Failed = FAILED
    if "port" not in entries:
        parser.error(node, f"{what} has no port; expected `http: {{port: N, path: /}}`")
    else:
        port = parser.integer(entries["port"][1], f"port of {what}", 1, 65535)
    path = "/"
    if "path" in entries:
        value = parser.text(entries["path"][1], f"path of {what}", "a path starting with /")
        if isinstance(value, str) and not value.startswith("/"):
            parser.error(entries["path"][1], f"path of {what} must start with /; got {value!r}")
        elif isinstance(value, str):
            path = value
    status: int | Failed = 200
    if "status" in entries:
        status = parser.integer(entries["status"][1], f"status of {what}", 100, 599)
    contains: str | None = None
    if "contains" in entries:
        value = parser.text(entries["contains"][1], f"contains of {what}")
        contains = value if isinstance(value, str) else None
    if len(parser.errors) > before or isinstance(port, Failed) or isinstance(status, Failed):
        return FAILED
    return HealthCheck(HealthKind.HTTP, port=port, path=path, status=status, contains=contains)


def parse_timeout(parser: YamlReader, node: Node, what: str) -> float | Failed:
    value = parser.scalar(node, what, "a number of seconds > 0")
    if isinstance(value, Failed):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return parser.error(node, f"{what} must be a number of seconds > 0; got {parser.kind_of(node)}")
    return float(value)


def _parse_depends_on(
    parser: YamlReader, service: str, node: Node, what: str, depends_lines: dict[tuple[str, str], Node]
) -> tuple[str, ...] | Failed:
    items = parser.sequence(node, what, "service names")
    if isinstance(items, Failed):
        return FAILED
    names: list[str] = []
    failed = False
    for item in items:
        value = parser.text(item, f"entry of {what}", "a service name")
        if isinstance(value, Failed):
            failed = True
        elif value == service:
            parser.error(item, f"service {service!r} depends on itself; expected other services")
            failed = True
        elif value in names:
            parser.error(item, f"{value!r} is listed twice in {what}; expected each service once")
            failed = True
        else:
            names.append(value)
            depends_lines[(service, value)] = item
    return FAILED if failed else tuple(names)


def parse_restart(parser: YamlReader, node: Node, what: str) -> RestartPolicy | Failed:
    expected = ", ".join(RESTART_FORMS)
    # `text` keeps a bare `no` as written, where YAML would read it as false.
    value = parser.text(node, what, f"one of: {expected}")
    if isinstance(value, Failed):
        return value
    try:
        return RestartPolicy.parse(value)
    except ValueError:
        name = value.partition(":")[0].strip()
        if name == "on-failure":
            hint = " (N is a number of retries >= 1)"
        elif name == "unless-stopped":
            hint = " (use always: a node that a fault kills or stops stays down under it too)"
        elif name in ("false", "off", "never"):
            hint = " (did you mean 'no'?)"
        else:
            hint = did_you_mean(name, RESTART_FORMS)
        return parser.error(node, f"bad {what}: {value!r}; expected one of: {expected}{hint}")


def _parse_cap_add(parser: YamlReader, node: Node, what: str) -> tuple[str, ...] | Failed:
    items = parser.sequence(node, what, "capability names (NET_ADMIN, ...)")
    if isinstance(items, Failed):
        return FAILED
    caps: list[str] = []
    failed = False
    for item in items:
        value = parser.text(item, f"entry of {what}", "a capability name")
        if isinstance(value, str) and _CAPABILITY.fullmatch(value):
            caps.append(value)
        else:
            if isinstance(value, str):
                parser.error(item, f"bad capability {value!r} in {what}; expected a name like NET_ADMIN")
            failed = True
    return FAILED if failed else tuple(caps)


def _check_cross_references(
    parser: YamlReader,
    entries: Mapping[str, tuple[ScalarNode, Node]],
    services: Mapping[str, Service],
    depends_lines: Mapping[tuple[str, str], Node],
) -> None:
    declared = [name for name in entries if SERVICE_NAME.fullmatch(name)]
    for (service, target), node in depends_lines.items():
        if target not in entries:
            others = [n for n in declared if n != service]
            parser.error(
                node,
                f"service {service!r} depends on unknown service {target!r}; expected "
                + (f"one of: {', '.join(others)}" if others else "a service defined in this file (it has no other)")
                + did_you_mean(target, others),
            )

    # Node names double as network aliases beside service names, so `web-1` may not name a service while
    # service `web` has a node `web-1`.
    node_owner = {node: s.name for s in services.values() for node in s.node_names()}
    for name, (key_node, _value) in entries.items():
        if name in node_owner:
            parser.error(
                key_node,
                f"service name {name!r} is also the name of node {name} of service {node_owner[name]!r}; "
                f"expected a name that is not <service>-<n>",
            )

    order = list(entries)
    edges = [(a, b) for (a, b) in depends_lines if b in entries]  # file order, for stable reports
    while True:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for a, b in edges:
            sorter.add(a, b)
        try:
            sorter.prepare()
            return
        except graphlib.CycleError as exc:
            # graphlib lists the cycle as [x, ..., x] with each node a dependency of the next; report it
            # as "a depends on b depends on ... a", starting from the service defined first.
            ring = list(reversed(exc.args[1][:-1]))
            start = min(range(len(ring)), key=lambda i: order.index(ring[i]))
            ring = ring[start:] + ring[:start]
            parser.error(
                depends_lines[(ring[0], ring[1 % len(ring)])],
                f"dependency cycle: {' -> '.join([*ring, ring[0]])}; expected depends_on to form no cycle",
            )
            edges.remove((ring[0], ring[1 % len(ring)]))  # break it and look for others
