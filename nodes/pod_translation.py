"""A pod as SaladCloud will see it: admitted, its references read, translated.

This is the I/O around the pure translation (``nodes.translate``): whether the pod may
use the node at all (``tenancy``; its references are names), the Secrets and
ConfigMaps it names (read one by one, with the node's rights: hence the checks first),
the organization's GPU classes, and then the create body, or why there is none. It
also says which values must be kept out of whatever SaladCloud answers about the body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import anyio

from .kube import KubeClient
from .references import ReferenceReader, StoredObject
from .saladcloud.client import SaladClient
from .saladcloud.models import ContainerGroupPrototype, GpuClass
from .settings import NodeSettings
from .tenancy import tenancy_refusal
from .translate import Refusal, TranslationContext, container_group_for_pod, required_objects
from .translate.references import forbidden_source, invalid_reference
from .translate.sensitive import sensitive_values

JSON = dict[str, Any]

_GPU_CLASSES_TTL = 600.0


class PodTranslator:
    def __init__(self, settings: NodeSettings, kube: KubeClient, salad: SaladClient) -> None:
        self._settings = settings
        self._salad = salad
        self._references = ReferenceReader(kube)
        self._gpu_classes: tuple[float, list[GpuClass]] | None = None
        self._gpu_classes_read = anyio.Lock()

    async def translate(
        self, pod: JSON
    ) -> tuple[ContainerGroupPrototype | Refusal, frozenset[str]]:
        """The create body for ``pod`` (or why not), with the values to keep out of
        what SaladCloud may say back about it. Nothing is read for a pod that may not
        use the node."""
        refusal = await self._admit(pod)
        if refusal is not None:
            return refusal, frozenset()
        secrets, config_maps = await self._sources(pod)
        refusal = forbidden_source(pod, {name: s.type for name, s in secrets.items()})
        if refusal is not None:
            return refusal, frozenset()
        context = await self._context(pod, secrets, config_maps)
        body = container_group_for_pod(pod, context)
        if isinstance(body, Refusal):
            return body, frozenset()
        return body, sensitive_values(context.secrets, body)

    async def _admit(self, pod: JSON) -> Refusal | None:
        """Whether the pod may use this node, and names only names: judged before
        anything is read for it (its Secrets, its namespace's) and before SaladCloud."""
        settings = self._settings
        labels = None
        if settings.namespace_selector is not None:
            namespace = str((pod.get("metadata") or {}).get("namespace"))
            labels = await self._references.namespace_labels(namespace)
        refusal = tenancy_refusal(
            pod,
            node=settings.name,
            allowed_namespaces=settings.allowed_namespaces,
            namespace_selector=settings.namespace_selector,
            namespace_labels=labels,
            taints=settings.taints,
        )
        return refusal or invalid_reference(pod)

    async def _sources(self, pod: JSON) -> tuple[dict[str, StoredObject], dict[str, StoredObject]]:
        """The Secrets and ConfigMaps the pod names, as they are now."""
        namespace = str((pod.get("metadata") or {}).get("namespace"))
        needed = required_objects(pod)
        secrets = await self._references.read("secrets", namespace, needed.secret_names)
        config_maps = await self._references.read("configmaps", namespace, needed.config_map_names)
        return secrets, config_maps

    async def _context(
        self,
        pod: JSON,
        secrets: Mapping[str, StoredObject],
        config_maps: Mapping[str, StoredObject],
    ) -> TranslationContext:
        return TranslationContext(
            node_name=self._settings.name,
            node_ip=self._settings.node_ip,
            organization=self._settings.organization,
            project=self._settings.project,
            secrets={name: stored.data for name, stored in secrets.items()},
            config_maps={name: stored.data for name, stored in config_maps.items()},
            gpu_classes=await self._gpu_class_list(pod),
            default_country_codes=self._settings.default_country_codes,
            default_gpu_classes=self._settings.default_gpu_classes,
            default_priority=self._settings.default_priority,
            kubernetes_version=self._settings.cluster.version,
        )

    async def _gpu_class_list(self, pod: JSON) -> list[GpuClass]:
        wants = bool(self._settings.default_gpu_classes) or any(
            k.startswith("salad.com/gpu")
            for k in ((pod.get("metadata") or {}).get("annotations") or {})
        )
        if not wants:
            return []
        # One read for the pods that arrive together, not one each: it ranks with the
        # creates, and each read would be a create's token.
        async with self._gpu_classes_read:
            now = time.monotonic()
            if self._gpu_classes is None or now - self._gpu_classes[0] > _GPU_CLASSES_TTL:
                self._gpu_classes = (now, await self._salad.list_gpu_classes())
            return self._gpu_classes[1]
