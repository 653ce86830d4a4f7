"""How a pod's log is read from SaladCloud's log entries, as pure decisions.

* ``target``: which container group (and instance) holds the container's log, or
  the kubelet's refusal (unknown container, waiting container, ``previous``).
* ``entry_query``: the log query naming the group and instance.
* ``page_step``: paging by time. Pages are asked by ``time``, inclusive at the bound,
  so the entries at the bound come again on the next page: they are skipped by
  identity (a multiset, as two identical lines at one instant are two lines).
* ``FollowState``: following is polling. Entries can be received late (``receive_time``
  after later entries'), so each poll asks for everything received since a cursor
  that trails the newest receive time by ``overlap``, and drops what it handled
  before; the cursor only moves forward and the memory holds only the overlap.
* ``LineWriter``: an entry as the kubelet writes a log line: ``text_log`` as is,
  ``json_log`` as one JSON line, with ``--timestamps`` the entry's time in front
  (RFC 3339, nine fraction digits), cut at ``limitBytes``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nodes.saladcloud.models import LogEntry
from nodes.translate.names import container_group_name
from nodes.translate.to_status import CONTAINER_ID_SCHEME

PAGE_SIZE = 100
"""The most the API returns per query (``PageSize``)."""
MAX_LINES = 5000
"""The most lines one request returns without ``tailLines`` (the newest): a kubelet's
log rotation bounds what it can show too, and every page costs the key's budget."""
FOLLOW_OVERLAP = timedelta(seconds=5)
"""How far behind the newest receive time a follow poll asks again."""
POD_START_MARGIN = timedelta(minutes=5)
"""Queries start this long before the pod was created (clocks differ)."""

JSON = Mapping[str, Any]


class Refused(ValueError):
    """The kubelet's answer instead of a log: ``status`` and the message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    """Where one container's log is."""

    project: str
    group: str
    instance: str | None
    """The SaladCloud instance of the container, when the pod's status names one."""
    start: datetime
    """No line of the container is older than this."""
    running: bool
    """Whether the container runs (a follow then waits for more)."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _obj(value: Any) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(_text(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _instance_of(container_id: str) -> str | None:
    if container_id.startswith(CONTAINER_ID_SCHEME):
        return container_id.removeprefix(CONTAINER_ID_SCHEME) or None
    return None


def target(pod: JSON, container: str, project: str, *, previous: bool) -> Target:
    """Where the log of ``container`` of ``pod`` is, or ``Refused`` as the kubelet would."""
    meta = _obj(pod.get("metadata"))
    name = _text(meta.get("name"))
    containers = _obj(pod.get("spec")).get("containers") or []
    if container not in [_text(_obj(c).get("name")) for c in containers]:
        raise Refused(404, f'container "{container}" not found in pod "{name}"')
    statuses = [_obj(s) for s in _obj(pod.get("status")).get("containerStatuses") or []]
    status = next((s for s in statuses if _text(s.get("name")) == container), None)
    quoted = f'"{container}" in pod "{name}"'
    if previous:
        raise Refused(
            400,
            f"previous terminated container {quoted} not found: SaladCloud logs are served "
            "for the current container only",
        )
    if status is None:
        raise Refused(400, f"container {quoted} is not available")
    state = _obj(status.get("state"))
    last = _obj(_obj(status.get("lastState")).get("terminated"))
    container_id = _text(status.get("containerID"))
    if "running" not in state and "terminated" not in state:
        if last and _text(last.get("containerID")):
            container_id = _text(last.get("containerID"))
        else:
            reason = _text(_obj(state.get("waiting")).get("reason")) or "ContainerCreating"
            raise Refused(400, f"container {quoted} is waiting to start: {reason}")
    created = _instant(meta.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC)
    return Target(
        project=project,
        group=container_group_name(_text(meta.get("namespace")), name, _text(meta.get("uid"))),
        instance=_instance_of(container_id),
        start=created - POD_START_MARGIN,
        running="running" in state,
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def entry_query(where: Target) -> str:
    """The log query of the container's stdout and stderr."""
    clauses = [
        'resource.type = "container"',
        f"resource.labels.project_name = {_quoted(where.project)}",
        f"resource.labels.container_group_name = {_quoted(where.group)}",
    ]
    if where.instance:
        clauses.append(f"resource.labels.instance_id = {_quoted(where.instance)}")
    return " and ".join(clauses)


def received_since(query: str, cursor: datetime) -> str:
    """``query`` narrowed to entries received at ``cursor`` or later (whole seconds,
    the form the query language documents)."""
    return f"{query} and receive_time >= {_quoted(_second(cursor))}"


def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# --- identity and paging -------------------------------------------------------------------

EntryKey = tuple[datetime, datetime | None, str, str, str, str]


def entry_key(entry: LogEntry) -> EntryKey:
    """What makes two answers the same entry (entries have no id)."""
    body = json.dumps(entry.json_log, sort_keys=True) if entry.json_log is not None else ""
    return (
        entry.time,
        entry.receive_time,
        entry.resource.labels.get("instance_id", ""),
        entry.severity or "",
        entry.text_log or "",
        body,
    )


