"""The direct compiler: generated functions compiled to machine code through llvmlite
without Numba's front end (see `lower.py` for why and how).

`try_compile(py_func, sig)` is what `cache.njit` calls for every generated function with a
signature: a `DirectFunction` when the function is within the subset this compiler handles,
else None (Numba compiles it, as before). ``NUMBAX_DIRECT=0`` turns the direct compiler off;
``NUMBAX_DIRECT=strict`` (the test suite's setting) raises its internal errors instead of
falling back to Numba, so a bug in it fails a test rather than hiding.
"""
from __future__ import annotations

import os
import warnings

from .scalars import Unsupported

__all__ = ["enabled", "try_compile", "Unsupported", "STATS"]

STATS = {"compiled": 0, "loaded": 0, "unsupported": 0, "failed": 0}
REASONS = {}          # why functions fell back to Numba (reason -> count), for diagnosis


def mode():
    raw = os.environ.get("NUMBAX_DIRECT", "1").strip().lower()
    return "off" if raw in ("0", "off", "false", "no") else (
        "strict" if raw == "strict" else "on")


def enabled():
    return mode() != "off"


def module_key(py_func):
    """The key of the generated module defining `py_func` (from its file name)."""
    name = os.path.basename(py_func.__code__.co_filename).strip("<>")
    name = name.split()[-1] if " " in name else name
    if name.startswith("nbx_"):
        return name[4:].split(".", 1)[0]
    return None


def try_compile(py_func, sig, entry=True, noalias=False):
    """`py_func` compiled directly for Numba signature `sig`, or None (Numba's turn).
    `entry`: whether Python calls it (else it gets no CPython entry point, as Numba's
    ``no_cpython_wrapper``); `noalias`: see `cache.njit`."""
    if not enabled():
        return None
    key = module_key(py_func)
    if key is None:
        return None
    from .function import compile_function
    from .lower import collector_paused
    try:
        with collector_paused():          # building and printing the IR
            fn = compile_function(py_func, sig, key, entry, noalias)
    except Unsupported as e:
        STATS["unsupported"] += 1
        r = str(e)
        REASONS[r] = REASONS.get(r, 0) + 1
        return None
    except Exception as e:                     # noqa: BLE001 - a bug here must not break jit
        if mode() == "strict":
            raise
        STATS["failed"] += 1
        warnings.warn(f"the direct compiler failed on {py_func.__name__} ({type(e).__name__}: "
                      f"{e}); Numba compiles it instead", RuntimeWarning, stacklevel=2)
        return None
    STATS["loaded" if fn.from_disk else "compiled"] += 1
    return fn


def links_direct(py_func, _seen=None):
    """Whether Numba-compiled `py_func` would call (or link a function that calls) a
    function the direct compiler compiled: through a name bound to it, or a `calls` ref."""
    from .function import DirectFunction
    seen = _seen if _seen is not None else set()
    code = getattr(py_func, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    g = getattr(py_func, "__globals__", {})
    for name in code.co_names:
        v = g.get(name)
        if isinstance(v, DirectFunction) or isinstance(getattr(v, "dispatcher", None),
                                                         DirectFunction):
            return True
        inner = getattr(v, "py_func", None)
        if inner is not None and links_direct(inner, seen):
            return True
    return False
