"""Kubernetes resource quantities (``500m``, ``4Ti``, ``1e3``), parsed to check them.

The node reports the quantity as written; parsing is only for validation, so the
grammar follows ``k8s.io/apimachinery/pkg/api/resource`` and nothing is rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$"
)
_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
_MAX_EXPONENT = 30
"""Larger exponents are no real resource size, and exact arithmetic on them is slow."""
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity; ``ValueError`` names the accepted forms."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity (examples: 100, 500m, 4Gi, 100Ti, 1e3)"
        )
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix:
        exponent = int(suffix[1:])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(
                f"{text!r}: exponent {exponent} is out of range (at most {_MAX_EXPONENT})"
            )
        return number.scaleb(exponent)
    return number
