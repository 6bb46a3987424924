"""Find the user's own source line that triggered an operation, skipping library frames."""
from __future__ import annotations

import os
import sys
import threading

_LIBRARY_DIRS: list[str] = [os.path.dirname(os.path.abspath(__file__)) + os.sep]


def register_library_dir(path: str) -> None:
    """Frames from files under `path` count as library frames (e.g. the `fnn` package)."""
    _LIBRARY_DIRS.append(os.path.abspath(path) + os.sep)


def _is_library(filename: str) -> bool:
    if filename.startswith("<frozen") or filename.endswith(("contextlib.py", "functools.py")):
        return True
    return any(filename.startswith(d) for d in _LIBRARY_DIRS)


class SourceInfo:
    __slots__ = ("filename", "lineno", "function")

    def __init__(self, filename, lineno, function):
        self.filename, self.lineno, self.function = filename, lineno, function

    def __str__(self):
        return f"{os.path.basename(self.filename)}:{self.lineno} ({self.function})"


def user_frame(depth: int = 2):
    """The innermost frame outside this library, as a `SourceInfo` (or None)."""
    f = sys._getframe(depth)
    while f is not None:
        code = f.f_code
        if not _is_library(code.co_filename):
            return SourceInfo(code.co_filename, f.f_lineno, code.co_name)
        f = f.f_back
    return None


class _Replay(threading.local):
    info = None


_replay = _Replay()


class replaying:
    """`with replaying(info):` equations staged meanwhile take `info` as their source location
    (a jaxpr being re-traced by a transformation keeps the locations of its equations)."""
    __slots__ = ("info", "old")

    def __init__(self, info):
        self.info = info

    def __enter__(self):
        self.old, _replay.info = _replay.info, self.info

    def __exit__(self, *exc):
        _replay.info = self.old


def replayed():
    """The source location set by the innermost `replaying`, or None."""
    return _replay.info


def where() -> str:
    """' (at file.py:12 (fn))' for error messages, or '' when no user frame is found."""
    info = user_frame(2)
    return f" (at {info})" if info is not None else ""
