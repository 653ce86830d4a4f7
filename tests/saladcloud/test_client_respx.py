"""The SaladCloud client against scripted answers: retries, errors, parsing, secrecy."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from nodes.metrics import NodeMetrics
from nodes.saladcloud import models
from nodes.saladcloud.client import RetryPolicy, SaladClient
from nodes.saladcloud.errors import (
    SaladAuthError,
    SaladBadRequest,
    SaladError,
    SaladNameConflict,
    SaladNotFound,
    SaladProtocolError,
    SaladRateLimited,
    SaladUnavailable,
)
from nodes.saladcloud.ratelimit import KeyBudget

from .builders import KEY, ORG, PROJECT, client, group_json, prototype
from .clocks import JumpClock

pytestmark = pytest.mark.anyio

BASE = "https://api.salad.test/api/public"
GROUPS = f"/organizations/{ORG}/projects/{PROJECT}/containers"
GROUP = GROUPS + "/pod-1"
CLOUDFLARE_502 = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>
<body><h1>Bad Gateway</h1><p>The web server reported a bad gateway error.</p></body></html>"""


def problem(status: int, title: str, detail: str, kind: str = "about:blank") -> httpx.Response:
    body = {"type": kind, "title": title, "status": status, "detail": detail}
    return httpx.Response(status, json=body)


@dataclass
class Rig:
    router: respx.MockRouter
    salad: SaladClient
    clock: JumpClock
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = JumpClock()
    registry = CollectorRegistry()
    retry = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=8.0)
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        async with httpx.AsyncClient() as http:
            budget = KeyBudget(240, clock=clock)
            salad = client(http, BASE, budget, metrics=NodeMetrics(registry), retry=retry)
            yield Rig(router, salad, clock, registry)


# --- retries --------------------------------------------------------------------------


async def test_a_429_is_retried_after_the_retry_after_it_carries(rig: Rig) -> None:
    route = rig.router.get(GROUP).mock(
        side_effect=[
            httpx.Response(429, json={"title": "Too Many Requests"}, headers={"Retry-After": "7"}),
            httpx.Response(200, json=group_json()),
        ]
    )

    group = await rig.salad.get_container_group("pod-1")

    assert group.name == "pod-1"
    assert route.call_count == 2
    assert rig.clock.now() >= 7.0, "the whole key paused for the Retry-After"
    assert rig.sample("salad_vk_saladcloud_rate_limited_total", node="node-a") == 1
    labels = {"node": "node-a", "operation": "get_container_group"}
    assert rig.sample("salad_vk_saladcloud_retries_total", **labels, reason="rate_limited") == 1
    assert rig.sample("salad_vk_saladcloud_requests_total", **labels, status="429") == 1
    assert rig.sample("salad_vk_saladcloud_requests_total", **labels, status="200") == 1
    assert rig.sample("salad_vk_saladcloud_up", node="node-a") == 1


async def test_three_503s_then_success_returns_the_answer(rig: Rig) -> None:
    route = rig.router.get(GROUPS).mock(
        side_effect=[problem(503, "Service Unavailable", "try later")] * 3
        + [httpx.Response(200, json={"items": [group_json()]})]
    )

    groups = await rig.salad.list_container_groups()

    assert [g.name for g in groups] == ["pod-1"]
    assert route.call_count == 4
    assert (
        rig.sample(
            "salad_vk_saladcloud_retries_total",
            node="node-a",
            operation="list_container_groups",
            reason="server_error",
        )
        == 3
    )
    assert all(0.0 <= delay <= 8.0 for delay in rig.clock.slept), "backoff stays under max_delay"


async def test_5xx_that_outlasts_the_retries_is_unavailable_and_not_permanent(rig: Rig) -> None:
    route = rig.router.get(GROUPS).mock(return_value=problem(503, "Service Unavailable", "down"))

    with pytest.raises(SaladUnavailable) as caught:
        await rig.salad.list_container_groups()

    assert route.call_count == 5
    assert caught.value.status == 503
    assert not caught.value.permanent
    assert "down" in str(caught.value)
    assert rig.sample("salad_vk_saladcloud_up", node="node-a") == 0


async def test_429_that_never_ends_is_rate_limited(rig: Rig) -> None:
    rig.router.get(GROUPS).mock(return_value=problem(429, "Too Many Requests", "slow down"))

    with pytest.raises(SaladRateLimited) as caught:
        await rig.salad.list_container_groups()

    assert not caught.value.permanent
    assert rig.sample("salad_vk_saladcloud_rate_limited_total", node="node-a") == 5


