"""The simulator's model of a container group over simulated time (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.saladcloud.simulator import lifecycle
from nodes.saladcloud.simulator.lifecycle import Group
from nodes.saladcloud.simulator.options import ExitRule

from .builders import DEPLOYED, body


def make_group(
    *,
    name: str = "pod-1",
    seed: int = 0,
    fail: tuple[str, ...] = (),
    exits: tuple[ExitRule, ...] = (),
    interrupt_rate: float = 0.0,
    **spec: Any,
) -> Group:
    return Group(
        organization="acme",
        project="demo",
        name=name,
        spec=body(name, **spec),
        created=0.0,
        seed=seed,
        fail_patterns=fail,
        exit_rules=exits,
        interrupt_rate=interrupt_rate,
    )


def states(group: Group) -> list[str]:
    return [i.state for i in group.instances]


def test_a_new_group_prepares_then_deploys_then_runs_one_ready_instance() -> None:
    group = make_group()
    seen: list[tuple[str, tuple[str, ...]]] = []

    for second in range(int(DEPLOYED) + 2):
        group.advance(float(second))
        snapshot = (group.status, tuple(states(group)))
        if not seen or seen[-1] != snapshot:
            seen.append(snapshot)

    assert seen == [
        ("pending", ()),
        ("deploying", ("allocating",)),
        ("deploying", ("downloading",)),
        ("deploying", ("creating",)),
        ("running", ("running",)),
    ]
    assert group.counts() == {
        "allocating_count": 0,
        "creating_count": 0,
        "running_count": 1,
        "stopping_count": 0,
    }
    [instance] = group.instances
    assert instance.ready_at is not None and instance.ready_at <= DEPLOYED
    assert instance.machine_id


def test_preparing_takes_the_documented_time() -> None:
    group = make_group()

    group.advance(0.8 * lifecycle.PREPARE - 0.01)
    assert group.status == "pending"
    group.advance(1.2 * lifecycle.PREPARE)
    assert group.status == "deploying"


def test_a_readiness_probe_delays_ready() -> None:
    probe = {
        "tcp": {"port": 80},
        "failure_threshold": 3,
        "initial_delay_seconds": 120,
        "period_seconds": 1,
        "success_threshold": 1,
        "timeout_seconds": 1,
    }
    group = make_group(readiness_probe=probe)
    group.advance(DEPLOYED)
    [instance] = group.instances

    assert instance.state == "running"
    assert instance.ready_at == pytest.approx(instance.since + 120)


def test_without_autostart_a_prepared_group_is_stopped_until_started() -> None:
    group = make_group(autostart_policy=False)
    group.advance(DEPLOYED)
    assert group.status == "stopped"
    assert group.instances == []

    group.start(DEPLOYED)
    assert group.status == "deploying"
    group.advance(2 * DEPLOYED)
    assert group.status == "running"


def test_stop_is_immediate_and_instances_drain_through_stopping() -> None:
    group = make_group()
    group.advance(DEPLOYED)

    group.stop(DEPLOYED)

    assert group.status == "stopped"
    assert states(group) == ["stopping"]
    assert group.counts()["stopping_count"] == 1
    group.advance(DEPLOYED + 1.2 * lifecycle.STOP)
    assert group.instances == []
    assert group.run_finished == DEPLOYED


def test_start_after_stop_deploys_without_preparing_again() -> None:
    group = make_group()
    group.advance(DEPLOYED)
    group.stop(DEPLOYED)
    group.advance(DEPLOYED + 20)

    group.start(DEPLOYED + 20)

    assert group.status == "deploying"
    assert states(group) == ["allocating"]
    assert group.run_started == DEPLOYED + 20


def test_an_image_that_cannot_be_pulled_fails_the_group_while_preparing() -> None:
    group = make_group(
        fail=("ghcr.io/acme/broken:*",),
        container={"image": "ghcr.io/acme/broken:v1", "resources": {"cpu": 1, "memory": 1024}},
    )

    group.advance(DEPLOYED)

    assert group.status == "failed"
    assert group.description is not None and "ghcr.io/acme/broken:v1" in group.description
    assert group.instances == []
    assert [e.name for e in group.system_events] == ["Image Pull Failed"]


def test_a_failed_group_recovers_when_its_image_is_fixed() -> None:
    bad = {"image": "broken", "resources": {"cpu": 1, "memory": 1024}}
    group = make_group(fail=("broken",), container=bad)
    group.advance(DEPLOYED)

    fixed = {**group.spec, "container": {**bad, "image": "nginx:1.27"}}
    group.patch(fixed, DEPLOYED)

    assert group.status == "pending"
    group.advance(3 * DEPLOYED)
    assert group.status == "running"


@pytest.mark.parametrize(
    ("policy", "code", "status", "instance_states", "same_machine"),
    [
        ("always", 0, "running", ["creating"], True),
        ("always", 1, "running", ["allocating"], False),
        ("on_failure", 1, "running", ["allocating"], False),
        ("on_failure", 0, "succeeded", [], None),
        ("never", 0, "succeeded", [], None),
        # Not failed: a group fails only while Preparing (deployment-lifecycle docs).
        ("never", 137, "running", [], None),
    ],
)
def test_an_exit_follows_the_restart_policy(
    policy: str, code: int, status: str, instance_states: list[str], same_machine: bool | None
) -> None:
    group = make_group(restart_policy=policy)
    group.advance(DEPLOYED)
    [instance] = group.instances
    machine = instance.machine_id

    group.exit(instance, code, DEPLOYED)

    assert group.status == status
    assert states(group) == instance_states
    assert any(e.name == f"Instance Exited:{code}" for e in group.system_events)
    if same_machine is not None:
        assert (group.instances[0].machine_id == machine) is same_machine
    if status != "running":
        assert group.run_finished == DEPLOYED


def test_an_exit_rule_makes_matching_containers_exit_after_running_that_long() -> None:
    group = make_group(exits=(ExitRule("nginx:*", 3, 30.0),), restart_policy="never")
    group.advance(DEPLOYED)
    [instance] = group.instances
    exit_at = instance.since + 30.0

    group.advance(exit_at - 0.01)
    assert states(group) == ["running"]
    group.advance(exit_at)
    assert states(group) == []
    assert group.system_events[-1].name == "Instance Exited:3"


def test_a_non_zero_exit_under_never_is_not_a_failed_group_and_is_not_restarted() -> None:
    """SaladCloud: "A container group can only fail if there was a problem in the
    Preparing process". The exit is told by its system event, not by the status."""
    group = make_group(restart_policy="never", replicas=2)
    group.advance(DEPLOYED)
    first, second = group.instances

    group.exit(first, 1, DEPLOYED)
    group.exit(second, 0, DEPLOYED + 1)
    group.patch({**group.spec, "display_name": "Renamed"}, DEPLOYED + 2)
    group.advance(3 * DEPLOYED)

    assert group.status == "running", "not failed, and not succeeded after an error"
    assert group.description is None
    assert states(group) == [], "under never, an exited instance is not replaced"
    assert [e.name for e in group.system_events if "Exited" in e.name] == [
        "Instance Exited:1",
        "Instance Exited:0",
    ]


