"""Values that must not travel further than SaladCloud: scrubbed out of its answers.

A create that SaladCloud refuses comes back with a detail that may quote the body,
environment values and registry credentials included. That detail becomes an event
and a pod status message, which every reader of the namespace sees, and a log line:
the values that came from Secrets are taken out first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nodes.saladcloud.models import ContainerGroupPrototype

MIN_SCRUBBED_LENGTH = 4
"""Shorter values are left: ``"1"`` or ``"yes"`` would blank out half a message while
hiding next to nothing."""

REDACTED = "[redacted]"
MIN_CUT_PREFIX = 6
"""The shortest start of a value taken for it at the end of a detail cut short."""
_CUT = "…"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def sensitive_values(
    secrets: Mapping[str, Mapping[str, str]], body: ContainerGroupPrototype | None
) -> frozenset[str]:
    """Every decoded Secret value, and every string of the body's registry credentials
    (derived from a pull Secret, so not always equal to one of its values)."""
    found = {value for data in secrets.values() for value in data.values()}
    registry = body.container.registry_authentication if body is not None else None
    if registry is not None:
        found.update(_strings(registry.model_dump(mode="json")))
    return frozenset(v for v in found if len(v) >= MIN_SCRUBBED_LENGTH)


def _spellings(value: str) -> set[str]:
    """How a value may appear in an error text: as is, trimmed, with its whitespace run
    together (the client squeezes details onto one line), JSON- or repr-escaped."""
    found = {value, value.strip(), " ".join(value.split())}
    found.update({json.dumps(value)[1:-1], repr(value)[1:-1]})
    return {v for v in found if len(v) >= MIN_SCRUBBED_LENGTH}


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values``, in every spelling, replaced by a marker, longest
    first (so that a value containing another is removed whole). A detail cut short
    (ending in ``…``) may end in the start of a value: that is removed too."""
    spellings = sorted({s for v in values for s in _spellings(v)}, key=len, reverse=True)
    for spelling in spellings:
        text = text.replace(spelling, REDACTED)
    if text.endswith(_CUT):
        body = text[: -len(_CUT)]
        for spelling in spellings:
            for size in range(len(spelling) - 1, MIN_CUT_PREFIX - 1, -1):
                if body.endswith(spelling[:size]):
                    return body[:-size] + REDACTED + _CUT
    return text