async def test_a_timeout_is_retried_and_then_reported_as_unavailable(rig: Rig) -> None:
    route = rig.router.get(GROUP).mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(SaladUnavailable) as caught:
        await rig.salad.get_container_group("pod-1")

    assert route.call_count == 5
    assert "ReadTimeout" in str(caught.value)
    assert caught.value.status is None
    assert (
        rig.sample(
            "salad_vk_saladcloud_requests_total",
            node="node-a",
            operation="get_container_group",
            status="ReadTimeout",
        )
        == 5
    )


async def test_a_timeout_then_success_returns_the_answer(rig: Rig) -> None:
    rig.router.get(GROUP).mock(
        side_effect=[httpx.ConnectTimeout("slow"), httpx.Response(200, json=group_json())]
    )

    assert (await rig.salad.get_container_group("pod-1")).name == "pod-1"


async def test_a_refused_connection_is_retried(rig: Rig) -> None:
    route = rig.router.delete(GROUP).mock(
        side_effect=[httpx.ConnectError("connection refused"), httpx.Response(202)]
    )

    await rig.salad.delete_container_group("pod-1")

    assert route.call_count == 2


# --- errors that will not change ---------------------------------------------------------------


async def test_name_conflict_is_reported_without_retry(rig: Rig) -> None:
    route = rig.router.post(GROUPS).mock(
        return_value=problem(400, "Name Conflict", "pod-1 exists", kind="name_conflict")
    )

    with pytest.raises(SaladNameConflict) as caught:
        await rig.salad.create_container_group(prototype("pod-1"))

    assert route.call_count == 1
    assert caught.value.after_retry is False
    assert caught.value.permanent
    assert caught.value.problem_type == "name_conflict"
    assert isinstance(caught.value, SaladBadRequest)


async def test_a_create_retried_after_a_timeout_that_meets_name_conflict_says_so(
    rig: Rig,
) -> None:
    rig.router.post(GROUPS).mock(
        side_effect=[
            httpx.ReadTimeout("the answer was lost"),
            problem(400, "Name Conflict", "pod-1 exists", kind="name_conflict"),
        ]
    )

    with pytest.raises(SaladNameConflict) as caught:
        await rig.salad.create_container_group(prototype("pod-1"))

    assert caught.value.after_retry is True
    assert "may have succeeded" in str(caught.value)


async def test_a_create_retried_after_a_429_that_meets_name_conflict_is_not_ours(
    rig: Rig,
) -> None:
    rig.router.post(GROUPS).mock(
        side_effect=[
            problem(429, "Too Many Requests", "slow down"),
            problem(400, "Name Conflict", "exists", kind="name_conflict"),
        ]
    )

    with pytest.raises(SaladNameConflict) as caught:
        await rig.salad.create_container_group(prototype("pod-1"))

    assert caught.value.after_retry is False, "a 429 is refused before it is applied"


async def test_a_bad_request_carries_the_servers_words_and_is_not_retried(rig: Rig) -> None:
    route = rig.router.post(GROUPS).mock(
        return_value=problem(400, "Bad Request", "container.resources.cpu: must be <= 1024")
    )

    with pytest.raises(SaladBadRequest) as caught:
        await rig.salad.create_container_group(prototype("pod-1"))

    assert route.call_count == 1
    assert caught.value.permanent
    assert caught.value.detail == "container.resources.cpu: must be <= 1024"
    assert "container.resources.cpu" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, SaladAuthError), (403, SaladAuthError), (404, SaladNotFound), (409, SaladError)],
)
async def test_client_errors_map_to_their_class(
    rig: Rig, status: int, error_class: type[SaladError]
) -> None:
    route = rig.router.get(GROUP).mock(return_value=problem(status, "No", "because"))

    with pytest.raises(error_class) as caught:
        await rig.salad.get_container_group("pod-1")

    assert route.call_count == 1
    assert caught.value.status == status
    assert caught.value.permanent


async def test_an_auth_error_marks_saladcloud_down_for_the_node(rig: Rig) -> None:
    rig.router.get(GROUPS).mock(return_value=problem(403, "Forbidden", "bad key"))

    with pytest.raises(SaladAuthError):
        await rig.salad.list_container_groups()

    assert rig.sample("salad_vk_saladcloud_up", node="node-a") == 0


