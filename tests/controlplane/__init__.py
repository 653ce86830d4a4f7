"""A real Kubernetes control plane on loopback, for tests and the offline demo.

``python -m tests.controlplane build|up|down``; see ``__main__`` for the flags.
"""

from .binaries import KUBERNETES_VERSION, Binaries, BuildError, build
from .cluster import ControlPlane, ControlPlaneError, down, running, up

__all__ = [
    "KUBERNETES_VERSION",
    "Binaries",
    "BuildError",
    "ControlPlane",
    "ControlPlaneError",
    "build",
    "down",
    "running",
    "up",
]
