"""Simulator state as the API's JSON: the response schemas of ``salad-cloud.yaml``.

Every required field of the read schemas is filled (``command: null`` included);
request-only parts are moved or dropped the way the real API does: ``priority`` sits
inside ``container`` on create but at the top of a ``ContainerGroup``, and
``registry_authentication`` is never returned.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from .clock import SimClock, rfc3339
from .lifecycle import Group, Instance, LogLine, SystemEvent
from .output import parsed_json

_NETWORKING_DEFAULTS = {
    "load_balancer": "round_robin",
    "client_request_timeout": 100000,
    "server_response_timeout": 100000,
    "single_connection_limit": False,
}

_NIL_UUID = "00000000-0000-0000-0000-000000000000"


def _time(clock: SimClock, seconds: float) -> str:
    return rfc3339(clock.datetime_at(seconds))


def container_group(group: Group, clock: SimClock) -> dict[str, Any]:
    spec = group.spec
    container = copy.deepcopy(spec["container"])
    priority = container.pop("priority", None) or "high"
    container.pop("registry_authentication", None)
    container.setdefault("command", None)
    container.setdefault("environment_variables", {})
    resources = container["resources"]
    resources.setdefault("gpu_classes", [])
    logging = container.get("logging")
    if isinstance(logging, dict) and isinstance(logging.get("http"), dict):
        logging["http"].setdefault("headers", None)
    if group.image_hash is not None:
        container["hash"] = group.image_hash
        container["size"] = 100_000_000 + int(group.image_hash[7:15], 16) % 4_000_000_000
    finish = group.run_finished if group.run_finished is not None else group.run_started
    state: dict[str, Any] = {
        "status": group.status,
        "start_time": _time(clock, group.run_started),
        "finish_time": _time(clock, finish),
        "instance_status_counts": group.counts(),
    }
    if group.description:
        state["description"] = group.description
    document: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "display_name": spec.get("display_name") or group.name,
        "organization_name": group.organization,
        "project_name": group.project,
        "container": container,
        "autostart_policy": spec["autostart_policy"],
        "restart_policy": spec["restart_policy"],
        "replicas": spec["replicas"],
        "priority": priority,
        "country_codes": list(spec.get("country_codes") or []),
        "current_state": state,
        "pending_change": group.pending_change,
        "version": group.version,
        "create_time": _time(clock, group.created),
        "update_time": _time(clock, group.updated),
        "scaling-actions": copy.deepcopy(spec.get("scaling-actions") or []),
        "scheduled-scaling-enabled": bool(spec.get("scheduled-scaling-enabled", False)),
    }
    networking = spec.get("networking")
    if networking is not None:
        document["networking"] = {**_NETWORKING_DEFAULTS, **networking, "dns": group.dns}
    for key in (
        "liveness_probe",
        "readiness_probe",
        "startup_probe",
        "queue_connection",
        "queue_autoscaler",
    ):
        if spec.get(key) is not None:
            document[key] = copy.deepcopy(spec[key])
    return document


def instance(item: Instance, clock: SimClock, now: float) -> dict[str, Any]:
    running = item.state == "running"
    document: dict[str, Any] = {
        "id": item.id,
        # machine_id is required even while allocating; the nil UUID says "no node yet".
        "machine_id": item.machine_id or _NIL_UUID,
        "state": item.state,
        "update_time": _time(clock, item.since),
        "version": item.version,
        "started": running,
        "ready": running and item.ready_at is not None and item.ready_at <= now,
        "deletion_cost": item.deletion_cost,
    }
    if item.state == "downloading" and item.until is not None and item.until > item.since:
        progress = 100.0 * (now - item.since) / (item.until - item.since)
        document["pulling_progress"] = round(min(100.0, max(0.0, progress)), 1)
    return document


def _bounded(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def system_log(
    group: Group, event: SystemEvent, clock: SimClock, gpu_names: dict[str, str]
) -> dict[str, Any]:
    resources = group.spec["container"]["resources"]
    gpu_ids = resources.get("gpu_classes") or []
    document: dict[str, Any] = {
        "event_name": event.name,
        "event_time": _time(clock, event.time),
        # SystemLog keeps the pre-alpha.15 bounds; values beyond them are reported as null.
        "resource_cpu": _bounded(resources.get("cpu"), 1, 16),
        "resource_memory": _bounded(resources.get("memory"), 1024, 61440),
        "resource_storage_amount": _bounded(
            resources.get("storage_amount"), 1073741824, 268435456000
        ),
        "resource_gpu_class": gpu_names.get(gpu_ids[0], gpu_ids[0]) if gpu_ids else "",
        "version": str(event.version),
    }
    if event.instance_id:
        document["instance_id"] = event.instance_id
    if event.machine_id:
        document["machine_id"] = event.machine_id
    return document


_PROMOTED = ("severity", "severity_number", "trace_id", "span_id", "parent_span_id")
"""Fields of a JSON line that SaladCloud lifts out of ``json_log`` (log-queries.mdx)."""


def log_entry(line: LogLine, when: datetime, received: datetime) -> dict[str, Any]:
    """A ``LogEntry``: a line that is a JSON object becomes ``json_log``, others
    ``text_log``."""
    document: dict[str, Any] = {
        "time": rfc3339(when),
        "receive_time": rfc3339(received),
        "severity": line.severity,
        "resource": {"type": line.resource_type, "labels": dict(line.labels)},
    }
    structured = parsed_json(line.text)
    if structured is None:
        document["text_log"] = line.text[:10000]
        return document
    for name in _PROMOTED:
        if name not in structured:
            continue
        value = structured.pop(name)
        if name == "severity" and value in _SEVERITIES:
            document["severity"] = value
        elif name in _SPAN_FIELDS and isinstance(value, str) and 0 < len(value) <= 1000:
            document[_SPAN_FIELDS[name]] = value
    document["json_log"] = structured
    return document


_SPAN_FIELDS = {"trace_id": "trace_Id", "span_id": "span_Id", "parent_span_id": "parent_span_id"}
"""Where the spec's ``LogEntry`` keeps them (its spelling)."""


_SEVERITIES = frozenset(
    ("default", "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
)
