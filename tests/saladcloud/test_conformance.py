"""Simulator answers and client requests checked against ``salad-cloud.yaml``.

The spec comes from the ``saladcloud_spec`` fixture (``$SALADCLOUD_OPENAPI``, else
``../shared/saladcloud/salad-cloud.yaml`` beside the repository): without it the checks
against the spec are skipped, or fail where ``SALAD_VK_REQUIRE_REFERENCE_FILES=1`` (CI).
Every exchange of a scenario that uses every operation the node needs (and the
simulator's other instance endpoints, and its error answers) is recorded on the wire
and validated with JSON Schema draft 2020-12: request bodies against the operation's
request schema, answers against the schema the spec gives for that status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from config.country_codes import COUNTRY_CODES
from nodes.saladcloud import models
from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.errors import SaladError
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.simulator import running_simulator, validation
from nodes.saladcloud.simulator.gpus import gpu_class_id
from nodes.saladcloud.simulator.problems import ApiProblem
from tests import openapi

from .builders import DEPLOYED, GROUPS_PATH, KEY, QUICK_RETRY, Wall, body, client, options

pytestmark = pytest.mark.anyio


@dataclass
class Exchange:
    method: str
    path: str
    request_type: str | None
    request_body: bytes
    status: int
    response_type: str | None
    response_body: bytes


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the network and keeps a copy of both directions."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = await request.aread()
        response = await self.inner.handle_async_request(request)
        received = await response.aread()
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.url.path,
                request_type=request.headers.get("Content-Type"),
                request_body=sent,
                status=response.status_code,
                response_type=response.headers.get("Content-Type"),
                response_body=received,
            )
        )
        # The body is decoded now; headers describing the wire encoding no longer apply.
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=received, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def rich_prototype(name: str) -> models.ContainerGroupPrototype:
    """A create body that uses most of what the node can send."""
    probe = models.Probe(
        failure_threshold=3,
        initial_delay_seconds=5,
        period_seconds=10,
        success_threshold=1,
        timeout_seconds=5,
        http=models.ProbeHttp(
            path="/healthz",
            port=8080,
            scheme="http",
            headers=[models.HttpHeader(name="X-Probe", value="1")],
        ),
    )
    return models.ContainerGroupPrototype(
        name=name,
        display_name="Rich Pod, v1.0",
        container=models.CreateContainer(
            image="ghcr.io/acme/model-server:1.4.2",
            resources=models.CreateResources(
                cpu=4,
                memory=8192,
                gpu_classes=[gpu_class_id("RTX 4090 (24 GB)")],
                storage_amount=53687091200,
                shm_size=1024,
            ),
            command=["python", "-m", "server", "--port", "8080"],
            environment_variables={"MODEL": "llama", "POD_NAMESPACE": "default"},
            image_caching=True,
            priority="medium",
            registry_authentication=models.RegistryAuthentication(
                basic=models.RegistryBasic(username="robot", password="hunter2")
            ),
            logging=models.ContainerLogging(
                datadog=models.LoggingDatadog(
                    host="http-intake.logs.datadoghq.com",
                    api_key="dd-0123",
                    tags=[models.DatadogTag(name="team", value="ml")],
                )
            ),
        ),
        autostart_policy=True,
        replicas=1,
        restart_policy="on_failure",
        country_codes=["us", "ca", "no"],
        networking=models.CreateNetworking(port=8080, auth=False),
        liveness_probe=probe,
        readiness_probe=probe,
        startup_probe=probe,
    )


@dataclass
class Scenario:
    client_exchanges: list[Exchange]
    """What ``SaladClient`` sent and got."""
    raw_exchanges: list[Exchange]
    """Requests made by hand, to reach the simulator's other endpoints and error answers."""

    @property
    def exchanges(self) -> list[Exchange]:
        return self.client_exchanges + self.raw_exchanges


@pytest.fixture(scope="module")
async def scenario() -> AsyncIterator[Scenario]:
    wall = Wall()
    recorded, raw_recorded = RecordingTransport(), RecordingTransport()
    simulator = options(**{"rate-limit": 60, "api-key": [KEY]})
    async with (
        running_simulator(simulator, monotonic=wall) as sim,
        httpx.AsyncClient(transport=recorded) as http,
        httpx.AsyncClient(transport=raw_recorded) as raw,
    ):
        salad = client(http, sim.url, KeyBudget(100_000), retry=QUICK_RETRY)
        await drive(salad, sim, raw)
    yield Scenario(recorded.exchanges, raw_recorded.exchanges)


