"""What the node does next for a pod, as a table: pod and group states in, action out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from nodes.ownership import CLUSTER_VAR, NAME_VAR, NAMESPACE_VAR, NODE_VAR, UID_VAR
from nodes.pod_decisions import (
    Circumstances,
    Confirm,
    Create,
    DeleteGroup,
    Finish,
    Listing,
    PodTrack,
    ReadInstances,
    WriteStatus,
    changed_since_refused,
    decide,
    pod_digest,
)
from nodes.saladcloud.models import ContainerGroup
from tests.translate.pods import UID, make_pod

GROUP = "default-web-7d9f8c6b5d-x2x7k-0a1b2c3d"
OTHER_UID = "99999999-9999-4999-8999-999999999999"
NOW = 1000.0
WHEN = Circumstances(
    now=NOW,
    wall=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    node_ip="10.0.0.7",
    poll_interval=10.0,
    delete_confirm_timeout=120.0,
)


def group(status: str = "running", *, owner: str = UID) -> ContainerGroup:
    marks = {
        NAMESPACE_VAR: "default",
        NAME_VAR: "web-7d9f8c6b5d-x2x7k",
        UID_VAR: owner,
        NODE_VAR: "salad-node",
        CLUSTER_VAR: "cluster-1",
    }
    return ContainerGroup.model_validate(
        {
            "id": "c0ffee00-0000-4000-8000-000000000000",
            "name": GROUP,
            "container": {
                "image": "ghcr.io/acme/app:1.0",
                "resources": {"cpu": 1, "memory": 1024},
                "environment_variables": marks,
            },
            "current_state": {
                "status": status,
                "start_time": "2025-01-02T03:00:10Z",
                "finish_time": "2025-01-02T03:00:10Z",
                "instance_status_counts": {
                    "allocating_count": 0,
                    "creating_count": 0,
                    "running_count": 1 if status == "running" else 0,
                    "stopping_count": 0,
                },
            },
        }
    )


def listing(*groups: ContainerGroup, sent_at: float = NOW - 1, complete: bool = True) -> Listing:
    return Listing({g.name: g for g in groups}, sent_at=sent_at, complete=complete)


def track(**state: Any) -> PodTrack:
    return PodTrack(uid=UID, group=GROUP, **state)


DELETING = {"deletionTimestamp": "2025-01-02T03:04:00Z"}


def pod(*, deleting: bool = False, phase: str | None = None, **kwargs: Any) -> dict[str, Any]:
    made = make_pod(status={"phase": phase} if phase else None, **kwargs)
    if deleting:
        made["metadata"].update(DELETING)
    return made


def kind(action: object) -> type | None:
    return None if action is None else type(action)


@pytest.mark.parametrize(
    ("case", "the_pod", "the_track", "the_listing", "expected"),
    [
        ("new pod, nothing listed: create", pod(), track(), listing(), Create),
        (
            "our group listed: show its status",
            pod(),
            track(created_at=1.0),
            listing(group()),
            WriteStatus,
        ),
        (
            "made by us, missing from a later list: ask by name",
            pod(),
            track(created_at=NOW - 5),
            listing(sent_at=NOW - 1),
            Confirm,
        ),
        (
            "made after the list was sent: its status from the create's answer, no GET",
            pod(),
            track(created_at=NOW - 0.5, fetched=group(), fetched_at=NOW - 0.5),
            listing(sent_at=NOW - 1),
            WriteStatus,
        ),
        (
            "another pod's group has our name: never adopted, never ours to delete",
            pod(phase="Failed"),
            track(),
            listing(group(owner=OTHER_UID)),
            None,
        ),
        (
            "finished pod with its group: delete it",
            pod(phase="Succeeded"),
            track(created_at=1.0),
            listing(group("stopped")),
            DeleteGroup,
        ),
        (
            "deleted pod whose group exists: delete it",
            pod(deleting=True),
            track(created_at=1.0),
            listing(group()),
            DeleteGroup,
        ),
        (
            "deleted pod that never had a group (complete list): remove it at once",
            pod(deleting=True),
            track(),
            listing(),
            Finish,
        ),
        (
            "deleted pod, a full list may hide the group: delete anyway",
            pod(deleting=True),
            track(),
            listing(complete=False),
            DeleteGroup,
        ),
        (
            "deleted pod whose name another pod's group holds: remove the pod, keep the group",
            pod(deleting=True),
            track(),
            listing(group(owner=OTHER_UID)),
            Finish,
        ),
        (
            "delete sent, gone from a later complete list: remove the pod",
            pod(deleting=True),
            track(created_at=1.0, delete_sent_at=NOW - 5),
            listing(sent_at=NOW - 1),
            Finish,
        ),
        (
            "delete sent, still listed: wait",
            pod(deleting=True),
            track(created_at=1.0, delete_sent_at=NOW - 5),
            listing(group(), sent_at=NOW - 1),
            None,
        ),
        (
            "delete sent long ago and never confirmed: remove the pod anyway",
            pod(deleting=True),
            track(created_at=1.0, delete_sent_at=NOW - 500),
            listing(group()),
            Finish,
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_next_action(
    case: str, the_pod: dict[str, Any], the_track: PodTrack, the_listing: Listing, expected: type
) -> None:
    assert kind(decide(the_pod, the_track, the_listing, WHEN)) is expected


def test_a_refused_pod_is_judged_again_at_once_when_it_changes() -> None:
    refused = pod(annotations={"salad.com/country-code": "us"})
    judged = track(judged=pod_digest(refused), waiting=("InvalidAnnotation", "…"))
    assert not changed_since_refused(refused, judged)
    fixed = pod(annotations={"salad.com/country-codes": "us"})
    assert changed_since_refused(fixed, judged)
    assert isinstance(decide(fixed, judged, listing(), WHEN), Create)


def test_a_running_group_shows_running_first_then_has_its_instances_read_for_readiness() -> None:
    probed = pod(container={"readinessProbe": {"httpGet": {"path": "/", "port": 80}}})
    first = decide(probed, track(created_at=1.0), listing(group()), WHEN)
    assert isinstance(first, WriteStatus), "what the list tells is shown at once"
    assert first.status["phase"] == "Running"
    conditions = {c["type"]: c["status"] for c in first.status["conditions"]}
    assert conditions["Ready"] == "False", "a readiness probe has not passed yet"
    shown = {**probed, "status": first.status}
    action = decide(shown, track(created_at=1.0), listing(group()), WHEN)
    assert isinstance(action, ReadInstances)
    fresh = track(created_at=1.0, instances_at=NOW - 1)
    assert decide(shown, fresh, listing(group()), WHEN) is None


def test_a_status_already_written_is_not_written_again() -> None:
    the_pod = pod()
    first = decide(the_pod, track(created_at=1.0), listing(group()), WHEN)
    assert isinstance(first, WriteStatus)
    version = str(the_pod["metadata"].get("resourceVersion"))
    written = track(created_at=1.0, written=(version, first.status))
    assert decide(the_pod, written, listing(group()), WHEN) is None
