"""The simulator's container logs: steady output, late arrival, the query language."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from nodes.saladcloud import models
from nodes.saladcloud.errors import SaladBadRequest
from nodes.saladcloud.simulator.clock import SimClock

from .builders import DEPLOYED, ORG, PROJECT, Connected, Wall, connected, prototype

pytestmark = pytest.mark.anyio

EPOCH = datetime.fromisoformat("2026-04-03T12:00:00Z")
GROUP = 'resource.labels.container_group_name = "pod-1"'


async def running_group(c: Connected, name: str = "pod-1") -> None:
    await c.salad.create_container_group(prototype(name))
    c.sim.advance(DEPLOYED)
    await c.salad.list_container_groups()  # the world catches up: the instance runs


async def entries(
    c: Connected, query: str, *, start: datetime = EPOCH, **fields: Any
) -> list[models.LogEntry]:
    window = models.LogEntryQuery(
        start_time=start, end_time=start + timedelta(hours=1), query=query, **fields
    )
    return (await c.salad.query_log_entries(window)).items


def texts(found: list[models.LogEntry]) -> list[str]:
    return [entry.text_log or "" for entry in found]


# --- the clock behind log times -----------------------------------------------------------


def test_the_clock_maps_simulated_instants_to_the_wall_instant_they_were_passed() -> None:
    wall = Wall()
    clock = SimClock(60.0, monotonic=wall)
    wall.now += 10.0  # 600 simulated seconds
    clock.advance(400.0)  # a jump: simulated 600..1000 all pass at wall 10
    wall.now += 5.0
    clock.set_time_scale(1.0)  # 1300 simulated seconds at wall 15
    wall.now += 5.0

    assert clock.now() == pytest.approx(1305.0)
    assert clock.wall_seconds_at(300.0) == pytest.approx(5.0)
    assert clock.wall_seconds_at(800.0) == pytest.approx(10.0), "inside the jump"
    assert clock.wall_seconds_at(1300.0) == pytest.approx(15.0)
    assert clock.wall_seconds_at(1302.0) == pytest.approx(17.0)
    assert clock.sim_at(10.0) == pytest.approx(1000.0), "after the jump"
    assert clock.sim_at(17.0) == pytest.approx(1302.0)
    assert clock.wall_datetime(17.0) == clock.datetime_at(0.0) + timedelta(seconds=17)


# --- output -------------------------------------------------------------------------------


async def test_a_running_instance_writes_a_steady_line_rate_on_the_wall_clock() -> None:
    wall = Wall()
    async with connected({"log-rate": 2.0, "log-lag": 0.0}, wall=wall, epoch=EPOCH) as c:
        await running_group(c)
        wall.now += 5.0
        found = await entries(c, f'resource.type = "container" and {GROUP}', sort_order="asc")
        instances = await c.salad.list_instances("pod-1")

    steady = [e for e in found if (e.text_log or "").startswith("line ")]
    assert texts(steady) == [f"line {n} of pod-1" for n in range(1, 11)]
    assert [e.time for e in steady] == [EPOCH + timedelta(seconds=0.5 * n) for n in range(1, 11)]
    assert {e.resource.labels["instance_id"] for e in steady} == {instances[0].id}


async def test_log_times_follow_the_wall_clock_whatever_the_time_scale() -> None:
    wall = Wall()
    async with connected({"time-scale": 600, "log-lag": 0.0}, wall=wall, epoch=EPOCH) as c:
        await c.salad.create_container_group(prototype("pod-1"))
        wall.now += 1.0  # 600 simulated seconds: the group runs long since
        await c.salad.list_container_groups()
        wall.now += 4.0
        found = await entries(c, GROUP)
        group = await c.salad.get_container_group("pod-1")

    assert group.create_time == EPOCH, "group times stay simulated"
    assert found, "the instance wrote"
    assert all(EPOCH <= entry.time <= EPOCH + timedelta(seconds=5) for entry in found)


async def test_lines_are_seen_only_once_received_and_can_arrive_after_later_ones() -> None:
    wall = Wall()
    async with connected({"log-rate": 5.0, "log-lag": 2.0}, wall=wall, epoch=EPOCH) as c:
        await running_group(c)
        wall.now += 20.0
        written = c.sim.log_lines(ORG, PROJECT, "pod-1")
        seen = await entries(c, GROUP, page_size=100)

    now = EPOCH + timedelta(seconds=20)
    steady = [line for line in written if line.text.startswith("line ")]
    assert all(
        timedelta(0) <= line.receive_time - line.time <= timedelta(seconds=2) for line in steady
    )
    unseen = {line.text for line in steady if line.receive_time > now}
    assert unseen, "the last second's lines are still on their way"
    assert unseen.isdisjoint(texts(seen))
    overtaken = [
        (a, b)
        for a, b in itertools.pairwise(steady)
        if a.time < b.time and a.receive_time > b.receive_time
    ]
    assert overtaken, "a line received after a later one"


async def test_lines_written_through_the_control_are_the_running_containers() -> None:
    wall = Wall()
    async with connected({"log-rate": 0.0}, wall=wall, epoch=EPOCH) as c:
        await running_group(c)
        c.sim.write_log(
            ORG, PROJECT, "pod-1", ["hello", '{"msg": "hi", "severity": "error"}'], lag=0
        )
        wall.now += 0.01  # they are written a millisecond apart
        late = c.sim.write_log(ORG, PROJECT, "pod-1", ["late"], lag=3.0)
        before = await entries(c, GROUP, sort_order="asc")
        wall.now += 3.0
        after = await entries(c, GROUP, sort_order="asc")
        instance = (await c.salad.list_instances("pod-1"))[0]

    container = [e for e in before if e.resource.type == "container"]
    assert [e.text_log for e in container] == ["starting nginx:1.27", "hello", None]
    structured = container[2]
    assert structured.json_log == {"msg": "hi"}
    assert structured.severity == "error", "severity is promoted out of json_log"
    assert all(e.resource.labels["instance_id"] == instance.id for e in container)
    assert late[0].receive_time - late[0].time == timedelta(seconds=3)
    assert "late" not in texts(before)
    assert texts(after)[-1] == "late"


async def test_the_control_api_writes_and_reads_a_groups_log_over_http() -> None:
    wall = Wall()
    async with (
        connected({"log-rate": 0.0}, wall=wall, epoch=EPOCH) as c,
        httpx.AsyncClient() as http,
    ):
        await running_group(c)
        logs = f"{c.sim.control_url}/organizations/{ORG}/projects/{PROJECT}/containers/pod-1/logs"
        wrote = await http.post(logs, json={"lines": ["one", "two"], "lag": 0})
        read = await http.get(logs)
        refused = await http.post(logs, json={"lines": "one"})
        missing = await http.get(logs.replace("pod-1", "pod-9"))
        rate = await http.post(f"{c.sim.control_url}/logs", json={"rate": 3, "lag": 0.5})
        bad_rate = await http.post(f"{c.sim.control_url}/logs", json={"rate": -1})

    assert wrote.status_code == 200
    assert [line["text"] for line in read.json()["items"]] == ["starting nginx:1.27", "one", "two"]
    assert refused.status_code == 400
    assert missing.status_code == 404
    assert rate.json() == {"rate": 3.0, "lag": 0.5}
    assert bad_rate.status_code == 400 and "rate" in bad_rate.json()["detail"]


# --- the query language ---------------------------------------------------------------


async def test_the_query_language_covers_what_a_log_reader_sends() -> None:
    wall = Wall()
    async with connected({"log-rate": 0.0}, wall=wall, epoch=EPOCH) as c:
        await running_group(c)
        c.sim.write_log(ORG, PROJECT, "pod-1", ["Alpha one"], lag=0)
        wall.now += 2.0
        c.sim.write_log(ORG, PROJECT, "pod-1", ["beta two", '{"n": 7, "kind": "x"}'], lag=1.0)
        wall.now += 2.0
        instance = (await c.salad.list_instances("pod-1"))[0]
        mine = f'resource.type = "container" AND {GROUP}'

        async def ask(condition: str) -> list[str]:
            found = await entries(c, f"{mine} and {condition}", sort_order="asc")
            return [e.text_log or str(e.json_log) for e in found]

        by_instance = await ask(f'resource.labels.instance_id = "{instance.id}"')
        received_late = await ask('receive_time >= "2026-04-03T12:00:03Z"')
        written_early = await ask('time < "2026-04-03T12:00:01.500Z"')
        folded = await ask('text_log =~ "ALPHA ONE"')
        contains = await ask('log contains "two" or log contains "kind"')
        negated = await ask('text_log !contains "one" and not json_log.n > 5')
        starts = await ask('text_log startswith~ "BETA"')
        numeric = await ask("json_log.n >= 7")

    assert by_instance == ["starting nginx:1.27", "Alpha one", "beta two", "{'n': 7, 'kind': 'x'}"]
    assert received_late == ["beta two", "{'n': 7, 'kind': 'x'}"]
    assert written_early == ["starting nginx:1.27", "Alpha one"]
    assert folded == ["Alpha one"]
    assert contains == ["beta two", "{'n': 7, 'kind': 'x'}"]
    assert negated == ["starting nginx:1.27", "beta two"]
    assert starts == ["beta two"]
    assert numeric == ["{'n': 7, 'kind': 'x'}"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ('receive_time >= "yesterday"', "yesterday"),
        ('log = "x"', "contains"),
        ('time contains "2026"', "contains"),
        ('colour = "red"', "colour"),
        ('text_log = "x" and', "end of the query"),
    ],
)
async def test_a_query_the_simulator_cannot_read_is_a_400_that_says_why(
    query: str, named: str
) -> None:
    async with connected() as c:
        with pytest.raises(SaladBadRequest) as refused:
            await entries(c, query)

    assert named in (refused.value.detail or "")


async def test_a_rate_set_later_writes_from_then_on_never_lines_dated_before() -> None:
    wall = Wall()
    async with connected({"log-rate": 0.0, "log-lag": 0.0}, wall=wall, epoch=EPOCH) as c:
        await running_group(c)
        wall.now += 10.0
        await c.salad.list_container_groups()  # the world catches up at rate 0
        c.sim.set_log_output(rate=1.0)
        wall.now += 3.0
        found = await entries(c, f'resource.type = "container" and {GROUP}', sort_order="asc")

    steady = [e for e in found if (e.text_log or "").startswith("line ")]
    assert [e.time for e in steady] == [EPOCH + timedelta(seconds=s) for s in (11, 12, 13)]
