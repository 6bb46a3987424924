"""`tnp.linalg`: norms (more decompositions can follow as primitives)."""
from __future__ import annotations

import numpy as np

from . import _ops


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    x = _ops.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = _ops.astype(x, np.float64)
    if axis is None:
        if ord is None:
            r = _ops.sqrt(_ops.sum(_ops._abs_square(x), keepdims=keepdims))
            return r
        if x.ndim == 1:
            axis = 0
        elif x.ndim == 2:
            axis = (0, 1)
        else:
            raise ValueError("Improper number of dimensions to norm.")
    if isinstance(axis, (int, np.integer)):
        a = _ops.abs(x)
        if ord is None or ord == 2:
            return _ops.sqrt(_ops.sum(_ops._abs_square(x), axis=axis, keepdims=keepdims))
        if ord == np.inf:
            return _ops.max(a, axis=axis, keepdims=keepdims)
        if ord == -np.inf:
            return _ops.min(a, axis=axis, keepdims=keepdims)
        if ord == 0:
            return _ops.sum(_ops.astype(_ops.not_equal(x, 0), x.dtype), axis=axis, keepdims=keepdims)
        if ord == 1:
            return _ops.sum(a, axis=axis, keepdims=keepdims)
        return _ops.power(_ops.sum(_ops.power(a, ord), axis=axis, keepdims=keepdims), 1.0 / ord)
    axis = tuple(axis)
    if ord in (None, "fro"):
        return _ops.sqrt(_ops.sum(_ops._abs_square(x), axis=axis, keepdims=keepdims))
    a = _ops.abs(x)
    r, c = axis
    if ord == 1:
        out = _ops.max(_ops.sum(a, axis=r, keepdims=True), axis=c, keepdims=True)
    elif ord == np.inf:
        out = _ops.max(_ops.sum(a, axis=c, keepdims=True), axis=r, keepdims=True)
    elif ord == -1:
        out = _ops.min(_ops.sum(a, axis=r, keepdims=True), axis=c, keepdims=True)
    elif ord == -np.inf:
        out = _ops.min(_ops.sum(a, axis=c, keepdims=True), axis=r, keepdims=True)
    else:
        raise NotImplementedError(f"matrix norm ord={ord!r}")
    return out if keepdims else _ops.squeeze(out, axis) if hasattr(_ops, "squeeze") else out.squeeze(axis)
