"""The Node a virtual node registers, and why its Ready never follows SaladCloud."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from nodes.node_object import (
    SALAD_CONDITION,
    SaladHealth,
    node_conditions,
    node_manifest,
    node_status,
    status_changed,
    taints_with_unavailability,
)
from nodes.settings import MANAGED_BY_LABEL, UNAVAILABLE_TAINT_KEY, NodeSettings

SETTINGS = NodeSettings(name="salad-a", organization="acme", project="team-a", labels={"x": "y"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOWN = SaladHealth(False, "APIKeyRejected", "403")
UP = SaladHealth(True, "APIReachable", "ok")


def test_manifest_carries_the_labels_taint_and_provider_id_of_a_salad_node() -> None:
    node = node_manifest(SETTINGS)
    labels = node["metadata"]["labels"]
    assert labels["type"] == "virtual-kubelet"
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["kubernetes.io/hostname"] == "salad-a"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["node.kubernetes.io/exclude-from-external-load-balancers"] == "true"
    assert labels["salad.com/organization"] == "acme"
    assert labels["salad.com/project"] == "team-a"
    assert labels["x"] == "y"
    assert node["spec"]["taints"] == [
        {"key": "virtual-kubelet.io/provider", "value": "saladcloud", "effect": "NoSchedule"}
    ]
    assert node["spec"]["providerID"] == "salad://acme/team-a"


def test_the_managed_by_label_is_written_only_when_set_and_no_configured_label_replaces_it() -> (
    None
):
    assert MANAGED_BY_LABEL not in node_manifest(SETTINGS)["metadata"]["labels"]

    claimed = replace(
        SETTINGS, managed_by="ops.salad-vk", labels={MANAGED_BY_LABEL: "someone-else"}
    )
    assert node_manifest(claimed)["metadata"]["labels"][MANAGED_BY_LABEL] == "ops.salad-vk"


def test_status_reports_capacity_addresses_and_the_pod_limit_of_one_list() -> None:
    status = node_status(SETTINGS, UP, T0)
    assert status["capacity"]["pods"] == "100"
    assert status["allocatable"] == status["capacity"]
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"}], (
        "only the InternalIP: the API server would try a Hostname first, and nothing resolves it"
    )


@pytest.mark.parametrize("health", [UP, DOWN], ids=["reachable", "key-rejected"])
def test_ready_is_true_whatever_saladcloud_says(health: SaladHealth) -> None:
    conditions = {c["type"]: c for c in node_conditions(health, T0)}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "KubeletReady"
    assert conditions[SALAD_CONDITION]["status"] == ("True" if health.reachable else "False")
    assert conditions[SALAD_CONDITION]["reason"] == health.reason


def test_transition_time_moves_only_when_a_condition_changes_status() -> None:
    first = node_conditions(UP, T0)
    later = T0 + timedelta(minutes=5)
    same = {c["type"]: c for c in node_conditions(UP, later, first)}
    assert same[SALAD_CONDITION]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[SALAD_CONDITION]["lastHeartbeatTime"] == "2026-01-01T00:05:00Z"
    flipped = {c["type"]: c for c in node_conditions(DOWN, later, first)}
    assert flipped[SALAD_CONDITION]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_only_a_real_change_makes_the_status_worth_writing() -> None:
    written = node_status(SETTINGS, UP, T0)
    assert not status_changed(node_status(SETTINGS, UP, T0 + timedelta(seconds=30)), written)
    assert status_changed(node_status(SETTINGS, DOWN, T0), written)


def test_the_servers_spelling_of_a_quantity_is_no_change() -> None:
    written = node_status(SETTINGS, UP, T0)
    # The API server stores quantities canonically: "10000" comes back as "10k".
    stored = {
        **written,
        "capacity": {**written["capacity"], "cpu": "10k"},
        "allocatable": {**written["allocatable"], "nvidia.com/gpu": "10k"},
    }
    assert not status_changed(written, stored)
    assert status_changed(written, {**stored, "capacity": {**stored["capacity"], "pods": "99"}})


def test_the_outage_taint_is_added_and_removed_without_touching_others() -> None:
    others = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    added = taints_with_unavailability(others, unavailable=True)
    assert added == [
        *others,
        {"key": UNAVAILABLE_TAINT_KEY, "value": "true", "effect": "NoSchedule"},
    ]
    assert taints_with_unavailability(added, unavailable=True) is None
    assert taints_with_unavailability(added, unavailable=False) == others
    assert taints_with_unavailability(others, unavailable=False) is None
