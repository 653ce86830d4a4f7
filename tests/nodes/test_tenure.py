"""The ownership gate answers from the clock alone, before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nodes.kube import KubeError
from nodes.saladcloud.errors import SaladError
from nodes.tenure import KubeNotOwned, NotOwned, SaladNotOwned, Tenure, renew_deadline


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeStanding:
    epoch: int = 1
    valid_until: float = 200.0
    epoch_began: float = 0.0

    def valid(self, now: float) -> bool:
        return now < self.valid_until


def held(clock: Clock, standing: FakeStanding | None = None) -> Tenure:
    tenure = Tenure("salad-a", node_deadline=20.0, standing=standing, clock=clock)
    tenure.renewed(sent=clock.now)
    return tenure


def test_nothing_is_owned_before_the_lease_is_held() -> None:
    tenure = Tenure("salad-a", node_deadline=20.0, clock=Clock())
    assert tenure.refusal() == "the node's Lease is not held yet"
    with pytest.raises(SaladNotOwned):
        tenure.guard_salad("create_container_group")


def test_ownership_runs_from_when_the_renewal_was_sent() -> None:
    clock = Clock()
    tenure = Tenure("salad-a", node_deadline=20.0, clock=clock)
    sent = clock.now
    clock.now += 4.0  # the answer came late: that changes nothing
    tenure.renewed(sent=sent)
    clock.now = sent + 19.9
    assert tenure.owned
    clock.now = sent + 20.0
    assert tenure.refusal() == "the node's Lease was not renewed in time"


def test_a_late_answer_to_an_older_renewal_never_shortens_ownership() -> None:
    clock = Clock()
    tenure = held(clock)
    tenure.renewed(sent=clock.now - 10.0)
    clock.now += 19.0
    assert tenure.owned


def test_ended_is_ended_whatever_renews_after() -> None:
    clock = Clock()
    tenure = held(clock)
    tenure.end("handed off to another replica")
    tenure.renewed(sent=clock.now)
    assert tenure.refusal() == "handed off to another replica"


def test_membership_must_be_valid_now() -> None:
    clock = Clock()
    standing = FakeStanding(valid_until=105.0)
    tenure = held(clock, standing)
    assert tenure.owned
    clock.now = 105.0
    assert tenure.refusal() == "this replica's membership Lease was not renewed in time"


def test_after_a_lapse_only_a_lease_write_sent_since_membership_is_back_proves_ownership() -> None:
    clock = Clock()
    standing = FakeStanding()
    tenure = held(clock, standing)
    # Membership lapsed and came back at 110: someone may have taken the node meanwhile.
    clock.now = 112.0
    standing.epoch, standing.epoch_began = 2, 110.0
    assert tenure.refusal() == (
        "this replica's membership lapsed since the node's Lease was last renewed"
    )
    assert tenure.membership_lapsed
    tenure.renewed(sent=109.0)  # a node renewal sent during the gap proves nothing
    assert not tenure.owned
    tenure.renewed(sent=111.0)  # one sent since it came back does: no one took it
    assert tenure.owned and not tenure.membership_lapsed


def test_a_first_lease_write_sent_during_a_lapse_proves_nothing_either() -> None:
    # A node restarted in its slot while membership had lapsed: its first write was
    # sent at 109, membership came back at 110, the answer was read at 112. A standby
    # may have taken the node between 109 and 110.
    clock = Clock()
    clock.now = 112.0
    standing = FakeStanding(epoch=2, epoch_began=110.0)
    tenure = Tenure("salad-a", node_deadline=20.0, standing=standing, clock=clock)
    tenure.renewed(sent=109.0)
    assert not tenure.owned
    tenure.renewed(sent=112.0)  # the renewal membership's return asks for
    assert tenure.owned


def test_refusals_are_the_callers_own_error_types_and_name_the_node() -> None:
    tenure = Tenure("salad-a", node_deadline=20.0, clock=Clock())
    with pytest.raises(SaladError) as salad:
        tenure.guard_salad("delete_container_group")
    assert isinstance(salad.value, NotOwned)
    assert "salad-a" in str(salad.value) and "delete_container_group" in str(salad.value)
    assert not salad.value.permanent
    with pytest.raises(KubeError) as kube:
        tenure.guard_kube("PATCH", "/api/v1/namespaces/ns/pods/p/status")
    assert isinstance(kube.value, KubeNotOwned)


@pytest.mark.parametrize(
    ("method", "path", "gated"),
    [
        ("GET", "/api/v1/namespaces/ns/pods/p", False),
        ("POST", "/api/v1/namespaces/ns/events", False),
        ("PATCH", "/apis/events.k8s.io/v1/namespaces/ns/events/e", False),
        ("PATCH", "/api/v1/namespaces/ns/pods/p/status", True),
        ("PATCH", "/api/v1/namespaces/ns/pods/events/status", True),
        ("DELETE", "/api/v1/namespaces/ns/pods/p", True),
        ("POST", "/api/v1/nodes", True),
        ("PATCH", "/api/v1/nodes/salad-a/status", True),
    ],
)
def test_reads_and_events_pass_every_other_write_is_gated(
    method: str, path: str, gated: bool
) -> None:
    tenure = Tenure("salad-a", node_deadline=20.0, clock=Clock())
    if gated:
        with pytest.raises(KubeNotOwned):
            tenure.guard_kube(method, path)
    else:
        tenure.guard_kube(method, path)


def test_the_holder_stops_a_third_of_the_timeout_before_anyone_may_take_over() -> None:
    assert renew_deadline(15.0) == pytest.approx(10.0)


def test_a_tenure_knows_when_it_outlived_its_membership_epoch() -> None:
    clock = Clock()
    standing = FakeStanding()
    tenure = held(clock, standing)
    assert not tenure.membership_lapsed
    standing.epoch = 2
    assert tenure.membership_lapsed
    assert not Tenure("salad-a", node_deadline=20.0, clock=clock).membership_lapsed
