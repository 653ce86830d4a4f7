import re
from pathlib import Path
from typing import Any

import pytest

from nodes.translate import INVALID_ANNOTATION, KNOWN_ANNOTATIONS, UNSUPPORTED_POD_FEATURE
from tests.translate.pods import create_body, make_context, make_pod, refusal_of

PORTS = [{"name": "http", "containerPort": 8080}]


def body_with(annotations: dict[str, str], **context: Any) -> dict[str, Any]:
    return create_body(
        make_pod(container={"ports": PORTS}, annotations=annotations), make_context(**context)
    )


def field(name: str) -> str:
    return f"metadata.annotations['{name}']"


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("annotation", "node_default", "expected"),
    [
        pytest.param("us", (), ["us"], id="one"),
        pytest.param("US, ca ,de", (), ["us", "ca", "de"], id="any-case-and-spaces"),
        pytest.param("no,se", (), ["no", "se"], id="norway-is-a-country"),
        pytest.param("us,us", (), ["us"], id="repeats-dropped"),
        pytest.param(None, ("us", "ca"), ["us", "ca"], id="node-default"),
        pytest.param("de", ("us",), ["de"], id="annotation-beats-default"),
        pytest.param("any", ("us",), None, id="any-lifts-the-default"),
        pytest.param(None, (), None, id="anywhere"),
    ],
)
def test_country_codes(
    annotation: str | None, node_default: tuple[str, ...], expected: list[str] | None
) -> None:
    annotations = {"salad.com/country-codes": annotation} if annotation is not None else {}

    assert (
        body_with(annotations, default_country_codes=node_default).get("country_codes") == expected
    )


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("annotation", "node_default", "expected"),
    [
        pytest.param("high", None, "high", id="annotation"),
        pytest.param(" Batch ", None, "batch", id="any-case"),
        pytest.param(None, "low", "low", id="node-default"),
        pytest.param("medium", "low", "medium", id="annotation-beats-default"),
        pytest.param(None, None, None, id="saladcloud-default"),
    ],
)
def test_priority(annotation: str | None, node_default: str | None, expected: str | None) -> None:
    annotations = {"salad.com/container-group-priority": annotation} if annotation else {}

    assert (
        body_with(annotations, default_priority=node_default)["container"].get("priority")
        == expected
    )


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param(
            {"salad.com/networking-port": "8080", "salad.com/networking-auth": "true"},
            {"port": 8080, "protocol": "http", "auth": True},
            id="port-and-auth",
        ),
        pytest.param(
            {
                "salad.com/networking-protocol": "http",
                "salad.com/networking-port": "http",
                "salad.com/networking-auth": "False",
            },
            {"port": 8080, "protocol": "http", "auth": False},
            id="go-vk-style-named-port",
        ),
        pytest.param(
            {
                "salad.com/networking-port": "8080",
                "salad.com/networking-auth": "false",
                "salad.com/networking-load-balancer": "least_number_of_connections",
                "salad.com/networking-client-request-timeout": "30000",
                "salad.com/networking-server-response-timeout": "100000",
                "salad.com/networking-single-connection-limit": "true",
            },
            {
                "port": 8080,
                "protocol": "http",
                "auth": False,
                "load_balancer": "least_number_of_connections",
                "client_request_timeout": 30000,
                "server_response_timeout": 100000,
                "single_connection_limit": True,
            },
            id="everything",
        ),
        pytest.param({}, None, id="declared-port-alone-exposes-nothing"),
    ],
)
def test_networking(annotations: dict[str, str], expected: dict[str, Any] | None) -> None:
    assert body_with(annotations).get("networking") == expected


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("value", "expected"),
    [pytest.param("true", True, id="true"), pytest.param("FALSE", False, id="false")],
)
def test_image_caching(value: str, expected: bool) -> None:
    assert body_with({"salad.com/image-caching": value})["container"]["image_caching"] is expected


@pytest.mark.spec_checked
def test_annotations_outside_salad_com_are_not_ours() -> None:
    body = body_with({"example.com/anything": "x", "kubectl.kubernetes.io/restartedAt": "now"})

    assert "networking" not in body


