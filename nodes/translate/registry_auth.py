"""``imagePullSecrets`` as SaladCloud registry authentication.

The kubelet picks credentials by matching the image's registry against the entries
of the pod's pull Secrets (``.dockerconfigjson`` or ``.dockercfg``); SaladCloud takes
one set, typed by registry. So: find the most specific entry for the image's
registry (the longest matching path; an exact host before a ``*.`` wildcard; then the
earlier Secret), and type it by host:

* Docker Hub (``docker.io``, ``index.docker.io``, ...) -> ``docker_hub``, the password
  being the personal access token;
* Amazon ECR (``<account>.dkr.ecr.<region>.amazonaws.com``) -> ``aws_ecr`` with the
  username as access key id and the password as secret access key, unless the
  username is ``AWS``: that is a 12-hour ECR login token, sent as ``basic``;
* Google GCR (``gcr.io``, ``*.gcr.io``) and Artifact Registry (``*-docker.pkg.dev``)
  with username ``_json_key`` (or ``_json_key_base64``) -> ``gcp_gcr``/``gcp_gar`` with
  the service-account key;
* anything else -> ``basic``.

No matching entry means no authentication, as with the kubelet. A missing pull
Secret is not an error either (the kubelet pulls without it); a Secret whose data
cannot be read is.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nodes.saladcloud.models import (
    RegistryAuthentication,
    RegistryAwsEcr,
    RegistryBasic,
    RegistryDockerHub,
    RegistryGcp,
)
from nodes.translate.pod_json import obj, text
from nodes.translate.refusal import INVALID_IMAGE_PULL_SECRET, Problems
from nodes.translate.spec_bounds import REGISTRY_VALUE_MAX, check_text

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOSTS = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
DOCKER_CONFIG_JSON = ".dockerconfigjson"
DOCKER_CFG = ".dockercfg"
_ECR = re.compile(r"^\d+\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_GCR = re.compile(r"^([a-z0-9-]+\.)?gcr\.io$")
_GAR = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev$")
_GCP_KEY_USERS = ("_json_key", "_json_key_base64")
_ECR_LOGIN_USER = "AWS"


@dataclass(frozen=True)
class Location:
    """A registry host (lowercase, with its port) and a repository path under it."""

    host: str
    path: tuple[str, ...]


def image_location(image: str) -> Location:
    """Where ``image`` is pulled from, by Docker's reference rules."""
    name = image.strip().split("@", 1)[0]
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host, repository = first.lower(), rest
    else:
        host, repository = DOCKER_HUB, name
    head, _, last = repository.rpartition("/")
    last = last.split(":", 1)[0]
    repository = f"{head}/{last}" if head else last
    if host in DOCKER_HUB_HOSTS:
        host = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    return Location(host, tuple(part for part in repository.split("/") if part))


def _key_location(key: str) -> Location | None:
    """A docker-config key (``https://index.docker.io/v1/``, ``host:5000/team``...)."""
    rest = key.strip()
    for scheme in ("https://", "http://"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme) :]
            break
    host, _, path = rest.partition("/")
    host = host.lower()
    if not host:
        return None
    parts = tuple(part for part in path.split("/") if part)
    if parts in (("v1",), ("v2",)):
        parts = ()  # the registry API version, not a repository
    if host in DOCKER_HUB_HOSTS:
        host = DOCKER_HUB
    return Location(host, parts)


def _matches(key: Location, image: Location) -> bool:
    key_host, _, key_port = key.host.partition(":")
    image_host, _, image_port = image.host.partition(":")
    key_labels, image_labels = key_host.split("."), image_host.split(".")
    return (
        key_port == image_port
        and len(key_labels) == len(image_labels)
        and all(fnmatch.fnmatchcase(i, k) for i, k in zip(image_labels, key_labels, strict=True))
        and image.path[: len(key.path)] == key.path
    )


def _entries(data: Mapping[str, str]) -> Mapping[str, Any] | None:
    """The registry entries of a pull Secret; ``{}`` when it holds no docker config,
    ``None`` when it holds one that cannot be read."""
    try:
        if DOCKER_CONFIG_JSON in data:
            return obj(obj(json.loads(data[DOCKER_CONFIG_JSON])).get("auths"))
        if DOCKER_CFG in data:
            return obj(json.loads(data[DOCKER_CFG]))
    except ValueError:
        return None
    return {}


