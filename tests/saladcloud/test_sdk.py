"""SaladCloud's official Python SDK (``salad-cloud-sdk``, pinned) drives ``salad-vk simulate``.

The SDK was generated from the spec version the simulator follows, by people who are not
us: every answer must deserialize into its models (which check types, enums, patterns
and bounds), with no member the SDK does not know, and every error must come back as the
``ProblemDetails`` it expects. A disagreement is the simulator's to fix, unless the SDK
is at fault: those few quirks are worked around here, each with a comment.

The simulator runs as ``salad-vk simulate`` in another process, as a user would run it;
simulated time barely moves on its own (``--time-scale 0.01``) and is advanced through
the control API.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from salad_cloud_sdk import SaladCloudSdk
from salad_cloud_sdk import models as sdk
from salad_cloud_sdk.models.utils.base_model import BaseModel as SdkModel
from salad_cloud_sdk.net.transport.api_error import ApiError

from nodes.saladcloud.simulator.gpus import gpu_class_id
from tests.openapi import REPO_ROOT

from .builders import DEPLOYED, KEY, ORG, PROJECT

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+/api/public)")
NIL_MACHINE = "00000000-0000-0000-0000-000000000000"
RTX_4090 = gpu_class_id("RTX 4090 (24 GB)")


@dataclass
class Simulate:
    """A ``salad-vk simulate`` process and what talks to it."""

    url: str
    process: subprocess.Popen[str]

    def sdk(self, api_key: str | None = KEY) -> Any:
        return SaladCloudSdk(api_key=api_key, base_url=self.url)

    def control(self, path: str, document: dict[str, Any]) -> Any:
        control = self.url.removesuffix("/api/public") + "/_simulator"
        answer = httpx.post(control + path, json=document)
        answer.raise_for_status()
        return answer.json()

    def advance(self, seconds: float) -> None:
        self.control("/clock", {"advance": seconds})

    def now(self) -> str:
        control = self.url.removesuffix("/api/public") + "/_simulator"
        return str(httpx.get(control).json()["now"])


@contextmanager
def simulate(*flags: str) -> Iterator[Simulate]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "supervisor",
            "simulate",
            "--listen=127.0.0.1:0",
            f"--project={ORG}/{PROJECT}",
            f"--api-key={KEY}",
            "--time-scale=0.01",
            *flags,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = LISTENING.search(line)
        assert match, f"unexpected first line {line!r}"
        yield Simulate(match[1], process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulate]:
    with simulate("--rate-limit=100000", "--fail-image=registry.example.com/broken:*") as running:
        yield running


@pytest.fixture
def client(sim: Simulate) -> Any:
    return sim.sdk()


def unique(prefix: str) -> str:
    """A group name not used before: names are never reusable, even after a delete."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def unknown_members(value: Any, path: str = "") -> list[str]:
    """Members of an SDK model (recursively) that the SDK did not know: it keeps them in
    ``_kwargs`` instead of refusing them."""
    if isinstance(value, list):
        return [m for i, item in enumerate(value) for m in unknown_members(item, f"{path}[{i}]")]
    if not isinstance(value, SdkModel):
        return []
    found = [f"{path}.{name}" for name in getattr(value, "_kwargs", {}) or {}]
    for name, member in vars(value).items():
        if name != "_kwargs":
            found += unknown_members(member, f"{path}.{name}")
    return found


_Model = TypeVar("_Model")


def deserialized(value: Any, model: type[_Model]) -> _Model:
    """``value`` as the SDK's ``model``, with every member a member the SDK knows."""
    assert isinstance(value, model), f"{type(value).__name__}, not {model.__name__}"
    assert unknown_members(value) == []
    return value


