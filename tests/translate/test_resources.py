from typing import Any

import pytest

from nodes.translate import (
    INVALID_ANNOTATION,
    INVALID_NODE_CONFIGURATION,
    UNSUPPORTED_RESOURCE_REQUEST,
)
from tests.translate.pods import (
    CONTAINER,
    RTX_3090,
    RTX_4090,
    TOKEN_MOUNT,
    TOKEN_VOLUME,
    create_body,
    make_context,
    make_pod,
    refusal_of,
)

GPU = "nvidia.com/gpu"


def resources_of(container: dict[str, Any], **context: Any) -> dict[str, Any]:
    resources: dict[str, Any] = create_body(make_pod(container=container), make_context(**context))[
        "container"
    ]["resources"]
    return resources


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param({}, {"cpu": 1, "memory": 1024}, id="defaults"),
        pytest.param(
            {"limits": {"cpu": "1500m", "memory": "2Gi"}}, {"cpu": 2, "memory": 2048}, id="limits"
        ),
        pytest.param(
            {"requests": {"cpu": "250m", "memory": "512Mi"}},
            {"cpu": 1, "memory": 1024},
            id="small-requests",
        ),
        pytest.param(
            {"limits": {"cpu": "4"}, "requests": {"cpu": "1", "memory": "3000Mi"}},
            {"cpu": 4, "memory": 3000},
            id="limit-wins-request-fills-in",
        ),
        pytest.param(
            {"limits": {"memory": "1G"}},
            {"cpu": 1, "memory": 1024},
            id="decimal-gigabyte-to-minimum",
        ),
        pytest.param({"limits": {"memory": "1.5Gi"}}, {"cpu": 1, "memory": 1536}, id="mebibytes"),
        pytest.param(
            {"limits": {"memory": "1073741825"}}, {"cpu": 1, "memory": 1025}, id="bytes-round-up"
        ),
        pytest.param({"limits": {"cpu": "0"}}, {"cpu": 1, "memory": 1024}, id="zero-cpu-is-one"),
        pytest.param({"limits": {"cpu": "1024"}}, {"cpu": 1024, "memory": 1024}, id="most-cpu"),
        pytest.param(
            {"limits": {"ephemeral-storage": "10Gi"}},
            {"cpu": 1, "memory": 1024, "storage_amount": 10737418240},
            id="storage",
        ),
        pytest.param(
            {"requests": {"ephemeral-storage": "500Mi"}},
            {"cpu": 1, "memory": 1024, "storage_amount": 1073741824},
            id="storage-minimum",
        ),
        pytest.param({"limits": {GPU: "0"}}, {"cpu": 1, "memory": 1024}, id="zero-gpus"),
    ],
)
def test_cpu_memory_and_storage_round_up_to_what_saladcloud_allocates(
    resources: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert resources_of({"resources": resources}) == expected


@pytest.mark.spec_checked
def test_node_defaults_apply_to_containers_without_resources() -> None:
    assert resources_of({}, default_cpu=2, default_memory_mb=4096) == {"cpu": 2, "memory": 4096}


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("gpus", "annotation", "node_default", "expected"),
    [
        pytest.param("1", "RTX 4090 (24 GB)", (), [RTX_4090.id], id="annotation-by-name"),
        pytest.param("1", "rtx 4090 (24 gb)", (), [RTX_4090.id], id="name-any-case"),
        pytest.param(
            "1",
            f"{RTX_3090.id.upper()}, RTX 4090 (24 GB)",
            (),
            [RTX_3090.id, RTX_4090.id],
            id="id-and-name",
        ),
        pytest.param("1", None, ("RTX 3090 (24 GB)",), [RTX_3090.id], id="node-default"),
        pytest.param(
            "1",
            "RTX 4090 (24 GB)",
            ("RTX 3090 (24 GB)",),
            [RTX_4090.id],
            id="annotation-beats-default",
        ),
        pytest.param(
            None, "RTX 4090 (24 GB)", (), [RTX_4090.id], id="annotation-without-gpu-limit"
        ),
        pytest.param(None, None, ("RTX 3090 (24 GB)",), None, id="default-only-for-gpu-pods"),
        pytest.param(
            "1", "RTX 4090 (24 GB),RTX 4090 (24 GB)", (), [RTX_4090.id], id="repeats-dropped"
        ),
    ],
)
def test_gpu_classes_come_from_the_annotation_or_the_node_default(
    gpus: str | None,
    annotation: str | None,
    node_default: tuple[str, ...],
    expected: list[str] | None,
) -> None:
    container = {"resources": {"limits": {GPU: gpus}}} if gpus else {}
    annotations = {"salad.com/gpu-classes": annotation} if annotation else None
    pod = make_pod(container=container, annotations=annotations)

    body = create_body(pod, make_context(default_gpu_classes=node_default))

    assert body["container"]["resources"].get("gpu_classes") == expected


