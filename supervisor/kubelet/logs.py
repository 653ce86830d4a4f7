"""Reading a container's log from SaladCloud: one answer, then (``follow``) polls.

Every query goes through the node's ``SaladClient`` and so through its key's budget,
at the lowest priority (``Priority.LOG``): a log read never makes a create, a delete
or the node's list wait. What to ask and how to page is decided in ``log_plan``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio

from nodes.saladcloud import models
from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.errors import SaladRateLimited, SaladUnavailable

from .log_options import LogOptions
from .log_plan import (
    FOLLOW_OVERLAP,
    PAGE_SIZE,
    EntryKey,
    FollowState,
    LineWriter,
    Target,
    entry_query,
    in_time_order,
    newest_first_for,
    page_step,
    received_since,
    wanted_lines,
)
from .metrics import KubeletMetrics

log = logging.getLogger(__name__)

_NUDGE = timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class LogReader:
    """The SaladCloud side of one log request."""

    def __init__(
        self,
        salad: SaladClient,
        *,
        metrics: KubeletMetrics | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._salad = salad
        self._metrics = metrics
        self.now = now

    async def _pages(
        self, query: str, start: datetime, end: datetime, *, newest_first: bool, purpose: str
    ) -> AsyncIterator[list[models.LogEntry]]:
        """The entries of ``query`` with ``time`` in [start, end], page by page, each
        once, in the order asked."""
        at_bound: Counter[EntryKey] = Counter()
        while start <= end:
            answer = await self._salad.query_log_entries(
                models.LogEntryQuery(
                    start_time=start,
                    end_time=end,
                    query=query,
                    page_size=PAGE_SIZE,
                    sort_order="desc" if newest_first else "asc",
                )
            )
            if self._metrics is not None:
                self._metrics.log_queries.labels(purpose=purpose).inc()
            step = page_step(answer.items, at_bound, newest_first=newest_first)
            yield step.fresh
            if len(answer.items) < PAGE_SIZE or step.bound is None:
                return
            previous = end if newest_first else start
            if step.bound == previous:
                # A whole page at one instant: no bound moves past it. Step over the
                # instant; the entries of it beyond this page are not seen.
                log.warning("more than %d log entries at %s; some are skipped", PAGE_SIZE, previous)
                at_bound = Counter()
                bound = previous - _NUDGE if newest_first else previous + _NUDGE
            else:
                at_bound, bound = step.at_bound, step.bound
            if newest_first:
                end = bound
            else:
                start = bound

    async def first_answer(
        self, target: Target, options: LogOptions, now: datetime, *, remaining_bytes: int | None
    ) -> list[models.LogEntry]:
        """What the request shows before any following, oldest first."""
        if options.tail_lines == 0:
            return []
        since = options.since(now)
        start = max(target.start, since) if since is not None else target.start
        newest_first = newest_first_for(options.tail_lines, options.limit_bytes)
        wanted = wanted_lines(options.tail_lines)
        found: list[models.LogEntry] = []
        size = 0
        measure = LineWriter(options.timestamps)
        pages = self._pages(
            entry_query(target), start, now, newest_first=newest_first, purpose="read"
        )
        async for page in pages:
            found.extend(page)
            if newest_first and len(found) >= wanted:
                break
            if not newest_first:
                size += len(measure.write(page))
                if remaining_bytes is not None and size >= remaining_bytes:
                    break
                if len(found) >= wanted:
                    break
        found = found[:wanted]
        return in_time_order(found)

    async def received(
        self, target: Target, lower: datetime, cursor: datetime
    ) -> list[models.LogEntry]:
        """Every entry received at ``cursor`` or later, with ``time`` from ``lower`` on."""
        query = received_since(entry_query(target), cursor)
        found: list[models.LogEntry] = []
        pages = self._pages(query, lower, self.now(), newest_first=False, purpose="follow")
        async for page in pages:
            found.extend(page)
        return found


async def follow(
    reader: LogReader,
    target: Target,
    *,
    lower: datetime,
    state: FollowState,
    writer: LineWriter,
    write: Callable[[bytes], Awaitable[None]],
    current: Callable[[], Target | None],
    connected: Callable[[], bool],
    interval: float,
) -> None:
    """Poll for new entries and write them until the client leaves, ``limitBytes`` is
    used up, or the container stopped (or was replaced) ``FOLLOW_OVERLAP`` ago: its
    last lines can still be on their way to SaladCloud when it stops."""
    retry = interval
    ended: datetime | None = None
    while connected() and not writer.exhausted:
        await anyio.sleep(retry)
        if not connected():
            return
        if ended is None and _ended(target, current()):
            ended = reader.now()
        asked_at = reader.now()
        try:
            answer = await reader.received(target, lower, state.cursor)
        except (SaladUnavailable, SaladRateLimited) as error:
            log.info("following a log: SaladCloud did not answer (%s); trying again", error)
            retry = min(retry * 2, 60.0)
            continue
        retry = interval
        fresh, state = state.advance(answer, asked_at)
        data = writer.write(fresh)
        if data:
            await write(data)
        if ended is not None and asked_at - ended >= FOLLOW_OVERLAP:
            return


def _ended(followed: Target, now: Target | None) -> bool:
    """Whether the followed container stopped running or another one replaced it."""
    if now is None or not now.running:
        return True
    return (now.group, now.instance) != (followed.group, followed.instance)
