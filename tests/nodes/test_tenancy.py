"""Who may use a node: its namespaces, and the taints a pod must tolerate (pure rules)."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.settings import PROVIDER_TAINT, UNAVAILABLE_TAINT_KEY
from nodes.tenancy import selector_matches, tenancy_refusal, tolerates, untolerated_taint
from tests.manifests import TOLERATION
from tests.translate.pods import make_pod

GPU_TAINT = {"key": "team", "value": "a", "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        (TOLERATION, PROVIDER_TAINT, True),
        ({"key": PROVIDER_TAINT["key"], "operator": "Exists"}, PROVIDER_TAINT, True),
        ({"operator": "Exists"}, PROVIDER_TAINT, True),  # tolerates everything
        ({**TOLERATION, "value": "other"}, PROVIDER_TAINT, False),
        ({**TOLERATION, "effect": "NoExecute"}, PROVIDER_TAINT, False),
        ({"key": "team", "value": "a"}, GPU_TAINT, True),  # Equal is the default
        ({"key": "team", "value": "a", "operator": "Lt"}, GPU_TAINT, False),
        ({"key": "other", "operator": "Exists"}, GPU_TAINT, False),
        ({"value": "a"}, GPU_TAINT, False),  # an empty key only goes with Exists
    ],
)
def test_tolerations_match_as_in_kubernetes(
    toleration: dict[str, Any], taint: dict[str, Any], expected: bool
) -> None:
    assert tolerates(toleration, taint) is expected


def test_only_hard_configured_taints_count_never_the_unavailable_one() -> None:
    pod = make_pod(spec={"tolerations": [TOLERATION]})
    soft = {"key": "prefer", "effect": "PreferNoSchedule"}
    outage = {"key": UNAVAILABLE_TAINT_KEY, "value": "true", "effect": "NoSchedule"}
    assert untolerated_taint(pod, [PROVIDER_TAINT, soft, outage]) is None
    assert untolerated_taint(pod, [PROVIDER_TAINT, GPU_TAINT]) == GPU_TAINT
    assert untolerated_taint(make_pod(), [PROVIDER_TAINT]) == PROVIDER_TAINT


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "a", "x": "y"}, True),
        ({"matchLabels": {"team": "a"}}, {"team": "b"}, False),
        (
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]},
            {"team": "b"},
            True,
        ),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]},
            {"team": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"gpu": ""}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, {"gpu": ""}, False),
        (
            {"matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["1"]}]},
            {"gpu": "2"},
            False,
        ),  # unknown operators never widen a permission
    ],
)
def test_label_selectors_match_as_in_kubernetes(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected


def refusal_for(pod: dict[str, Any], **rules: Any) -> tuple[str, str] | None:
    values: dict[str, Any] = {
        "node": "salad-a",
        "allowed_namespaces": None,
        "namespace_selector": None,
        "namespace_labels": None,
        "taints": [PROVIDER_TAINT],
        **rules,
    }
    refusal = tenancy_refusal(pod, **values)
    return None if refusal is None else (refusal.reason, refusal.field)


TOLERANT = {"tolerations": [TOLERATION]}


def test_a_pod_of_an_allowed_namespace_that_tolerates_the_taints_may_use_the_node() -> None:
    pod = make_pod(namespace="team-a", spec=TOLERANT)
    assert refusal_for(pod, allowed_namespaces=frozenset({"team-a"})) is None
    assert (
        refusal_for(
            pod,
            namespace_selector={"matchLabels": {"team": "a"}},
            namespace_labels={"team": "a"},
        )
        is None
    )


def test_a_pod_of_another_namespace_is_refused() -> None:
    pod = make_pod(namespace="team-b", spec=TOLERANT)
    expected = ("NamespaceNotAllowed", "metadata.namespace")
    assert refusal_for(pod, allowed_namespaces=frozenset({"team-a"})) == expected
    selector = {"matchLabels": {"team": "a"}}
    assert refusal_for(pod, namespace_selector=selector, namespace_labels={"team": "b"}) == expected
    # A namespace that cannot be found matches no selector.
    assert refusal_for(pod, namespace_selector=selector, namespace_labels=None) == expected


def test_a_pod_that_named_its_node_without_tolerating_its_taints_is_refused() -> None:
    refused = tenancy_refusal(
        make_pod(namespace="team-a"),
        node="salad-a",
        allowed_namespaces=None,
        namespace_selector=None,
        namespace_labels=None,
        taints=[PROVIDER_TAINT],
    )
    assert refused is not None
    assert (refused.reason, refused.field) == ("TaintNotTolerated", "spec.tolerations")
    assert "virtual-kubelet.io/provider=saladcloud:NoSchedule" in refused.message
