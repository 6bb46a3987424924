"""Further `scipy.linalg` decompositions and matrix functions (part of
`transforms.scipy.linalg`).

`qr_multiply`, `polar`, `expm_frechet`, `solve_sylvester` and `eigh_tridiagonal` are
compositions of this library's QR, SVD, expm, solve and eigh, so they compile and batch,
and differentiate where those do. `schur`, `hessenberg`, `sqrtm`, `funm` and `rsf2csf` have
no primitive here: they run eagerly through SciPy's LAPACK wrappers on concrete arrays and
raise a TypeError when traced (under jit, grad or vmap)."""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..core import Tracer, get_aval
from ..lax import decompositions as D

__all__ = ["qr_multiply", "polar", "expm_frechet", "solve_sylvester", "eigh_tridiagonal",
           "schur", "hessenberg", "sqrtm", "funm", "rsf2csf"]


def _m(a):
    a = tnp.asarray(a)
    return a if get_aval(a).dtype in (np.float32, np.float64) else tnp.astype(a, np.float64)


def qr_multiply(a, c, mode="right", pivoting=False, conjugate=False, overwrite_a=False,
                overwrite_c=False):
    """`(c @ q, r)` (mode 'right') or `(q @ c, r)` (mode 'left') with the economic QR
    factors of `a`, as `scipy.linalg.qr_multiply` (a 1-D `c` is treated as a row, resp.
    column, and the result is 1-D). Differentiates where QR does, batches and compiles."""
    if pivoting:
        raise NotImplementedError("qr_multiply: pivoting is not supported")
    if mode not in ("left", "right"):
        raise ValueError(f"qr_multiply: mode must be 'left' or 'right', got {mode!r}")
    a, c = _m(a), _m(c)
    q, r = D.qr(a, full_matrices=False)
    vec = get_aval(c).ndim == 1
    if mode == "right":
        out = tnp.matmul(c[None, :] if vec else c, q)
    else:
        out = tnp.matmul(q, c[:, None] if vec else c)
    return (out[0] if mode == "right" else out[:, 0]) if vec else out, r


def polar(a, side="right"):
    """The polar decomposition `(u, p)`: a = u p ('right') or p u ('left') with u
    orthonormal and p symmetric positive semi-definite, as `jax.scipy.linalg.polar`
    (computed from the SVD). Differentiates where the SVD does, batches and compiles."""
    if side not in ("right", "left"):
        raise ValueError(f"polar: side must be 'right' or 'left', got {side!r}")
    a = _m(a)
    u, s, vh = tnp.linalg.svd(a, full_matrices=False)
    unitary = tnp.matmul(u, vh)
    if side == "right":
        v = tnp.swapaxes(vh, -1, -2)
        p = tnp.matmul(v * s[..., None, :], vh)
    else:
        p = tnp.matmul(u * s[..., None, :], tnp.swapaxes(u, -1, -2))
    return unitary, p


def expm_frechet(A, E, method=None, compute_expm=True, check_finite=True):
    """The Fréchet derivative of the matrix exponential at `A` in direction `E` (and e^A
    when `compute_expm`), as `jax.scipy.linalg.expm_frechet`: the upper-right block of
    expm([[A, E], [0, A]]). Differentiates, batches and compiles."""
    from .linalg import expm
    A, E = _m(A), _m(E)
    n = get_aval(A).shape[-1]
    if get_aval(A).shape[-2:] != (n, n) or get_aval(E).shape[-2:] != (n, n):
        raise ValueError(f"expm_frechet: A and E must be square matrices of one size, got "
                         f"{get_aval(A).shape} and {get_aval(E).shape}")
    top = tnp.concatenate([A, E], axis=-1)
    bottom = tnp.concatenate([tnp.zeros_like(A), A], axis=-1)
    big = expm(tnp.concatenate([top, bottom], axis=-2))
    L = big[..., :n, n:]
    return (big[..., :n, :n], L) if compute_expm else L


