"""`jax.debug`: `print` and `callback` that see runtime values in every transform.

    from transforms import debug
    debug.print("step {i}: loss={l}", i=i, l=loss)
    debug.callback(lambda x: log.append(float(x)), x)

As in JAX: eagerly the callback runs at once; under `grad` it sees the primal values; under
`vmap` it runs once per batch element (in order); under `jit` it runs when the compiled code
reaches it, with the runtime values (the Numba backend calls back into Python through
`numba.objmode`), after the values it reads are computed and in program order with respect
to other callbacks. Callbacks are never removed as dead code nor merged.
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from . import tree as tree_util
from ._keyed_registry import KeyedRegistry
from .core import Primitive, Tracer, as_leaf
from .ir import EFFECTFUL
from .source_info import register_library_dir  # noqa: F401 (public: see __all__)

__all__ = ["print", "callback", "debug_callback_p", "register_library_dir"]

# Numba notes that the objmode block of a compiled callback holds the GIL (inside a nogil
# function): expected, and only while the callback runs
warnings.filterwarnings("ignore", message=".*object mode won't allow parallel execution")

debug_callback_p = Primitive("debug_callback", multiple_results=True)
EFFECTFUL.add("debug_callback")


def _impl(*args, callback):
    callback(*[np.asarray(a) for a in args])
    return []


debug_callback_p.def_impl(_impl)
debug_callback_p.def_abstract_eval(lambda *avals, callback: [])
# forward mode: the callback sees the primal values; there is nothing to differentiate
debug_callback_p.def_jvp(lambda primals, tangents, *, callback: (
    debug_callback_p.bind(*primals, callback=callback), []))


class _PerElement:
    """Call `inner` once per batch element (batched operands have their batch axis first)."""

    def __init__(self, inner, batched, size):
        self.inner, self.batched, self.size = inner, tuple(batched), size

    def __call__(self, *args):
        for i in range(self.size):
            self.inner(*[a[i] if b else a for a, b in zip(args, self.batched)])


def _batch(args, dims, *, callback):
    from .core import get_aval
    from .interpreters.batching import moveaxis
    size = next(get_aval(a).shape[d] for a, d in zip(args, dims) if d is not None)
    moved = [a if d is None else moveaxis(a, d, 0) for a, d in zip(args, dims)]
    debug_callback_p.bind(*moved, callback=_PerElement(callback, [d is not None for d in dims],
                                                       size))
    return [], []


debug_callback_p.def_batch(_batch)


def _is_dynamic(x):
    return isinstance(x, (Tracer, np.ndarray, np.generic, builtins.bool, int, float, complex))


class _TreeCallback:
    """Rebuild the user's `(args, kwargs)` from the flat dynamic leaves and call it."""

    def __init__(self, fn, treedef, static, dyn_pos):
        self.fn, self.treedef, self.static, self.dyn_pos = fn, treedef, static, dyn_pos

    def __call__(self, *vals):
        leaves = list(self.static)
        for p, v in zip(self.dyn_pos, vals):
            leaves[p] = v
        args, kwargs = tree_util.unflatten(self.treedef, leaves)
        self.fn(*args, **kwargs)


def callback(callback, *args, ordered=False, partitioned=False, **kwargs):
    """Call `callback(*args, **kwargs)` with the runtime (NumPy) values of `args`/`kwargs`
    (pytrees), under any transform; returns None. `ordered`/`partitioned` are accepted: calls
    always run in program order here."""
    leaves, treedef = tree_util.flatten((args, kwargs))
    dyn_pos = [i for i, x in enumerate(leaves) if _is_dynamic(x)]
    static = [None if i in set(dyn_pos) else x for i, x in enumerate(leaves)]
    dyn = [as_leaf(leaves[i]) for i in dyn_pos]
    debug_callback_p.bind(*dyn, callback=_TreeCallback(callback, treedef, static, dyn_pos))


def _format_and_print(fmt, *args, **kwargs):
    builtins.print(fmt.format(*args, **kwargs))


def print(fmt, *args, ordered=False, **kwargs):  # noqa: A001 - the JAX name
    """`print(fmt.format(*args, **kwargs))` with runtime values, under any transform (see the
    module docstring); arrays are formatted as NumPy formats them."""
    if not isinstance(fmt, str):
        raise TypeError(f"debug.print: fmt must be a string, got {type(fmt).__name__}")
    callback(lambda *a, **k: _format_and_print(fmt, *a, **k), *args, ordered=ordered, **kwargs)


# --------------------------------------------------------------------------------------------
# Compiled code calls back through a per-process registry of integer keys (the key is part of
# the generated source, so a disk-cached executable always finds this process's callback).

_CALLBACKS = KeyedRegistry()
register = _CALLBACKS.register


def dispatch(key, *arrays):
    """Entry point of compiled code (inside `numba.objmode`): run callback `key`."""
    _CALLBACKS[key](*arrays)
