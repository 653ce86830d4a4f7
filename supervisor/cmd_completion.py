"""``salad-vk completion bash|zsh|fish``: shell completion, written from the parser.

The scripts are generated from the same argparse parser the command runs, so they
list every subcommand and flag there is, with the choices a flag takes (log levels,
output formats) and file names for ``FILE`` values. No completion library is needed
at run time: each script is plain shell of its own kind.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]
    is_file: bool
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    file_arguments: bool
    """Whether its positional arguments are files."""


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    root: Callable[[], argparse.ArgumentParser],
) -> None:
    """``root`` builds the whole parser, which the scripts are written from."""
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for salad-vk. bash: `source <(salad-vk"
        " completion bash)`; zsh (after compinit): `source <(salad-vk completion zsh)`; fish:"
        " `salad-vk completion fish | source`. Put the output where your shell loads"
        " completions to keep it.",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=lambda args: _print(args.shell, root()))


def _print(shell: str, parser: argparse.ArgumentParser) -> int:
    print(script(shell, parser), end="")
    return 0


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    top, commands = describe(parser)
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser.prog, top, commands)


def describe(parser: argparse.ArgumentParser) -> tuple[tuple[Option, ...], tuple[Command, ...]]:
    """The top-level options and every subcommand with its options."""
    commands: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                positionals = [a for a in sub._actions if not a.option_strings]
                commands.append(
                    Command(
                        name,
                        _plain(helps.get(name, "")),
                        _options(sub),
                        any(_is_file(a) for a in positionals),
                    )
                )
    return _options(parser), tuple(commands)


def _is_file(action: argparse.Action) -> bool:
    return action.metavar == "FILE" or action.type is Path


def _options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    options = []
    for action in parser._actions:
        if not action.option_strings:
            continue
        choices = tuple(str(c) for c in action.choices) if action.choices else ()
        if not choices and isinstance(action.metavar, str) and action.metavar.startswith("{"):
            choices = tuple(action.metavar.strip("{}").split(","))
        options.append(
            Option(
                tuple(action.option_strings),
                action.nargs != 0,
                choices,
                _is_file(action),
                _plain(action.help or ""),
            )
        )
    return tuple(options)


def _plain(text: str) -> str:
    """One short line without characters the shells' description syntax treats specially."""
    text = re.sub(r"\s+", " ", text.replace("%(default)s", "")).strip()
    text = re.sub(r"[\[\]:'\"`$\\]", "", text)
    return text[:80].rstrip()


def _function(prog: str) -> str:
    return "_" + re.sub(r"\W", "_", prog)


# --- bash ----------------------------------------------------------------------------


def bash(prog: str, top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    function = _function(prog)
    names = " ".join(c.name for c in commands)
    top_flags = " ".join(f for o in top for f in o.flags)
    cases = []
    for command in commands:
        flags = " ".join(f for o in command.options for f in o.flags)
        values = []
        for option in command.options:
            if not option.takes_value:
                continue
            pattern = "|".join(option.flags)
            if option.choices:
                values.append(
                    f"                {pattern}) "
                    f'COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur")); return ;;'
                )
            elif option.is_file:
                values.append(
                    f'                {pattern}) COMPREPLY=($(compgen -f -- "$cur")); return ;;'
                )
            else:
                values.append(f"                {pattern}) return ;;")
        positional = (
            '            [[ "$cur" != -* ]] && { COMPREPLY=($(compgen -f -- "$cur")); return; }\n'
            if command.file_arguments
            else ""
        )
        cases.append(
            f"        {command.name})\n"
            + (
                '            case "$prev" in\n' + "\n".join(values) + "\n            esac\n"
                if values
                else ""
            )
            + positional
            + f'            COMPREPLY=($(compgen -W "{flags}" -- "$cur"))\n'
            + "            ;;"
        )
    body = "\n".join(cases)
    text = f"""# {prog} completion for bash: source <({prog} completion bash)
{function}() {{
    local cur prev command="" i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) command="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    case "$command" in
        "")
            COMPREPLY=($(compgen -W "{names} {top_flags}" -- "$cur"))
            ;;
{body}
    esac
}}
complete -o filenames -F {function} {prog}
"""
    # mapfile, not COMPREPLY=($(...)): no word splitting or globbing of the answers.
    return re.sub(r"COMPREPLY=\(\$\((compgen [^)]*)\)\)", r"mapfile -t COMPREPLY < <(\1)", text)


# --- zsh -----------------------------------------------------------------------------


def _zsh_spec(option: Option) -> str:
    if len(option.flags) > 1:
        exclusive = "(" + " ".join(option.flags) + ")"
        names = "{" + ",".join(option.flags) + "}"
    else:
        exclusive, names = "", option.flags[0]
    spec = f"'{exclusive}'{names}'[{option.help}]" if exclusive else f"'{names}[{option.help}]"
    if option.takes_value:
        if option.choices:
            spec += f":value:({' '.join(option.choices)})"
        elif option.is_file:
            spec += ":file:_files"
        else:
            spec += ":value: "
    return spec + "'"


def zsh(prog: str, top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    function = _function(prog)
    described = "\n".join(f"        '{c.name}:{c.help}'" for c in commands)
    top_specs = " \\\n        ".join(_zsh_spec(o) for o in top)
    cases = []
    for command in commands:
        specs = [_zsh_spec(o) for o in command.options]
        if command.file_arguments:
            specs.append("'*:file:_files'")
        joined = " \\\n                    ".join(specs)
        indent = " " * 16
        cases.append(f"{indent}{command.name})\n{indent}    _arguments {joined}\n{indent}    ;;")
    body = "\n".join(cases)
    return f"""#compdef {prog}
# {prog} completion for zsh: source <({prog} completion zsh), after compinit
{function}() {{
    local -a commands
    commands=(
{described}
    )
    local curcontext="$curcontext" state line
    _arguments -C \\
        {top_specs} \\
        '1: :->command' \\
        '*:: :->arguments'
    case $state in
        command)
            _describe -t commands '{prog} command' commands
            ;;
        arguments)
            case $words[1] in
{body}
            esac
            ;;
    esac
}}
compdef {function} {prog}
"""


# --- fish ----------------------------------------------------------------------------


def _fish_option(prog: str, condition: str, option: Option) -> str:
    parts = [f"complete -c {prog} -n '{condition}'"]
    for flag in option.flags:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        else:
            parts.append(f"-s {flag[1:]}")
    if option.takes_value:
        parts.append("-r")
        if option.choices:
            parts.append(f"-f -a '{' '.join(option.choices)}'")
        elif option.is_file:
            parts.append("-F")
        else:
            parts.append("-f")
    if option.help:
        parts.append(f"-d '{option.help}'")
    return " ".join(parts)


def fish(prog: str, top: tuple[Option, ...], commands: tuple[Command, ...]) -> str:
    names = " ".join(c.name for c in commands)
    lines = [
        f"# {prog} completion for fish: {prog} completion fish | source",
        f"complete -c {prog} -f",
    ]
    lines += [_fish_option(prog, "__fish_use_subcommand", o) for o in top]
    for command in commands:
        lines.append(
            f"complete -c {prog} -n '__fish_use_subcommand' -a {command.name} -d '{command.help}'"
        )
        condition = f"__fish_seen_subcommand_from {command.name}"
        if command.file_arguments:
            lines.append(f"complete -c {prog} -n '{condition}' -F")
        lines += [_fish_option(prog, condition, o) for o in command.options]
    lines.append(f"# subcommands: {names}")
    return "\n".join(lines) + "\n"
