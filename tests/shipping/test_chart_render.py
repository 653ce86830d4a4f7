"""The chart as Helm renders it: values checked, the projects file the process loads,
a pod that hot-reloads, and RBAC that grants exactly what the process calls."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

import supervisor
from config import ConfigError, ProcessSettings, load_projects
from config.schema import NodeDefaults, NodeEntry
from supervisor.cli import build_parser

from .chart import CHART, REPO, VALUE_SETS, Manifest, node, notes, of_kind, one, render
from .release import KEYS_DIR, mounted_projects_file

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())


def container(objects: list[Manifest]) -> dict[str, Any]:
    (only,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(only)


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    return dict(one(objects, "Deployment")["spec"]["template"]["spec"])


# --- Helm's own checks -------------------------------------------------------------------


@pytest.mark.parametrize("case", list(VALUE_SETS))
def test_the_chart_lints_without_warnings(case: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[case], strict=True, namespace="salad-system")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert (problems, report["errors"]) == ([], [])


def without(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != key}


REFUSED_BY_SCHEMA: dict[str, tuple[dict[str, Any], str]] = {
    "a node without project": (
        {"nodes": [without(node("salad-a", "team-a"), "project")]},
        "missing property 'project'",
    ),
    "a node without apiKeySecret": (
        {"nodes": [without(node("salad-a", "team-a"), "apiKeySecret")]},
        "missing property 'apiKeySecret'",
    ),
    "an API key source other than a Secret": (
        {"nodes": [{**node("salad-a", "team-a"), "apiKeyFile": "/keys/a"}]},
        "'apiKeyFile' not allowed",
    ),
    "an apiKeySecret without its key": (
        {"nodes": [{**node("salad-a", "team-a"), "apiKeySecret": {"name": "keys"}}]},
        "missing property 'key'",
    ),
    "an organization that is not a SaladCloud name": (
        {"nodes": [{**node("salad-a", "team-a"), "organization": "Acme Inc"}]},
        "/nodes/0/organization",
    ),
    "a node name that is not a DNS subdomain": (
        {"nodes": [node("Salad_A", "team-a")]},
        "/nodes/0/name",
    ),
    "Norway's country code unquoted, which YAML reads as false": (
        {"nodeDefaults": {"defaultCountryCodes": [False]}},
        "/nodeDefaults/defaultCountryCodes/0",
    ),
    "a misspelt top-level value": ({"node": []}, "'node' not allowed"),
    "an unknown log format": ({"logFormat": "yaml"}, "/logFormat"),
    "a drain that may not wait at all": ({"drainTimeoutSeconds": 0}, "/drainTimeoutSeconds"),
}


@pytest.mark.parametrize("case", list(REFUSED_BY_SCHEMA))
def test_values_schema_refuses(case: str) -> None:
    values, message = REFUSED_BY_SCHEMA[case]
    with pytest.raises(helm.HelmValuesError) as refused:
        render(values)
    assert message in str(refused.value)


REFUSED_BY_TEMPLATES: dict[str, tuple[dict[str, Any], str]] = {
    "two nodes of one name": (
        {"nodes": [node("salad-a", "team-a"), node("salad-a", "team-b")]},
        'node name "salad-a" is used twice',
    ),
    "two nodes on one project": (
        {"nodes": [node("salad-a", "team-a"), node("salad-b", "team-a")]},
        "would fight over its container groups",
    ),
    "the kubelet API on the metrics port": (
        {"metrics": {"port": 10250}},
        "kubelet.port (10250) must differ from metrics.port",
    ),
    "a termination grace the shutdown grace does not fit in": (
        {"shutdownGraceSeconds": 30, "terminationGracePeriodSeconds": 30},
        "must be larger than shutdownGraceSeconds",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_BY_TEMPLATES))
def test_rendering_refuses(case: str) -> None:
    values, message = REFUSED_BY_TEMPLATES[case]
    with pytest.raises(helm.HelmRenderError) as refused:
        render(values)
    assert message in str(refused.value)


def file_keys(model: type[Any]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_node_values_are_the_projects_files_node_keys_with_a_secret_for_the_key() -> None:
    node_schema = SCHEMA["properties"]["nodes"]["items"]
    assert set(node_schema["properties"]) == (
        file_keys(NodeEntry) - {"apiKeyFile", "apiKeyEnv"} | {"apiKeySecret"}
    )
    assert set(SCHEMA["properties"]["nodeDefaults"]["properties"]) == file_keys(NodeDefaults)


def test_chart_app_version_is_the_project_version_and_the_default_image_tag() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"] == supervisor.__version__
    image = container(render(VALUE_SETS["one node"]))["image"]
    assert image == f"salad-vk:{project['version']}"
    image = container(render(VALUE_SETS["five nodes"]))["image"]
    assert image == "registry.example.com/platform/salad-vk:0.1.0-rc1"


# --- the projects file ------------------------------------------------------------------


def test_the_projects_file_loads_in_the_process_with_keys_from_the_mounted_secrets(
    tmp_path: Path,
) -> None:
    values = VALUE_SETS["five nodes"]
    objects = render(values)
    for entry in values["nodes"]:
        secret = entry["apiKeySecret"]
        key_file = tmp_path / secret["name"] / secret["key"]
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(f"sk-{entry['project']}-0123456789abcdef\n")
    path = tmp_path / "projects.yaml"
    path.write_text(mounted_projects_file(objects, tmp_path))

    loaded = load_projects(path, {})

    assert loaded.api_rate_limit == 480
    by_name = loaded.nodes_by_name
    assert list(by_name) == [n["name"] for n in values["nodes"]]
    for entry in values["nodes"]:
        resolved = by_name[entry["name"]]
        assert (resolved.organization, resolved.project) == ("acme", entry["project"])
        assert resolved.api_key.get_secret_value() == f"sk-{entry['project']}-0123456789abcdef"
    p1, p2, p4 = by_name["salad-acme-p1"], by_name["salad-acme-p2"], by_name["salad-acme-p4"]
    assert p1.labels == {"team": "ml", "tier": "a"}
    assert p2.capacity["pods"] == "100" and p1.capacity["pods"] == "50"
    assert p2.default_gpu_classes == ("RTX 4090 (24 GB)", "RTX 3090 (24 GB)")
    assert p1.default_country_codes == ("us", "ca", "no")
    assert p1.default_priority == "batch"
    assert {t.key for t in p1.taints} == {"example.com/dedicated", "virtual-kubelet.io/provider"}
    assert {t.key for t in p4.taints} == {"example.com/dedicated"}
    assert p4.salad_api_url == "https://salad-proxy.example.com/api/public"
    assert by_name["salad-acme-p3"].rate_limit_share == 2


def test_with_no_nodes_the_projects_file_is_valid_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text(mounted_projects_file(render({}), tmp_path))
    assert load_projects(path, {}).nodes == ()


def test_a_node_whose_secret_is_not_mounted_is_an_error_for_check_config(tmp_path: Path) -> None:
    # The process runs such a node without a key (test_chart_uninstall.py); a check says so.
    path = tmp_path / "projects.yaml"
    path.write_text(mounted_projects_file(render(VALUE_SETS["one node"]), tmp_path))
    with pytest.raises(ConfigError, match="does not exist"):
        load_projects(path, {})


# --- the pod ----------------------------------------------------------------------------


def test_each_secret_is_mounted_once_and_every_key_file_lies_in_its_secrets_mount() -> None:
    objects = render(VALUE_SETS["nodes sharing one existing Secret"])
    spec = pod_spec(objects)
    secret_volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    assert [v["secretName"] for v in secret_volumes.values()] == ["salad-api-keys"]
    (volume,) = secret_volumes.values()
    # Owner-only; the kubelet adds group read for the pod's fsGroup (65532), which is
    # how the non-root process reads it (templates/deployment.yaml).
    assert volume["defaultMode"] == 0o400
    assert pod_spec(objects)["securityContext"]["fsGroup"] == 65532
    mounts = {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}
    (mount,) = (mounts[name] for name in secret_volumes)
    assert mount == f"{KEYS_DIR}/salad-api-keys"
    document = yaml.safe_load(
        one(objects, "ConfigMap")["data"]["projects.yaml"],
    )
    assert [n["apiKeyFile"] for n in document["nodes"]] == [
        f"{mount}/team-a",
        f"{mount}/team-b",
        f"{mount}/team-a",
    ]
    # Keys reach the process as files only: never as environment variables.
    assert not [e for e in container(objects)["env"] if "secretKeyRef" in e.get("valueFrom", {})]


def test_adding_a_node_under_a_mounted_secret_changes_the_config_map_not_the_pod() -> None:
    values = VALUE_SETS["nodes sharing one existing Secret"]
    grown = {**values, "nodes": [*values["nodes"], node("salad-acme-d", "team-d")]}
    before, after = render(values), render(grown)
    template = one(before, "Deployment")["spec"]["template"]
    assert one(after, "Deployment")["spec"]["template"] == template
    assert one(before, "ConfigMap")["data"] != one(after, "ConfigMap")["data"]
    # The ConfigMap is mounted as a directory (a subPath mount never sees updates) and
    # no checksum annotation restarts the pod when it changes.
    assert all("subPath" not in m for m in container(before)["volumeMounts"])
    assert not [a for a in template["metadata"].get("annotations", {}) if "checksum" in a]


def test_the_pod_runs_salad_vk_run_with_flags_the_process_accepts() -> None:
    values = VALUE_SETS["five nodes"]
    objects = render(values)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    main = container(objects)
    args = build_parser().parse_args(main["args"])
    assert args.command == "run"
    settings = ProcessSettings.from_namespace(args, {"SALAD_VK_HTTP_MAX_CONNECTIONS": "200"})
    assert str(settings.config) == "/etc/salad-vk/config/projects.yaml"
    assert settings.metrics_address == "0.0.0.0:9090"
    assert (settings.log_format, settings.log_level) == ("json", "debug")
    assert settings.decommission_policy == "orphan"
    assert settings.drain_timeout_seconds == 90
    assert settings.http_max_connections == 200
    assert settings.ownership_timeout_seconds == 15
    assert pod_spec(objects)["terminationGracePeriodSeconds"] > settings.shutdown_grace_seconds
    env = {e["name"]: e for e in main["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    # The defaults of --identity and --lease-namespace.
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["PYTHONDONTWRITEBYTECODE"]["value"] == "1"
    assert main["ports"] == [
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        {"name": "kubelet", "containerPort": 10250, "protocol": "TCP"},
    ]
    assert settings.kubelet_address == "0.0.0.0:10250"
    assert settings.kubelet_tls_cert_file is None, "self-signed unless a Secret is named"
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = one(objects, "Service")
    assert service["spec"]["ports"][0]["port"] == 9090
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_a_kubelet_tls_secret_is_mounted_as_a_directory_and_served() -> None:
    values = {**VALUE_SETS["one node"], "kubelet": {"tlsSecretName": "salad-vk-kubelet-tls"}}
    objects = render(values)
    main = container(objects)
    settings = ProcessSettings.from_namespace(build_parser().parse_args(main["args"]), {})
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "kubelet-tls")
    mount = next(m for m in main["volumeMounts"] if m["name"] == "kubelet-tls")

    assert volume["secret"] == {"secretName": "salad-vk-kubelet-tls", "defaultMode": 0o440}
    assert "subPath" not in mount, "a renewed certificate must reach the process"
    assert str(settings.kubelet_tls_cert_file) == f"{mount['mountPath']}/tls.crt"
    assert str(settings.kubelet_tls_key_file) == f"{mount['mountPath']}/tls.key"


def test_the_pod_runs_restricted_as_uid_65532_on_a_read_only_root() -> None:
    objects = render(VALUE_SETS["one node"])
    pod = pod_spec(objects)["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    own = container(objects)["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"] == {"drop": ["ALL"]}
    # The one writable place: a small /tmp.
    tmp = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp


# --- RBAC and priority ------------------------------------------------------------------


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", ["(url)"])
        for resource in rule.get("resources", rule.get("nonResourceURLs", []))
        for verb in rule["verbs"]
    }


def test_rbac_grants_exactly_the_calls_the_process_makes() -> None:
    objects = render(VALUE_SETS["one node"], release="rel", namespace="ops")
    cluster_role = one(objects, "ClusterRole")
    assert grants(cluster_role["rules"]) == {
        ("", "nodes", "get"),
        ("", "nodes", "list"),
        ("", "nodes", "watch"),
        ("", "nodes", "create"),
        ("", "nodes", "patch"),
        ("", "nodes", "delete"),
        ("", "nodes/status", "patch"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods", "delete"),
        ("", "pods/status", "patch"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("", "namespaces", "get"),
        ("(url)", "/version", "get"),
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    }
    (namespaces,) = [r for r in cluster_role["rules"] if "namespaces" in r.get("resources", [])]
    assert namespaces["resourceNames"] == ["kube-system"]
    # Secrets and ConfigMaps only where a node allows pods from (here: `default`).
    references = one(objects, "Role", "-references")
    assert references["metadata"]["namespace"] == "default"
    assert grants(references["rules"]) == {("", "secrets", "get"), ("", "configmaps", "get")}
    role = one(objects, "Role", "-salad-vk")
    assert role["metadata"]["namespace"] == "kube-node-lease"
    assert grants(role["rules"]) == {
        ("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update", "delete")
    }
    client_ca = one(objects, "Role", "-client-ca")
    assert client_ca["metadata"]["namespace"] == "kube-system"
    assert client_ca["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["extension-apiserver-authentication"],
            "verbs": ["get"],
        }
    ]
    # The replicas' membership Leases: in the release namespace, and only there.
    members = next(r for r in of_kind(objects, "Role") if r["metadata"]["namespace"] == "ops")
    assert grants(members["rules"]) == {
        ("coordination.k8s.io", "leases", verb)
        for verb in ("get", "list", "watch", "create", "update", "delete")
    }
    subject = {"kind": "ServiceAccount", "name": "rel-salad-vk", "namespace": "ops"}
    for binding, granted in (
        ("ClusterRoleBinding", cluster_role),
        ("RoleBinding", role),
        ("RoleBinding", references),
        ("RoleBinding", client_ca),
        ("RoleBinding", members),
    ):
        found = one(objects, binding, granted["metadata"]["name"])
        assert found["subjects"] == [subject]
        assert found["roleRef"]["name"] == granted["metadata"]["name"]
        if binding == "RoleBinding":
            assert found["metadata"]["namespace"] == granted["metadata"]["namespace"]
    assert one(objects, "ServiceAccount")["metadata"]["name"] == "rel-salad-vk"
    assert pod_spec(objects)["serviceAccountName"] == "rel-salad-vk"


def test_lease_updates_go_to_the_node_high_priority_level_unless_disabled() -> None:
    objects = render(VALUE_SETS["one node"], release="rel", namespace="ops")
    flow = one(objects, "FlowSchema")["spec"]
    assert flow["priorityLevelConfiguration"] == {"name": "node-high"}
    (rule,) = flow["rules"]
    assert rule["subjects"] == [
        {"kind": "ServiceAccount", "serviceAccount": {"name": "rel-salad-vk", "namespace": "ops"}}
    ]
    (resources,) = rule["resourceRules"]
    assert resources["resources"] == ["leases"]
    assert resources["namespaces"] == ["kube-node-lease", "ops"]
    assert "update" in resources["verbs"]

    bare = render(VALUE_SETS["existing ServiceAccount, no RBAC, no FlowSchema"])
    kinds = {o["kind"] for o in bare}
    assert kinds.isdisjoint({"FlowSchema", "ServiceAccount", "ClusterRole", "Role"})
    assert pod_spec(bare)["serviceAccountName"] == "salad-vk-runner"


def test_replicas_roll_one_at_a_time_spread_over_hosts_and_drain_one_at_a_time() -> None:
    objects = render(VALUE_SETS["one node"], release="rel", namespace="ops")
    selector = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    budget = one(objects, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == "ops"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    (preferred,) = pod_spec(objects)["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }

    own: dict[str, Any] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    single = render(
        {
            **VALUE_SETS["one node"],
            "replicas": 1,
            "affinity": own,
            "podDisruptionBudget": {"enabled": False},
        }
    )
    assert one(single, "Deployment")["spec"]["replicas"] == 1
    assert pod_spec(single)["affinity"] == own
    assert not of_kind(single, "PodDisruptionBudget")


def test_cluster_scoped_names_carry_the_release_namespace() -> None:
    first = render(VALUE_SETS["one node"], release="rel", namespace="team-a")
    second = render(VALUE_SETS["one node"], release="rel", namespace="team-b")
    for kind in ("ClusterRole", "ClusterRoleBinding", "FlowSchema"):
        assert one(first, kind)["metadata"]["name"] != one(second, kind)["metadata"]["name"]


# --- monitoring -------------------------------------------------------------------------


def test_service_monitor_and_dashboard_only_when_enabled() -> None:
    plain = render(VALUE_SETS["one node"])
    assert not of_kind(plain, "ServiceMonitor")
    assert len(of_kind(plain, "ConfigMap")) == 1

    monitored = render(VALUE_SETS["ServiceMonitor on"])
    monitor = one(monitored, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    service = one(monitored, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )

    dashboard = one(render(VALUE_SETS["Grafana dashboard on"]), "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "SaladCloud"}
    shipped = json.loads((CHART / "dashboards" / "salad-vk.json").read_text())
    assert json.loads(dashboard["data"]["salad-vk.json"]) == shipped


# --- documentation ----------------------------------------------------------------------


def documented_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Every value a user sets, as a dotted path (`nodes[].name` for a node's fields);
    free-form maps and lists (labels, resources, tolerations) are one value each."""
    paths = []
    for key, sub in schema["properties"].items():
        path = f"{prefix}{key}"
        if key == "global":
            continue
        if sub.get("additionalProperties") is False and "properties" in sub:
            paths.extend(documented_paths(sub, f"{path}."))
        elif path == "nodes":
            paths.extend(documented_paths(sub["items"], "nodes[]."))
        else:
            paths.append(path)
    return paths


def test_the_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    missing = [p for p in documented_paths(SCHEMA) if f"`{p}`" not in readme]
    assert missing == []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) == set(SCHEMA["properties"]) - {"global"}


def test_notes_say_how_to_add_a_first_node_and_list_the_configured_ones() -> None:
    assert "apiKeySecret" in notes({})
    listed = notes(VALUE_SETS["nodes sharing one existing Secret"])
    assert re.search(r"salad-acme-c\s+<- SaladCloud acme/team-c", listed)
