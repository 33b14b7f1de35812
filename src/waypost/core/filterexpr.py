"""Consul's `?filter=` language: HashiCorp go-bexpr v0.1.2, the version Consul vendors.

Parses an expression once (a recursive-descent transcription of go-bexpr's
`grammar.peg`, with pigeon's error messages), validates it against an optional
`Schema`, and compiles it to closures run on JSON-shaped elements: dicts keyed
by Consul's PascalCase names. No I/O.

Deliberate differences from Consul (each marked `# differs:` below):
regular expressions use Python's `re`, not Go's RE2; a JSON `null` where the
schema has a struct reads as that struct's zero value instead of failing.
An absent map key fails `matches` as current go-bexpr does; v0.1.2's code for
that case could not be checked.
"""

from __future__ import annotations

import enum
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias, TypeVar

import msgspec

from waypost.core.gostrconv import (
    _CoerceError,
    _go_quote,
    _go_unquote,
    _parse_bool,
    _parse_float,
    _parse_int,
    _parse_uint,
)

_T = TypeVar("_T")
_Pred: TypeAlias = Callable[[Any], bool]

# CreateFilter wraps every parse and validation error in this (go-bexpr filter.go).
_PREFIX = "Failed to create boolean expression evaluator: "


class FilterError(ValueError):
    """A `?filter=` expression could not be parsed, validated or evaluated (400)."""


# --- schema ---------------------------------------------------------------


