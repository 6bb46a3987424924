"""`numpy.linalg`'s decompositions and solvers over `lax.linalg`'s primitives (so each one
differentiates, batches over leading axes and compiles). Results are NumPy's named tuples
(`EighResult`, `QRResult`, `SlogdetResult`, `SVDResult`); integer input is computed in
float64, as NumPy does."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import lax
from ..core import Tracer, get_aval
from ..lax import decompositions as D
from . import _ops, _shape_ops
from ._ops import asarray

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])
LstsqResult = namedtuple("LstsqResult", ["x", "residuals", "rank", "singular_values"])


def _matrix(a, name, square=False):
    a = asarray(a)
    dt = get_aval(a).dtype
    if np.issubdtype(dt, np.complexfloating):
        raise TypeError(f"linalg.{name}: complex matrices are not supported yet")
    if dt not in (np.float32, np.float64):
        a = _ops.astype(a, np.float64)
    aval = get_aval(a)
    if aval.ndim < 2:
        raise np.linalg.LinAlgError(f"{aval.ndim}-dimensional array given. Array must be at "
                                    "least two-dimensional")
    if square and aval.shape[-1] != aval.shape[-2]:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    return a


def _mT(x):
    return _shape_ops.swapaxes(x, -1, -2)


def _eye(n, like):
    a = get_aval(like)
    return np.broadcast_to(np.eye(n, dtype=a.dtype), a.shape[:-2] + (n, n))


def cholesky(a, /, *, upper=False):
    """`numpy.linalg.cholesky` (lower factor; `upper=True` gives its transpose). The input is
    symmetrised first, as JAX does, so the derivative is that of a symmetric matrix."""
    L = D.cholesky(_matrix(a, "cholesky", square=True))
    return _mT(L) if upper else L


def solve(a, b):
    """`numpy.linalg.solve` (NumPy 2: `b` is a vector only when it is 1-D)."""
    a = _matrix(a, "solve", square=True)
    b = asarray(b)
    dt = get_aval(a).dtype
    if get_aval(b).dtype != dt:
        b = _ops.astype(b, np.result_type(dt, get_aval(b).dtype))
        if get_aval(b).dtype != dt:
            a = _ops.astype(a, get_aval(b).dtype)
    vec = get_aval(b).ndim == 1
    if vec:
        b = b[:, None]
    batch = np.broadcast_shapes(get_aval(a).shape[:-2], get_aval(b).shape[:-2])
    a = _shape_ops.broadcast_to(a, batch + get_aval(a).shape[-2:])
    b = _shape_ops.broadcast_to(b, batch + get_aval(b).shape[-2:])
    x = D.solve(a, b)
    return x[..., 0] if vec else x


def inv(a):
    """`numpy.linalg.inv`."""
    a = _matrix(a, "inv", square=True)
    n = get_aval(a).shape[-1]
    return D.solve(a, _eye(n, a))


def slogdet(a):
    """`numpy.linalg.slogdet`: `(sign, logabsdet)`."""
    sign, logdet = D.slogdet_p.bind(_matrix(a, "slogdet", square=True))
    return SlogdetResult(sign, logdet)


def det(a):
    """`numpy.linalg.det` (= sign * exp(logabsdet); its derivative det(A) A⁻ᵀ)."""
    sign, logdet = slogdet(a)
    return _ops.multiply(sign, _ops.exp(logdet))


def eigh(a, UPLO=None, symmetrize_input=True):
    """`numpy.linalg.eigh`: ascending eigenvalues and the eigenvectors (columns). As JAX's,
    the input is first symmetrised, (a + aᵀ)/2, so the derivative is that of a symmetric
    matrix (d w_k = v_kᵀ dA v_k: the gradient is the symmetric v_k v_kᵀ). For a symmetric
    input that is NumPy's result; `symmetrize_input=False` reads only the `UPLO` triangle,
    as NumPy does."""
    a = _matrix(a, "eigh", square=True)
    if UPLO not in (None, "L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    if symmetrize_input:
        v, w = D.eigh(a, symmetrize_input=True)
        return EighResult(w, v)
    tri = np.tri(get_aval(a).shape[-1], dtype=bool)
    sym = _ops.where(tri, a, _mT(a)) if UPLO != "U" else _ops.where(tri, _mT(a), a)
    v, w = D.eigh(sym, symmetrize_input=False)
    return EighResult(w, v)


def eigvalsh(a, UPLO=None, symmetrize_input=True):
    """`numpy.linalg.eigvalsh` (symmetrised input, as `eigh`)."""
    return eigh(a, UPLO, symmetrize_input).eigenvalues


def qr(a, mode="reduced"):
    """`numpy.linalg.qr` (modes 'reduced', 'complete', 'r')."""
    a = _matrix(a, "qr")
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"Unrecognized mode '{mode}'")
    q, r = D.qr(a, full_matrices=(mode == "complete"))
    return r if mode == "r" else QRResult(q, r)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """`numpy.linalg.svd`: `(U, S, Vh)` with descending singular values (or `S` alone)."""
    a = _matrix(a, "svd")
    if not compute_uv:
        return D.svd(a, full_matrices=False, compute_uv=False)
    u, s, vh = D.svd(a, full_matrices=full_matrices)
    return SVDResult(u, s, vh)


def svdvals(x, /):
    """`numpy.linalg.svdvals`."""
    return svd(x, compute_uv=False)


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """`numpy.linalg.pinv`: singular values at most `rcond` times the largest are dropped
    (NumPy's default rcond is 1e-15)."""
    a = _matrix(a, "pinv")
    if rcond is None:
        rcond = 1e-15 if rtol is None else rtol
    u, s, vh = D.svd(a, full_matrices=False)
    cutoff = _ops.multiply(rcond, _ops.max(s, axis=-1, keepdims=True))
    keep = _ops.greater(s, cutoff)
    s_inv = _ops.where(keep, _ops.divide(1, _ops.where(keep, s, 1)), 0)
    return _shape_ops.matmul(_mT(vh) * s_inv[..., None, :], _mT(u))


def lstsq(a, b, rcond=None):
    """`numpy.linalg.lstsq`: `(x, residuals, rank, singular_values)` of min |a x - b|₂. The
    residuals are the squared 2-norms of the columns of b - a x when a has full column rank
    and more rows than columns (else an empty array), as NumPy's."""
    a = _matrix(a, "lstsq")
    b = asarray(b)
    if get_aval(b).dtype != get_aval(a).dtype:
        b = _ops.astype(b, get_aval(a).dtype)
    m, n = get_aval(a).shape[-2:]
    eps = np.finfo(get_aval(a).dtype).eps
    rc = eps * max(m, n) if rcond is None or rcond == -1 else rcond
    u, s, vh = D.svd(a, full_matrices=False)
    cutoff = _ops.multiply(rc, _ops.max(s, axis=-1, keepdims=True))
    keep = _ops.greater(s, cutoff)
    s_inv = _ops.where(keep, _ops.divide(1, _ops.where(keep, s, 1)), 0)
    vec = get_aval(b).ndim == 1
    bm = b[:, None] if vec else b
    x = _shape_ops.matmul(_mT(vh), s_inv[..., :, None] * _shape_ops.matmul(_mT(u), bm))
    rank = _ops.sum(keep, axis=-1)
    if m > n:
        resid = _ops.sum(_ops.square(_ops.subtract(_shape_ops.matmul(a, x), bm)), axis=-2)
        full = rank == n if not isinstance(rank, Tracer) else None
        if full is False:
            resid = np.zeros((0,), get_aval(a).dtype)
        elif vec:
            resid = resid[..., 0:1] if get_aval(resid).ndim else resid
    else:
        resid = np.zeros((0,), get_aval(a).dtype)
    return LstsqResult(x[..., 0] if vec else x, resid, rank, s)


def matrix_power(a, n):
    """`numpy.linalg.matrix_power` by repeated squaring (negative n: of the inverse)."""
    a = _matrix(a, "matrix_power", square=True) if get_aval(asarray(a)).dtype.kind == "f" \
        else asarray(a)
    n = int(n)
    if n == 0:
        return _ops.astype(_eye(get_aval(a).shape[-1], a), get_aval(a).dtype)
    if n < 0:
        a, n = inv(a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else _shape_ops.matmul(result, base)
        n >>= 1
        if n:
            base = _shape_ops.matmul(base, base)
    return result


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """`numpy.linalg.matrix_rank`: singular values above `tol` (default S.max * max(M, N) *
    eps)."""
    A = asarray(A)
    if get_aval(A).ndim < 2:
        return _ops.astype(_ops.any(_ops.not_equal(A, 0)), np.int64)
    s = svdvals(A)
    if tol is None:
        m, n = get_aval(A).shape[-2:]
        r = max(m, n) * np.finfo(get_aval(s).dtype).eps if rtol is None else rtol
        tol = _ops.multiply(_ops.max(s, axis=-1, keepdims=True), r)
    else:
        tol = _ops.asarray(tol)[..., None] if get_aval(_ops.asarray(tol)).ndim else tol
    return _ops.sum(_ops.greater(s, tol), axis=-1)


def cond(x, p=None):
    """`numpy.linalg.cond` for p in None/2/-2 (ratio of singular values)."""
    if p not in (None, 2, -2):
        raise NotImplementedError("linalg.cond: only p=None, 2 or -2 are supported")
    s = svdvals(x)
    hi, lo = _ops.max(s, axis=-1), _ops.min(s, axis=-1)
    return _ops.divide(lo, hi) if p == -2 else _ops.divide(hi, lo)


def matrix_norm_svd(x, ord, axis, keepdims):
    """Matrix norms 2, -2 and 'nuc' of `x` over `axis` (a pair), from singular values."""
    x = asarray(x)
    r, c = (a % get_aval(x).ndim for a in axis)
    moved = _shape_ops.moveaxis(x, (r, c), (-2, -1))
    s = svdvals(moved)
    out = _ops.max(s, axis=-1) if ord == 2 else _ops.min(s, axis=-1) if ord == -2 else \
        _ops.sum(s, axis=-1)
    if keepdims:
        out = _shape_ops.expand_dims(_shape_ops.expand_dims(out, min(r, c)), max(r, c))
    return out


def eig(a):
    """`numpy.linalg.eig` (general matrices: complex results). Computed eagerly only, as
    JAX's eig is forward-only on the CPU; under transformations it is an error."""
    a = asarray(a)
    if isinstance(a, Tracer):
        raise NotImplementedError("linalg.eig of traced values is not supported (complex "
                                  "results); use eigh for symmetric matrices")
    w, v = np.linalg.eig(a)
    return EigResult(w, v)


def eigvals(a):
    """`numpy.linalg.eigvals` (eager only, like `eig`)."""
    return eig(a).eigenvalues


del lax
