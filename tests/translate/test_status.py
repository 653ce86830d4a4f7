"""Container group and instances -> pod status, as a kubelet would report it."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nodes.saladcloud.models import ContainerGroup, ContainerGroupInstance
from nodes.translate import (
    CONTAINER_GROUP_DELETED,
    CONTAINER_GROUP_STOPPED,
    CREATE_CONTAINER_CONFIG_ERROR,
    failed_status,
    pending_status,
    pod_status,
    status_patch_needed,
    terminated_status,
)
from tests.translate.pods import NODE_IP, make_pod

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(minutes=7)
AT_NOW = "2025-01-02T03:04:05Z"
AT_LATER = "2025-01-02T03:11:05Z"
SCHEDULED_AT = "2025-01-02T03:00:00Z"
INSTANCE_A = "6f1c2a57-1111-4c3e-9a7e-000000000001"
INSTANCE_B = "6f1c2a57-2222-4c3e-9a7e-000000000002"
HASH = "sha256:" + "ab" * 32


def group(
    status: str,
    *,
    description: str | None = None,
    running: int = 0,
    allocating: int = 0,
    creating: int = 0,
    image_hash: str | None = None,
) -> ContainerGroup:
    container: dict[str, Any] = {
        "image": "ghcr.io/acme/app:1.0",
        "resources": {"cpu": 1, "memory": 1024},
    }
    if image_hash:
        container["hash"] = image_hash
    return ContainerGroup.model_validate(
        {
            "id": "c0ffee00-0000-4000-8000-000000000000",
            "name": "default-web-7d9f8c6b5d-x2x7k-0a1b2c3d",
            "container": container,
            "current_state": {
                "status": status,
                "description": description,
                "start_time": "2025-01-02T03:00:10Z",
                "finish_time": "2025-01-02T03:00:10Z",
                "instance_status_counts": {
                    "allocating_count": allocating,
                    "creating_count": creating,
                    "running_count": running,
                    "stopping_count": 0,
                },
            },
        }
    )


def instance(
    state: str,
    *,
    instance_id: str = INSTANCE_A,
    ready: bool | None = None,
    started: bool | None = None,
    progress: float | None = None,
) -> ContainerGroupInstance:
    return ContainerGroupInstance.model_validate(
        {
            "id": instance_id,
            "machine_id": "9e0b4f4e-0000-4000-8000-000000000000",
            "state": state,
            "update_time": "2025-01-02T03:01:00Z",
            "version": 1,
            "ready": ready,
            "started": started,
            "pulling_progress": progress,
        }
    )


def scheduled_pod(**kwargs: Any) -> dict[str, Any]:
    """A pod as the scheduler leaves it: Pending, PodScheduled True."""
    status = {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": SCHEDULED_AT}
        ],
    }
    return make_pod(status=status, **kwargs)


def merge_status(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What the API server makes of a strategic merge patch of a pod status."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif key == "conditions":
            by_type = {condition["type"]: condition for condition in merged.get(key, [])}
            for condition in value:
                target = by_type.setdefault(condition["type"], {})
                for name, field in condition.items():
                    if field is None:
                        target.pop(name, None)
                    else:
                        target[name] = field
            merged[key] = list(by_type.values())
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def advance(pod: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``pod`` after the status patch was written."""
    return {**pod, "status": merge_status(pod["status"], patch)}


def container_of(status: dict[str, Any]) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = status["containerStatuses"]
    assert len(statuses) == 1
    return statuses[0]


def conditions_of(status: dict[str, Any]) -> dict[str, str]:
    return {condition["type"]: condition["status"] for condition in status["conditions"]}


