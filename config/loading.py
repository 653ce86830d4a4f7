"""Reading a projects file from disk: parse, validate, read the keys, resolve.

Files are read through symlinks, because in production the config file and the key
files are a mounted ConfigMap and Secret: the kubelet writes a new ``..YYYY_...``
directory and swaps the ``..data`` symlink to it. ``content_hash`` hashes what a path
points at now, which is what a reload watcher must compare.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from .errors import (
    ConfigError,
    ConfigProblem,
    KeyPath,
    Severity,
    format_key_path,
    plain_message,
    sorted_problems,
)
from .node import MIN_MASKED_SECRET, ApiKeySource, NodeKey
from .projects import ProjectsConfig
from .resolve import resolve_node
from .schema import FILE_KEYS, NodeEntry, ProjectsFile, key_source_problem
from .yaml_source import YamlDocument, YamlProblems, parse_yaml

MAX_KEY_BYTES = 4096
"""More than any API key; a bigger file is the wrong file, and is not read whole."""

CHART_KEYS_DIR = Path("/etc/salad-vk/keys")
"""Where the Helm chart mounts each key Secret, as ``<Secret name>/<key>`` (see
``charts/salad-vk/templates/_helpers.tpl``): lets a message name the Secret to create."""

_NO_SUCH_FILE = "no such file"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_API_KEY_SPELLINGS = {"apikey", "saladapikey", "key", "token"}


def content_hash(path: Path) -> str:
    """Hash of the bytes ``path`` points at now (through symlinks).

    Never raises: a file that cannot be read hashes to a marker naming the reason,
    so its disappearance counts as a change and the reload that follows says why.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _unreadable(exc)
    return _hash(data)


def _unreadable(error: OSError) -> str:
    return f"unreadable:{type(error).__name__}"


def _hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_projects(
    path: Path, environ: Mapping[str, str], *, allow_missing_keys: bool = False
) -> ProjectsConfig:
    """Load and check the projects file at ``path``; keys named by ``apiKeyEnv`` come
    from ``environ``.

    Raises ``ConfigError`` listing every problem found. Relative ``apiKeyFile`` paths
    are relative to the directory of ``path``.

    A key that is not there (its file does not exist or is empty, its variable is unset
    or empty) is an error, unless ``allow_missing_keys``: then it is a warning, and the
    node is loaded without a key (``NodeConfig.api_key_missing`` says why). That is how
    the process runs: one missing Secret must not stop every node.
    """
    file = str(path)
    raw = _read_config(path, file)
    document = _parse(raw, file)
    problems = _Problems(file, document)

    projects: ProjectsFile | None = None
    try:
        projects = ProjectsFile.model_validate(document.data)
    except ValidationError as exc:
        problems.add_validation_error(exc)
    # Checks that need valid nodes still run on the nodes that are valid on their
    # own, so one pass reports as much as it can.
    if projects is not None:
        entries = list(enumerate(projects.nodes))
    else:
        entries = _valid_entries(document, problems)
    _check_unique(entries, problems)
    keys = _KeyReader(path.parent, environ, problems, allow_missing=allow_missing_keys)
    read_keys = {}
    for index, entry in entries:
        key = keys.read(index, entry.api_key_file, entry.api_key_env)
        if key is not None:  # else a problem was recorded
            read_keys[index] = key
    # A node with other problems still has its key checked: a missing key file and a
    # bad value in the same node come out in one pass.
    valid = {index for index, _ in entries}
    for index, raw_node in _raw_nodes(document):
        if index not in valid and key_source_problem(*_key_sources(raw_node)) is None:
            keys.read(index, *_key_sources(raw_node))

    if problems.has_errors or projects is None:
        raise ConfigError(problems.items)
    return ProjectsConfig(
        path=path,
        salad_api_url=projects.salad_api_url,
        api_rate_limit=projects.api_rate_limit,
        nodes=tuple(resolve_node(projects, entry, read_keys[i]) for i, entry in entries),
        source_hashes={path: _hash(raw), **keys.hashes},
        warnings=sorted_problems(problems.items),
    )


def _raw_nodes(document: YamlDocument) -> list[tuple[int, dict[str, Any]]]:
    raw_nodes = document.data.get("nodes")
    if not isinstance(raw_nodes, list):
        return []
    return [(index, raw) for index, raw in enumerate(raw_nodes) if isinstance(raw, dict)]