@pytest.mark.parametrize(
    ("annotations", "name"),
    [
        pytest.param(
            {"salad.com/country-code": "us"}, "salad.com/country-code", id="unknown-annotation"
        ),
        pytest.param(
            {"salad.com/country-codes": "us,xx"}, "salad.com/country-codes", id="unknown-country"
        ),
        pytest.param({"salad.com/country-codes": ","}, "salad.com/country-codes", id="no-country"),
        pytest.param(
            {"salad.com/container-group-priority": "urgent"},
            "salad.com/container-group-priority",
            id="unknown-priority",
        ),
        pytest.param(
            {"salad.com/image-caching": "yes"}, "salad.com/image-caching", id="not-a-boolean"
        ),
        pytest.param({"salad.com/shm-size": "-1Gi"}, "salad.com/shm-size", id="negative-shm"),
        pytest.param(
            {"salad.com/networking-auth": "true"},
            "salad.com/networking-port",
            id="networking-without-port",
        ),
        pytest.param(
            {"salad.com/networking-port": "8080"},
            "salad.com/networking-auth",
            id="networking-without-auth",
        ),
        pytest.param(
            {"salad.com/networking-port": "0", "salad.com/networking-auth": "true"},
            "salad.com/networking-port",
            id="port-zero",
        ),
        pytest.param(
            {"salad.com/networking-port": "metrics", "salad.com/networking-auth": "true"},
            "salad.com/networking-port",
            id="unknown-port-name",
        ),
        pytest.param(
            {"salad.com/networking-port": "80", "salad.com/networking-auth": "maybe"},
            "salad.com/networking-auth",
            id="auth-not-boolean",
        ),
        pytest.param(
            {
                "salad.com/networking-port": "80",
                "salad.com/networking-auth": "true",
                "salad.com/networking-protocol": "tcp",
            },
            "salad.com/networking-protocol",
            id="protocol-not-http",
        ),
        pytest.param(
            {
                "salad.com/networking-port": "80",
                "salad.com/networking-auth": "true",
                "salad.com/networking-load-balancer": "random",
            },
            "salad.com/networking-load-balancer",
            id="unknown-load-balancer",
        ),
        pytest.param(
            {
                "salad.com/networking-port": "80",
                "salad.com/networking-auth": "true",
                "salad.com/networking-client-request-timeout": "100001",
            },
            "salad.com/networking-client-request-timeout",
            id="timeout-too-long",
        ),
        pytest.param(
            {
                "salad.com/networking-port": "80",
                "salad.com/networking-auth": "true",
                "salad.com/networking-single-connection-limit": "1",
            },
            "salad.com/networking-single-connection-limit",
            id="single-connection-not-boolean",
        ),
    ],
)
def test_bad_annotations_are_refused_naming_the_annotation(
    annotations: dict[str, str], name: str
) -> None:
    refusal = refusal_of(make_pod(container={"ports": PORTS}, annotations=annotations))

    assert (refusal.reason, refusal.field, refusal.permanent) == (
        INVALID_ANNOTATION,
        field(name),
        True,
    )


def test_the_first_bad_annotation_is_reported_before_spec_problems() -> None:
    pod = make_pod(annotations={"salad.com/country-codes": "xx"}, spec={"hostNetwork": True})

    assert refusal_of(pod).field == field("salad.com/country-codes")


def test_spec_problems_still_refuse_a_pod_with_good_annotations() -> None:
    pod = make_pod(annotations={"salad.com/country-codes": "us"}, spec={"hostNetwork": True})

    assert refusal_of(pod).reason == UNSUPPORTED_POD_FEATURE


def test_the_annotation_reference_documents_exactly_the_known_annotations() -> None:
    reference = Path(__file__).resolve().parents[2] / "docs" / "annotations.md"

    documented = set(re.findall(r"`(salad\.com/[a-z-]+)`", reference.read_text(encoding="utf-8")))

    assert documented == set(KNOWN_ANNOTATIONS)
