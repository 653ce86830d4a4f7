"""A container group (and its instances) as the pod ``status`` a kubelet would write.

The result is the object to strategic-merge-patch into ``pods/<name>/status``:
``phase``, the kubelet-owned conditions (PodScheduled, Initialized, ContainersReady,
Ready; never readiness-gate or other conditions, which the patch merges by ``type``),
one container status, ``hostIP``/``hostIPs`` and ``startTime``. ``podIP`` is never
set: SaladCloud does not report the container's address.

The pod's current ``status`` is the previous state. That makes the mapping stable
(an unchanged input gives a byte-identical output, so the caller can skip the write)
and carries what SaladCloud does not report: when the container started, how often
it restarted. The rules a kubelet keeps are kept here too:

* Failed and Succeeded are final: a terminal pod's status comes back unchanged;
* a Running pod never goes back to Pending (an instance reallocated to another
  machine leaves the pod Running, its container waiting and not Ready);
* a group status or instance state this node does not know (the API grows) keeps
  the previous phase and says so in the container's waiting message.

Keys whose value is ``None`` mean "remove" in a strategic merge patch;
:func:`status_patch_needed` compares with that in mind.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nodes.saladcloud.models import ContainerGroup, ContainerGroupInstance
from nodes.translate.pod_json import integer, obj, objs, text

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)

CONTAINER_CREATING = "ContainerCreating"
ERR_IMAGE_PULL = "ErrImagePull"
COMPLETED = "Completed"
ERROR = "Error"
CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown"
CONTAINER_GROUP_FAILED = "ContainerGroupFailed"
CONTAINER_GROUP_STOPPED = "ContainerGroupStopped"
"""The group was stopped outside Kubernetes (portal, API) while its pod lived."""
CONTAINER_GROUP_DELETED = "ContainerGroupDeleted"
"""The group vanished while its pod lived; for :func:`failed_status`."""
CONTAINER_GROUP_STATUS_UNKNOWN = "ContainerGroupStatusUnknown"

CONTAINER_ID_SCHEME = "salad://"

EXIT_KILLED = 137
"""What the kubelet reports for a container whose exit it could not observe."""
EXIT_NOT_STARTED = 128
"""What container runtimes report for a container that could not be started."""

_PULL_FAILURE = re.compile(
    r"pull|registry|manifest|unauthori[sz]ed|authenticat|denied|not found", re.IGNORECASE
)
_INSTANCE_PROGRESS = {
    "allocating": "allocating a SaladCloud machine",
    "downloading": "downloading the image",
    "creating": "creating the container",
    "stopping": "stopping the instance",
    "running": "the instance is running",
}


def _final(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of the pod's status if it is terminal (Failed and Succeeded are final)."""
    current = obj(pod.get("status"))
    return copy.deepcopy(dict(current)) if text(current.get("phase")) in TERMINAL_PHASES else None


def timestamp(moment: datetime) -> str:
    """Kubernetes' RFC 3339 form, UTC, whole seconds. A naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_id(instance_id: str) -> str:
    return f"{CONTAINER_ID_SCHEME}{instance_id}"


@dataclass(frozen=True)
class _Previous:
    """What the pod's current status says about its one container."""

    phase: str
    container_id: str | None
    state: Mapping[str, Any]
    last_state: Mapping[str, Any]
    restart_count: int
    image_id: str

    @property
    def running_since(self) -> str | None:
        if "running" not in self.state:
            return None
        return text(obj(self.state["running"]).get("startedAt")) or None

    @property
    def has_run(self) -> bool:
        """Whether some instance of the container ever ran."""
        return (
            self.container_id is not None
            or "running" in self.state
            or "terminated" in self.last_state
        )

    def terminated(self, *, exit_code: int, reason: str, message: str, now: str) -> dict[str, Any]:
        """The ``terminated`` state of this container, ending ``now``."""
        state: dict[str, Any] = {"exitCode": exit_code, "reason": reason, "message": message}
        if self.running_since:
            state["startedAt"] = self.running_since
        state["finishedAt"] = now
        if self.container_id:
            state["containerID"] = self.container_id
        return state


