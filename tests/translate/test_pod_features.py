"""Pods a container group cannot run are refused, naming the field that asks for it."""

import copy
from typing import Any

import pytest

from nodes.translate import INVALID_IMAGE_NAME, UNSUPPORTED_POD_FEATURE
from tests.translate.pods import (
    CONTAINER,
    TOKEN_MOUNT,
    TOKEN_VOLUME,
    create_body,
    make_pod,
    refusal_of,
)

SIDE_CAR = {"name": "sidecar", "image": "busybox"}
SHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
SHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


def with_volume(volume: dict[str, Any], mount: dict[str, Any] | None) -> dict[str, Any]:
    mounts = [TOKEN_MOUNT, mount] if mount else [TOKEN_MOUNT]
    return make_pod(
        container={"volumeMounts": mounts},
        spec={"volumes": [TOKEN_VOLUME, volume]},
    )


@pytest.mark.parametrize(
    ("pod", "reason", "field"),
    [
        pytest.param(
            make_pod(spec={"containers": [{"name": "app", "image": "nginx"}, SIDE_CAR]}),
            UNSUPPORTED_POD_FEATURE,
            "spec.containers",
            id="several-containers",
        ),
        pytest.param(
            make_pod(spec={"initContainers": [SIDE_CAR]}),
            UNSUPPORTED_POD_FEATURE,
            "spec.initContainers",
            id="init-container",
        ),
        pytest.param(
            make_pod(spec={"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}),
            UNSUPPORTED_POD_FEATURE,
            "spec.ephemeralContainers",
            id="ephemeral-container",
        ),
        pytest.param(
            make_pod(spec={"hostNetwork": True}),
            UNSUPPORTED_POD_FEATURE,
            "spec.hostNetwork",
            id="host-network",
        ),
        pytest.param(
            make_pod(spec={"hostPID": True}), UNSUPPORTED_POD_FEATURE, "spec.hostPID", id="host-pid"
        ),
        pytest.param(
            make_pod(spec={"hostIPC": True}), UNSUPPORTED_POD_FEATURE, "spec.hostIPC", id="host-ipc"
        ),
        pytest.param(
            make_pod(
                container={
                    "ports": [{"containerPort": 80}, {"containerPort": 443, "hostPort": 443}]
                }
            ),
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.ports[1].hostPort",
            id="host-port",
        ),
        pytest.param(
            with_volume(
                {"name": "cfg", "configMap": {"name": "settings"}},
                {"name": "cfg", "mountPath": "/etc/app"},
            ),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="config-map-volume",
        ),
        pytest.param(
            with_volume(
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "data", "mountPath": "/data"},
            ),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="persistent-volume",
        ),
        pytest.param(
            with_volume(
                {"name": "scratch", "emptyDir": {}}, {"name": "scratch", "mountPath": "/tmp"}
            ),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="disk-empty-dir",
        ),
        pytest.param(
            with_volume({"name": "dshm", "emptyDir": {}}, SHM_MOUNT),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="disk-empty-dir-at-dev-shm",
        ),
        pytest.param(
            with_volume(SHM_VOLUME, {"name": "dshm", "mountPath": "/cache"}),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="memory-empty-dir-elsewhere",
        ),
        pytest.param(
            with_volume(SHM_VOLUME, None),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[1]",
            id="memory-empty-dir-unmounted",
        ),
        pytest.param(
            make_pod(
                container={"volumeMounts": [{"name": "kube-api-access-evil", "mountPath": "/x"}]},
                spec={
                    "volumes": [
                        {
                            "name": "kube-api-access-evil",
                            "projected": {"sources": [{"secret": {"name": "db"}}]},
                        }
                    ]
                },
                token_volume=False,
            ),
            UNSUPPORTED_POD_FEATURE,
            "spec.volumes[0]",
            id="look-alike-token-volume",
        ),
        pytest.param(
            make_pod(container={"workingDir": "/srv"}),
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.workingDir",
            id="working-dir",
        ),
        pytest.param(
            make_pod(container={"volumeDevices": [{"name": "raw", "devicePath": "/dev/xvda"}]}),
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.volumeDevices",
            id="block-device",
        ),
        pytest.param(
            make_pod(container={"image": ""}),
            INVALID_IMAGE_NAME,
            f"{CONTAINER}.image",
            id="no-image",
        ),
        pytest.param(
            make_pod(container={"image": "registry.example.com/" + "a" * 2040}),
            INVALID_IMAGE_NAME,
            f"{CONTAINER}.image",
            id="image-too-long",
        ),
        pytest.param(
            make_pod(spec={"containers": []}),
            UNSUPPORTED_POD_FEATURE,
            "spec.containers",
            id="no-container",
        ),
        pytest.param(make_pod(uid=""), UNSUPPORTED_POD_FEATURE, "metadata.uid", id="no-uid"),
    ],
)
def test_unsupported_pods_are_refused_permanently(
    pod: dict[str, Any], reason: str, field: str
) -> None:
    refusal = refusal_of(pod)

    assert (refusal.reason, refusal.field, refusal.permanent) == (reason, field, True)
    assert refusal.message.startswith(f"{field}: ")


@pytest.mark.spec_checked
def test_the_injected_service_account_token_volume_is_ignored() -> None:
    body = create_body(make_pod())

    assert body["container"]["image"] == "ghcr.io/acme/app:1.0"


@pytest.mark.spec_checked
def test_the_openshift_token_volume_with_its_service_ca_is_ignored_too() -> None:
    volume = copy.deepcopy(TOKEN_VOLUME)
    volume["projected"]["sources"].append({"configMap": {"name": "openshift-service-ca.crt"}})

    create_body(make_pod(spec={"volumes": [volume]}))


@pytest.mark.spec_checked
def test_shared_memory_and_the_token_volume_together_are_accepted() -> None:
    body = create_body(with_volume(SHM_VOLUME, SHM_MOUNT))

    assert body["container"]["resources"]["shm_size"] == 1024


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("Always", "always", id="always"),
        pytest.param("OnFailure", "on_failure", id="on-failure"),
        pytest.param("Never", "never", id="never"),
        pytest.param(None, "always", id="default"),
    ],
)
def test_restart_policy_maps_to_saladcloud(policy: str | None, expected: str) -> None:
    body = create_body(make_pod(spec={"restartPolicy": policy}))

    assert body["restart_policy"] == expected


@pytest.mark.spec_checked
def test_a_minimal_pod_becomes_a_single_replica_autostarting_group() -> None:
    body = create_body(make_pod())

    assert body == {
        "name": "default-web-7d9f8c6b5d-x2x7k-0a1b2c3d",
        "display_name": "default web-7d9f8c6b5d-x2x7k",
        "container": {"image": "ghcr.io/acme/app:1.0", "resources": {"cpu": 1, "memory": 1024}},
        "autostart_policy": True,
        "replicas": 1,
        "restart_policy": "always",
    }


@pytest.mark.spec_checked
def test_the_same_pod_always_translates_to_the_same_body() -> None:
    pod = make_pod(
        container={
            "command": ["/app"],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "readinessProbe": {"tcpSocket": {"port": 80}},
        },
        annotations={"salad.com/country-codes": "us,de"},
    )

    assert create_body(pod) == create_body(copy.deepcopy(pod))
