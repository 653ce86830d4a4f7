"""API paths built from names, one escaped segment per name.

A name that reaches a path unescaped is a path: ``../../team-a/secrets/regcred`` would
make a GET in one namespace read another's Secret, because the HTTP client resolves
dot segments before sending. Names are checked where they enter (a pod's references
are refused unless they are object names); escaping every segment here as well means
that a check missed somewhere still cannot turn into a read elsewhere.
"""

from __future__ import annotations

from urllib.parse import quote


def segment(name: str) -> str:
    """``name`` as one path segment; ``.``, ``..`` and empty are refused outright, since
    no escaping survives URL normalisation for them (``%2E%2E`` is read as ``..``)."""
    if name in ("", ".", ".."):
        raise ValueError(f"{name!r} cannot be an object name in an API path")
    return quote(name, safe="")


def api_path(template: str, **names: str) -> str:
    """``template`` with each ``{name}`` replaced by its escaped segment, e.g.
    ``api_path("/api/v1/namespaces/{namespace}/pods/{name}", namespace=ns, name=n)``."""
    return template.format(**{key: segment(value) for key, value in names.items()})
