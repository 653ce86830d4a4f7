"""The salad-vk process: CLI, one supervised task per virtual node, shared pools, metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("salad-vk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