def problem(call: Callable[[], Any], status: int) -> Any:
    """The SDK's ``ProblemDetails`` for the error ``call`` must end with."""
    with pytest.raises(ApiError) as raised:
        call()
    error = raised.value
    assert error.status == status
    # SDK quirk: it builds an error model as ProblemDetails(**body), without its own
    # name mapping, so the member `type` lands in `_kwargs` instead of `type_`; and it
    # only does so for the statuses an operation declares (else a plain ApiError).
    # Mapping the body the SDK received with the model's own `_unmap` is the check.
    assert isinstance(error.response.body, dict), error.response.body
    details = deserialized(sdk.ProblemDetails._unmap(error.response.body), sdk.ProblemDetails)
    assert details.status == status
    assert details.title and details.detail
    return details


def creation(name: str, **changes: Any) -> Any:
    container = changes.pop(
        "container",
        sdk.ContainerConfiguration(
            image="nginx:1.27",
            resources=sdk.CreateContainerResourceRequirements(cpu=1, memory=1024),
        ),
    )
    values: dict[str, Any] = {
        "autostart_policy": True,
        "replicas": 1,
        "restart_policy": "always",
        **changes,
    }
    return sdk.ContainerGroupCreationRequest(name=name, container=container, **values)


def create(client: Any, request: Any) -> Any:
    group = client.container_groups.create_container_group(request, ORG, PROJECT)
    return deserialized(group, sdk.ContainerGroup)


def get(client: Any, name: str) -> Any:
    group = client.container_groups.get_container_group(ORG, PROJECT, name)
    return deserialized(group, sdk.ContainerGroup)


def instances(client: Any, name: str) -> list[Any]:
    found = client.container_groups.list_container_group_instances(ORG, PROJECT, name)
    return list(deserialized(found, sdk.ContainerGroupInstanceCollection).instances)


def system_logs(client: Any, name: str) -> list[Any]:
    found = client.system_logs.get_system_logs(ORG, PROJECT, name)
    return list(deserialized(found, sdk.SystemLogList).items)


# --- organization --------------------------------------------------------------------------


def test_gpu_classes_and_quotas_deserialize(client: Any) -> None:
    classes = deserialized(client.organization_data.list_gpu_classes(ORG), sdk.GpuClassesList)
    quotas = deserialized(client.quotas.get_quotas(ORG), sdk.Quotas)

    assert RTX_4090 in {c.id_ for c in classes.items}
    assert all(c.prices for c in classes.items)
    assert quotas.container_groups_quotas.container_replicas_quota >= 1


# --- container groups ----------------------------------------------------------------------

LOGGING = {
    "axiom": sdk.AxiomLoggingConfiguration(host="api.axiom.co", api_token="xaat-1", dataset="d"),
    "datadog": sdk.DatadogLoggingConfiguration(
        host="http-intake.logs.datadoghq.com",
        api_key="dd-1",
        tags=[sdk.DatadogTagForContainerLogging(name="team", value="ml")],
    ),
    "datadog-without-tags": sdk.DatadogLoggingConfiguration(host="h", api_key="k", tags=None),
    "http": sdk.ContainerLoggingConfigurationHttp2(
        host="logs.example.com",
        port=443,
        format="json_lines",
        compression="gzip",
        headers=[sdk.ContainerLoggingHttpHeader(name="Authorization", value="Bearer t")],
        path="/ingest",
        user="robot",
        password="pa55",
    ),
    "http-minimal": sdk.ContainerLoggingConfigurationHttp2(
        host="logs.example.com", port=80, format="json", compression="none"
    ),
    "new_relic": sdk.NewRelicLoggingConfiguration(
        host="https://log-api.newrelic.com", ingestion_key="nr-1"
    ),
    "splunk": sdk.ContainerLoggingSplunkConfiguration(host="splunk.example.com", token="t"),
    "tcp": sdk.TcpLoggingConfiguration(host="logs.example.com", port=5170),
}


