"""The simulated SaladCloud account: organizations, projects, groups, keys, faults.

All of it lives in memory and changes only in synchronous methods, so each API
request is applied atomically even though the server is asynchronous. Before any
request is served, every group catches up with the simulated clock
(``advance``), so the order of events is always their simulated time order.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import render
from .clock import SimClock, rfc3339
from .faults import Faults, FaultSettings
from .gpus import gpu_classes
from .keys import Keys
from .lifecycle import Group, Instance, LogLine
from .logquery import compile_query
from .options import SimulatorOptions
from .output import ContainerOutput, EmittedLine
from .problems import ApiProblem, not_found
from .validation import (
    ContainerGroupInstancePatch,
    ContainerGroupPatch,
    ContainerGroupPrototype,
    LogEntryQuery,
    check,
)

LIST_LIMIT = 100
"""``ContainerGroupCollection.items`` has ``maxItems: 100``; the oldest groups are listed."""
INSTANCE_LIMIT = 1000
SYSTEM_LOG_LIMIT = 50
DEFAULT_PAGE_SIZE = 100

# Merge-patch ``null`` deletes a member (RFC 7396); for these members of a group,
# deleting makes no sense, so the API is taken to read ``null`` as "unchanged".
_NULL_KEEPS = frozenset(
    {
        ("container",),
        ("replicas",),
        ("networking",),
        ("container", "image"),
        ("container", "resources"),
        ("container", "resources", "cpu"),
        ("container", "resources", "memory"),
        ("networking", "port"),
    }
)


@dataclass
class Project:
    organization: str
    name: str
    groups: dict[str, Group] = field(default_factory=dict)
    """Every group ever created here, deleted ones included: names are never reused."""


@dataclass
class Organization:
    name: str
    projects: dict[str, Project] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the server saw it (for tests and the control API)."""

    wall: float
    key: str | None
    method: str
    path: str
    status: int


def merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """RFC 7396 JSON merge-patch, with the ``_NULL_KEEPS`` exceptions."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        where = (*path, key)
        if value is None:
            if where not in _NULL_KEEPS:
                result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value, where)
    return result


class World:
    def __init__(
        self,
        options: SimulatorOptions,
        *,
        clock: SimClock,
        wall: Callable[[], float],
    ) -> None:
        self.options = options
        self.clock = clock
        self.wall = wall
        self.started_wall = wall()
        self.organizations: dict[str, Organization] = {}
        for ref in options.project_refs:
            self.add_project(ref.organization, ref.project)
        self.keys = Keys(options.api_keys, rate_limit=options.rate_limit, wall=wall)
        self.faults = Faults(
            FaultSettings.from_options(options),
            seed=options.seed,
            wall=wall,
            started=self.started_wall,
        )
        self.gpu_classes = gpu_classes(options.gpu_classes)
        self.requests: deque[RequestRecord] = deque(maxlen=100_000)
        self.output = ContainerOutput(options.log_rate, options.log_lag, options.seed)

    # --- bookkeeping -------------------------------------------------------------------

    def add_project(self, organization: str, project: str) -> Project:
        org = self.organizations.setdefault(organization, Organization(organization))
        return org.projects.setdefault(project, Project(organization, project))

    def advance(self, scope: tuple[str, str] | None = None) -> float:
        """Bring every group up to now, or only those of ``scope`` (organization,
        project): what a request about that project can see.

        A group's transitions depend on nothing but its own schedule and random stream,
        and each is applied at its own time, so a group brought up to date late ends in
        the state it would have had. A request per project advancing every project was
        O(groups) per request: at 1,000 projects and 100 requests a second, 71 % of a
        core, on the two cores the supervisor under test shares with it."""
        now = self.clock.now()
        wall = self.clock.elapsed()
        if scope is None:
            projects = [p for org in self.organizations.values() for p in org.projects.values()]
        else:
            org = self.organizations.get(scope[0])
            found = org.projects.get(scope[1]) if org is not None else None
            projects = [found] if found is not None else []
        for project in projects:
            for group in project.groups.values():
                group.advance(now)
                self.output.catch_up(group, self.clock, wall)
        return now

    def organization(self, name: str) -> Organization:
        org = self.organizations.get(name)
        if org is None:
            raise not_found(f"organization {name}")
        return org

    def project(self, organization: str, project: str) -> Project:
        found = self.organization(organization).projects.get(project)
        if found is None:
            raise not_found(f"project {organization}/{project}")
        return found

    def group(self, organization: str, project: str, name: str) -> Group:
        group = self.project(organization, project).groups.get(name)
        if group is None or group.deleted:
            raise not_found(f"container group {name}")
        return group

    def _instance(self, group: Group, instance_id: str) -> Instance:
        for instance in group.instances:
            if instance.id == instance_id:
                return instance
        raise not_found(f"container group instance {instance_id}")

    # --- container groups ------------------------------------------------------------------

    def list_groups(self, organization: str, project: str) -> dict[str, Any]:
        groups = [g for g in self.project(organization, project).groups.values() if not g.deleted]
        groups.sort(key=lambda g: (g.created, g.name))
        return {"items": [render.container_group(g, self.clock) for g in groups[:LIST_LIMIT]]}

    def get_group(self, organization: str, project: str, name: str) -> dict[str, Any]:
        return render.container_group(self.group(organization, project, name), self.clock)

    def create_group(self, organization: str, project: str, document: Any) -> dict[str, Any]:
        target = self.project(organization, project)
        body = check(ContainerGroupPrototype, document)
        if body.name in target.groups:
            deleted = target.groups[body.name].deleted
            gone = " (it was deleted; names are never reused)" if deleted else ""
            raise ApiProblem(
                400,
                "Name Conflict",
                f"a container group named {body.name} already exists in project "
                f"{organization}/{project}{gone}",
                problem_type="name_conflict",
            )
        self._check_references(organization, document)
        group = Group(
            organization=organization,
            project=project,
            name=body.name,
            spec=copy.deepcopy(document),
            created=self.clock.now(),
            seed=self.options.seed,
            fail_patterns=tuple(self.options.fail_images),
            exit_rules=tuple(self.options.exit_rules),
            interrupt_rate=self.faults.settings.interrupt_rate,
        )
        target.groups[group.name] = group
        return render.container_group(group, self.clock)

    def update_group(
        self, organization: str, project: str, name: str, document: Any
    ) -> dict[str, Any]:
        group = self.group(organization, project, name)
        check(ContainerGroupPatch, document)
        merged = merge_patch(group.spec, document)
        check(ContainerGroupPrototype, merged)
        self._check_references(organization, merged)
        group.interrupt_rate = self.faults.settings.interrupt_rate
        group.patch(merged, self.clock.now())
        return render.container_group(group, self.clock)

    def _check_references(self, organization: str, document: dict[str, Any]) -> None:
        known = {c["id"] for c in self.gpu_classes}
        resources = document["container"]["resources"]
        for index, class_id in enumerate(resources.get("gpu_classes") or []):
            if class_id not in known:
                raise ApiProblem(
                    400,
                    "Bad Request",
                    f"container.resources.gpu_classes[{index}]: {class_id} is not a GPU class "
                    f"of organization {organization}",
                )
        quota = self.options.replica_quota
        if document["replicas"] > quota:
            raise ApiProblem(
                400,
                "Bad Request",
                f"replicas: {document['replicas']} exceeds the container replicas quota ({quota})",
            )

    def delete_group(self, organization: str, project: str, name: str) -> None:
        self.group(organization, project, name).delete(self.clock.now())

    def start_group(self, organization: str, project: str, name: str) -> None:
        self.group(organization, project, name).start(self.clock.now())

    def stop_group(self, organization: str, project: str, name: str) -> None:
        self.group(organization, project, name).stop(self.clock.now())

    # --- instances ---------------------------------------------------------------------------

    def list_instances(self, organization: str, project: str, name: str) -> dict[str, Any]:
        group = self.group(organization, project, name)
        now = self.clock.now()
        items = [render.instance(i, self.clock, now) for i in group.instances[:INSTANCE_LIMIT]]
        return {"instances": items}

    def get_instance(
        self, organization: str, project: str, name: str, instance_id: str
    ) -> dict[str, Any]:
        group = self.group(organization, project, name)
        return render.instance(self._instance(group, instance_id), self.clock, self.clock.now())

    def update_instance(
        self, organization: str, project: str, name: str, instance_id: str, document: Any
    ) -> dict[str, Any]:
        group = self.group(organization, project, name)
        instance = self._instance(group, instance_id)
        patch = check(ContainerGroupInstancePatch, document)
        if "deletion_cost" in document:
            instance.deletion_cost = patch.deletion_cost or 0
        return render.instance(instance, self.clock, self.clock.now())

    def instance_action(
        self, organization: str, project: str, name: str, instance_id: str, action: str
    ) -> None:
        group = self.group(organization, project, name)
        instance = self._instance(group, instance_id)
        if instance.state == "stopping":
            raise ApiProblem(400, "Bad Request", f"instance {instance_id} is stopping")
        group.instance_action(instance, action, self.clock.now())

    def system_logs(self, organization: str, project: str, name: str) -> dict[str, Any]:
        group = self.group(organization, project, name)
        names = {c["id"]: c["name"] for c in self.gpu_classes}
        events = group.system_events[-SYSTEM_LOG_LIMIT:]
        return {"items": [render.system_log(group, e, self.clock, names) for e in events]}

    # --- organization ------------------------------------------------------------------------

    def list_gpu_classes(self, organization: str) -> dict[str, Any]:
        self.organization(organization)
        return {"items": copy.deepcopy(self.gpu_classes[:LIST_LIMIT])}

    def quotas(self, organization: str) -> dict[str, Any]:
        org = self.organization(organization)
        used = sum(
            g.replicas for p in org.projects.values() for g in p.groups.values() if not g.deleted
        )
        return {
            "container_groups_quotas": {
                "container_replicas_quota": self.options.replica_quota,
                "container_replicas_used": used,
                "max_container_group_reallocations_per_minute": 10,
                "max_container_group_recreates_per_minute": 10,
                "max_container_group_restarts_per_minute": 10,
            },
            "create_time": rfc3339(self.clock.datetime_at(0.0)),
            "update_time": rfc3339(self.clock.datetime_at(self.clock.now())),
        }

    def entry_times(self, line: LogLine) -> tuple[datetime, datetime]:
        """When a log entry was written and received, on the wall clock (see ``clock``),
        to the millisecond, as entries are rendered. Lifecycle records are received at
        once; container lines carry their own delay (``output``)."""
        if isinstance(line, EmittedLine):
            written, received = line.wall, line.received
        else:
            written = received = self.clock.wall_seconds_at(line.time)
        return _to_millisecond(self.clock.wall_datetime(written)), _to_millisecond(
            self.clock.wall_datetime(received)
        )

    def log_lines(self, group: Group) -> list[LogLine]:
        """Every log line of a group, lifecycle records and container output, in the
        order of their times."""
        lines = [*group.log_lines, *self.output.lines(group)]
        lines.sort(key=lambda line: self.entry_times(line)[0])
        return lines

    def query_log_entries(self, organization: str, document: Any) -> dict[str, Any]:
        """Entries of the organization received by now, with ``time`` in the range,
        matching the query; newest first unless ``sort_order`` is ``asc``."""
        org = self.organization(organization)
        query = check(LogEntryQuery, document)
        if query.end_time < query.start_time:
            raise ApiProblem(400, "Bad Request", "end_time: must not be before start_time")
        matches = compile_query(query.query)
        now = self.clock.wall_datetime(self.clock.elapsed())
        found: list[tuple[datetime, dict[str, Any]]] = []
        for project in org.projects.values():
            for group in project.groups.values():
                for line in [*group.log_lines, *self.output.lines(group)]:
                    written, received = self.entry_times(line)
                    if received > now or not query.start_time <= written <= query.end_time:
                        continue
                    entry = render.log_entry(line, written, received)
                    if matches(entry):
                        found.append((written, entry))
        found.sort(key=lambda pair: pair[0], reverse=(query.sort_order or "desc") == "desc")
        page = found[: query.page_size or DEFAULT_PAGE_SIZE]
        times = [when for when, _ in page] or [query.start_time, query.end_time]
        return {
            "items": [entry for _, entry in page],
            "organization_name": organization,
            "page_min_time": rfc3339(min(times)),
            "page_max_time": rfc3339(max(times)),
        }


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
