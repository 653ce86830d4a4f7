"""Kubernetes ``command`` + ``args`` as SaladCloud's single ``command``.

SaladCloud's ``command`` replaces both the image's ENTRYPOINT and its CMD, and has no
separate arguments. ``command`` + ``args`` concatenated is therefore exact. ``command``
alone is exact too (Kubernetes then ignores CMD as well). ``args`` alone cannot be
mapped: it keeps the image's ENTRYPOINT, which this node cannot know without reading
the image, so such a pod is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.translate.expansion import expand, mapping_for
from nodes.translate.pod_json import items, text
from nodes.translate.refusal import INVALID_COMMAND, UNSUPPORTED_POD_FEATURE, Problems
from nodes.translate.spec_bounds import COMMAND_ITEM_MAX, COMMAND_ITEMS_MAX, check_text


def container_command(
    container: Mapping[str, Any],
    path: str,
    environment: Mapping[str, str],
    problems: Problems,
) -> list[str] | None:
    """The create body's ``command``, ``$(VAR)``-expanded; ``None`` keeps the image's."""
    command = [text(part) for part in items(container.get("command"))]
    args = [text(part) for part in items(container.get("args"))]
    if not command:
        if args:
            problems.add(
                UNSUPPORTED_POD_FEATURE,
                f"{path}.args",
                "args without command cannot be mapped: SaladCloud's command replaces the "
                "image's ENTRYPOINT too; set command to the ENTRYPOINT followed by args",
            )
        return None
    lookup = mapping_for(environment)
    parts = [(f"{path}.command[{i}]", expand(part, lookup)) for i, part in enumerate(command)]
    parts += [(f"{path}.args[{i}]", expand(part, lookup)) for i, part in enumerate(args)]
    if len(parts) > COMMAND_ITEMS_MAX:
        problems.add(
            INVALID_COMMAND,
            f"{path}.args" if args else f"{path}.command",
            f"command and args have {len(parts)} elements together; SaladCloud accepts "
            f"at most {COMMAND_ITEMS_MAX}",
        )
        return None
    ok = True
    for field, part in parts:
        ok = (
            check_text(
                part,
                field=field,
                what="the element",
                reason=INVALID_COMMAND,
                problems=problems,
                maximum=COMMAND_ITEM_MAX,
            )
            and ok
        )
    return [part for _, part in parts] if ok else None