def state_of(status: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    state = container_of(status)["state"]
    assert len(state) == 1, state
    kind = next(iter(state))
    return kind, state[kind]


CASES = [
    pytest.param(
        None, [], ("Pending", "waiting", "ContainerCreating", False), id="not-created-yet"
    ),
    pytest.param(
        group("pending"), [], ("Pending", "waiting", "ContainerCreating", False), id="pending"
    ),
    pytest.param(
        group("deploying", allocating=1),
        [instance("allocating")],
        ("Pending", "waiting", "ContainerCreating", False),
        id="deploying-allocating",
    ),
    pytest.param(
        group("deploying"),
        [instance("downloading", progress=42.4)],
        ("Pending", "waiting", "ContainerCreating", False),
        id="deploying-downloading",
    ),
    pytest.param(
        group("deploying", creating=1),
        [],
        ("Pending", "waiting", "ContainerCreating", False),
        id="deploying-counts-only",
    ),
    pytest.param(
        group("running", running=1),
        [instance("running", ready=True)],
        ("Running", "running", None, True),
        id="running-ready",
    ),
    pytest.param(
        group("running", running=1),
        [instance("running")],
        ("Running", "running", None, True),
        id="running-ready-absent",
    ),
    pytest.param(
        group("running", running=1),
        [instance("running", ready=False)],
        ("Running", "running", None, False),
        id="running-not-ready",
    ),
    pytest.param(
        group("running", running=1),
        [],
        ("Running", "running", None, True),
        id="running-instances-not-fetched",
    ),
    pytest.param(
        group("running", allocating=1),
        [instance("allocating")],
        ("Pending", "waiting", "ContainerCreating", False),
        id="running-no-running-instance",
    ),
    pytest.param(
        group("running", running=1),
        [instance("hibernating")],
        ("Pending", "waiting", "ContainerCreating", False),
        id="unknown-instance-state",
    ),
    pytest.param(
        group("succeeded"), [], ("Succeeded", "terminated", "Completed", False), id="succeeded"
    ),
    pytest.param(
        group("failed", description="Failed to pull image: unauthorized"),
        [],
        ("Failed", "terminated", "ErrImagePull", False),
        id="failed-pull",
    ),
    pytest.param(
        group("failed", description="Image compression failed"),
        [],
        ("Failed", "terminated", "ContainerGroupFailed", False),
        id="failed-other",
    ),
    pytest.param(
        group("failed"),
        [],
        ("Failed", "terminated", "ContainerGroupFailed", False),
        id="failed-no-description",
    ),
    pytest.param(
        group("stopped"),
        [],
        ("Failed", "terminated", CONTAINER_GROUP_STOPPED, False),
        id="stopped-behind-our-back",
    ),
    pytest.param(
        group("hibernating"),
        [],
        ("Pending", "waiting", "ContainerGroupStatusUnknown", False),
        id="unknown-group-status",
    ),
]


@pytest.mark.parametrize(("group_", "instances", "expected"), CASES)
def test_group_states_map_to_pod_status(
    group_: ContainerGroup | None,
    instances: list[ContainerGroupInstance],
    expected: tuple[str, str, str | None, bool],
) -> None:
    phase, state, reason, ready = expected
    status = pod_status(scheduled_pod(), group_, instances, now=NOW, node_ip=NODE_IP)

    kind, detail = state_of(status)
    assert (status["phase"], kind, detail.get("reason"), container_of(status)["ready"]) == (
        phase,
        state,
        reason,
        ready,
    )
    assert conditions_of(status) == {
        "Initialized": "True",
        "Ready": "True" if ready else "False",
        "ContainersReady": "True" if ready else "False",
        "PodScheduled": "True",
    }
    assert status["hostIP"] == NODE_IP
    assert status["hostIPs"] == [{"ip": NODE_IP}]
    assert "podIP" not in status
    assert "podIPs" not in status


@pytest.mark.parametrize(("group_", "instances", "expected"), CASES)
def test_an_unchanged_input_gives_a_byte_identical_status(
    group_: ContainerGroup | None,
    instances: list[ContainerGroupInstance],
    expected: tuple[str, str, str | None, bool],
) -> None:
    phase = expected[0]
    pod = scheduled_pod()
    first = pod_status(pod, group_, instances, now=NOW, node_ip=NODE_IP)
    again = pod_status(copy.deepcopy(pod), group_, instances, now=NOW, node_ip=NODE_IP)
    written = advance(pod, first)
    later = pod_status(written, group_, instances, now=LATER, node_ip=NODE_IP)

    assert json.dumps(again) == json.dumps(first)
    assert not status_patch_needed(written["status"], later)
    if phase not in ("Succeeded", "Failed"):
        assert json.dumps(later) == json.dumps(first)


@pytest.mark.parametrize(
    ("group_", "instances", "expected"),
    [
        pytest.param(
            None,
            [],
            "waiting for the container group to be created on SaladCloud",
            id="not-created",
        ),
        pytest.param(
            group("pending"),
            [],
            "container group pending: SaladCloud is preparing the image",
            id="pending",
        ),
        pytest.param(
            group("pending", description="Pulling image"),
            [],
            "container group pending: SaladCloud is preparing the image (Pulling image)",
            id="with-description",
        ),
        pytest.param(
            group("deploying"),
            [instance("allocating")],
            "container group deploying: allocating a SaladCloud machine",
            id="allocating",
        ),
        pytest.param(
            group("deploying"),
            [instance("downloading", progress=42.4)],
            "container group deploying: downloading the image (40%)",
            id="downloading",
        ),
        pytest.param(
            group("deploying"),
            [instance("creating")],
            "container group deploying: creating the container",
            id="creating",
        ),
        pytest.param(
            group("running"),
            [instance("stopping")],
            "container group running: stopping the instance",
            id="stopping",
        ),
        pytest.param(
            group("running"),
            [instance("stopping"), instance("allocating", instance_id=INSTANCE_B)],
            "container group running: allocating a SaladCloud machine",
            id="replacement-instance",
        ),
        pytest.param(
            group("deploying"),
            [instance("downloading", progress=100.0)],
            "container group deploying: downloading the image (100%)",
            id="download-done",
        ),
        pytest.param(
            group("running"),
            [instance("hibernating")],
            "container group running: instance state 'hibernating' is unknown to this node",
            id="unknown-instance-state",
        ),
        pytest.param(
            group("deploying"),
            [],
            "container group deploying: waiting for an instance",
            id="no-instance-yet",
        ),
        pytest.param(
            group("hibernating"),
            [],
            "SaladCloud reports container group status 'hibernating', which this node does "
            "not know; the pod keeps phase Pending",
            id="unknown-group-status",
        ),
    ],
)
def test_waiting_messages_say_what_saladcloud_is_doing(
    group_: ContainerGroup | None, instances: list[ContainerGroupInstance], expected: str
) -> None:
    status = pod_status(scheduled_pod(), group_, instances, now=NOW, node_ip=NODE_IP)

    assert state_of(status) == (
        "waiting",
        {"reason": state_of(status)[1]["reason"], "message": expected},
    )


def running_pod(instance_id: str = INSTANCE_A) -> dict[str, Any]:
    """A pod whose container has been running on ``instance_id`` since NOW."""
    pod = scheduled_pod()
    status = pod_status(
        pod,
        group("running", running=1),
        [instance("running", instance_id=instance_id)],
        now=NOW,
        node_ip=NODE_IP,
    )
    return advance(pod, status)


def test_a_running_container_keeps_its_start_time() -> None:
    pod = running_pod()

    status = pod_status(
        pod, group("running", running=1), [instance("running")], now=LATER, node_ip=NODE_IP
    )

    assert state_of(status) == ("running", {"startedAt": AT_NOW})
    assert container_of(status)["containerID"] == f"salad://{INSTANCE_A}"
    assert container_of(status)["restartCount"] == 0
    assert status["startTime"] == AT_NOW


def test_the_host_ip_is_kept_when_the_supervisor_moves_to_a_new_pod_ip() -> None:
    pod = running_pod()

    status = pod_status(
        pod, group("running", running=1), [instance("running")], now=LATER, node_ip="10.9.9.9"
    )

    assert status["hostIP"] == NODE_IP
    assert status["hostIPs"] == [{"ip": NODE_IP}]


def test_a_running_pod_whose_instance_is_reallocated_stays_running_but_not_ready() -> None:
    pod = running_pod()

    status = pod_status(
        pod,
        group("running", allocating=1),
        [instance("allocating", instance_id=INSTANCE_B)],
        now=LATER,
        node_ip=NODE_IP,
    )

    assert status["phase"] == "Running"
    assert conditions_of(status)["Ready"] == "False"
    container = container_of(status)
    assert state_of(status)[0] == "waiting"
    assert (container["ready"], container["started"], container["restartCount"]) == (
        False,
        False,
        0,
    )
    assert container["containerID"] == f"salad://{INSTANCE_A}"
    assert container["lastState"]["terminated"] == {
        "exitCode": 137,
        "reason": "ContainerStatusUnknown",
        "message": "the SaladCloud instance stopped (reallocated, restarted or exited); "
        "SaladCloud does not report why or with which exit code",
        "startedAt": AT_NOW,
        "finishedAt": AT_LATER,
        "containerID": f"salad://{INSTANCE_A}",
    }


def test_the_restart_count_grows_when_a_new_instance_runs_after_a_stop() -> None:
    pod = running_pod()
    stopped = pod_status(
        pod,
        group("running"),
        [instance("creating", instance_id=INSTANCE_B)],
        now=LATER,
        node_ip=NODE_IP,
    )
    pod = advance(pod, stopped)
    final = LATER + timedelta(minutes=1)

    status = pod_status(
        pod,
        group("running", running=1),
        [instance("running", instance_id=INSTANCE_B)],
        now=final,
        node_ip=NODE_IP,
    )

    container = container_of(status)
    assert container["restartCount"] == 1
    assert container["containerID"] == f"salad://{INSTANCE_B}"
    assert state_of(status) == ("running", {"startedAt": "2025-01-02T03:12:05Z"})
    assert container["lastState"] == stopped["containerStatuses"][0]["lastState"]


def test_the_restart_count_grows_when_another_instance_takes_over_between_two_looks() -> None:
    pod = running_pod()

    status = pod_status(
        pod,
        group("running", running=1),
        [instance("running", instance_id=INSTANCE_B)],
        now=LATER,
        node_ip=NODE_IP,
    )

    container = container_of(status)
    assert (container["restartCount"], container["containerID"]) == (1, f"salad://{INSTANCE_B}")
    assert container["lastState"]["terminated"]["containerID"] == f"salad://{INSTANCE_A}"


def test_the_same_instance_running_again_after_a_restart_counts_as_a_restart() -> None:
    pod = running_pod()
    pod = advance(
        pod, pod_status(pod, group("running"), [instance("creating")], now=LATER, node_ip=NODE_IP)
    )

    status = pod_status(
        pod, group("running", running=1), [instance("running")], now=LATER, node_ip=NODE_IP
    )

    assert container_of(status)["restartCount"] == 1


def test_the_running_instance_we_already_know_is_preferred() -> None:
    pod = running_pod(INSTANCE_B)
    both = [
        instance("running", instance_id=INSTANCE_A),
        instance("running", instance_id=INSTANCE_B),
    ]

    status = pod_status(pod, group("running", running=2), both, now=LATER, node_ip=NODE_IP)

    assert container_of(status)["containerID"] == f"salad://{INSTANCE_B}"
    assert container_of(status)["restartCount"] == 0


def test_an_unknown_group_status_keeps_a_running_pod_running_and_says_so() -> None:
    status = pod_status(running_pod(), group("hibernating"), [], now=LATER, node_ip=NODE_IP)

    assert status["phase"] == "Running"
    assert state_of(status)[1]["message"].endswith("the pod keeps phase Running")


def test_a_pending_group_never_sends_a_running_pod_back_to_pending() -> None:
    status = pod_status(running_pod(), group("pending"), [], now=LATER, node_ip=NODE_IP)

    assert status["phase"] == "Running"


def test_succeeded_keeps_when_the_container_started() -> None:
    status = pod_status(running_pod(), group("succeeded"), [], now=LATER, node_ip=NODE_IP)

    assert status["phase"] == "Succeeded"
    assert state_of(status) == (
        "terminated",
        {
            "exitCode": 0,
            "reason": "Completed",
            "message": "the container group succeeded",
            "startedAt": AT_NOW,
            "finishedAt": AT_LATER,
            "containerID": f"salad://{INSTANCE_A}",
        },
    )
    assert status["conditions"][1] == {
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": AT_LATER,
        "reason": "PodCompleted",
        "message": None,
    }


def test_a_failed_group_names_the_image_pull_problem() -> None:
    status = pod_status(
        scheduled_pod(),
        group("failed", description="Failed to pull image: unauthorized"),
        [],
        now=NOW,
        node_ip=NODE_IP,
    )

    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "ErrImagePull",
        "Failed to pull image: unauthorized",
    )
    assert state_of(status)[1]["exitCode"] == 128


