from typing import Any

import pytest

from nodes.translate import ObjectReference, RequiredObjects, required_objects
from tests.translate.pods import make_pod


def secret_ref(name: str, optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "key": "k"}
    if optional is not None:
        ref["optional"] = optional
    return {"name": "V", "valueFrom": {"secretKeyRef": ref}}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        pytest.param(make_pod(), RequiredObjects(), id="nothing"),
        pytest.param(
            make_pod(
                container={
                    "env": [
                        secret_ref("db"),
                        {
                            "name": "C",
                            "valueFrom": {
                                "configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}
                            },
                        },
                        {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "envFrom": [
                        {"secretRef": {"name": "bulk"}},
                        {"configMapRef": {"name": "app-settings"}},
                    ],
                }
            ),
            RequiredObjects(
                secrets=(ObjectReference("bulk", False), ObjectReference("db", False)),
                config_maps=(ObjectReference("app-settings", False), ObjectReference("cfg", True)),
            ),
            id="env-and-env-from-sorted",
        ),
        pytest.param(
            make_pod(container={"env": [secret_ref("db", True), secret_ref("db", False)]}),
            RequiredObjects(secrets=(ObjectReference("db", False),)),
            id="required-once-required",
        ),
        pytest.param(
            make_pod(container={"env": [secret_ref("db", True), secret_ref("db", True)]}),
            RequiredObjects(secrets=(ObjectReference("db", True),)),
            id="optional-everywhere",
        ),
        pytest.param(
            make_pod(spec={"imagePullSecrets": [{"name": "regcred"}]}),
            RequiredObjects(secrets=(ObjectReference("regcred", True),)),
            id="pull-secrets-are-optional",
        ),
        pytest.param(
            make_pod(annotations={"salad.com/logging-secret": "logs"}),
            RequiredObjects(secrets=(ObjectReference("logs", False),)),
            id="logging-secret",
        ),
        pytest.param(
            make_pod(
                container={"env": [secret_ref("shared")]},
                spec={"imagePullSecrets": [{"name": "shared"}]},
            ),
            RequiredObjects(secrets=(ObjectReference("shared", False),)),
            id="pull-secret-also-read-by-env",
        ),
    ],
)
def test_required_objects_names_exactly_what_translation_reads(
    pod: dict[str, Any], expected: RequiredObjects
) -> None:
    assert required_objects(pod) == expected


def test_names_are_listed_for_fetching() -> None:
    objects = required_objects(
        make_pod(
            container={"env": [secret_ref("b"), secret_ref("a")]},
            spec={"imagePullSecrets": [{"name": "c"}]},
        )
    )

    assert objects.secret_names == ("a", "b", "c")
    assert objects.config_map_names == ()
