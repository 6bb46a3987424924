"""`scipy.optimize.minimize` with method "BFGS" and `line_search` (`jax.scipy.optimize`).

As JAX's: `x0` is 1-D, the result is an `OptimizeResults` named tuple (x, success, status,
fun, jac, hess_inv, nfev, njev, nit), the iteration is a `lax.while_loop`, so `minimize`
runs eagerly, under `jit` and under `vmap` (over x0 or over arrays `fun` closes over).
Differentiating through the solve is not supported (as JAX). The line search is a
strong-Wolfe bracket-and-zoom search of this library's own (cubic interpolation with a
bisection safeguard), so iteration counts may differ from JAX's and SciPy's while the
minimiser agrees to the tolerance."""
from __future__ import annotations

from typing import NamedTuple

from ._bfgs import minimize_bfgs
from ._line_search import LineSearchResults, line_search

__all__ = ["minimize", "OptimizeResults", "line_search", "LineSearchResults"]


class OptimizeResults(NamedTuple):
    """The result of `minimize` (`jax.scipy.optimize.OptimizeResults`): `x` the solution,
    `success` whether it converged without a line-search failure, `status` (0 converged,
    1 maximum iterations, 2 + line-search status when the line search failed), `fun` and
    `jac` the value and gradient at `x`, `hess_inv` the inverse-Hessian estimate, `nfev`
    and `njev` the evaluation counts, `nit` the iterations."""
    x: object
    success: object
    status: object
    fun: object
    jac: object
    hess_inv: object
    nfev: object
    njev: object
    nit: object


def minimize(fun, x0, args=(), *, method, tol=None, options=None):
    """Minimise a scalar function of one 1-D array, as `jax.scipy.optimize.minimize`.

    `fun(x, *args)` must be differentiable by `grad`; `method` must be "BFGS" (case
    insensitive; JAX's only other method is experimental L-BFGS, not provided); `tol` sets
    the gradient tolerance `gtol`; `options` may hold `maxiter` (default 200·len(x0)),
    `norm` (default inf: the gradient's max-abs), `gtol` (default 1e-5) and
    `line_search_maxiter` (default 10). Compiles and batches (the loop is a
    `lax.while_loop`); not differentiable through the solve."""
    if not isinstance(method, str):
        raise TypeError(f"minimize: method must be a string, got {method!r}")
    if options is None:
        options = {}
    if not isinstance(args, tuple):
        raise TypeError(f"minimize: args must be a tuple, got {type(args).__name__}")
    options = dict(options)
    if tol is not None:
        options.setdefault("gtol", tol)
    unknown = set(options) - {"maxiter", "norm", "gtol", "line_search_maxiter"}
    if unknown:
        raise TypeError(f"minimize: unknown options {sorted(unknown)}")

    def fun_x(x):
        return fun(x, *args)

    if method.lower() != "bfgs":
        raise ValueError(f"minimize: method {method!r} is not supported (only 'BFGS')")
    s, status = minimize_bfgs(fun_x, x0, **options)
    return OptimizeResults(x=s.x_k, success=s.converged & ~s.failed, status=status,
                           fun=s.f_k, jac=s.g_k, hess_inv=s.H_k, nfev=s.nfev, njev=s.ngev,
                           nit=s.k)
