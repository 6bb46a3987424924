"""NumPy 2 dtype promotion (NEP 50: Python scalars are weak) and operand preparation."""
from __future__ import annotations

import numpy as np

from ..config import config
from ..core import Tracer, get_aval
from ..interpreters.partial_eval import keep_weak  # noqa: F401 - the tnp modules' import
from .. import lax

_ARRAYLIKE = (Tracer, np.ndarray, np.generic)


def dtype_of(x):
    return x.dtype if isinstance(x, _ARRAYLIKE) else get_aval(np.asarray(x)).dtype


_WEAK_STANDINS = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}
_PY_SCALARS = (bool, int, float, complex)


def _with_weak_standins(args):
    """`args` with each weakly typed tracer replaced by the Python scalar of its kind, when
    some operand is strongly typed (an array, a strong tracer, a dtype): then the weak value
    adapts to it, as a Python scalar does. Among weak values only, their own dtypes promote
    (JAX: a weak int32 index times 2 stays int32)."""
    for a in args:             # a plain loop: this runs for every mixed-type eager op
        if isinstance(a, Tracer) and a.weak_type:
            break
    else:
        return args
    if not any(not isinstance(a, _PY_SCALARS) and not (isinstance(a, Tracer) and a.weak_type)
               for a in args):
        return args
    return [_WEAK_STANDINS.get(a.dtype.kind, a) if isinstance(a, Tracer) and a.weak_type
            else a for a in args]


def _check_strict(args):
    """JAX's strict promotion (`jax_numpy_dtype_promotion='strict'`): every strongly typed
    operand has one dtype, and weak values (Python scalars, tracers standing for them) must
    fit it without changing it (a float scalar does not fit an integer array)."""
    strong, weak = [], []
    for a in args:
        if isinstance(a, Tracer) and a.weak_type:
            weak.append(_WEAK_STANDINS.get(a.dtype.kind, a))
        elif isinstance(a, _PY_SCALARS):
            weak.append(a)
        elif isinstance(a, _ARRAYLIKE):
            strong.append(a.dtype)
        elif isinstance(a, (np.dtype, type, str)):
            strong.append(np.dtype(a))
        else:
            strong.append(np.asarray(a).dtype)
    kinds = set(strong)
    ok = len(kinds) <= 1
    if ok and strong and weak:
        ok = np.result_type(strong[0], *weak) == strong[0]
    if not ok:
        from ..dtypes import TypePromotionError
        from ..source_info import where
        names = [str(d) for d in strong] + [f"Python {type(w).__name__}" for w in weak]
        raise TypePromotionError(
            f"Input dtypes ({', '.join(names)}) have no available implicit dtype promotion "
            "path when jax_numpy_dtype_promotion=strict. Try explicitly casting inputs to the "
            f"desired output type, or set jax_numpy_dtype_promotion=standard{where()}")


def result_type(*args):
    """NumPy's result type, with Python scalars (and tracers standing for them) as weak
    values (NEP 50). Under strict promotion, mixed dtypes raise `TypePromotionError`."""
    if config.strict_promotion:
        _check_strict(args)
    parts = []
    for a in _with_weak_standins(args):
        if isinstance(a, _ARRAYLIKE):
            parts.append(a.dtype)
        elif isinstance(a, _PY_SCALARS):
            parts.append(a)
        elif isinstance(a, (np.dtype, type)):
            parts.append(a)
        elif isinstance(a, str):
            parts.append(np.dtype(a))   # a dtype name ("int8"), as NumPy and JAX read it
        else:
            parts.append(np.asarray(a).dtype)
    return np.result_type(*parts)


def asarray_of(x, dtype):
    """`x` as an array (or tracer) of `dtype`."""
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype)
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype == dtype:
        return x
    return np.asarray(x, dtype=dtype)


def promote(*args, dtype=None):
    """Cast operands to their common dtype and broadcast them to a common shape."""
    if dtype is None and len(args) == 2:
        a, b = args
        if isinstance(a, _ARRAYLIKE) and isinstance(b, _ARRAYLIKE) and a.dtype == b.dtype \
                and a.shape == b.shape:
            return [a, b]                      # nothing to do: the common case, kept cheap
    dt = result_type(*args) if dtype is None else np.dtype(dtype)
    arrs = [asarray_of(a, dt) for a in args]
    shapes = [a.shape for a in arrs]
    if any(s != shapes[0] for s in shapes[1:]):
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            from ..errors import ShapeError
            from ..source_info import where
            raise ShapeError("operands could not be broadcast together with shapes "
                             f"{' '.join(str(s) for s in shapes)}{where()}") from None
        arrs = [lax.broadcast_to(a, shape) for a in arrs]
    return arrs


_UFUNC_DTYPES = {}


def ufunc_dtype(ufunc, *dtypes):
    """The dtype NumPy's `ufunc` returns for inputs of `dtypes` (cached)."""
    key = (ufunc, dtypes)
    dt = _UFUNC_DTYPES.get(key)
    if dt is None:
        with np.errstate(all="ignore"):
            dt = ufunc(*[np.ones((), d) for d in dtypes]).dtype
        _UFUNC_DTYPES[key] = dt
    return dt


def ufunc_result_dtype(ufunc, *args):
    """The dtype NumPy's `ufunc` returns for these operands, Python scalars weak (NEP 50).

    Unlike promoting first, this follows NumPy's own loop selection (e.g. arctan2 of int8 and
    uint8 is float16, logaddexp of a float32 array and 2 is float32)."""
    if config.strict_promotion:
        _check_strict(args)
    key = tuple(type(a) if isinstance(a, _PY_SCALARS) else dtype_of(a)
                for a in _with_weak_standins(args))
    dt = _UFUNC_DTYPES.get((ufunc, key))
    if dt is None:
        with np.errstate(all="ignore"):
            dt = ufunc(*[k(1) if isinstance(k, type) else np.ones((), k) for k in key]).dtype
        _UFUNC_DTYPES[(ufunc, key)] = dt
    return dt


def to_float(x, ufunc=np.sqrt):
    """Integer and bool inputs cast the way NumPy's `ufunc` casts them (int8 -> float16...)."""
    dt = dtype_of(x)
    if np.issubdtype(dt, np.inexact):
        return x if isinstance(x, _ARRAYLIKE) else np.asarray(x)
    return asarray_of(x, ufunc_dtype(ufunc, *([dt] * ufunc.nin)))


def promote_dtypes(*args):
    """Cast operands to their common dtype without broadcasting."""
    dt = result_type(*args)
    return [asarray_of(a, dt) for a in args]
