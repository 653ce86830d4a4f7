"""The simulator's API rules, over real HTTP, through the real client where it can go."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from nodes.saladcloud import models
from nodes.saladcloud.errors import (
    SaladAuthError,
    SaladBadRequest,
    SaladNameConflict,
    SaladNotFound,
)
from nodes.saladcloud.simulator.gpus import gpu_class_id

from .builders import (
    DEPLOYED,
    GROUPS_PATH,
    KEY,
    ORG,
    PROJECT,
    Wall,
    body,
    connected,
    prototype,
)

pytestmark = pytest.mark.anyio

OTHER_KEY = "sk-live-second-key-7d1e0b9c"


# --- lifecycle over time ------------------------------------------------------------------


async def test_a_group_reaches_running_with_one_running_instance_under_time_scale() -> None:
    async with connected({"time-scale": 2000.0}, wall=time.monotonic) as c:
        created = await c.salad.create_container_group(prototype("pod-1"))
        assert created.current_state.status == "pending"

        with anyio.fail_after(10):
            while True:
                group = await c.salad.get_container_group("pod-1")
                if group.current_state.status == "running":
                    break
                await anyio.sleep(0.02)

        assert group.current_state.instance_status_counts.running_count == 1
        [instance] = await c.salad.list_instances("pod-1")
        assert instance.state == "running"
        assert instance.ready is True


async def test_instances_move_through_allocating_downloading_creating_running() -> None:
    async with connected() as c:
        await c.salad.create_container_group(prototype("pod-1"))
        seen: list[tuple[str, str | None]] = []
        for _ in range(int(DEPLOYED) + 2):
            c.sim.advance(1.0)
            group = await c.salad.get_container_group("pod-1")
            instances = await c.salad.list_instances("pod-1")
            step = (group.current_state.status, instances[0].state if instances else None)
            if not seen or seen[-1] != step:
                seen.append(step)

    assert seen == [
        ("pending", None),
        ("deploying", "allocating"),
        ("deploying", "downloading"),
        ("deploying", "creating"),
        ("running", "running"),
    ]


async def test_stop_start_and_delete_change_the_group_as_documented() -> None:
    async with connected() as c:
        await c.salad.create_container_group(prototype("pod-1"))
        c.sim.advance(DEPLOYED)

        await c.salad.stop_container_group("pod-1")
        stopped = await c.salad.get_container_group("pod-1")
        assert stopped.current_state.status == "stopped"
        assert stopped.current_state.instance_status_counts.stopping_count == 1

        await c.salad.start_container_group("pod-1")
        assert (await c.salad.get_container_group("pod-1")).current_state.status == "deploying"
        c.sim.advance(DEPLOYED)
        assert (await c.salad.get_container_group("pod-1")).current_state.status == "running"

        await c.salad.delete_container_group("pod-1")
        with pytest.raises(SaladNotFound):
            await c.salad.get_container_group("pod-1")
        with pytest.raises(SaladNotFound):
            await c.salad.list_instances("pod-1")
        assert await c.salad.list_container_groups() == []
        [ghost] = c.sim.groups(ORG, PROJECT)
        assert ghost.deleted


async def test_an_image_chosen_to_fail_ends_the_group_failed() -> None:
    async with connected({"fail-image": ["registry.example/broken:*"]}) as c:
        await c.salad.create_container_group(prototype("pod-1", image="registry.example/broken:v2"))
        c.sim.advance(DEPLOYED)

        group = await c.salad.get_container_group("pod-1")
        events = await c.salad.get_system_logs("pod-1")

    assert group.current_state.status == "failed"
    assert "registry.example/broken:v2" in (group.current_state.description or "")
    assert [e.event_name for e in events] == ["Image Pull Failed"]


async def test_an_exit_image_under_restart_policy_never_ends_the_instance_not_the_group() -> None:
    async with connected({"exit-image": ["batch/*=2@60"]}) as c:
        await c.salad.create_container_group(
            prototype("job-1", image="batch/report", restart_policy="never")
        )
        c.sim.advance(DEPLOYED + 61)

        group = await c.salad.get_container_group("job-1")
        instances = await c.salad.list_instances("job-1")
        events = [e.event_name for e in await c.salad.get_system_logs("job-1")]

    # "failed" is only for a group whose image could not be prepared.
    assert group.current_state.status == "running"
    assert instances == []
    assert "Instance Exited:2" in events


async def test_an_interruption_reallocates_and_the_group_stays_running() -> None:
    async with connected() as c:
        await c.salad.create_container_group(prototype("pod-1"))
        c.sim.advance(DEPLOYED)
        [before] = await c.salad.list_instances("pod-1")

        assert c.sim.interrupt(ORG, PROJECT, "pod-1") == 1
        group = await c.salad.get_container_group("pod-1")
        [after] = await c.salad.list_instances("pod-1")

    assert group.current_state.status == "running"
    assert group.current_state.instance_status_counts.running_count == 0
    assert after.state == "allocating"
    assert after.id == before.id


async def test_a_patch_is_a_merge_patch_sent_as_such() -> None:
    async with connected() as c:
        await c.salad.create_container_group(prototype("pod-1", display_name="First Pod"))
        c.sim.advance(DEPLOYED)

        scaled = await c.salad.update_container_group(
            "pod-1", models.ContainerGroupPatch(replicas=2)
        )
        instances = await c.salad.list_instances("pod-1")
        as_json = await c.raw("PATCH", GROUPS_PATH + "/pod-1", json={"replicas": 1})
        reset = await c.raw(
            "PATCH",
            GROUPS_PATH + "/pod-1",
            content=b'{"display_name": null, "container": {"environment_variables": {"A": "1"}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        too_big = await c.raw(
            "PATCH",
            GROUPS_PATH + "/pod-1",
            content=b'{"container": {"resources": {"cpu": 4096}}}',
            headers={"Content-Type": "application/merge-patch+json"},
        )

    assert scaled.replicas == 2
    assert sorted(i.state for i in instances) == ["allocating", "running"]
    assert as_json.status_code == 415
    assert reset.status_code == 200
    assert reset.headers["Content-Type"].startswith("application/merge-patch+json")
    assert reset.json()["display_name"] == "pod-1"
    assert reset.json()["container"]["environment_variables"] == {"A": "1"}
    assert reset.json()["version"] == 2
    assert too_big.status_code == 400
    assert too_big.json()["detail"].startswith("container.resources.cpu:")


async def test_instance_endpoints_answer_as_the_spec_lists() -> None:
    async with connected() as c:
        await c.salad.create_container_group(prototype("pod-1"))
        c.sim.advance(DEPLOYED)
        [instance] = await c.salad.list_instances("pod-1")
        path = f"{GROUPS_PATH}/pod-1/instances/{instance.id}"

        got = await c.raw("GET", path)
        cost = await c.raw(
            "PATCH",
            path,
            json={"deletion_cost": 500},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        restart = await c.raw("POST", path + "/restart")
        missing = await c.raw(
            "GET", f"{GROUPS_PATH}/pod-1/instances/{'0' * 8}-0000-4000-8000-{'0' * 12}"
        )

    assert got.status_code == 202, "the spec lists 202 for get_container_group_instance"
    assert got.json()["id"] == instance.id
    assert cost.json()["deletion_cost"] == 500
    assert restart.status_code == 202
    assert missing.status_code == 404


# --- rules ------------------------------------------------------------------------------


async def test_a_missing_key_is_401_and_an_unknown_key_is_403() -> None:
    async with connected() as c:
        missing = await c.raw("GET", GROUPS_PATH, key=None)
        unknown = await c.raw("GET", GROUPS_PATH, key="sk-not-a-key")
        with pytest.raises(SaladAuthError) as caught:
            await c.client(key="sk-not-a-key", node="intruder").list_container_groups()

    assert missing.status_code == 401
    assert unknown.status_code == 403
    assert missing.json()["status"] == 401
    assert caught.value.status == 403


async def test_a_key_revoked_at_run_time_is_refused_and_can_be_accepted_again() -> None:
    async with connected() as c:
        await c.salad.list_container_groups()
        c.sim.revoke_key(KEY)
        with pytest.raises(SaladAuthError):
            await c.salad.list_container_groups()
        c.sim.accept_key(KEY)
        assert await c.salad.list_container_groups() == []


async def test_every_declared_key_reaches_every_declared_project() -> None:
    projects = [f"{ORG}/{PROJECT}", f"{ORG}/batch", "other-org/main"]
    async with connected({"api-key": [KEY, OTHER_KEY]}, project=projects) as c:
        for key in (KEY, OTHER_KEY):
            for text in projects:
                org, project = text.split("/")
                answer = await c.raw(
                    "GET", f"/organizations/{org}/projects/{project}/containers", key=key
                )
                assert answer.status_code == 200, (key, text)


async def test_an_unknown_organization_or_project_is_404() -> None:
    async with connected() as c:
        no_org = await c.raw("GET", "/organizations/nobody/projects/demo/containers")
        no_project = await c.raw("GET", f"/organizations/{ORG}/projects/nothing/containers")
        org_read = await c.raw("GET", "/organizations/nobody/gpu-classes")
        create = await c.raw("POST", "/organizations/nobody/projects/demo/containers", json=body())
        no_route = await c.raw("GET", "/organizations/acme/teleporters")
        with pytest.raises(SaladNotFound):
            await c.client(project="nothing", node="lost").list_container_groups()

    for answer in (no_org, no_project, org_read, create, no_route):
        assert answer.status_code == 404
        assert answer.json()["title"] == "Not Found"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"container": {"image": "x", "resources": {"cpu": 2000, "memory": 1024}}},
            "container.resources.cpu",
        ),
        (
            {"container": {"image": "x", "resources": {"cpu": 1, "memory": 512}}},
            "container.resources.memory",
        ),
        (
            {"container": {"image": "x", "resources": {"cpu": "1", "memory": 1024}}},
            "container.resources.cpu",
        ),
        ({"container": {"image": "", "resources": {"cpu": 1, "memory": 1024}}}, "container.image"),
        ({"name": "Pod_1"}, "name"),
        ({"name": "p"}, "name"),
        ({"replicas": 501}, "replicas"),
        ({"restart_policy": "sometimes"}, "restart_policy"),
        ({"autostart_policy": 1}, "autostart_policy"),
        ({"country_codes": []}, "country_codes"),
        ({"country_codes": ["us", "uk"]}, "country_codes[1]"),
        ({"display_name": "café"}, "display_name"),
        ({"surprise": True}, "surprise"),
        (
            {"container": {"image": "x", "resources": {"cpu": 1, "memory": 1024}, "cmd": ["sh"]}},
            "container.cmd",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024},
                    "command": ["sh", ""],
                }
            },
            "container.command[1]",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024},
                    "environment_variables": {"EMPTY": ""},
                }
            },
            "container.environment_variables.EMPTY",
        ),
        # The spec's ^.*$ is ECMA-262: "." matches no line terminator, \r and U+2028 included.
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024},
                    "environment_variables": {"CRLF": "a\r"},
                }
            },
            "container.environment_variables.CRLF",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024},
                    "command": ["sh", "-c", "a\u2028b"],
                }
            },
            "container.command[2]",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024, "gpu_classes": ["rtx"]},
                }
            },
            "container.resources.gpu_classes[0]",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {
                        "cpu": 1,
                        "memory": 1024,
                        "gpu_classes": ["2d8ea5d8-0c1a-4ae1-9d6e-1c5b7f0d6b11"],
                    },
                }
            },
            "container.resources.gpu_classes[0]",
        ),
        ({"networking": {"port": 80, "protocol": "http"}}, "networking.auth"),
        (
            {
                "liveness_probe": {
                    "failure_threshold": 3,
                    "initial_delay_seconds": 0,
                    "period_seconds": 10,
                    "success_threshold": 1,
                    "timeout_seconds": 61,
                    "tcp": {"port": 80},
                }
            },
            "liveness_probe.timeout_seconds",
        ),
        (
            {
                "readiness_probe": {
                    "failure_threshold": 3,
                    "initial_delay_seconds": 0,
                    "period_seconds": 10,
                    "success_threshold": 1,
                    "timeout_seconds": 1,
                }
            },
            "readiness_probe",
        ),
        (
            {
                "container": {
                    "image": "x",
                    "resources": {"cpu": 1, "memory": 1024},
                    "logging": {
                        "tcp": {"host": "h", "port": 1},
                        "splunk": {"host": "h", "token": "t"},
                    },
                }
            },
            "container.logging",
        ),
    ],
)
async def test_a_body_outside_the_spec_is_400_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    async with connected() as c:
        answer = await c.raw("POST", GROUPS_PATH, json=body(**changes))
        listed = await c.salad.list_container_groups()

    assert answer.status_code == 400
    problem = answer.json()
    assert problem["status"] == 400
    assert problem["detail"].startswith(field + ":"), problem["detail"]
    assert listed == [], "nothing was created"


NULL_REFUSED = [
    "display_name",
    "country_codes",
    "networking",
    "queue_connection",
    "queue_autoscaler",
    "scaling-actions",
    "scheduled-scaling-enabled",
    "container.environment_variables",
    "container.image_caching",
    "container.logging",
    "container.priority",
    "container.registry_authentication",
    "container.resources.gpu_classes",
    "container.resources.shm_size",
    "container.resources.storage_amount",
]
"""Optional create members whose schema does not allow ``null`` (test_conformance.py
finds every one from the spec; these are the ones a client is likely to send)."""


def with_null(path: str) -> dict[str, Any]:
    document = body()
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[part]
    target[last] = None
    return document


@pytest.mark.parametrize("path", NULL_REFUSED)
async def test_an_explicit_null_for_a_member_that_is_not_nullable_is_400(path: str) -> None:
    async with connected() as c:
        answer = await c.raw("POST", GROUPS_PATH, json=with_null(path))

    assert answer.status_code == 400
    assert answer.json()["detail"] == f"{path}: must not be null (leave the field out instead)"


@pytest.mark.parametrize(
    "path", ["container.command", "liveness_probe", "readiness_probe", "startup_probe"]
)
async def test_an_explicit_null_where_the_spec_allows_it_is_taken(path: str) -> None:
    async with connected() as c:
        answer = await c.raw("POST", GROUPS_PATH, json=with_null(path))

    assert answer.status_code == 201, answer.text


async def test_a_body_that_is_not_json_or_not_sent_as_json_is_refused() -> None:
    async with connected() as c:
        garbage = await c.raw(
            "POST", GROUPS_PATH, content=b"{nope", headers={"Content-Type": "application/json"}
        )
        form = await c.raw("POST", GROUPS_PATH, data={"name": "pod-1"})
        array = await c.raw("POST", GROUPS_PATH, json=[body()])

    assert garbage.status_code == 400
    assert form.status_code == 415
    assert array.status_code == 400


async def test_the_client_request_that_the_simulator_refuses_becomes_a_bad_request() -> None:
    async with connected() as c:
        too_many_cpus = models.CreateContainer(
            image="nginx", resources=models.CreateResources(cpu=4096, memory=1024)
        )
        with pytest.raises(SaladBadRequest) as caught:
            await c.salad.create_container_group(prototype("pod-1", container=too_many_cpus))

    assert caught.value.permanent
    assert (caught.value.detail or "").startswith("container.resources.cpu:")


async def test_names_are_never_reused_in_a_project_even_after_delete() -> None:
    async with connected(project=[f"{ORG}/{PROJECT}", f"{ORG}/other"]) as c:
        await c.salad.create_container_group(prototype("pod-1"))
        with pytest.raises(SaladNameConflict) as live:
            await c.salad.create_container_group(prototype("pod-1"))
        await c.salad.delete_container_group("pod-1")
        with pytest.raises(SaladNameConflict) as deleted:
            await c.salad.create_container_group(prototype("pod-1"))
        elsewhere = await c.client(project="other", node="node-b").create_container_group(
            prototype("pod-1")
        )

    assert live.value.problem_type == deleted.value.problem_type == "name_conflict"
    assert live.value.after_retry is False
    assert "never reused" in str(deleted.value)
    assert elsewhere.project_name == "other", "names are unique per project only"


async def test_lists_hold_at_most_100_groups_the_oldest_first() -> None:
    async with connected() as c:
        for index in range(105):
            await c.salad.create_container_group(prototype(f"pod-{index:03d}"))
            c.sim.advance(0.001)

        listed = await c.salad.list_container_groups()

    assert len(listed) == 100
    assert [g.name for g in listed] == [f"pod-{i:03d}" for i in range(100)]


async def test_each_key_gets_its_own_per_minute_budget() -> None:
    wall = Wall()
    async with connected({"rate-limit": 20, "api-key": [KEY, OTHER_KEY]}, wall=wall) as c:
        first = [await c.raw("GET", GROUPS_PATH) for _ in range(20)]
        refused = await c.raw("GET", GROUPS_PATH)
        other = [await c.raw("GET", GROUPS_PATH, key=OTHER_KEY) for _ in range(20)]
        wall.now += 59.0
        still_refused = await c.raw("GET", GROUPS_PATH)
        wall.now += 1.0
        again = await c.raw("GET", GROUPS_PATH)
        stats = c.sim.key_stats(KEY)

    assert all(a.status_code == 200 for a in first + other)
    assert refused.status_code == 429
    assert refused.json()["title"] == "Too Many Requests"
    assert "Retry-After" not in refused.headers, "the real API documents no Retry-After"
    assert still_refused.status_code == 429
    assert again.status_code == 200, "the window slid past the first requests"
    assert (stats.requests, stats.rate_limited) == (23, 2)


async def test_429_carries_retry_after_when_asked_to() -> None:
    wall = Wall()
    async with connected({"rate-limit": 2, "retry-after": True}, wall=wall) as c:
        await c.raw("GET", GROUPS_PATH)
        wall.now += 15.0
        await c.raw("GET", GROUPS_PATH)
        refused = await c.raw("GET", GROUPS_PATH)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"


async def test_a_replica_quota_caps_replicas_and_quotas_report_the_use() -> None:
    async with connected({"replica-quota": 3}) as c:
        await c.salad.create_container_group(prototype("pod-1", replicas=2))
        with pytest.raises(SaladBadRequest) as caught:
            await c.salad.create_container_group(prototype("pod-2", replicas=4))
        quotas = await c.salad.get_quotas()

    assert (caught.value.detail or "").startswith("replicas:")
    assert quotas.container_groups_quotas.container_replicas_quota == 3
    assert quotas.container_groups_quotas.container_replicas_used == 2


async def test_gpu_classes_have_realistic_defaults_or_the_names_given() -> None:
    async with connected() as c:
        defaults = await c.salad.list_gpu_classes()
    async with connected({"gpu-class": ["RTX 4090 (24 GB)", "Quantum Q1"]}) as c:
        chosen = await c.salad.list_gpu_classes()
        gpu = models.CreateContainer(
            image="nginx",
            resources=models.CreateResources(
                cpu=2, memory=2048, gpu_classes=[gpu_class_id("Quantum Q1")]
            ),
        )
        created = await c.salad.create_container_group(prototype("gpu-pod", container=gpu))

    assert len(defaults) >= 4
    assert all(len(g.prices) == 4 for g in defaults)
    assert [g.name for g in chosen] == ["RTX 4090 (24 GB)", "Quantum Q1"]
    assert chosen[1].id == gpu_class_id("Quantum Q1"), "ids are stable across runs"
    assert created.container.resources.gpu_classes == [gpu_class_id("Quantum Q1")]


async def test_system_logs_and_log_entries_tell_what_happened() -> None:
    async with connected(project=[f"{ORG}/{PROJECT}", f"{ORG}/other"]) as c:
        await c.salad.create_container_group(prototype("pod-1"))
        await c.client(project="other", node="node-b").create_container_group(prototype("pod-2"))
        c.sim.advance(DEPLOYED)
        events = await c.salad.get_system_logs("pod-1")
        start = c.sim.world.clock.datetime_at(0.0)
        end = start + timedelta(hours=1)

        def query(text: str, **fields: Any) -> models.LogEntryQuery:
            return models.LogEntryQuery(start_time=start, end_time=end, query=text, **fields)

        everything = await c.salad.query_log_entries(query(""))
        mine = await c.salad.query_log_entries(
            query(
                'resource.labels.container_group_name = "pod-1" AND resource.type = "container"',
                sort_order="asc",
            )
        )
        page = await c.salad.query_log_entries(query("", page_size=2))
        broken = await c.raw(
            "POST",
            f"/organizations/{ORG}/log-entries",
            json={"start_time": start.isoformat(), "end_time": end.isoformat(), "query": "who = 1"},
        )
        naive = await c.raw(
            "POST",
            f"/organizations/{ORG}/log-entries",
            json={"start_time": "2026-01-01T00:00:00", "end_time": end.isoformat(), "query": ""},
        )

    assert [e.event_name for e in events] == [
        "Instance Allocated",
        "Image Download Completed",
        "Instance Started",
    ]
    projects = {e.resource.labels["project_name"] for e in everything.items}
    assert projects == {PROJECT, "other"}, "log entries are organization-wide"
    assert [e.text_log for e in mine.items] == ["starting nginx:1.27"]
    assert len(page.items) == 2
    assert page.items[0].time >= page.items[1].time, "newest first by default"
    assert broken.status_code == 400 and "who" in broken.json()["detail"]
    assert naive.status_code == 400 and naive.json()["detail"].startswith("start_time:")


async def test_the_same_seed_and_requests_replay_the_same_answers() -> None:
    epoch = datetime(2026, 4, 3, 12, tzinfo=UTC)

    async def run(seed: int) -> list[Any]:
        async with connected(seed=seed, epoch=epoch) as c:
            await c.salad.create_container_group(prototype("pod-1"))
            c.sim.advance(45.0)
            first = (await c.raw("GET", GROUPS_PATH + "/pod-1")).json()
            c.sim.advance(DEPLOYED)
            instances = (await c.raw("GET", GROUPS_PATH + "/pod-1/instances")).json()
            return [first["id"], first["current_state"], instances]

    assert await run(11) == await run(11)
    assert (await run(11))[0] != (await run(12))[0]


# --- faults -----------------------------------------------------------------------------


async def test_a_lost_answer_to_a_create_ends_in_a_name_conflict_the_client_can_adopt() -> None:
    async with connected() as c:
        c.sim.drop_next(1)
        with pytest.raises(SaladNameConflict) as caught:
            await c.salad.create_container_group(prototype("pod-1"))
        adopted = await c.salad.get_container_group("pod-1")

    assert caught.value.after_retry is True
    assert adopted.name == "pod-1"


async def test_injected_server_errors_are_5xx_some_as_html_pages() -> None:
    async with connected({"error-rate": 1.0}) as c:
        answers = [await c.raw("GET", GROUPS_PATH) for _ in range(12)]

    assert {a.status_code for a in answers} <= {500, 502, 503}
    html = [a for a in answers if a.headers["Content-Type"].startswith("text/html")]
    assert html and all(a.status_code == 502 for a in html)


async def test_a_storm_answers_429_to_everything_until_it_passes() -> None:
    wall = Wall()
    async with connected(wall=wall) as c:
        c.sim.storm(10.0)
        during = await c.raw("GET", GROUPS_PATH)
        wall.now += 10.0
        after = await c.raw("GET", GROUPS_PATH)

    assert during.status_code == 429
    assert after.status_code == 200


async def test_storms_declared_up_front_happen_at_their_time() -> None:
    wall = Wall()
    async with connected(wall=wall, storm=["5+2"]) as c:
        before = await c.raw("GET", GROUPS_PATH)
        wall.now += 5.5
        during = await c.raw("GET", GROUPS_PATH)
        wall.now += 2.0
        after = await c.raw("GET", GROUPS_PATH)

    assert [a.status_code for a in (before, during, after)] == [200, 429, 200]


async def test_added_latency_can_outlast_a_clients_timeout() -> None:
    async with connected(latency=0.3) as c:
        impatient = c.client(timeout=0.05, node="impatient")
        with pytest.raises(Exception) as caught:
            await impatient.list_container_groups()

    assert "ReadTimeout" in str(caught.value)


async def test_faults_are_replayed_by_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        async with connected({"error-rate": 0.3, "throttle-rate": 0.2}, seed=seed) as c:
            return [(await c.raw("GET", GROUPS_PATH)).status_code for _ in range(30)]

    first = await statuses(5)
    assert first == await statuses(5)
    assert set(first) & {500, 502, 503} and 429 in first and 200 in first


# --- the HTTP control API ----------------------------------------------------------------


async def test_the_control_api_drives_a_simulator_from_outside() -> None:
    async with connected() as c:
        control = c.sim.control_url
        await c.salad.create_container_group(prototype("pod-1"))

        advanced = await c.http.post(control + "/clock", json={"advance": DEPLOYED})
        running = await c.salad.get_container_group("pod-1")
        await c.http.post(
            f"{control}/organizations/{ORG}/projects/{PROJECT}/containers/pod-1/delete"
        )
        listed = await c.http.get(f"{control}/organizations/{ORG}/projects/{PROJECT}/containers")
        revoked = await c.http.post(control + "/keys", json={"api_key": KEY, "accepted": False})
        refused = await c.raw("GET", GROUPS_PATH)
        faults = await c.http.post(control + "/faults", json={"error_rate": 0.5, "storm": 3})
        bad = await c.http.post(control + "/faults", json={"error_rate": 2})
        requests = await c.http.get(control + "/requests")
        summary = await c.http.get(control)

    assert advanced.json()["time"] >= DEPLOYED
    assert running.current_state.status == "running"
    [ghost] = listed.json()["items"]
    assert ghost["name"] == "pod-1" and ghost["deleted"] is True
    assert revoked.json()[0]["accepted"] is False
    assert KEY not in revoked.text, "keys are shown by fingerprint only"
    assert refused.status_code == 403
    assert faults.json()["error_rate"] == 0.5 and faults.json()["storming"] is True
    assert bad.status_code == 400
    assert [r["status"] for r in requests.json()] == [201, 200, 403]
    assert summary.json()["projects"] == [f"{ORG}/{PROJECT}"]


@pytest.mark.parametrize(
    ("route", "document"),
    [
        ("/faults", {"drop_next": -1}),
        ("/faults", {"latency": 61}),
        ("/clock", {"time_scale": 0}),
        ("/clock", {"advance": -1}),
        ("/projects", {"project": "Not A Project"}),
    ],
)
async def test_a_control_argument_out_of_range_is_a_400_not_a_server_error(
    route: str, document: dict[str, Any]
) -> None:
    async with connected() as c:
        answer = await c.http.post(c.sim.control_url + route, json=document)

    assert answer.status_code == 400
    assert answer.json()["title"] == "Bad Request"
