"""Why a pod cannot run on SaladCloud, in the words the kubelet would use.

A :class:`Refusal` is a value, not an exception: the reconciler turns it into a
Failed pod status plus an event, or waits and retries when it is not permanent.
Messages name the offending field and never carry a Secret's value.
"""

from __future__ import annotations

from dataclasses import dataclass

UNSUPPORTED_POD_FEATURE = "UnsupportedPodFeature"
"""The pod uses something a SaladCloud container group cannot do."""
INVALID_ANNOTATION = "InvalidAnnotation"
"""A ``salad.com/*`` annotation is unknown or its value is not accepted."""
INVALID_ENVIRONMENT_VARIABLE = "InvalidEnvironmentVariable"
"""An environment variable SaladCloud would reject (empty, too long, bad name)."""
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
"""A referenced Secret, ConfigMap or key is missing; Kubernetes retries these."""
INVALID_COMMAND = "InvalidCommand"
"""``command``/``args`` that SaladCloud's ``command`` cannot hold."""
INVALID_IMAGE_NAME = "InvalidImageName"
"""The image reference is empty or too long for SaladCloud (the kubelet's reason)."""
INVALID_PROBE = "InvalidProbe"
"""A probe that cannot be expressed as a SaladCloud probe."""
UNSUPPORTED_RESOURCE_REQUEST = "UnsupportedResourceRequest"
"""Resources SaladCloud cannot allocate (several GPUs, sizes out of bounds, ...)."""
INVALID_IMAGE_PULL_SECRET = "InvalidImagePullSecret"  # noqa: S105 (a reason, not a secret)
"""An image pull Secret whose data cannot be read."""
INVALID_NODE_CONFIGURATION = "InvalidNodeConfiguration"
"""A node default (set by the operator, not the pod) that SaladCloud rejects."""


def annotation_field(name: str) -> str:
    """The field path of the pod annotation ``name``."""
    return f"metadata.annotations['{name}']"


@dataclass(frozen=True)
class Refusal:
    """The pod cannot be turned into a container group; nothing is sent to SaladCloud."""

    reason: str
    """CamelCase, kubelet style: one of the constants of this module."""
    message: str
    """For humans; starts with the field path and never echoes a Secret value."""
    field: str
    """Path of the offending field, e.g. ``spec.containers[0].env[3].value``."""
    permanent: bool = True
    """False only where Kubernetes itself would retry: a missing Secret or ConfigMap
    (or key) that is not optional. The reconciler retries those later."""


class Problems:
    """Refusals found while translating one pod, in the order they were found.

    Translation goes through the pod in spec order and keeps going after a problem,
    so that a permanent problem is never hidden behind a retryable one: a pod that can
    never run must not wait for a Secret first.
    """

    def __init__(self) -> None:
        self._found: list[Refusal] = []

    def add(self, reason: str, field: str, message: str, *, permanent: bool = True) -> None:
        self._found.append(
            Refusal(reason=reason, message=f"{field}: {message}", field=field, permanent=permanent)
        )

    def extend(self, other: Problems) -> None:
        self._found.extend(other._found)

    def __bool__(self) -> bool:
        return bool(self._found)

    def first(self) -> Refusal | None:
        """The first permanent problem in spec order, else the first retryable one."""
        for refusal in self._found:
            if refusal.permanent:
                return refusal
        return self._found[0] if self._found else None