async def test_an_html_error_page_still_gives_the_right_error_with_a_readable_detail(
    rig: Rig,
) -> None:
    rig.router.get(GROUP).mock(
        return_value=httpx.Response(502, text=CLOUDFLARE_502, headers={"content-type": "text/html"})
    )

    with pytest.raises(SaladUnavailable) as caught:
        await rig.salad.get_container_group("pod-1")

    assert caught.value.status == 502
    assert caught.value.detail == "502 Bad Gateway"
    assert "<" not in str(caught.value)


async def test_an_html_page_on_a_client_error_keeps_its_class(rig: Rig) -> None:
    page = "<html><body><h1>Forbidden</h1>\n<p>You do not have access.</p></body></html>"
    rig.router.get(GROUP).mock(
        return_value=httpx.Response(403, text=page, headers={"content-type": "text/html"})
    )

    with pytest.raises(SaladAuthError) as caught:
        await rig.salad.get_container_group("pod-1")

    assert caught.value.detail == "Forbidden You do not have access."
    assert "\n" not in str(caught.value)


async def test_a_huge_error_body_is_cut_short(rig: Rig) -> None:
    rig.router.get(GROUP).mock(return_value=httpx.Response(404, text="x" * 100_000))

    with pytest.raises(SaladNotFound) as caught:
        await rig.salad.get_container_group("pod-1")

    assert len(str(caught.value)) < 400


# --- bodies ------------------------------------------------------------------------------------


async def test_malformed_json_in_a_success_is_a_protocol_error(rig: Rig) -> None:
    route = rig.router.get(GROUP).mock(
        return_value=httpx.Response(
            200, text='{"id": "x", "name": ', headers={"content-type": "application/json"}
        )
    )

    with pytest.raises(SaladProtocolError) as caught:
        await rig.salad.get_container_group("pod-1")

    assert route.call_count == 1
    assert caught.value.status == 200
    assert "Invalid JSON" in str(caught.value)


async def test_a_success_missing_a_field_we_need_is_a_protocol_error_naming_it(rig: Rig) -> None:
    body = group_json()
    del body["current_state"]
    rig.router.get(GROUP).mock(return_value=httpx.Response(200, json=body))

    with pytest.raises(SaladProtocolError) as caught:
        await rig.salad.get_container_group("pod-1")

    assert "current_state" in str(caught.value)


async def test_unknown_enum_values_and_fields_in_answers_are_kept(rig: Rig) -> None:
    body = group_json(brand_new_field={"nested": True})
    body["current_state"]["status"] = "hibernating"
    rig.router.get(GROUPS).mock(return_value=httpx.Response(200, json={"items": [body], "next": 1}))
    rig.router.get(GROUP + "/instances").mock(
        return_value=httpx.Response(
            200,
            json={
                "instances": [
                    {
                        "id": "5b0c2f4e-2f7a-4a1e-9b3c-0d1e2f3a4b5c",
                        "machine_id": "9f8e7d6c-5b4a-4321-8fed-cba987654321",
                        "state": "teleporting",
                        "update_time": "2026-04-03T12:00:00Z",
                        "version": 1,
                        "gpu_temperature": 71,
                    }
                ]
            },
        )
    )

    [group] = await rig.salad.list_container_groups()
    [instance] = await rig.salad.list_instances("pod-1")

    assert group.current_state.status == "hibernating"
    assert (group.model_extra or {})["brand_new_field"] == {"nested": True}
    assert instance.state == "teleporting"


async def test_requests_carry_the_key_and_the_spec_content_types(rig: Rig) -> None:
    create = rig.router.post(GROUPS).mock(return_value=httpx.Response(201, json=group_json()))
    patch = rig.router.patch(GROUP).mock(return_value=httpx.Response(200, json=group_json()))
    start = rig.router.post(GROUP + "/start").mock(return_value=httpx.Response(202))
    stop = rig.router.post(GROUP + "/stop").mock(return_value=httpx.Response(202))

    await rig.salad.create_container_group(prototype("pod-1"))
    await rig.salad.update_container_group("pod-1", models.ContainerGroupPatch(replicas=0))
    await rig.salad.start_container_group("pod-1")
    await rig.salad.stop_container_group("pod-1")

    sent = create.calls.last.request
    assert sent.headers["Salad-Api-Key"] == KEY
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == models.request_json(prototype("pod-1"))
    patched = patch.calls.last.request
    assert patched.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patched.content) == {"replicas": 0}
    assert start.called and stop.called
    assert not start.calls.last.request.content


