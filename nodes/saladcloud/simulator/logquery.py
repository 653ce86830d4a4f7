"""SaladCloud's log query language, as far as the simulator understands it.

``log-queries.mdx`` describes ``field operator value`` comparisons joined by ``and`` /
``or`` / ``not`` and parentheses, e.g. ``resource.labels.container_group_name =
"my-cg"``. A query is compiled to a predicate over the rendered ``LogEntry`` (the JSON
the API answers), so every field a client can read can be asked about. Understood:

* fields ``time`` and ``receive_time`` (compared as instants: ``"2026-01-02T03:04:05Z"``,
  fractions of a second allowed), ``severity``, ``severity_number``, ``trace_id``,
  ``span_id``, ``parent_span_id``, ``text_log``, ``resource.type``,
  ``resource.labels.<label>``, ``json_log.<field>[.<field>...]``, and ``log`` (the
  text of ``text_log`` or ``json_log``, for the ``contains`` family only);
* operators ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=``, ``contains``, ``startswith``,
  ``endswith``, each ``contains``-like one negated with a leading ``!``, and ``~`` at
  the end of ``=``, ``!=`` or a word operator to ignore case; ``:`` is kept as
  ``contains``;
* ``and`` (binds tighter), ``or``, ``not`` in any case, parentheses; double-quoted
  strings with backslash escapes, or bare words;
* the empty query, which matches everything.

A field an entry does not have compares unequal to everything. Anything else is a 400
naming the position, rather than a silently empty answer.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .problems import ApiProblem

Entry = Mapping[str, Any]
Predicate = Callable[[Entry], bool]

_WORD_CHARS = r"A-Za-z0-9_.\-/*"
_TOKEN = re.compile(
    rf"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>!=~|=~|!=|>=|<=|=|>|<|:
               |!?(?:contains|startswith|endswith)~?(?![{_WORD_CHARS}]))
      | (?P<paren>[()])
      | (?P<word>[{_WORD_CHARS}]+)
    )""",
    re.VERBOSE,
)

_TIME_FIELDS = frozenset({"time", "receive_time"})
_PLAIN_FIELDS = frozenset(
    {"severity", "severity_number", "trace_id", "span_id", "parent_span_id", "text_log"}
)
_SPEC_SPELLING = {"trace_id": "trace_Id", "span_id": "span_Id"}


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


def _instant(text: str, position: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _error(
            f"{text!r} at position {position} is not a time like 2026-01-02T03:04:05Z (UTC)"
        )
    return moment


def _reader(name: str, position: int) -> Callable[[Entry], Any]:
    """How to read field ``name`` of an entry (None when it has none)."""
    if name in _TIME_FIELDS or name in _PLAIN_FIELDS:
        key = _SPEC_SPELLING.get(name, name)
        return lambda entry: entry.get(key)
    if name == "log":
        return _log_text
    if name == "resource.type":
        return lambda entry: (entry.get("resource") or {}).get("type")
    if name.startswith("resource.labels.") and len(name) > len("resource.labels."):
        label = name.removeprefix("resource.labels.")
        return lambda entry: ((entry.get("resource") or {}).get("labels") or {}).get(label)
    if name.startswith("json_log.") and len(name) > len("json_log."):
        path = name.removeprefix("json_log.").split(".")
        return lambda entry: _dig(entry.get("json_log"), path)
    raise _error(
        f"unknown field {name!r} at position {position} (known: time, receive_time, "
        "severity, text_log, log, resource.type, resource.labels.<label>, "
        "json_log.<field>)"
    )


def _dig(value: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _log_text(entry: Entry) -> str | None:
    if isinstance(entry.get("text_log"), str):
        return str(entry["text_log"])
    if entry.get("json_log") is not None:
        return json.dumps(entry["json_log"], separators=(",", ":"))
    return None


def _comparison(
    field: str, read: Callable[[Entry], Any], op: str, value: str, position: int
) -> Predicate:
    negated = op.startswith("!") and op not in ("!=", "!=~")
    base = op.removeprefix("!") if negated else op
    fold = base.endswith("~")
    base = base.removesuffix("~")
    if base == ":":
        base = "contains"
    if field == "log" and base != "contains":
        raise _error(f"the field log takes only the contains operators (position {position})")
    if field in _TIME_FIELDS:
        if base not in _ORDERINGS or fold or negated:
            raise _error(
                f"times compare with =, !=, <, >, <= or >=, not {op} (position {position})"
            )
        return _timed(read, base, _instant(value, position))
    return _textual(read, base, value, fold=fold, negated=negated)


def _timed(read: Callable[[Entry], Any], base: str, wanted: datetime) -> Predicate:
    test = _TESTS[base]

    def predicate(entry: Entry) -> bool:
        found = read(entry)
        if found is None:
            return base == "!="
        return test(datetime.fromisoformat(str(found)), wanted)

    return predicate


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "contains": lambda found, wanted: str(wanted) in str(found),
    "startswith": lambda found, wanted: str(found).startswith(str(wanted)),
    "endswith": lambda found, wanted: str(found).endswith(str(wanted)),
}
_ORDERINGS = frozenset({"=", "!=", ">", "<", ">=", "<="})


def _textual(
    read: Callable[[Entry], Any], base: str, value: str, *, fold: bool, negated: bool
) -> Predicate:
    """Strings compare as strings (case-folded with ``~``); a number in a JSON log
    compares with a numeric value as a number."""
    test = _TESTS[base]
    wanted_text = value.casefold() if fold else value
    try:
        wanted_number: float | None = float(value)
    except ValueError:
        wanted_number = None

    def operands(found: Any) -> tuple[Any, Any]:
        is_number = isinstance(found, int | float) and not isinstance(found, bool)
        if is_number and wanted_number is not None and base in _ORDERINGS:
            return float(found), wanted_number
        text = found if isinstance(found, str) else json.dumps(found)
        return (text.casefold() if fold else text), wanted_text

    def predicate(entry: Entry) -> bool:
        found = read(entry)
        if found is None:
            return base == "!=" or negated
        return test(*operands(found)) != negated

    return predicate


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def parse(self) -> Predicate:
        if not self._tokens:
            return lambda entry: True
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
        return lambda entry: any(term(entry) for term in terms)

    def _and(self) -> Predicate:
        factors = [self._not()]
        while self._peek_word("AND"):
            self._at += 1
            factors.append(self._not())
        if len(factors) == 1:
            return factors[0]
        return lambda entry: all(factor(entry) for factor in factors)

    def _not(self) -> Predicate:
        if self._peek_word("NOT"):
            self._at += 1
            inner = self._not()
            return lambda entry: not inner(entry)
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
        read = _reader(token.text, token.position)
        op = self._next("an operator")
        if op.kind != "op":
            raise _error(
                f"expected an operator (=, !=, <, contains, ...) at position {op.position}"
            )
        value = self._next("a value")
        if value.kind not in ("string", "word"):
            raise _error(f"expected a value at position {value.position}")
        return _comparison(token.text, read, op.text, value.text, value.position)


def compile_query(query: str) -> Predicate:
    """A predicate over rendered log entries, or an ``ApiProblem`` 400 explaining the
    query's fault."""
    return _Parser(_tokens(query)).parse()
