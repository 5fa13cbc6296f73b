"""Reading one topology file's composed YAML: typed scalars, Jinja templates over the params, and every
mistake recorded with its line rather than raised.

Lines come from PyYAML's composed node tree (each node carries its start mark), which also lets the reader
see duplicate keys that a plain `yaml.safe_load` would silently merge.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
import jinja2.meta
import yaml
from jinja2.nativetypes import NativeEnvironment
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from resilience.topology.errors import LocatedError, did_you_mean
from resilience.topology.model import is_plain_scalar

# Names every template can use besides the params.
BUILTIN_TEMPLATE_NAMES = ("topology_dir",)


class Failed:
    """Marks a value whose error has already been recorded."""


FAILED: Failed = Failed()
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
# Scalars a string field takes exactly as written; any other tag goes through the (safe) constructor.
_WRITTEN_AS_IS_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "timestamp"))


def env_text(value: Any) -> str:
    """Environment values are strings; booleans are written the way Go and Python parse them back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class YamlReader:
    """Walks the composed YAML of one file, building the model and recording every error on the way."""

    def __init__(self, file: str, loader: yaml.SafeLoader, context: dict[str, Any]) -> None:
        self.file = file
        self.loader = loader
        self.errors: list[LocatedError] = []
        self.context = context  # template variables: params + builtins
        self.templates = NativeEnvironment(undefined=jinja2.StrictUndefined)

    # -- reporting ----------------------------------------------------------------------------------
    def error(self, where: Node | int | None, message: str) -> Failed:
        line = where.start_mark.line + 1 if isinstance(where, Node) else where
        self.errors.append(LocatedError(self.file, line, message))
        return FAILED

    @staticmethod
    def kind_of(node: Node) -> str:
        if isinstance(node, MappingNode):
            if node.flow_style and len(node.value) == 1 and isinstance(node.value[0][0], MappingNode):
                return 'an unquoted template (write it in quotes: "{{ ... }}")'
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        if node.tag == NULL_TAG:
            return "nothing (null)"
        if node.tag == _STR_TAG:
            return f"the string {node.value!r}"
        return str(node.value)  # a number or boolean, as written

    # -- structure ----------------------------------------------------------------------------------
    def mapping(
        self, node: Node, what: str, duplicate: str = "duplicate key {key!r} in {what}"
    ) -> dict[str, tuple[ScalarNode, Node]] | Failed:
        """The string-keyed entries of a mapping node; duplicate and non-string keys are errors."""
        if not isinstance(node, MappingNode):
            return self.error(node, f"{what} must be a mapping; got {self.kind_of(node)}")
        seen: dict[str, ScalarNode] = {}
        for key_node, _value in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, f"keys of {what} must be names; got {self.kind_of(key_node)}")
                continue
            key = key_node.value  # as written: a key `1` or `on` is then judged as the name it spells
            if key in seen:
                self.error(
                    key_node,
                    duplicate.format(key=key, what=what) + f" (first at line {seen[key].start_mark.line + 1})",
                )
            else:
                seen[key] = key_node
        try:
            # Merge keys (`<<: *anchor`) are flattened the way PyYAML's constructor does; an explicit key
            # then overrides a merged one, which is what merge keys are for, not a duplicate.
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            return self.error(node, f"bad merge key: {exc.problem}")
        entries: dict[str, tuple[ScalarNode, Node]] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                entries[key_node.value] = (key_node, value_node)
        return entries

    def check_keys(self, entries: Mapping[str, tuple[ScalarNode, Node]], allowed: Iterable[str], what: str) -> None:
        allowed = list(allowed)
        for key, (key_node, _value) in entries.items():
            if key not in allowed:
                self.error(
                    key_node,
                    f"unknown key {key!r} in {what}; expected one of: {', '.join(allowed)}"
                    + did_you_mean(key, allowed),
                )

    def sequence(self, node: Node, what: str, expected: str) -> list[Node] | Failed:
        if not isinstance(node, SequenceNode):
            return self.error(node, f"{what} must be a list of {expected}; got {self.kind_of(node)}")
        return list(node.value)

    # -- scalars ------------------------------------------------------------------------------------
    def scalar(self, node: Node, what: str, expected: str) -> Any:
        """The value of a scalar node: YAML-typed, string scalars rendered as templates."""
        if not isinstance(node, ScalarNode):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            return self.error(node, f"{what}: {exc.problem}; expected {expected}")
        if isinstance(value, str):
            return self.render(node, value, what)
        return value

    def text(self, node: Node, what: str, expected: str = "a string") -> str | Failed:
        """A string field: numbers and booleans are kept as written (`yes` stays `yes`)."""
        if isinstance(node, ScalarNode) and node.tag in _WRITTEN_AS_IS_TAGS:
            return str(node.value)
        value = self.scalar(node, what, expected)
        if isinstance(value, Failed):
            return value
        if value is None or not is_plain_scalar(value):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        return env_text(value)

    def render(self, node: Node, source: str, what: str) -> Any:
        if "{{" not in source and "{%" not in source:
            return source
        try:
            parsed = self.templates.parse(source)
            missing = sorted(jinja2.meta.find_undeclared_variables(parsed) - set(self.context))
            if missing:
                names = ", ".join(sorted(k for k in self.context if k not in BUILTIN_TEMPLATE_NAMES)) or "none"
                return self.error(
                    node,
                    f"{what}: undefined param {', '.join(repr(m) for m in missing)} in template {source!r}; "
                    f"expected one of the params ({names}) or {', '.join(BUILTIN_TEMPLATE_NAMES)}",
                )
            return self.templates.from_string(source).render(self.context)
        except jinja2.TemplateSyntaxError as exc:
            return self.error(node, f"{what}: template syntax error in {source!r}: {exc.message}")
        except Exception as exc:  # a user's expression can raise anything (1/0, "a" + 1, ...)
            return self.error(node, f"{what}: template {source!r} failed: {type(exc).__name__}: {exc}")

    def integer(self, node: Node, what: str, minimum: int, maximum: int | None = None) -> int | Failed:
        expected = f"an int >= {minimum}" if maximum is None else f"an int in {minimum}..{maximum}"
        value = self.scalar(node, what, expected)
        if isinstance(value, Failed):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.error(node, f"{what} must be {expected}; got {self.kind_of(node)}")
        if value < minimum or (maximum is not None and value > maximum):
            return self.error(node, f"{what} must be {expected}; got {value}")
        return value

    def boolean(self, node: Node, what: str) -> bool | Failed:
        value = self.scalar(node, what, "true or false")
        if isinstance(value, Failed):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            return self.error(node, f"{what} must be true or false; got {self.kind_of(node)}")
        return value

    def argv(self, node: Node, what: str) -> tuple[str, ...] | Failed:
        """A command line: a list of strings, or one string split the way a shell would."""
        if isinstance(node, SequenceNode):
            words = [self.text(item, f"{what} item", "a string") for item in node.value]
            if any(w is FAILED for w in words):
                return FAILED
            result = tuple(w for w in words if isinstance(w, str))
        else:
            line = self.text(node, what, "a list of strings or a command line")
            if isinstance(line, Failed):
                return FAILED
            try:
                result = tuple(shlex.split(line))
            except ValueError as exc:
                return self.error(node, f"{what}: cannot split {line!r} like a shell would ({exc})")
        if not result:
            return self.error(node, f"{what} must not be empty; expected a list of strings or a command line")
        return result
