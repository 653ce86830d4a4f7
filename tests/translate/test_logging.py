from typing import Any

import pytest

from nodes.translate import CREATE_CONTAINER_CONFIG_ERROR, INVALID_ANNOTATION
from tests.translate.pods import create_body, make_context, make_pod, refusal_of

TOKEN = "t0k3n-value"
SECRETS = {
    "logs": {
        "splunk-token": TOKEN,
        "axiom-api-token": TOKEN,
        "datadog-api-key": TOKEN,
        "new-relic-ingestion-key": TOKEN,
        "http-password": TOKEN,
        "http-headers": '{"Authorization": "Bearer ' + TOKEN + '"}',
    },
    "partial": {"unrelated": "x"},
}


def logging_of(annotations: dict[str, str]) -> dict[str, Any]:
    body = create_body(make_pod(annotations=annotations), make_context(secrets=SECRETS))
    logging: dict[str, Any] = body["container"]["logging"]
    return logging


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param(
            {
                "salad.com/logging-new-relic-host": "https://log-api.newrelic.com",
                "salad.com/logging-new-relic-ingestion-key": "key",
            },
            {"new_relic": {"host": "https://log-api.newrelic.com", "ingestion_key": "key"}},
            id="new-relic-go-vk-style",
        ),
        pytest.param(
            {
                "salad.com/logging-splunk-host": "splunk.example.com",
                "salad.com/logging-splunk-token": "tok",
            },
            {"splunk": {"host": "splunk.example.com", "token": "tok"}},
            id="splunk-go-vk-style",
        ),
        pytest.param(
            {
                "salad.com/logging-tcp-host": "logs.example.com",
                "salad.com/logging-tcp-port": "5170",
            },
            {"tcp": {"host": "logs.example.com", "port": 5170}},
            id="tcp-go-vk-style",
        ),
        pytest.param(
            {
                "salad.com/logging-axiom-host": "api.axiom.co",
                "salad.com/logging-axiom-dataset": "app",
                "salad.com/logging-secret": "logs",
            },
            {"axiom": {"host": "api.axiom.co", "dataset": "app", "api_token": TOKEN}},
            id="axiom-token-from-secret",
        ),
        pytest.param(
            {
                "salad.com/logging-datadog-host": "http-intake.logs.datadoghq.com",
                "salad.com/logging-datadog-tags": "env:prod, team:ml",
                "salad.com/logging-secret": "logs",
            },
            {
                "datadog": {
                    "host": "http-intake.logs.datadoghq.com",
                    "api_key": TOKEN,
                    "tags": [{"name": "env", "value": "prod"}, {"name": "team", "value": "ml"}],
                }
            },
            id="datadog-with-tags",
        ),
        pytest.param(
            {"salad.com/logging-datadog-host": "intake", "salad.com/logging-datadog-api-key": "k"},
            {"datadog": {"host": "intake", "api_key": "k", "tags": []}},
            id="datadog-tags-always-sent",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "logs.example.com",
                "salad.com/logging-http-port": "443",
            },
            {
                "http": {
                    "host": "logs.example.com",
                    "port": 443,
                    "format": "json",
                    "compression": "none",
                }
            },
            id="http-defaults",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "logs.example.com",
                "salad.com/logging-http-port": "8443",
                "salad.com/logging-http-path": "/ingest",
                "salad.com/logging-http-format": "JSON_LINES",
                "salad.com/logging-http-compression": "gzip",
                "salad.com/logging-http-user": "shipper",
                "salad.com/logging-secret": "logs",
            },
            {
                "http": {
                    "host": "logs.example.com",
                    "port": 8443,
                    "format": "json_lines",
                    "compression": "gzip",
                    "headers": [{"name": "Authorization", "value": f"Bearer {TOKEN}"}],
                    "path": "/ingest",
                    "user": "shipper",
                    "password": TOKEN,
                }
            },
            id="http-everything-secrets-from-secret",
        ),
        pytest.param(
            {
                "salad.com/logging-splunk-host": "splunk.example.com",
                "salad.com/logging-splunk-token": "from-annotation",
                "salad.com/logging-secret": "logs",
            },
            {"splunk": {"host": "splunk.example.com", "token": "from-annotation"}},
            id="annotation-beats-secret",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "h",
                "salad.com/logging-http-port": "80",
                "salad.com/logging-http-headers": '{"X-Team": "ml"}',
            },
            {
                "http": {
                    "host": "h",
                    "port": 80,
                    "format": "json",
                    "compression": "none",
                    "headers": [{"name": "X-Team", "value": "ml"}],
                }
            },
            id="http-headers-annotation",
        ),
    ],
)
def test_logging_providers(annotations: dict[str, str], expected: dict[str, Any]) -> None:
    assert logging_of(annotations) == expected


