"""NumPy 2 dtype promotion (NEP 50: Python scalars are weak) and operand preparation."""
from __future__ import annotations

import numpy as np

from ..core import Tracer, get_aval
from .. import lax

_ARRAYLIKE = (Tracer, np.ndarray, np.generic)


def dtype_of(x):
    return x.dtype if isinstance(x, _ARRAYLIKE) else get_aval(np.asarray(x)).dtype


_WEAK_STANDINS = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}


def _weak_standin(x):
    """The Python scalar a weakly typed tracer stands for in promotion, else None."""
    if isinstance(x, Tracer) and x.weak_type:
        return _WEAK_STANDINS.get(x.dtype.kind)
    return None


def result_type(*args):
    """NumPy's result type, with Python scalars (and tracers standing for them) as weak
    values (NEP 50)."""
    parts = []
    for a in args:
        if isinstance(a, _ARRAYLIKE):
            w = _weak_standin(a)
            parts.append(a.dtype if w is None else w)
        elif isinstance(a, (bool, int, float, complex)):
            parts.append(a)
        elif isinstance(a, (np.dtype, type)):
            parts.append(a)
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


def all_weak(*args):
    """Every operand is a Python scalar or a weakly typed tracer, and one is a tracer: the
    result of combining them is weak too (as in JAX)."""
    tracer = False
    for a in args:
        if isinstance(a, Tracer):
            if not a.weak_type:
                return False
            tracer = True
        elif not isinstance(a, (bool, int, float, complex)):
            return False
    return tracer


def weakened(out):
    """`out` (a staging tracer) marked weakly typed."""
    from ..interpreters.partial_eval import StagingTracer, WeakStagingTracer
    if type(out) is StagingTracer:
        return WeakStagingTracer(out._trace, out._var)
    return out


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
    key = tuple(type(a) if isinstance(a, (bool, int, float, complex)) else
                type(_weak_standin(a)) if _weak_standin(a) is not None else dtype_of(a)
                for a in args)
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