@pytest.mark.parametrize("kind", list(LOGGING))
def test_a_group_can_log_to_every_provider(client: Any, kind: str) -> None:
    provider = kind.split("-", maxsplit=1)[0]
    container = sdk.ContainerConfiguration(
        image="nginx:1.27",
        resources=sdk.CreateContainerResourceRequirements(cpu=1, memory=1024),
        logging=sdk.ContainerConfigurationLogging(**{provider: LOGGING[kind]}),
    )
    name = unique("logs")

    created = create(client, creation(name, container=container))
    fetched = get(client, name)

    for group in (created, fetched):
        logging = group.container.logging._map()
        assert list(logging) == [provider]
        sent = LOGGING[kind]._map()
        assert {k: v for k, v in logging[provider].items() if v is not None} == {
            k: v for k, v in sent.items() if v is not None
        }


REGISTRIES = {
    "basic": sdk.ContainerRegistryAuthenticationBasic(username="robot", password="pa55"),
    "docker_hub": sdk.ContainerRegistryAuthenticationDockerHub(
        username="acme", personal_access_token="dckr_pat_1"
    ),
    "aws_ecr": sdk.ContainerRegistryAuthenticationAwsEcr(
        access_key_id="AKIA0", secret_access_key="s3cret"
    ),
    "gcp_gar": sdk.ContainerRegistryAuthenticationGcpGar(service_key='{"type": "sa"}'),
    "gcp_gcr": sdk.ContainerRegistryAuthenticationGcpGcr(service_key='{"type": "sa"}'),
}


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_a_group_can_pull_with_every_registry_authentication(client: Any, kind: str) -> None:
    container = sdk.ContainerConfiguration(
        image="registry.example.com/team/app:1",
        resources=sdk.CreateContainerResourceRequirements(cpu=1, memory=1024),
        registry_authentication=sdk.ContainerRegistryAuthentication(**{kind: REGISTRIES[kind]}),
    )
    name = unique("pull")

    created = create(client, creation(name, container=container))

    # Credentials are taken, never returned.
    assert "registry_authentication" not in created.container._map()
    assert get(client, name).container.image == "registry.example.com/team/app:1"


def probe(kind: type[Any], **mechanism: Any) -> Any:
    return kind(
        failure_threshold=3,
        initial_delay_seconds=0,
        period_seconds=10,
        success_threshold=1,
        timeout_seconds=5,
        **mechanism,
    )


def test_a_group_using_every_create_member_round_trips(client: Any) -> None:
    name = unique("full")
    request = creation(
        name,
        display_name="Full Group, v1",
        country_codes=["us", "no"],
        replicas=2,
        restart_policy="on_failure",
        networking=sdk.CreateContainerGroupNetworking(
            auth=True,
            port=8080,
            protocol="http",
            load_balancer="least_number_of_connections",
            client_request_timeout=1000,
            server_response_timeout=2000,
            single_connection_limit=True,
        ),
        liveness_probe=probe(
            sdk.ContainerGroupLivenessProbe,
            exec_=sdk.ContainerGroupProbeExec(command=["cat", "/tmp/alive"]),
        ),
        readiness_probe=probe(
            sdk.ContainerGroupReadinessProbe,
            http=sdk.ContainerGroupHttpProbeConfiguration(
                path="/ready",
                port=8080,
                scheme="http",
                headers=[sdk.ContainerGroupProbeHttpHeader(name="X-Probe", value="1")],
            ),
        ),
        startup_probe=probe(
            sdk.ContainerGroupStartupProbe,
            grpc=sdk.ContainerGroupGRpcProbe(port=9000, service="health"),
        ),
        queue_connection=sdk.ContainerGroupQueueConnection(
            path="/jobs", port=8080, queue_name="work"
        ),
        queue_autoscaler=sdk.QueueBasedAutoscalerConfiguration(
            desired_queue_length=5,
            min_replicas=0,
            max_replicas=10,
            max_upscale_per_minute=2,
            max_downscale_per_minute=1,
            polling_period=60,
        ),
        scaling_actions=[sdk.ContainerGroupScalingAction(replicas=3, schedule="0 8 * * 1-5")],
        scheduled_scaling_enabled=True,
        container=sdk.ContainerConfiguration(
            image="ghcr.io/acme/model:2",
            command=["python", "-m", "serve"],
            environment_variables={"MODEL": "llama"},
            image_caching=True,
            priority="batch",
            resources=sdk.CreateContainerResourceRequirements(
                cpu=4,
                memory=8192,
                gpu_classes=[RTX_4090],
                storage_amount=53687091200,
                shm_size=1024,
            ),
        ),
    )

    created = create(client, request)
    group = get(client, name)

    assert created._map()["id"] == group._map()["id"]
    assert group.display_name == "Full Group, v1"
    assert group.country_codes == ["us", "no"]
    assert (group.replicas, group.restart_policy, group.priority) == (2, "on_failure", "batch")
    assert group.networking.port == 8080 and group.networking.dns
    assert group.liveness_probe.exec_.command == ["cat", "/tmp/alive"]
    assert group.readiness_probe.http.path == "/ready"
    assert group.startup_probe.grpc.service == "health"
    assert group.container.resources.gpu_classes == [RTX_4090]
    assert group.container.environment_variables == {"MODEL": "llama"}
    assert group.queue_connection.queue_name == "work"
    assert group.queue_autoscaler.max_replicas == 10
    assert [a.schedule for a in group.scaling_actions] == ["0 8 * * 1-5"]
    assert group.scheduled_scaling_enabled is True


