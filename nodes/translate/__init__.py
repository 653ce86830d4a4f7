"""Pure translation between a pod and a SaladCloud container group, both ways.

Pod (plain Kubernetes JSON) -> create body or :class:`Refusal`; container group and
instances -> pod status. No I/O and no clock: the caller fetches the Secrets and
ConfigMaps :func:`required_objects` names, passes ``now``, and writes the results.
"""

from nodes.translate.annotations import KNOWN_ANNOTATIONS
from nodes.translate.context import (
    ObjectReference,
    RequiredObjects,
    TranslationContext,
)
from nodes.translate.names import container_group_name, display_name, uid_suffix
from nodes.translate.refusal import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ANNOTATION,
    INVALID_COMMAND,
    INVALID_ENVIRONMENT_VARIABLE,
    INVALID_IMAGE_NAME,
    INVALID_IMAGE_PULL_SECRET,
    INVALID_NODE_CONFIGURATION,
    INVALID_PROBE,
    UNSUPPORTED_POD_FEATURE,
    UNSUPPORTED_RESOURCE_REQUEST,
    Refusal,
)
from nodes.translate.to_group import container_group_for_pod, required_objects
from nodes.translate.to_status import (
    CONTAINER_GROUP_DELETED,
    CONTAINER_GROUP_STOPPED,
    failed_status,
    pending_status,
    pod_status,
    status_patch_needed,
    terminated_status,
    timestamp,
)

__all__ = [
    "CONTAINER_GROUP_DELETED",
    "CONTAINER_GROUP_STOPPED",
    "CREATE_CONTAINER_CONFIG_ERROR",
    "INVALID_ANNOTATION",
    "INVALID_COMMAND",
    "INVALID_ENVIRONMENT_VARIABLE",
    "INVALID_IMAGE_NAME",
    "INVALID_IMAGE_PULL_SECRET",
    "INVALID_NODE_CONFIGURATION",
    "INVALID_PROBE",
    "KNOWN_ANNOTATIONS",
    "UNSUPPORTED_POD_FEATURE",
    "UNSUPPORTED_RESOURCE_REQUEST",
    "ObjectReference",
    "Refusal",
    "RequiredObjects",
    "TranslationContext",
    "container_group_for_pod",
    "container_group_name",
    "display_name",
    "failed_status",
    "pending_status",
    "pod_status",
    "required_objects",
    "status_patch_needed",
    "terminated_status",
    "timestamp",
    "uid_suffix",
]