def test_a_group_stopped_outside_kubernetes_fails_the_pod() -> None:
    status = pod_status(running_pod(), group("stopped"), [], now=LATER, node_ip=NODE_IP)

    assert (status["phase"], status["reason"]) == ("Failed", CONTAINER_GROUP_STOPPED)
    assert "outside Kubernetes" in status["message"]
    assert state_of(status)[1]["exitCode"] == 137


def test_a_stopped_group_of_a_pod_being_deleted_ends_it_normally() -> None:
    pod = running_pod()
    pod["metadata"]["deletionTimestamp"] = AT_LATER

    status = pod_status(pod, group("stopped"), [], now=LATER, node_ip=NODE_IP)

    assert status["phase"] == "Succeeded"
    assert state_of(status)[1]["reason"] == "Completed"


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
@pytest.mark.parametrize(
    "group_",
    [
        pytest.param(None, id="no-group"),
        pytest.param(group("running", running=1), id="running"),
        pytest.param(group("pending"), id="pending"),
        pytest.param(group("stopped"), id="stopped"),
    ],
)
def test_terminal_phases_are_final(phase: str, group_: ContainerGroup | None) -> None:
    final = {
        "phase": phase,
        "reason": "Whatever",
        "containerStatuses": [{"name": "app", "ready": False}],
    }
    pod = make_pod(status=final)

    assert pod_status(pod, group_, [instance("running")], now=LATER, node_ip=NODE_IP) == final
    assert failed_status(pod, CONTAINER_GROUP_DELETED, "gone", LATER) == final
    assert terminated_status(pod, LATER) == final
    assert (
        pending_status(pod, CREATE_CONTAINER_CONFIG_ERROR, "x", now=LATER, node_ip=NODE_IP) == final
    )


