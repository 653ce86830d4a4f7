"""Names of container groups, derived from the pod they run.

SaladCloud never lets a container-group name be used twice, not even after the group
is deleted, and a StatefulSet recreates its pods under the same name. So the name
carries the pod's UID: ``<namespace>-<pod name>-<first 8 hex digits of the UID>``,
shortened to the API's 63 characters. Uniqueness comes from the UID, so the readable
part can be cut without a hash; a user who sees a group in the SaladCloud portal can
still tell which pod it belongs to.
"""

from __future__ import annotations

import re

MAX_LENGTH = 63
UID_DIGITS = 8

_SUFFIX_LENGTH = 1 + UID_DIGITS
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_OUR_NAME = re.compile(r"^[a-z][a-z0-9-]*-([0-9a-f]{8})$")
_NOT_DISPLAY = re.compile(r"[^ ,\-.0-9A-Za-z]+")

LEADING_LETTER = "n"
"""Put in front when the namespace (or pod name) starts with a digit: the API wants a
letter first. ``n`` as in namespace."""


def _label(value: str) -> str:
    """``value`` with everything the name pattern refuses (dots too) turned into dashes."""
    dashed = _NOT_LABEL.sub("-", value.lower())
    return _DASHES.sub("-", dashed).strip("-")


def _fit(first: str, second: str, room: int) -> tuple[str, str]:
    """Cut two parts to ``room`` characters together, each keeping its fair half.

    A short part keeps all of itself and leaves the rest to the other; two long parts
    get half each. The beginnings survive, which is where people look.
    """
    if len(first) + len(second) <= room:
        return first, second
    half = room // 2
    if len(first) <= half:
        return first, second[: room - len(first)]
    if len(second) <= room - half:
        return first[: room - len(second)], second
    return first[:half], second[: room - half]


def _uid_digits(uid: str) -> str:
    digits = uid.replace("-", "").lower()[:UID_DIGITS]
    if not _HEX8.fullmatch(digits):
        raise ValueError(f"pod UID {uid!r} does not start with {UID_DIGITS} hex digits")
    return digits


def container_group_name(namespace: str, name: str, uid: str) -> str:
    """The container-group name of one pod incarnation.

    Deterministic, matches ``^[a-z][a-z0-9-]{0,61}[a-z0-9]$``, and ends in ``-`` plus
    the first 8 hex digits of ``uid`` (which must be a UUID, as Kubernetes makes them).
    """
    suffix = "-" + _uid_digits(uid)
    ns, pod = _label(namespace), _label(name)
    leading = "" if (ns or pod or "a")[0].isalpha() else LEADING_LETTER
    room = MAX_LENGTH - len(suffix) - len(leading)
    if ns and pod:
        ns, pod = _fit(ns, pod, room - 1)
        readable = f"{ns.rstrip('-')}-{pod.rstrip('-')}"
    else:
        readable = (ns or pod)[:room].rstrip("-") or "pod"
    return f"{leading}{readable}{suffix}"


def uid_suffix(group_name: str) -> str | None:
    """The 8 UID digits at the end of ``group_name``, if it has the shape of our names.

    Any name of the form ``<letters...>-<8 hex digits>`` answers; the reconciler still
    compares the digits with its pods' UIDs before calling a group its own.
    """
    if len(group_name) > MAX_LENGTH:
        return None
    found = _OUR_NAME.fullmatch(group_name)
    return found.group(1) if found else None


def display_name(namespace: str, name: str) -> str:
    """``<namespace> <name>`` as SaladCloud's display name allows it.

    The pattern ``^[ ,-.0-9A-Za-z]+$`` has no ``/``, so a space separates the two
    (neither a namespace nor a pod name can contain one). 2 to 63 characters.
    """
    ns = _NOT_DISPLAY.sub("-", namespace).strip()
    pod = _NOT_DISPLAY.sub("-", name).strip()
    ns, pod = _fit(ns, pod, MAX_LENGTH - 1)
    shown = f"{ns} {pod}".strip()
    return shown if len(shown) >= 2 else f"pod {shown}".strip()
