"""Merging ``defaults`` into a node entry: pure, so the rule is testable on its own.

The rule: mappings (``labels``, ``capacity``) merge key by key, the node's value
winning; lists (``taints``, ``defaultCountryCodes``, ``defaultGpuClasses``,
``allowedNamespaces``) and single values (``namespaceSelector`` included: a selector is
one condition, not a bag of keys) replace the default as a whole, so a node can clear a
default list with ``[]`` (not ``allowedNamespaces``: an empty list would refuse every
pod, so it is an error).
"""

from __future__ import annotations

from .node import (
    DEFAULT_CAPACITY,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RATE_LIMIT_SHARE,
    DEFAULT_WEIGHT,
    PROVIDER_TAINT,
    NodeConfig,
    NodeKey,
)
from .schema import NodeDefaults, NodeEntry, ProjectsFile, Taint


def node_taints(defaults: NodeDefaults, entry: NodeEntry) -> tuple[Taint, ...]:
    """The provider taint unless turned off, then the configured ones.

    A configured taint with the provider taint's key and effect takes its place: the
    API server refuses two taints with the same key and effect.
    """
    configured = entry.taints if entry.taints is not None else (defaults.taints or [])
    provider = entry.provider_taint
    if provider is None:
        provider = defaults.provider_taint if defaults.provider_taint is not None else True
    taints = list(configured)
    if provider and all(
        (t.key, t.effect) != (PROVIDER_TAINT.key, PROVIDER_TAINT.effect) for t in taints
    ):
        taints.insert(0, PROVIDER_TAINT)
    return tuple(taints)


def resolve_node(projects: ProjectsFile, entry: NodeEntry, key: NodeKey) -> NodeConfig:
    """One node's final settings from the file and its key."""
    defaults = projects.defaults
    poll_interval = entry.poll_interval or defaults.poll_interval or DEFAULT_POLL_INTERVAL
    share = entry.rate_limit_share or defaults.rate_limit_share or DEFAULT_RATE_LIMIT_SHARE
    countries = (
        entry.default_country_codes
        if entry.default_country_codes is not None
        else defaults.default_country_codes or []
    )
    gpu_classes = (
        entry.default_gpu_classes
        if entry.default_gpu_classes is not None
        else defaults.default_gpu_classes or []
    )
    allowed = (
        entry.allowed_namespaces
        if entry.allowed_namespaces is not None
        else defaults.allowed_namespaces
    )
    selector = (
        entry.namespace_selector
        if entry.namespace_selector is not None
        else defaults.namespace_selector
    )
    return NodeConfig(
        name=entry.name,
        organization=entry.organization,
        project=entry.project,
        api_key=key.api_key,
        api_key_source=key.source,
        api_key_missing=key.missing,
        salad_api_url=entry.salad_api_url or projects.salad_api_url,
        api_rate_limit=projects.api_rate_limit,
        rate_limit_share=share,
        weight=entry.weight or defaults.weight or DEFAULT_WEIGHT,
        poll_interval=poll_interval,
        labels={**(defaults.labels or {}), **(entry.labels or {})},
        taints=node_taints(defaults, entry),
        capacity={**DEFAULT_CAPACITY, **(defaults.capacity or {}), **(entry.capacity or {})},
        default_country_codes=tuple(countries),
        default_gpu_classes=tuple(gpu_classes),
        default_priority=entry.default_priority or defaults.default_priority,
        allowed_namespaces=None if allowed is None else tuple(allowed),
        namespace_selector=None if selector is None else selector.as_kubernetes(),
    )
