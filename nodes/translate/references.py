"""Every Secret and ConfigMap a pod names, with the field that names it.

A name taken from a pod becomes part of an API path the node requests with its own
(wide) rights, so it is checked to be a name before anything is read: a DNS-1123
subdomain, as Kubernetes names Secrets and ConfigMaps. The API server validates the
names in ``env`` and ``envFrom``, but not in ``imagePullSecrets[].name`` and not in an
annotation, where ``../../team-a/secrets/regcred`` would otherwise resolve to another
namespace's Secret. Refused here: nothing is read and nothing reaches SaladCloud.

Some Secrets are never a source, whoever names them: a ServiceAccount token is a
credential for this cluster, and a Helm release Secret holds a whole release's
values (other Secrets' contents included). Values sent to SaladCloud are readable by
the project's members, so neither may leave the cluster that way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from config.kube_names import check_subdomain
from nodes.translate.logging_providers import LOGGING_SECRET
from nodes.translate.pod_json import obj, objs, strings, text
from nodes.translate.refusal import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ANNOTATION,
    INVALID_IMAGE_PULL_SECRET,
    Refusal,
    annotation_field,
)

Kind = Literal["Secret", "ConfigMap"]

CONTAINER_PATH = "spec.containers[0]"

FORBIDDEN_SECRET_TYPES: Mapping[str, str] = {
    "kubernetes.io/service-account-token": "a ServiceAccount token",
    "helm.sh/release.v1": "a Helm release record",
}
"""Secret types never sent to SaladCloud, with what they are (for the message)."""

ENV_SOURCES: tuple[tuple[str, str, Kind], ...] = (
    ("configMapKeyRef", "configMapRef", "ConfigMap"),
    ("secretKeyRef", "secretRef", "Secret"),
)
"""(key reference in ``env[].valueFrom``, source in ``envFrom[]``, the kind they name)."""


@dataclass(frozen=True)
class PodReference:
    """One place in a pod that names a Secret or ConfigMap of its namespace."""

    kind: Kind
    name: str
    optional: bool
    field: str
    """Path of the field holding the name, e.g. ``spec.imagePullSecrets[0].name``."""
    reason: str
    """The refusal reason when the name cannot be used: the kubelet's word for a bad
    reference in this kind of field."""


def pod_references(pod: Mapping[str, Any]) -> tuple[PodReference, ...]:
    """Every reference in spec order; only the first container is read (the others are
    refused elsewhere). Empty names are left out: nothing would be read for them.

    Pull Secrets are optional, as for the kubelet, which pulls without a missing one.
    """
    found: list[PodReference] = []
    spec = obj(pod.get("spec"))
    containers = objs(spec.get("containers"))
    if containers:
        container = containers[0]
        for index, source in enumerate(objs(container.get("envFrom"))):
            for _, from_key, kind in ENV_SOURCES:
                if from_key in source:
                    ref = obj(source[from_key])
                    found.append(
                        PodReference(
                            kind,
                            text(ref.get("name")),
                            ref.get("optional") is True,
                            f"{CONTAINER_PATH}.envFrom[{index}].{from_key}.name",
                            CREATE_CONTAINER_CONFIG_ERROR,
                        )
                    )
        for index, entry in enumerate(objs(container.get("env"))):
            value_from = obj(entry.get("valueFrom"))
            for key_ref, _, kind in ENV_SOURCES:
                if key_ref in value_from:
                    ref = obj(value_from[key_ref])
                    found.append(
                        PodReference(
                            kind,
                            text(ref.get("name")),
                            ref.get("optional") is True,
                            f"{CONTAINER_PATH}.env[{index}].valueFrom.{key_ref}.name",
                            CREATE_CONTAINER_CONFIG_ERROR,
                        )
                    )
    for index, pull_secret in enumerate(objs(spec.get("imagePullSecrets"))):
        found.append(
            PodReference(
                "Secret",
                text(pull_secret.get("name")),
                True,
                f"spec.imagePullSecrets[{index}].name",
                INVALID_IMAGE_PULL_SECRET,
            )
        )
    annotations = strings(obj(pod.get("metadata")).get("annotations"))
    if LOGGING_SECRET in annotations:
        found.append(
            PodReference(
                "Secret",
                annotations[LOGGING_SECRET].strip(),
                False,
                annotation_field(LOGGING_SECRET),
                INVALID_ANNOTATION,
            )
        )
    return tuple(ref for ref in found if ref.name)


def invalid_reference(pod: Mapping[str, Any]) -> Refusal | None:
    """The first reference whose name is not a Kubernetes object name, if any."""
    for ref in pod_references(pod):
        try:
            check_subdomain(ref.name)
        except ValueError as error:
            return Refusal(
                reason=ref.reason,
                message=f"{ref.field}: {error}; a {ref.kind} is named, never addressed by a path",
                field=ref.field,
            )
    return None


def forbidden_source(pod: Mapping[str, Any], secret_types: Mapping[str, str]) -> Refusal | None:
    """A refusal if the pod takes anything from a Secret of a forbidden type.

    ``secret_types`` maps each Secret read for the pod to its ``type``.
    """
    for ref in pod_references(pod):
        if ref.kind != "Secret":
            continue
        what = FORBIDDEN_SECRET_TYPES.get(secret_types.get(ref.name, ""))
        if what is not None:
            return Refusal(
                reason=ref.reason,
                message=f"{ref.field}: Secret {ref.name!r} is {what}; salad-vk never sends "
                "one to SaladCloud, where the project's members could read it",
                field=ref.field,
            )
    return None