@pytest.mark.parametrize(
    ("resources", "annotations", "context", "reason", "field"),
    [
        pytest.param(
            {"limits": {GPU: "2"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['{GPU}']",
            id="two-gpus",
        ),
        pytest.param(
            {"limits": {GPU: "500m"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['{GPU}']",
            id="half-a-gpu",
        ),
        pytest.param(
            {"requests": {GPU: "1"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.requests['{GPU}']",
            id="gpu-without-classes",
        ),
        pytest.param(
            {"limits": {GPU: "1"}},
            None,
            {"default_gpu_classes": ("RTX 9999",)},
            INVALID_NODE_CONFIGURATION,
            f"{CONTAINER}.resources.limits['{GPU}']",
            id="unknown-node-default",
        ),
        pytest.param(
            {"limits": {GPU: "1"}},
            {"salad.com/gpu-classes": "RTX 9999"},
            {},
            INVALID_ANNOTATION,
            "metadata.annotations['salad.com/gpu-classes']",
            id="unknown-class-name",
        ),
        pytest.param(
            {},
            {"salad.com/gpu-classes": "00000000-0000-0000-0000-000000000000"},
            {},
            INVALID_ANNOTATION,
            "metadata.annotations['salad.com/gpu-classes']",
            id="unknown-class-id",
        ),
        pytest.param(
            {},
            {"salad.com/gpu-classes": " , "},
            {},
            INVALID_ANNOTATION,
            "metadata.annotations['salad.com/gpu-classes']",
            id="no-class",
        ),
        pytest.param(
            {"limits": {"cpu": "1025"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['cpu']",
            id="too-much-cpu",
        ),
        pytest.param(
            {"requests": {"memory": "2Pi"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.requests['memory']",
            id="too-much-memory",
        ),
        pytest.param(
            {"limits": {"ephemeral-storage": "2Ei"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['ephemeral-storage']",
            id="too-much-storage",
        ),
        pytest.param(
            {"limits": {"amd.com/gpu": "1"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['amd.com/gpu']",
            id="other-device",
        ),
        pytest.param(
            {"limits": {"hugepages-2Mi": "1Gi"}},
            None,
            {},
            UNSUPPORTED_RESOURCE_REQUEST,
            f"{CONTAINER}.resources.limits['hugepages-2Mi']",
            id="hugepages",
        ),
    ],
)
def test_resources_saladcloud_cannot_allocate_are_refused(
    resources: dict[str, Any],
    annotations: dict[str, str] | None,
    context: dict[str, Any],
    reason: str,
    field: str,
) -> None:
    pod = make_pod(container={"resources": resources}, annotations=annotations)

    refusal = refusal_of(pod, make_context(**context))

    assert (refusal.reason, refusal.field, refusal.permanent) == (reason, field, True)


SHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


def shm_pod(
    size_limit: str | None, annotation: str | None = None, memory: str = "4Gi"
) -> dict[str, Any]:
    empty_dir: dict[str, Any] = {"medium": "Memory"}
    if size_limit is not None:
        empty_dir["sizeLimit"] = size_limit
    return make_pod(
        container={
            "resources": {"limits": {"memory": memory}},
            "volumeMounts": [TOKEN_MOUNT, SHM_MOUNT],
        },
        spec={"volumes": [TOKEN_VOLUME, {"name": "dshm", "emptyDir": empty_dir}]},
        annotations={"salad.com/shm-size": annotation} if annotation else None,
    )


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("size_limit", "annotation", "expected"),
    [
        pytest.param("2Gi", None, 2048, id="size-limit"),
        pytest.param(None, None, 4096, id="no-limit-is-container-memory"),
        pytest.param("10Mi", None, 64, id="saladcloud-minimum"),
        pytest.param("2Gi", "1Gi", 1024, id="annotation-wins"),
        pytest.param("1.5Gi", None, 1536, id="fractional"),
    ],
)
def test_a_memory_empty_dir_at_dev_shm_sets_shared_memory(
    size_limit: str | None, annotation: str | None, expected: int
) -> None:
    body = create_body(shm_pod(size_limit, annotation))

    assert body["container"]["resources"]["shm_size"] == expected


@pytest.mark.spec_checked
def test_the_shm_size_annotation_works_without_a_volume() -> None:
    pod = make_pod(annotations={"salad.com/shm-size": "512Mi"})

    assert create_body(pod)["container"]["resources"]["shm_size"] == 512


@pytest.mark.spec_checked
def test_without_shared_memory_settings_saladcloud_keeps_its_default() -> None:
    assert "shm_size" not in create_body(make_pod())["container"]["resources"]


@pytest.mark.parametrize(
    ("size_limit", "annotation", "field"),
    [
        pytest.param("lots", None, "spec.volumes[1].emptyDir.sizeLimit", id="bad-size-limit"),
        pytest.param(
            None, "big", "metadata.annotations['salad.com/shm-size']", id="bad-annotation"
        ),
        pytest.param(None, "2Ei", "metadata.annotations['salad.com/shm-size']", id="too-big"),
    ],
)
def test_bad_shared_memory_sizes_are_refused(
    size_limit: str | None, annotation: str | None, field: str
) -> None:
    refusal = refusal_of(shm_pod(size_limit, annotation))

    assert refusal.field == field