def test_the_image_id_is_the_resolved_image_hash() -> None:
    status = pod_status(
        scheduled_pod(),
        group("running", running=1, image_hash=HASH),
        [instance("running")],
        now=NOW,
        node_ip=NODE_IP,
    )

    assert container_of(status)["imageID"] == HASH
    assert container_of(status)["image"] == "ghcr.io/acme/app:1.0"


def test_conditions_keep_their_transition_time_until_their_status_changes() -> None:
    pod = scheduled_pod()
    pending = pod_status(pod, group("pending"), [], now=NOW, node_ip=NODE_IP)
    pod = advance(pod, pending)
    running = pod_status(
        pod, group("running", running=1), [instance("running")], now=LATER, node_ip=NODE_IP
    )

    times = {
        condition["type"]: condition["lastTransitionTime"] for condition in running["conditions"]
    }
    assert times == {
        "Initialized": AT_NOW,
        "Ready": AT_LATER,
        "ContainersReady": AT_LATER,
        "PodScheduled": SCHEDULED_AT,
    }


def test_a_condition_that_becomes_true_loses_its_old_reason() -> None:
    pod = advance(
        scheduled_pod(), pod_status(scheduled_pod(), group("pending"), [], now=NOW, node_ip=NODE_IP)
    )
    status = pod_status(
        pod, group("running", running=1), [instance("running")], now=LATER, node_ip=NODE_IP
    )

    ready = advance(pod, status)["status"]["conditions"]
    assert {"type": "Ready", "status": "True", "lastTransitionTime": AT_LATER} in ready


