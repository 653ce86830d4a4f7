"""``salad-vk check-config FILE``: validate a projects file and show what it resolves to.

Keys are read (so a missing key file or unset variable is caught here, not at
start-up) but never shown. The resolved YAML is itself a valid projects file: defaults
merged into every node, key files as absolute paths, and nothing the input format
refuses (no ``apiKey:``); what is not a setting (each node's fingerprint, its key's
length and sharing) is written as comments. ``-o json`` gives the same for programs.

A key that is not there is an error by default: a node without its key serves nothing.
``--allow-missing-keys`` makes it a warning, for checking a file where its Secrets are
not mounted (CI); the process itself runs such a node without a key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from config import (
    PROVIDER_TAINT,
    ConfigError,
    ConfigProblem,
    NodeConfig,
    ProjectsConfig,
    load_projects,
)

FINGERPRINT = (
    "a hash of everything a node runs with: its resolved settings and its API key's"
    " SHA-256 (never the key). A reload restarts a node only when its fingerprint changes;"
    " moving a key file without changing the key changes nothing. Shown: the first 16"
    " hex digits."
)
KEY = (
    "where the node's API key is read from, its length, and the nodes sharing it (and so"
    " its rate budget); never the key itself"
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check-config",
        help="validate a projects file and print it resolved, keys masked",
        description="Validate a projects file and print the resolved configuration (itself a"
        " valid projects file; keys never shown). Exit status 0 when valid, 1 with every"
        " problem found (on stderr, or in the JSON document with -o json).",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the projects file (YAML)")
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (default): the resolved file with comments; json: one document with the"
        " problems (file, line, path, message) or the resolved config",
    )
    parser.add_argument(
        "--allow-missing-keys",
        action="store_true",
        help="a key file that does not exist or is empty, or an unset key variable, is a"
        " warning rather than an error (for CI, where the Secrets are not mounted)",
    )
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    try:
        config = load_projects(args.file, os.environ, allow_missing_keys=args.allow_missing_keys)
    except ConfigError as exc:
        if as_json:
            print(json.dumps(_problems_json(args.file, exc.problems), indent=2))
        else:
            print(exc, file=sys.stderr)
            print(f"check-config: {_count(exc.problems)} in {args.file}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(render_json(config), indent=2))
        return 0
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    print(render(config), end="")
    return 0


def _count(problems: tuple[ConfigProblem, ...]) -> str:
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    text = f"{errors} problem{'s' if errors != 1 else ''}"
    if warnings:
        text += f" and {warnings} warning{'s' if warnings != 1 else ''}"
    return text


def _problems_json(file: Path, problems: tuple[ConfigProblem, ...]) -> dict[str, Any]:
    return {
        "file": str(file),
        "valid": False,
        "problems": [problem.as_json() for problem in problems],
    }


# --- the resolved file ---------------------------------------------------------------


def input_document(config: ProjectsConfig) -> dict[str, Any]:
    """The resolved config as a projects file: loading it gives the same nodes."""
    return {
        "saladApiUrl": config.salad_api_url,
        "apiRateLimit": config.api_rate_limit,
        "nodes": [input_node(node) for node in config.nodes],
    }


def input_node(node: NodeConfig) -> dict[str, Any]:
    """One node in the projects file's own keys, nothing the input format refuses."""
    rendered: dict[str, Any] = {}
    provider = PROVIDER_TAINT.model_dump()
    for key, value in node.file_settings().items():
        if key == "apiRateLimit" or value is None:
            continue  # the rate limit is file-wide; None is what leaving a key out means
        if key == "taints":
            rendered["providerTaint"] = provider in value
            value = [taint for taint in value if taint != provider]  # noqa: PLW2901
        rendered[key] = value
        if key == "project" and node.api_key_source is not None:
            source = node.api_key_source
            if source.kind == "file":
                rendered["apiKeyFile"] = os.path.abspath(source.location)  # noqa: PTH100
            else:
                rendered["apiKeyEnv"] = source.location
    return rendered


def _key_facts(node: NodeConfig, config: ProjectsConfig) -> dict[str, Any]:
    same = next(
        (group for group in config.key_groups().values() if node in group),
        (),
    )
    source = node.api_key_source
    return {
        "source": None if source is None else source.kind,
        "location": None if source is None else source.location,
        "length": None if source is None or node.api_key_missing else source.size,
        "missing": node.api_key_missing,
        "sameKeyAs": [other.name for other in same if other.name != node.name],
    }


def _key_comment(node: NodeConfig, config: ProjectsConfig) -> str:
    facts = _key_facts(node, config)
    if node.api_key_missing is not None:
        return "key MISSING (the node runs without one until it appears)"
    if facts["source"] is None:
        return "key given in code"
    location = facts["location"]
    if facts["source"] == "file":
        location = os.path.abspath(location)  # noqa: PTH100 - no symlinks resolved
    text = f"key from {facts['source']} {location} ({facts['length']} characters)"
    if facts["sameKeyAs"]:
        text += f", same key as {', '.join(facts['sameKeyAs'])}"
    return text


def render(config: ProjectsConfig) -> str:
    """The resolved config as YAML: a valid projects file, with what is not a setting
    (fingerprints, key facts) in comments."""
    count = len(config.nodes)
    lines = [
        f"# {config.path}: valid, {count} node{'s' if count != 1 else ''}",
        "# Resolved: defaults merged into every node, key paths made absolute. This is itself",
        "# a valid projects file; API keys are never shown.",
        *_comment_block(f"fingerprint: {FINGERPRINT}"),
    ]
    head = {k: v for k, v in input_document(config).items() if k != "nodes"}
    text = "\n".join(lines) + "\n" + _dump(head)
    if not config.nodes:
        return text + "nodes: []\n"
    text += "nodes:\n"
    for node in config.nodes:
        facts = f"fingerprint {node.fingerprint[:16]}; {_key_comment(node, config)}"
        text += f"# {node.name}: {facts}\n"
        text += _dump([input_node(node)])
    return text


def render_json(config: ProjectsConfig) -> dict[str, Any]:
    """The resolved config for programs: the projects file, and facts about each node."""
    return {
        "file": str(config.path),
        "valid": True,
        "problems": [warning.as_json() for warning in config.warnings],
        "config": input_document(config),
        "nodes": [
            {
                "name": node.name,
                "fingerprint": node.fingerprint[:16],
                "key": _key_facts(node, config),
            }
            for node in config.nodes
        ],
        "descriptions": {
            "config": "the resolved projects file: defaults merged, key paths absolute;"
            " loading it gives the same nodes",
            "nodes[].fingerprint": FINGERPRINT,
            "nodes[].key": KEY,
        },
    }


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _comment_block(text: str, width: int = 86) -> list[str]:
    lines: list[str] = []
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    return [*lines, line]
