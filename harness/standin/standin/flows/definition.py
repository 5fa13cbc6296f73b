"""Flow definitions in RapidPro's spec 13, loaded from exports and validated eagerly.

Everything the engine will need is checked here: every node, exit destination, category, case test and
argument, action and template. A flow the engine could not run to the letter is refused with a
`FlowError` naming the file, the flow, the node and what was found against what is supported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cases import CASE_TESTS, UNSUPPORTED_CASE_TESTS, CaseArgumentError, compile_pattern
from .errors import FlowError
from .templates import Template, TemplateError, _chain, parse_template
from .text import parse_literal_number

SUPPORTED_SPEC_MAJOR = "13"
SUPPORTED_FLOW_TYPES = ("messaging",)
SUPPORTED_ACTIONS = ("send_msg", "set_run_result", "set_contact_field", "set_contact_name", "enter_flow")
SUPPORTED_ROUTERS = ("switch",)
SUPPORTED_WAITS = ("msg",)
DEFAULT_EXPIRE_AFTER_MINUTES = 10080  # RapidPro's default for messaging flows (7 days)


@dataclass(frozen=True)
class Exit:
    uuid: str
    destination_uuid: str | None


@dataclass(frozen=True)
class Category:
    uuid: str
    name: str
    exit_uuid: str


@dataclass(frozen=True)
class Case:
    uuid: str
    type: str
    arguments: tuple[str, ...]
    category_uuid: str


@dataclass(frozen=True)
class Timeout:
    seconds: int
    category_uuid: str


@dataclass(frozen=True)
class Wait:
    type: str
    timeout: Timeout | None


@dataclass(frozen=True)
class Router:
    type: str
    operand: Template
    cases: tuple[Case, ...]
    categories: tuple[Category, ...]
    default_category_uuid: str | None
    result_name: str | None
    wait: Wait | None

    def category(self, uuid: str) -> Category:
        return next(category for category in self.categories if category.uuid == uuid)


@dataclass(frozen=True)
class SendMsg:
    uuid: str
    text: str


@dataclass(frozen=True)
class SetRunResult:
    uuid: str
    name: str
    value: str
    category: str


@dataclass(frozen=True)
class SetContactField:
    uuid: str
    field_key: str
    field_name: str
    value: str


@dataclass(frozen=True)
class SetContactName:
    uuid: str
    name: str


@dataclass(frozen=True)
class EnterFlow:
    uuid: str
    flow_uuid: str
    flow_name: str
    terminal: bool


Action = SendMsg | SetRunResult | SetContactField | SetContactName | EnterFlow


@dataclass(frozen=True)
class Node:
    uuid: str
    actions: tuple[Action, ...]
    router: Router | None
    exits: tuple[Exit, ...]

    def exit(self, uuid: str) -> Exit | None:
        return next((item for item in self.exits if item.uuid == uuid), None)


@dataclass(frozen=True)
class Flow:
    uuid: str
    name: str
    spec_version: str
    language: str
    type: str
    expire_after_minutes: int
    nodes: tuple[Node, ...]
    # language -> item uuid -> key ("text", "name", "arguments", "category") -> translations
    localization: Mapping[str, Mapping[str, Mapping[str, tuple[str, ...]]]] = field(default_factory=dict)
    source: str = ""

    def node(self, uuid: str) -> Node | None:
        return next((node for node in self.nodes if node.uuid == uuid), None)

    def translations(self, language: str | None, item_uuid: str, key: str) -> tuple[str, ...] | None:
        if not language or language == self.language:
            return None
        translated = self.localization.get(language, {}).get(item_uuid, {}).get(key)
        return translated if translated and any(translated) else None

    def where(self, node_uuid: str | None = None) -> str:
        location = f"{self.source}: flow {self.name!r} ({self.uuid})"
        return f"{location}, node {node_uuid}" if node_uuid else location


class _Reader:
    """Reads one JSON object for the loader, turning every missing key or wrong type into a FlowError
    that says where it was (`where`) and what was expected."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise FlowError(f"{where}: expected a JSON object, found {_kind(data)}")
        self.data: dict[str, Any] = data
        self.where = where

    def fail(self, message: str) -> FlowError:
        return FlowError(f"{self.where}: {message}")

    def string(self, key: str, *, optional: bool = False, allow_empty: bool = False) -> str:
        value = self.data.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"'{key}' must be a string, found {_kind(value)}")
        if not value and not allow_empty and not optional:
            raise self.fail(f"'{key}' must not be empty")
        return value

    def array(self, key: str, *, optional: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None and optional:
            return []
        if not isinstance(value, list):
            raise self.fail(f"'{key}' must be a list, found {_kind(value)}")
        return value

    def child(self, key: str, where: str) -> _Reader:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"'{key}' must be an object, found {_kind(value)}")
        return _Reader(value, where)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.array(key, optional=True)
        if not all(isinstance(value, str) for value in values):
            raise self.fail(f"'{key}' must be a list of strings, found {values!r}")
        return tuple(values)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (missing or null)"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def load_export(source: str | Path | Mapping[str, Any]) -> dict[str, Flow]:
    """The flows of a RapidPro export (a path to its JSON file or the parsed object), by uuid."""
    data, where = _read_source(source)
    export = _Reader(data, where)
    version = export.data.get("version")
    if str(version).split(".")[0] != SUPPORTED_SPEC_MAJOR:
        raise export.fail(f"export version {version!r} is not supported (expected '13', RapidPro's current)")
    flows: dict[str, Flow] = {}
    for index, flow_data in enumerate(export.array("flows")):
        flow = load_flow(flow_data, source=f"{where} flows[{index}]")
        if flow.uuid in flows:
            raise export.fail(f"flow uuid {flow.uuid} appears twice ({flows[flow.uuid].name!r}, {flow.name!r})")
        flows[flow.uuid] = flow
    return flows


