"""Names become escaped path segments: a name can never address another object."""

from __future__ import annotations

import pytest

from nodes.kube import api_path

TEMPLATE = "/api/v1/namespaces/{namespace}/secrets/{name}"


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("regcred", "regcred"),
        ("../../team-a/secrets/x", "..%2F..%2Fteam-a%2Fsecrets%2Fx"),
        ("..%2Fteam-a", "..%252Fteam-a"),
        ("x?watch=true", "x%3Fwatch%3Dtrue"),
        ("a#b", "a%23b"),
    ],
)
def test_each_name_is_one_segment(name: str, segment: str) -> None:
    assert api_path(TEMPLATE, namespace="team-b", name=name) == (
        f"/api/v1/namespaces/team-b/secrets/{segment}"
    )


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_dot_segments_are_refused_since_no_escape_survives_normalisation(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be an object name"):
        api_path(TEMPLATE, namespace="team-b", name=name)
