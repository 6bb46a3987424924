"""`jax.dtypes`: dtype queries (`canonicalize_dtype`, `issubdtype`, `result_type`, `float0`,
`finfo`, `iinfo`, `scalar_type_of`, `itemsize_bits`).

Dtypes are NumPy's: arrays keep the dtype they are given (float64 and int64 included, as
NumPy 2 does), so `canonicalize_dtype` is the identity on valid dtypes; promotion is NumPy 2's
(NEP 50), which is what `result_type` computes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["canonicalize_dtype", "issubdtype", "result_type", "float0", "finfo", "iinfo",
           "scalar_type_of", "itemsize_bits", "TypePromotionError", "extended", "prng_key",
           "is_weakly_typed"]

#: The dtype of tangents/cotangents of integer and boolean values in JAX: a zero-size void
#: type. Here such tangents are symbolic zeros, so `float0` only appears where user code
#: builds it (e.g. `np.zeros(shape, dtype=float0)` for a custom_jvp of an integer input).
float0 = np.dtype([("float0", np.void, 0)])

finfo = np.finfo
iinfo = np.iinfo


class extended:
    """JAX's abstract class of extended (non-NumPy) dtypes. No array here has one: PRNG keys
    are raw uint32[2] arrays, so `issubdtype(x.dtype, extended)` is False for every array."""


class prng_key(extended):
    """JAX's abstract dtype class of typed PRNG keys. Keys here are raw uint32[2] arrays
    (`random.key(s)` is `random.PRNGKey(s)`), so `issubdtype(key.dtype, prng_key)` is False,
    as JAX answers for its raw keys: code that wraps raw keys with `random.wrap_key_data`
    when the test fails keeps working (wrapping is the identity here)."""


class TypePromotionError(ValueError):
    """Raised when dtypes cannot be promoted together (kept for portability; NumPy's
    promotion raises its own `DTypePromotionError`, a TypeError, instead)."""


def canonicalize_dtype(dtype, allow_extended_dtype=False):
    """The dtype arrays of `dtype` get here: `np.dtype(dtype)` (64-bit types are kept, since
    this library follows NumPy 2 rather than JAX's 32-bit default mode)."""
    del allow_extended_dtype
    return np.dtype(dtype)


def issubdtype(a, b):
    """`numpy.issubdtype`, with `float0` a subtype of nothing but itself, and nothing a
    subtype of `extended`/`prng_key` but those classes themselves."""
    if isinstance(a, type) and issubclass(a, extended) or \
            isinstance(b, type) and issubclass(b, extended):
        return isinstance(a, type) and isinstance(b, type) and issubclass(a, b)
    if _is_float0(a) or _is_float0(b):
        return _is_float0(a) and _is_float0(b)
    return bool(np.issubdtype(a, b))


def _is_float0(d):
    try:
        return isinstance(d, (np.dtype, str)) and np.dtype(d) == float0
    except TypeError:
        return False


def is_weakly_typed(x):
    """Whether `x` is weakly typed (as `jax.dtypes.is_weakly_typed`): a Python scalar, or a
    traced value standing for one (a Python scalar passed to `jit`, or arithmetic on such
    values only). Concrete results are NumPy arrays, which are never weak."""
    from .core import Tracer
    if isinstance(x, Tracer):
        return bool(x.weak_type)
    return type(x) in (bool, int, float, complex)


def result_type(*args, return_weak_type_flag=False):
    """The dtype of an operation on `args` (arrays, dtypes, Python scalars) under NumPy 2's
    promotion rules (Python scalars are weak). With `return_weak_type_flag`, a pair
    `(dtype, weak)` where `weak` says every argument was a Python scalar."""
    from .core import Tracer
    vals = [a.aval.dtype if isinstance(a, Tracer) else a for a in args]
    dt = np.result_type(*vals)
    if return_weak_type_flag:
        weak = bool(args) and all(isinstance(a, (bool, int, float, complex)) for a in args)
        return dt, weak
    return dt


def scalar_type_of(x):
    """The Python scalar type (`bool`, `int`, `float` or `complex`) of `x`'s dtype kind."""
    from .core import Tracer
    dt = x.aval.dtype if isinstance(x, Tracer) else np.result_type(x)
    return {"b": bool, "i": int, "u": int, "f": float, "c": complex}[dt.kind]


def itemsize_bits(dtype):
    """The size of one element of `dtype` in bits."""
    return np.dtype(dtype).itemsize * 8