def _key_sources(raw_node: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """A raw node's ``apiKeyFile`` and ``apiKeyEnv``, each only if usable as written."""
    file, env = raw_node.get("apiKeyFile"), raw_node.get("apiKeyEnv")
    usable_file = file if isinstance(file, str) and file else None
    usable_env = env if isinstance(env, str) and _ENV_NAME.match(env) else None
    return usable_file, usable_env


def _read_config(path: Path, file: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        message = "file does not exist"
    except IsADirectoryError:
        message = "is a directory, not a file"
    except OSError as exc:
        message = f"cannot read: {exc.strerror or type(exc).__name__}"
    raise ConfigError([ConfigProblem(file, None, "", message)])


def _parse(raw: bytes, file: str) -> YamlDocument:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = ConfigProblem(file, line, "", f"not UTF-8 text (byte offset {exc.start})")
        raise ConfigError([problem]) from None
    try:
        document = parse_yaml(text, file)
    except YamlProblems as exc:
        raise ConfigError(exc.problems) from None
    if document.data is None:
        problem = ConfigProblem(file, None, "", "the file is empty; it needs at least `nodes:`")
        raise ConfigError([problem])
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else "a single value"
        problem = ConfigProblem(
            file, 1, "", f"the top level must be a mapping with a `nodes` list, not {kind}"
        )
        raise ConfigError([problem])
    return document


def _valid_entries(document: YamlDocument, problems: _Problems) -> list[tuple[int, NodeEntry]]:
    raw_nodes = document.data.get("nodes")
    if not isinstance(raw_nodes, list):
        return []
    entries = []
    for index, raw in enumerate(raw_nodes):
        try:
            entries.append((index, NodeEntry.model_validate(raw)))
        except ValidationError:
            # Its errors are already reported; pydantic skips the key-source check of
            # a node with other errors, so make it here.
            if isinstance(raw, dict):
                problem = key_source_problem(raw.get("apiKeyFile"), raw.get("apiKeyEnv"))
                if problem is not None:
                    problems.add(("nodes", index), problem)
    return entries


def _check_unique(entries: Sequence[tuple[int, NodeEntry]], problems: _Problems) -> None:
    names: dict[str, int] = {}
    projects: dict[tuple[str, str], tuple[int, str]] = {}
    for index, entry in entries:
        first = names.setdefault(entry.name, index)
        if first != index:
            problems.add(
                ("nodes", index, "name"),
                f"node name {entry.name!r} is already used by nodes[{first}]"
                f"{problems.at_line(('nodes', first))}",
            )
        pair = (entry.organization, entry.project)
        other, other_name = projects.setdefault(pair, (index, entry.name))
        if other != index:
            problems.add(
                ("nodes", index, "project"),
                f"project {entry.organization}/{entry.project} already has node"
                f" {other_name!r} (nodes[{other}]{problems.at_line(('nodes', other))});"
                " two nodes on one project would fight over its container groups",
            )


class _Problems:
    """Problems of one file, each placed at the line of its key path."""

    def __init__(self, file: str, document: YamlDocument) -> None:
        self.file = file
        self.document = document
        self.items: list[ConfigProblem] = []

    def add(self, path: KeyPath, message: str, *, severity: Severity = "error") -> None:
        line = self.document.line_of(path)
        problem = ConfigProblem(self.file, line, format_key_path(path), message, severity)
        if problem not in self.items:
            self.items.append(problem)

    @property
    def has_errors(self) -> bool:
        return any(problem.severity == "error" for problem in self.items)

    def at_line(self, path: KeyPath) -> str:
        line = self.document.line_of(path)
        return "" if line is None else f", line {line}"

    def add_validation_error(self, exc: ValidationError) -> None:
        # Inputs are left out on purpose: they could be a key pasted in the wrong place.
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            loc = tuple(error["loc"])
            prefix = ""
            if loc and loc[-1] == "[key]":
                loc, prefix = loc[:-1], "key: "
            self.add(loc, prefix + _message(error["type"], error["msg"], loc))


_MESSAGES = {
    "missing": "required key is missing",
    "dict_type": "must be a mapping (key: value lines)",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "list_type": "must be a list",
    "string_type": "must be a string (quote it if YAML reads it as a number or boolean)",
    "bool_type": "must be true or false, unquoted: no other value (yes, no, on, off, 0, 1,"
    " a quoted string) is a boolean in this file",
}


def _message(kind: str, pydantic_message: str, loc: KeyPath) -> str:
    if kind == "extra_forbidden":
        return _unknown_key_message(str(loc[-1]))
    return _MESSAGES.get(kind) or plain_message(pydantic_message)


def _unknown_key_message(key: str) -> str:
    if key.replace("_", "").replace("-", "").lower() in _API_KEY_SPELLINGS:
        return (
            "API keys are never written in the projects file: put the key in a file and"
            " set apiKeyFile to its path, or in an environment variable and set"
            " apiKeyEnv to its name"
        )
    close = difflib.get_close_matches(key, sorted(FILE_KEYS), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}"


class _KeyReader:
    """Reads each node's API key, once per key file, recording what it read."""

    def __init__(
        self,
        base_dir: Path,
        environ: Mapping[str, str],
        problems: _Problems,
        *,
        allow_missing: bool,
    ) -> None:
        self._base_dir = base_dir
        self._environ = environ
        self._problems = problems
        self._allow_missing = allow_missing
        self._files: dict[Path, bytes | str] = {}  # content, or why it cannot be used
        self.hashes: dict[Path, str] = {}
        """Every key file looked at, even one that is missing: its appearance is a change."""

    def read(self, index: int, file: str | None, variable: str | None) -> NodeKey | None:
        """The node's key, or None with the problem recorded."""
        if file is not None:
            return self._from_file(index, file)
        if variable is not None:
            return self._from_env(index, variable)
        return None  # the schema already reported that neither is set

    def _from_file(self, index: int, name: str) -> NodeKey | None:
        path = Path(name)
        if not path.is_absolute():
            path = self._base_dir / path
        if path not in self._files:
            self._files[path] = self._read(path)
        content = self._files[path]
        where = ("nodes", index, "apiKeyFile")
        source = ApiKeySource(kind="file", location=str(path), size=0)
        if isinstance(content, str):
            if content == _NO_SUCH_FILE:
                return self._missing(where, f"file {path} does not exist", source)
            self._problems.add(where, content)
            return None
        key = _key_text(content)
        if isinstance(key, _BadKey):
            if key.empty:
                return self._missing(where, f"key file {path} {key.reason}", source)
            self._problems.add(where, f"key file {path} {key.reason}")
            return None
        self._warn_if_short(where, key, f"key file {path}")
        return NodeKey(SecretStr(key), source.model_copy(update={"size": len(key)}))

    def _read(self, path: Path) -> bytes | str:
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_KEY_BYTES + 1)
        except FileNotFoundError as exc:
            # What ``content_hash`` says of it now, so that its appearance is a change.
            self.hashes[path] = _unreadable(exc)
            return _NO_SUCH_FILE
        except IsADirectoryError:
            return f"{path} is a directory, not a key file"
        except OSError as exc:
            return f"cannot read key file {path}: {exc.strerror or type(exc).__name__}"
        self.hashes[path] = _hash(data)
        return data

    def _from_env(self, index: int, variable: str) -> NodeKey | None:
        where = ("nodes", index, "apiKeyEnv")
        source = ApiKeySource(kind="env", location=variable, size=0)
        value = self._environ.get(variable)
        if value is None:
            return self._missing(where, f"environment variable {variable} is not set", source)
        key = _key_text(value.encode())
        if isinstance(key, _BadKey):
            if key.empty:
                return self._missing(where, f"environment variable {variable} {key.reason}", source)
            self._problems.add(where, f"environment variable {variable} {key.reason}")
            return None
        self._warn_if_short(where, key, f"environment variable {variable}")
        return NodeKey(SecretStr(key), source.model_copy(update={"size": len(key)}))

    def _missing(self, where: KeyPath, message: str, source: ApiKeySource) -> NodeKey | None:
        if not self._allow_missing:
            self._problems.add(where, message)
            return None
        self._problems.add(
            where,
            f"{message}: the node will run without a key (condition SaladCloudReachable=False,"
            " reason APIKeyMissing) until it appears",
            severity="warning",
        )
        return NodeKey(SecretStr(""), source, missing=missing_key_message(message, source))

    def _warn_if_short(self, where: KeyPath, key: str, what: str) -> None:
        if len(key) < MIN_MASKED_SECRET:
            self._problems.add(
                where,
                f"the key in {what} is {len(key)} characters long: logs mask only keys of at"
                f" least {MIN_MASKED_SECRET} (a shorter one would garble ordinary words), so"
                " this one may appear in them. SaladCloud API keys are far longer: check it"
                " is the right key",
                severity="warning",
            )


def missing_key_message(problem: str, source: ApiKeySource) -> str:
    """What a node without its key tells on its condition: what is missing and the fix."""
    if source.kind == "env":
        return (
            f"no API key: {problem}; set it and restart salad-vk (environment variables are"
            " read once). No SaladCloud call is made until then"
        )
    path = Path(source.location)
    if path.parent.parent == CHART_KEYS_DIR:
        where = f"create key {path.name!r} in Secret {path.parent.name!r} (the Helm chart mounts it"
        where += " optional, so the pod runs without it)"
    else:
        where = "write the key into it"
    return (
        f"no API key: {problem}; {where}. The node picks it up without a restart and serves"
        " within a minute; no SaladCloud call is made until then"
    )


class _BadKey:
    def __init__(self, reason: str, *, empty: bool = False) -> None:
        self.reason = reason
        self.empty = empty


def _key_text(data: bytes) -> str | _BadKey:
    """The key in ``data`` without surrounding whitespace, or why it cannot be one.

    Reasons never quote the content.
    """
    if len(data) > MAX_KEY_BYTES:
        return _BadKey(f"is larger than {MAX_KEY_BYTES} bytes: not an API key")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return _BadKey("holds non-ASCII bytes: an API key is one line of ASCII text")
    key = text.strip()
    if not key:
        return _BadKey("is empty", empty=True)
    if any(not char.isprintable() or char.isspace() for char in key):
        return _BadKey(
            "holds whitespace or control characters inside the key: an API key is one line"
        )
    return key