@pytest.mark.parametrize(
    ("gate_condition", "ready", "message"),
    [
        pytest.param(
            None,
            "False",
            'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
            id="gate-missing",
        ),
        pytest.param(
            "False",
            "False",
            'the status of pod readiness gate "example.com/lb" is not "True", but False',
            id="gate-false",
        ),
        pytest.param("True", "True", None, id="gate-true"),
    ],
)
def test_readiness_gates_hold_ready_back_and_are_left_alone(
    gate_condition: str | None, ready: str, message: str | None
) -> None:
    pod = scheduled_pod(spec={"readinessGates": [{"conditionType": "example.com/lb"}]})
    if gate_condition is not None:
        pod["status"]["conditions"].append({"type": "example.com/lb", "status": gate_condition})

    status = pod_status(
        pod,
        group("running", running=1),
        [instance("running", ready=True)],
        now=NOW,
        node_ip=NODE_IP,
    )

    by_type = {condition["type"]: condition for condition in status["conditions"]}
    assert set(by_type) == {"Initialized", "Ready", "ContainersReady", "PodScheduled"}
    assert by_type["ContainersReady"]["status"] == "True"
    assert (by_type["Ready"]["status"], by_type["Ready"]["message"]) == (ready, message)


@pytest.mark.parametrize(
    ("pod", "exit_code"),
    [
        pytest.param(scheduled_pod(), 128, id="never-ran"),
        pytest.param(running_pod(), 137, id="was-running"),
    ],
)
def test_failed_status_ends_the_pod_with_the_reason(pod: dict[str, Any], exit_code: int) -> None:
    status = failed_status(
        pod, CONTAINER_GROUP_DELETED, "the container group was deleted outside Kubernetes", LATER
    )

    assert (status["phase"], status["reason"]) == ("Failed", CONTAINER_GROUP_DELETED)
    kind, terminated = state_of(status)
    assert (kind, terminated["reason"], terminated["exitCode"]) == (
        "terminated",
        CONTAINER_GROUP_DELETED,
        exit_code,
    )
    assert conditions_of(status)["Ready"] == "False"


