"""Container-group deletions the node still owes, kept until SaladCloud confirms them.

A pod can leave Kubernetes without waiting for its group: a force delete, PodGC, a
StatefulSet replacing it under the same name. Its group then has no pod left to
remind the node, and one failed delete (a SaladCloud blip) would leave it running and
billed until the orphan collector's ten-minute wait, or for ever if the cluster's
identity could not be read. So each such deletion becomes a debt, retried with
backoff until SaladCloud says the group is gone (a 404, or absent from a complete
list sent after the delete), whatever else happens.

The debts are written on the node's own Node object (annotation
``salad.com/owed-deletions``), so a restart (a ``kill -9`` included) or another
replica taking the node over picks them up. A debt read back from there was not seen
by this process: before paying it, the node checks the group's owner marks and that
the owning pod is really gone, as the orphan collector does, but without its wait.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from config.schema import SALAD_NAME_PATTERN

log = logging.getLogger(__name__)

ANNOTATION = "salad.com/owed-deletions"

_GROUP_NAME = re.compile(SALAD_NAME_PATTERN.removeprefix("^").removesuffix("$"))

_FIRST_BACKOFF = 2.0
_MAX_BACKOFF = 60.0
RESEND_AFTER = 60.0
"""A group still listed this long after its delete was accepted is deleted again."""


@dataclass
class Debt:
    group: str
    uid: str
    """The UID of the pod that owned the group: the group's marks must carry it."""
    pod: str
    """``namespace/name`` of that pod."""
    seen: bool
    """Whether this process saw the pod go; False for debts read back from the Node."""
    next_attempt: float = 0.0
    attempts: int = 0
    sent_at: float | None = None
    """Monotonic time SaladCloud accepted our delete."""

    def back_off(self, now: float) -> None:
        self.attempts += 1
        self.next_attempt = now + min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (self.attempts - 1))


class OwedDeletions:
    """The node's debts, by group name; ``dirty`` until the annotation says the same."""

    def __init__(self) -> None:
        self._debts: dict[str, Debt] = {}
        self.dirty = False

    def __len__(self) -> int:
        return len(self._debts)

    def __contains__(self, group: object) -> bool:
        return group in self._debts

    def __iter__(self) -> Iterator[Debt]:
        return iter(list(self._debts.values()))

    def owe(self, group: str, uid: str, pod: str) -> None:
        if group not in self._debts:
            self._debts[group] = Debt(group, uid, pod, seen=True)
            self.dirty = True

    def settle(self, group: str) -> None:
        if self._debts.pop(group, None) is not None:
            self.dirty = True

    def restore(self, annotations: Mapping[str, Any]) -> None:
        """Take on the debts written on the Node (by an earlier run, or another replica)."""
        for debt in parse(annotations.get(ANNOTATION)):
            self._debts.setdefault(debt.group, debt)

    def annotation(self) -> str | None:
        """The annotation's value for the debts now; None (remove it) when there are none."""
        if not self._debts:
            return None
        entries = [{"group": d.group, "uid": d.uid, "pod": d.pod} for d in self._debts.values()]
        return json.dumps(sorted(entries, key=lambda e: e["group"]), separators=(",", ":"))


def parse(text: Any) -> list[Debt]:
    """Debts from the annotation's value; anything unreadable is logged and skipped
    (the orphan collector still finds those groups, later)."""
    if not text:
        return []
    try:
        entries = json.loads(str(text))
    except ValueError:
        log.warning("annotation %s is not JSON; ignoring it", ANNOTATION)
        return []
    debts = []
    for entry in entries if isinstance(entries, list) else []:
        if _well_formed(entry):
            debts.append(Debt(entry["group"], entry["uid"], entry["pod"], seen=False))
        else:
            log.warning("annotation %s: ignoring an entry that is not a debt", ANNOTATION)
    return debts


def _well_formed(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    group, uid, pod = (entry.get(k) for k in ("group", "uid", "pod"))
    if not all(isinstance(value, str) for value in (group, uid, pod)):
        return False
    namespace, slash, name = str(pod).partition("/")
    return bool(_GROUP_NAME.fullmatch(str(group)) and uid and slash and namespace and name)