async def test_organization_reads_parse_their_documents(rig: Rig) -> None:
    org = f"/organizations/{ORG}"
    rig.router.get(org + "/gpu-classes").mock(
        return_value=httpx.Response(
            200,
            json={
                "items": [
                    {
                        "id": "2d8ea5d8-0c1a-4ae1-9d6e-1c5b7f0d6b11",
                        "name": "RTX 4090 (24 GB)",
                        "prices": [{"priority": "high", "price": "0.300"}],
                    }
                ]
            },
        )
    )
    rig.router.get(org + "/quotas").mock(
        return_value=httpx.Response(
            200,
            json={
                "container_groups_quotas": {
                    "container_replicas_quota": 500,
                    "container_replicas_used": 3,
                }
            },
        )
    )
    logs = rig.router.post(org + "/log-entries").mock(
        return_value=httpx.Response(
            200,
            json={
                "items": [
                    {
                        "time": "2026-04-03T12:00:00Z",
                        "receive_time": "2026-04-03T12:00:01Z",
                        "severity": "info",
                        "resource": {
                            "type": "container",
                            "labels": {"container_group_name": "pod-1"},
                        },
                        "text_log": "hello",
                    }
                ],
                "organization_name": ORG,
                "page_min_time": "2026-04-03T12:00:00Z",
                "page_max_time": "2026-04-03T12:00:00Z",
            },
        )
    )
    rig.router.get(GROUP + "/system-logs").mock(
        return_value=httpx.Response(
            200,
            json={
                "items": [
                    {
                        "event_name": "Instance Exited:137 (Likely Out of System Memory)",
                        "event_time": "2026-04-03T12:00:00Z",
                        "resource_cpu": 1,
                        "resource_gpu_class": "",
                        "resource_memory": 1024,
                        "resource_storage_amount": None,
                        "version": "1",
                    }
                ]
            },
        )
    )
    window = datetime(2026, 4, 3, 11, tzinfo=UTC), datetime(2026, 4, 3, 13, tzinfo=UTC)
    query = models.LogEntryQuery(start_time=window[0], end_time=window[1], query="")

    [gpu] = await rig.salad.list_gpu_classes()
    quotas = await rig.salad.get_quotas()
    entries = await rig.salad.query_log_entries(query)
    [event] = await rig.salad.get_system_logs("pod-1")

    assert gpu.name == "RTX 4090 (24 GB)"
    assert quotas.container_groups_quotas.container_replicas_used == 3
    assert entries.items[0].text_log == "hello"
    assert event.event_name.startswith("Instance Exited:137")
    assert json.loads(logs.calls.last.request.content)["start_time"] == "2026-04-03T11:00:00Z"


# --- the key stays secret -------------------------------------------------------------------


async def test_the_api_key_appears_in_no_exception_and_no_log_record(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"key {KEY} is not allowed"  # a server that quotes the key back, at worst
    rig.router.get(GROUPS).mock(
        side_effect=[
            httpx.Response(429, json={"detail": echo}),
            httpx.ReadTimeout(f"timed out sending {KEY}"),
            httpx.ConnectError(f"refused {KEY}"),
            httpx.Response(503, text=f"<html><title>{echo}</title></html>"),
            httpx.Response(403, json={"type": echo, "title": echo, "detail": echo}),
        ]
    )
    rig.router.get(GROUP).mock(return_value=httpx.Response(200, text=f'{{"id": "{KEY}"'))
    rig.router.post(GROUPS).mock(return_value=httpx.Response(400, text=f"bad {KEY}"))
    failures: list[BaseException] = []

    for call in (
        rig.salad.list_container_groups(),
        rig.salad.get_container_group("pod-1"),
        rig.salad.create_container_group(prototype("pod-1")),
    ):
        with pytest.raises(SaladError) as caught:
            await call
        failures.append(caught.value)

    assert [type(f) for f in failures] == [SaladAuthError, SaladProtocolError, SaladBadRequest]
    for failure in failures:
        assert KEY not in str(failure)
        assert KEY not in repr(failure)
        assert all(KEY not in str(arg) for arg in failure.args)
        assert failure.__cause__ is None, "no chained httpx exception carries the request"
    assert caplog.records, "the retries were logged"
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in str(record.__dict__)
    assert KEY not in repr(rig.salad)
