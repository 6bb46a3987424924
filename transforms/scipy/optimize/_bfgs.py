"""BFGS (Nocedal & Wright, algorithm 6.1) as one `lax.while_loop` over the inverse-Hessian
estimate, with the strong-Wolfe `line_search` choosing each step."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import api
from ... import lax
from ... import numpy as tnp
from ._line_search import line_search


class _BFGSState(NamedTuple):
    converged: object
    failed: object
    k: object
    nfev: object
    ngev: object
    x_k: object
    f_k: object
    g_k: object
    H_k: object
    old_old_fval: object
    ls_status: object


def _norm(g, order):
    if order == np.inf:
        return tnp.max(tnp.abs(g))
    if order == -np.inf:
        return tnp.min(tnp.abs(g))
    return tnp.sum(tnp.abs(g) ** order) ** (1.0 / order)


def minimize_bfgs(fun, x0, maxiter=None, norm=np.inf, gtol=1e-5, line_search_maxiter=10):
    """Minimise `fun` (a scalar function of a 1-D array) from `x0` by BFGS; returns the
    final state as `(converged, failed, k, nfev, ngev, x, f, g, H, status)` fields."""
    x0 = tnp.asarray(x0)
    if x0.ndim != 1:
        raise ValueError(f"minimize: x0 must be 1-dimensional, got shape {x0.shape}")
    if x0.dtype not in (np.float32, np.float64):
        x0 = tnp.astype(x0, np.float64)
    d = x0.shape[0]
    if maxiter is None:
        maxiter = 200 * d
    f0, g0 = api.value_and_grad(fun)(x0)
    f0 = tnp.asarray(f0)
    if f0.ndim != 0:
        raise ValueError(f"minimize: fun must return a scalar, got shape {f0.shape}")
    dt = x0.dtype
    eye = np.eye(d, dtype=dt)
    init = _BFGSState(converged=tnp.less(_norm(g0, norm), gtol), failed=tnp.asarray(False),
                      k=tnp.asarray(0, np.int32), nfev=tnp.asarray(1, np.int32),
                      ngev=tnp.asarray(1, np.int32), x_k=x0, f_k=f0, g_k=g0,
                      H_k=tnp.asarray(eye),
                      old_old_fval=f0 + tnp.sqrt(tnp.sum(g0 * g0)) / 2,
                      ls_status=tnp.asarray(0, np.int32))

    def cond(s):
        return tnp.logical_and(tnp.logical_and(tnp.logical_not(s.converged),
                                               tnp.logical_not(s.failed)),
                               tnp.less(s.k, maxiter))

    def body(s):
        p = -tnp.matmul(s.H_k, s.g_k)
        ls = line_search(fun, s.x_k, p, old_fval=s.f_k, old_old_fval=s.old_old_fval,
                         gfk=s.g_k, maxiter=line_search_maxiter)
        step = ls.a_k * p
        x1 = s.x_k + step
        y = ls.g_k - s.g_k
        ys = tnp.dot(y, step)
        # H' = (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, ρ = 1/yᵀs; skipped when yᵀs = 0 or
        # is not finite (the division is guarded so eager runs raise no warnings)
        usable = tnp.logical_and(tnp.not_equal(ys, 0), tnp.isfinite(ys))
        rho = 1.0 / tnp.where(usable, ys, 1.0)
        w = eye - rho * step[:, None] * y[None, :]
        H1 = tnp.matmul(tnp.matmul(w, s.H_k), tnp.transpose(w)) + \
            rho * step[:, None] * step[None, :]
        H1 = tnp.where(tnp.logical_and(usable, tnp.isfinite(rho)), H1, s.H_k)
        return _BFGSState(converged=tnp.less(_norm(ls.g_k, norm), gtol), failed=ls.failed,
                          k=s.k + 1, nfev=s.nfev + ls.nfev, ngev=s.ngev + ls.ngev, x_k=x1,
                          f_k=ls.f_k, g_k=ls.g_k, H_k=H1, old_old_fval=s.f_k,
                          ls_status=ls.status)

    s = lax.while_loop(cond, body, init)
    status = tnp.where(s.converged, 0, tnp.where(tnp.equal(s.k, maxiter), 1,
                                                 tnp.where(s.failed, 2 + s.ls_status, -1)))
    return s, tnp.astype(status, np.int32)