def test_a_group_whose_image_cannot_be_pulled_is_failed_and_still_deserializes(
    sim: Simulate, client: Any
) -> None:
    name = unique("broken")
    container = sdk.ContainerConfiguration(
        image="registry.example.com/broken:1",
        resources=sdk.CreateContainerResourceRequirements(cpu=1, memory=1024),
    )
    create(client, creation(name, container=container))
    sim.advance(DEPLOYED)

    group = get(client, name)

    assert group.current_state.status == "failed"
    assert "registry.example.com/broken:1" in group.current_state.description
    assert [e.event_name for e in system_logs(client, name)] == ["Image Pull Failed"]


def test_get_list_update_start_stop_and_delete(sim: Simulate, client: Any) -> None:
    name = unique("life")
    create(client, creation(name, autostart_policy=False))
    sim.advance(DEPLOYED)
    assert get(client, name).current_state.status == "stopped"

    assert client.container_groups.start_container_group(ORG, PROJECT, name) is None
    assert get(client, name).current_state.status == "deploying"
    sim.advance(DEPLOYED)
    assert get(client, name).current_state.status == "running"

    listed = client.container_groups.list_container_groups(ORG, PROJECT)
    names = [g.name for g in deserialized(listed, sdk.ContainerGroupCollection).items]
    assert name in names

    patch = sdk.ContainerGroupPatch(
        display_name="Renamed",
        replicas=2,
        country_codes=["de"],
        container=sdk.UpdateContainer(
            environment_variables={"MODE": "fast"},
            resources=sdk.ContainerResourceUpdateSchema(cpu=2),
        ),
    )
    updated = deserialized(
        client.container_groups.update_container_group(patch, ORG, PROJECT, name),
        sdk.ContainerGroup,
    )
    assert (updated.display_name, updated.replicas, updated.country_codes) == (
        "Renamed",
        2,
        ["de"],
    )
    assert updated.container.resources.cpu == 2
    assert updated.version == 2 and updated.pending_change

    # merge-patch null: the display name goes back to the name, the countries to any
    reset = sdk.ContainerGroupPatch(display_name=None, country_codes=None)
    updated = deserialized(
        client.container_groups.update_container_group(reset, ORG, PROJECT, name),
        sdk.ContainerGroup,
    )
    assert (updated.display_name, updated.country_codes) == (name, [])

    assert client.container_groups.stop_container_group(ORG, PROJECT, name) is None
    assert get(client, name).current_state.status == "stopped"

    assert client.container_groups.delete_container_group(ORG, PROJECT, name) is None
    problem(lambda: get(client, name), 404)