async def drive(salad: SaladClient, sim: Any, http: httpx.AsyncClient) -> None:
    """Every operation the node uses, in the states where it matters, plus error answers."""
    start = sim.world.clock.datetime_at(0.0)
    await salad.list_gpu_classes()
    await salad.get_quotas()
    await salad.create_container_group(rich_prototype("rich-pod"))
    await salad.create_container_group(
        models.ContainerGroupPrototype(
            name="plain-pod",
            container=models.CreateContainer(
                image="nginx", resources=models.CreateResources(cpu=1, memory=1024)
            ),
            restart_policy="always",
            autostart_policy=False,
        )
    )
    await salad.list_container_groups()  # pending
    sim.advance(45.0)
    await salad.list_instances("rich-pod")  # allocating
    sim.advance(45.0)
    await salad.list_instances("rich-pod")  # downloading, with pulling_progress
    sim.advance(DEPLOYED)
    await salad.list_container_groups()  # running and stopped
    await salad.get_container_group("rich-pod")
    await salad.list_instances("rich-pod")  # running
    await salad.get_system_logs("rich-pod")
    await salad.update_container_group(
        "rich-pod", models.ContainerGroupPatch(replicas=2, display_name="Rich Pod, v1.1")
    )
    await salad.update_container_group("rich-pod", models.ContainerGroupPatch(country_codes=["de"]))
    await salad.start_container_group("plain-pod")
    await salad.stop_container_group("rich-pod")
    await salad.get_container_group("rich-pod")  # stopped, instances stopping
    end = sim.world.clock.datetime_at(sim.now()) + timedelta(minutes=1)
    await salad.query_log_entries(
        models.LogEntryQuery(start_time=start, end_time=end, query="", page_size=50)
    )
    await salad.query_log_entries(
        models.LogEntryQuery(
            start_time=start,
            end_time=end,
            query='resource.type = "container"',
            sort_order="asc",
        )
    )
    instance_path = f"{sim.url}{GROUPS_PATH}/plain-pod/instances"
    sim.advance(DEPLOYED)
    plain = (await http.get(instance_path, headers={"Salad-Api-Key": KEY})).json()["instances"][0]
    key = {"Salad-Api-Key": KEY}
    merge = {**key, "Content-Type": "application/merge-patch+json"}
    await http.get(f"{instance_path}/{plain['id']}", headers=key)
    await http.patch(f"{instance_path}/{plain['id']}", headers=merge, json={"deletion_cost": 10})
    for action in ("restart", "recreate", "reallocate"):
        await http.post(f"{instance_path}/{plain['id']}/{action}", headers=key)
    await salad.delete_container_group("rich-pod")
    # error answers: every one must still be a ProblemDetails
    for failing in (
        salad.create_container_group(rich_prototype("rich-pod")),  # name_conflict
        salad.get_container_group("rich-pod"),  # 404
        salad.update_container_group("nope", models.ContainerGroupPatch(replicas=1)),
    ):
        with pytest.raises(SaladError):
            await failing
    bad = models.request_json(rich_prototype("bad-pod"))
    bad["container"]["resources"]["memory"] = 10  # a 400 validation answer, not sent by the client
    await http.post(sim.url + GROUPS_PATH, headers=key, json=bad)
    await http.get(sim.url + GROUPS_PATH)  # 401
    await http.get(sim.url + GROUPS_PATH, headers={"Salad-Api-Key": "wrong"})  # 403
    while (await http.get(sim.url + GROUPS_PATH, headers=key)).status_code != 429:
        pass


def _api(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if openapi.API_PREFIX in e.path]


def test_the_spec_is_read_with_yaml_1_2_booleans(saladcloud_spec: dict[str, Any]) -> None:
    codes = saladcloud_spec["components"]["schemas"]["CountryCode"]["enum"]
    assert "no" in codes, "Norway, not False"
    assert all(isinstance(code, str) for code in codes)


def test_the_simulator_knows_exactly_the_specs_country_codes(
    saladcloud_spec: dict[str, Any],
) -> None:
    assert set(saladcloud_spec["components"]["schemas"]["CountryCode"]["enum"]) == COUNTRY_CODES


