"""The Kubernetes side of a node: a thin JSON client and one module per resource.

Objects travel as plain JSON dicts (camelCase, exactly what the API server sends):
the translation code is written against that shape, and decoding thousands of pods
into generated model classes would only cost CPU on the event loop the leases share.
"""

from .client import KubeClient
from .errors import KubeConflict, KubeError, KubeGone, KubeNotFound
from .paths import api_path

__all__ = [
    "KubeClient",
    "KubeConflict",
    "KubeError",
    "KubeGone",
    "KubeNotFound",
    "api_path",
]
