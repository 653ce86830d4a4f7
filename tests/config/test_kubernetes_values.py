"""Quantities and names follow Kubernetes' own grammar, so the API server accepts the Node."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config import parse_quantity
from config.kube_names import check_label_value, check_qualified_name, check_subdomain


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", Decimal(100)),
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1.", Decimal(1)),
        ("4Gi", Decimal(4 * 1024**3)),
        ("100Ti", Decimal(100 * 1024**4)),
        ("2Ei", Decimal(2 * 1024**6)),
        ("1k", Decimal(1000)),
        ("3M", Decimal(3_000_000)),
        ("1E", Decimal(10**18)),
        ("1e3", Decimal(1000)),
        ("1E-2", Decimal("0.01")),
        ("5n", Decimal("0.000000005")),
        ("+2", Decimal(2)),
        ("-1", Decimal(-1)),
    ],
)
def test_quantities_parse_to_their_exact_value(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "4TB", "4 Gi", "Gi", "1.2.3", "0x10", "1e", "1Ki2", "ten", "1KI", "--1"]
)
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize("name", ["a", "salad-team-a", "salad.team-a.example", "0node", "a" * 253])
def test_node_names_may_be_dns_subdomains(name: str) -> None:
    assert check_subdomain(name) == name


@pytest.mark.parametrize("name", ["", "Salad", "a_b", "-a", "a-", "a..b", "a" * 254])
def test_other_node_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"DNS-1123 subdomain|longer than 253"):
        check_subdomain(name)


@pytest.mark.parametrize(
    "name", ["cpu", "nvidia.com/gpu", "ephemeral-storage", "Team_Name.x", "a.b/C-d_e.f"]
)
def test_qualified_names_with_and_without_prefix(name: str) -> None:
    assert check_qualified_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "/gpu", "nvidia.com/", "Nvidia.com/gpu", "a/b/c", "-x", "x" * 64, "a b"]
)
def test_bad_qualified_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"name|prefix"):
        check_qualified_name(name)


@pytest.mark.parametrize("value", ["", "ml", "ML_1.x-y", "x" * 63])
def test_label_values(value: str) -> None:
    assert check_label_value(value) == value


@pytest.mark.parametrize("value", ["-ml", "ml-", "a b", "x" * 64, "a/b"])
def test_bad_label_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a valid label value"):
        check_label_value(value)
