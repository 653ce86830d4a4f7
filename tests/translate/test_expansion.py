"""``$(VAR)`` expansion, with cases from the kubelet's own ``expand_test.go``."""

from fractions import Fraction

import pytest

from nodes.translate.expansion import expand, mapping_for
from nodes.translate.quantity import parse_quantity

VARIABLES = {
    "VAR_A": "A",
    "VAR_B": "B",
    "VAR_C": "C",
    "VAR_REF": "$(VAR_A)",
    "VAR_EMPTY": "",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("$(VAR_A)", "A", id="whole"),
        pytest.param("___$(VAR_B)___", "___B___", id="inside"),
        pytest.param("$(VAR_A)-$(VAR_B)-$(VAR_C)", "A-B-C", id="several"),
        pytest.param("$(VAR_REF)", "$(VAR_A)", id="values-are-not-expanded-again"),
        pytest.param("$(VAR_EMPTY)", "", id="empty-value"),
        pytest.param("$(VAR_DNE)", "$(VAR_DNE)", id="undefined-kept"),
        pytest.param("$$(VAR_A)", "$(VAR_A)", id="escaped"),
        pytest.param("$$$(VAR_A)", "$A", id="escape-then-reference"),
        pytest.param("$$$$(VAR_A)", "$$(VAR_A)", id="two-escapes"),
        pytest.param("$$", "$", id="lone-escape"),
        pytest.param("$", "$", id="trailing-operator"),
        pytest.param("foo$", "foo$", id="operator-at-end"),
        pytest.param("f$oo", "f$oo", id="operator-not-followed-by-paren"),
        pytest.param("$(VAR_A", "$(VAR_A", id="unclosed"),
        pytest.param("$(VAR_A))", "A)", id="extra-closer"),
        pytest.param("$()", "$()", id="empty-name"),
        pytest.param("$$(VAR_A)$$", "$(VAR_A)$", id="escapes-around"),
        pytest.param("no variables", "no variables", id="plain"),
    ],
)
def test_expand_follows_the_kubelet(text: str, expected: str) -> None:
    assert expand(text, mapping_for(VARIABLES)) == expected


def test_earlier_contexts_win() -> None:
    assert expand("$(X)", mapping_for({"X": "first"}, {"X": "second"})) == "first"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("500m", Fraction(1, 2), id="millicores"),
        pytest.param("2", Fraction(2), id="cores"),
        pytest.param("1.5", Fraction(3, 2), id="decimal"),
        pytest.param("1Gi", Fraction(2**30), id="binary-suffix"),
        pytest.param("1G", Fraction(10**9), id="decimal-suffix"),
        pytest.param("128974848", Fraction(128974848), id="bytes"),
        pytest.param("1e3", Fraction(1000), id="exponent"),
        pytest.param("25E-1", Fraction(5, 2), id="negative-exponent"),
        pytest.param("2E", Fraction(2 * 10**18), id="exa"),
        pytest.param("2Ei", Fraction(2**61), id="exbi"),
        pytest.param("1.5Mi", Fraction(3 * 2**19), id="fractional-binary"),
        pytest.param(".5", Fraction(1, 2), id="leading-dot"),
        pytest.param(3, Fraction(3), id="json-integer"),
        pytest.param("1Gb", None, id="bad-suffix"),
        pytest.param("", None, id="empty"),
        pytest.param("lots", None, id="words"),
        pytest.param("1e400", None, id="absurd-exponent"),
        pytest.param(True, None, id="boolean"),
        pytest.param(None, None, id="null"),
    ],
)
def test_parse_quantity_reads_kubernetes_quantities_exactly(
    value: object, expected: Fraction | None
) -> None:
    assert parse_quantity(value) == expected
