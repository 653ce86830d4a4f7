"""Which pod a container group belongs to, written into the group itself.

A group carries its owner in environment variables (also handy for the workload,
like the downward API): the pod's namespace, name and UID, the node, and the
cluster (the UID of its ``kube-system`` namespace). The orphan collector only ever
touches groups that carry them and name this node *in this cluster*, so a group
someone created by hand in the project — another node's, or the one of a staging
cluster serving the same project under the same node name — can never be mistaken
for an orphan; and after a restart, a ``name_conflict`` on create can be resolved by
reading them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .saladcloud.models import ContainerGroup, ContainerGroupPrototype

NAMESPACE_VAR = "SALAD_VK_POD_NAMESPACE"
NAME_VAR = "SALAD_VK_POD_NAME"
UID_VAR = "SALAD_VK_POD_UID"
NODE_VAR = "SALAD_VK_NODE"
CLUSTER_VAR = "SALAD_VK_CLUSTER"


@dataclass(frozen=True)
class Owner:
    namespace: str
    name: str
    uid: str
    node: str
    cluster: str | None
    """None for a group marked before clusters were: never collected."""


def with_owner(
    body: ContainerGroupPrototype, pod: Mapping[str, Any], node: str, cluster: str
) -> ContainerGroupPrototype:
    """``body`` with the owner variables added (they win over same-named pod env)."""
    meta = pod.get("metadata") or {}
    marks = {
        NAMESPACE_VAR: str(meta.get("namespace")),
        NAME_VAR: str(meta.get("name")),
        UID_VAR: str(meta.get("uid")),
        NODE_VAR: node,
        CLUSTER_VAR: cluster,
    }
    env = {**(body.container.environment_variables or {}), **marks}
    container = body.container.model_copy(update={"environment_variables": env})
    return body.model_copy(update={"container": container})


def owner_of(group: ContainerGroup) -> Owner | None:
    env = group.container.environment_variables
    values = [env.get(var) for var in (NAMESPACE_VAR, NAME_VAR, UID_VAR, NODE_VAR)]
    if not all(values):
        return None
    namespace, name, uid, node = (str(v) for v in values)
    return Owner(namespace, name, uid, node, env.get(CLUSTER_VAR))
