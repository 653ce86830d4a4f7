"""Where the process's Kubernetes client is configured from, checked before it is built.

The order is kubectl's, with the process's own flag first: ``--kubeconfig`` (or
``SALAD_VK_KUBECONFIG``), else ``KUBECONFIG`` (a list of files separated by ``:``,
merged as kubectl merges them: the first file to set a value wins, files that do not
exist are skipped), else ``~/.kube/config``, else the pod's service account.

Every way this can go wrong is a ``CliError`` of one line naming the file, what is
wrong and what to do: the client library's own messages ("Invalid kube-config file.
Expected key current-context", "Service host/port is not set.") say neither which
file nor what to do. Merging and checking are pure functions over parsed documents.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.config import ConfigException, load_incluster_config
from kubernetes_asyncio.config.kube_config import load_kube_config_from_dict

from .errors import CliError
from .kube_environment import resolve_proxy_once, without_environment

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_SECTIONS = (("clusters", "cluster"), ("contexts", "context"), ("users", "user"))
_FILE_FIELDS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}
"""Paths a kubeconfig may hold; relative ones are relative to the file that holds them."""


@dataclass(frozen=True)
class KubeSource:
    """A checked source of cluster configuration."""

    description: str
    """For log lines and messages: which files (or the service account) and context."""
    kubeconfig: dict[str, Any] | None
    """The merged kubeconfig; None means the pod's service account."""


@dataclass(frozen=True)
class MergedKubeconfig:
    config: dict[str, Any]
    origin: dict[tuple[str, str], Path]
    """(section, name) -> the file whose entry won, for messages."""
    where: str
    """The files, as a message names them."""