def solve_sylvester(a, b, q):
    """X with a X + X b = q, as `scipy.linalg.solve_sylvester`, through the Kronecker
    system (I ⊗ a + bᵀ ⊗ I) vec X = vec q: O((nm)³) work, meant for the small matrices it
    is usually used with. Differentiates, compiles; 2-D arguments only."""
    a, b, q = _m(a), _m(b), _m(q)
    n, m = get_aval(a).shape[0], get_aval(b).shape[0]
    if get_aval(q).shape != (n, m):
        raise ValueError(f"solve_sylvester: q must have shape {(n, m)}, got "
                         f"{get_aval(q).shape}")
    K = tnp.kron(np.eye(m), a) + tnp.kron(tnp.transpose(b), np.eye(n))
    vec = tnp.linalg.solve(K, tnp.reshape(tnp.transpose(q), (n * m,)))
    return tnp.transpose(tnp.reshape(vec, (m, n)))


def eigh_tridiagonal(d, e, *, eigvals_only=False, select="a", select_range=None,
                     max_ev=0, tol=None):
    """Eigenvalues (ascending), and eigenvectors unless `eigvals_only`, of the symmetric
    tridiagonal matrix with diagonal `d` and off-diagonal `e`, as
    `jax.scipy.linalg.eigh_tridiagonal` (which returns eigenvalues only); `select` 'a' (all)
    or 'i' (the static index range `select_range`). Uses the dense symmetric eigensolver:
    differentiates, batches and compiles."""
    d, e = _m(d), _m(e)
    n = get_aval(d).shape[-1]
    if get_aval(e).shape[-1] != n - 1:
        raise ValueError(f"eigh_tridiagonal: e must have length len(d) - 1 = {n - 1}, got "
                         f"{get_aval(e).shape[-1]}")
    A = tnp.diag(d) + tnp.diag(e, 1) + tnp.diag(e, -1) if n > 1 else tnp.diag(d)
    w, v = tnp.linalg.eigh(A)
    if select == "i":
        lo, hi = (int(i) for i in select_range)
        w, v = w[lo:hi + 1], v[:, lo:hi + 1]
    elif select != "a":
        raise NotImplementedError(f"eigh_tridiagonal: select must be 'a' or 'i', got "
                                  f"{select!r}")
    return w if eigvals_only else (w, v)


def _concrete(name, *xs):
    for x in xs:
        if isinstance(x, Tracer):
            raise TypeError(f"{name} runs eagerly through SciPy (there is no primitive for "
                            "it): call it on concrete arrays, outside jit, grad and vmap")
    return [np.asarray(x) for x in xs]


def _scipy_linalg():
    import scipy.linalg
    return scipy.linalg


def schur(a, output="real"):
    """The Schur decomposition `(t, z)` with a = z t zᴴ, as `jax.scipy.linalg.schur`.
    Eager only (SciPy's LAPACK gees on concrete arrays; raises when traced)."""
    (a,) = _concrete("schur", a)
    return tuple(tnp.asarray(x) for x in _scipy_linalg().schur(a, output=output))


def hessenberg(a, *, calc_q=False, overwrite_a=False, check_finite=True):
    """The upper Hessenberg form `h` (and `(h, q)` with a = q h qᴴ when `calc_q`), as
    `jax.scipy.linalg.hessenberg`. Eager only (SciPy's LAPACK gehrd; raises when
    traced)."""
    (a,) = _concrete("hessenberg", a)
    out = _scipy_linalg().hessenberg(a, calc_q=calc_q)
    return tuple(tnp.asarray(x) for x in out) if calc_q else tnp.asarray(out)


def sqrtm(A, blocksize=1):
    """The principal matrix square root, as `jax.scipy.linalg.sqrtm` (via the Schur form).
    Eager only (SciPy's; raises when traced); may be complex for matrices with negative
    eigenvalues."""
    (A,) = _concrete("sqrtm", A)
    out = _scipy_linalg().sqrtm(A)
    return tnp.asarray(out[0] if isinstance(out, tuple) else out)


def funm(A, func, disp=True):
    """f(A) for a scalar function `func` applied through the Schur-Parlett recurrence, as
    `jax.scipy.linalg.funm`. Eager only (SciPy's; `func` receives NumPy arrays; raises
    when traced)."""
    (A,) = _concrete("funm", A)
    out = _scipy_linalg().funm(A, func, disp=disp)
    return tnp.asarray(out if disp else out[0])


def rsf2csf(T, Z, check_finite=True):
    """The complex Schur form from the real one `(T, Z)`, as
    `jax.scipy.linalg.rsf2csf`. Eager only (SciPy's; raises when traced)."""
    T, Z = _concrete("rsf2csf", T, Z)
    return tuple(tnp.asarray(x) for x in _scipy_linalg().rsf2csf(T, Z))
