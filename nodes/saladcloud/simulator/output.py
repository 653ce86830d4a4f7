"""What the containers of running instances write to stdout, as SaladCloud receives it.

Every running instance writes ``--log-rate`` lines per wall-clock second (``line N of
GROUP``, N counting per group from 1), and a test or demo can write lines of its own
to a group (``SimulatorControl.write_log``). A line a container writes is stamped with
the wall clock at which it was written (a machine's clock, see ``clock``) and reaches
SaladCloud some time later: ``receive_time`` lags ``time`` by a random delay of up to
``--log-lag`` seconds, so a line can be received after a later one, and a query only
sees lines already received. That is what a client following the log has to cope
with: poll with overlap and de-duplicate.

Lines are made lazily, when the world catches up with the clock before a request, for
the wall time since the last catch-up; nothing runs in the background. A group keeps
its last ``KEEP`` lines (older ones age out, as retention does).
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .clock import SimClock
from .lifecycle import Group, LogLine

KEEP = 5000
"""Lines kept per group."""
_MILLISECOND = 0.001


@dataclass
class EmittedLine(LogLine):
    """A line a container wrote: when (wall seconds since the start, to the
    millisecond, as entries are rendered) and how long it took to be received."""

    wall: float = 0.0
    receive_lag: float = 0.0

    @property
    def received(self) -> float:
        return self.wall + self.receive_lag


def _group_key(group: Group) -> tuple[str, str, str]:
    # Names are never reused in a project, so this names one group for ever.
    return (group.organization, group.project, group.name)


@dataclass
class _GroupOutput:
    lines: deque[EmittedLine] = field(default_factory=lambda: deque(maxlen=KEEP))
    written: int = 0
    """Lines written so far (the N of ``line N of GROUP``)."""
    cursors: dict[str, float] = field(default_factory=dict)
    """Per instance id: the wall time of its last steady line."""


class ContainerOutput:
    """Every group's container lines, and the steady writing of running instances."""

    def __init__(self, rate: float, max_lag: float, seed: int) -> None:
        self.rate = rate
        self.max_lag = max_lag
        self._seed = seed
        self._groups: dict[tuple[str, str, str], _GroupOutput] = {}
        self._rngs: dict[tuple[str, str, str], random.Random] = {}

    def _of(self, group: Group) -> _GroupOutput:
        key = _group_key(group)
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = _GroupOutput()
            seed = f"{self._seed}/output/{'/'.join(key)}"
            self._rngs[key] = random.Random(seed)  # noqa: S311 - replayable, not secret
        return found

    def _lag(self, group: Group) -> float:
        rng = self._rngs[_group_key(group)]
        return round(rng.uniform(0.05 * self.max_lag, self.max_lag), 3)

    def lines(self, group: Group) -> Sequence[EmittedLine]:
        found = self._groups.get(_group_key(group))
        return found.lines if found is not None else ()

    def catch_up(self, group: Group, clock: SimClock, wall_now: float) -> None:
        """Write the steady lines of the group's running instances up to ``wall_now``.

        While the rate is 0 nothing is written, and nothing is owed: a rate set later
        writes from then on, never lines dated before it."""
        if group.deleted:
            return
        running = [i for i in group.instances if i.state == "running"]
        if not running:
            return
        output = self._of(group)
        for instance in running:
            began = clock.wall_seconds_at(instance.since)
            cursor = output.cursors.get(instance.id)
            if cursor is None or cursor < began:
                cursor = began  # it (re)started running since its last line
            if self.rate <= 0:
                output.cursors[instance.id] = max(cursor, wall_now)
                continue
            spacing = 1.0 / self.rate
            # Lines older than what a group keeps would age out at once: skip them.
            cursor = max(cursor, wall_now - KEEP * spacing)
            while cursor + spacing <= wall_now:
                cursor += spacing
                output.written += 1
                text = f"line {output.written} of {group.name}"
                labels = instance_labels(group, instance.id)
                self._append(group, output, labels, text, (clock, cursor))
            output.cursors[instance.id] = cursor

    def write(
        self,
        group: Group,
        texts: Sequence[str],
        clock: SimClock,
        wall_now: float,
        *,
        lag: float | None = None,
    ) -> list[EmittedLine]:
        """Lines written from now on, a millisecond apart, by the group's running container
        (or by the group, if no instance runs); ``lag`` fixes their receive delay instead
        of drawing it."""
        output = self._of(group)
        running = next((i for i in group.instances if i.state == "running"), None)
        labels = instance_labels(group, running.id if running else None)
        # A millisecond apart, as lines a program prints one after the other are.
        return [
            self._append(
                group, output, labels, text, (clock, wall_now + index * _MILLISECOND), lag=lag
            )
            for index, text in enumerate(texts)
        ]

    def _append(
        self,
        group: Group,
        output: _GroupOutput,
        labels: dict[str, str],
        text: str,
        when: tuple[SimClock, float],
        *,
        lag: float | None = None,
    ) -> EmittedLine:
        clock, wall = when
        wall = round(wall / _MILLISECOND) * _MILLISECOND
        line = EmittedLine(
            time=clock.sim_at(wall),
            resource_type="container",
            severity="info",
            text=text,
            labels=labels,
            wall=wall,
            receive_lag=self._lag(group) if lag is None else max(0.0, lag),
        )
        output.lines.append(line)
        return line


def instance_labels(group: Group, instance_id: str | None) -> dict[str, str]:
    """The resource labels of a container log entry (``log-queries.mdx``)."""
    labels = {
        "project_name": group.project,
        "container_group_name": group.name,
        "container_group_version": str(group.version),
    }
    instance = next((i for i in group.instances if i.id == instance_id), None)
    if instance is not None:
        labels["instance_id"] = instance.id
        if instance.machine_id:
            labels["machine_id"] = instance.machine_id
    return labels


def parsed_json(text: str) -> dict[str, object] | None:
    """The object a line is, if it is one: SaladCloud then keeps it as ``json_log``."""
    if not text.startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