def resolve_kube_source(
    flag: Path | None,
    environ: Mapping[str, str],
    *,
    flag_origin: str = "--kubeconfig",
    home: Path | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> KubeSource:
    """The first configured source in kubectl's order, checked; ``CliError`` if none is
    usable."""
    if flag is not None:
        path = flag.expanduser()
        if not path.is_file():
            state = "is a directory" if path.is_dir() else "does not exist"
            raise CliError(
                f"kubeconfig {path} (from {flag_origin}) {state}: pass the path of a kubeconfig"
                f" file, or leave {flag_origin} out to use KUBECONFIG, ~/.kube/config or the"
                " in-cluster service account"
            )
        return _from_files([path], f"kubeconfig {path} (from {flag_origin})")
    listed = [Path(p).expanduser() for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        found = [p for p in listed if p.is_file()]
        if not found:
            raise CliError(
                f"KUBECONFIG names no kubeconfig file that exists"
                f" ({os.pathsep.join(map(str, listed))}): point it at your kubeconfig, or"
                " unset it to use ~/.kube/config or the in-cluster service account"
            )
        return _from_files(found, f"kubeconfig {os.pathsep.join(map(str, found))} (KUBECONFIG)")
    default = (home if home is not None else _home(environ)) / ".kube" / "config"
    if default.is_file():
        return _from_files([default], f"kubeconfig {default}")
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(environ, service_account_dir)
    raise CliError(
        "no Kubernetes cluster to connect to: --kubeconfig is not given, KUBECONFIG is not"
        f" set, {default} does not exist, and this is not a pod (KUBERNETES_SERVICE_HOST is"
        " not set): pass --kubeconfig FILE"
    )


def _home(environ: Mapping[str, str]) -> Path:
    return Path(environ["HOME"]) if environ.get("HOME") else Path.home()


def _in_cluster(environ: Mapping[str, str], directory: Path) -> KubeSource:
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT")
    if not port:
        raise CliError(
            "KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not: the pod's"
            " environment is incomplete; pass --kubeconfig FILE"
        )
    for name in ("token", "ca.crt"):
        path = directory / name
        if not path.is_file() or path.stat().st_size == 0:
            state = "is empty" if path.is_file() else "does not exist"
            raise CliError(
                f"in-cluster service account: {path} {state}: mount the service account"
                " token (automountServiceAccountToken: true), or pass --kubeconfig FILE"
            )
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return KubeSource(f"in-cluster service account ({server})", None)


def _from_files(files: Sequence[Path], where: str) -> KubeSource:
    documents = [(path, read_kubeconfig(path)) for path in files]
    merged = merge_kubeconfigs(documents, where)
    context = check_kubeconfig(merged)
    return KubeSource(f"{where}, context {context}", merged.config)


def read_kubeconfig(path: Path) -> Mapping[str, Any]:
    """One kubeconfig file parsed; an empty file is an empty config, as for kubectl."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise CliError(f"kubeconfig {path} cannot be read: {reason}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise CliError(
            f"kubeconfig {path} is not valid YAML{line}: fix it, or point --kubeconfig at"
            " another file"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise CliError(
            f"kubeconfig {path} is not a kubeconfig (a YAML mapping of clusters, contexts and"
            " users): point --kubeconfig at one"
        )
    return document


def merge_kubeconfigs(
    documents: Sequence[tuple[Path, Mapping[str, Any]]], where: str = ""
) -> MergedKubeconfig:
    """kubectl's merge: the first file to set ``current-context`` or to define a cluster,
    context or user of a given name wins. Relative paths are made absolute against
    the file that holds them."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "",
        "clusters": [],
        "contexts": [],
        "users": [],
    }
    origin: dict[tuple[str, str], Path] = {}
    for path, document in documents:
        current = document.get("current-context")
        if not config["current-context"] and isinstance(current, str) and current:
            config["current-context"] = current
            origin[("current-context", current)] = path
        for section, inner in _SECTIONS:
            entries = document.get(section) or []
            if not isinstance(entries, list):
                raise CliError(f"kubeconfig {path}: {section} is not a list")
            for index, entry in enumerate(entries):
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or not name:
                    raise CliError(f"kubeconfig {path}: {section}[{index}] has no name")
                if (section, name) in origin:
                    continue
                origin[(section, name)] = path
                body = entry.get(inner) or {}
                if not isinstance(body, dict):
                    raise CliError(
                        f"kubeconfig {path}: {section}[{index}] ({name}): {inner} is not a "
                        "mapping of settings"
                    )
                body = dict(body)
                for field in _FILE_FIELDS.get(section, ()):
                    value = body.get(field)
                    if isinstance(value, str) and value and not Path(value).is_absolute():
                        body[field] = str(path.parent.absolute() / value)
                config[section].append({"name": name, inner: body})
    return MergedKubeconfig(
        config, origin, where or f"kubeconfig {os.pathsep.join(str(p) for p, _ in documents)}"
    )


def check_kubeconfig(merged: MergedKubeconfig) -> str:
    """The current context's name, once everything it needs is there; else ``CliError``."""
    config, where = merged.config, merged.where
    names = {section: [e["name"] for e in config[section]] for section, _ in _SECTIONS}
    context_name = config["current-context"]
    if not context_name:
        choices = f" (contexts: {', '.join(names['contexts'])})" if names["contexts"] else ""
        raise CliError(
            f"{where} sets no current-context{choices}: choose one with"
            " `kubectl config use-context NAME`, or point --kubeconfig at another file"
        )
    context = _entry(config, "contexts", context_name)
    if context is None:
        raise CliError(
            f"{where}: current-context {context_name!r} is not one of its contexts"
            f" ({', '.join(names['contexts']) or 'none'}): choose one with"
            " `kubectl config use-context NAME`"
        )
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if not cluster_name:
        raise CliError(f"{where}: context {context_name!r} names no cluster: add one")
    cluster = _entry(config, "clusters", cluster_name)
    if cluster is None:
        raise CliError(
            f"{where}: context {context_name!r} uses cluster {cluster_name!r}, which is not"
            " defined: add it, or fix the context"
        )
    if not isinstance(cluster.get("server"), str) or not cluster.get("server"):
        raise CliError(
            f"{_origin(merged, 'clusters', cluster_name)}: cluster {cluster_name!r} has no"
            " server URL: add `server: https://HOST:PORT`"
        )
    _check_files(merged, "clusters", cluster_name, cluster)
    if user_name:
        user = _entry(config, "users", user_name)
        if user is None:
            raise CliError(
                f"{where}: context {context_name!r} uses user {user_name!r}, which is not"
                " defined: add it, or fix the context"
            )
        _check_files(merged, "users", user_name, user)
    return str(context_name)


def _entry(config: Mapping[str, Any], section: str, name: str) -> dict[str, Any] | None:
    inner = dict(_SECTIONS)[section]
    for entry in config[section]:
        if entry["name"] == name:
            return dict(entry[inner])
    return None


def _origin(merged: MergedKubeconfig, section: str, name: str) -> str:
    path = merged.origin.get((section, name))
    return f"kubeconfig {path}" if path is not None else merged.where


def _check_files(
    merged: MergedKubeconfig, section: str, name: str, body: Mapping[str, Any]
) -> None:
    for field in _FILE_FIELDS[section]:
        value = body.get(field)
        if isinstance(value, str) and value and not Path(value).is_file():
            fix = "fix the path" if field == "tokenFile" else f"fix the path or use {field}-data"
            raise CliError(
                f"{_origin(merged, section, name)}: {section.removesuffix('s')} {name!r}:"
                f" {field} {value} does not exist: {fix}"
            )


async def api_client(
    source: KubeSource, max_connections: int = 0, environ: Mapping[str, str] = os.environ
) -> ApiClient:
    """The one Kubernetes client of the process, from a checked source. Proxy settings
    are read from ``environ`` here, once: aiohttp would read the environment (and
    ``.netrc``) again on every request, a cost that grows with the number of nodes."""
    configuration = Configuration()
    try:
        if source.kubeconfig is None:
            load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            await load_kube_config_from_dict(source.kubeconfig, client_configuration=configuration)
    except (ConfigException, OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
        # What the checks above could not foresee: an exec plugin that fails, bad
        # base64 in certificate-authority-data, a server that is not a string, ...
        raise CliError(f"{source.description}: {exc or type(exc).__name__}") from None
    # 0 lets aiohttp open as many as the nodes ask for; each node bounds itself.
    configuration.connection_pool_maxsize = max_connections
    resolve_proxy_once(configuration, environ)
    try:
        return without_environment(ApiClient(configuration=configuration))
    except (ssl.SSLError, OSError, ValueError) as exc:
        # A certificate-authority (or client certificate) file that is not one.
        raise CliError(
            f"{source.description}: its certificates cannot be loaded ({exc}): "
            "fix certificate-authority, client-certificate and client-key"
        ) from None
