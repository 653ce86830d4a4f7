"""The chart's pod policy refuses, when a pod is created, what the node would refuse,
in the node's own words: each case goes to a real API server with the policy in force,
and to the node's translation, and the two messages must be equal."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client.api_client import ApiClient

from config.country_codes import COUNTRY_CODES
from nodes.kube import KubeClient
from nodes.saladcloud.models import PRIORITIES
from nodes.translate import Refusal, container_group_for_pod
from nodes.translate.annotations import _LOAD_BALANCERS, _NETWORKING, KNOWN_ANNOTATIONS
from nodes.translate.logging_providers import _PROVIDERS, LOGGING_SECRET
from nodes.translate.references import invalid_reference
from nodes.translate.spec_bounds import LOGGING_VALUE_MAX, NETWORK_TIMEOUT_MAX
from tests.manifests import TOLERATION
from tests.nodes.harness import eventually
from tests.translate.pods import make_context

from .chart import CHART, TENANTS, node, render
from .kube import create
from .release import PROVIDER_TOLERATION, policies_in_force, policy_refusal

pytestmark = pytest.mark.anyio

RULES: dict[str, Any] = yaml.safe_load((CHART / "files" / "pod-policy.yaml").read_text())
OUR_NODE = "salad-policy-node"


# --- the policy's data is the node's ------------------------------------------------------


def test_the_policy_data_is_the_nodes_own() -> None:
    assert RULES["countryCodes"] == sorted(COUNTRY_CODES)
    assert tuple(RULES["priorities"]) == PRIORITIES
    assert tuple(RULES["networking"]) == _NETWORKING
    assert tuple(RULES["loadBalancers"]) == _LOAD_BALANCERS
    assert RULES["networkTimeoutMax"] == NETWORK_TIMEOUT_MAX
    assert RULES["loggingValueMax"] == LOGGING_VALUE_MAX
    providers = {p["name"]: p["settings"] for p in RULES["loggingProviders"]}
    assert list(providers) == list(_PROVIDERS)
    for word, (_, settings) in _PROVIDERS.items():
        assert providers[word] == [
            {
                "suffix": s.suffix,
                "kind": s.kind,
                **({"required": True} if s.required else {}),
                **({"storedAs": s.stored_as} if s.stored_as else {}),
                **({"choices": list(s.choices)} if s.choices else {}),
                **({"default": s.default} if s.default else {}),
            }
            for s in settings
        ]
    # Everything else the policy knows by name is in the template; together, every
    # annotation the node reads and no other.
    template = (CHART / "templates" / "pod-policy.yaml").read_text()
    simple = KNOWN_ANNOTATIONS - set(_NETWORKING) - {LOGGING_SECRET}
    simple -= {f"salad.com/logging-{w}-{s.suffix}" for w, (_, ss) in _PROVIDERS.items() for s in ss}
    assert all(f'"{name}"' in template for name in simple), simple


# --- on the API server ---------------------------------------------------------------------


@pytest.fixture
async def admin(kube_api: ApiClient, namespace: str) -> AsyncIterator[KubeClient]:
    """An admin client, with the chart's pod policy in force until the test ends."""
    admin = KubeClient(kube_api, node="test")
    values = {"nodeDefaults": TENANTS, "nodes": [node(OUR_NODE, "team-a")]}
    objects = render(values, release=f"p{uuid.uuid4().hex[:6]}", namespace=namespace)
    pod_policy = [o for o in objects if o["metadata"]["name"].endswith("-pods")]
    async with policies_in_force(admin, pod_policy, namespace, admin):
        yield admin


