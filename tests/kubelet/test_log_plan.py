"""How a container's log is read from log entries: target, query, paging, following."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nodes.saladcloud.models import LogEntry
from nodes.translate.names import container_group_name
from supervisor.kubelet.log_plan import (
    FOLLOW_OVERLAP,
    PAGE_SIZE,
    POD_START_MARGIN,
    FollowState,
    LineWriter,
    Refused,
    Target,
    entry_key,
    entry_query,
    merge_handled,
    page_step,
    received_since,
    target,
    timestamp,
)

T0 = datetime(2026, 4, 3, 12, 0, tzinfo=UTC)
UID = "ec47ed01-e322-47b3-8641-31bbb6d79cd8"


def entry(
    text: str,
    at: float,
    lag: float = 0.5,
    *,
    instance: str = "i-1",
    json_log: dict[str, Any] | None = None,
) -> LogEntry:
    return LogEntry.model_validate(
        {
            "time": T0 + timedelta(seconds=at),
            "receive_time": T0 + timedelta(seconds=at + lag),
            "severity": "info",
            "resource": {"type": "container", "labels": {"instance_id": instance}},
            **({"json_log": json_log} if json_log is not None else {"text_log": text}),
        }
    )


def pod(
    state: dict[str, Any] | None = None,
    *,
    container_id: str | None = "salad://i-1",
    last: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "main", "state": state or {"running": {}}}
    if container_id:
        status["containerID"] = container_id
    if last:
        status["lastState"] = {"terminated": last}
    return {
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": UID,
            "creationTimestamp": "2026-04-03T12:00:00Z",
        },
        "spec": {"containers": [{"name": "main"}]},
        "status": {"containerStatuses": [status]},
    }


# --- the target ------------------------------------------------------------------------


def test_a_running_container_is_read_from_its_group_and_instance() -> None:
    found = target(pod(), "main", "team-a", previous=False)

    assert found == Target(
        project="team-a",
        group=container_group_name("shop", "web", UID),
        instance="i-1",
        start=T0 - POD_START_MARGIN,
        running=True,
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (pod({"terminated": {"exitCode": 0}}), ("i-1", False)),
        (pod(container_id=None), (None, True)),
        (
            pod(
                {"waiting": {"reason": "CrashLoopBackOff"}},
                container_id=None,
                last={"containerID": "salad://i-0"},
            ),
            ("i-0", False),
        ),
    ],
    ids=["terminated", "running-instance-unknown", "waiting-after-a-run"],
)
def test_the_instance_read_is_the_one_the_status_names(
    case: dict[str, Any], expected: tuple[str | None, bool]
) -> None:
    found = target(case, "main", "team-a", previous=False)

    assert (found.instance, found.running) == expected


@pytest.mark.parametrize(
    ("case", "container", "previous", "status", "message"),
    [
        (pod(), "sidecar", False, 404, 'container "sidecar" not found in pod "web"'),
        (pod(), "main", True, 400, 'previous terminated container "main" in pod "web" not found'),
        (
            pod({"waiting": {"reason": "ContainerCreating"}}, container_id=None),
            "main",
            False,
            400,
            'container "main" in pod "web" is waiting to start: ContainerCreating',
        ),
    ],
    ids=["unknown-container", "previous", "waiting"],
)
def test_what_the_kubelet_refuses_gets_its_status_and_words(
    case: dict[str, Any], container: str, previous: bool, status: int, message: str
) -> None:
    with pytest.raises(Refused) as refused:
        target(case, container, "team-a", previous=previous)

    assert refused.value.status == status
    assert str(refused.value).startswith(message)


def test_the_query_names_the_project_group_and_instance_quoted() -> None:
    where = Target('we"ird', "g-1", "i-1", T0, running=True)

    assert entry_query(where) == (
        'resource.type = "container" and resource.labels.project_name = "we\\"ird" and '
        'resource.labels.container_group_name = "g-1" and resource.labels.instance_id = "i-1"'
    )
    assert "instance_id" not in entry_query(Target("p", "g", None, T0, running=True))
    assert received_since("q", T0 + timedelta(seconds=1.7)) == (
        'q and receive_time >= "2026-04-03T12:00:01Z"'
    )


# --- paging ----------------------------------------------------------------------------


def walk(entries: list[LogEntry], *, newest_first: bool, page: int = 5) -> list[LogEntry]:
    """What page_step makes of a time-ordered walk over ``entries`` in pages of ``page``."""
    ordered = sorted(entries, key=lambda e: e.time, reverse=newest_first)
    bound = ordered[0].time if ordered else T0
    seen: list[LogEntry] = []
    at_bound: Counter[Any] = Counter()
    while True:
        if newest_first:
            answer = [e for e in ordered if e.time <= bound][:page]
        else:
            answer = [e for e in ordered if e.time >= bound][:page]
        step = page_step(answer, at_bound, newest_first=newest_first)
        seen.extend(step.fresh)
        if len(answer) < page or step.bound is None:
            return seen
        at_bound, bound = step.at_bound, step.bound


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_paging_by_time_returns_each_entry_once_even_at_shared_instants(
    newest_first: bool,
) -> None:
    entries = [entry(f"line {n}", at) for n, at in enumerate([0, 1, 1, 1, 2, 3, 3, 4, 5, 5])]
    entries.append(entry("line 3", 1))  # the same text at the same instant: a second line

    seen = walk(entries, newest_first=newest_first)

    assert Counter(entry_key(e) for e in seen) == Counter(entry_key(e) for e in entries)


def test_an_empty_page_ends_the_walk() -> None:
    step = page_step([], Counter(), newest_first=False)
    assert (step.fresh, step.bound) == ([], None)
    assert PAGE_SIZE == 100


# --- following -------------------------------------------------------------------------


def test_a_poll_writes_only_what_was_not_handled_and_catches_late_entries() -> None:
    first = [entry("a", 0), entry("b", 1)]
    state = FollowState.start(T0 + timedelta(seconds=2), first)
    # "c" was written before "b" arrived, but is received 3 s late.
    poll = [*first, entry("d", 2), entry("c", 0.5, lag=3.5)]

    fresh, state = state.advance(poll, T0 + timedelta(seconds=5))
    again, _ = state.advance(poll, T0 + timedelta(seconds=6))

    assert [e.text_log for e in fresh] == ["c", "d"], "oldest first within a poll"
    assert again == []


def test_the_cursor_trails_the_newest_receive_time_and_the_poll_and_never_goes_back() -> None:
    state = FollowState.start(T0 + timedelta(seconds=10))
    assert state.cursor == T0 + timedelta(seconds=10) - FOLLOW_OVERLAP

    _, later = state.advance([entry("x", 30)], T0 + timedelta(seconds=40))
    assert later.cursor == T0 + timedelta(seconds=25.5) - timedelta(seconds=0.5)

    _, slow = state.advance([entry("y", 30)], T0 + timedelta(seconds=20))
    assert slow.cursor == T0 + timedelta(seconds=15), "not past when the poll began"

    _, same = later.advance([], T0 + timedelta(seconds=50))
    assert same.cursor == later.cursor


def test_the_memory_holds_only_entries_the_next_poll_can_return() -> None:
    state = FollowState.start(T0)
    entries = [entry(f"line {n}", n) for n in range(60)]

    _, state = state.advance(entries, T0 + timedelta(seconds=61))

    assert sum(state.handled.values()) == 6, "received in the last overlap"


def test_merging_what_the_first_answer_wrote_counts_each_entry_once() -> None:
    seed = [entry("a", 0), entry("b", 1)]
    state = merge_handled(FollowState.start(T0, seed), [entry("b", 1), entry("c", 2)])

    assert sorted(e[4] for e in state.handled.elements()) == ["a", "b", "c"]


def test_identical_lines_at_one_instant_are_each_written_once() -> None:
    state = FollowState.start(T0)
    twice = [entry("ping", 1), entry("ping", 1)]

    fresh, state = state.advance(twice[:1], T0 + timedelta(seconds=2))
    more, state = state.advance(twice, T0 + timedelta(seconds=3))

    assert len(fresh) == 1 and len(more) == 1


def test_following_a_long_steady_log_with_late_arrivals_loses_and_repeats_nothing() -> None:
    """A model of the follow loop: 30 lines a second, received up to 3 s late, polled
    every 0.7 s with answers that are what has been received by then."""
    rng = random.Random(7)
    lines = [entry(f"line {n}", n / 30, lag=rng.uniform(0.05, 3.0)) for n in range(30 * 120)]
    state = FollowState.start(T0)
    written: list[str] = []
    clock = 0.0
    while clock < 126:
        clock += 0.7
        now = T0 + timedelta(seconds=clock)
        answer = [e for e in lines if e.receive_time and state.cursor <= e.receive_time <= now]
        fresh, state = state.advance(answer, now)
        written.extend(e.text_log or "" for e in fresh)

    assert Counter(written) == Counter(e.text_log for e in lines)


# --- writing ---------------------------------------------------------------------------


def test_lines_are_written_as_the_kubelet_writes_them() -> None:
    writer = LineWriter(timestamps=True)
    data = writer.write(
        [entry("hello", 0.25), entry("", 1, json_log={"msg": "hé", "n": 1}), entry("end\n", 2)]
    )

    assert data.decode() == (
        "2026-04-03T12:00:00.250000000Z hello\n"
        '2026-04-03T12:00:01.000000000Z {"msg":"hé","n":1}\n'
        "2026-04-03T12:00:02.000000000Z end\n"
    )
    assert writer.lines == 3
    assert timestamp(T0 + timedelta(microseconds=1)) == "2026-04-03T12:00:00.000001000Z"


def test_limit_bytes_cuts_the_last_line_and_then_nothing_more_is_written() -> None:
    writer = LineWriter(timestamps=False, remaining=8)

    first = writer.write([entry("abcde", 0), entry("fghij", 1)])
    then = writer.write([entry("klm", 2)])

    assert (first, then) == (b"abcde\nfg", b"")
    assert writer.exhausted
