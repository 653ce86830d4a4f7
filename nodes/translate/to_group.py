"""A pod as a SaladCloud container-group create body, or the reason it cannot be one.

The pod is read in spec order (metadata, volumes, init containers, the container's
fields, pod-level flags, pull secrets), and every problem is noted. The answer is the
first permanent problem, else the first retryable one (a missing Secret), else the
create body. Nothing here does I/O: the caller fetches what
:func:`required_objects` names and passes it in the :class:`TranslationContext`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from nodes.saladcloud.models import (
    ContainerGroupPrototype,
    CreateContainer,
    CreateResources,
    Priority,
    RestartPolicy,
)
from nodes.translate import env as environment
from nodes.translate.annotations import SHM_SIZE, salad_settings
from nodes.translate.command import container_command
from nodes.translate.context import ObjectReference, RequiredObjects, TranslationContext
from nodes.translate.names import container_group_name, display_name
from nodes.translate.pod_features import (
    check_container,
    check_container_devices,
    check_containers,
    check_pod_level,
)
from nodes.translate.pod_json import obj, objs, strings, text
from nodes.translate.probes import PROBES, container_probe, probe_user_agent
from nodes.translate.references import CONTAINER_PATH, pod_references
from nodes.translate.refusal import (
    INVALID_IMAGE_NAME,
    UNSUPPORTED_POD_FEATURE,
    Problems,
    Refusal,
    annotation_field,
)
from nodes.translate.registry_auth import registry_authentication
from nodes.translate.resources import allocate, declared_resources
from nodes.translate.spec_bounds import IMAGE_MAX, check_text
from nodes.translate.volumes import check_volumes

RESTART_POLICIES: dict[str, RestartPolicy] = {
    "Always": "always",
    "OnFailure": "on_failure",
    "Never": "never",
}


def required_objects(pod: Mapping[str, Any]) -> RequiredObjects:
    """The Secrets and ConfigMaps (of the pod's namespace) translation will read.

    A name referenced both optionally and not is required. Call it only for a pod
    :func:`invalid_reference` passed: every name here is then an object name.
    """
    wanted: dict[str, dict[str, bool]] = {"Secret": {}, "ConfigMap": {}}
    for ref in pod_references(pod):
        wanted[ref.kind][ref.name] = wanted[ref.kind].get(ref.name, True) and ref.optional

    def listed(kind: str) -> tuple[ObjectReference, ...]:
        return tuple(
            ObjectReference(name, optional) for name, optional in sorted(wanted[kind].items())
        )

    return RequiredObjects(secrets=listed("Secret"), config_maps=listed("ConfigMap"))


def container_group_for_pod(
    pod: Mapping[str, Any], ctx: TranslationContext
) -> ContainerGroupPrototype | Refusal:
    """The create body for ``pod``, or why it cannot run on SaladCloud."""
    problems = Problems()
    metadata, spec = obj(pod.get("metadata")), obj(pod.get("spec"))
    namespace, name = text(metadata.get("namespace")), text(metadata.get("name"))
    containers = objs(spec.get("containers"))
    if not containers:
        return Refusal(
            reason=UNSUPPORTED_POD_FEATURE,
            message="spec.containers: the pod has no container",
            field="spec.containers",
        )
    container = containers[0]
    path = CONTAINER_PATH
    try:
        group_name = container_group_name(namespace, name, text(metadata.get("uid")))
    except ValueError as error:
        return Refusal(
            reason=UNSUPPORTED_POD_FEATURE, message=f"metadata.uid: {error}", field="metadata.uid"
        )

    settings = salad_settings(
        strings(metadata.get("annotations")),
        container,
        gpu_classes=ctx.gpu_classes,
        secrets=ctx.secrets,
        problems=problems,
    )
    shared_memory = check_volumes(spec, container, problems)
    check_containers(spec, problems)

    image = text(container.get("image")).strip()
    check_text(
        image,
        field=f"{path}.image",
        what="the image",
        reason=INVALID_IMAGE_NAME,
        problems=problems,
        maximum=IMAGE_MAX,
    )
    # The container's fields in order are command, args, workingDir, ports, envFrom,
    # env, resources. But command needs env (for $(VAR)) and env needs resources (for
    # resourceFieldRef): compute in that order, and file the problems in spec order.
    command_problems, env_problems, resource_problems = Problems(), Problems(), Problems()
    declared = declared_resources(container, path, resource_problems)
    allocation = allocate(
        declared,
        path,
        annotated_gpu_classes=settings.gpu_classes,
        shared_memory=shared_memory,
        annotated_shm_bytes=settings.shm_bytes,
        shm_field=(
            annotation_field(SHM_SIZE)
            if settings.shm_bytes is not None or shared_memory is None
            else shared_memory.field
        ),
        ctx=ctx,
        problems=resource_problems,
    )
    variables = environment.container_environment(
        pod,
        container,
        path,
        ctx=ctx,
        declared=declared,
        allocation=allocation,
        problems=env_problems,
    )
    command = container_command(container, path, variables, command_problems)
    problems.extend(command_problems)
    check_container(container, path, problems)
    problems.extend(env_problems)
    problems.extend(resource_problems)
    check_container_devices(container, path, problems)

    user_agent = probe_user_agent(ctx.kubernetes_version)
    static_env = environment.static_environment(container)
    probes = {
        request_name: container_probe(
            container,
            kind,
            path,
            user_agent=user_agent,
            static_environment=static_env,
            problems=problems,
        )
        for kind, request_name in PROBES
    }

    check_pod_level(spec, problems)
    restart_policy = text(spec.get("restartPolicy"), "Always")
    if restart_policy not in RESTART_POLICIES:
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            "spec.restartPolicy",
            f"{restart_policy!r} is not Always, OnFailure or Never",
        )
    authentication = registry_authentication(
        image, objs(spec.get("imagePullSecrets")), ctx.secrets, problems
    )

    refusal = problems.first()
    if refusal is not None:
        return refusal

    if settings.country_codes is not None:
        country_codes = list(settings.country_codes) or None
    else:
        country_codes = list(ctx.default_country_codes) or None
    return ContainerGroupPrototype(
        name=group_name,
        display_name=display_name(namespace, name),
        container=CreateContainer(
            image=image,
            resources=CreateResources(
                cpu=allocation.cpu,
                memory=allocation.memory_mb,
                gpu_classes=list(allocation.gpu_classes) or None,
                storage_amount=allocation.storage_bytes,
                shm_size=allocation.shm_mb,
            ),
            command=command,
            environment_variables=variables or None,
            image_caching=settings.image_caching,
            priority=settings.priority or cast(Priority | None, ctx.default_priority),
            registry_authentication=authentication,
            logging=settings.logging,
        ),
        autostart_policy=True,
        replicas=1,
        restart_policy=RESTART_POLICIES[restart_policy],
        country_codes=country_codes,
        networking=settings.networking,
        liveness_probe=probes["liveness_probe"],
        readiness_probe=probes["readiness_probe"],
        startup_probe=probes["startup_probe"],
    )
