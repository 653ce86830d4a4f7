"""``salad-vk simulate``: run the SaladCloud simulator as a local HTTP server."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path
from typing import Any

import anyio

from nodes.saladcloud.simulator import (
    ListenError,
    OptionsError,
    Simulator,
    SimulatorOptions,
    load_options,
    serve,
)
from nodes.saladcloud.simulator.options import DEFAULT_API_KEY, DEFAULT_LISTEN, DEFAULT_PROJECT

from .cli_args import add_log_level

_DESCRIPTION = """\
Serve a simulated SaladCloud public API on this machine: container groups, instances,
system logs, GPU classes, quotas and log entries under /api/public, with the spec's
validation, per-key rate limits, state changes over simulated time, and faults on
demand. Point a client at http://HOST:PORT/api/public.
"""

_EPILOG = """\
Every option can also be set in the --config YAML file, under the flag's name without
the leading dashes (for example "rate-limit: 20" or "project: [acme/demo, acme/batch]");
flags given on the command line win.

Run-time controls (JSON over HTTP, no key needed) live under /_simulator: GET
/_simulator for the state; POST /_simulator/clock {"advance": SECONDS}; POST
/_simulator/keys {"api_key": K, "accepted": false} to revoke a key; POST
/_simulator/faults {"error_rate": 0.2, "storm": 10}; GET or POST
/_simulator/organizations/ORG/projects/PROJECT/containers[/NAME/ACTION] with ACTION one
of stop, start, delete, interrupt, exit; GET or POST .../containers/NAME/logs {"lines":
["..."]} to read or write a group's container log; POST /_simulator/logs {"rate": N,
"lag": SECONDS}; GET /_simulator/requests.
"""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulate",
        help="run a local SaladCloud API simulator",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--config", type=Path, metavar="FILE", help="YAML file with any of the options below")
    add(
        "--listen",
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks a free one)",
    )
    add(
        "--project",
        action="append",
        metavar="ORG/PROJECT",
        help=f"declare an organization/project; repeatable (default {DEFAULT_PROJECT})",
    )
    add(
        "--api-key",
        action="append",
        metavar="KEY",
        help="accept this API key for every declared project; repeatable "
        f"(default {DEFAULT_API_KEY})",
    )
    add(
        "--rate-limit",
        type=int,
        metavar="N",
        help="requests per minute per API key before answering 429 (default 240)",
    )
    add(
        "--seed",
        type=int,
        metavar="N",
        help="seed of every random choice, to replay a run (default 0)",
    )
    add(
        "--time-scale",
        type=float,
        metavar="F",
        help="run SaladCloud time F times faster than the wall clock (default 1; "
        "60 makes a minute of deployment take a second)",
    )
    add(
        "--gpu-class",
        action="append",
        metavar="NAME",
        help="offer a GPU class of this name; repeatable (default: six common classes)",
    )
    add(
        "--replica-quota",
        type=int,
        metavar="N",
        help="the organization's container replicas quota (default 100)",
    )
    add(
        "--fail-image",
        action="append",
        metavar="PATTERN",
        help="images matching this glob fail to pull (the group ends 'failed'); repeatable",
    )
    add(
        "--exit-image",
        action="append",
        metavar="PATTERN=CODE@SECONDS",
        help="containers of images matching the glob exit with CODE after running SECONDS "
        "of simulated time; repeatable",
    )
    add(
        "--error-rate",
        type=float,
        metavar="P",
        help="fraction of API requests answered 500/502/503 (some as HTML pages) (default 0)",
    )
    add(
        "--throttle-rate",
        type=float,
        metavar="P",
        help="fraction of API requests answered 429 regardless of the budget (default 0)",
    )
    add(
        "--drop-rate",
        type=float,
        metavar="P",
        help="fraction of API requests applied but answered by closing the connection (default 0)",
    )
    add(
        "--latency",
        type=float,
        metavar="SECONDS",
        help="wall-clock delay added to every API answer (default 0)",
    )
    add(
        "--interrupt-rate",
        type=float,
        metavar="N",
        help="interruptions per running instance per simulated hour, each followed by a "
        "reallocation (default 0)",
    )
    add(
        "--log-rate",
        type=float,
        metavar="N",
        help="lines each running instance writes to its log per wall-clock second "
        "(default 0.5; 0 writes none)",
    )
    add(
        "--log-lag",
        type=float,
        metavar="SECONDS",
        help="longest delay between a log line's time and its receive_time; lines can "
        "arrive after later ones (default 1)",
    )
    add(
        "--storm",
        action="append",
        metavar="START+SECONDS",
        help="answer 429 to every API request from START to START+SECONDS wall seconds "
        "after start-up; repeatable",
    )
    add(
        "--retry-after",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send a Retry-After header with 429 answers (the real API documents none; "
        "default off)",
    )
    add_log_level(parser)
    parser.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options given as flags, by their option (and YAML) names."""
    overrides: dict[str, Any] = {}
    for name, field in SimulatorOptions.model_fields.items():
        flag = field.alias or name
        value = getattr(args, flag.replace("-", "_"), None)
        if value is not None:
            overrides[flag] = value
    return overrides


def _announce(simulator: Simulator) -> None:
    world = simulator.world
    print(f"SaladCloud simulator listening on {simulator.url}", flush=True)
    print(f"  projects: {', '.join(simulator.projects())}", flush=True)
    print(
        f"  {len(world.keys.items())} API key(s), {world.keys.rate_limit} requests/min each; "
        f"time scale {world.clock.time_scale:g}; seed {world.options.seed}",
        flush=True,
    )
    print(f"  run-time controls: {simulator.control_url}", flush=True)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        options = load_options(args.config, _overrides(args))
    except OptionsError as exc:
        print(f"salad-vk simulate: {exc}", file=sys.stderr)
        return 2
    try:
        anyio.run(functools.partial(serve, options, announce=_announce))
    except ListenError as exc:
        print(f"salad-vk simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
