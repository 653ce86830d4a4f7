"""Replicas announce themselves, and judge each other by their own clocks."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeConflict, KubeNotFound
from supervisor.membership import (
    FORGET_AFTER,
    LEAVING_ANNOTATION,
    NODES_ANNOTATION,
    MemberKeeper,
    MemberRecord,
    MemberView,
    MemberWatch,
    Phase,
    member_lease_name,
    parse_member,
    resolve_identity,
    retry_period,
)
from supervisor.takeover import Liveness
from tests.nodes.harness import eventually

pytestmark = pytest.mark.anyio

TIMEOUT = 15.0


def record(identity: str, run: str = "r1", version: str = "1", **more: Any) -> MemberRecord:
    return MemberRecord(
        identity=identity,
        holder=f"{identity}/{run}",
        version=version,
        leaving=more.get("leaving", False),
        nodes=more.get("nodes", {}),
    )


# --- the view: pure bookkeeping -------------------------------------------------------


def test_a_member_is_live_until_its_lease_stands_still_for_the_timeout() -> None:
    view = MemberView(TIMEOUT)
    view.replace([record("a")], now=100.0)
    assert view.liveness("a/r1", 114.9) is Liveness.LIVE
    assert view.liveness("a/r1", 115.0) is Liveness.SILENT
    view.observe(record("a", version="2"), now=114.0)
    assert view.liveness("a/r1", 128.9) is Liveness.LIVE
    assert "a" in view.live(128.9) and "a" not in view.live(129.0)


def test_a_renewal_alone_is_no_change_for_placement_but_a_return_from_silence_is() -> None:
    view = MemberView(TIMEOUT)
    assert view.observe(record("a"), now=100.0)
    assert not view.observe(record("a", version="2"), now=102.0)
    assert view.observe(record("a", version="3", nodes={"n": 1}), now=104.0)
    assert view.observe(record("a", version="4", nodes={"n": 1}), now=120.0)


def test_a_relist_keeps_the_age_of_what_did_not_change() -> None:
    view = MemberView(TIMEOUT)
    view.replace([record("a"), record("b")], now=100.0)
    view.replace([record("a"), record("b", version="5")], now=110.0)
    assert view.liveness("a/r1", 115.0) is Liveness.SILENT
    assert view.liveness("b/r1", 115.0) is Liveness.LIVE


def test_liveness_of_holders_the_view_knows_and_does_not() -> None:
    view = MemberView(TIMEOUT)
    view.replace([record("a", run="r2"), record("b", leaving=True)], now=100.0)
    assert view.liveness("a/r1", 101.0) is Liveness.REPLACED
    assert view.liveness("b/r1", 101.0) is Liveness.LEAVING
    assert view.liveness("c/r1", 101.0) is Liveness.UNKNOWN
    assert set(view.live(101.0)) == {"a"}


def test_a_fresh_read_confirms_silence_only_if_nothing_changed() -> None:
    view = MemberView(TIMEOUT)
    view.replace([record("a"), record("b")], now=100.0)
    assert view.confirms_silence("a", record("a"), now=116.0)
    # The watch lagged: the Lease moved on, so the member is live again in this view.
    assert not view.confirms_silence("b", record("b", version="9"), now=116.0)
    assert view.liveness("b/r1", 116.0) is Liveness.LIVE
    # Gone: not silent, unknown (the node Lease's own stillness decides then).
    assert not view.confirms_silence("a", None, now=117.0)
    assert view.liveness("a/r1", 117.0) is Liveness.UNKNOWN


def test_the_next_silence_is_when_the_quietest_live_member_would_turn_silent() -> None:
    view = MemberView(TIMEOUT)
    view.replace([record("a")], now=100.0)
    view.observe(record("b"), now=105.0)
    assert view.next_silence(101.0) == 115.0
    assert view.next_silence(116.0) == 120.0
    assert view.next_silence(121.0) is None


async def test_a_member_silent_for_an_hour_has_its_lease_deleted_unless_it_came_back() -> None:
    class Deletes:
        def __init__(self) -> None:
            self.deleted: list[tuple[str, Any]] = []

        async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
            if path.endswith(member_lease_name("back")):
                raise KubeConflict(409, "Conflict", "renewed meanwhile", "DELETE", path)
            self.deleted.append((path, body))
            return {}

    now = time.monotonic()
    view = MemberView(TIMEOUT)
    view.replace([record("dead", version="5"), record("back", version="6")], now - FORGET_AFTER)
    view.observe(record("live", version="9"), now - TIMEOUT * 2)  # silent, not yet gone
    kube = Deletes()
    watch = MemberWatch(kube, "ns", view, lambda: None)  # type: ignore[arg-type]
    await watch._forget_the_long_gone()

    assert kube.deleted == [
        (
            f"/apis/coordination.k8s.io/v1/namespaces/ns/leases/{member_lease_name('dead')}",
            {"preconditions": {"resourceVersion": "5"}},
        )
    ]
    assert set(view.members()) == {"back", "live"}


def test_a_membership_lease_says_who_what_and_whether_it_is_leaving() -> None:
    lease: dict[str, Any] = {
        "metadata": {
            "name": member_lease_name("salad-vk-0"),
            "resourceVersion": "42",
            "annotations": {
                NODES_ANNOTATION: '{"salad-a": 1, "salad-b": 3, "bad": "x", "zero": 0}',
                LEAVING_ANNOTATION: "true",
            },
        },
        "spec": {"holderIdentity": "salad-vk-0/abc"},
    }
    assert parse_member(lease) == MemberRecord(
        identity="salad-vk-0",
        holder="salad-vk-0/abc",
        version="42",
        leaving=True,
        nodes={"salad-a": 1, "salad-b": 3},
    )
    lease["metadata"]["annotations"] = {NODES_ANNOTATION: "not json"}
    parsed = parse_member(lease)
    assert parsed is not None and parsed.nodes == {} and not parsed.leaving
    assert parse_member({"metadata": {"name": "some-controller-leader"}}) is None


@pytest.mark.parametrize(
    ("configured", "environ", "hostname", "expected"),
    [
        ("salad-vk-a", {"POD_NAME": "pod-1"}, "host", "salad-vk-a"),
        (None, {"POD_NAME": "salad-vk-7c9-x2"}, "host", "salad-vk-7c9-x2"),
        (None, {}, "Build_Host.Example.COM", "build-host.example.com"),
        (None, {}, "...", "salad-vk"),
    ],
)
def test_the_identity_comes_from_the_flag_the_pod_or_the_host(
    configured: str | None, environ: dict[str, str], hostname: str, expected: str
) -> None:
    assert resolve_identity(configured, environ, hostname) == expected


def test_a_long_host_name_is_cut_to_a_lease_name_that_stays_unique() -> None:
    first = resolve_identity(None, {}, "h" * 300 + "1")
    second = resolve_identity(None, {}, "h" * 300 + "2")
    assert len(first) <= 200 and first != second


def test_membership_is_renewed_five_times_within_its_deadline() -> None:
    assert retry_period(15.0) == pytest.approx(2.0)


# --- the keeper: standing by its own clock --------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowKube:
    """An API server for one object whose answers wait until the test lets them go."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.gate = anyio.Event()
        self.gate.set()

    def unlimited(self) -> SlowKube:
        return self

    def _store(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[path] = stored
        return copy.deepcopy(stored)

    async def get(self, path: str, **_: Any) -> dict[str, Any]:
        if path not in self.objects:
            raise KubeNotFound(404, "NotFound", "", "GET", path)
        return copy.deepcopy(self.objects[path])

    async def post(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        await self.gate.wait()
        return self._store(f"{path}/{body['metadata']['name']}", body)

    async def put(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        await self.gate.wait()
        current = self.objects.get(path)
        if current is None or current["metadata"]["resourceVersion"] != body["metadata"].get(
            "resourceVersion"
        ):
            raise KubeConflict(409, "Conflict", "", "PUT", path)
        return self._store(path, body)


async def test_an_answer_after_the_deadline_starts_a_new_epoch() -> None:
    clock = Clock()
    kube = SlowKube()
    keeper = MemberKeeper(
        kube,  # type: ignore[arg-type]
        "ns",
        "salad-vk-a",
        "salad-vk-a/r1",
        ownership_timeout=3.0,
        clock=clock,
    )
    async with anyio.create_task_group() as group:
        await group.start(keeper.run)
        assert keeper.valid(clock.now) and keeper.epoch == 1
        assert keeper.valid_until == pytest.approx(clock.now + 2.0)
        kube.gate = anyio.Event()  # the next renewal hangs...
        await anyio.sleep(retry_period(3.0) * 1.5)
        clock.now += 5.0  # ...past the deadline
        assert not keeper.valid(clock.now)
        kube.gate.set()  # ...and is answered late; the next renewal is in time

        async def valid_again() -> bool:
            return keeper.valid(clock.now)

        await eventually(valid_again, 5, "membership valid again")
        # Back after a lapse: a new epoch, so tenures begun before it stay refused.
        assert keeper.epoch == 2
        group.cancel_scope.cancel()


# --- the keeper against a real API server ---------------------------------------------


async def test_a_restarted_replica_takes_its_membership_back_and_the_old_run_steps_back(
    kube_api: ApiClient, namespace: str
) -> None:
    kube = KubeClient(kube_api, node="test")
    identity = f"salad-vk-{uuid.uuid4().hex[:6]}"
    first = MemberKeeper(kube, namespace, identity, f"{identity}/run1", ownership_timeout=3.0)
    second = MemberKeeper(kube, namespace, identity, f"{identity}/run2", ownership_timeout=3.0)
    async with anyio.create_task_group() as group:
        await group.start(first.run)
        first.announce({"salad-a": 1})
        await group.start(second.run)  # same pod name, new container: takes over at once
        assert second.phase is Phase.MEMBER

        async def first_stepped_back() -> bool:
            return not first.valid(time.monotonic())

        await eventually(first_stepped_back, 10, "the older run to step back")
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{second.name}"
        lease = await kube.get(path)
        assert lease["spec"]["holderIdentity"] == f"{identity}/run2"
        await second.leave()
        lease = await kube.get(path)
        assert lease["metadata"]["annotations"][LEAVING_ANNOTATION] == "true"
        assert not second.valid(time.monotonic())
        await second.remove()
        with pytest.raises(KubeNotFound):
            await kube.get(path)
        group.cancel_scope.cancel()


def quiet_keeper(kube: KubeClient, namespace: str) -> tuple[MemberKeeper, str]:
    """A keeper that renews only every 8 s (nothing between a test's steps), and the
    path of its Lease."""
    identity = f"salad-vk-{uuid.uuid4().hex[:6]}"
    keeper = MemberKeeper(kube, namespace, identity, f"{identity}/run1", ownership_timeout=60.0)
    return keeper, f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{keeper.name}"


async def test_leaving_and_removal_go_through_after_a_write_the_keeper_never_saw(
    kube_api: ApiClient, namespace: str
) -> None:
    """A renewal cut short by the shutdown can be written without its answer coming
    back: the keeper's copy is then a version behind, and its way out must not fail
    on that (the other replicas would wait out its silence before taking its nodes)."""
    kube = KubeClient(kube_api, node="test")
    keeper, path = quiet_keeper(kube, namespace)

    async def written_unseen() -> None:
        lease = await kube.get(path)
        lease["metadata"].setdefault("annotations", {})["test/unseen"] = uuid.uuid4().hex
        written = await kube.put(path, lease)
        assert written["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"]

    async with anyio.create_task_group() as group:
        await group.start(keeper.run)
        await written_unseen()
        await keeper.leave()
        lease = await kube.get(path)
        assert lease["metadata"]["annotations"][LEAVING_ANNOTATION] == "true"
        assert lease["spec"]["holderIdentity"] == keeper.holder
        await written_unseen()
        await keeper.remove()
        with pytest.raises(KubeNotFound):
            await kube.get(path)
        group.cancel_scope.cancel()


async def test_the_way_out_leaves_a_lease_another_run_took_alone(
    kube_api: ApiClient, namespace: str
) -> None:
    kube = KubeClient(kube_api, node="test")
    keeper, path = quiet_keeper(kube, namespace)
    async with anyio.create_task_group() as group:
        await group.start(keeper.run)
        lease = await kube.get(path)
        lease["spec"]["holderIdentity"] = keeper.holder.replace("/run1", "/run2")
        await kube.put(path, lease)
        await keeper.leave()
        await keeper.remove()
        lease = await kube.get(path)
        assert lease["spec"]["holderIdentity"] == keeper.holder.replace("/run1", "/run2")
        assert LEAVING_ANNOTATION not in (lease["metadata"].get("annotations") or {})
        await kube.delete(path)
        group.cancel_scope.cancel()
