"""`jax.version`: the installed version of this library (`__version__`, `_version`)."""
from __future__ import annotations


def _installed() -> str:
    """The installed distribution's version (one source of truth: pyproject.toml)."""
    from importlib import metadata
    try:
        return metadata.version("numbax")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


__version__: str = _installed()
_version: str = __version__
