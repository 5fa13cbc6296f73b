"""Excellent expressions: the lexer, parser and evaluator of goflow's Excellent3 grammar.

Precedence follows the grammar's alternative order (tightest first): unary minus, `^`, `* /`, `+ -`,
`< <= > >=`, `= !=`, `&`; every binary operator is left-associative. Atoms are context references,
parentheses, calls `f(...)`, `.name` / `.0` and `[expr]` lookups; `(x, y) => body` is an anonymous
function. Evaluation never raises: a failure is an XError value that flows on, as in goflow.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from .values import (
    Environment,
    EvaluationError,
    XArray,
    XError,
    XFunction,
    XObject,
    XValue,
    describe,
    to_integer,
    to_number,
    to_text,
)


class ExpressionSyntaxError(ValueError):
    """Text that is not an Excellent expression."""


# --- lexing ----------------------------------------------------------------------------------

_PUNCTUATION = ("=>", "!=", "<=", ">=", ",", "(", ")", "[", "]", ".", "+", "-", "*", "/", "^", "=", "<", ">", "&")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


@dataclass(frozen=True)
class Token:
    kind: str  # "text", "number", "name", "true", "false", "null", or the punctuation itself
    text: str


def _is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] == "L"


def _is_digit(char: str) -> bool:
    return unicodedata.category(char) == "Nd"


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        char = source[position]
        if char in " \t\n\r":
            position += 1
            continue
        if char == '"':
            end = position + 1
            while end < len(source) and source[end] != '"':
                end += 2 if source[end] == "\\" else 1
            if end >= len(source):
                raise ExpressionSyntaxError("unterminated text literal")
            tokens.append(Token("text", source[position : end + 1]))
            position = end + 1
            continue
        number = _NUMBER.match(source, position)
        if number:
            tokens.append(Token("number", number.group()))
            position = number.end()
            continue
        if _is_letter(char) or char == "_":
            end = position
            while end < len(source) and (_is_letter(source[end]) or source[end] == "_"):
                end += 1
            while end < len(source) and (_is_letter(source[end]) or _is_digit(source[end]) or source[end] == "_"):
                end += 1
            word = source[position:end]
            kind = word.lower() if word.lower() in ("true", "false", "null") else "name"
            tokens.append(Token(kind, word))
            position = end
            continue
        for mark in _PUNCTUATION:
            if source.startswith(mark, position):
                tokens.append(Token(mark, mark))
                position += len(mark)
                break
        else:
            raise ExpressionSyntaxError(f"{char!r} is not part of the Excellent language")
    return tokens


def unquote(token: str) -> str:
    """A text literal's value: Go's strconv.Unquote rules, or the raw inside if they do not apply."""
    inner = token[1:-1]
    out: list[str] = []
    position = 0
    escapes = {
        "n": "\n",
        "t": "\t",
        "r": "\r",
        '"': '"',
        "\\": "\\",
        "'": "'",
        "a": "\a",
        "b": "\b",
        "f": "\f",
        "v": "\v",
    }
    while position < len(inner):
        char = inner[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        following = inner[position + 1 : position + 2]
        if following in escapes:
            out.append(escapes[following])
            position += 2
        elif following in ("u", "U", "x"):
            width = {"u": 4, "U": 8, "x": 2}[following]
            digits = inner[position + 2 : position + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                return inner
            out.append(chr(int(digits, 16)))
            position += 2 + width
        else:
            return inner  # not a valid Go literal: goflow keeps the raw text
    return "".join(out)


# --- the tree ----------------------------------------------------------------------------------


class Scope:
    """Names visible to an expression: the context's top levels, then (for anonymous functions)
    their parameters, and finally the functions."""

    def __init__(self, env: Environment, lookup: Callable[[str], tuple[XValue, bool]], parent: Scope | None = None):
        self.env = env
        self._lookup = lookup
        self.parent = parent

    def get(self, name: str) -> tuple[XValue, bool]:
        value, exists = self._lookup(name)
        if exists:
            return value, True
        if self.parent is not None:
            return self.parent.get(name)
        from .functions import FUNCTIONS

        function = FUNCTIONS.get(name.lower())
        if function is not None:
            return function.value, True
        return None, False


def object_scope(env: Environment, root: XObject, parent: Scope | None = None) -> Scope:
    return Scope(env, root.get, parent)


class Node:
    def evaluate(self, scope: Scope) -> XValue:
        raise NotImplementedError


@dataclass(frozen=True)
class Literal(Node):
    value: XValue

    def evaluate(self, scope: Scope) -> XValue:
        return self.value


@dataclass(frozen=True)
class ContextReference(Node):
    name: str

    def evaluate(self, scope: Scope) -> XValue:
        value, exists = scope.get(self.name)
        if not exists:
            return XError(f"context has no property '{self.name.lower()}'")
        return value


def resolve_lookup(container: XValue, key: XValue, *, dotted: bool) -> XValue:
    try:
        if isinstance(container, XArray):
            index = to_integer(key)
            count = len(container.items)
            if index >= count or index < -count:
                return XError(f"index {index} out of range for {count} items")
            return container.items[index]
        if isinstance(container, XObject):
            name = to_text(key)
            value, exists = container.get(name)
            if not exists and dotted and not container.missing_ok:
                return XError(f"object has no property '{name}'")
            return value
    except EvaluationError as exc:
        return XError(str(exc))
    return XError(f"{describe(container)} doesn't support lookups")


@dataclass(frozen=True)
class DotLookup(Node):
    container: Node
    key: str

    def evaluate(self, scope: Scope) -> XValue:
        container = self.container.evaluate(scope)
        if isinstance(container, XError):
            return container
        return resolve_lookup(container, self.key, dotted=True)


@dataclass(frozen=True)
class IndexLookup(Node):
    container: Node
    key: Node

    def evaluate(self, scope: Scope) -> XValue:
        container = self.container.evaluate(scope)
        if isinstance(container, XError):
            return container
        key = self.key.evaluate(scope)
        if isinstance(key, XError):
            return key
        return resolve_lookup(container, key, dotted=False)


@dataclass(frozen=True)
class Call(Node):
    function: Node
    arguments: tuple[Node, ...]

    def evaluate(self, scope: Scope) -> XValue:
        function = self.function.evaluate(scope)
        if isinstance(function, XError):
            return function
        if not isinstance(function, XFunction):
            return XError(f"{describe(function)} is not a function")
        return call(function, scope.env, [argument.evaluate(scope) for argument in self.arguments])


def call(function: XFunction, env: Environment, arguments: Sequence[XValue]) -> XValue:
    try:
        return function.call(env, arguments)
    except EvaluationError as exc:
        return XError(f"error calling {function.name.lower()}(...): {exc}" if function.name else str(exc))


@dataclass(frozen=True)
class AnonymousFunction(Node):
    parameters: tuple[str, ...]
    body: Node

    def evaluate(self, scope: Scope) -> XValue:
        def run(env: Environment, arguments: Sequence[XValue]) -> XValue:
            if len(arguments) != len(self.parameters):
                raise EvaluationError(f"need {len(self.parameters)} argument(s), got {len(arguments)}")
            bound = dict(zip((name.lower() for name in self.parameters), arguments, strict=True))

            def lookup(name: str) -> tuple[XValue, bool]:
                key = name.lower()
                return (bound[key], True) if key in bound else (None, False)

            return self.body.evaluate(Scope(env, lookup, scope))

        return XFunction("", run)


_DIVISION_PLACES = Decimal(1).scaleb(-16)  # shopspring's DivisionPrecision


def divide(left: Decimal, right: Decimal) -> Decimal:
    if right == 0:
        raise EvaluationError("division by zero")
    with localcontext() as context:
        context.prec = 80
        return (left / right).quantize(_DIVISION_PLACES, rounding=ROUND_HALF_UP)


def power(base: Decimal, exponent: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        if exponent == exponent.to_integral_value():
            return base ** int(exponent)
    result = math.pow(float(base), float(exponent))
    return Decimal(repr(result))


def _numeric(operation: Callable[[Decimal, Decimal], XValue]) -> Callable[[XValue, XValue], XValue]:
    def apply(left: XValue, right: XValue) -> XValue:
        return operation(to_number(left), to_number(right))

    return apply


def _textual(operation: Callable[[str, str], XValue]) -> Callable[[XValue, XValue], XValue]:
    def apply(left: XValue, right: XValue) -> XValue:
        return operation(to_text(left), to_text(right))

    return apply


OPERATORS: Mapping[str, Callable[[XValue, XValue], XValue]] = {
    "&": _textual(lambda a, b: a + b),
    "=": _textual(lambda a, b: a == b),
    "!=": _textual(lambda a, b: a != b),
    "+": _numeric(lambda a, b: a + b),
    "-": _numeric(lambda a, b: a - b),
    "*": _numeric(lambda a, b: a * b),
    "/": _numeric(divide),
    "^": _numeric(power),
    "<": _numeric(lambda a, b: a < b),
    "<=": _numeric(lambda a, b: a <= b),
    ">": _numeric(lambda a, b: a > b),
    ">=": _numeric(lambda a, b: a >= b),
}


@dataclass(frozen=True)
class Binary(Node):
    operator: str
    left: Node
    right: Node

    def evaluate(self, scope: Scope) -> XValue:
        try:
            return OPERATORS[self.operator](self.left.evaluate(scope), self.right.evaluate(scope))
        except EvaluationError as exc:
            return XError(str(exc))


@dataclass(frozen=True)
class Negation(Node):
    operand: Node

    def evaluate(self, scope: Scope) -> XValue:
        try:
            return -to_number(self.operand.evaluate(scope))
        except EvaluationError as exc:
            return XError(str(exc))


# --- parsing ---------------------------------------------------------------------------------

_LEVELS: tuple[tuple[str, ...], ...] = (("&",), ("=", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/"), ("^",))


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self, offset: int = 0) -> str | None:
        index = self.position + offset
        return self.tokens[index].kind if index < len(self.tokens) else None

    def take(self, kind: str) -> Token:
        if self.peek() != kind:
            found = self.tokens[self.position].text if self.position < len(self.tokens) else "the end"
            raise ExpressionSyntaxError(f"expected {kind!r}, found {found!r}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expression(self, level: int = 0) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.expression(level + 1)
        while self.peek() in _LEVELS[level]:
            operator = self.take(self.peek() or "").kind
            left = Binary(operator, left, self.expression(level + 1))
        return left

    def unary(self) -> Node:
        if self.peek() == "-":
            self.position += 1
            return Negation(self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind = self.peek()
        if kind == "text":
            return Literal(unquote(self.take("text").text))
        if kind == "number":
            return Literal(Decimal(self.take("number").text))
        if kind in ("true", "false"):
            self.position += 1
            return Literal(kind == "true")
        if kind == "null":
            self.position += 1
            return Literal(None)
        if kind == "(" and self._anonymous_function_ahead():
            return self.anonymous_function()
        return self.atom()

    def _anonymous_function_ahead(self) -> bool:
        offset = 1
        while self.peek(offset) == "name":
            if self.peek(offset + 1) == ")":
                return self.peek(offset + 2) == "=>"
            if self.peek(offset + 1) != ",":
                return False
            offset += 2
        return False

    def anonymous_function(self) -> Node:
        self.take("(")
        names = [self.take("name").text]
        while self.peek() == ",":
            self.position += 1
            names.append(self.take("name").text)
        self.take(")")
        self.take("=>")
        return AnonymousFunction(tuple(names), self.expression())

    def atom(self) -> Node:
        node: Node
        if self.peek() == "(":
            self.position += 1
            node = self.expression()
            self.take(")")
        elif self.peek() in ("name", "true", "false", "null"):
            node = ContextReference(self.tokens[self.position].text)
            self.position += 1
        else:
            found = self.tokens[self.position].text if self.position < len(self.tokens) else "the end"
            raise ExpressionSyntaxError(f"unexpected {found!r}")
        while True:
            kind = self.peek()
            if kind == "(":
                self.position += 1
                arguments: list[Node] = []
                if self.peek() != ")":
                    arguments.append(self.expression())
                    while self.peek() == ",":
                        self.position += 1
                        arguments.append(self.expression())
                self.take(")")
                node = Call(node, tuple(arguments))
            elif kind == ".":
                self.position += 1
                following = self.peek()
                if following not in ("name", "number", "true", "false", "null"):
                    raise ExpressionSyntaxError("expected a property name after '.'")
                key = self.tokens[self.position].text
                self.position += 1
                node = DotLookup(node, key)
            elif kind == "[":
                self.position += 1
                index = self.expression()
                self.take("]")
                node = IndexLookup(node, index)
            else:
                return node


def parse(source: str) -> Node:
    """The tree of an expression; ExpressionSyntaxError if it is not valid Excellent."""
    tokens = tokenize(source)
    if not tokens:
        raise ExpressionSyntaxError("empty expression")
    parser = _Parser(tokens)
    node = parser.expression()
    if parser.position != len(tokens):
        raise ExpressionSyntaxError(f"unexpected {tokens[parser.position].text!r}")
    return node


def evaluate(node: Node, scope: Scope) -> XValue:
    return node.evaluate(scope)