def _read_source(source: str | Path | Mapping[str, Any]) -> tuple[Any, str]:
    if isinstance(source, Mapping):
        return dict(source), "<export>"
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError(f"{path}: cannot read the export: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FlowError(f"{path}: not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text), str(path)
    except json.JSONDecodeError as exc:
        raise FlowError(f"{path}: line {exc.lineno} column {exc.colno}: bad JSON: {exc.msg}") from exc


def load_flow(definition: Mapping[str, Any], source: str = "<flow>") -> Flow:
    """One flow definition (an element of an export's "flows", as stored in flows_flow.definition)."""
    reader = _Reader(dict(definition) if isinstance(definition, Mapping) else definition, source)
    uuid = reader.string("uuid")
    name = reader.string("name")
    flow_where = f"{source}: flow {name!r} ({uuid})"
    reader = _Reader(reader.data, flow_where)
    spec_version = reader.string("spec_version")
    if spec_version.split(".")[0] != SUPPORTED_SPEC_MAJOR:
        raise reader.fail(f"spec_version {spec_version!r} is not supported (expected 13.x)")
    flow_type = reader.string("type")
    if flow_type not in SUPPORTED_FLOW_TYPES:
        raise reader.fail(f"flow type {flow_type!r} is not supported (supported: {', '.join(SUPPORTED_FLOW_TYPES)})")
    expire = reader.data.get("expire_after_minutes", DEFAULT_EXPIRE_AFTER_MINUTES)
    if not isinstance(expire, int) or isinstance(expire, bool) or expire < 0:
        raise reader.fail(f"'expire_after_minutes' must be a whole number of minutes, found {expire!r}")
    nodes = tuple(_read_node(node, index, flow_where) for index, node in enumerate(reader.array("nodes")))
    localization = _read_localization(reader.data.get("localization") or {}, flow_where)
    flow = Flow(
        uuid=uuid,
        name=name,
        spec_version=spec_version,
        language=reader.string("language", optional=True) or "base",
        type=flow_type,
        expire_after_minutes=expire,
        nodes=nodes,
        localization=localization,
        source=source,
    )
    _check_graph(flow)
    _check_translations(flow)
    return flow


def _read_node(data: Any, index: int, flow_where: str) -> Node:
    node = _Reader(data, f"{flow_where}, nodes[{index}]")
    uuid = node.string("uuid")
    node = _Reader(data, f"{flow_where}, node {uuid}")
    exits = tuple(_read_exit(item, node.where) for item in node.array("exits"))
    actions = tuple(_read_action(item, node.where) for item in node.array("actions", optional=True))
    router = _read_router(node.data["router"], node.where, exits) if node.data.get("router") else None
    return Node(uuid=uuid, actions=actions, router=router, exits=exits)


def _read_exit(data: Any, node_where: str) -> Exit:
    item = _Reader(data, f"{node_where}, exit")
    uuid = item.string("uuid")
    destination = item.data.get("destination_uuid")
    if destination is not None and not isinstance(destination, str):
        raise item.fail(f"'destination_uuid' must be a node uuid or null, found {_kind(destination)}")
    return Exit(uuid=uuid, destination_uuid=destination or None)


def _template(source: str, where: str, what: str) -> Template:
    try:
        return parse_template(source)
    except TemplateError as exc:
        raise FlowError(f"{where}: {what}: unsupported expression {exc}") from exc


