"""Who is asking, and may they: the kubelet's webhook authentication and authorization.

* A client certificate the TLS layer verified against the cluster's client CA names
  the user (common name) and their groups (organizations), as the API server reads
  one. That is how the API server itself calls, with its kubelet client certificate.
* A bearer token is asked about with a TokenReview.
* The decision is a SubjectAccessReview with the kubelet's attributes (``routes``).

Answers are cached as the kubelet caches them: a token's review for 2 minutes (a
refused one for 10 seconds), an allowed decision for 5 minutes, a denied one for 30
seconds; so a burst of requests costs the API server one review. The cache is keyed
by a digest of the token, never the token.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nodes.kube import KubeClient, KubeError

from .routes import Attributes

log = logging.getLogger(__name__)

TOKEN_TTL = 120.0
TOKEN_REFUSED_TTL = 10.0
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
_CACHE_SIZE = 10_000

_Value = TypeVar("_Value")


class TtlCache(Generic[_Value]):
    """A bounded cache whose entries expire (least recently stored go first when full)."""

    def __init__(self, size: int = _CACHE_SIZE, clock: Callable[[], float] = time.monotonic):
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[Any, tuple[float, _Value]] = OrderedDict()

    def get(self, key: Any) -> _Value | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[key]
            return None
        return found[1]

    def put(self, key: Any, value: _Value, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def spec(self) -> dict[str, Any]:
        """The user part of a SubjectAccessReview's spec."""
        spec: dict[str, Any] = {"user": self.name, "groups": list(self.groups)}
        if self.uid:
            spec["uid"] = self.uid
        if self.extra:
            spec["extra"] = {key: list(values) for key, values in self.extra}
        return spec


class AuthError(Exception):
    """The API server could not be asked; the request gets no decision."""


def user_of_certificate(peer: Mapping[str, Any] | None) -> User | None:
    """The user a verified client certificate names (``getpeercert()``'s dict)."""
    if not peer:
        return None
    common_names: list[str] = []
    organizations: list[str] = []
    for rdn in peer.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                common_names.append(str(value))
            elif key == "organizationName":
                organizations.append(str(value))
    if not common_names or not common_names[0]:
        return None
    return User(common_names[0], groups=tuple(organizations))


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _user_of_review(status: Mapping[str, Any]) -> User | None:
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    name = str(user.get("username") or "")
    if not name:
        return None
    extra = tuple(
        sorted(
            (str(k), tuple(str(v) for v in values or ()))
            for k, values in (user.get("extra") or {}).items()
        )
    )
    return User(
        name,
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra=extra,
    )


class Reviewer:
    """TokenReviews and SubjectAccessReviews, cached."""

    def __init__(self, kube: KubeClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._kube = kube
        # A 1-tuple, so that "refused" (None) is a value the cache can hold.
        self._tokens: TtlCache[tuple[User | None]] = TtlCache(clock=clock)
        self._decisions: TtlCache[bool] = TtlCache(clock=clock)
        self.reviews = 0
        """Reviews sent to the API server (the rest came from the caches)."""

    async def user_of_token(self, token: str) -> User | None:
        """The token's user, None if the API server does not know the token."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._tokens.get(digest)
        if cached is not None:
            return cached[0]
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        self.reviews += 1
        try:
            answer = await self._kube.post("/apis/authentication.k8s.io/v1/tokenreviews", review)
        except KubeError as error:
            raise AuthError(f"TokenReview failed: {error}") from None
        user = _user_of_review(answer.get("status") or {})
        self._tokens.put(digest, (user,), TOKEN_TTL if user else TOKEN_REFUSED_TTL)
        return user

    async def allowed(self, user: User, attributes: Attributes) -> bool:
        key = (user, attributes)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {**user.spec(), "resourceAttributes": attributes.resource_attributes()},
        }
        self.reviews += 1
        try:
            answer = await self._kube.post(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
            )
        except KubeError as error:
            raise AuthError(f"SubjectAccessReview failed: {error}") from None
        allowed = bool((answer.get("status") or {}).get("allowed"))
        self._decisions.put(key, allowed, ALLOWED_TTL if allowed else DENIED_TTL)
        return allowed
