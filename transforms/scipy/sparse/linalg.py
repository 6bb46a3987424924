"""Iterative linear solvers (`jax.scipy.sparse.linalg`): `cg`, `bicgstab` and restarted
`gmres`, each a `lax.while_loop`, with JAX's signature `(A, b, x0=None, *, tol, atol,
maxiter, M)` and return value `(x, None)`.

`A` and the preconditioner `M` are each a square matrix or a function computing the
product with a vector (a "matrix-free" operator). `b` is a 1-D array (JAX also accepts
pytrees of arrays; flatten them with `transforms.flatten_util`-style raveling first). The
solvers run eagerly, under `jit` and under `vmap`; differentiating through the solve is
not supported here (JAX defines it through `custom_linear_solve`)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import lax
from ... import numpy as tnp
from ...core import get_aval
from ...lax import decompositions as D

__all__ = ["cg", "bicgstab", "gmres"]


def _operator(A, name, what):
    if callable(A):
        return A
    A = tnp.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name}: {what} must be a square matrix or a function, got shape "
                         f"{A.shape}")
    return lambda v: tnp.matmul(A, v)


def _setup(name, A, b, x0, M, maxiter, default_iters):
    b = tnp.asarray(b)
    if b.ndim != 1:
        raise ValueError(f"{name}: b must be 1-dimensional, got shape {b.shape}")
    if b.dtype not in (np.float32, np.float64):
        b = tnp.astype(b, np.float64)
    x0 = tnp.zeros_like(b) if x0 is None else tnp.astype(tnp.asarray(x0), b.dtype)
    if get_aval(x0).shape != get_aval(b).shape:
        raise ValueError(f"{name}: x0 has shape {get_aval(x0).shape}, b has shape {b.shape}")
    Aop = _operator(A, name, "A")
    Mop = (lambda v: v) if M is None else _operator(M, name, "M")
    if maxiter is None:
        maxiter = default_iters(b.shape[0])
    return Aop, Mop, b, x0, int(maxiter)


def _threshold(b, tol, atol):
    # converged when ‖r‖ <= max(tol ‖b‖, atol), compared squared to skip a square root
    bnorm2 = tnp.sum(b * b)
    return tnp.maximum(tol * tol * bnorm2, atol * atol)


def _safe_div(num, den):
    ok = tnp.not_equal(den, 0)
    return tnp.where(ok, num / tnp.where(ok, den, 1.0), 0.0)


class _CG(NamedTuple):
    x: object
    r: object
    z: object
    p: object
    rz: object
    k: object


def cg(A, b, x0=None, *, tol=1e-5, atol=0.0, maxiter=None, M=None):
    """Conjugate gradients for a symmetric positive-definite `A`, as
    `jax.scipy.sparse.linalg.cg`: returns `(x, None)`. Stops when ‖b − A x‖ ≤
    max(tol‖b‖, atol) or after `maxiter` iterations (default 10·len(b)); `M` is a
    preconditioner approximating A⁻¹. Compiles and batches; not differentiable through the
    solve."""
    Aop, Mop, b, x0, maxiter = _setup("cg", A, b, x0, M, maxiter, lambda n: 10 * n)
    thresh = _threshold(b, tol, atol)
    r0 = b - Aop(x0)
    z0 = Mop(r0)

    def cond(s):
        return tnp.logical_and(tnp.greater(tnp.sum(s.r * s.r), thresh),
                               tnp.less(s.k, maxiter))

    def body(s):
        Ap = Aop(s.p)
        alpha = _safe_div(s.rz, tnp.dot(s.p, Ap))
        x = s.x + alpha * s.p
        r = s.r - alpha * Ap
        z = Mop(r)
        rz = tnp.dot(r, z)
        beta = _safe_div(rz, s.rz)
        return _CG(x, r, z, z + beta * s.p, rz, s.k + 1)

    s = lax.while_loop(cond, body, _CG(x0, r0, z0, z0, tnp.dot(r0, z0),
                                       tnp.asarray(0, np.int32)))
    return s.x, None


class _BiCGStab(NamedTuple):
    x: object
    r: object
    rhat: object
    p: object
    v: object
    rho: object
    alpha: object
    omega: object
    k: object


def bicgstab(A, b, x0=None, *, tol=1e-5, atol=0.0, maxiter=None, M=None):
    """The stabilised bi-conjugate gradient method for a general square `A`, as
    `jax.scipy.sparse.linalg.bicgstab`: returns `(x, None)`. Same stopping rule and
    defaults as `cg`; `M` is a right preconditioner. Compiles and batches; not
    differentiable through the solve. A breakdown (a zero inner product) stops the
    iteration where it is, as JAX's."""
    Aop, Mop, b, x0, maxiter = _setup("bicgstab", A, b, x0, M, maxiter, lambda n: 10 * n)
    thresh = _threshold(b, tol, atol)
    r0 = b - Aop(x0)
    one = tnp.ones((), b.dtype)
    zero = tnp.zeros_like(b)

    def cond(s):
        live = tnp.logical_and(tnp.not_equal(s.rho, 0), tnp.not_equal(s.omega, 0))
        return tnp.logical_and(tnp.logical_and(tnp.greater(tnp.sum(s.r * s.r), thresh),
                                               tnp.less(s.k, maxiter)), live)

    def body(s):
        rho = tnp.dot(s.rhat, s.r)
        beta = _safe_div(rho, s.rho) * _safe_div(s.alpha, s.omega)
        p = s.r + beta * (s.p - s.omega * s.v)
        phat = Mop(p)
        v = Aop(phat)
        alpha = _safe_div(rho, tnp.dot(s.rhat, v))
        h = s.x + alpha * phat
        sres = s.r - alpha * v
        shat = Mop(sres)
        t = Aop(shat)
        omega = _safe_div(tnp.dot(t, sres), tnp.dot(t, t))
        # stop early (omega = 0 ends the loop) once the half step already converged
        half_ok = tnp.less_equal(tnp.sum(sres * sres), thresh)
        x = tnp.where(half_ok, h, h + omega * shat)
        r = tnp.where(half_ok, sres, sres - omega * t)
        omega = tnp.where(half_ok, 1.0, omega)
        rho = tnp.where(tnp.equal(rho, 0), 0.0, rho)
        return _BiCGStab(x, r, s.rhat, p, v, rho, alpha, omega, s.k + 1)

    s = lax.while_loop(cond, body, _BiCGStab(x0, r0, r0, zero, zero, one, one, one,
                                             tnp.asarray(0, np.int32)))
    return s.x, None


