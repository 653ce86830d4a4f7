"""Proxy settings from the environment, read once.

HTTP clients that "trust the environment" (aiohttp's ``trust_env``) look up the
proxy variables, and ``.netrc``, on every request, on a worker thread: at a
thousand nodes that was 6 % of the process's CPU. The variables are read here once,
when a pool is built, with the usual rules (``<scheme>_proxy`` in either case,
lowercase winning; ``no_proxy`` hosts and domains bypass), and the answer for each
origin is remembered.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


class EnvironmentProxies:
    """Which proxy, if any, a URL goes through, as the environment said at start-up."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._proxies: dict[str, str] = {}
        for name in sorted(environ, key=lambda n: n.islower()):
            if name.lower().endswith("_proxy") and environ[name]:
                self._proxies[name.lower().removesuffix("_proxy")] = environ[name]
        self._cache: dict[tuple[str, str, int | None], str | None] = {}

    def for_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        return self.for_origin(parts.scheme, parts.hostname or "", parts.port)

    def for_origin(self, scheme: str, host: str, port: int | None) -> str | None:
        key = (scheme, host, port)
        if key not in self._cache:
            proxy = self._proxies.get(scheme) or self._proxies.get("all")
            if proxy and self._bypassed(host):
                proxy = None
            self._cache[key] = proxy
        return self._cache[key]

    def _bypassed(self, host: str) -> bool:
        """``no_proxy``: ``*``, or hosts and domains (``example.com`` and
        ``.example.com`` both cover ``api.example.com``), ports ignored."""
        host = host.lower().rstrip(".")
        for entry in (self._proxies.get("no") or "").split(","):
            name = entry.strip().lower()
            if name == "*":
                return True
            name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
            name = name.lstrip(".").rstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
        return False
