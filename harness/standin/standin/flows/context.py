"""What expressions can see: the value model, the supported references and how values read as text.

Values follow goflow's model: text, numbers, nothing, and objects that have properties and a default
(what the object reads as when rendered, e.g. a result reads as its value). The set of references a
flow may use is fixed here, so the loader can refuse an unsupported one before any run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .text import format_number


@dataclass(frozen=True)
class XObject:
    """An object in the expression context: a default (its text form) and named properties.

    `missing_ok` objects (contact fields) read a property they lack as nothing, as goflow does for a
    field the contact has no value for; others (results) make it an evaluation error.
    """

    default: XValue
    properties: Mapping[str, XValue] = field(default_factory=dict)
    missing_ok: bool = False


XValue = str | Decimal | XObject | None


class EvaluationError(Exception):
    """An expression that fails at run time (an unset result): it renders as empty text."""


def to_text(value: XValue) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format_number(value)
    return to_text(value.default)


def lookup(value: XValue, name: str, path: str) -> XValue:
    """Property `name` of `value` (case-insensitive, as goflow), `path` naming it for the error."""
    if value is None:
        return None
    if not isinstance(value, XObject):
        raise EvaluationError(f"{path}: {to_text(value)!r} has no property '{name}'")
    wanted = name.lower()
    for key, item in value.properties.items():
        if key.lower() == wanted:
            return item
    if value.missing_ok:
        return None
    raise EvaluationError(f"{path}: object has no property '{name}'")


# The references a flow may use, as a tree: "" marks a node that may be rendered itself, "*" any key.
_LEAF: dict[str, object] = {"": True}
RESULT_PROPERTIES = ("value", "category", "category_localized", "input", "name", "node_uuid", "created_on")
CONTACT_PROPERTIES = ("name", "first_name", "uuid", "urn", "language")
_SCHEMA: dict[str, object] = {
    "input": {"": True, "text": _LEAF},
    "results": {"*": {"": True, **{prop: _LEAF for prop in RESULT_PROPERTIES}}},
    "contact": {"": True, **{prop: _LEAF for prop in CONTACT_PROPERTIES}, "fields": {"*": _LEAF}},
    "fields": {"*": _LEAF},
    "child": {"status": _LEAF, "run": {"status": _LEAF}},
}

# goflow's run context top levels: `@name` with any other first word is literal text (an e-mail address).
TOP_LEVELS = frozenset(
    {
        "child",
        "contact",
        "fields",
        "globals",
        "input",
        "legacy_extra",
        "node",
        "parent",
        "locals",
        "results",
        "resume",
        "run",
        "ticket",
        "trigger",
        "urns",
        "webhook",
    }
)


def _describe(schema: Mapping[str, object], prefix: str) -> list[str]:
    forms = [prefix] if schema.get("") else []
    for key, child in schema.items():
        if key == "":
            continue
        name = "<key>" if key == "*" else key
        assert isinstance(child, Mapping)
        forms.extend(_describe(child, f"{prefix}.{name}"))
    return forms


SUPPORTED_REFERENCES: tuple[str, ...] = tuple(
    form for top, tree in _SCHEMA.items() if isinstance(tree, Mapping) for form in _describe(tree, top)
)


def check_reference(path: tuple[str, ...]) -> str | None:
    """None if the engine can resolve `path` (e.g. ("results", "color", "category")), else why not."""
    node: object = _SCHEMA
    for depth, part in enumerate(path):
        assert isinstance(node, Mapping)
        key = part.lower()
        if key in node and key != "":
            node = node[key]
        elif "*" in node:
            node = node["*"]
        else:
            dotted = ".".join(path[: depth + 1])
            return f"'{dotted}' is not supported (supported: {', '.join(SUPPORTED_REFERENCES)})"
    assert isinstance(node, Mapping)
    if not node.get(""):
        return f"'{'.'.join(path)}' needs a property (supported: {', '.join(SUPPORTED_REFERENCES)})"
    return None