def _credentials(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(username, password); ``("", "")`` when the entry has none SaladCloud can use
    (an identity token, say); ``None`` when its ``auth`` cannot be decoded."""
    auth = text(entry.get("auth"))
    if not auth:
        return text(entry.get("username")), text(entry.get("password"))
    try:
        decoded = base64.b64decode(auth, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


@dataclass(frozen=True)
class _Candidate:
    rank: tuple[int, int, int]
    host: str
    username: str
    password: str = dataclasses.field(repr=False)
    origin: str = ""


def registry_authentication(
    image: str,
    pull_secrets: Sequence[Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
    problems: Problems,
) -> RegistryAuthentication | None:
    """Credentials for ``image`` from the pod's ``imagePullSecrets``, typed for SaladCloud."""
    target = image_location(image)
    best: _Candidate | None = None
    for index, reference in enumerate(pull_secrets):
        field = f"spec.imagePullSecrets[{index}]"
        name = text(reference.get("name"))
        data = secrets.get(name)
        if data is None:
            continue
        entries = _entries(data)
        if entries is None:
            problems.add(
                INVALID_IMAGE_PULL_SECRET,
                field,
                f'secret "{name}" does not hold a readable {DOCKER_CONFIG_JSON} or {DOCKER_CFG}',
            )
            continue
        for key, entry in entries.items():
            location = _key_location(key)
            if location is None or not _matches(location, target):
                continue
            credentials = _credentials(obj(entry))
            if credentials is None:
                problems.add(
                    INVALID_IMAGE_PULL_SECRET,
                    field,
                    f'secret "{name}": the auth of registry {key!r} is not base64 of user:password',
                )
                continue
            username, password = credentials
            if not username or not password:
                continue
            rank = (len(location.path), 0 if "*" in location.host else 1, -index)
            if best is None or rank > best.rank:
                best = _Candidate(rank, target.host, username, password, origin=field)
    return None if best is None else _typed(best, problems)


def _typed(found: _Candidate, problems: Problems) -> RegistryAuthentication | None:
    host, username, password = found.host, found.username, found.password
    host_name = host.partition(":")[0]
    if username in _GCP_KEY_USERS and (_GCR.fullmatch(host_name) or _GAR.fullmatch(host_name)):
        return _google(found, problems, artifact_registry=bool(_GAR.fullmatch(host_name)))
    if not (
        _fits(username, found.origin, "the username", problems)
        and _fits(password, found.origin, "the password", problems)
    ):
        return None
    if host == DOCKER_HUB:
        return RegistryAuthentication(
            docker_hub=RegistryDockerHub(username=username, personal_access_token=password)
        )
    if _ECR.fullmatch(host_name) and username != _ECR_LOGIN_USER:
        return RegistryAuthentication(
            aws_ecr=RegistryAwsEcr(access_key_id=username, secret_access_key=password)
        )
    return RegistryAuthentication(basic=RegistryBasic(username=username, password=password))


def _google(
    found: _Candidate, problems: Problems, *, artifact_registry: bool
) -> RegistryAuthentication | None:
    key = found.password
    if found.username == "_json_key_base64":
        try:
            key = base64.b64decode(key, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            problems.add(
                INVALID_IMAGE_PULL_SECRET,
                found.origin,
                f"the _json_key_base64 password for {found.host} is not base64",
            )
            return None
    if not _fits(key, found.origin, "the service-account key", problems, single_line=False):
        return None
    gcp = RegistryGcp(service_key=key)
    if artifact_registry:
        return RegistryAuthentication(gcp_gar=gcp)
    return RegistryAuthentication(gcp_gcr=gcp)


def _fits(
    value: str, field: str, what: str, problems: Problems, *, single_line: bool = True
) -> bool:
    if not single_line:
        if len(value) <= REGISTRY_VALUE_MAX:
            return True
        problems.add(
            INVALID_IMAGE_PULL_SECRET,
            field,
            f"{what} is {len(value)} characters long; SaladCloud accepts at most "
            f"{REGISTRY_VALUE_MAX}",
        )
        return False
    return check_text(
        value,
        field=field,
        what=what,
        reason=INVALID_IMAGE_PULL_SECRET,
        problems=problems,
        maximum=REGISTRY_VALUE_MAX,
    )
