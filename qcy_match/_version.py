"""The installed package's version, read once from its metadata (no import of the rest of the package)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qcy-match")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
