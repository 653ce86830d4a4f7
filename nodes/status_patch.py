"""The smallest strategic-merge patch that turns one pod status into another.

A strategic merge *merges* maps, so every key that disappeared must be sent as
``null`` (the kubelet's two-way patch does the same). Lists follow the API's own
merge strategy: ``conditions`` merge by ``type`` — they are diffed per element, and
conditions absent from the new status are left alone, since they belong to someone
else (readiness gates, ``DisruptionTarget``) — while ``containerStatuses`` is an
atomic list that a patch replaces whole, so it is sent whole whenever it differs.

``None`` means "nothing to write", which is how the node skips unchanged pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MERGE_KEYS = {"conditions": "type"}


def _diff_map(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if key in _MERGE_KEYS and isinstance(value, list):
            elements = _diff_list(
                before if isinstance(before, list) else [], value, _MERGE_KEYS[key]
            )
            if elements:
                patch[key] = elements
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = _diff_map(before, value)
            if inner:
                patch[key] = inner
        elif value != before:
            patch[key] = value
    for key, before in old.items():
        if key not in new and before is not None and key not in _MERGE_KEYS:
            patch[key] = None
    return patch


def _diff_list(
    old: list[Mapping[str, Any]], new: list[Mapping[str, Any]], merge_key: str
) -> list[dict[str, Any]]:
    by_key = {item.get(merge_key): item for item in old if isinstance(item, Mapping)}
    changed = []
    for item in new:
        before = by_key.get(item.get(merge_key))
        if before is None:
            changed.append(dict(item))
            continue
        inner = _diff_map(before, item)
        if inner:
            changed.append({merge_key: item[merge_key], **inner})
    return changed


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``status`` patch from ``old`` to ``new``; keys absent from ``new`` top-level
    are kept unless they are ones ``new`` is meant to own (handled by the caller)."""
    patch = _diff_map(old, new)
    # Top-level keys missing from ``new`` are not ours to delete (e.g. nominatedNodeName,
    # qosClass); only nested ones are, and _diff_map nulls those.
    for key in [k for k, v in patch.items() if v is None and k not in new]:
        del patch[key]
    return patch or None
