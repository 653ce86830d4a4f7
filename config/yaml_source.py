"""YAML reading that remembers where each value was written.

Two things PyYAML's ``safe_load`` gets wrong for a config file:

* YAML 1.1 booleans: ``no`` (Norway's country code), ``on``, ``yes`` become ``True``
  or ``False``. Here only ``true`` and ``false`` are booleans, as in YAML 1.2.
* A key written twice in one mapping silently keeps the last value. Here it is a
  problem naming both lines.

Line numbers come from the composed node tree (``yaml.compose``), indexed by key
path, so a validation error found later can still point at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import ConfigProblem, KeyPath, format_key_path

_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictBoolLoader(yaml.SafeLoader):
    """``SafeLoader`` whose only booleans are ``true`` and ``false`` (any case style)."""


StrictBoolLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictBoolLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class YamlDocument:
    """The data of a single-document YAML file and the line of every key path.

    ``data`` is ``None`` for a file with no document (empty or only comments).
    """

    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int | None:
        """Line of ``path``, else of its nearest ancestor that was written (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class YamlProblems(Exception):
    """The text is not usable YAML; ``problems`` says where."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document, indexing lines; ``YamlProblems`` on bad syntax or dup keys."""
    loader = StrictBoolLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(data=None, lines={})
        index = _LineIndex(file)
        index.add(node, ())
        if index.problems:
            raise YamlProblems(index.problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblems([_syntax_problem(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise YamlProblems([ConfigProblem(file, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, lines=index.lines)


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    what = ": ".join(part for part in (exc.context, exc.problem) if part)
    return ConfigProblem(
        file,
        mark.line + 1 if mark is not None else None,
        "",
        f"invalid YAML: {what or 'cannot parse'}",
    )


class _LineIndex:
    """Line of every key path of a node tree, and the keys written twice."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[ConfigProblem] = []
        self._seen: set[int] = set()

    def add(self, node: yaml.Node, path: KeyPath) -> None:
        # A node reached again through an alias is indexed once, where it is written:
        # under the alias, lines fall back to the alias's own. Walking it again could
        # loop (``&a [*a]``) or explode (nested aliases, "billion laughs").
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            self._add_mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                self.add(item, (*path, position))

    def _add_mapping(self, node: yaml.MappingNode, path: KeyPath) -> None:
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.problems.append(
                    ConfigProblem(
                        self.file,
                        line,
                        format_key_path((*path, key)),
                        f"key written twice in one mapping (first at line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            # The key's line, not the value's: that is where a reader looks for it.
            self.lines[(*path, key)] = line
            self.add(value_node, (*path, key))