class ListOf(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON array field (a Go slice); `element` is a kind name or a struct."""

    element: FieldSpec


class MapOf(msgspec.Struct, frozen=True, kw_only=True):
    """A JSON object with free keys (a Go `map[string]T`); `value` is T."""

    value: FieldSpec


# A kind name ("string", "bool", "int", "uint16", "float", "list[string]",
# "map[string]string"), a nested struct (field name -> spec), ListOf or MapOf.
FieldSpec: TypeAlias = "str | Mapping[str, FieldSpec] | ListOf | MapOf"


class _Kind(enum.Enum):
    STRING = "string"
    BOOL = "bool"
    INT = "int"
    UINT = "uint"
    FLOAT = "float"
    STRUCT = "struct"
    LIST = "list"
    MAP = "map"


_PRIMITIVE_KINDS = frozenset(
    {_Kind.STRING, _Kind.BOOL, _Kind.INT, _Kind.UINT, _Kind.FLOAT}
)
_KIND_NAMES: dict[str, tuple[_Kind, int]] = {
    "string": (_Kind.STRING, 0),
    "bool": (_Kind.BOOL, 0),
    "float": (_Kind.FLOAT, 64),
    "float64": (_Kind.FLOAT, 64),
    "int": (_Kind.INT, 64),
    "uint": (_Kind.UINT, 64),
    **{f"int{b}": (_Kind.INT, b) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (_Kind.UINT, b) for b in (8, 16, 32, 64)},
}


class _Field(msgspec.Struct, frozen=True, kw_only=True):
    kind: _Kind
    bits: int = 0
    fields: Mapping[str, _Field] | None = None  # STRUCT
    element: _Field | None = None  # LIST element, MAP value


def _field(spec: FieldSpec, where: str) -> _Field:
    if isinstance(spec, ListOf):
        return _Field(kind=_Kind.LIST, element=_field(spec.element, where))
    if isinstance(spec, MapOf):
        return _Field(kind=_Kind.MAP, element=_field(spec.value, where))
    if not isinstance(spec, str):
        fields = {name: _field(sub, f"{where}.{name}") for name, sub in spec.items()}
        return _Field(kind=_Kind.STRUCT, fields=fields)
    if spec in _KIND_NAMES:
        kind, bits = _KIND_NAMES[spec]
        return _Field(kind=kind, bits=bits)
    if spec.startswith("list[") and spec.endswith("]"):
        return _Field(kind=_Kind.LIST, element=_field(spec[5:-1], where))
    if spec.startswith("map[string]"):
        return _Field(kind=_Kind.MAP, element=_field(spec[11:], where))
    raise ValueError(f"{where}: unknown field kind {spec!r}")


class Schema:
    """The selectors one endpoint accepts, like Consul's bexpr field configurations.

    Built from nested dicts of field name -> `FieldSpec`. Hashed by identity, so
    compiled filters are cached per (expression, schema object).

    Args:
        fields: the element's fields, e.g. `{"ID": "string", "Port": "int"}`.
        name: what the schema describes, for messages and repr.
    """

    __slots__ = ("_root", "name")

    def __init__(self, fields: Mapping[str, FieldSpec], *, name: str = "") -> None:
        self.name = name
        self._root = _field(fields, name or "schema")

    def __repr__(self) -> str:
        return f"Schema({self.name!r})"

    def selectors(self) -> dict[str, frozenset[str]]:
        """Every valid selector and its operators, as Consul's docs tables list them."""
        table: dict[str, frozenset[str]] = {}

        def visit(node: _Field, path: str) -> None:
            ops = _operators(node)
            if ops:
                table[path] = frozenset(op.value for op in ops)
            while node.kind is _Kind.LIST and node.element is not None:
                node = node.element  # slices select through to their elements
            if node.kind is _Kind.STRUCT and node.fields is not None:
                for name, child in node.fields.items():
                    visit(child, f"{path}.{name}" if path else name)
            elif node.kind is _Kind.MAP and node.element is not None:
                visit(node.element, f"{path}.<any>")

        visit(self._root, "")
        return table


# --- syntax tree ----------------------------------------------------------


class _Op(enum.Enum):
    # Values are go-bexpr's MatchOperator.String(), used in its error messages.
    EQUAL = "Equal"
    NOT_EQUAL = "Not Equal"
    IN = "In"
    NOT_IN = "Not In"
    IS_EMPTY = "Is Empty"
    IS_NOT_EMPTY = "Is Not Empty"
    MATCHES = "Matches"
    NOT_MATCHES = "Not Matches"


_POSITIVE = {
    _Op.NOT_EQUAL: _Op.EQUAL,
    _Op.NOT_IN: _Op.IN,
    _Op.IS_NOT_EMPTY: _Op.IS_EMPTY,
    _Op.NOT_MATCHES: _Op.MATCHES,
}
# differs (maybe): an absent map key makes these false and the negated ones true, as
# go-bexpr's evaluate_test.go pins ("Missing key in map tests"). The older
# evaluate.go switch omitted `matches`, leaving it true; see the module notes.
_FALSE_WHEN_ABSENT = frozenset({_Op.EQUAL, _Op.IS_NOT_EMPTY, _Op.IN, _Op.MATCHES})


class _Match(msgspec.Struct, frozen=True, kw_only=True):
    selector: tuple[str, ...]
    op: _Op
    value: str | None


class _Not(msgspec.Struct, frozen=True, kw_only=True):
    operand: _Expr


class _And(msgspec.Struct, frozen=True, kw_only=True):
    terms: tuple[_Expr, ...]


class _Or(msgspec.Struct, frozen=True, kw_only=True):
    terms: tuple[_Expr, ...]


_Expr: TypeAlias = "_Match | _Not | _And | _Or"


# --- parser ---------------------------------------------------------------

_WS = frozenset(" \t\r\n")
_ALPHA = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGIT = frozenset("0123456789")
_IDENT = _ALPHA | _DIGIT | {"_"}
_NONZERO = _DIGIT - {"0"}
# pigeon names a failed character class by its source text, a literal by %q.
_WS_CLASS = "[ \\t\\r\\n]"


class _Parser:
    """go-bexpr's grammar.peg as recursive descent, reporting like pigeon.

    Every literal and character class records where it failed; the farthest
    failures become "no match found, expected: ...". `&{...}` predicates add
    errors that fail the parse even if another alternative matches, as in pigeon.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.fail_pos = 0
        self.expected: list[str] = []
        self.invert = False  # inside a !lookahead, pigeon records matches instead
        self.errors: dict[str, None] = {}  # ordered and deduplicated, as pigeon's
        self.or_memo: dict[int, tuple[_Expr | None, int]] = {}

    def parse(self) -> _Expr:
        expr = self._input()
        if self.errors:
            raise FilterError(_PREFIX + "\n".join(self.errors))
        if expr is None:
            names = sorted(set(self.expected) - {"!."})
            if "!." in self.expected:  # pigeon lists "not any rune" last, as EOF
                names.append("EOF")
            listed = (
                ", ".join(names[:-1]) + " or " + names[-1] if names[1:] else names[0]
            )
            where = _position(self.text, self.fail_pos)
            raise FilterError(f"{_PREFIX}{where}: no match found, expected: {listed}")
        return expr

    # primitives

    def _mark(self, matched: bool, pos: int, want: str) -> None:
        if matched != self.invert or pos < self.fail_pos:
            return
        if pos > self.fail_pos:
            self.fail_pos = pos
            self.expected.clear()
        self.expected.append("!" + want if self.invert else want)

    def _lit(self, literal: str) -> bool:
        start = self.pos
        ok = self.text.startswith(literal, start)
        self._mark(ok, start, '"\\""' if literal == '"' else f'"{literal}"')
        if ok:
            self.pos = start + len(literal)
        return ok

    def _cls(self, chars: frozenset[str], want: str) -> bool:
        start = self.pos
        ok = start < len(self.text) and self.text[start] in chars
        self._mark(ok, start, want)
        if ok:
            self.pos = start + 1
        return ok

    def _any(self) -> bool:
        start = self.pos
        ok = start < len(self.text)
        self._mark(ok, start, ".")
        if ok:
            self.pos = start + 1
        return ok

    def _not(self, rule: Callable[[], object]) -> bool:
        start = self.pos
        self.invert = not self.invert
        result = rule()  # rules return None or False when they fail
        self.invert = not self.invert
        self.pos = start
        return result is None or result is False

    def _eof(self) -> bool:
        return self._not(self._any)

    def _ws(self) -> bool:
        if not self._cls(_WS, _WS_CLASS):
            return False
        while self._cls(_WS, _WS_CLASS):
            pass
        return True

    def _error(self, rule: str, message: str, pos: int | None = None) -> None:
        where = _position(self.text, self.pos if pos is None else pos)
        self.errors[f'{where}: rule "{rule}": {message}'] = None

    def _words(self, *words: str, trailing: bool = True) -> bool:
        """`_ "w1" _ "w2" ... _`: keyword operators need whitespace around them."""
        start = self.pos
        for word in words:
            if not (self._ws() and self._lit(word)):
                self.pos = start
                return False
        if trailing and not self._ws():
            self.pos = start
            return False
        return True

    # expressions

    def _input(self) -> _Expr | None:
        # grammar.peg tries `_? "(" _? OrExpression _? ")" _? EOF` first; it
        # accepts nothing the second alternative does not, and records no
        # failure that one misses, so only the second is spelled out.
        self._ws()
        expr = self._or()
        if expr is not None:
            self._ws()
            if self._eof():
                return expr
        return None

    def _or(self) -> _Expr | None:
        # Memoised by position: nested groups are otherwise re-parsed twice per
        # level (grouping's third alternative), exponential in the nesting depth.
        start = self.pos
        if not self.invert and start in self.or_memo:
            expr, self.pos = self.or_memo[start]
            return expr
        expr = self._chain(self._and, "or", _Or)
        if not self.invert:
            self.or_memo[start] = (expr, self.pos)
        return expr

    def _and(self) -> _Expr | None:
        return self._chain(self._not_expr, "and", _And)

    def _chain(
        self,
        term: Callable[[], _Expr | None],
        keyword: str,
        node: Callable[..., _Expr],
    ) -> _Expr | None:
        # `X <- left:T _ "kw" _ right:X / T`, right-recursive in the grammar;
        # a loop accepts the same strings without deep recursion.
        first = term()
        if first is None:
            return None
        terms = [first]
        while True:
            save = self.pos
            if self._ws() and self._lit(keyword) and self._ws():
                nxt = term()
                if nxt is not None:
                    terms.append(nxt)
                    continue
            self.pos = save
            return terms[0] if len(terms) == 1 else node(terms=tuple(terms))

    def _not_expr(self) -> _Expr | None:
        # `NotExpression <- "not" _ NotExpression / ParenthesizedExpression`.
        starts = [self.pos]
        while self._lit("not"):
            if not self._ws():
                self.pos = starts[-1]
                break
            starts.append(self.pos)
        for count in range(len(starts) - 1, -1, -1):
            self.pos = starts[count]
            expr = self._group()
            if expr is not None:  # "not not x" is x, as go-bexpr folds it
                return _Not(operand=expr) if count % 2 else expr
        self.pos = starts[0]
        return None

    def _group(self) -> _Expr | None:
        start = self.pos
        if self._lit("("):
            self._ws()
            expr = self._or()
            if expr is not None:
                self._ws()
                if self._lit(")"):
                    return expr
        self.pos = start
        match = self._match()
        if match is not None:
            return match
        self.pos = start
        if self._lit("("):
            self._ws()
            if self._or() is not None:
                self._ws()
                if self._not(lambda: self._lit(")")):
                    self._error("grouping", "Unmatched parentheses")
        self.pos = start
        return None

    def _match(self) -> _Match | None:
        start = self.pos
        selector = self._selector()
        if selector is not None:
            op = self._op_with_value()
            value = self._value() if op is not None else None
            if op is not None and value is not None:
                return _Match(selector=selector, op=op, value=value)
        self.pos = start
        selector = self._selector()
        if selector is not None:
            if self._words("is", "empty", trailing=False):
                return _Match(selector=selector, op=_Op.IS_EMPTY, value=None)
            if self._words("is", "not", "empty", trailing=False):
                return _Match(selector=selector, op=_Op.IS_NOT_EMPTY, value=None)
        for attempt in range(2):
            self.pos = start
            value = self._value()
            op = self._op_in() if value is not None else None
            if value is None or op is None:
                continue
            if attempt == 0:
                selector = self._selector()
                if selector is not None:
                    return _Match(selector=selector, op=op, value=value)
            elif self._not(self._selector):
                self._error("match", "Invalid selector")
        self.pos = start
        return None

    def _op_with_value(self) -> _Op | None:
        start = self.pos
        for symbol, op in (("==", _Op.EQUAL), ("!=", _Op.NOT_EQUAL)):
            self._ws()
            if self._lit(symbol):
                self._ws()
                return op
            self.pos = start
        for words, op in (
            (("contains",), _Op.IN),
            (("not", "contains"), _Op.NOT_IN),
            (("matches",), _Op.MATCHES),
            (("not", "matches"), _Op.NOT_MATCHES),
        ):
            if self._words(*words):
                return op
        return None

    def _op_in(self) -> _Op | None:
        if self._words("in"):
            return _Op.IN
        if self._words("not", "in"):
            return _Op.NOT_IN
        return None

    def _selector(self) -> tuple[str, ...] | None:
        first = self._identifier()
        if first is None:
            return None
        parts = [first]
        while True:
            save = self.pos
            if self._lit("."):
                name = self._identifier()
                if name is not None:
                    parts.append(name)
                    continue
            self.pos = save
            key = self._index()
            if key is None:
                self.pos = save
                return tuple(parts)
            parts.append(key)

    def _identifier(self) -> str | None:
        start = self.pos
        if not self._cls(_ALPHA, "[a-zA-Z]"):
            return None
        while self._cls(_IDENT, "[a-zA-Z0-9_]"):
            pass
        return self.text[start : self.pos]

    def _index(self) -> str | None:
        start = self.pos
        if self._lit("["):
            self._ws()
            key = self._string()
            if key is not None:
                self._ws()
                if self._lit("]"):
                    return key
        self.pos = start
        if self._lit("["):
            self._ws()
            if self._not(self._string):
                self._error("index", "Invalid index")
        self.pos = start
        if self._lit("["):
            self._ws()
            if self._string() is not None:
                self._ws()
                if self._not(lambda: self._lit("]")):
                    self._error("index", "Unclosed index expression")
        self.pos = start
        return None

    def _value(self) -> str | None:
        start = self.pos
        selector = self._selector()
        if selector is not None:
            return ".".join(selector)  # a bare word is its own text
        self.pos = start
        for literal in (self._number, self._string):
            found = literal()
            if found is not None:
                return found
            self.pos = start
        return None

    def _number(self) -> str | None:
        start = self.pos
        self._lit("-")
        if self._integer_or_float() and self._after_number():
            return self.text[start : self.pos]
        self.pos = start
        self._lit("-")
        if self._integer_or_float() and self._not(self._after_number):
            self._error("number", "Invalid number literal")
        self.pos = start
        return None

    def _integer_or_float(self) -> bool:
        if not self._lit("0"):
            if not self._cls(_NONZERO, "[1-9]"):
                return False
            while self._cls(_DIGIT, "[0-9]"):
                pass
        save = self.pos
        if self._lit(".") and self._cls(_DIGIT, "[0-9]"):
            while self._cls(_DIGIT, "[0-9]"):
                pass
        else:
            self.pos = save
        return True

    def _after_number(self) -> bool:
        start = self.pos
        ok = self._ws() or self._eof() or self._lit(")")
        self.pos = start
        return ok

    def _string(self) -> str | None:
        start = self.pos
        for quote in ("`", '"'):
            if self._quoted(quote) and self._lit(quote):
                return self._unquote(start)
            self.pos = start
        for quote in ("`", '"'):
            if self._quoted(quote):
                if self._eof():
                    self._error("string", "Unterminated string literal")
                break
        self.pos = start
        return None

    def _quoted(self, quote: str) -> bool:
        """An opening quote and every rune up to the next one (no escapes)."""
        if not self._lit(quote):
            return False
        while self._not(lambda: self._lit(quote)) and self._any():
            pass
        return True

    def _unquote(self, start: int) -> str:
        value = _go_unquote(self.text[start : self.pos])
        if value is None:  # strconv.Unquote failed: the parse fails, pigeon goes on
            self._error("string", "invalid syntax", start)
            return ""
        return value


def _position(text: str, index: int) -> str:
    """pigeon's `line:col (offset)`: col counts runes, offset counts UTF-8 bytes."""
    line = 1 + text.count("\n", 0, index + 1)
    col = index - text.rfind("\n", 0, index + 1)
    offset = len(text[:index].encode("utf-8", "surrogatepass"))
    return f"{line}:{col} ({offset})"


@functools.lru_cache(maxsize=256)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    # differs: Python's `re` stands in for Go's RE2; RE2-only syntax such as
    # \pL or [[:alpha:]] is refused here rather than read differently.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(pattern)
    except (re.error, Warning) as exc:
        raise FilterError(
            f"{_PREFIX}Failed to compile regular expression {_go_quote(pattern)}: {exc}"
        ) from None


# --- validation against a schema (go-bexpr validate.go, field_config.go) ----

_STRING_OPS = frozenset(
    {_Op.EQUAL, _Op.NOT_EQUAL, _Op.IN, _Op.NOT_IN, _Op.MATCHES, _Op.NOT_MATCHES}
)
_SCALAR_OPS = frozenset({_Op.EQUAL, _Op.NOT_EQUAL})
_EMPTY_OPS = frozenset({_Op.IS_EMPTY, _Op.IS_NOT_EMPTY})
_CONTAINER_OPS = _EMPTY_OPS | {_Op.IN, _Op.NOT_IN}


def _operators(node: _Field) -> frozenset[_Op]:
    if node.kind is _Kind.STRING:
        return _STRING_OPS
    if node.kind in _PRIMITIVE_KINDS:
        return _SCALAR_OPS
    if node.kind is _Kind.LIST:
        assert node.element is not None
        primitive = node.element.kind in _PRIMITIVE_KINDS
        return _CONTAINER_OPS if primitive else _EMPTY_OPS
    if node.kind is _Kind.MAP:
        return _CONTAINER_OPS
    return frozenset()  # a struct itself supports nothing


def _child(node: _Field, name: str) -> _Field | None:
    while node.kind is _Kind.LIST and node.element is not None:
        node = node.element  # a slice's elements answer for it
    if node.kind is _Kind.STRUCT and node.fields is not None:
        return node.fields.get(name)  # exact case, as bexpr's field names are
    if node.kind is _Kind.MAP:
        return node.element
    return None


def _coerce(node: _Field, raw: str) -> object:
    target = node.element if node.kind is _Kind.LIST else node
    assert target is not None
    if node.kind is _Kind.MAP or target.kind in (_Kind.STRING, _Kind.STRUCT, _Kind.MAP):
        return raw
    if target.kind is _Kind.BOOL:
        return _parse_bool(raw)
    if target.kind is _Kind.INT:
        return _parse_int(raw, target.bits)
    if target.kind is _Kind.UINT:
        return _parse_uint(raw, target.bits)
    if target.kind is _Kind.FLOAT:
        return _parse_float(raw)
    return raw


def _resolve(root: _Field, selector: tuple[str, ...]) -> _Field:
    node = root
    for depth, name in enumerate(selector):
        child = _child(node, name)
        if child is None:
            shown = _go_quote(".".join(selector[: depth + 1]))
            raise FilterError(f"{_PREFIX}Selector {shown} is not valid")
        node = child
    return node


def _check(node: _Field, match: _Match) -> object:
    """The operator must suit the field and the value convert to its type."""
    shown = _go_quote(".".join(match.selector))
    if match.op not in _operators(node):
        op = _go_quote(match.op.value)
        raise FilterError(f"{_PREFIX}Invalid match operator {op} for selector {shown}")
    if match.value is None:
        return None
    try:
        value = _coerce(node, match.value)
    except _CoerceError as exc:
        raw = _go_quote(match.value)
        raise FilterError(
            f"{_PREFIX}Failed to coerce value {raw} for selector {shown}: {exc}"
        ) from None
    if match.op in (_Op.MATCHES, _Op.NOT_MATCHES):
        return _compile_regex(str(value))
    return value


# --- compilation to closures ----------------------------------------------


def _compile(expr: _Expr, root: _Field | None) -> _Pred:
    if isinstance(expr, _Match):
        if root is None:
            return _dynamic_match(expr)
        node = _resolve(root, expr.selector)
        leaf = _typed_leaf(node, expr, _check(node, expr))
        absent = expr.op not in _FALSE_WHEN_ABSENT
        return _typed_path(root, expr.selector, 0, leaf, absent)
    if isinstance(expr, _Not):
        operand = _compile(expr.operand, root)
        return lambda item: not operand(item)
    terms = tuple(_compile(term, root) for term in expr.terms)
    if len(terms) == 2:
        first, second = terms
        if isinstance(expr, _And):
            return lambda item: first(item) and second(item)
        return lambda item: first(item) or second(item)
    want = not isinstance(expr, _And)  # the answer that ends the scan early

    def scan(item: Any) -> bool:
        for term in terms:
            if term(item) is want:
                return want
        return not want

    return scan


_ZERO: dict[_Kind, object] = {_Kind.STRING: "", _Kind.INT: 0, _Kind.UINT: 0}


def _typed_leaf(node: _Field, match: _Match, value: Any) -> _Pred:
    """The operator on the selected value; None reads as the type's zero value."""
    op = _POSITIVE.get(match.op, match.op)
    test = _positive_leaf(node, op, value)
    return test if op is match.op else _negated(test)


def _positive_leaf(node: _Field, op: _Op, value: Any) -> _Pred:
    if op is _Op.IS_EMPTY:
        return lambda v: not v
    if op is _Op.MATCHES:
        search = value.search
        return lambda v: search(v if v is not None else "") is not None
    if op is _Op.IN:
        if node.kind is _Kind.STRING:  # substring, as strings.Contains
            return lambda v: value in (v if v is not None else "")
        return lambda v: value in v if v else False  # list element or map key
    if node.kind is _Kind.BOOL:
        return (lambda v: v is True) if value else (lambda v: v is not True)
    if value == _ZERO.get(node.kind):
        return lambda v: v is None or v == value
    return lambda v: v == value


def _negated(test: _Pred) -> _Pred:
    return lambda v: not test(v)


_ABSENT = object()


def _typed_path(
    node: _Field, selector: tuple[str, ...], depth: int, leaf: _Pred, absent: bool
) -> _Pred:
    if depth == len(selector):
        return leaf
    if node.kind is _Kind.LIST:
        assert node.element is not None
        each = _typed_path(node.element, selector, depth, leaf, absent)

        def any_element(v: Any) -> bool:
            # go-bexpr: selecting through a slice is "any element"; an empty
            # slice is false whatever the operator, `!=` included.
            if v:
                for element in v:
                    if each(element):
                        return True
            return False

        return any_element
    name = selector[depth]
    child = _child(node, name)
    assert child is not None
    after = _typed_path(child, selector, depth + 1, leaf, absent)
    if node.kind is _Kind.STRUCT:
        # differs: a field left out, or null, is the Go zero value even where
        # Consul's struct holds a nil pointer (which go-bexpr fails on).
        return lambda v: after(v.get(name) if isinstance(v, dict) else None)

    def map_entry(v: Any) -> bool:
        found = v.get(name, _ABSENT) if isinstance(v, dict) else _ABSENT
        return absent if found is _ABSENT else after(found)

    return map_entry


def _dynamic_match(match: _Match) -> _Pred:
    """Without a schema: dicts are maps, lists "any element", types from the data."""
    selector, absent = match.selector, match.op not in _FALSE_WHEN_ABSENT
    leaves: dict[_Field, _Pred] = {}
    if match.op in (_Op.MATCHES, _Op.NOT_MATCHES) and match.value is not None:
        _compile_regex(match.value)  # a bad pattern fails now, not on some row

    def leaf(v: Any) -> bool:
        if v is None:
            return absent
        node = _infer(v)
        test = leaves.get(node)
        if test is None:  # checked once per type seen, then reused
            test = leaves[node] = _typed_leaf(node, match, _check(node, match))
        return test(v)

    def walk(v: Any, depth: int) -> bool:
        while depth < len(selector):
            if isinstance(v, (list, tuple)):
                return any(walk(element, depth) for element in v)
            if not isinstance(v, dict):
                if v is None:
                    return absent
                shown = _go_quote(".".join(selector[: depth + 1]))
                raise FilterError(f"Selector {shown} is not valid")
            v = v.get(selector[depth], _ABSENT)
            if v is _ABSENT:
                return absent
            depth += 1
        return leaf(v)

    return lambda item: walk(item, 0)


_STRING_FIELD = _Field(kind=_Kind.STRING)
_RUNTIME_KINDS = {bool: _Kind.BOOL, int: _Kind.INT, float: _Kind.FLOAT}


def _infer(v: object) -> _Field:
    if isinstance(v, (list, tuple)):
        return _Field(kind=_Kind.LIST, element=_infer(v[0]) if v else _STRING_FIELD)
    if isinstance(v, dict):
        return _Field(kind=_Kind.MAP, element=_STRING_FIELD)
    return _Field(kind=_RUNTIME_KINDS.get(type(v), _Kind.STRING), bits=64)


# --- public API -----------------------------------------------------------


class Filter:
    """A compiled `?filter=` expression; cheap to share and to run per element."""

    __slots__ = ("_predicate", "expression", "schema")

    def __init__(
        self, expression: str, schema: Schema | None, predicate: _Pred
    ) -> None:
        self.expression = expression
        self.schema = schema
        self._predicate = predicate

    def __repr__(self) -> str:
        return f"Filter({self.expression!r}, schema={self.schema!r})"

    @property
    def matches_everything(self) -> bool:
        """True for the empty expression, which Consul treats as no filter."""
        return self.expression == ""

    def matches(self, item: object) -> bool:
        """Whether one element (a wire-format dict) passes the filter."""
        return self._predicate(item)

    def filter(self, items: Iterable[_T]) -> list[_T]:
        """The elements that pass, in their order."""
        predicate = self._predicate
        return [item for item in items if predicate(item)]


def compile_filter(expression: str, schema: Schema | None = None) -> Filter:
    """Parse, validate and compile a `?filter=` expression (cached).

    Args:
        expression: the filter as the client sent it; "" matches everything.
        schema: the selectors the endpoint accepts; None checks nothing up front
            and reads types from the data.

    Raises:
        FilterError: with Consul's message, e.g. `Failed to create boolean
            expression evaluator: 1:4 (3): no match found, expected: ...`.

    Example:
        >>> compile_filter('Service.Tags contains "primary"').matches(
        ...     {"Service": {"Tags": ["primary"]}})
        True
    """
    return _compile_cached(expression, schema)


@functools.lru_cache(maxsize=1024)
def _compile_cached(expression: str, schema: Schema | None) -> Filter:
    if expression == "":  # CreateFilter returns the nil filter: a no-op
        return Filter(expression, schema, lambda item: True)
    try:
        tree = _Parser(expression).parse()
        predicate = _compile(tree, None if schema is None else schema._root)
    except RecursionError:
        raise FilterError(f"{_PREFIX}expression is nested too deeply") from None
    return Filter(expression, schema, predicate)


def apply_filter(
    expression: str, items: Iterable[_T], schema: Schema | None = None
) -> list[_T]:
    """The elements of `items` that match `expression` (see `compile_filter`)."""
    return compile_filter(expression, schema).filter(items)
