"""``salad-vk check-config FILE``: validate a projects file and show what it resolves to.

Keys are read (so a missing key file or unset variable is caught here, not at
start-up) but never shown: each appears as ``***`` with where it came from and its
length. The output is YAML, so it can be diffed or read back.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from config import ConfigError, NodeConfig, ProjectsConfig, load_projects


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "check-config",
        help="validate a projects file and print it resolved, keys masked",
        description="Validate a projects file and print the resolved configuration with API"
        " keys masked. Exit status 0 when valid, 1 with the problems on stderr otherwise.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the projects file (YAML)")
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    try:
        config = load_projects(args.file, os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"check-config: {count} problem{'s' if count != 1 else ''} in {args.file}",
            file=sys.stderr,
        )
        return 1
    print(render(config), end="")
    return 0


def render(config: ProjectsConfig) -> str:
    """The resolved config as YAML, every key replaced by a description of it."""
    count = len(config.nodes)
    sharing = {node.name: group for group in config.key_groups().values() for node in group}
    document = {
        "saladApiUrl": config.salad_api_url,
        "apiRateLimit": config.api_rate_limit,
        "nodes": [_render_node(node, sharing[node.name]) for node in config.nodes],
    }
    header = f"# {config.path}: valid, {count} node{'s' if count != 1 else ''}\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _render_node(node: NodeConfig, same_key: tuple[NodeConfig, ...]) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for key, value in node.file_settings().items():
        rendered[key] = value
        if key == "project":
            rendered["apiKey"] = _describe_key(node, same_key)
    rendered["fingerprint"] = node.fingerprint[:16]
    return rendered


def _describe_key(node: NodeConfig, same_key: tuple[NodeConfig, ...]) -> str:
    """``*** (from file /etc/...; 40 bytes; same key as b)``: enough to check, nothing to leak."""
    details = [] if node.api_key_source is None else [f"from {node.api_key_source}"]
    sharing = [other.name for other in same_key if other.name != node.name]
    if sharing:
        details.append(f"same key as {', '.join(sharing)}")
    return "***" + (f" ({'; '.join(details)})" if details else "")
