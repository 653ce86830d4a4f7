"""A pod's references are names, never paths: checked before anything is read."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.translate.references import (
    PodReference,
    forbidden_source,
    invalid_reference,
    pod_references,
)
from tests.translate.pods import make_pod

TRAVERSALS = ["../../team-a/secrets/regcred", "..%2F..%2Fteam-a%2Fsecrets%2Fx", "regcred?x=1", ".."]


def env_ref(name: str) -> dict[str, Any]:
    return {"name": "V", "valueFrom": {"secretKeyRef": {"name": name, "key": "k"}}}


def pod_naming(field: str, name: str) -> dict[str, Any]:
    """A pod that names the Secret ``name`` in ``field``."""
    if field == "imagePullSecrets":
        return make_pod(spec={"imagePullSecrets": [{"name": name}]})
    if field == "logging-secret":
        return make_pod(annotations={"salad.com/logging-secret": name})
    if field == "env":
        return make_pod(container={"env": [env_ref(name)]})
    if field == "envFrom":
        return make_pod(container={"envFrom": [{"secretRef": {"name": name}}]})
    if field == "configMapKeyRef":
        return make_pod(
            container={
                "env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": name, "key": "k"}}}]
            }
        )
    raise AssertionError(field)


FIELDS = {
    "imagePullSecrets": ("InvalidImagePullSecret", "spec.imagePullSecrets[0].name"),
    "logging-secret": ("InvalidAnnotation", "metadata.annotations['salad.com/logging-secret']"),
    "env": (
        "CreateContainerConfigError",
        "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
    ),
    "envFrom": ("CreateContainerConfigError", "spec.containers[0].envFrom[0].secretRef.name"),
    "configMapKeyRef": (
        "CreateContainerConfigError",
        "spec.containers[0].env[0].valueFrom.configMapKeyRef.name",
    ),
}


@pytest.mark.parametrize("name", TRAVERSALS)
@pytest.mark.parametrize("field", list(FIELDS))
def test_a_name_that_is_not_an_object_name_is_refused_naming_its_field(
    field: str, name: str
) -> None:
    refusal = invalid_reference(pod_naming(field, name))
    assert refusal is not None
    reason, path = FIELDS[field]
    assert (refusal.reason, refusal.field) == (reason, path)
    assert refusal.message.startswith(path)
    assert refusal.permanent


@pytest.mark.parametrize("field", list(FIELDS))
def test_object_names_pass(field: str) -> None:
    assert invalid_reference(pod_naming(field, "team-b.regcred")) is None


def test_every_reference_is_found_in_spec_order_with_its_field() -> None:
    pod = make_pod(
        container={
            "envFrom": [{"configMapRef": {"name": "settings", "optional": True}}],
            "env": [env_ref("db")],
        },
        spec={"imagePullSecrets": [{"name": "regcred"}, {"name": ""}]},
        annotations={"salad.com/logging-secret": " logs "},
    )
    assert pod_references(pod) == (
        PodReference(
            "ConfigMap",
            "settings",
            True,
            "spec.containers[0].envFrom[0].configMapRef.name",
            "CreateContainerConfigError",
        ),
        PodReference(
            "Secret",
            "db",
            False,
            "spec.containers[0].env[0].valueFrom.secretKeyRef.name",
            "CreateContainerConfigError",
        ),
        PodReference(
            "Secret", "regcred", True, "spec.imagePullSecrets[0].name", "InvalidImagePullSecret"
        ),
        PodReference(
            "Secret",
            "logs",
            False,
            "metadata.annotations['salad.com/logging-secret']",
            "InvalidAnnotation",
        ),
    )


@pytest.mark.parametrize(
    ("secret_type", "what"),
    [
        ("kubernetes.io/service-account-token", "a ServiceAccount token"),
        ("helm.sh/release.v1", "a Helm release record"),
    ],
)
@pytest.mark.parametrize("field", ["imagePullSecrets", "logging-secret", "env", "envFrom"])
def test_service_account_tokens_and_helm_releases_are_never_a_source(
    field: str, secret_type: str, what: str
) -> None:
    refusal = forbidden_source(pod_naming(field, "stolen"), {"stolen": secret_type})
    assert refusal is not None
    assert refusal.field == FIELDS[field][1]
    assert what in refusal.message


def test_ordinary_secrets_are_a_source() -> None:
    pod = pod_naming("env", "db")
    assert forbidden_source(pod, {"db": "Opaque"}) is None
    assert forbidden_source(pod, {}) is None