def _previous(pod: Mapping[str, Any]) -> _Previous:
    status = obj(pod.get("status"))
    statuses = objs(status.get("containerStatuses"))
    name = _container_name(pod)
    mine = next(
        (s for s in statuses if text(s.get("name")) == name), statuses[0] if statuses else {}
    )
    return _Previous(
        phase=text(status.get("phase")) or PENDING,
        container_id=text(mine.get("containerID")) or None,
        state=obj(mine.get("state")),
        last_state=obj(mine.get("lastState")),
        restart_count=integer(mine.get("restartCount")) or 0,
        image_id=text(mine.get("imageID")),
    )


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = objs(obj(pod.get("spec")).get("containers"))
    return containers[0] if containers else {}


def _container_name(pod: Mapping[str, Any]) -> str:
    return text(_container(pod).get("name"))


@dataclass(frozen=True)
class _Container:
    """The container status to report, before it is laid out as JSON."""

    state: dict[str, Any]
    ready: bool = False
    started: bool = False
    container_id: str | None = None
    last_state: Mapping[str, Any] = field(default_factory=dict)
    restart_count: int = 0


def _lost(previous: _Previous, now: str) -> dict[str, Any]:
    """The terminated state of an instance that stopped without saying how."""
    terminated = previous.terminated(
        exit_code=EXIT_KILLED,
        reason=CONTAINER_STATUS_UNKNOWN,
        message="the SaladCloud instance stopped (reallocated, restarted or exited); "
        "SaladCloud does not report why or with which exit code",
        now=now,
    )
    return {"terminated": terminated}


def _running(
    previous: _Previous, instance_container_id: str | None, *, ready: bool, started: bool, now: str
) -> _Container:
    was_running = "running" in previous.state
    same = (
        instance_container_id is None
        or previous.container_id is None
        or instance_container_id == previous.container_id
    )
    if was_running and same:
        return _Container(
            state={"running": {"startedAt": previous.running_since or now}},
            ready=ready,
            started=started,
            container_id=instance_container_id or previous.container_id,
            last_state=previous.last_state,
            restart_count=previous.restart_count,
        )
    if was_running:  # another instance took over without us seeing the first stop
        last_state: Mapping[str, Any] = _lost(previous, now)
        restarts = previous.restart_count + 1
    elif previous.has_run:  # it ran, stopped (we reported waiting), and runs again
        last_state = previous.last_state or _lost(previous, now)
        restarts = previous.restart_count + 1
    else:
        last_state, restarts = previous.last_state, previous.restart_count
    return _Container(
        state={"running": {"startedAt": now}},
        ready=ready,
        started=started,
        container_id=instance_container_id,
        last_state=last_state,
        restart_count=restarts,
    )


def _waiting(previous: _Previous, reason: str, message: str, now: str) -> _Container:
    last_state = _lost(previous, now) if "running" in previous.state else previous.last_state
    return _Container(
        state={"waiting": {"reason": reason, "message": message}},
        container_id=previous.container_id,
        last_state=last_state,
        restart_count=previous.restart_count,
    )


def _terminated(
    previous: _Previous, *, exit_code: int, reason: str, message: str, now: str
) -> _Container:
    terminated = previous.terminated(exit_code=exit_code, reason=reason, message=message, now=now)
    return _Container(
        state={"terminated": terminated},
        container_id=previous.container_id,
        last_state=previous.last_state,
        restart_count=previous.restart_count,
    )


