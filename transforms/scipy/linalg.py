"""`scipy.linalg` (`jax.scipy.linalg`) over `lax.linalg`'s primitives: triangular and
Cholesky solves, LU, the matrix exponential, and SciPy's spellings of the `numpy.linalg`
decompositions. Real float32/float64 matrices; leading axes are batches."""
from __future__ import annotations

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval
from ..lax import decompositions as D


def _m(a):
    a = tnp.asarray(a)
    return a if get_aval(a).dtype in (np.float32, np.float64) else tnp.astype(a, np.float64)


def _same(a, b):
    a, b = _m(a), _m(b)
    dt = np.result_type(get_aval(a).dtype, get_aval(b).dtype)
    return tnp.astype(a, dt), tnp.astype(b, dt)


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     debug=None, check_finite=True):
    """x with op(a) x = b for triangular `a` (`trans` 0/'N': a, 1/'T' or 2/'C': aᵀ)."""
    a, b = _same(a, b)
    if trans in (0, "N"):
        transpose = False
    elif trans in (1, 2, "T", "C"):
        transpose = True
    else:
        raise ValueError(f"solve_triangular: invalid trans {trans!r}")
    vec = get_aval(b).ndim == 1
    x = D.triangular_solve(a, b[:, None] if vec else b, left_side=True, lower=lower,
                           transpose_a=transpose, unit_diagonal=unit_diagonal)
    return x[:, 0] if vec else x


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor: upper (Uᵀ U = a) unless `lower` (SciPy's default is upper)."""
    L = D.cholesky(_m(a))
    return L if lower else tnp.swapaxes(L, -1, -2)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """`(c, lower)` for `cho_solve` (the other triangle of `c` is zero here)."""
    return cholesky(a, lower=lower), lower


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """x with a x = b from `cho_factor(a)`: two triangular solves."""
    c, lower = c_and_lower
    c, b = _same(c, b)
    vec = get_aval(b).ndim == 1
    bm = b[:, None] if vec else b
    if lower:
        y = D.triangular_solve(c, bm, left_side=True, lower=True)
        x = D.triangular_solve(c, y, left_side=True, lower=True, transpose_a=True)
    else:
        y = D.triangular_solve(c, bm, left_side=True, lower=False, transpose_a=True)
        x = D.triangular_solve(c, y, left_side=True, lower=False)
    return x[:, 0] if vec else x


def lu_factor(a, overwrite_a=False, check_finite=True):
    """`(lu, piv)` as LAPACK's getrf: row i was swapped with row piv[i] (0-based)."""
    return D.lu_factor(_m(a))


def _permutation(piv, n):
    """The row permutation the pivots' successive swaps make (perm[i] = source row)."""
    perm = tnp.broadcast_to(np.arange(n, dtype=np.int32), get_aval(piv).shape[:-1] + (n,))
    for i in range(n):
        p = piv[..., i:i + 1]
        at_i = perm[..., i:i + 1]
        at_p = tnp.take_along_axis(perm, p, axis=-1)
        idx = np.arange(n, dtype=np.int32)
        perm = tnp.where(idx == i, at_p, tnp.where(tnp.equal(idx, p), at_i, perm))
    return perm


def lu(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    """`(p, l, u)` with a = p l u (or `(pl, u)` with `permute_l`; `p` as row indices with
    `p_indices`)."""
    a = _m(a)
    lu_, piv = D.lu_factor(a)
    n = get_aval(a).shape[-1]
    eye = np.eye(n, dtype=get_aval(a).dtype)
    lower = tnp.tril(lu_, -1) + eye
    upper = tnp.triu(lu_)
    perm = _permutation(piv, n)
    # a[perm] = l u  =>  a = Pᵀ-ish: P[perm[i], i] = 1
    pmat = tnp.astype(tnp.equal(tnp.expand_dims(perm, -2),
                                np.arange(n, dtype=np.int32)[:, None]), get_aval(a).dtype)
    if permute_l:
        return tnp.matmul(pmat, lower), upper
    if p_indices:
        return tnp.argsort(perm, axis=-1), lower, upper
    return pmat, lower, upper


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    """x with a x = b from `lu_factor(a)` (`trans` 1: aᵀ x = b)."""
    lu_, piv = lu_and_piv
    lu_, b = _same(lu_, b)
    n = get_aval(lu_).shape[-1]
    vec = get_aval(b).ndim == 1
    bm = b[:, None] if vec else b
    perm = _permutation(piv, n)
    if trans in (0, "N"):
        pb = tnp.take_along_axis(bm, tnp.expand_dims(perm, -1), axis=-2) \
            if get_aval(bm).ndim == get_aval(lu_).ndim else bm[perm]
        y = D.triangular_solve(lu_, pb, left_side=True, lower=True, unit_diagonal=True)
        x = D.triangular_solve(lu_, y, left_side=True, lower=False)
    else:
        y = D.triangular_solve(lu_, bm, left_side=True, lower=False, transpose_a=True)
        z = D.triangular_solve(lu_, y, left_side=True, lower=True, transpose_a=True,
                               unit_diagonal=True)
        inv = tnp.argsort(perm, axis=-1)
        x = z[inv] if get_aval(z).ndim == 2 else tnp.take_along_axis(
            z, tnp.expand_dims(inv, -1), axis=-2)
    return x[:, 0] if vec else x


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
          assume_a="gen"):
    """x with a x = b (`assume_a` 'gen', 'sym' or 'pos': 'pos' uses Cholesky)."""
    if assume_a == "pos":
        return cho_solve(cho_factor(a, lower=True), b)
    return tnp.linalg.solve(a, b)


def inv(a, overwrite_a=False, check_finite=True):
    """The inverse."""
    return tnp.linalg.inv(a)


def det(a, overwrite_a=False, check_finite=True):
    """The determinant."""
    return tnp.linalg.det(a)


def eigh(a, b=None, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         type=1, check_finite=True):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (`b` unsupported)."""
    if b is not None:
        raise NotImplementedError("eigh: the generalized problem (b=...) is not supported")
    w, v = tnp.linalg.eigh(a, UPLO="L" if lower else "U")
    return w if eigvals_only else (w, v)


def svd(a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True,
        lapack_driver="gesdd"):
    """`(u, s, vh)`, or `s` alone."""
    out = tnp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)
    return tuple(out) if compute_uv else out


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    """`(q, r)` (mode 'full' or 'economic'), or `(r,)` for mode 'r'."""
    if pivoting:
        raise NotImplementedError("qr: pivoting is not supported")
    if mode == "r":
        return (tnp.linalg.qr(a, mode="r"),)
    if mode not in ("full", "economic"):
        raise ValueError(f"qr: invalid mode {mode!r}")
    q, r = D.qr(_m(a), full_matrices=(mode == "full"))
    return q, r


def block_diag(*arrs):
    """A block-diagonal matrix of the given 2-D blocks."""
    arrs = [tnp.atleast_2d(_m(a)) for a in arrs]
    if not arrs:
        return np.zeros((1, 0))
    dt = np.result_type(*[get_aval(a).dtype for a in arrs])
    rows = sum(get_aval(a).shape[0] for a in arrs)
    cols = sum(get_aval(a).shape[1] for a in arrs)
    out = tnp.zeros((rows, cols), dt)
    r = c = 0
    for a in arrs:
        h, w = get_aval(a).shape
        out = tnp.pad(tnp.astype(a, dt), ((r, rows - r - h), (c, cols - c - w))) + out
        r, c = r + h, c + w
    return out


# Padé(13) coefficients of the matrix exponential (b_k = (26-k)! 13! / (26! k! (13-k)!))
def _pade13():
    from math import factorial
    return [factorial(26 - k) * factorial(13) / (factorial(26) * factorial(k) *
                                                factorial(13 - k)) for k in range(14)]


_THETA13 = 5.371920351148152
_MAX_SQUARINGS = 24


def expm(A, *, upper_triangular=False, max_squarings=_MAX_SQUARINGS):
    """e^A by scaling and squaring with a degree-13 Padé approximant (Higham's scheme). The
    number of squarings s depends on ‖A‖₁; it is applied as `max_squarings` conditional
    squarings, so the function compiles and differentiates like any composition."""
    A = _m(A)
    n = get_aval(A).shape[-1]
    dt = get_aval(A).dtype
    norm1 = tnp.max(tnp.sum(tnp.abs(A), axis=-2), axis=-1)
    s = tnp.maximum(0, tnp.ceil(tnp.log2(tnp.maximum(norm1, 1e-300) / _THETA13)))
    s = tnp.minimum(s, max_squarings)
    scale = tnp.power(np.asarray(2.0, dt), -s)
    As = A * tnp.astype(scale, dt)[..., None, None]
    b = _pade13()
    eye = np.broadcast_to(np.eye(n, dtype=dt), get_aval(A).shape)
    A2 = tnp.matmul(As, As)
    A4 = tnp.matmul(A2, A2)
    A6 = tnp.matmul(A4, A2)
    U = tnp.matmul(As, tnp.matmul(A6, b[13] * A6 + b[11] * A4 + b[9] * A2) +
                   b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)
    V = tnp.matmul(A6, b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + \
        b[2] * A2 + b[0] * eye
    R = D.solve(V - U, V + U)
    for k in range(max_squarings):
        R = tnp.where(tnp.greater(s, k)[..., None, None], tnp.matmul(R, R), R)
    return R


# re-exported: special matrices and the further decompositions live in their own modules
from ._linalg_special import (circulant, companion, convolution_matrix, dft,  # noqa: E402,F401
                              fiedler, fiedler_companion, hadamard, hankel, helmert, hilbert,
                              invhilbert, invpascal, leslie, pascal, toeplitz)
from ._linalg_more import (eigh_tridiagonal, expm_frechet, funm, hessenberg,  # noqa: E402,F401
                           polar, qr_multiply, rsf2csf, schur, solve_sylvester, sqrtm)


# the public names (helpers such as get_aval are imported, not exported)
__all__ = ["block_diag", "cho_factor", "cho_solve", "cholesky", "circulant", "companion",
           "convolution_matrix", "det", "dft", "eigh", "eigh_tridiagonal", "expm",
           "expm_frechet", "fiedler", "fiedler_companion", "funm", "hadamard", "hankel",
           "helmert", "hessenberg", "hilbert", "inv", "invhilbert", "invpascal", "leslie",
           "lu", "lu_factor", "lu_solve", "pascal", "polar", "qr", "qr_multiply",
           "rsf2csf", "schur", "solve", "solve_sylvester", "solve_triangular", "sqrtm",
           "svd", "toeplitz"]
