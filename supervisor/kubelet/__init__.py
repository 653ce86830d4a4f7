"""The kubelet API of the process's nodes: ``kubectl logs``, ``/pods``, stats, and the
clear refusals of what SaladCloud cannot do. See ``server`` and docs/kubelet-api.md."""

from .directory import NodeLookup, ServedNode, served
from .metrics import KubeletMetrics
from .server import KubeletOptions, KubeletServer

__all__ = [
    "KubeletMetrics",
    "KubeletOptions",
    "KubeletServer",
    "NodeLookup",
    "ServedNode",
    "served",
]
