"""Whether a pod may use this node at all: its namespace, and the node's taints.

A pod that sets ``spec.nodeName`` itself skips the scheduler and, with it, the taints
that keep tenants apart: without a check here, any tenant who can create pods could
name another team's node and spend that team's SaladCloud project. So the node judges
for itself, once, before the pod's group is created and before any Secret is read:

* the pod's namespace must be allowed (``allowedNamespaces``, ``namespaceSelector``);
* the pod must tolerate every hard taint the node was configured with (the provider
  taint included). The transient ``salad.com/saladcloud-unavailable`` taint never
  counts, nor does ``PreferNoSchedule``: neither would have stopped the scheduler.

Judged once means a running pod is never failed because a taint or a namespace rule
appeared later: the node's configuration is a gate for new work, not an eviction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .settings import UNAVAILABLE_TAINT_KEY
from .translate.refusal import Refusal

NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
"""The pod's namespace is not one the node serves."""
TAINT_NOT_TOLERATED = "TaintNotTolerated"
"""The pod does not tolerate one of the node's taints (it bypassed the scheduler)."""

_HARD_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' rule: an empty effect matches every effect, an empty key with
    ``Exists`` matches every key, ``Equal`` (the default) compares values."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool(key) and (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taint(
    pod: Mapping[str, Any], taints: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first hard taint of ``taints`` the pod does not tolerate, if any."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in taints:
        if taint.get("effect") not in _HARD_EFFECTS or taint.get("key") == UNAVAILABLE_TAINT_KEY:
            continue
        if not any(tolerates(t, taint) for t in tolerations if isinstance(t, Mapping)):
            return taint
    return None


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) against ``labels``.

    An operator this code does not know matches nothing: a selector is a permission
    here, and an unknown rule must not widen it.
    """
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In":
            ok = present and labels[key] in values
        elif operator == "NotIn":
            ok = not present or labels[key] not in values
        elif operator == "Exists":
            ok = present
        elif operator == "DoesNotExist":
            ok = not present
        else:
            ok = False
        if not ok:
            return False
    return True


def _taint_text(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    return f"{taint.get('key')}{'=' + str(value) if value else ''}:{taint.get('effect')}"


def tenancy_refusal(
    pod: Mapping[str, Any],
    *,
    node: str,
    allowed_namespaces: Collection[str] | None,
    namespace_selector: Mapping[str, Any] | None,
    namespace_labels: Mapping[str, str] | None,
    taints: Sequence[Mapping[str, Any]],
) -> Refusal | None:
    """Why the pod may not use ``node``, or None.

    ``namespace_labels`` are the labels of the pod's namespace; only needed (and only
    read by the caller) when there is a ``namespace_selector``: None then means the
    namespace could not be found, which allows nothing.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace") or "")
    if allowed_namespaces is not None and namespace not in allowed_namespaces:
        return Refusal(
            reason=NAMESPACE_NOT_ALLOWED,
            message=f"metadata.namespace: node {node} does not serve namespace {namespace!r} "
            "(allowedNamespaces in its projects file)",
            field="metadata.namespace",
        )
    if namespace_selector is not None and not selector_matches(
        namespace_selector, namespace_labels or {}
    ):
        return Refusal(
            reason=NAMESPACE_NOT_ALLOWED,
            message=f"metadata.namespace: namespace {namespace!r} does not match the "
            f"namespaceSelector of node {node}",
            field="metadata.namespace",
        )
    taint = untolerated_taint(pod, taints)
    if taint is not None:
        return Refusal(
            reason=TAINT_NOT_TOLERATED,
            message=f"spec.tolerations: the pod does not tolerate the taint "
            f"{_taint_text(taint)} of node {node}; a pod that names its node in "
            "spec.nodeName must still tolerate it",
            field="spec.tolerations",
        )
    return None
