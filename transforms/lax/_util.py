"""Small helpers shared by the primitive families."""
from __future__ import annotations

import numpy as np

from ..core import ShapedArray, Tracer, get_aval
from ..interpreters.transpose import UndefinedPrimal, is_undefined  # noqa: F401 (re-export)
from ..errors import ShapeError
from ..source_info import where


def aval(x) -> ShapedArray:
    return get_aval(x)


def shape_of(x):
    return x.shape if isinstance(x, (Tracer, np.ndarray, np.generic)) else np.shape(x)


def dtype_of(x):
    return get_aval(x).dtype


def as_array(x, dtype=None):
    """Python scalars and sequences become NumPy arrays; arrays and tracers pass through."""
    if isinstance(x, Tracer):
        return x
    if dtype is not None:
        return np.asarray(x, dtype=dtype)
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def bind_new_dtype(prim, x, dtype):
    """`prim` (a dtype change such as convert or bitcast, parameter `new_dtype`) bound on `x`;
    `x` itself (no equation) when it already has `dtype`."""
    dtype = np.dtype(dtype)
    x = as_array(x)
    if get_aval(x).dtype == dtype:
        return x
    return prim.bind(x, new_dtype=dtype)


def check_same_shapes(name, avals):
    s0 = avals[0].shape
    for a in avals[1:]:
        if a.shape != s0:
            raise ShapeError(f"{name}: incompatible shapes {', '.join(str(b.shape) for b in avals)}"
                             f"{where()}")


def check_same_dtypes(name, avals):
    d0 = avals[0].dtype
    for a in avals[1:]:
        if a.dtype != d0:
            raise TypeError(f"{name}: dtypes differ ({', '.join(b.dtype.name for b in avals)}); "
                            f"convert explicitly{where()}")


def normalize_axes(axes, ndim, name="axis"):
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1) and not (ndim == 0 and a in (0, -1)):
            raise ValueError(f"{name} {a} is out of bounds for an array of dimension {ndim}")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated {name} in {tuple(axes)}")
    return tuple(out)