class _GMRES(NamedTuple):
    x: object
    res2: object
    k: object


def gmres(A, b, x0=None, *, tol=1e-5, atol=0.0, restart=20, maxiter=None, M=None,
          solve_method="batched"):
    """Restarted GMRES for a general square `A`, as `jax.scipy.sparse.linalg.gmres`:
    returns `(x, None)`. Each cycle builds a `restart`-dimensional Krylov basis of the
    left-preconditioned operator M A by Arnoldi with twice-applied classical Gram-Schmidt
    (a `fori_loop`) and
    solves the small least-squares problem; `maxiter` (default 10·len(b)) counts restart
    cycles, as JAX's. `solve_method` is accepted for compatibility ('batched' and
    'incremental' compute the same solution here). Compiles and batches; not
    differentiable through the solve."""
    if solve_method not in ("batched", "incremental"):
        raise ValueError(f"gmres: solve_method must be 'batched' or 'incremental', got "
                         f"{solve_method!r}")
    Aop, Mop, b, x0, maxiter = _setup("gmres", A, b, x0, M, maxiter, lambda n: 10 * n)
    n = b.shape[0]
    m = max(1, min(int(restart), n))
    dt = b.dtype
    # the stopping rule on the preconditioned residual, as JAX's
    mb = Mop(b)
    thresh = _threshold(mb, tol, atol)

    def residual(x):
        r = Mop(b - Aop(x))
        return r, tnp.sum(r * r)

    def cycle(x):
        r, r2 = residual(x)
        beta = tnp.sqrt(r2)
        V0 = tnp.zeros((m + 1, n), dt)
        V0 = V0.at[0].set(_safe_div(r, beta))
        Ht0 = tnp.zeros((m, m + 1), dt)     # H transposed: column j is row j here

        def arnoldi(j, carry):
            V, Ht = carry
            w = Mop(Aop(V[j]))
            # classical Gram-Schmidt applied twice ("CGS2", as accurate as modified
            # Gram-Schmidt and loop-free); the rows of V past j are still zero
            h1 = tnp.matmul(V, w)
            w = w - tnp.matmul(tnp.transpose(V), h1)
            h2 = tnp.matmul(V, w)
            w = w - tnp.matmul(tnp.transpose(V), h2)
            hcol = h1 + h2
            hnext = tnp.sqrt(tnp.sum(w * w))
            hcol = hcol.at[j + 1].set(hnext)
            V = V.at[j + 1].set(_safe_div(w, hnext))
            return V, Ht.at[j].set(hcol)

        V, Ht = lax.fori_loop(0, m, arnoldi, (V0, Ht0))
        e1 = tnp.zeros((m + 1,), dt).at[0].set(beta)
        y = _lstsq(tnp.transpose(Ht), e1)
        return x + tnp.matmul(tnp.transpose(V[:m]), y)

    def cond(s):
        return tnp.logical_and(tnp.greater(s.res2, thresh), tnp.less(s.k, maxiter))

    def body(s):
        x = cycle(s.x)
        return _GMRES(x, residual(x)[1], s.k + 1)

    s = lax.while_loop(cond, body, _GMRES(x0, residual(x0)[1], tnp.asarray(0, np.int32)))
    return s.x, None


def _lstsq(H, e):
    """argmin ‖H y − e‖ for the (m+1)×m Hessenberg matrix by QR. After a breakdown the
    later columns of H are zero, as are the basis vectors they multiply, so their zero
    pivots are replaced by 1: the value given to those y entries does not matter."""
    Q, R = D.qr(H, full_matrices=False)
    d = tnp.diagonal(R)
    tiny = np.finfo(get_aval(H).dtype).tiny
    m = get_aval(H).shape[1]
    R = R + tnp.diag(tnp.where(tnp.less(tnp.abs(d), tiny), 1.0 - d, 0.0)) * np.ones((m, m))
    rhs = tnp.matmul(tnp.transpose(Q), e)
    return D.triangular_solve(R, rhs[:, None], left_side=True, lower=False)[:, 0]