async def test_the_scenario_covers_every_operation_of_the_client_and_the_errors(
    saladcloud_spec: dict[str, Any], scenario: Scenario
) -> None:
    operations = {
        openapi.operation(saladcloud_spec, e.method, e.path)["operationId"]
        for e in _api(scenario.exchanges)
    }
    statuses = {e.status for e in _api(scenario.exchanges)}
    assert operations >= {
        "list_container_groups",
        "get_container_group",
        "create_container_group",
        "update_container_group",
        "delete_container_group",
        "start_container_group",
        "stop_container_group",
        "list_container_group_instances",
        "get_container_group_instance",
        "update_container_group_instance",
        "restart_container_group_instance",
        "recreate_container_group_instance",
        "reallocate_container_group_instance",
        "get_system_logs",
        "list_gpu_classes",
        "get_quotas",
        "query_log_entries",
    }
    assert statuses >= {200, 201, 202, 400, 401, 403, 404, 429}


async def test_every_simulator_answer_matches_the_spec(
    saladcloud_spec: dict[str, Any], scenario: Scenario
) -> None:
    problems: list[str] = []
    for exchange in _api(scenario.exchanges):
        op = openapi.operation(saladcloud_spec, exchange.method, exchange.path)
        documented = openapi.response_content(saladcloud_spec, op, exchange.status)
        where = f"{exchange.method} {exchange.path} -> {exchange.status}"
        if not documented:
            if exchange.response_body:
                problems.append(
                    f"{where}: the spec documents no body, got {exchange.response_body[:80]!r}"
                )
            continue
        media = (exchange.response_type or "").split(";")[0].strip()
        if media not in documented:
            problems.append(f"{where}: content type {media!r}, the spec lists {sorted(documented)}")
            continue
        body = json.loads(exchange.response_body)
        problems += [
            f"{where}: {e}" for e in openapi.schema_errors(saladcloud_spec, documented[media], body)
        ]
    assert problems == []


async def test_every_client_request_body_matches_the_spec(
    saladcloud_spec: dict[str, Any], scenario: Scenario
) -> None:
    problems: list[str] = []
    checked = 0
    for exchange in _api(scenario.client_exchanges):
        op = openapi.operation(saladcloud_spec, exchange.method, exchange.path)
        where = f"{exchange.method} {exchange.path}"
        if "requestBody" not in op:
            if exchange.request_body:
                problems.append(f"{where}: the spec takes no body, got one")
            continue
        documented = openapi.request_content(saladcloud_spec, op)
        media = (exchange.request_type or "").split(";")[0].strip()
        if media not in documented:
            problems.append(f"{where}: content type {media!r}, the spec wants {sorted(documented)}")
            continue
        body = json.loads(exchange.request_body)
        problems += [
            f"{where}: {e}" for e in openapi.schema_errors(saladcloud_spec, documented[media], body)
        ]
        checked += 1
    assert problems == []
    assert checked >= 8


OUT_OF_BOUNDS = [
    pytest.param({"replicas": 501}, id="replicas"),
    pytest.param({"name": "Not_A_Name"}, id="name"),
    pytest.param({"country_codes": ["xx"]}, id="country-code"),
    pytest.param({"container": {"image": "x", "resources": {"cpu": 0, "memory": 1024}}}, id="cpu"),
    pytest.param(
        {
            "container": {
                "image": "x",
                "resources": {"cpu": 1, "memory": 1024},
                "environment_variables": {"A": ""},
            }
        },
        id="empty-env-value",
    ),
    pytest.param({"display_name": "no_underscores"}, id="display-name"),
]


@pytest.mark.parametrize("changes", OUT_OF_BOUNDS)
async def test_the_simulator_refuses_bodies_out_of_the_specs_bounds(
    changes: dict[str, Any],
) -> None:
    document = {**body(), **changes}

    async with running_simulator(options()) as sim, httpx.AsyncClient() as http:
        answer = await http.post(
            sim.url + GROUPS_PATH, json=document, headers={"Salad-Api-Key": KEY}
        )

    assert answer.status_code == 400


@pytest.mark.parametrize("changes", OUT_OF_BOUNDS)
def test_the_spec_refuses_the_bodies_the_simulator_refuses(
    saladcloud_spec: dict[str, Any], changes: dict[str, Any]
) -> None:
    """Guards the table above: each body breaks the spec, and only by its change."""
    schema = {"$ref": "#/components/schemas/ContainerGroupPrototype"}
    assert openapi.schema_errors(saladcloud_spec, schema, body()) == [], "the base body is valid"
    assert openapi.schema_errors(saladcloud_spec, schema, {**body(), **changes}) != []


