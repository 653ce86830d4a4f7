"""Values that must not travel further than SaladCloud: scrubbed out of its answers.

A create that SaladCloud refuses comes back with a detail that may quote the body,
environment values and registry credentials included. That detail becomes an event
and a pod status message, which every reader of the namespace sees, and a log line:
the values that came from Secrets are taken out first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nodes.saladcloud.models import ContainerGroupPrototype

MIN_SCRUBBED_LENGTH = 4
"""Shorter values are left: ``"1"`` or ``"yes"`` would blank out half a message while
hiding next to nothing."""

REDACTED = "[redacted]"


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


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with each of ``values`` replaced by a marker, longest first (so that a
    value containing another is removed whole)."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