# --- instances -------------------------------------------------------------------------------


def test_every_instance_operation(sim: Simulate, client: Any) -> None:
    name = unique("inst")
    create(client, creation(name))
    sim.advance(DEPLOYED)
    [instance] = instances(client, name)
    machine = instance.machine_id
    assert instance.state == "running" and machine != NIL_MACHINE
    ops = client.container_groups

    got = deserialized(
        ops.get_container_group_instance(ORG, PROJECT, name, instance.id_),
        sdk.ContainerGroupInstance,
    )
    patched = deserialized(
        ops.update_container_group_instance(
            sdk.ContainerGroupInstancePatch(deletion_cost=250), ORG, PROJECT, name, instance.id_
        ),
        sdk.ContainerGroupInstance,
    )
    assert got.id_ == patched.id_ == instance.id_
    assert patched.deletion_cost == 250

    assert ops.restart_container_group_instance(ORG, PROJECT, name, instance.id_) is None
    sim.advance(DEPLOYED)
    assert ops.recreate_container_group_instance(ORG, PROJECT, name, instance.id_) is None
    sim.advance(DEPLOYED)
    [again] = instances(client, name)
    assert (again.state, again.machine_id) == ("running", machine), "same node"

    assert ops.reallocate_container_group_instance(ORG, PROJECT, name, instance.id_) is None
    [moving] = instances(client, name)
    assert (moving.state, moving.machine_id) == ("allocating", NIL_MACHINE)
    sim.advance(DEPLOYED)
    [moved] = instances(client, name)
    assert moved.state == "running"
    assert moved.machine_id not in (machine, NIL_MACHINE), "another node"

    events = [e.event_name for e in system_logs(client, name)]
    assert [e for e in events if e.startswith(("Instance Re", "Instance Started"))] == [
        "Instance Started",
        "Instance Restarted",
        "Instance Started",
        "Instance Recreated",
        "Instance Started",
        "Instance Reallocated",
        "Instance Started",
    ]


@pytest.mark.parametrize("action", ["restart", "recreate"])
def test_an_instance_restarted_before_it_has_a_machine_never_runs_without_one(
    sim: Simulate, client: Any, action: str
) -> None:
    name = unique(action)
    create(client, creation(name))
    sim.advance(40.0)  # prepared (at most 36 s), the instance allocating (at least 16 s)
    [instance] = instances(client, name)
    assert (instance.state, instance.machine_id) == ("allocating", NIL_MACHINE)

    operation = getattr(client.container_groups, f"{action}_container_group_instance")
    assert operation(ORG, PROJECT, name, instance.id_) is None
    sim.advance(DEPLOYED)

    [running] = instances(client, name)
    assert running.state == "running"
    assert running.machine_id != NIL_MACHINE
    started = [e for e in system_logs(client, name) if e.event_name == "Instance Started"]
    assert [e.machine_id for e in started] == [running.machine_id]


def test_a_non_zero_exit_under_restart_policy_never_does_not_fail_the_group(
    sim: Simulate, client: Any
) -> None:
    name = unique("job")
    create(client, creation(name, restart_policy="never"))
    sim.advance(DEPLOYED)

    exited = sim.control(
        f"/organizations/{ORG}/projects/{PROJECT}/containers/{name}/exit", {"code": 3}
    )
    group = get(client, name)

    assert exited == {"affected": 1}
    assert group.current_state.status == "running", "failed is only for image preparation"
    assert instances(client, name) == []
    assert "Instance Exited:3" in [e.event_name for e in system_logs(client, name)]


