"""The part of SaladCloud's log query language the simulator understands.

``log-queries.mdx`` describes ``field op value`` comparisons joined by ``AND`` /
``OR``, e.g. ``resource.labels.container_group_name = "my-cg"``. Understood here:

* fields ``resource.type``, ``resource.labels.<label>``, ``severity``, ``text_log``;
* operators ``=``, ``!=`` and ``:`` (the value occurs in the field);
* ``AND`` (binds tighter), ``OR``, ``NOT``, parentheses; double-quoted strings with
  backslash escapes, or bare words;
* the empty query, which matches everything.

Anything else is a 400 naming the position, rather than a silently empty answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .lifecycle import LogLine
from .problems import ApiProblem

Predicate = Callable[[LogLine], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|=|:)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z0-9_.\-/*]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        if query[position:].strip() == "":
            break
        match = _TOKEN.match(query, position)
        if match is None or match.end() == position:
            raise _error(f"unexpected character at position {position}")
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text, match.start(kind)))
        position = match.end()
    return tokens


def _error(detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", f"query: {detail}")


def _field(name: str) -> Callable[[LogLine], str | None]:
    if name == "resource.type":
        return lambda line: line.resource_type
    if name == "severity":
        return lambda line: line.severity
    if name == "text_log":
        return lambda line: line.text
    if name.startswith("resource.labels.") and len(name) > len("resource.labels."):
        label = name.removeprefix("resource.labels.")
        return lambda line: line.labels.get(label)
    raise _error(
        f"unknown field {name!r} (known: resource.type, resource.labels.<label>, "
        "severity, text_log)"
    )


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def parse(self) -> Predicate:
        if not self._tokens:
            return lambda line: True
        predicate = self._or()
        if self._at < len(self._tokens):
            token = self._tokens[self._at]
            raise _error(f"unexpected {token.text!r} at position {token.position}")
        return predicate

    def _peek_word(self, word: str) -> bool:
        if self._at >= len(self._tokens):
            return False
        token = self._tokens[self._at]
        return token.kind == "word" and token.text.upper() == word

    def _next(self, what: str) -> _Token:
        if self._at >= len(self._tokens):
            raise _error(f"expected {what} at the end of the query")
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _or(self) -> Predicate:
        terms = [self._and()]
        while self._peek_word("OR"):
            self._at += 1
            terms.append(self._and())
        if len(terms) == 1:
            return terms[0]
        return lambda line: any(term(line) for term in terms)

    def _and(self) -> Predicate:
        factors = [self._not()]
        while self._peek_word("AND"):
            self._at += 1
            factors.append(self._not())
        if len(factors) == 1:
            return factors[0]
        return lambda line: all(factor(line) for factor in factors)

    def _not(self) -> Predicate:
        if self._peek_word("NOT"):
            self._at += 1
            inner = self._not()
            return lambda line: not inner(line)
        return self._primary()

    def _primary(self) -> Predicate:
        token = self._next("a comparison")
        if token.kind == "paren" and token.text == "(":
            inner = self._or()
            closing = self._next("')'")
            if closing.text != ")":
                raise _error(f"expected ')' at position {closing.position}")
            return inner
        if token.kind != "word":
            raise _error(f"expected a field name at position {token.position}")
        read = _field(token.text)
        operator = self._next("an operator")
        if operator.kind != "op":
            raise _error(f"expected =, != or : at position {operator.position}")
        value_token = self._next("a value")
        if value_token.kind not in ("string", "word"):
            raise _error(f"expected a value at position {value_token.position}")
        value = value_token.text
        if operator.text == "=":
            return lambda line: read(line) == value
        if operator.text == "!=":
            return lambda line: read(line) != value
        return lambda line: value in (read(line) or "")


def compile_query(query: str) -> Predicate:
    """A predicate over log lines, or an ``ApiProblem`` 400 explaining the query's fault."""
    return _Parser(_tokens(query)).parse()
