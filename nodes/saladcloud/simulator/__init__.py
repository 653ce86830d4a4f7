"""A SaladCloud public API that runs on this machine, for tests, benchmarks and demos.

It serves the container-group, instance, system-log, GPU-class, quota and log-entry
operations of ``salad-cloud.yaml`` under ``/api/public``, checks request bodies
against the spec's bounds, keeps names unique per project forever, caps lists at 100
items, enforces the per-key request budget, moves groups through their states on a
simulated clock (``lifecycle`` documents the model), and injects faults on demand,
all seeded so that a run can be replayed.

Start one in-process with ``async with running_simulator(options) as sim`` (``sim.url``
is the client's base URL; ``sim`` also carries the run-time controls, see
``control``), or from the shell with ``salad-vk simulate``.
"""

from .control import GroupSnapshot, KeyStats, SimulatorControl, WrittenLine
from .options import OptionsError, SimulatorOptions, load_options
from .server import ListenError, Simulator, running_simulator, serve

__all__ = [
    "GroupSnapshot",
    "KeyStats",
    "ListenError",
    "OptionsError",
    "Simulator",
    "SimulatorControl",
    "SimulatorOptions",
    "WrittenLine",
    "load_options",
    "running_simulator",
    "serve",
]
