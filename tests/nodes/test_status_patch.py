"""A status write is the smallest patch that gets the pod from old to new, or nothing."""

from nodes.status_patch import status_patch

RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
WAITING = {"waiting": {"reason": "ContainerCreating", "message": "allocating"}}


def test_an_identical_status_needs_no_write() -> None:
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "main", "state": RUNNING}],
    }
    assert status_patch(status, status) is None


def test_container_statuses_are_atomic_so_a_change_sends_the_whole_list() -> None:
    old = {"containerStatuses": [{"name": "main", "image": "x", "ready": False, "state": WAITING}]}
    new = {"containerStatuses": [{"name": "main", "image": "x", "ready": True, "state": RUNNING}]}
    assert status_patch(old, new) == new


def test_a_key_that_disappears_from_a_merged_map_is_nulled() -> None:
    old = {"conditions": [{"type": "Ready", "status": "False", "message": "waiting"}]}
    new = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert status_patch(old, new) == {
        "conditions": [{"type": "Ready", "status": "True", "message": None}]
    }


def test_conditions_of_others_are_left_alone_and_ours_diffed_by_type() -> None:
    old = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "example.com/gate", "status": "True"},
        ]
    }
    new = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert status_patch(old, new) == {
        "conditions": [{"type": "Ready", "status": "True", "reason": None}]
    }


def test_top_level_fields_we_do_not_set_are_not_deleted() -> None:
    old = {"phase": "Pending", "qosClass": "BestEffort"}
    assert status_patch(old, {"phase": "Running"}) == {"phase": "Running"}


def test_a_new_condition_is_sent_whole() -> None:
    new = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    assert status_patch({}, new) == new
