"""Run-time control of a simulator: what tests and demos do behind the client's back.

The same controls exist twice: as methods of ``SimulatorControl`` (the handle an
in-process ``running_simulator`` yields) and as plain JSON over HTTP under
``/_simulator`` (for a simulator started by ``salad-vk simulate`` in another
process). The routes only decode JSON and call the methods: a method refuses a bad
argument with ``ValueError``, which the routes answer as a 400. The control routes
need no API key and are not rate limited or faulted.

HTTP control API (bodies and answers are JSON):

``GET  /_simulator``
    clock, time scale, projects, keys (by fingerprint) and fault settings.
``POST /_simulator/clock``  ``{"advance": SECONDS}`` and/or ``{"time_scale": F}``
    jump simulated time forward / change its speed.
``GET  /_simulator/keys``   ``POST /_simulator/keys  {"api_key": K, "accepted": BOOL}``
    request and 429 counts per key; accept a new key or revoke one at run time.
``GET  /_simulator/faults`` ``POST /_simulator/faults {"error_rate": P, "throttle_rate": P,
"drop_rate": P, "latency": SECONDS, "interrupt_rate": PER_HOUR, "storm": SECONDS,
"drop_next": N}``
    read or change the fault plan; ``storm`` answers 429 to everything for that long;
    ``drop_next`` applies the next N requests but loses their answers.
``POST /_simulator/projects {"project": "ORG/PROJECT"}``
    declare another project.
``GET  /_simulator/organizations/{org}/projects/{project}/containers``
    every group ever created there, deleted ones included (``"deleted": true``).
``POST /_simulator/organizations/{org}/projects/{project}/containers/{name}/{action}``
    ``stop``, ``start``, ``delete``, ``interrupt`` (every running instance), or
    ``exit`` with ``{"code": N}`` (every running instance's container exits).
``GET  /_simulator/organizations/{org}/projects/{project}/containers/{name}/logs``
    every line the group's containers wrote (``time``, ``receive_time``, ``text``,
    ``instance_id``), oldest first.
``POST /_simulator/organizations/{org}/projects/{project}/containers/{name}/logs
{"lines": ["..."], "lag": SECONDS}``
    the group's running container writes these lines now (``lag`` fixes their receive
    delay; by default it is drawn as for every line).
``POST /_simulator/logs {"rate": LINES_PER_SECOND, "lag": SECONDS}``
    how much every running instance writes, and the longest receive delay.
``GET  /_simulator/requests[?key=FINGERPRINT]``
    the API requests served (wall time, key fingerprint, method, path, status).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from . import render
from .app import WORLD
from .clock import rfc3339
from .keys import KeyState, fingerprint
from .lifecycle import Group, LogLine
from .options import parse_project
from .problems import ApiProblem, not_found
from .world import RequestRecord, World

CONTROL_PREFIX = "/_simulator"

_FAULT_LIMITS = {
    "error_rate": 1.0,
    "throttle_rate": 1.0,
    "drop_rate": 1.0,
    "latency": 60.0,
    "interrupt_rate": float("inf"),
}
"""The fault settings ``set_faults`` changes, each with its highest value."""


@dataclass(frozen=True)
class GroupSnapshot:
    """A group as the simulator knows it, deleted or not."""

    organization: str
    project: str
    name: str
    deleted: bool
    status: str
    running_count: int
    document: dict[str, Any]
    """The group's API JSON (what ``get_container_group`` would answer, were it there)."""


@dataclass(frozen=True)
class WrittenLine:
    """One line a group's container wrote, as SaladCloud stamps it."""

    time: datetime
    receive_time: datetime
    text: str
    instance_id: str | None


@dataclass(frozen=True)
class KeyStats:
    fingerprint: str
    accepted: bool
    requests: int
    rate_limited: int

    @classmethod
    def of(cls, api_key: str, state: KeyState) -> KeyStats:
        return cls(fingerprint(api_key), state.accepted, state.requests, state.rate_limited)


