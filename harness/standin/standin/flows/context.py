"""What expressions can see: the value model, the supported references and how values read as text.

Values follow goflow's model: text, numbers, nothing, and objects that have properties and a default
(what the object reads as when rendered, e.g. a result reads as its value). The set of references a
flow may use is fixed here, so the loader can refuse an unsupported one before any run starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from .excellent.values import EvaluationError, XObject, XValue, render

__all__ = ["EvaluationError", "XObject", "XValue", "check_reference", "lookup", "to_text"]


def to_text(value: XValue) -> str:
    """The text a value reads as (an error reads as its message: callers log errors separately)."""
    return render(value)


def lookup(value: XValue, name: str, path: str) -> XValue:
    """Property `name` of `value` (case-insensitive, as goflow), `path` naming it for the error."""
    if value is None:
        return None
    if not isinstance(value, XObject):
        raise EvaluationError(f"{path}: {to_text(value)!r} has no property '{name}'")
    item, exists = value.get(name)
    if exists or value.missing_ok:
        return item
    raise EvaluationError(f"{path}: object has no property '{name}'")


# The references a flow may use, as a tree: "" marks a node that may be rendered itself, "*" any key.
_LEAF: dict[str, object] = {"": True}
_ANY: dict[str, object] = {"": True, "**": True}  # a value whose inside is not fixed (arrays, extra)
RESULT_PROPERTIES = ("value", "category", "category_localized", "input", "name", "node_uuid", "created_on")
CONTACT_PROPERTIES = (
    "name", "first_name", "uuid", "id", "urn", "language", "status", "created_on", "last_seen_on", "timezone",
    "channel",
)  # fmt: skip
_RESULTS: dict[str, object] = {
    "": True,
    "*": {"": True, **{prop: _LEAF for prop in RESULT_PROPERTIES}, "extra": _ANY},
}
_CONTACT: dict[str, object] = {
    "": True,
    **{prop: _LEAF for prop in CONTACT_PROPERTIES},
    "urns": _ANY,
    "groups": _ANY,
    "tickets": _ANY,
    "fields": {"": True, "*": _LEAF},
}
_URNS: dict[str, object] = {"": True, "*": _LEAF}
_FLOW: dict[str, object] = {"": True, "uuid": _LEAF, "name": _LEAF, "revision": _LEAF}
_RUN: dict[str, object] = {
    "": True,
    "uuid": _LEAF,
    "status": _LEAF,
    "created_on": _LEAF,
    "exited_on": _LEAF,
    "flow": _FLOW,
    "contact": _CONTACT,
    "results": _RESULTS,
}
_RELATED_RUN: dict[str, object] = {
    **_RUN,
    "fields": {"": True, "*": _LEAF},
    "urns": _URNS,
    "run": {"status": _LEAF},  # the stand-in's older spelling, kept for flows that used it
}
_SCHEMA: dict[str, object] = {
    "input": {
        "": True,
        "text": _LEAF,
        "uuid": _LEAF,
        "type": _LEAF,
        "channel": _ANY,
        "created_on": _LEAF,
        "attachments": _ANY,
        "urn": _LEAF,
        "external_id": _LEAF,
    },
    "results": _RESULTS,
    "contact": _CONTACT,
    "urns": _URNS,
    "fields": {"": True, "*": _LEAF},
    "run": _RUN,
    "parent": _RELATED_RUN,
    "child": _RELATED_RUN,
    "globals": {"": True, "*": _LEAF},
}
SUPPORTED_TOP_LEVELS = frozenset(_SCHEMA)

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
    if schema.get("**"):
        return [*forms, f"{prefix}.…"]
    for key, child in schema.items():
        if key in ("", "**"):
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
        if node.get("**"):
            return None
        key = part.lower()
        if key in node and key not in ("", "**"):
            node = node[key]
        elif "*" in node:
            node = node["*"]
        else:
            dotted = ".".join(path[: depth + 1])
            return f"'{dotted}' is not supported (supported: {_choices(node, path[:depth])})"
    assert isinstance(node, Mapping)
    if not node.get(""):
        return f"'{'.'.join(path)}' needs a property (supported: {_choices(node, path)})"
    return None


def _choices(node: Mapping[str, object], path: tuple[str, ...]) -> str:
    prefix = ".".join(path)
    names = ["<key>" if key == "*" else key for key in node if key not in ("", "**")]
    return ", ".join(f"{prefix}.{name}" if prefix else name for name in names)