def test_the_scenarios_rich_create_body_is_valid_by_the_spec(
    saladcloud_spec: dict[str, Any],
) -> None:
    """Guards the scenario's premise: its 400s come from the bodies meant to be refused."""
    body = models.request_json(rich_prototype("x-pod"))
    schema = {"$ref": "#/components/schemas/ContainerGroupPrototype"}
    assert openapi.schema_errors(saladcloud_spec, schema, body) == []


# --- null, member by member ----------------------------------------------------------------

_PROBE = {
    "failure_threshold": 3,
    "initial_delay_seconds": 0,
    "period_seconds": 10,
    "success_threshold": 1,
    "timeout_seconds": 1,
}
_CREATE_BASES: list[dict[str, Any]] = [
    {
        **body("every-member"),
        "display_name": "Every Member",
        "country_codes": ["us"],
        "networking": {
            "auth": False,
            "port": 8080,
            "protocol": "http",
            "client_request_timeout": 100,
            "server_response_timeout": 100,
            "load_balancer": "round_robin",
            "single_connection_limit": False,
        },
        "queue_connection": {"path": "/jobs", "port": 8080, "queue_name": "jobs"},
        "queue_autoscaler": {
            "desired_queue_length": 2,
            "min_replicas": 0,
            "max_replicas": 3,
            "max_downscale_per_minute": 1,
            "max_upscale_per_minute": 1,
            "polling_period": 30,
        },
        "scaling-actions": [{"replicas": 1, "schedule": "0 8 * * *"}],
        "scheduled-scaling-enabled": True,
        "liveness_probe": {**_PROBE, "exec": {"command": ["true"]}},
        "readiness_probe": {
            **_PROBE,
            "http": {
                "path": "/",
                "port": 8080,
                "scheme": "http",
                "headers": [{"name": "X", "value": "1"}],
            },
        },
        "startup_probe": {**_PROBE, "grpc": {"port": 9000, "service": ""}},
        "container": {
            "image": "nginx:1.27",
            "command": ["nginx"],
            "environment_variables": {"A": "1"},
            "image_caching": True,
            "priority": "high",
            "resources": {
                "cpu": 1,
                "memory": 1024,
                "gpu_classes": [gpu_class_id("RTX 4090 (24 GB)")],
                "shm_size": 64,
                "storage_amount": 1073741824,
            },
            "logging": {
                "http": {
                    "host": "logs.example.com",
                    "port": 443,
                    "format": "json",
                    "compression": "none",
                    "headers": [{"name": "X", "value": "1"}],
                    "password": "p",
                    "path": "/in",
                    "user": "u",
                }
            },
            "registry_authentication": {"basic": {"username": "u", "password": "p"}},
        },
    },
]
_MECHANISMS: list[dict[str, Any]] = [
    {"exec": {"command": ["true"]}},
    {"grpc": {"port": 9000, "service": ""}},
    {
        "http": {
            "path": "/",
            "port": 80,
            "scheme": "https",
            "headers": [{"name": "X", "value": "1"}],
        }
    },
    {"tcp": {"port": 80}},
]
for _index, (_logging, _registry) in enumerate(
    [
        (
            {"datadog": {"host": "h", "api_key": "k", "tags": [{"name": "a", "value": "b"}]}},
            {"docker_hub": {"username": "u", "personal_access_token": "t"}},
        ),
        (
            {"axiom": {"host": "h", "api_token": "t", "dataset": "d"}},
            {"aws_ecr": {"access_key_id": "a", "secret_access_key": "s"}},
        ),
        ({"new_relic": {"host": "h", "ingestion_key": "k"}}, {"gcp_gar": {"service_key": "{}"}}),
        ({"splunk": {"host": "h", "token": "t"}}, {"gcp_gcr": {"service_key": "{}"}}),
        ({"tcp": {"host": "h", "port": 514}}, {"basic": {"username": "u", "password": "p"}}),
    ]
):
    # Each variant: another logging provider, registry and probe mechanism per probe kind.
    _base = body("member-variant")
    _base["container"]["logging"] = _logging
    _base["container"]["registry_authentication"] = _registry
    for _offset, _kind in enumerate(("liveness_probe", "readiness_probe", "startup_probe")):
        _base[_kind] = {**_PROBE, **_MECHANISMS[(_index + _offset) % len(_MECHANISMS)]}
    _CREATE_BASES.append(_base)