# --- logs --------------------------------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_system_logs_and_log_entries_deserialize(sim: Simulate, client: Any) -> None:
    name = unique("logs")
    create(client, creation(name))
    sim.advance(DEPLOYED)

    events = [e.event_name for e in system_logs(client, name)]
    assert events[:2] == ["Instance Allocated", "Image Download Completed"]
    # Log entries carry wall-clock times (a client asks "the last minute" by its own
    # clock), whatever the simulator's time scale, and show once SaladCloud received
    # them, up to --log-lag seconds later.
    wall = datetime.now(UTC)
    start, end = rfc3339(wall - timedelta(minutes=10)), rfc3339(wall + timedelta(minutes=10))
    for order in ("asc", "desc"):
        query = sdk.LogEntryQuery(
            start_time=start,
            end_time=end,
            query=f'resource.labels.container_group_name = "{name}"',
            page_size=100,
            sort_order=order,
        )
        deadline = time.monotonic() + 10
        while True:
            page = deserialized(client.logs.query_log_entries(query, ORG), sdk.LogEntryCollection)
            kinds = {entry.resource.type_ for entry in page.items}
            if {"deployment_controller", "instance_controller"} <= kinds:
                break
            assert time.monotonic() < deadline, f"log entries of both kinds, got {kinds}"
            time.sleep(0.5)
        times = [entry.time for entry in page.items]
        assert times == sorted(times, reverse=order == "desc")


# --- errors ------------------------------------------------------------------------------------


def test_a_body_the_api_refuses_is_a_400_problem(client: Any) -> None:
    unknown_class = str(uuid.uuid4())
    request = creation(
        unique("bad"),
        container=sdk.ContainerConfiguration(
            image="nginx",
            resources=sdk.CreateContainerResourceRequirements(
                cpu=1, memory=1024, gpu_classes=[unknown_class]
            ),
        ),
    )

    details = problem(lambda: create(client, request), 400)

    assert unknown_class in details.detail


def test_a_name_taken_is_a_400_name_conflict_even_after_a_delete(client: Any) -> None:
    name = unique("taken")
    create(client, creation(name))

    conflict = problem(lambda: create(client, creation(name)), 400)
    client.container_groups.delete_container_group(ORG, PROJECT, name)
    after_delete = problem(lambda: create(client, creation(name)), 400)

    assert conflict.type_ == after_delete.type_ == "name_conflict"


def test_a_missing_key_is_401_and_a_wrong_key_403(sim: Simulate) -> None:
    # SDK quirk: with no key it sends no Salad-Api-Key header at all, which is the
    # point; container operations do not declare 401, so the SDK raises a plain
    # ApiError there, and a ProblemDetails for log entries, which do.
    problem(lambda: sim.sdk(api_key=None).container_groups.list_container_groups(ORG, PROJECT), 401)
    query = sdk.LogEntryQuery(start_time=sim.now(), end_time=sim.now(), query="")
    problem(lambda: sim.sdk(api_key=None).logs.query_log_entries(query, ORG), 401)
    wrong = sim.sdk(api_key="sk-not-a-key")
    problem(lambda: create(wrong, creation(unique("forbidden"))), 403)
    problem(lambda: wrong.quotas.get_quotas(ORG), 403)


def test_what_does_not_exist_is_404(sim: Simulate, client: Any) -> None:
    name = unique("here")
    create(client, creation(name))
    ops = client.container_groups

    problem(lambda: get(client, unique("absent")), 404)
    problem(lambda: ops.list_container_group_instances(ORG, PROJECT, unique("absent")), 404)
    problem(lambda: ops.get_container_group_instance(ORG, PROJECT, name, str(uuid.uuid4())), 404)
    problem(
        lambda: ops.restart_container_group_instance(ORG, PROJECT, name, str(uuid.uuid4())), 404
    )
    problem(lambda: client.system_logs.get_system_logs(ORG, "no-such-project", name), 404)


def test_more_requests_than_the_keys_limit_are_429() -> None:
    with simulate("--rate-limit=3") as limited:
        client = limited.sdk()
        for _ in range(3):
            client.quotas.get_quotas(ORG)

        details = problem(lambda: client.container_groups.list_container_groups(ORG, PROJECT), 429)

    assert "3 requests per minute" in details.detail
