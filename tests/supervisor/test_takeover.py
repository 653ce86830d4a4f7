"""When a replica may take a node's Lease: the whole table, on a clock of our own."""

from __future__ import annotations

import pytest

from supervisor.takeover import (
    Action,
    Confirm,
    LeaseState,
    Liveness,
    Sighting,
    Stop,
    Take,
    Timing,
    Wait,
    decide,
)

ME = "salad-vk-a/run2"
TIMING = Timing(ownership_timeout=15.0, unknown_holder_timeout=25.0, poll=0.5)
NOW = 1000.0


def lease(holder: str, version: str = "7") -> LeaseState:
    return LeaseState(holder=holder, version=version)


def seen(version: str | None = "7", ago: float = 0.0) -> Sighting:
    return Sighting(version=version, since=NOW - ago)


CASES: dict[str, tuple[dict[str, object], Action]] = {
    "a new node, assigned here": (
        {"lease": None, "sighting": seen(None), "preferred": True},
        Take("new", "no Lease yet"),
    ),
    "a released node, assigned here (a handoff)": (
        {"lease": lease(""), "preferred": True},
        Take("released", "released by its last holder"),
    ),
    "a released node assigned elsewhere, just seen": (
        {"lease": lease(""), "preferred": False, "sighting": seen(ago=1.0)},
        Wait(14.0),
    ),
    "a released node assigned elsewhere, nobody took it": (
        {"lease": lease(""), "preferred": False, "sighting": seen(ago=15.0)},
        Take("unclaimed", "left unclaimed by its preferred owner"),
    ),
    "a released node assigned elsewhere, written since we first saw it": (
        {"lease": lease("", version="8"), "preferred": False, "sighting": seen("7", ago=20.0)},
        Wait(0.5),
    ),
    "held by this process already": (
        {"lease": lease(ME)},
        Take("ours", "held by this process already"),
    ),
    "held by an earlier run of this replica (the pod restarted)": (
        {"lease": lease("salad-vk-a/run1"), "liveness": Liveness.REPLACED},
        Take("restarted", "held by an earlier run of this replica"),
    ),
    "held by a live member": (
        {"lease": lease("salad-vk-b/x"), "liveness": Liveness.LIVE},
        Wait(0.5),
    ),
    "held by a member that is leaving (it will release the node)": (
        {"lease": lease("salad-vk-b/x"), "liveness": Liveness.LEAVING},
        Wait(0.5),
    ),
    "held by a silent member, not yet confirmed by a fresh read": (
        {"lease": lease("salad-vk-b/x"), "liveness": Liveness.SILENT},
        Confirm("salad-vk-b"),
    ),
    "held by a silent member, confirmed": (
        {"lease": lease("salad-vk-b/x"), "liveness": Liveness.SILENT, "confirmed": True},
        Take("silent", "salad-vk-b silent for 15s"),
    ),
    "held by a run its identity's membership no longer names": (
        {"lease": lease("salad-vk-b/old"), "liveness": Liveness.REPLACED},
        Take("replaced", "salad-vk-b/old was replaced by a later run"),
    ),
    "held by no member, its Lease just seen": (
        {"lease": lease("legacy/x"), "liveness": Liveness.UNKNOWN, "sighting": seen(ago=5.0)},
        Wait(20.0),
    ),
    "held by no member, its Lease still renewed": (
        {
            "lease": lease("legacy/x", version="9"),
            "liveness": Liveness.UNKNOWN,
            "sighting": seen("8", ago=30.0),
        },
        Wait(0.5),
    ),
    "held by no member, its Lease stood still long enough": (
        {"lease": lease("legacy/x"), "liveness": Liveness.UNKNOWN, "sighting": seen(ago=25.0)},
        Take("unknown_holder", "legacy/x is no member and its Lease stood still"),
    ),
    "held by someone, and not assigned here": (
        {"lease": lease("salad-vk-b/x"), "liveness": Liveness.SILENT, "preferred": False},
        Stop("held by salad-vk-b/x"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_decide(case: str) -> None:
    given, expected = CASES[case]
    values: dict[str, object] = {
        "me": ME,
        "liveness": Liveness.LIVE,
        "sighting": seen(),
        "preferred": True,
        "confirmed": False,
        "now": NOW,
        "timing": TIMING,
        **given,
    }
    assert decide(**values) == expected  # type: ignore[arg-type]


def test_a_silent_holder_is_never_taken_without_a_fresh_read() -> None:
    for confirmed in (False, True):
        action = decide(
            me=ME,
            lease=lease("salad-vk-b/x"),
            liveness=Liveness.SILENT,
            sighting=seen(ago=100.0),
            preferred=True,
            confirmed=confirmed,
            now=NOW,
            timing=TIMING,
        )
        assert isinstance(action, Take) == confirmed


def test_a_live_holder_is_never_taken_however_long_its_node_lease_stood_still() -> None:
    # Its node's Lease may be late; its membership says it is alive and fencing on time.
    action = decide(
        me=ME,
        lease=lease("salad-vk-b/x"),
        liveness=Liveness.LIVE,
        sighting=seen(ago=3600.0),
        preferred=True,
        confirmed=False,
        now=NOW,
        timing=TIMING,
    )
    assert action == Wait(0.5)