_PATCH_BASES: list[dict[str, Any]] = [
    {
        "display_name": "Renamed",
        "country_codes": ["us"],
        "replicas": 1,
        "networking": {"port": 8080},
        "queue_autoscaler": _CREATE_BASES[0]["queue_autoscaler"],
        "scaling-actions": [{"replicas": 1, "schedule": "0 8 * * *"}],
        "scheduled-scaling-enabled": False,
        "liveness_probe": _CREATE_BASES[0]["liveness_probe"],
        "readiness_probe": _CREATE_BASES[0]["readiness_probe"],
        "startup_probe": _CREATE_BASES[0]["startup_probe"],
        "container": {
            **_CREATE_BASES[0]["container"],
            "logging": {"http": _CREATE_BASES[0]["container"]["logging"]["http"]},
        },
    },
    *(
        {
            "container": {
                "logging": b["container"]["logging"],
                "registry_authentication": b["container"]["registry_authentication"],
            },
            **{kind: b[kind] for kind in ("liveness_probe", "readiness_probe", "startup_probe")},
        }
        for b in _CREATE_BASES[1:]
    ),
]
_REQUESTS: dict[str, tuple[type[Any], list[dict[str, Any]]]] = {
    "ContainerGroupPrototype": (validation.ContainerGroupPrototype, _CREATE_BASES),
    "ContainerGroupPatch": (validation.ContainerGroupPatch, _PATCH_BASES),
    "ContainerGroupInstancePatch": (validation.ContainerGroupInstancePatch, [{"deletion_cost": 1}]),
    "LogEntryQuery": (
        validation.LogEntryQuery,
        [
            {
                "start_time": "2026-04-03T12:00:00Z",
                "end_time": "2026-04-03T13:00:00Z",
                "query": "",
                "page_size": 10,
                "sort_order": "asc",
            }
        ],
    ),
}


def _member_paths(spec: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every member path the schema describes (``[]`` stands for an array's items)."""
    paths: list[tuple[str, ...]] = []

    def walk(node: dict[str, Any], path: tuple[str, ...], seen: frozenset[str]) -> None:
        ref = node.get("$ref")
        if ref is not None:
            if ref in seen:
                return
            walk(openapi.resolve(spec, node), path, seen | {ref})
            return
        for member, sub in (node.get("properties") or {}).items():
            paths.append((*path, member))
            walk(sub, (*path, member), seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, "[]"), seen)

    walk(schema, (), frozenset())
    return paths


def _with_null(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """``document`` with the member at ``path`` set to null; None if its parent is absent."""
    copy_ = json.loads(json.dumps(document))
    target: Any = copy_
    for part in path[:-1]:
        target = (
            target[0]
            if part == "[]" and isinstance(target, list) and target
            else (target.get(part) if isinstance(target, dict) else None)
        )
        if not isinstance(target, dict | list) or (isinstance(target, list) and not target):
            return None
    if isinstance(target, list):
        target = target[0]
    if not isinstance(target, dict):
        return None
    target[path[-1]] = None
    return dict(copy_)


@pytest.mark.parametrize("schema_name", list(_REQUESTS))
def test_null_is_refused_exactly_where_the_specs_schema_refuses_it(
    saladcloud_spec: dict[str, Any], schema_name: str
) -> None:
    """Member by member, from the spec: an explicit null is a 400 unless the member's
    schema allows null (``X | None = None`` alone would take it everywhere)."""
    model, bases = _REQUESTS[schema_name]
    schema = {"$ref": f"#/components/schemas/{schema_name}"}
    for base in bases:
        assert openapi.schema_errors(saladcloud_spec, schema, base) == [], base
        validation.check(model, base)
    disagreements = []
    for path in _member_paths(saladcloud_spec, schema):
        mutated = next((m for m in (_with_null(b, path) for b in bases) if m is not None), None)
        assert mutated is not None, f"no base document has the parent of {'.'.join(path)}"
        spec_says = not openapi.schema_errors(saladcloud_spec, schema, mutated)
        try:
            validation.check(model, mutated)
            simulator_says = True
        except ApiProblem as problem:
            assert problem.status == 400
            simulator_says = False
        if spec_says != simulator_says:
            verdict = "takes" if simulator_says else "refuses"
            disagreements.append(
                f"{'.'.join(path)}: null is valid={spec_says}, simulator {verdict} it"
            )
    assert disagreements == []
