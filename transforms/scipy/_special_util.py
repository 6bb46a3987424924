"""Argument conversion shared by the `special` modules: floats stay, integers become
float64, Python scalars are weakly typed (as JAX)."""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..core import get_aval


def _f(x):
    x = tnp.asarray(x)
    dt = get_aval(x).dtype
    return x if dt in (np.float32, np.float64) else tnp.astype(x, np.float64)


def _is_python_scalar(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _f2(x, y):
    # A Python scalar is weakly typed, as in JAX: betaln(float32 array, 2.5) stays float32.
    weak_x, weak_y = _is_python_scalar(x), _is_python_scalar(y)
    x, y = tnp.asarray(x), tnp.asarray(y)
    dts = [get_aval(v).dtype for v, weak in ((x, weak_x), (y, weak_y)) if not weak]
    dt = np.result_type(*dts, np.float32) if dts else np.dtype(np.float64)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    x, y = tnp.astype(x, dt), tnp.astype(y, dt)
    return tnp.broadcast_arrays(x, y)


def stats_args(*xs):
    """The arguments of a `stats` distribution function, as arrays of one floating dtype:
    NumPy's promotion with Python scalars and weakly typed tracers weak (JAX:
    `norm.logpdf(x_f32, 0, 1.35)` is float32), integers and bools joined with float32
    (int8 -> float32, int32/int64 -> float64), other dtypes float64."""
    from ..numpy._promote import result_type
    dt = result_type(*xs)
    if dt.kind in "biu":
        dt = np.result_type(dt, np.float32)
    if dt not in (np.float32, np.float64):
        dt = np.dtype(np.float64)
    return [tnp.astype(tnp.asarray(x), dt) for x in xs]