@pytest.mark.parametrize(
    ("annotations", "reason", "name", "permanent"),
    [
        pytest.param(
            {
                "salad.com/logging-splunk-host": "s",
                "salad.com/logging-splunk-token": "t",
                "salad.com/logging-tcp-host": "h",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-tcp-host",
            True,
            id="two-providers",
        ),
        pytest.param(
            {"salad.com/logging-splunk-host": "s"},
            INVALID_ANNOTATION,
            "salad.com/logging-splunk-token",
            True,
            id="required-missing",
        ),
        pytest.param(
            {"salad.com/logging-splunk-host": "s", "salad.com/logging-secret": "absent"},
            CREATE_CONTAINER_CONFIG_ERROR,
            "salad.com/logging-secret",
            False,
            id="secret-missing",
        ),
        pytest.param(
            {"salad.com/logging-splunk-host": "s", "salad.com/logging-secret": "partial"},
            CREATE_CONTAINER_CONFIG_ERROR,
            "salad.com/logging-secret",
            False,
            id="secret-key-missing",
        ),
        pytest.param(
            {"salad.com/logging-secret": "logs"},
            INVALID_ANNOTATION,
            "salad.com/logging-secret",
            True,
            id="secret-without-provider",
        ),
        pytest.param(
            {"salad.com/logging-secret": " "},
            INVALID_ANNOTATION,
            "salad.com/logging-secret",
            True,
            id="secret-unnamed",
        ),
        pytest.param(
            {"salad.com/logging-tcp-host": "h", "salad.com/logging-tcp-port": "port"},
            INVALID_ANNOTATION,
            "salad.com/logging-tcp-port",
            True,
            id="bad-port",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "h",
                "salad.com/logging-http-port": "80",
                "salad.com/logging-http-format": "xml",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-http-format",
            True,
            id="unknown-format",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "h",
                "salad.com/logging-http-port": "80",
                "salad.com/logging-http-compression": "br",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-http-compression",
            True,
            id="unknown-compression",
        ),
        pytest.param(
            {
                "salad.com/logging-http-host": "h",
                "salad.com/logging-http-port": "80",
                "salad.com/logging-http-headers": "X: y",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-http-headers",
            True,
            id="headers-not-json",
        ),
        pytest.param(
            {
                "salad.com/logging-datadog-host": "h",
                "salad.com/logging-datadog-api-key": "k",
                "salad.com/logging-datadog-tags": "env",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-datadog-tags",
            True,
            id="tag-without-value",
        ),
        pytest.param(
            {"salad.com/logging-splunk-host": "h" * 1001, "salad.com/logging-splunk-token": "t"},
            INVALID_ANNOTATION,
            "salad.com/logging-splunk-host",
            True,
            id="value-too-long",
        ),
        pytest.param(
            {
                "salad.com/logging-tcp-host": "h",
                "salad.com/logging-tcp-port": "1",
                "salad.com/logging-tcp-tls": "true",
            },
            INVALID_ANNOTATION,
            "salad.com/logging-tcp-tls",
            True,
            id="unknown-setting",
        ),
    ],
)
def test_bad_logging_annotations_are_refused(
    annotations: dict[str, str], reason: str, name: str, permanent: bool
) -> None:
    refusal = refusal_of(make_pod(annotations=annotations), make_context(secrets=SECRETS))

    assert (refusal.reason, refusal.field, refusal.permanent) == (
        reason,
        f"metadata.annotations['{name}']",
        permanent,
    )
    assert TOKEN not in refusal.message


def test_a_secret_value_saladcloud_rejects_is_refused_without_showing_it() -> None:
    secrets = {"logs": {"splunk-token": f"{TOKEN}\n{TOKEN}"}}
    pod = make_pod(
        annotations={"salad.com/logging-splunk-host": "s", "salad.com/logging-secret": "logs"}
    )

    refusal = refusal_of(pod, make_context(secrets=secrets))

    assert refusal.field == "metadata.annotations['salad.com/logging-secret'] key splunk-token"
    assert TOKEN not in refusal.message


@pytest.mark.spec_checked
def test_the_trailing_newline_of_a_secret_file_is_not_part_of_the_value() -> None:
    secrets = {"logs": {"splunk-token": f"{TOKEN}\n"}}
    pod = make_pod(
        annotations={"salad.com/logging-splunk-host": "s", "salad.com/logging-secret": "logs"}
    )

    body = create_body(pod, make_context(secrets=secrets))

    assert body["container"]["logging"] == {"splunk": {"host": "s", "token": TOKEN}}
