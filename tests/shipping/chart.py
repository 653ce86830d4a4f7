"""The chart rendered by Helm's own SDK, as `helm install` would render it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "salad-vk"

Manifest = dict[str, Any]


def render(
    values: Mapping[str, Any],
    *,
    release: str = "salad",
    namespace: str = "salad-system",
    kubeconfig: Path | None = None,
    upgrade: bool = False,
) -> list[Manifest]:
    """Every object the chart renders for ``values`` (schema-checked by Helm on the way).

    With ``kubeconfig``, Helm's ``lookup`` reads that cluster, as `helm install` and
    `helm upgrade` do; without, it finds nothing, as `helm template` does.
    """
    options: dict[str, Any] = {"name": release, "namespace": namespace}
    options["is_upgrade" if upgrade else "is_install"] = True
    with helm.Chart.load(CHART) as chart:
        if kubeconfig is None:
            templates = chart.render(dict(values), **options)
        else:
            with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace) as cluster:
                templates = cluster.render(chart, dict(values), **options)
    objects: list[Manifest] = []
    for template, text in sorted(templates.items()):
        if template.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def notes(values: Mapping[str, Any], *, release: str = "salad") -> str:
    with helm.Chart.load(CHART) as chart:
        templates = chart.render(dict(values), name=release, namespace="salad-system")
    return next(text for name, text in templates.items() if name.endswith("NOTES.txt"))


def of_kind(objects: Sequence[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Sequence[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata'] for o in found]}"
    return found[0]


def projects_file(objects: Sequence[Manifest]) -> str:
    """The projects file the supervisor pod reads (the ConfigMap it mounts)."""
    deployment = one(objects, "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    name = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
    config_map = next(o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == name)
    return str(config_map["data"]["projects.yaml"])


def node(name: str, project: str, secret: str = "salad-api-keys", **fields: Any) -> dict[str, Any]:
    """One entry of the chart's ``nodes`` value."""
    return {
        "name": name,
        "organization": "acme",
        "project": project,
        "apiKeySecret": {"name": secret, "key": project},
        **fields,
    }


TENANTS: dict[str, Any] = {"allowedNamespaces": ["default"]}
"""Node defaults serving one namespace (that exists in every cluster, for dry runs)."""

# Values sets the chart is rendered, linted and dry-run applied with.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "no nodes yet": {},
    "one node": {"nodeDefaults": TENANTS, "nodes": [node("salad-acme-a", "team-a")]},
    "five nodes": {
        "nodeDefaults": {
            "allowedNamespaces": ["default", "kube-public"],
            "labels": {"team": "ml"},
            "taints": [{"key": "example.com/dedicated", "value": "ml", "effect": "NoSchedule"}],
            "capacity": {"pods": "50", "nvidia.com/gpu": "50"},
            "pollInterval": 10,
            "defaultCountryCodes": ["us", "ca", "no"],
            "defaultPriority": "batch",
        },
        "nodes": [
            node("salad-acme-p0", "project-0", secret="salad-key-0"),
            node("salad-acme-p1", "project-1", secret="salad-key-1", labels={"tier": "a"}),
            node(
                "salad-acme-p2",
                "project-2",
                secret="salad-key-2",
                capacity={"pods": 100},
                defaultGpuClasses=["RTX 4090 (24 GB)", "RTX 3090 (24 GB)"],
            ),
            node(
                "salad-acme-p3",
                "project-3",
                secret="salad-key-3",
                rateLimitShare=2,
                allowedNamespaces=["kube-public"],
                namespaceSelector={
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-public"},
                    "matchExpressions": [{"key": "salad.com/frozen", "operator": "DoesNotExist"}],
                },
            ),
            node(
                "salad-acme-p4",
                "project-4",
                secret="salad-key-4",
                providerTaint=False,
                saladApiUrl="https://salad-proxy.example.com/api/public",
            ),
        ],
        "apiRateLimit": 480,
        "logLevel": "debug",
        "decommissionPolicy": "orphan",
        "drainTimeoutSeconds": 90,
        "metrics": {"port": 9090},
        "service": {"port": 9090},
        "extraEnv": [{"name": "SALAD_VK_HTTP_MAX_CONNECTIONS", "value": "200"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "image": {"repository": "registry.example.com/platform/salad-vk", "tag": "0.1.0-rc1"},
        "podAnnotations": {"example.com/owner": "platform"},
        "podLabels": {"team": "platform"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "example.com/infra", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "type", "operator": "NotIn", "values": ["virtual-kubelet"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "system-cluster-critical",
    },
    "nodes sharing one existing Secret": {
        "nodeDefaults": TENANTS,
        "nodes": [
            node("salad-acme-a", "team-a"),
            node("salad-acme-b", "team-b"),
            # Another project under the same API key as team-a: one rate budget.
            {
                **node("salad-acme-c", "team-c"),
                "apiKeySecret": {"name": "salad-api-keys", "key": "team-a"},
            },
        ],
    },
    "ServiceMonitor on": {
        "nodeDefaults": TENANTS,
        "nodes": [node("salad-acme-a", "team-a")],
        "serviceMonitor": {
            "enabled": True,
            "interval": "15s",
            "scrapeTimeout": "10s",
            "labels": {"release": "prometheus"},
        },
    },
    "Grafana dashboard on": {
        "nodeDefaults": TENANTS,
        "nodes": [node("salad-acme-a", "team-a")],
        "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "SaladCloud"}},
    },
    "existing ServiceAccount, no RBAC, no FlowSchema": {
        "nodes": [node("salad-acme-a", "team-a")],
        "rbac": {"create": False},
        "serviceAccount": {"create": False, "name": "salad-vk-runner"},
        "leasePriority": {"enabled": False},
        "logFormat": "text",
    },
    "Secret reads cluster-wide, namespaces selected by label": {
        "nodeDefaults": {"namespaceSelector": {"matchLabels": {"salad.com/tenant": "ml"}}},
        "nodes": [node("salad-acme-a", "team-a"), node("salad-acme-b", "team-b")],
        "rbac": {"clusterWideSecretAccess": True},
    },
    "NetworkPolicy, egress restricted": {
        "nodeDefaults": TENANTS,
        "nodes": [node("salad-acme-a", "team-a")],
        "networkPolicy": {
            "enabled": True,
            "metrics": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            },
            "egress": {
                "enabled": True,
                "apiServer": [{"cidr": "10.0.0.1/32", "port": 443}],
                "saladCloud": {"except": ["10.0.0.0/8"]},
                "extra": [
                    {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"port": 3128}]}
                ],
            },
        },
    },
    "admission policies off": {
        "nodeDefaults": TENANTS,
        "nodes": [node("salad-acme-a", "team-a")],
        "admissionPolicy": {"enabled": False},
        "podAdmissionPolicy": {"enabled": False},
    },
}