@pytest.mark.parametrize(("action", "event"), [("restart", "Restarted"), ("recreate", "Recreated")])
def test_restart_and_recreate_before_a_machine_change_nothing(action: str, event: str) -> None:
    group = make_group()
    group.advance(lifecycle.PREPARE * 1.2 + 1)
    [instance] = group.instances
    assert instance.state == "allocating" and instance.machine_id == ""

    group.instance_action(instance, action, group.updated)
    assert instance.state == "allocating", "no container to act on yet"
    group.advance(3 * DEPLOYED)

    assert instance.state == "running"
    assert instance.machine_id != ""
    started = [e for e in group.system_events if e.name == "Instance Started"]
    assert [e.machine_id for e in started] == [instance.machine_id]
    assert not [e for e in group.system_events if e.name == f"Instance {event}"]


@pytest.mark.parametrize(("action", "event"), [("restart", "Restarted"), ("recreate", "Recreated")])
def test_restart_and_recreate_start_the_container_again_on_the_same_machine(
    action: str, event: str
) -> None:
    group = make_group()
    group.advance(DEPLOYED)
    [instance] = group.instances
    machine = instance.machine_id

    group.instance_action(instance, action, DEPLOYED)
    assert instance.state == "creating"
    group.advance(2 * DEPLOYED)

    assert (instance.state, instance.machine_id) == ("running", machine)
    names = [e.name for e in group.system_events]
    assert names[-2:] == [f"Instance {event}", "Instance Started"]
    assert all(e.machine_id == machine for e in group.system_events[-2:])