def _read_action(data: Any, node_where: str) -> Action:
    action = _Reader(data, f"{node_where}, action")
    uuid = action.string("uuid")
    kind = action.string("type")
    action.where = f"{node_where}, action {uuid} ({kind})"
    if kind == "send_msg":
        for unsupported in ("attachments", "quick_replies"):
            if action.data.get(unsupported):
                raise action.fail(f"send_msg with {unsupported} is not supported (only text)")
        if action.data.get("templating") or action.data.get("template"):
            raise action.fail("send_msg with a WhatsApp template is not supported (only text)")
        text = action.string("text")
        _template(text, action.where, "text")
        return SendMsg(uuid=uuid, text=text)
    if kind == "set_run_result":
        name = action.string("name")
        value = action.string("value", allow_empty=True)
        _template(value, action.where, "value")
        return SetRunResult(uuid=uuid, name=name, value=value, category=action.string("category", optional=True))
    if kind == "set_contact_field":
        field_ref = action.child("field", f"{action.where}, field")
        value = action.string("value", allow_empty=True)
        _template(value, action.where, "value")
        return SetContactField(
            uuid=uuid,
            field_key=field_ref.string("key"),
            field_name=field_ref.string("name", optional=True),
            value=value,
        )
    if kind == "set_contact_name":
        name = action.string("name", allow_empty=True)
        _template(name, action.where, "name")
        return SetContactName(uuid=uuid, name=name)
    if kind == "enter_flow":
        flow_ref = action.child("flow", f"{action.where}, flow")
        terminal = action.data.get("terminal", False)
        if not isinstance(terminal, bool):
            raise action.fail(f"'terminal' must be true or false, found {terminal!r}")
        return EnterFlow(
            uuid=uuid,
            flow_uuid=flow_ref.string("uuid"),
            flow_name=flow_ref.string("name", optional=True),
            terminal=terminal,
        )
    raise action.fail(f"action type {kind!r} is not supported (supported: {', '.join(SUPPORTED_ACTIONS)})")


def _read_router(data: Any, node_where: str, exits: tuple[Exit, ...]) -> Router:
    router = _Reader(data, f"{node_where}, router")
    kind = router.string("type")
    if kind not in SUPPORTED_ROUTERS:
        raise router.fail(f"router type {kind!r} is not supported (supported: {', '.join(SUPPORTED_ROUTERS)})")
    exit_uuids = {item.uuid for item in exits}
    categories = []
    for item in router.array("categories"):
        category = _Reader(item, f"{router.where}, category")
        parsed = Category(category.string("uuid"), category.string("name"), category.string("exit_uuid"))
        if parsed.exit_uuid not in exit_uuids:
            raise category.fail(f"{parsed.name!r} leaves by exit {parsed.exit_uuid}, which the node does not have")
        categories.append(parsed)
    if not categories:
        raise router.fail("has no categories (a switch needs at least one)")
    category_uuids = {category.uuid for category in categories}
    operand = _template(router.string("operand"), router.where, "operand")
    cases = tuple(
        _read_case(item, router.where, category_uuids, operand) for item in router.array("cases", optional=True)
    )
    default = router.string("default_category_uuid", optional=True) or None
    if default is not None and default not in category_uuids:
        raise router.fail(f"default_category_uuid {default} is not one of the router's categories")
    result_name = router.string("result_name", optional=True) or None
    wait = _read_wait(router.data["wait"], router.where, category_uuids) if router.data.get("wait") else None
    return Router(
        type=kind,
        operand=operand,
        cases=cases,
        categories=tuple(categories),
        default_category_uuid=default,
        result_name=result_name,
        wait=wait,
    )


def _read_case(data: Any, router_where: str, category_uuids: set[str], operand: Template) -> Case:
    case = _Reader(data, f"{router_where}, case")
    uuid = case.string("uuid")
    kind = case.string("type")
    case.where = f"{router_where}, case {uuid} ({kind})"
    test = CASE_TESTS.get(kind.lower())
    if test is None:
        reason = UNSUPPORTED_CASE_TESTS.get(kind.lower(), "not a goflow case type")
        raise case.fail(f"case type {kind!r} is not supported ({reason}; supported: {', '.join(CASE_TESTS)})")
    category_uuid = case.string("category_uuid")
    if category_uuid not in category_uuids:
        raise case.fail(f"category_uuid {category_uuid} is not one of the router's categories")
    arguments = case.strings("arguments")
    _check_case_arguments(kind.lower(), arguments, case, operand)
    return Case(uuid=uuid, type=kind.lower(), arguments=arguments, category_uuid=category_uuid)