@dataclass(frozen=True)
class PageStep:
    fresh: list[LogEntry]
    """The page's entries not handed out by an earlier page."""
    bound: datetime | None
    """Where the next page starts (oldest-first) or ends (newest-first)."""
    at_bound: Counter[EntryKey]
    """Entries at ``bound`` handed out so far."""


def page_step(
    items: Sequence[LogEntry], at_bound: Counter[EntryKey], *, newest_first: bool
) -> PageStep:
    """One page of a time-ordered walk: drop the repeats of the previous bound."""
    skip = Counter(at_bound)
    fresh = []
    for entry in items:
        key = entry_key(entry)
        if skip[key] > 0:
            skip[key] -= 1
            continue
        fresh.append(entry)
    if not items:
        return PageStep(fresh, None, Counter())
    times = [entry.time for entry in items]
    bound = min(times) if newest_first else max(times)
    return PageStep(fresh, bound, Counter(entry_key(e) for e in items if e.time == bound))


def in_time_order(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """Oldest first; entries of one instant in the order they were received."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.time, e.receive_time or far))


# --- following -------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowState:
    cursor: datetime
    """The next poll asks for entries received at this second or later."""
    handled: Counter[EntryKey] = field(default_factory=Counter)
    """Entries received at ``cursor`` or later that were written or deliberately left out."""

    @classmethod
    def start(cls, now: datetime, handled: Iterable[LogEntry] = ()) -> FollowState:
        """Follow from ``now``; ``handled`` is what the first answer already covered."""
        cursor = _floor_second(now - FOLLOW_OVERLAP)
        return cls(cursor, _received_since(handled, cursor))

    def advance(
        self, answer: Sequence[LogEntry], asked_at: datetime
    ) -> tuple[list[LogEntry], FollowState]:
        """The entries of a poll's ``answer`` (asked for at ``asked_at``) not handled yet,
        oldest first, and the state after writing them.

        The cursor trails both the newest receive time seen and the moment the poll
        began: an entry received while the poll's pages were being fetched may be
        missing from them, and must come in the next poll."""
        handled = Counter(self.handled)
        fresh = []
        for entry in in_time_order(answer):
            key = entry_key(entry)
            if handled[key] > 0:
                handled[key] -= 1
            else:
                fresh.append(entry)
        newest = max((e.receive_time for e in answer if e.receive_time), default=None)
        cursor = self.cursor
        if newest is not None:
            trailing = min(newest, asked_at) - FOLLOW_OVERLAP
            cursor = max(cursor, _floor_second(trailing))
        kept = _received_since(answer, cursor)
        return fresh, FollowState(cursor, kept)


def _received_since(entries: Iterable[LogEntry], cursor: datetime) -> Counter[EntryKey]:
    return Counter(
        entry_key(e) for e in entries if e.receive_time is None or e.receive_time >= cursor
    )


def merge_handled(state: FollowState, entries: Iterable[LogEntry]) -> FollowState:
    """``state`` that also counts ``entries`` as handled (a multiset union, not a sum:
    an entry in both is one entry)."""
    more = _received_since(entries, state.cursor)
    return FollowState(state.cursor, state.handled | more)


# --- writing -------------------------------------------------------------------------------


def line_of(entry: LogEntry) -> str:
    """The entry as one line of the container's log, without the newline."""
    if entry.json_log is not None:
        return json.dumps(entry.json_log, separators=(",", ":"), ensure_ascii=False)
    text = entry.text_log or ""
    return text.removesuffix("\n")


def timestamp(moment: datetime) -> str:
    """RFC 3339 with nine fraction digits, as the kubelet's ``--timestamps`` writes it."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond * 1000:09d}Z"


@dataclass
class LineWriter:
    """Formats entries as log lines and enforces ``limitBytes`` (the last line is cut)."""

    timestamps: bool
    remaining: int | None = None
    lines: int = 0

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def write(self, entries: Iterable[LogEntry]) -> bytes:
        chunks = []
        for entry in entries:
            if self.exhausted:
                break
            line = line_of(entry)
            if self.timestamps:
                line = f"{timestamp(entry.time)} {line}"
            data = (line + "\n").encode()
            if self.remaining is not None:
                data = data[: self.remaining]
                self.remaining -= len(data)
            chunks.append(data)
            self.lines += 1
        return b"".join(chunks)


def newest_first_for(tail_lines: int | None, limit_bytes: int | None) -> bool:
    """Walk from the newest entry back (for a tail, or when the log may be cut to the
    newest ``MAX_LINES``), or from the oldest forward (when ``limitBytes`` ends it
    early)."""
    return tail_lines is not None or limit_bytes is None


def wanted_lines(tail_lines: int | None) -> int:
    return MAX_LINES if tail_lines is None else min(tail_lines, MAX_LINES)
