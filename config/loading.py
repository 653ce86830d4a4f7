"""Reading a projects file from disk: parse, validate, read the keys, resolve.

Files are read through symlinks, because in production the config file and the key
files are a mounted ConfigMap and Secret: the kubelet writes a new ``..YYYY_...``
directory and swaps the ``..data`` symlink to it. ``content_hash`` hashes what a path
points at now, which is what a reload watcher must compare.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import SecretStr, ValidationError

from .errors import ConfigError, ConfigProblem, KeyPath, format_key_path, plain_message
from .node import ApiKeySource
from .projects import ProjectsConfig
from .resolve import resolve_node
from .schema import FILE_KEYS, NodeEntry, ProjectsFile, key_source_problem
from .yaml_source import YamlDocument, YamlProblems, parse_yaml

MAX_KEY_BYTES = 4096
"""More than any API key; a bigger file is the wrong file, and is not read whole."""

_API_KEY_SPELLINGS = {"apikey", "saladapikey", "key", "token"}


def content_hash(path: Path) -> str:
    """Hash of the bytes ``path`` points at now (through symlinks).

    Never raises: a file that cannot be read hashes to a marker naming the reason,
    so its disappearance counts as a change and the reload that follows says why.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable:{type(exc).__name__}"
    return _hash(data)


def _hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_projects(path: Path, environ: Mapping[str, str]) -> ProjectsConfig:
    """Load and check the projects file at ``path``; keys named by ``apiKeyEnv`` come
    from ``environ``.

    Raises ``ConfigError`` listing every problem found. Relative ``apiKeyFile`` paths
    are relative to the directory of ``path``.
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
    keys = _KeyReader(path.parent, environ, problems)
    read_keys = {}
    for index, entry in entries:
        key = keys.read(index, entry)  # records a problem when it returns None
        if key is not None:
            read_keys[index] = key

    if problems.items or projects is None:
        raise ConfigError(problems.items)
    return ProjectsConfig(
        path=path,
        salad_api_url=projects.salad_api_url,
        api_rate_limit=projects.api_rate_limit,
        nodes=tuple(resolve_node(projects, entry, *read_keys[i]) for i, entry in entries),
        source_hashes={path: _hash(raw), **keys.hashes},
    )


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

    def add(self, path: KeyPath, message: str) -> None:
        line = self.document.line_of(path)
        problem = ConfigProblem(self.file, line, format_key_path(path), message)
        if problem not in self.items:
            self.items.append(problem)

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

    def __init__(self, base_dir: Path, environ: Mapping[str, str], problems: _Problems) -> None:
        self._base_dir = base_dir
        self._environ = environ
        self._problems = problems
        self._files: dict[Path, bytes | str] = {}  # content, or why it cannot be used
        self.hashes: dict[Path, str] = {}

    def read(self, index: int, entry: NodeEntry) -> tuple[SecretStr, ApiKeySource] | None:
        if entry.api_key_file is not None:
            return self._from_file(index, entry.api_key_file)
        if entry.api_key_env is not None:
            return self._from_env(index, entry.api_key_env)
        return None  # the schema already reported that neither is set

    def _from_file(self, index: int, name: str) -> tuple[SecretStr, ApiKeySource] | None:
        path = Path(name)
        if not path.is_absolute():
            path = self._base_dir / path
        if path not in self._files:
            self._files[path] = self._read(path)
        content = self._files[path]
        where = ("nodes", index, "apiKeyFile")
        if isinstance(content, str):
            self._problems.add(where, content)
            return None
        key = _key_text(content)
        if isinstance(key, _BadKey):
            self._problems.add(where, f"key file {path} {key.reason}")
            return None
        return SecretStr(key), ApiKeySource(kind="file", location=str(path), size=len(key))

    def _read(self, path: Path) -> bytes | str:
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_KEY_BYTES + 1)
        except FileNotFoundError:
            return f"file {path} does not exist"
        except IsADirectoryError:
            return f"{path} is a directory, not a key file"
        except OSError as exc:
            return f"cannot read key file {path}: {exc.strerror or type(exc).__name__}"
        self.hashes[path] = _hash(data)
        return data

    def _from_env(self, index: int, variable: str) -> tuple[SecretStr, ApiKeySource] | None:
        where = ("nodes", index, "apiKeyEnv")
        value = self._environ.get(variable)
        if value is None:
            self._problems.add(where, f"environment variable {variable} is not set")
            return None
        key = _key_text(value.encode())
        if isinstance(key, _BadKey):
            self._problems.add(where, f"environment variable {variable} {key.reason}")
            return None
        return SecretStr(key), ApiKeySource(kind="env", location=variable, size=len(key))


class _BadKey:
    def __init__(self, reason: str) -> None:
        self.reason = reason


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
        return _BadKey("is empty")
    if any(not char.isprintable() or char.isspace() for char in key):
        return _BadKey(
            "holds whitespace or control characters inside the key: an API key is one line"
        )
    return key
