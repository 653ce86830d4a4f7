import re

import pytest

from config import SALAD_NAME_PATTERN
from nodes.translate import container_group_name, display_name, uid_suffix
from tests.translate.pods import UID, UID_DIGITS

NAME_PATTERN = re.compile(SALAD_NAME_PATTERN)
DISPLAY_PATTERN = re.compile(r"^[ ,\-.0-9A-Za-z]+$")
LONG_NAMESPACE = "team-" + "a" * 58
LONG_POD = "web-" + "b" * 249


@pytest.mark.parametrize(
    ("namespace", "name", "uid", "expected"),
    [
        pytest.param("default", "web", UID, f"default-web-{UID_DIGITS}", id="namespace-name-uid"),
        pytest.param(
            "default",
            "web.example.com",
            UID,
            f"default-web-example-com-{UID_DIGITS}",
            id="dots-become-dashes",
        ),
        pytest.param(
            "2024-prod", "web", UID, f"n2024-prod-web-{UID_DIGITS}", id="digit-first-gets-letter"
        ),
        pytest.param(
            "default", "Web_App", UID, f"default-web-app-{UID_DIGITS}", id="odd-characters"
        ),
        pytest.param("default", "a..b", UID, f"default-a-b-{UID_DIGITS}", id="dash-runs-collapse"),
        pytest.param(
            "default",
            "web",
            "0A1B2C3D-0000-0000-0000-000000000000",
            f"default-web-{UID_DIGITS}",
            id="uid-lowercased",
        ),
        pytest.param(
            "default", "web", "0a1b2c3d4e5f", f"default-web-{UID_DIGITS}", id="uid-without-dashes"
        ),
        pytest.param(
            "kube-system",
            "coredns-5d78c9869d-abcde",
            "12345678-9abc-def0-1234-56789abcdef0",
            "kube-system-coredns-5d78c9869d-abcde-12345678",
            id="deployment-pod",
        ),
    ],
)
def test_container_group_name_is_readable_and_ends_in_the_uid(
    namespace: str, name: str, uid: str, expected: str
) -> None:
    assert container_group_name(namespace, name, uid) == expected


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        pytest.param(LONG_NAMESPACE, "web", id="long-namespace"),
        pytest.param("default", LONG_POD, id="long-pod-name"),
        pytest.param(LONG_NAMESPACE, LONG_POD, id="both-long"),
        pytest.param("9" * 63, "7" * 253, id="all-digits"),
        pytest.param("default", "x." * 120 + "y", id="many-dots"),
        pytest.param("default", "web-" + "-" * 60 + "x", id="dash-at-cut"),
        pytest.param("a", "b", id="shortest"),
        pytest.param("", "web", id="no-namespace"),
        pytest.param("", "", id="nothing-readable"),
    ],
)
def test_container_group_name_always_fits_the_api_pattern(namespace: str, name: str) -> None:
    group = container_group_name(namespace, name, UID)

    assert NAME_PATTERN.fullmatch(group), group
    assert 2 <= len(group) <= 63
    assert group.endswith(f"-{UID_DIGITS}")
    assert "--" not in group


def test_a_long_name_keeps_the_beginning_of_both_namespace_and_pod_name() -> None:
    group = container_group_name(LONG_NAMESPACE, LONG_POD, UID)

    assert len(group) == 63
    assert group.startswith("team-aaaa")
    assert "-web-bbbb" in group


def test_the_same_pod_recreated_with_a_new_uid_gets_a_new_name() -> None:
    first = container_group_name("default", "db-0", "11111111-0000-0000-0000-000000000000")
    second = container_group_name("default", "db-0", "22222222-0000-0000-0000-000000000000")

    assert first != second


def test_the_same_pod_incarnation_always_gets_the_same_name() -> None:
    assert container_group_name("default", "web", UID) == container_group_name(
        "default", "web", UID
    )


@pytest.mark.parametrize(
    "uid",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-uuid", id="not-hex"),
        pytest.param("0a1b2c", id="short"),
    ],
)
def test_a_uid_without_eight_hex_digits_is_rejected(uid: str) -> None:
    with pytest.raises(ValueError, match="hex digits"):
        container_group_name("default", "web", uid)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        pytest.param(f"default-web-{UID_DIGITS}", UID_DIGITS, id="ours"),
        pytest.param(
            container_group_name(LONG_NAMESPACE, LONG_POD, UID), UID_DIGITS, id="ours-shortened"
        ),
        pytest.param("my-app", None, id="no-suffix"),
        pytest.param("my-app-0a1b2c3g", None, id="not-hex"),
        pytest.param("my-app-0A1B2C3D", None, id="uppercase"),
        pytest.param("0a1b2c3d", None, id="only-digits"),
        pytest.param("a" * 55 + "-0a1b2c3d", None, id="too-long"),
    ],
)
def test_uid_suffix_recognises_the_shape_of_our_names(group: str, expected: str | None) -> None:
    assert uid_suffix(group) == expected


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        pytest.param(
            "default",
            "web-7d9f8c6b5d-x2x7k",
            "default web-7d9f8c6b5d-x2x7k",
            id="namespace-space-name",
        ),
        pytest.param("prod", "api.v2", "prod api.v2", id="dots-kept"),
    ],
)
def test_display_name_shows_namespace_and_pod_name(
    namespace: str, name: str, expected: str
) -> None:
    assert display_name(namespace, name) == expected


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        pytest.param(LONG_NAMESPACE, LONG_POD, id="long"),
        pytest.param("default", "we/b_x", id="odd-characters"),
        pytest.param("", "", id="empty"),
    ],
)
def test_display_name_always_fits_the_api_pattern(namespace: str, name: str) -> None:
    shown = display_name(namespace, name)

    assert DISPLAY_PATTERN.fullmatch(shown), shown
    assert 2 <= len(shown) <= 63