def _check_case_arguments(kind: str, arguments: tuple[str, ...], case: _Reader, operand: Template) -> None:
    test = CASE_TESTS[kind]
    count = len(arguments)
    if count < test.min_arguments or (test.max_arguments is not None and count > test.max_arguments):
        expected = (
            f"at least {test.min_arguments}"
            if test.max_arguments is None
            else f"{test.min_arguments}"
            if test.min_arguments == test.max_arguments
            else f"{test.min_arguments} to {test.max_arguments}"
        )
        raise case.fail(f"takes {expected} argument(s), found {count}: {list(arguments)!r}")
    for argument in arguments:
        template = _template(argument, case.where, "argument")
        if not template.is_literal:
            continue  # evaluated per run; a bad value then fails that case and is logged
        if test.numeric_arguments and parse_literal_number(argument) is None:
            raise case.fail(f"argument {argument!r} is not a number")
        if kind == "has_pattern":
            try:
                compile_pattern(argument)
            except CaseArgumentError as exc:
                raise case.fail(str(exc)) from exc
    if kind == "has_category":
        segments = operand.segments
        reference = segments[0].expression if len(segments) == 1 else None
        path: tuple[str, ...] = (_chain(reference) or ()) if reference is not None else ()
        if len(path) != 2 or path[0].lower() != "results":
            raise case.fail(
                f"has_category needs the operand to be a result (@results.<name>), found {operand.source!r}"
            )


def _read_wait(data: Any, router_where: str, category_uuids: set[str]) -> Wait:
    wait = _Reader(data, f"{router_where}, wait")
    kind = wait.string("type")
    if kind not in SUPPORTED_WAITS:
        raise wait.fail(f"wait type {kind!r} is not supported (supported: {', '.join(SUPPORTED_WAITS)})")
    timeout = None
    if wait.data.get("timeout"):
        reader = wait.child("timeout", f"{wait.where}, timeout")
        seconds = reader.data.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise reader.fail(f"'seconds' must be a positive whole number, found {seconds!r}")
        category_uuid = reader.string("category_uuid")
        if category_uuid not in category_uuids:
            raise reader.fail(f"timeout category_uuid {category_uuid} is not one of the router's categories")
        timeout = Timeout(seconds=seconds, category_uuid=category_uuid)
    return Wait(type=kind, timeout=timeout)


def _read_localization(data: Any, flow_where: str) -> dict[str, dict[str, dict[str, tuple[str, ...]]]]:
    where = f"{flow_where}, localization"
    if not isinstance(data, dict):
        raise FlowError(f"{where}: expected an object of languages, found {_kind(data)}")
    languages: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {}
    for language, items in data.items():
        if not isinstance(items, dict):
            raise FlowError(f"{where}.{language}: expected an object of item uuids, found {_kind(items)}")
        languages[language] = {}
        for item_uuid, keys in items.items():
            if not isinstance(keys, dict):
                raise FlowError(f"{where}.{language}.{item_uuid}: expected an object, found {_kind(keys)}")
            translated: dict[str, tuple[str, ...]] = {}
            for key, values in keys.items():
                if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
                    raise FlowError(
                        f"{where}.{language}.{item_uuid}.{key}: expected a list of strings, found {values!r}"
                    )
                translated[key] = tuple(values)
            languages[language][item_uuid] = translated
    return languages


def _check_graph(flow: Flow) -> None:
    node_uuids: set[str] = set()
    for node in flow.nodes:
        if node.uuid in node_uuids:
            raise FlowError(f"{flow.where(node.uuid)}: node uuid appears twice")
        node_uuids.add(node.uuid)
    item_uuids: set[str] = set()
    for node in flow.nodes:
        for what, uuid in [("action", action.uuid) for action in node.actions] + [
            ("exit", item.uuid) for item in node.exits
        ]:
            if uuid in item_uuids:
                raise FlowError(f"{flow.where(node.uuid)}: {what} uuid {uuid} is not unique in the flow")
            item_uuids.add(uuid)
        for item in node.exits:
            if item.destination_uuid is not None and item.destination_uuid not in node_uuids:
                raise FlowError(
                    f"{flow.where(node.uuid)}: exit {item.uuid} leads to node {item.destination_uuid}, "
                    "which is not in the flow (missing node)"
                )


def _check_translations(flow: Flow) -> None:
    """Translated texts and arguments are templates too: check them now, not when a contact needs them."""
    templated = {"text", "arguments"}
    for language, items in flow.localization.items():
        for item_uuid, keys in items.items():
            for key, values in keys.items():
                if key not in templated:
                    continue
                for value in values:
                    _template(value, f"{flow.where()}, localization {language} item {item_uuid}", key)
