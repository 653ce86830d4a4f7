"""What the chart renders to keep salad-vk to its own: Secret reads where nodes allow
pods from, the release identity on its Nodes, the admission policies, the
NetworkPolicy."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest

from config.kube_names import check_label_value
from config.settings import ProcessSettings
from supervisor.cli import build_parser

from .chart import TENANTS, VALUE_SETS, node, notes, of_kind, one, render
from .release import managed_by
from .test_chart_render import container, grants

ONE_NODE = VALUE_SETS["one node"]


def variables(policy: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


# --- Secret and ConfigMap reads ---------------------------------------------------------------


def test_secret_reads_are_granted_by_roles_in_exactly_the_namespaces_nodes_allow() -> None:
    values = {
        "nodeDefaults": {"allowedNamespaces": ["ml-jobs", "ml-batch"]},
        "nodes": [
            node("salad-a", "team-a"),
            node("salad-b", "team-b", allowedNamespaces=["research", "ml-jobs"]),
        ],
    }
    objects = render(values, release="rel", namespace="ops")

    roles = [r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-references")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml-batch", "ml-jobs", "research"]
    for role in roles:
        assert grants(role["rules"]) == {("", "secrets", "get"), ("", "configmaps", "get")}
        binding = next(
            b
            for b in of_kind(objects, "RoleBinding")
            if b["metadata"]["namespace"] == role["metadata"]["namespace"]
        )
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rel-salad-vk", "namespace": "ops"}
        ]
    cluster_wide = grants(one(objects, "ClusterRole")["rules"])
    assert not {("", "secrets", "get"), ("", "configmaps", "get")} & cluster_wide


def test_a_node_serving_every_namespace_needs_cluster_wide_reads_asked_for() -> None:
    values = {
        "nodeDefaults": {},
        "nodes": [node("salad-a", "team-a", allowedNamespaces=["ml"]), node("salad-b", "team-b")],
    }
    with pytest.raises(helm.HelmRenderError) as refused:
        render(values)
    assert "nodes[1] (salad-b) has no allowedNamespaces" in str(refused.value)
    assert "rbac.clusterWideSecretAccess: true" in str(refused.value)

    objects = render({**values, "rbac": {"clusterWideSecretAccess": True}})
    assert {("", "secrets", "get"), ("", "configmaps", "get")} <= grants(
        one(objects, "ClusterRole")["rules"]
    )
    assert not [
        r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-references")
    ]


def test_a_namespace_selector_grants_reading_namespaces_and_nothing_else_does() -> None:
    def namespace_rule(values: dict[str, Any]) -> dict[str, Any]:
        rules = one(render(values), "ClusterRole")["rules"]
        (rule,) = [r for r in rules if "namespaces" in r.get("resources", [])]
        return dict(rule)

    assert namespace_rule(ONE_NODE)["resourceNames"] == ["kube-system"]
    selected = {
        "nodeDefaults": TENANTS,
        "nodes": [node("salad-a", "team-a", namespaceSelector={"matchLabels": {"t": "a"}})],
    }
    assert namespace_rule(selected) == {
        "apiGroups": [""],
        "resources": ["namespaces"],
        "verbs": ["get"],
    }


# --- the release's identity on its Nodes and Leases -------------------------------------------


def test_the_process_labels_its_objects_with_the_identity_the_write_policy_checks() -> None:
    objects = render(ONE_NODE, release="rel", namespace="ops")
    args = build_parser().parse_args(container(objects)["args"])
    settings = ProcessSettings.from_namespace(args, {})

    assert settings.managed_by == managed_by(objects) == "ops.rel-salad-vk"
    writes = one(objects, "ValidatingAdmissionPolicy", "-writes")
    assert variables(writes)["managedBy"] == '"ops.rel-salad-vk"'


def test_a_long_release_identity_is_hashed_into_one_label_value() -> None:
    first = managed_by(render(ONE_NODE, release="r" * 50, namespace="n" * 40))
    second = managed_by(render(ONE_NODE, release="r" * 50, namespace="n" * 41))

    assert check_label_value(first) == first and len(first) <= 63
    assert first != second


# --- the write policy ---------------------------------------------------------------------------


def test_the_write_policy_binds_the_release_service_account_and_its_nodes() -> None:
    values = {**VALUE_SETS["nodes sharing one existing Secret"]}
    values["admissionPolicy"] = {"extraNodeNames": ["salad-acme-old"]}
    objects = render(values, release="rel", namespace="ops")
    writes = one(objects, "ValidatingAdmissionPolicy", "-writes")

    (condition,) = writes["spec"]["matchConditions"]
    assert condition["expression"] == (
        'request.userInfo.username == "system:serviceaccount:ops:rel-salad-vk"'
    )
    # `helm template` cannot look up the Nodes being drained: only values, and the
    # names given for them.
    assert variables(writes)["nodes"] == (
        '["salad-acme-a","salad-acme-b","salad-acme-c","salad-acme-old"]'
    )
    assert writes["spec"]["failurePolicy"] == "Fail"
    binding = one(objects, "ValidatingAdmissionPolicyBinding", "-writes")
    assert binding["spec"] == {
        "policyName": writes["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    covered = {
        resource
        for rule in writes["spec"]["matchConstraints"]["resourceRules"]
        for resource in rule["resources"]
    }
    assert covered == {"nodes", "nodes/status", "leases", "pods", "pods/*"}


def test_both_policies_are_on_by_default_and_each_can_be_turned_off() -> None:
    names = {o["metadata"]["name"] for o in of_kind(render(ONE_NODE), "ValidatingAdmissionPolicy")}
    assert {re.sub(r".*-", "", n) for n in names} == {"writes", "pods"}

    off = render(VALUE_SETS["admission policies off"])
    assert not of_kind(off, "ValidatingAdmissionPolicy")
    assert not of_kind(off, "ValidatingAdmissionPolicyBinding")


def test_the_pod_policy_applies_to_pods_tolerating_the_provider_taint_or_naming_a_node() -> None:
    objects = render(VALUE_SETS["nodes sharing one existing Secret"])
    pods = one(objects, "ValidatingAdmissionPolicy", "-pods")

    (condition,) = pods["spec"]["matchConditions"]
    assert "'virtual-kubelet.io/provider'" in condition["expression"]
    assert '["salad-acme-a","salad-acme-b","salad-acme-c"]' in condition["expression"]
    assert pods["spec"]["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}
    ]
    warn = render({**ONE_NODE, "podAdmissionPolicy": {"validationActions": ["Warn"]}})
    binding = one(warn, "ValidatingAdmissionPolicyBinding", "-pods")
    assert binding["spec"]["validationActions"] == ["Warn"]


# --- the NetworkPolicy ---------------------------------------------------------------------------


def test_no_network_policy_unless_asked_for() -> None:
    assert not of_kind(render(ONE_NODE), "NetworkPolicy")


def test_metrics_are_admitted_only_from_the_selected_peers() -> None:
    objects = render(VALUE_SETS["NetworkPolicy, egress restricted"])
    spec = one(objects, "NetworkPolicy")["spec"]

    ingress, kubelet_api = spec["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    # kubectl logs: the API server connects from its own addresses, so the kubelet API
    # port is open to any source unless its peers are given (it authenticates itself).
    assert kubelet_api == {"ports": [{"port": 10250, "protocol": "TCP"}]}
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert (
        spec["podSelector"]["matchLabels"]
        == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    enabled = {**ONE_NODE, "networkPolicy": {"enabled": True}}
    plain, _ = one(render(enabled), "NetworkPolicy")["spec"]["ingress"]
    assert plain["from"] == [{"podSelector": {}}]  # the release namespace only
    peers = [{"ipBlock": {"cidr": "10.0.0.5/32"}}]
    narrowed = {**enabled, "networkPolicy": {"enabled": True, "kubeletApi": {"from": peers}}}
    _, kubelet_only = one(render(narrowed), "NetworkPolicy")["spec"]["ingress"]
    assert kubelet_only["from"] == peers
    assert one(render(enabled), "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress"]


def test_restricted_egress_reaches_dns_the_api_server_and_saladcloud_only() -> None:
    spec = one(render(VALUE_SETS["NetworkPolicy, egress restricted"]), "NetworkPolicy")["spec"]

    assert spec["policyTypes"] == ["Ingress", "Egress"]
    dns, api, salad, extra = spec["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert api == {
        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    }
    assert salad["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]
    assert salad["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert extra["ports"] == [{"port": 3128}]


def test_restricted_egress_without_the_api_server_is_refused() -> None:
    values = {**ONE_NODE, "networkPolicy": {"enabled": True, "egress": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match=re.escape("networkPolicy.egress.apiServer")):
        render(values)


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "says"),
    [
        pytest.param(
            {"saladApiUrl": "http://api.salad.com/api/public"}, "/saladApiUrl", id="http url"
        ),
        pytest.param(
            {"nodes": [node("salad-a", "team-a", saladApiUrl="http://10.0.0.5/api/public")]},
            "/nodes/0/saladApiUrl",
            id="a node's http url",
        ),
        pytest.param(
            {"nodeDefaults": {"allowedNamespaces": []}},
            "/nodeDefaults/allowedNamespaces",
            id="no allowed namespace",
        ),
        pytest.param(
            {"nodeDefaults": {"allowedNamespaces": ["Team_A"]}},
            "/nodeDefaults/allowedNamespaces/0",
            id="not a namespace name",
        ),
        pytest.param(
            {
                "nodeDefaults": {
                    "namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}
                }
            },
            "/nodeDefaults/namespaceSelector/matchExpressions/0/operator",
            id="unknown selector operator",
        ),
        pytest.param(
            {"podAdmissionPolicy": {"validationActions": ["Block"]}},
            "/podAdmissionPolicy/validationActions/0",
            id="unknown validation action",
        ),
    ],
)
def test_values_schema_refuses(values: dict[str, Any], says: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render(values)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8787/api/public", "http://localhost:8787/api/public", "http://[::1]:8787"],
)
def test_values_schema_accepts_plain_http_to_loopback(url: str) -> None:
    assert render({**ONE_NODE, "saladApiUrl": url})


def test_notes_say_where_secrets_are_read_and_which_policies_are_in_force() -> None:
    namespaced = notes(VALUE_SETS["five nodes"])
    assert "read in, these namespaces only:\ndefault, kube-public." in namespaced
    assert "-writes)" in namespaced and "-pods)" in namespaced
    assert "admissionPolicy.extraNodeNames" in namespaced

    everywhere = notes(VALUE_SETS["Secret reads cluster-wide, namespaces selected by label"])
    assert "may read them in EVERY namespace" in everywhere
    assert "-writes)" not in notes(VALUE_SETS["admission policies off"])