class SimulatorControl:
    """Inspect and alter a running simulator's world."""

    def __init__(self, world: World) -> None:
        self.world = world

    # --- time ------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since the simulator started."""
        return self.world.clock.now()

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward; every group catches up at once."""
        self.world.clock.advance(seconds)
        return self.world.advance()

    def set_time_scale(self, time_scale: float) -> None:
        self.world.clock.set_time_scale(time_scale)

    # --- groups ------------------------------------------------------------------------------

    def _snapshot(self, group: Group) -> GroupSnapshot:
        return GroupSnapshot(
            organization=group.organization,
            project=group.project,
            name=group.name,
            deleted=group.deleted,
            status=group.status,
            running_count=group.counts()["running_count"],
            document=render.container_group(group, self.world.clock),
        )

    def groups(
        self, organization: str, project: str, *, include_deleted: bool = True
    ) -> list[GroupSnapshot]:
        self.world.advance()
        found = self.world.project(organization, project).groups.values()
        return [
            self._snapshot(g)
            for g in sorted(found, key=lambda g: (g.created, g.name))
            if include_deleted or not g.deleted
        ]

    def group(self, organization: str, project: str, name: str) -> GroupSnapshot:
        self.world.advance()
        group = self.world.project(organization, project).groups.get(name)
        if group is None:
            raise KeyError(f"no container group {name} was ever in {organization}/{project}")
        return self._snapshot(group)

    def stop_group(self, organization: str, project: str, name: str) -> None:
        self.world.advance()
        self.world.stop_group(organization, project, name)

    def start_group(self, organization: str, project: str, name: str) -> None:
        self.world.advance()
        self.world.start_group(organization, project, name)

    def delete_group(self, organization: str, project: str, name: str) -> None:
        self.world.advance()
        self.world.delete_group(organization, project, name)

    def interrupt(self, organization: str, project: str, name: str) -> int:
        """Interrupt every running instance of the group; returns how many."""
        now = self.world.advance()
        group = self.world.group(organization, project, name)
        running = [i for i in group.instances if i.state == "running"]
        for instance in running:
            group.interrupt(instance, now)
        return len(running)

    def exit_instances(self, organization: str, project: str, name: str, code: int) -> int:
        """Make the container of every running instance exit with ``code``; returns how many."""
        now = self.world.advance()
        group = self.world.group(organization, project, name)
        running = [i for i in group.instances if i.state == "running"]
        for instance in running:
            group.exit(instance, code, now)
        return len(running)

    # --- container logs --------------------------------------------------------------------

    def write_log(
        self,
        organization: str,
        project: str,
        name: str,
        lines: list[str],
        *,
        lag: float | None = None,
    ) -> list[WrittenLine]:
        """The group's running container (or the group, if none runs) writes ``lines``
        now; ``lag`` fixes how late SaladCloud receives them."""
        if any(not isinstance(line, str) for line in lines):
            raise ValueError("lines must be strings")
        if any("\n" in line or "\r" in line for line in lines):
            raise ValueError("a log line cannot hold a line break: write one line per item")
        if lag is not None and not 0.0 <= lag <= 3600.0:
            raise ValueError(f"lag must be between 0 and 3600 seconds, got {lag}")
        self.world.advance()
        group = self.world.group(organization, project, name)
        clock = self.world.clock
        written = self.world.output.write(group, lines, clock, clock.elapsed(), lag=lag)
        return [self._written(line) for line in written]

    def log_lines(self, organization: str, project: str, name: str) -> list[WrittenLine]:
        """Every line the group's containers wrote (deleted groups too), oldest first,
        whether SaladCloud has received it yet or not."""
        self.world.advance()
        group = self.world.project(organization, project).groups.get(name)
        if group is None:
            raise KeyError(f"no container group {name} was ever in {organization}/{project}")
        lines = self.world.log_lines(group)
        return [self._written(line) for line in lines if line.resource_type == "container"]

    def _written(self, line: LogLine) -> WrittenLine:
        written, received = self.world.entry_times(line)
        return WrittenLine(written, received, line.text, line.labels.get("instance_id"))

    def set_log_output(self, *, rate: float | None = None, lag: float | None = None) -> None:
        """Lines per second each running instance writes, and the longest receive delay."""
        if rate is not None:
            if not 0.0 <= rate <= 1000.0:
                raise ValueError(f"rate must be between 0 and 1000 lines per second, got {rate}")
            self.world.advance()  # lines until now at the old rate
            self.world.output.rate = rate
        if lag is not None:
            if not 0.0 <= lag <= 60.0:
                raise ValueError(f"lag must be between 0 and 60 seconds, got {lag}")
            self.world.output.max_lag = lag

    def add_project(self, organization: str, project: str) -> None:
        self.world.add_project(organization, project)

    def projects(self) -> list[str]:
        """Every declared project, as ``ORG/PROJECT``."""
        return [
            f"{org.name}/{p}" for org in self.world.organizations.values() for p in org.projects
        ]

    # --- keys, faults, traffic -------------------------------------------------------------

    def accept_key(self, api_key: str) -> None:
        self.world.keys.accept(api_key)

    def revoke_key(self, api_key: str) -> None:
        self.world.keys.revoke(api_key)

    def key_stats(self, api_key: str) -> KeyStats:
        return KeyStats.of(api_key, self.world.keys.state(api_key) or KeyState(accepted=False))

    def all_key_stats(self) -> list[KeyStats]:
        return [KeyStats.of(key, state) for key, state in self.world.keys.items()]

    def set_faults(
        self,
        *,
        error_rate: float | None = None,
        throttle_rate: float | None = None,
        drop_rate: float | None = None,
        latency: float | None = None,
        interrupt_rate: float | None = None,
    ) -> None:
        settings = self.world.faults.settings
        for name, value in (
            ("error_rate", error_rate),
            ("throttle_rate", throttle_rate),
            ("drop_rate", drop_rate),
            ("latency", latency),
            ("interrupt_rate", interrupt_rate),
        ):
            if value is None:
                continue
            if not 0.0 <= value <= _FAULT_LIMITS[name]:
                raise ValueError(f"{name} must be between 0 and {_FAULT_LIMITS[name]}, got {value}")
            setattr(settings, name, float(value))

    def drop_next(self, count: int = 1) -> None:
        """Apply the next ``count`` API requests but lose their answers (connection closed)."""
        if count < 0:
            raise ValueError(f"count cannot be negative, got {count}")
        self.world.faults.settings.drop_next = count

    def storm(self, seconds: float) -> None:
        """Answer 429 to every API request for the next ``seconds`` of wall time."""
        self.world.faults.storm(seconds)

    def requests(self, api_key: str | None = None) -> list[RequestRecord]:
        wanted = fingerprint(api_key) if api_key is not None else None
        return [r for r in self.world.requests if wanted is None or r.key == wanted]

    def summary(self) -> dict[str, Any]:
        clock = self.world.clock
        return {
            "time": clock.now(),
            "now": rfc3339(clock.datetime_at(clock.now())),
            "time_scale": clock.time_scale,
            "projects": self.projects(),
            "keys": [asdict(stats) for stats in self.all_key_stats()],
            "faults": self.fault_settings(),
        }

    def fault_settings(self) -> dict[str, Any]:
        settings = self.world.faults.settings
        return {
            "error_rate": settings.error_rate,
            "throttle_rate": settings.throttle_rate,
            "drop_rate": settings.drop_rate,
            "latency": settings.latency,
            "interrupt_rate": settings.interrupt_rate,
            "drop_next": settings.drop_next,
            "storming": self.world.faults.storming(),
        }


# --- HTTP ------------------------------------------------------------------------------


def _control(request: web.Request) -> SimulatorControl:
    return SimulatorControl(request.app[WORLD])


async def _document(request: web.Request) -> dict[str, Any]:
    try:
        document = json.loads(await request.read() or b"{}")
    except ValueError:
        raise ApiProblem(400, "Bad Request", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiProblem(400, "Bad Request", "the body must be a JSON object")
    return document


def _number(document: dict[str, Any], name: str) -> float | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiProblem(400, "Bad Request", f"{name} must be a number")
    return float(value)


async def _summary(request: web.Request) -> web.Response:
    return web.json_response(_control(request).summary())


async def _clock(request: web.Request) -> web.Response:
    control = _control(request)
    document = await _document(request)
    scale = _number(document, "time_scale")
    if scale is not None:
        control.set_time_scale(scale)
    seconds = _number(document, "advance")
    if seconds is not None:
        control.advance(seconds)
    return web.json_response(control.summary())


async def _keys(request: web.Request) -> web.Response:
    control = _control(request)
    if request.method == "POST":
        document = await _document(request)
        key = document.get("api_key")
        if not isinstance(key, str) or not key:
            raise ApiProblem(400, "Bad Request", "api_key must be a non-empty string")
        if document.get("accepted", True):
            control.accept_key(key)
        else:
            control.revoke_key(key)
    return web.json_response([asdict(s) for s in control.all_key_stats()])


async def _faults(request: web.Request) -> web.Response:
    control = _control(request)
    if request.method == "POST":
        document = await _document(request)
        unknown = set(document) - {*_FAULT_LIMITS, "storm", "drop_next"}
        if unknown:
            raise ApiProblem(400, "Bad Request", f"unknown fault settings: {sorted(unknown)}")
        control.set_faults(**{name: _number(document, name) for name in _FAULT_LIMITS})
        storm = _number(document, "storm")
        if storm is not None:
            control.storm(storm)
        drop_next = _number(document, "drop_next")
        if drop_next is not None:
            control.drop_next(int(drop_next))
    return web.json_response(control.fault_settings())


async def _projects(request: web.Request) -> web.Response:
    control = _control(request)
    document = await _document(request)
    ref = parse_project(str(document.get("project", "")))
    control.add_project(ref.organization, ref.project)
    return web.json_response(control.summary())


async def _groups(request: web.Request) -> web.Response:
    control = _control(request)
    snapshots = control.groups(request.match_info["organization"], request.match_info["project"])
    return web.json_response({"items": [{**s.document, "deleted": s.deleted} for s in snapshots]})


async def _group_action(request: web.Request) -> web.Response:
    control = _control(request)
    organization, project, name, action = (
        request.match_info[k] for k in ("organization", "project", "name", "action")
    )
    affected = 1
    if action == "stop":
        control.stop_group(organization, project, name)
    elif action == "start":
        control.start_group(organization, project, name)
    elif action == "delete":
        control.delete_group(organization, project, name)
    elif action == "interrupt":
        affected = control.interrupt(organization, project, name)
    elif action == "exit":
        code = _number(await _document(request), "code")
        affected = control.exit_instances(organization, project, name, int(code or 0))
    else:
        raise not_found(f"control action {action}")
    return web.json_response({"affected": affected})


def _written_json(line: WrittenLine) -> dict[str, Any]:
    return {
        "time": rfc3339(line.time),
        "receive_time": rfc3339(line.receive_time),
        "text": line.text,
        "instance_id": line.instance_id,
    }


async def _group_logs(request: web.Request) -> web.Response:
    control = _control(request)
    organization, project, name = (
        request.match_info[k] for k in ("organization", "project", "name")
    )
    if request.method == "GET":
        try:
            lines = control.log_lines(organization, project, name)
        except KeyError as missing:
            raise not_found(f"container group {name}") from missing
        return web.json_response({"items": [_written_json(line) for line in lines]})
    document = await _document(request)
    texts = document.get("lines")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ApiProblem(400, "Bad Request", "lines must be a list of strings")
    written = control.write_log(organization, project, name, texts, lag=_number(document, "lag"))
    return web.json_response({"items": [_written_json(line) for line in written]})


async def _log_output(request: web.Request) -> web.Response:
    control = _control(request)
    document = await _document(request)
    unknown = set(document) - {"rate", "lag"}
    if unknown:
        raise ApiProblem(400, "Bad Request", f"unknown log settings: {sorted(unknown)}")
    control.set_log_output(rate=_number(document, "rate"), lag=_number(document, "lag"))
    output = control.world.output
    return web.json_response({"rate": output.rate, "lag": output.max_lag})


async def _requests(request: web.Request) -> web.Response:
    control = _control(request)
    wanted = request.query.get("key")
    records = [asdict(r) for r in control.requests() if wanted is None or r.key == wanted]
    return web.json_response(records)


@web.middleware
async def control_problems(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith(CONTROL_PREFIX):
        response: web.StreamResponse = await handler(request)
        return response
    try:
        response = await handler(request)
    except ValueError as exc:  # a control method refused an argument
        problem = ApiProblem(400, "Bad Request", str(exc))
    except ApiProblem as refused:
        problem = refused
    else:
        return response
    return web.json_response(problem.body(), status=problem.status)


def add_control_routes(app: web.Application) -> None:
    router = app.router
    groups = CONTROL_PREFIX + "/organizations/{organization}/projects/{project}/containers"
    router.add_get(CONTROL_PREFIX, _summary)
    router.add_post(CONTROL_PREFIX + "/clock", _clock)
    router.add_get(CONTROL_PREFIX + "/keys", _keys)
    router.add_post(CONTROL_PREFIX + "/keys", _keys)
    router.add_get(CONTROL_PREFIX + "/faults", _faults)
    router.add_post(CONTROL_PREFIX + "/faults", _faults)
    router.add_post(CONTROL_PREFIX + "/projects", _projects)
    router.add_get(groups, _groups)
    # Before the actions: "logs" is not one.
    router.add_get(groups + "/{name}/logs", _group_logs)
    router.add_post(groups + "/{name}/logs", _group_logs)
    router.add_post(groups + "/{name}/{action}", _group_action)
    router.add_post(CONTROL_PREFIX + "/logs", _log_output)
    router.add_get(CONTROL_PREFIX + "/requests", _requests)