def pod(
    namespace: str,
    *,
    annotations: dict[str, str] | None = None,
    container: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    bound: bool = True,
) -> dict[str, Any]:
    """A pod the node runs as it is; ``container`` and ``spec`` are merged over it (a
    key set to None is removed). ``bound``: it tolerates the provider taint."""
    main: dict[str, Any] = {"name": "main", "image": "ghcr.io/acme/app:1.0", "command": ["serve"]}
    main.update(container or {})
    body: dict[str, Any] = {"containers": [main], **(spec or {})}
    if bound:
        body["tolerations"] = [PROVIDER_TOLERATION]
    for part in (main, body):
        for key in [k for k, v in part.items() if v is None]:
            del part[key]
    metadata: dict[str, Any] = {"name": f"pod-{uuid.uuid4().hex[:8]}", "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body}


async def node_verdict(admin: KubeClient, manifest: dict[str, Any]) -> Refusal | None:
    """What the node makes of the pod as the API server stores it (defaults applied,
    the token volume injected): its refusal, or None when it would run it."""
    unbound = copy.deepcopy(manifest)
    unbound["spec"].pop("tolerations", None)
    unbound["spec"].pop("nodeName", None)
    stored = await create(admin, unbound, dry_run=True)  # the policy does not apply
    stored["metadata"].setdefault("uid", str(uuid.uuid4()))
    # The node checks that references are names before it reads or translates anything.
    result = invalid_reference(stored) or container_group_for_pod(stored, make_context())
    return result if isinstance(result, Refusal) else None


def networking(**values: str) -> dict[str, str]:
    return {f"salad.com/networking-{key.replace('_', '-')}": v for key, v in values.items()}


def logging(provider: str, **values: str) -> dict[str, str]:
    return {f"salad.com/logging-{provider}-{key.replace('_', '-')}": v for key, v in values.items()}


PORTS = {"ports": [{"name": "http", "containerPort": 8080}]}
SHM = {"volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}

# Each case: (annotations, container changes, spec changes, the field the node names).
REFUSED: dict[str, tuple[dict[str, str], dict[str, Any], dict[str, Any], str]] = {
    "a misspelt annotation": (
        {"salad.com/country-code": "us"},
        {},
        {},
        "metadata.annotations['salad.com/country-code']",
    ),
    "two unknown annotations: the first by name": (
        {"salad.com/zeta": "1", "salad.com/alpha": "1"},
        {},
        {},
        "metadata.annotations['salad.com/alpha']",
    ),
    "GPU classes naming none": (
        {"salad.com/gpu-classes": " , "},
        {},
        {},
        "metadata.annotations['salad.com/gpu-classes']",
    ),
    "a country code SaladCloud does not know": (
        {"salad.com/country-codes": "us, UK"},
        {},
        {},
        "metadata.annotations['salad.com/country-codes']",
    ),
    "no country code": (
        {"salad.com/country-codes": " ,"},
        {},
        {},
        "metadata.annotations['salad.com/country-codes']",
    ),
    "any among countries": (
        {"salad.com/country-codes": "any,us"},
        {},
        {},
        "metadata.annotations['salad.com/country-codes']",
    ),
    "an unknown priority": (
        {"salad.com/container-group-priority": "urgent"},
        {},
        {},
        "metadata.annotations['salad.com/container-group-priority']",
    ),
    "a priority quoted as Python quotes it": (
        {"salad.com/container-group-priority": "it's"},
        {},
        {},
        "metadata.annotations['salad.com/container-group-priority']",
    ),
    "a priority with both quotes, a backslash and a tab": (
        {"salad.com/container-group-priority": "a'b\"c\\d\te"},
        {},
        {},
        "metadata.annotations['salad.com/container-group-priority']",
    ),
    "gateway settings without a port": (
        networking(auth="true"),
        {},
        {},
        "metadata.annotations['salad.com/networking-port']",
    ),
    "a gateway port out of range": (
        networking(port="70000", auth="true"),
        {},
        {},
        "metadata.annotations['salad.com/networking-port']",
    ),
    "a gateway port naming no container port": (
        networking(port="web", auth="true"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-port']",
    ),
    "a gateway protocol SaladCloud lacks": (
        networking(port="http", auth="true", protocol=" TCP"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-protocol']",
    ),
    "a gateway without auth": (
        networking(port="8080"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-auth']",
    ),
    "gateway auth that is no boolean": (
        networking(port="8080", auth="yes"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-auth']",
    ),
    "an unknown load balancer": (
        networking(port="8080", auth="false", load_balancer="random"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-load-balancer']",
    ),
    "a client timeout of zero": (
        networking(port="8080", auth="false", client_request_timeout="0"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-client-request-timeout']",
    ),
    "a server timeout too long": (
        networking(port="8080", auth="false", server_response_timeout="100001"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-server-response-timeout']",
    ),
    "a connection limit that is no boolean": (
        networking(port="8080", auth="false", single_connection_limit="1"),
        PORTS,
        {},
        "metadata.annotations['salad.com/networking-single-connection-limit']",
    ),
    "a logging Secret naming none": (
        {"salad.com/logging-secret": "  "},
        {},
        {},
        "metadata.annotations['salad.com/logging-secret']",
    ),
    "two logging providers": (
        {**logging("splunk", host="h", token="t"), **logging("tcp", port="1", host="h")},
        {},
        {},
        "metadata.annotations['salad.com/logging-tcp-host']",
    ),
    "a logging Secret and no provider": (
        {"salad.com/logging-secret": "log-shipping"},
        {},
        {},
        "metadata.annotations['salad.com/logging-secret']",
    ),
    "a logging token that could come from a Secret, missing": (
        logging("axiom", host="h", dataset="d"),
        {},
        {},
        "metadata.annotations['salad.com/logging-axiom-api-token']",
    ),
    "a logging port missing": (
        logging("tcp", host="h"),
        {},
        {},
        "metadata.annotations['salad.com/logging-tcp-port']",
    ),
    "an empty logging value": (
        logging("splunk", host="  ", token="t"),
        {},
        {},
        "metadata.annotations['salad.com/logging-splunk-host']",
    ),
    "an over-long logging value": (
        logging("splunk", host="h" * 1001, token="t"),
        {},
        {},
        "metadata.annotations['salad.com/logging-splunk-host']",
    ),
    "a logging value of two lines": (
        logging("new-relic", host="h", ingestion_key="a\nb"),
        {},
        {},
        "metadata.annotations['salad.com/logging-new-relic-ingestion-key']",
    ),
    "a logging port that is no number": (
        logging("http", host="h", port="0x50"),
        {},
        {},
        "metadata.annotations['salad.com/logging-http-port']",
    ),
    "a logging format SaladCloud lacks": (
        logging("http", host="h", port="443", format="XML"),
        {},
        {},
        "metadata.annotations['salad.com/logging-http-format']",
    ),
    "a Datadog tag without a value": (
        logging("datadog", host="h", api_key="k", tags="env:prod,,team"),
        {},
        {},
        "metadata.annotations['salad.com/logging-datadog-tags']",
    ),
    "image caching that is no boolean": (
        {"salad.com/image-caching": "maybe"},
        {},
        {},
        "metadata.annotations['salad.com/image-caching']",
    ),
    "a shared-memory size that is no quantity": (
        {"salad.com/shm-size": "lots"},
        {},
        {},
        "metadata.annotations['salad.com/shm-size']",
    ),
    "a shared-memory size of zero": (
        {"salad.com/shm-size": "0"},
        {},
        {},
        "metadata.annotations['salad.com/shm-size']",
    ),
    "a volume": (
        {},
        {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"volumes": [{"name": "data", "emptyDir": {}}]},
        "spec.volumes[0]",
    ),
    "a memory volume mounted elsewhere than /dev/shm": (
        {},
        {"volumeMounts": [{"name": "shm", "mountPath": "/scratch"}]},
        {"volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}]},
        "spec.volumes[0]",
    ),
    "shared memory of size zero": (
        {},
        SHM,
        {"volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "0"}}]},
        "spec.volumes[0].emptyDir.sizeLimit",
    ),
    "a Secret volume after shared memory": (
        {},
        {"volumeMounts": [*SHM["volumeMounts"], {"name": "creds", "mountPath": "/creds"}]},
        {
            "volumes": [
                {"name": "shm", "emptyDir": {"medium": "Memory"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
            ]
        },
        "spec.volumes[1]",
    ),
    "an init container": (
        {},
        {},
        {"initContainers": [{"name": "init", "image": "busybox:1", "command": ["true"]}]},
        "spec.initContainers",
    ),
    "two containers": (
        {},
        {},
        {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]},
        "spec.containers",
    ),
    "args without command": (
        {},
        {"command": None, "args": ["--serve"]},
        {},
        "spec.containers[0].args",
    ),
    "a working directory": ({}, {"workingDir": "/srv"}, {}, "spec.containers[0].workingDir"),
    "a host port": (
        {},
        {"ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 8081}]},
        {},
        "spec.containers[0].ports[1].hostPort",
    ),
    "host network": ({}, {}, {"hostNetwork": True}, "spec.hostNetwork"),
    "a pull Secret named by a path": (
        {},
        {},
        {"imagePullSecrets": [{"name": "ok"}, {"name": "../../team-a/secrets/regcred"}]},
        "spec.imagePullSecrets[1].name",
    ),
    "a logging Secret named by a path, before any annotation problem": (
        {
            **logging("http", host="evil.example.com", port="443"),
            "salad.com/logging-secret": "..%2F..%2Fteam-a%2Fsecrets%2Flogs",
            "salad.com/country-code": "us",
        },
        {},
        {},
        "metadata.annotations['salad.com/logging-secret']",
    ),
    "a pull Secret name with a query": (
        {},
        {},
        {"imagePullSecrets": [{"name": "regcred?namespace=team-a"}]},
        "spec.imagePullSecrets[0].name",
    ),
    "the host's PID namespace": ({}, {}, {"hostPID": True}, "spec.hostPID"),
    "a typo and two containers: the annotation first, as the node reads": (
        {"salad.com/country-code": "us"},
        {},
        {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]},
        "metadata.annotations['salad.com/country-code']",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_pod_the_node_refuses_is_refused_at_creation_with_the_nodes_message(
    case: str, admin: KubeClient, namespace: str
) -> None:
    annotations, container, spec, field = REFUSED[case]
    manifest = pod(namespace, annotations=annotations, container=container, spec=spec)

    refusal = await node_verdict(admin, manifest)
    message = await policy_refusal(create(admin, manifest, dry_run=True))

    assert refusal is not None and refusal.field == field, refusal
    assert message == refusal.message


VALID: dict[str, tuple[dict[str, str], dict[str, Any], dict[str, Any]]] = {
    "a plain pod": ({}, {}, {}),
    "every annotation, well formed": (
        {
            "salad.com/gpu-classes": "RTX 4090 (24 GB), rtx 3090 (24 gb)",
            "salad.com/country-codes": " US,ca , no",
            "salad.com/container-group-priority": " High",
            **networking(
                port="http",
                auth="FALSE",
                protocol="http",
                load_balancer="least_number_of_connections",
                client_request_timeout="30000",
                server_response_timeout="0100000",
                single_connection_limit="true",
            ),
            **logging("datadog", host="intake.example.com", api_key="k", tags="env:prod, team:ml"),
            "salad.com/image-caching": "True",
            "salad.com/shm-size": "2Gi",
        },
        PORTS,
        {},
    ),
    "HTTP logging with its defaults": (
        logging("http", host="logs.example.com", port="443"),
        {},
        {},
    ),
    "logging tokens left to a Secret": (
        {**logging("splunk", host="h"), "salad.com/logging-secret": "log-shipping"},
        {},
        {},
    ),
    "shared memory as a memory emptyDir": (
        {},
        {"volumeMounts": [{"name": "shm", "mountPath": "/dev/shm/"}]},
        {"volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]},
    ),
}


@pytest.mark.parametrize("case", list(VALID))
async def test_a_pod_the_node_runs_is_let_through(
    case: str, admin: KubeClient, namespace: str
) -> None:
    annotations, container, spec = VALID[case]
    manifest = pod(namespace, annotations=annotations, container=container, spec=spec)

    assert await policy_refusal(create(admin, manifest, dry_run=True)) is None
    refusal = await node_verdict(admin, manifest)
    # A logging Secret the node has not read yet is only a reason to wait.
    assert refusal is None or not refusal.permanent, refusal


MISSPELT = {"salad.com/country-code": "us"}
OTHERS: dict[str, dict[str, Any]] = {
    "no toleration, no node of ours": {"tolerations": []},
    "a toleration of every taint": {"tolerations": [{"operator": "Exists"}]},
    "a toleration of another provider": {
        "tolerations": [{"key": "virtual-kubelet.io/provider", "value": "other-cloud"}]
    },
    "another node by name": {"tolerations": [], "nodeName": "some-kubelet"},
}


@pytest.mark.parametrize("case", list(OTHERS))
async def test_a_pod_not_bound_for_saladcloud_is_not_checked(
    case: str, admin: KubeClient, namespace: str
) -> None:
    manifest = pod(namespace, annotations=MISSPELT, spec=OTHERS[case], bound=False)

    accepted = await create(admin, manifest, dry_run=True)

    assert accepted["metadata"]["annotations"] == MISSPELT


async def test_a_pod_naming_a_release_node_is_checked_without_the_toleration(
    admin: KubeClient, namespace: str
) -> None:
    manifest = pod(namespace, annotations=MISSPELT, spec={"nodeName": OUR_NODE}, bound=False)

    message = await policy_refusal(create(admin, manifest, dry_run=True))

    assert message is not None and message.startswith(
        "metadata.annotations['salad.com/country-code']"
    )


async def test_a_deployment_with_a_misspelt_annotation_makes_no_pod_until_it_is_fixed(
    admin: KubeClient, namespace: str
) -> None:
    template = pod(namespace, annotations=MISSPELT)
    refusal = await node_verdict(admin, template)
    assert refusal is not None
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "typo"},
        "spec": {
            "replicas": 3,
            # No node runs these pods here, so none turns available: replace them whole.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "typo"}},
            "template": {
                "metadata": {"labels": {"app": "typo"}, "annotations": MISSPELT},
                "spec": {"tolerations": [TOLERATION], "containers": template["spec"]["containers"]},
            },
        },
    }
    apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    await admin.post(apps, deployment)
    pods_path = f"/api/v1/namespaces/{namespace}/pods"

    async def creation_refused() -> bool:
        sets = (await admin.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets"))["items"]
        conditions = [c for rs in sets for c in rs.get("status", {}).get("conditions") or []]
        return any(
            c["type"] == "ReplicaFailure" and refusal.message in c.get("message", "")
            for c in conditions
        )

    await eventually(creation_refused, 30, "the ReplicaSet to report the node's message")
    assert (await admin.get(pods_path, {"labelSelector": "app=typo"}))["items"] == []

    fixed = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"salad.com/country-code": None, "salad.com/country-codes": "us"}
                }
            }
        }
    }
    await admin.patch(f"{apps}/typo", fixed, kind="merge")

    async def created() -> bool:
        found = (await admin.get(pods_path, {"labelSelector": "app=typo"}))["items"]
        return len(found) == 3

    await eventually(created, 30, "3 pods of the fixed template")


async def test_the_policy_type_checks_against_the_api_servers_schemas(
    admin: KubeClient, namespace: str
) -> None:
    policies = (
        await admin.get("/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies")
    )["items"]
    ours = [p for p in policies if p["metadata"]["name"].startswith(namespace)]
    assert ours

    async def checked() -> bool:
        found = await admin.get(
            "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/"
            + ours[0]["metadata"]["name"]
        )
        status = found.get("status") or {}
        return bool(status.get("observedGeneration") == found["metadata"]["generation"])

    await eventually(checked, 30, "the API server to type-check the policy")
    found = await admin.get(
        "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/"
        + ours[0]["metadata"]["name"]
    )
    assert found["status"]["typeChecking"].get("expressionWarnings") is None
