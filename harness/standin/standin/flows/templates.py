"""Expression templates (goflow's Excellent) in the subset the engine supports.

A template is text with `@reference` (`@results.color.category`) and `@(expression)` segments. The
scanner follows goflow's: `@@` is a literal `@`, a reference whose first word is not a run-context top
level (`me@example.com`) stays literal, a trailing `.` ends a reference, an unclosed `@(` is literal.
Expressions are references, text and number literals and calls of the functions in `FUNCTIONS`;
anything else (operators, other functions, other references) is refused when the flow is loaded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from .context import TOP_LEVELS, EvaluationError, XValue, check_reference, lookup, to_text
from .text import parse_literal_number


class TemplateError(ValueError):
    """A template using syntax or a reference the engine does not support."""


def _is_name_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN" or char == "_"


# Functions callable in @(...): name -> (argument count, implementation over text).
FUNCTIONS: dict[str, tuple[int, Callable[[str], str]]] = {
    "lower": (1, str.lower),
    "upper": (1, str.upper),
}


@dataclass(frozen=True)
class Reference:
    path: tuple[str, ...]


@dataclass(frozen=True)
class Literal:
    value: str | Decimal


@dataclass(frozen=True)
class Call:
    function: str
    arguments: tuple[Expression, ...]


Expression = Reference | Literal | Call


@dataclass(frozen=True)
class Segment:
    """Literal `text`, or an `expression` with its `source` as written."""

    text: str = ""
    expression: Expression | None = None
    source: str = ""


@dataclass(frozen=True)
class Template:
    source: str
    segments: tuple[Segment, ...]

    @property
    def is_literal(self) -> bool:
        return all(segment.expression is None for segment in self.segments)


Resolver = Callable[[tuple[str, ...]], XValue]


def evaluate(template: Template, resolve: Resolver) -> tuple[str, list[str]]:
    """The rendered text and the errors met; a failing segment renders empty, as in goflow."""
    out: list[str] = []
    errors: list[str] = []
    for segment in template.segments:
        if segment.expression is None:
            out.append(segment.text)
            continue
        try:
            out.append(to_text(evaluate_expression(segment.expression, resolve)))
        except EvaluationError as exc:
            errors.append(f"error evaluating {segment.source}: {exc}")
    return "".join(out), errors


def evaluate_value(template: Template, resolve: Resolver) -> tuple[XValue, list[str]]:
    """A template that is a single expression keeps its value (an object for `@results.x`, which
    has_category needs); any other template is rendered to text."""
    if len(template.segments) == 1 and template.segments[0].expression is not None:
        segment = template.segments[0]
        assert segment.expression is not None
        try:
            return evaluate_expression(segment.expression, resolve), []
        except EvaluationError as exc:
            return None, [f"error evaluating {segment.source}: {exc}"]
    return evaluate(template, resolve)


def evaluate_expression(expression: Expression, resolve: Resolver) -> XValue:
    if isinstance(expression, Literal):
        return expression.value
    if isinstance(expression, Reference):
        return resolve(expression.path)
    arity, function = FUNCTIONS[expression.function]
    texts = [to_text(evaluate_expression(argument, resolve)) for argument in expression.arguments]
    return function(*texts[:arity])


def resolve_in(root: XValue) -> Resolver:
    """A resolver walking a context object (see context.py) property by property."""

    def resolve(path: tuple[str, ...]) -> XValue:
        value = root
        for depth, part in enumerate(path):
            value = lookup(value, part, ".".join(path[: depth + 1]))
        return value

    return resolve


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
            segments.append(Segment(expression=_parse_expression(body), source=f"@({body})"))
            position = end + 1
        elif following and _is_name_char(following):
            end = _scan_identifier_end(source, position + 1)
            identifier = source[position + 1 : end]
            path = tuple(identifier.split("."))
            if path[0].lower() not in TOP_LEVELS:
                text.append("@" + identifier)
            else:
                problem = check_reference(path)
                if problem:
                    raise TemplateError(f"in {source!r}: @{identifier}: {problem}")
                flush()
                segments.append(Segment(expression=Reference(path), source="@" + identifier))
            position = end
        else:
            text.append("@")
            position += 1
    flush()
    return Template(source=source, segments=tuple(segments))


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


def _tokenize_expression(body: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char.isspace():
            position += 1
        elif char in "(),":
            tokens.append(char)
            position += 1
        elif char == '"':
            end, closed = _skip_string(body, position)
            if not closed:
                raise TemplateError(f"in @({body}): unterminated text literal")
            tokens.append(body[position:end])
            position = end
        elif _is_name_char(char) or char == ".":
            end = position
            while end < len(body) and (_is_name_char(body[end]) or body[end] == "."):
                end += 1
            tokens.append(body[position:end])
            position = end
        else:
            raise TemplateError(
                f"in @({body}): {char!r} is not supported (expressions may only be references, "
                f"literals and calls of {', '.join(sorted(FUNCTIONS))})"
            )
    return tokens


def _parse_expression(body: str) -> Expression:
    tokens = _tokenize_expression(body)
    if not tokens:
        raise TemplateError("@() is an empty expression")
    expression, rest = _parse_operand(tokens, body)
    if rest:
        raise TemplateError(f"in @({body}): unexpected {rest[0]!r} (operators are not supported)")
    return expression


def _parse_operand(tokens: Sequence[str], body: str) -> tuple[Expression, Sequence[str]]:
    token, rest = tokens[0], tokens[1:]
    if token.startswith('"'):
        return Literal(_unquote(token)), rest
    number = parse_literal_number(token)
    if number is not None:
        return Literal(number), rest
    if token in ("(", ")", ","):
        raise TemplateError(f"in @({body}): unexpected {token!r}")
    if rest and rest[0] == "(":
        return _parse_call(token, rest[1:], body)
    path = tuple(token.split("."))
    if any(not part for part in path):
        raise TemplateError(f"in @({body}): {token!r} is not a valid reference")
    problem = check_reference(path)
    if problem:
        raise TemplateError(f"in @({body}): {problem}")
    return Reference(path), rest


def _parse_call(name: str, tokens: Sequence[str], body: str) -> tuple[Expression, Sequence[str]]:
    function = name.lower()
    if function not in FUNCTIONS:
        raise TemplateError(
            f"in @({body}): function {name}() is not supported (supported: {', '.join(sorted(FUNCTIONS))})"
        )
    arguments: list[Expression] = []
    rest = tokens
    if rest and rest[0] == ")":
        rest = rest[1:]
    else:
        while True:
            if not rest:
                raise TemplateError(f"in @({body}): {name}( is not closed")
            argument, rest = _parse_operand(rest, body)
            arguments.append(argument)
            if rest and rest[0] == ",":
                rest = rest[1:]
                continue
            if rest and rest[0] == ")":
                rest = rest[1:]
                break
            raise TemplateError(f"in @({body}): expected ',' or ')' in the arguments of {name}()")
    arity = FUNCTIONS[function][0]
    if len(arguments) != arity:
        raise TemplateError(f"in @({body}): {name}() takes {arity} argument(s), got {len(arguments)}")
    return Call(function, tuple(arguments)), rest


def _unquote(token: str) -> str:
    inner = token[1:-1]
    out: list[str] = []
    position = 0
    while position < len(inner):
        char = inner[position]
        if char == "\\" and position + 1 < len(inner):
            escaped = inner[position + 1]
            out.append({"n": "\n", "t": "\t"}.get(escaped, escaped))
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)