def test_a_refusal_becomes_a_failed_pod_naming_the_field() -> None:
    message = "spec.initContainers: init containers are not supported"

    status = failed_status(scheduled_pod(), "UnsupportedPodFeature", message, NOW)

    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed",
        "UnsupportedPodFeature",
        message,
    )
    assert status["startTime"] == AT_NOW


def test_a_retryable_refusal_keeps_the_pod_pending_like_the_kubelet() -> None:
    message = 'spec.containers[0].env[0].valueFrom.secretKeyRef: secret "db" not found'

    status = pending_status(
        scheduled_pod(), CREATE_CONTAINER_CONFIG_ERROR, message, now=NOW, node_ip=NODE_IP
    )

    assert status["phase"] == "Pending"
    assert state_of(status) == (
        "waiting",
        {"reason": CREATE_CONTAINER_CONFIG_ERROR, "message": message},
    )


@pytest.mark.parametrize(
    ("pod", "phase", "reason", "exit_code"),
    [
        pytest.param(running_pod(), "Succeeded", "Completed", 0, id="container-ran"),
        pytest.param(scheduled_pod(), "Failed", "Error", 137, id="never-ran"),
    ],
)
def test_terminated_status_ends_a_deleted_pod(
    pod: dict[str, Any], phase: str, reason: str, exit_code: int
) -> None:
    status = terminated_status(pod, LATER)

    assert status["phase"] == phase
    kind, terminated = state_of(status)
    assert (kind, terminated["reason"], terminated["exitCode"]) == ("terminated", reason, exit_code)
    assert container_of(status)["ready"] is False


def test_a_changed_status_needs_a_patch() -> None:
    pod = running_pod()

    status = pod_status(
        pod,
        group("running", running=1),
        [instance("running", ready=False)],
        now=LATER,
        node_ip=NODE_IP,
    )

    assert status_patch_needed(pod["status"], status)


def test_a_timestamp_without_time_zone_is_taken_as_utc() -> None:
    status = pod_status(scheduled_pod(), None, [], now=NOW.replace(tzinfo=None), node_ip=NODE_IP)

    assert status["startTime"] == AT_NOW