def test_an_interrupted_group_stays_running_with_no_running_instance() -> None:
    group = make_group()
    group.advance(DEPLOYED)
    [instance] = group.instances
    machine = instance.machine_id

    group.interrupt(instance, DEPLOYED)

    assert group.status == "running"
    assert group.counts()["running_count"] == 0
    assert [e.name for e in group.system_events[-2:]] == [
        "Instance Interrupted (Priority)",
        "Instance Reallocated",
    ]
    group.advance(3 * DEPLOYED)
    assert states(group) == ["running"]
    assert group.instances[0].machine_id != machine
    assert group.instances[0].id == instance.id


def test_interruptions_happen_at_the_configured_rate() -> None:
    group = make_group(interrupt_rate=3600.0)  # once a second on average

    group.advance(DEPLOYED + 600)

    interruptions = [e for e in group.system_events if e.name.startswith("Instance Interrupted")]
    assert len(interruptions) >= 3


def test_scaling_adds_and_removes_instances() -> None:
    group = make_group()
    group.advance(DEPLOYED)

    group.patch({**group.spec, "replicas": 3}, DEPLOYED)
    assert states(group) == ["running", "allocating", "allocating"]
    assert group.version == 1, "replicas is not a new version"

    group.patch({**group.spec, "replicas": 1}, DEPLOYED + 1)
    assert states(group) == ["running", "stopping", "stopping"]


def test_a_container_change_is_a_new_version_rolled_out_to_the_instances() -> None:
    group = make_group()
    group.advance(DEPLOYED)
    changed = {**group.spec, "container": {**group.spec["container"], "image": "nginx:1.28"}}

    group.patch(changed, DEPLOYED)

    assert group.version == 2
    assert states(group) == ["downloading"]
    assert group.pending_change
    group.advance(3 * DEPLOYED)
    assert states(group) == ["running"]
    assert group.instances[0].version == 2
    assert not group.pending_change
    assert group.status == "running"


def test_delete_clears_everything_at_once() -> None:
    group = make_group()
    group.advance(DEPLOYED)

    group.delete(DEPLOYED)
    group.advance(10 * DEPLOYED)

    assert group.deleted
    assert group.instances == []


def test_the_same_seed_replays_the_same_history_and_another_seed_does_not() -> None:
    def history(seed: int) -> list[tuple[str, float, str | None]]:
        group = make_group(seed=seed, interrupt_rate=60.0)
        group.advance(2 * DEPLOYED)
        group.stop(2 * DEPLOYED)
        group.advance(3 * DEPLOYED)
        return [(e.name, e.time, e.instance_id) for e in group.system_events]

    assert history(7) == history(7)
    assert history(7) != history(8)


def test_a_group_brought_up_to_date_late_has_the_history_of_one_followed_all_along() -> None:
    # Why the simulator advances only the project a request is about: the others catch
    # up when asked, and nothing they show can tell.
    def shown(group: Group) -> tuple[object, ...]:
        events = [(e.name, e.time, e.instance_id) for e in group.system_events]
        instances = [(i.id, i.state, i.since) for i in group.instances]
        return group.status, group.updated, instances, events

    followed = make_group(seed=3, interrupt_rate=120.0, replicas=3)
    late = make_group(seed=3, interrupt_rate=120.0, replicas=3)
    for second in range(int(4 * DEPLOYED)):
        followed.advance(float(second))
    late.advance(float(int(4 * DEPLOYED) - 1))

    assert len(followed.system_events) > 5
    assert shown(late) == shown(followed)