def _progress(group: ContainerGroup | None, instances: Sequence[ContainerGroupInstance]) -> str:
    """What SaladCloud is doing for the group, for the waiting message."""
    if group is None:
        return "waiting for the container group to be created on SaladCloud"
    state = group.current_state
    if instances:
        # A stopping instance is on its way out; describe the one replacing it.
        instance = next((i for i in instances if i.state != "stopping"), instances[0])
        doing = _INSTANCE_PROGRESS.get(instance.state)
        if doing is None:
            doing = f"instance state {instance.state!r} is unknown to this node"
        elif instance.state == "downloading" and instance.pulling_progress is not None:
            # In steps of 10%, so that a download costs ten status writes, not one a poll.
            step = min(100, int(instance.pulling_progress) // 10 * 10)
            doing = f"{doing} ({step}%)"
    else:
        counts = state.instance_status_counts
        if counts.allocating_count:
            doing = _INSTANCE_PROGRESS["allocating"]
        elif counts.creating_count:
            doing = _INSTANCE_PROGRESS["creating"]
        elif counts.stopping_count:
            doing = _INSTANCE_PROGRESS["stopping"]
        elif state.status == "pending":
            doing = "SaladCloud is preparing the image"
        else:
            doing = "waiting for an instance"
    message = f"container group {state.status}: {doing}"
    return f"{message} ({state.description})" if state.description else message


def _running_instance(
    instances: Sequence[ContainerGroupInstance], previous_id: str | None
) -> ContainerGroupInstance | None:
    running = [instance for instance in instances if instance.state == "running"]
    for instance in running:
        if container_id(instance.id) == previous_id:
            return instance
    return running[0] if running else None


def _has_readiness_probe(pod: Mapping[str, Any]) -> bool:
    containers = objs(obj(pod.get("spec")).get("containers"))
    return bool(containers and containers[0].get("readinessProbe"))


def pod_status(
    pod: Mapping[str, Any],
    group: ContainerGroup | None,
    instances: Sequence[ContainerGroupInstance],
    *,
    now: datetime,
    node_ip: str,
) -> dict[str, Any]:
    """The pod status for ``group`` and its instances.

    ``group`` is ``None`` before the group is created; a group that vanished later is
    for the caller to report, with :func:`failed_status` and
    :data:`CONTAINER_GROUP_DELETED`. ``instances`` may be empty when the caller did
    not fetch them; the group's instance counts stand in then (a running group with a
    running count is Running).
    """
    final = _final(pod)
    if final is not None:
        return final
    at = timestamp(now)
    status = group.current_state.status if group is not None else None
    deleting = bool(obj(pod.get("metadata")).get("deletionTimestamp"))
    if status == "stopped" and deleting:
        return _terminated_status(pod, at, node_ip)
    if status == "stopped":
        return _failed_status(
            pod,
            CONTAINER_GROUP_STOPPED,
            "the container group was stopped outside Kubernetes (SaladCloud portal or API)",
            at,
            node_ip,
        )
    if status == "failed" and group is not None:
        description = group.current_state.description or ""
        return _failed_status(
            pod,
            ERR_IMAGE_PULL if _PULL_FAILURE.search(description) else CONTAINER_GROUP_FAILED,
            description or "SaladCloud could not prepare the container group",
            at,
            node_ip,
            image_id=_image_id(group),
        )

    previous = _previous(pod)
    if group is None or status in ("pending", "deploying"):
        phase = PENDING
        container = _waiting(previous, CONTAINER_CREATING, _progress(group, instances), at)
    elif status == "running":
        instance = _running_instance(instances, previous.container_id)
        if instance is not None:
            phase = RUNNING
            container = _running(
                previous,
                container_id(instance.id),
                ready=instance.ready is not False,
                started=instance.started is not False,
                now=at,
            )
        elif not instances and group.current_state.instance_status_counts.running_count > 0:
            # Running by the group's counts; its readiness is the instance's to tell. Until
            # it is read, a readiness probe has not passed (the kubelet's view, too).
            phase = RUNNING
            container = _running(
                previous, None, ready=not _has_readiness_probe(pod), started=True, now=at
            )
        else:
            phase = PENDING
            container = _waiting(previous, CONTAINER_CREATING, _progress(group, instances), at)
    elif status == "succeeded":
        phase = SUCCEEDED
        container = _terminated(
            previous,
            exit_code=0,
            reason=COMPLETED,
            message="the container group succeeded",
            now=at,
        )
    else:
        phase = previous.phase
        container = _waiting(
            previous,
            CONTAINER_GROUP_STATUS_UNKNOWN,
            f"SaladCloud reports container group status {status!r}, which this node does "
            f"not know; the pod keeps phase {phase}",
            at,
        )
    if phase == PENDING and previous.phase == RUNNING:
        phase = RUNNING
    return _status(
        pod, phase=phase, container=container, image_id=_image_id(group), now=at, node_ip=node_ip
    )


def _image_id(group: ContainerGroup | None) -> str:
    """The image hash SaladCloud reports, once it has resolved the image."""
    return (group.container.hash if group is not None else None) or ""


def failed_status(
    pod: Mapping[str, Any], reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """Phase Failed with ``reason`` and ``message``, the container terminated.

    For the reconciler: a refused pod (``reason`` from the :class:`Refusal`), a group
    that vanished (:data:`CONTAINER_GROUP_DELETED`), a create SaladCloud rejects for
    good. A terminal pod's status comes back unchanged.
    """
    final = _final(pod)
    return final if final is not None else _failed_status(pod, reason, message, timestamp(now))


def _failed_status(
    pod: Mapping[str, Any],
    reason: str,
    message: str,
    at: str,
    node_ip: str | None = None,
    *,
    image_id: str | None = None,
) -> dict[str, Any]:
    """Failed with the container terminated; ``image_id`` defaults to the reported one."""
    previous = _previous(pod)
    return _status(
        pod,
        phase=FAILED,
        container=_terminated(
            previous,
            exit_code=EXIT_KILLED if previous.has_run else EXIT_NOT_STARTED,
            reason=reason,
            message=message,
            now=at,
        ),
        image_id=previous.image_id if image_id is None else image_id,
        now=at,
        node_ip=node_ip,
        reason=reason,
        message=message,
    )


def pending_status(
    pod: Mapping[str, Any], reason: str, message: str, *, now: datetime, node_ip: str
) -> dict[str, Any]:
    """Pending with the container waiting for ``reason``: what the kubelet shows while
    a referenced Secret or ConfigMap is missing (``CreateContainerConfigError``), for a
    refusal that is not permanent. A terminal pod's status comes back unchanged."""
    final = _final(pod)
    if final is not None:
        return final
    previous = _previous(pod)
    at = timestamp(now)
    return _status(
        pod,
        phase=RUNNING if previous.phase == RUNNING else PENDING,
        container=_waiting(previous, reason, message, at),
        image_id=previous.image_id,
        now=at,
        node_ip=node_ip,
    )


def terminated_status(pod: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The final status of a pod Kubernetes deleted, once its group is gone.

    A container that ran ends ``Completed`` (exit code 0: it was stopped on purpose,
    and SaladCloud does not report exit codes) and the pod Succeeded; one that never
    ran ends with ``Error`` and the pod Failed, as the kubelet does for a pod deleted
    before its containers started. A terminal pod's status comes back unchanged.
    """
    final = _final(pod)
    return final if final is not None else _terminated_status(pod, timestamp(now), None)


def _terminated_status(pod: Mapping[str, Any], at: str, node_ip: str | None) -> dict[str, Any]:
    previous = _previous(pod)
    if previous.has_run:
        phase = SUCCEEDED
        container = _terminated(
            previous,
            exit_code=0,
            reason=COMPLETED,
            message="the container group was deleted because the pod was deleted",
            now=at,
        )
    else:
        phase = FAILED
        container = _terminated(
            previous,
            exit_code=EXIT_KILLED,
            reason=ERROR,
            message="the pod was deleted before its container ran",
            now=at,
        )
    return _status(
        pod,
        phase=phase,
        container=container,
        image_id=previous.image_id,
        now=at,
        node_ip=node_ip,
    )


def _status(
    pod: Mapping[str, Any],
    *,
    phase: str,
    container: _Container,
    image_id: str,
    now: str,
    node_ip: str | None,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    current = obj(pod.get("status"))
    spec_container = _container(pod)
    status: dict[str, Any] = {"phase": phase}
    if reason is not None:
        status["reason"] = reason
    if message is not None:
        status["message"] = message
    status["conditions"] = _conditions(pod, phase=phase, containers_ready=container.ready, now=now)
    # The kubelet sets the host IP once and never changes it; neither do we. The node
    # IP is the supervisor's pod IP, which changes on every rollout, and a patch of
    # hostIPs merges by ip: a new IP would be appended to the old one, which the API
    # server refuses (one IP per family), and every later status write would fail.
    if current.get("hostIP"):
        status["hostIP"] = current["hostIP"]
        if current.get("hostIPs"):
            status["hostIPs"] = current["hostIPs"]
    elif node_ip:
        status["hostIP"] = node_ip
        status["hostIPs"] = [{"ip": node_ip}]
    status["startTime"] = text(current.get("startTime")) or now
    entry: dict[str, Any] = {
        "name": text(spec_container.get("name")),
        "image": text(spec_container.get("image")),
        "imageID": image_id,
    }
    if container.container_id:
        entry["containerID"] = container.container_id
    entry.update(
        {
            "ready": container.ready,
            "started": container.started,
            "restartCount": container.restart_count,
            "state": container.state,
            "lastState": dict(container.last_state),
        }
    )
    status["containerStatuses"] = [entry]
    return status


def _conditions(
    pod: Mapping[str, Any], *, phase: str, containers_ready: bool, now: str
) -> list[dict[str, Any]]:
    existing = {
        text(condition.get("type")): condition
        for condition in objs(obj(pod.get("status")).get("conditions"))
    }

    def condition(
        kind: str, true: bool, reason: str | None = None, message: str | None = None
    ) -> dict[str, Any]:
        status = "True" if true else "False"
        before = existing.get(kind, {})
        since = text(before.get("lastTransitionTime"))
        return {
            "type": kind,
            "status": status,
            "lastTransitionTime": since if since and before.get("status") == status else now,
            "reason": reason,
            "message": message,
        }

    name = _container_name(pod)
    if phase in TERMINAL_PHASES:
        not_ready: tuple[str | None, str | None] = ("PodCompleted", None)
    else:
        not_ready = ("ContainersNotReady", f"containers with unready status: [{name}]")
    gates_message = _readiness_gates_message(pod, existing)
    ready = containers_ready and phase not in TERMINAL_PHASES
    if ready and gates_message is not None:
        ready_condition = condition("Ready", False, "ReadinessGatesNotReady", gates_message)
    elif ready:
        ready_condition = condition("Ready", True)
    else:
        ready_condition = condition("Ready", False, *not_ready)
    return [
        condition("Initialized", True),
        ready_condition,
        condition("ContainersReady", True)
        if ready
        else condition("ContainersReady", False, *not_ready),
        condition("PodScheduled", True),
    ]


def _readiness_gates_message(
    pod: Mapping[str, Any], existing: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """Why the readiness gates hold Ready back, in the kubelet's words, or ``None``."""
    for gate in objs(obj(pod.get("spec")).get("readinessGates")):
        kind = text(gate.get("conditionType"))
        condition = existing.get(kind)
        if condition is None:
            return f'corresponding condition of pod readiness gate "{kind}" does not exist.'
        if condition.get("status") != "True":
            return (
                f'the status of pod readiness gate "{kind}" is not "True", '
                f"but {text(condition.get('status'))}"
            )
    return None


def status_patch_needed(current: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether strategic-merging ``patch`` into the status ``current`` changes it.

    Conditions merge by ``type``, ``hostIPs`` by ``ip``; a ``None`` value removes a key;
    other lists (``containerStatuses``) are replaced whole.
    """
    for key, value in patch.items():
        if key == "conditions":
            existing = {
                text(condition.get("type")): condition for condition in objs(current.get(key))
            }
            for condition in objs(value):
                before = existing.get(text(condition.get("type")))
                if before is None or _differs(before, condition):
                    return True
        elif value is None:
            if current.get(key) is not None:
                return True
        elif current.get(key) != value:
            return True
    return False


def _differs(before: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    return any(
        before.get(key) is not None if value is None else before.get(key) != value
        for key, value in patch.items()
    )
