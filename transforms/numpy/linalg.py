"""`tnp.linalg`: norms, products, and (from `_linalg_decomp`) decompositions and solvers."""
from __future__ import annotations

import numpy as np

from . import _ops


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """Mirrors `numpy.linalg.norm`: vector norms (`ord` = None/2, 1, inf, -inf, 0, p) and
    matrix norms (`'fro'`, `'nuc'`, 1, -1, 2, -2, inf, -inf) over `axis`, `keepdims` as NumPy.
    Differentiable away from zero (the 2-norm's derivative is undefined at 0); batches under
    `vmap` and compiles under `jit` (the SVD-based matrix norms 2, -2, 'nuc' as the SVD
    does)."""
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
    elif ord in (2, -2, "nuc"):
        from ._linalg_decomp import matrix_norm_svd
        return matrix_norm_svd(x, ord, axis, keepdims)
    else:
        raise ValueError(f"Invalid norm order {ord!r} for matrices")
    return out if keepdims else _ops.squeeze(out, axis) if hasattr(_ops, "squeeze") else out.squeeze(axis)


# ---------------------------------------------------------------------------------------------
# products and the array-API names of numpy.linalg
# ---------------------------------------------------------------------------------------------

def tensordot(x1, x2, /, *, axes=2):
    """`numpy.linalg.tensordot` (array API: `axes` is keyword-only)."""
    from ._shape_ops import tensordot as _tensordot
    return _tensordot(x1, x2, axes)


def vecdot(x1, x2, /, *, axis=-1):
    """`numpy.linalg.vecdot`: the dot product over `axis`, broadcasting the rest."""
    from ._math_extra import vecdot as _vecdot
    return _vecdot(x1, x2, axis=axis)


def matmul(x1, x2, /):
    """`numpy.linalg.matmul`."""
    from ._shape_ops import matmul as _matmul
    return _matmul(x1, x2)


def outer(x1, x2, /):
    """`numpy.linalg.outer` of two 1-D arrays."""
    from ._shape_ops import outer as _outer
    if _ops.asarray(x1).ndim != 1 or _ops.asarray(x2).ndim != 1:
        raise ValueError("linalg.outer: both inputs must be 1-D")
    return _outer(x1, x2)


def cross(x1, x2, /, *, axis=-1):
    """`numpy.linalg.cross` of 3-vectors."""
    from ._math_extra import cross as _cross
    return _cross(x1, x2, axis=axis)


def diagonal(x, /, *, offset=0):
    """`numpy.linalg.diagonal`: the diagonals of the last two axes."""
    from ._shape_ops import diagonal as _diagonal
    return _diagonal(x, offset, -2, -1)


def trace(x, /, *, offset=0, dtype=None):
    """`numpy.linalg.trace` over the last two axes."""
    from ._shape_ops import trace as _trace
    out = _trace(x, offset, -2, -1)
    return out if dtype is None else _ops.astype(out, dtype)


def matrix_transpose(x, /):
    """`numpy.linalg.matrix_transpose`: swap the last two axes."""
    from ._shape_ops import swapaxes
    return swapaxes(x, -1, -2)


def multi_dot(arrays, *, out=None):
    """`numpy.linalg.multi_dot`: the product of a chain of matrices, multiplied in the order
    that needs the fewest scalar multiplications (first/last may be 1-D, as NumPy)."""
    from ._shape_ops import matmul as _matmul
    arrays = [_ops.asarray(a) for a in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: expecting at least two arrays")
    first_vec, last_vec = arrays[0].ndim == 1, arrays[-1].ndim == 1
    if first_vec:
        arrays[0] = arrays[0][None, :]
    if last_vec:
        arrays[-1] = arrays[-1][:, None]
    for a in arrays:
        if a.ndim != 2:
            raise ValueError("multi_dot: inner arrays must be 2-D")
    dims = [arrays[0].shape[0]] + [a.shape[1] for a in arrays]
    n = len(arrays)
    # classic matrix-chain dynamic programme over split points
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def product(i, j):
        if i == j:
            return arrays[i]
        k = split[i][j]
        return _matmul(product(i, k), product(k + 1, j))

    res = product(0, n - 1)
    if first_vec:
        res = res[0]
    if last_vec:
        res = res[..., 0]
    return res


from ._linalg_decomp import (  # noqa: E402,F401
    EighResult, QRResult, SlogdetResult, SVDResult, cholesky, cond, det, eig, eigh, eigvals,
    eigvalsh, inv, lstsq, matrix_power, matrix_rank, pinv, qr, slogdet, solve, svd, svdvals)
LinAlgError = np.linalg.LinAlgError
