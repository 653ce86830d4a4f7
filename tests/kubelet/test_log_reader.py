"""Reading a log from the simulator: pages, tail, since, limitBytes, and following."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import anyio
import httpx
import pytest

from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.simulator import Simulator, running_simulator
from supervisor.kubelet.log_options import LogOptions
from supervisor.kubelet.log_plan import FollowState, LineWriter, Target
from supervisor.kubelet.logs import LogReader, follow
from tests.saladcloud.builders import (
    DEPLOYED,
    ORG,
    PROJECT,
    QUICK_RETRY,
    client,
    options,
    prototype,
)

pytestmark = pytest.mark.anyio

GROUP = "pod-1"


@dataclass
class Rig:
    sim: Simulator
    salad: SaladClient
    reader: LogReader
    target: Target

    def now(self) -> datetime:
        clock = self.sim.world.clock
        return clock.wall_datetime(clock.elapsed())

    def written(self) -> list[str]:
        return [line.text for line in self.sim.log_lines(ORG, PROJECT, GROUP)]


@asynccontextmanager
async def rig(**flags: object) -> AsyncIterator[Rig]:
    values = {"rate-limit": 100_000, "time-scale": 600, "log-rate": 0, **flags}
    async with running_simulator(options(**values)) as sim, httpx.AsyncClient() as http:
        salad = client(http, sim.url, KeyBudget(100_000), retry=QUICK_RETRY)
        await salad.create_container_group(prototype(GROUP))
        sim.advance(DEPLOYED)
        await salad.list_container_groups()
        clock = sim.world.clock
        reader = LogReader(salad, now=lambda: clock.wall_datetime(clock.elapsed()))
        start = clock.wall_datetime(0.0) - timedelta(minutes=5)
        yield Rig(sim, salad, reader, Target(PROJECT, GROUP, None, start, running=True))


async def answer(r: Rig, options: LogOptions) -> list[str]:
    entries = await r.reader.first_answer(
        r.target, options, r.now(), remaining_bytes=options.limit_bytes
    )
    return (
        (LineWriter(options.timestamps, options.limit_bytes).write(entries)).decode().splitlines()
    )


async def test_a_log_longer_than_a_page_is_read_whole_in_order_or_by_its_tail() -> None:
    async with rig() as r:
        r.sim.write_log(ORG, PROJECT, GROUP, [f"line {n}" for n in range(1, 251)], lag=0)
        await anyio.sleep(0.3)  # the last line is written 250 ms after the first
        everything = await answer(r, LogOptions())
        tail = await answer(r, LogOptions(tail_lines=5))
        long_tail = await answer(r, LogOptions(tail_lines=150))
        head = await answer(r, LogOptions(limit_bytes=40))
        none = await answer(r, LogOptions(tail_lines=0))
        written = r.written()

    assert everything == written, "three pages, each line once, oldest first"
    assert len(written) == 251
    assert tail == written[-5:]
    assert long_tail == written[-150:]
    assert "\n".join(head) == "\n".join(written)[:40]
    assert none == []


async def test_since_keeps_the_lines_written_from_then_on() -> None:
    async with rig() as r:
        r.sim.write_log(ORG, PROJECT, GROUP, ["old"], lag=0)
        await anyio.sleep(1.2)
        r.sim.write_log(ORG, PROJECT, GROUP, ["new"], lag=0)
        await anyio.sleep(0.05)
        recent = await answer(r, LogOptions(since_seconds=1))
        stamped = await answer(
            r, LogOptions(since_time=r.now() - timedelta(seconds=1), timestamps=True)
        )
        written = r.sim.log_lines(ORG, PROJECT, GROUP)

    assert recent == ["new"]
    new = written[-1]
    assert stamped == [f"{new.time.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z new"]


async def test_following_a_steady_log_with_late_lines_and_a_burst_loses_and_repeats_nothing() -> (
    None
):
    async with rig(**{"log-rate": 40, "log-lag": 1.5}) as r:
        writer = LineWriter(timestamps=False)
        out: list[bytes] = []
        following = True

        async def write(data: bytes) -> None:
            out.append(data)

        async def run() -> None:
            await follow(
                r.reader,
                r.target,
                lower=r.target.start,
                state=FollowState.start(r.now()),
                writer=writer,
                write=write,
                current=lambda: r.target,
                connected=lambda: following,
                interval=0.2,
            )

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await anyio.sleep(2.0)
            r.sim.write_log(ORG, PROJECT, GROUP, [f"burst {n}" for n in range(300)])
            await anyio.sleep(2.0)
            r.sim.set_log_output(rate=0)
            await anyio.sleep(2.5)  # every line received, and polled
            following = False
        written = r.written()

    lines = b"".join(out).decode().splitlines()
    steady = [line for line in written if not line.startswith("starting ")]
    assert len(steady) > 300 + 100
    assert Counter(line for line in lines if not line.startswith("starting ")) == Counter(steady), (
        "no line lost, none repeated"
    )


async def test_following_ends_when_the_container_stopped_after_its_last_lines_arrived() -> None:
    async with rig(**{"log-lag": 0.3}) as r:
        writer = LineWriter(timestamps=False)
        out: list[bytes] = []
        stopped = replace(r.target, running=False)
        current = [r.target]

        async def write(data: bytes) -> None:
            out.append(data)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    lambda: follow(
                        r.reader,
                        r.target,
                        lower=r.target.start,
                        state=FollowState.start(r.now()),
                        writer=writer,
                        write=write,
                        current=lambda: current[0],
                        connected=lambda: True,
                        interval=0.3,
                    )
                )
                await anyio.sleep(1.0)
                # Received a second after the container stopped: a last poll at once
                # would miss them.
                r.sim.write_log(ORG, PROJECT, GROUP, ["last words"], lag=1.0)
                current[0] = stopped  # the container exits right after writing them

    assert b"last words\n" in b"".join(out), "lines still on their way when it stopped"
