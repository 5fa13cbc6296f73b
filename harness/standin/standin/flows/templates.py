"""Expression templates (goflow's Excellent): scanning text for `@reference` and `@(expression)`.

The scanner follows goflow's: `@@` is a literal `@`, a reference whose first word is not a run-context
top level (`me@example.com`) stays literal, a trailing `.` ends a reference, an unclosed `@(` is literal.
Expressions are parsed and evaluated by the `excellent` package; when a flow is loaded each one is
checked so that a reference, function or case test the engine cannot run is refused there, with where.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from . import cases as _cases  # noqa: F401  (registers the case tests as Excellent functions)
from .context import SUPPORTED_TOP_LEVELS, TOP_LEVELS, XObject, XValue, check_reference
from .excellent.expressions import (
    AnonymousFunction,
    Binary,
    Call,
    ContextReference,
    DotLookup,
    ExpressionSyntaxError,
    IndexLookup,
    Negation,
    Node,
    Scope,
    object_scope,
    parse,
)
from .excellent.functions import FUNCTIONS, UNSUPPORTED
from .excellent.values import Environment, XError, render


class TemplateError(ValueError):
    """A template using syntax or a reference the engine does not support."""


def _is_name_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN" or char == "_"


@dataclass(frozen=True)
class Segment:
    """Literal `text`, or an `expression` with its `source` as written."""

    text: str = ""
    expression: Node | None = None
    source: str = ""


@dataclass(frozen=True)
class Template:
    source: str
    segments: tuple[Segment, ...]

    @property
    def is_literal(self) -> bool:
        return all(segment.expression is None for segment in self.segments)


Resolver = Scope


def evaluate(template: Template, scope: Scope) -> tuple[str, list[str]]:
    """The rendered text and the errors met; a failing segment renders empty, as in goflow."""
    out: list[str] = []
    errors: list[str] = []
    for segment in template.segments:
        if segment.expression is None:
            out.append(segment.text)
            continue
        value = segment.expression.evaluate(scope)
        if isinstance(value, XError):
            errors.append(f"error evaluating {segment.source}: {value.message}")
        else:
            out.append(render(value))
    return "".join(out), errors


def evaluate_value(template: Template, scope: Scope) -> tuple[XValue, list[str]]:
    """A template that is a single expression keeps its value (an object for `@results.x`, which
    has_category needs); any other template is rendered to text."""
    if len(template.segments) == 1 and template.segments[0].expression is not None:
        segment = template.segments[0]
        assert segment.expression is not None
        value = segment.expression.evaluate(scope)
        if isinstance(value, XError):
            return value, [f"error evaluating {segment.source}: {value.message}"]
        return value, []
    return evaluate(template, scope)


def resolve_in(root: XObject, env: Environment | None = None) -> Scope:
    """A scope whose names are the properties of a context object (see context.py)."""
    return object_scope(env or Environment(), root)


@lru_cache(maxsize=4096)
def parse_template(source: str) -> Template:
    """Parse and check a template; raises TemplateError naming the unsupported part."""
    segments: list[Segment] = []
    text: list[str] = []
    position = 0
    length = len(source)

    def flush() -> None:
        if text:
            segments.append(Segment(text="".join(text)))
            text.clear()

    while position < length:
        char = source[position]
        if char != "@":
            text.append(char)
            position += 1
            continue
        following = source[position + 1] if position + 1 < length else ""
        if following == "@":
            text.append("@")
            position += 2
        elif following == "(":
            end = _find_expression_end(source, position + 2)
            if end is None:
                # goflow leaves an unclosed expression as literal text
                text.append(source[position:])
                position = length
                continue
            body = source[position + 2 : end]
            flush()
            segments.append(Segment(expression=parse_expression(body), source=f"@({body})"))
            position = end + 1
        elif following and _is_name_char(following):
            end = _scan_identifier_end(source, position + 1)
            identifier = source[position + 1 : end]
            path = tuple(identifier.split("."))
            if path[0].lower() not in TOP_LEVELS:
                text.append("@" + identifier)
            else:
                problem = _reference_problem(path)
                if problem:
                    raise TemplateError(f"in {source!r}: @{identifier}: {problem}")
                node: Node = ContextReference(path[0])
                for part in path[1:]:
                    node = DotLookup(node, part)
                flush()
                segments.append(Segment(expression=node, source="@" + identifier))
            position = end
        else:
            text.append("@")
            position += 1
    flush()
    return Template(source=source, segments=tuple(segments))


def parse_expression(body: str) -> Node:
    """An `@(...)` body, parsed and checked against what the engine supports."""
    if not body.strip():
        raise TemplateError("@() is an empty expression")
    try:
        node = parse(body)
    except ExpressionSyntaxError as exc:
        raise TemplateError(f"in @({body}): {exc}") from exc
    problem = _check(node, frozenset())
    if problem:
        raise TemplateError(f"in @({body}): {problem}")
    return node


def _reference_problem(path: tuple[str, ...]) -> str | None:
    if path[0].lower() not in SUPPORTED_TOP_LEVELS:
        reason = "the engine does not simulate call_webhook" if path[0].lower() == "webhook" else "not modelled"
        return f"'{path[0]}' is not supported ({reason}; supported: {', '.join(sorted(SUPPORTED_TOP_LEVELS))})"
    return check_reference(path)


def _chain(node: Node) -> tuple[str, ...] | None:
    """The dotted path of `a.b.c` when it starts at a context reference, else None."""
    parts: list[str] = []
    while isinstance(node, DotLookup):
        parts.append(node.key)
        node = node.container
    if isinstance(node, ContextReference):
        return (node.name, *reversed(parts))
    return None


def _check(node: Node, bound: frozenset[str]) -> str | None:
    """Why the engine cannot run `node`, or None. `bound` are anonymous functions' parameters."""
    if isinstance(node, DotLookup | ContextReference):
        path = _chain(node)
        if path is None:
            assert isinstance(node, DotLookup)
            return _check(node.container, bound)
        name = path[0].lower()
        if name in bound:
            return None
        if name in SUPPORTED_TOP_LEVELS or name in TOP_LEVELS:
            return _reference_problem(path)
        if name in FUNCTIONS:
            return None
        if name in UNSUPPORTED:
            return f"function {path[0]}() is not supported ({UNSUPPORTED[name]})"
        return f"'{path[0]}' is neither a context value nor a function"
    if isinstance(node, Call):
        callee = node.function
        if isinstance(callee, ContextReference) and callee.name.lower() not in bound:
            name = callee.name.lower()
            if name in UNSUPPORTED:
                return f"function {callee.name}() is not supported ({UNSUPPORTED[name]})"
            function = FUNCTIONS.get(name)
            if function is None and name not in SUPPORTED_TOP_LEVELS:
                return f"function {callee.name}() is not a goflow function"
            if function is not None:
                count = len(node.arguments)
                if count < function.min_arguments or (
                    function.max_arguments is not None and count > function.max_arguments
                ):
                    arity = _arity(function.min_arguments, function.max_arguments)
                    return f"{callee.name}() takes {arity} argument(s), got {count}"
        else:
            problem = _check(callee, bound)
            if problem:
                return problem
        for argument in node.arguments:
            problem = _check(argument, bound)
            if problem:
                return problem
        return None
    if isinstance(node, IndexLookup):
        return _check(node.container, bound) or _check(node.key, bound)
    if isinstance(node, Binary):
        return _check(node.left, bound) or _check(node.right, bound)
    if isinstance(node, Negation):
        return _check(node.operand, bound)
    if isinstance(node, AnonymousFunction):
        return _check(node.body, bound | {name.lower() for name in node.parameters})
    return None


def _arity(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"at least {minimum}"
    return str(minimum) if minimum == maximum else f"{minimum} to {maximum}"


def _scan_identifier_end(source: str, start: int) -> int:
    position = start
    length = len(source)
    while position < length:
        char = source[position]
        if _is_name_char(char):
            position += 1
        elif char == "." and position + 1 < length and _is_name_char(source[position + 1]):
            position += 2
        else:
            break
    return position


def _find_expression_end(source: str, start: int) -> int | None:
    """Index of the `)` closing an expression opened before `start`, skipping string literals."""
    depth = 1
    position = start
    while position < len(source):
        char = source[position]
        if char == '"':
            position, closed = _skip_string(source, position)
            if not closed:
                return None
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def _skip_string(source: str, start: int) -> tuple[int, bool]:
    """Position after the text literal opening at `start`, and whether it was closed."""
    position = start + 1
    while position < len(source):
        if source[position] == "\\":
            position += 2
            continue
        if source[position] == '"':
            return position + 1, True
        position += 1
    return len(source), False
