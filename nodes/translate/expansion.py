"""Kubernetes ``$(VAR)`` expansion, exactly as the kubelet does it.

A port of ``third_party/forked/golang/expansion`` in kubernetes/kubernetes:
``$(NAME)`` becomes the value of ``NAME`` when it is defined and stays as written when
it is not; ``$$`` is an escaped ``$``; any other ``$`` is copied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """Look a name up in ``contexts`` in order; an unknown name stays ``$(name)``."""

    def lookup(name: str) -> str:
        for variables in contexts:
            if name in variables:
                return variables[name]
        return f"{_OPERATOR}{_OPENER}{name}{_CLOSER}"

    return lookup


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """``text`` with every ``$(NAME)`` replaced through ``mapping``."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == _OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_variable, advance = _read_variable_name(text[cursor + 1 :])
            out.append(mapping(read) if is_variable else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _read_variable_name(rest: str) -> tuple[str, bool, int]:
    """What follows a ``$``: (text, whether it is a variable name, characters used)."""
    first = rest[0]
    if first == _OPERATOR:
        return _OPERATOR, False, 1
    if first == _OPENER:
        closer = rest.find(_CLOSER, 1)
        if closer != -1:
            return rest[1:closer], True, closer + 1
        return _OPERATOR + _OPENER, False, 1
    return _OPERATOR + first, False, 1
