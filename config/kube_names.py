"""Kubernetes' rules for names, labels, taints and resource names.

A value that breaks them would make the API server reject the Node object, and the
node would crash-loop on start-up; checking them here turns that into a config error
with a line number.
"""

from __future__ import annotations

import re

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ONLY = re.compile(rf"^{_DNS1123_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_PART = re.compile(rf"^{_NAME_PART}$")
_LABEL_VALUE = re.compile(rf"^({_NAME_PART})?$")

MAX_SUBDOMAIN_LENGTH = 253
MAX_NAME_PART_LENGTH = 63


def check_subdomain(value: str) -> str:
    """A DNS-1123 subdomain: what a Node (and its Lease) may be called."""
    if len(value) > MAX_SUBDOMAIN_LENGTH:
        raise ValueError(f"{value!r} is longer than {MAX_SUBDOMAIN_LENGTH} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 subdomain: lowercase letters, digits, '-' and '.',"
            " starting and ending with a letter or digit"
        )
    return value


def check_label(value: str) -> str:
    """A DNS-1123 label: what a namespace may be called."""
    if len(value) > MAX_NAME_PART_LENGTH:
        raise ValueError(f"{value!r} is longer than {MAX_NAME_PART_LENGTH} characters")
    if not _DNS1123_LABEL_ONLY.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (a namespace name): lowercase letters,"
            " digits and '-', starting and ending with a letter or digit"
        )
    return value


def check_qualified_name(value: str) -> str:
    """A label key, taint key or resource name: ``[prefix/]name``."""
    prefix, slash, name = value.rpartition("/")
    if slash and not prefix:
        raise ValueError(f"{value!r} has an empty prefix before '/'")
    if slash:
        try:
            check_subdomain(prefix)
        except ValueError as exc:
            raise ValueError(f"prefix of {value!r}: {exc}") from None
    if not name or len(name) > MAX_NAME_PART_LENGTH or not _QUALIFIED_NAME_PART.fullmatch(name):
        raise ValueError(
            f"{value!r} is not a qualified name: an optional DNS subdomain prefix and '/',"
            " then 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter"
            " or digit"
        )
    return value


def check_label_value(value: str) -> str:
    """A label or taint value: empty, or up to 63 name characters."""
    if len(value) > MAX_NAME_PART_LENGTH or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid label value: at most 63 letters, digits, '-', '_'"
            " or '.', starting and ending with a letter or digit"
        )
    return value
