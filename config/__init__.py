"""Settings of the process and the projects file: models, loading, validation, diffs.

The supervisor builds ``ProcessSettings`` once, then loads the projects file with
``load_projects``; each ``NodeConfig`` is what one virtual node is built from.
"""

from .diff import ConfigDiff, NodeChange, diff_nodes
from .errors import ConfigError, ConfigProblem
from .loading import content_hash, load_projects
from .node import DEFAULT_CAPACITY, PROVIDER_TAINT, ApiKeySource, NodeConfig
from .projects import ProjectsConfig
from .quantities import parse_quantity
from .schema import (
    DEFAULT_API_RATE_LIMIT,
    DEFAULT_SALAD_API_URL,
    MAX_PODS_PER_NODE,
    SALAD_NAME_PATTERN,
    Priority,
    Taint,
    TaintEffect,
)
from .settings import (
    DecommissionPolicy,
    LogFormat,
    LogLevel,
    ProcessSettings,
    parse_listen_address,
)

__all__ = [
    "DEFAULT_API_RATE_LIMIT",
    "DEFAULT_CAPACITY",
    "DEFAULT_SALAD_API_URL",
    "MAX_PODS_PER_NODE",
    "PROVIDER_TAINT",
    "SALAD_NAME_PATTERN",
    "ApiKeySource",
    "ConfigDiff",
    "ConfigError",
    "ConfigProblem",
    "DecommissionPolicy",
    "LogFormat",
    "LogLevel",
    "NodeChange",
    "NodeConfig",
    "Priority",
    "ProcessSettings",
    "ProjectsConfig",
    "Taint",
    "TaintEffect",
    "content_hash",
    "diff_nodes",
    "load_projects",
    "parse_listen_address",
    "parse_quantity",
]
