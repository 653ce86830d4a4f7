"""Identities from certificates and headers, and the caches of review answers."""

from __future__ import annotations

import pytest

from supervisor.kubelet.auth import TtlCache, User, bearer_token, user_of_certificate


def test_a_certificate_names_the_user_by_common_name_and_groups_by_organization() -> None:
    peer = {
        "subject": (
            (("organizationName", "system:masters"),),
            (("organizationName", "team-a"),),
            (("commonName", "kube-apiserver-kubelet-client"),),
        )
    }

    assert user_of_certificate(peer) == User(
        "kube-apiserver-kubelet-client", groups=("system:masters", "team-a")
    )
    assert user_of_certificate({"subject": ((("organizationName", "x"),),)}) is None
    assert user_of_certificate(None) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc ", "abc"),
        ("Basic dXNlcg==", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_bearer_authorization_carries_a_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_an_access_review_names_the_user_groups_uid_and_extra() -> None:
    user = User("jane", uid="u-1", groups=("dev",), extra=(("scopes", ("a", "b")),))

    assert user.spec() == {
        "user": "jane",
        "groups": ["dev"],
        "uid": "u-1",
        "extra": {"scopes": ["a", "b"]},
    }
    assert User("bob").spec() == {"user": "bob", "groups": []}


def test_cached_answers_expire_and_the_cache_stays_bounded() -> None:
    now = [0.0]
    cache: TtlCache[bool] = TtlCache(size=2, clock=lambda: now[0])
    cache.put("a", True, ttl=10)
    cache.put("b", False, ttl=1)

    now[0] = 2.0
    assert cache.get("a") is True
    assert cache.get("b") is None, "expired"
    cache.put("c", True, ttl=10)
    cache.put("d", True, ttl=10)
    assert cache.get("a") is None, "the oldest went when the cache was full"
    assert cache.get("d") is True
