"""`custom_linear_solve` and `custom_root`: solvers differentiated implicitly, as in JAX.

The solution is computed by the user's `solve` with its derivatives stopped, then attached
to the values it depends on through a `custom_vjp` whose backward pass solves the adjoint
system: for `x = A^-1 b` (A given as `matvec`), `b_bar = A^-T x_bar` and the parameters of
`matvec` get `-(dA/dtheta)^T (b_bar x^T)` by differentiating `matvec(x)`; for a root
`f(x, theta) = 0`, `theta_bar = -(df/dtheta)^T (df/dx)^-T x_bar`. Reverse mode (`grad`,
`vjp`) is supported; forward mode (`jvp`, `jacfwd`) is not here (JAX supports both).
"""
from __future__ import annotations

from .. import tree as tree_util
from ..core import Tracer
from .misc import stop_gradient

__all__ = ["custom_linear_solve", "custom_root"]


def _neg(t):
    from .elementwise import neg
    return tree_util.map(neg, t)


def _zeros_like(t):
    from .. import numpy as tnp
    return tree_util.map(tnp.zeros_like, t)


def _split_aux(out, has_aux, what):
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{what}: with has_aux=True, solve must return a pair (solution, aux)")
    return out


def custom_linear_solve(matvec, b, solve, transpose_solve=None, symmetric=False,
                        has_aux=False):
    """`solve(matvec, b)`, the solution `x` of `matvec(x) = b`, differentiated implicitly
    (as `jax.lax.custom_linear_solve`): gradients flow to `b` and to the values `matvec`
    closes over, never through the iterations of `solve`. The backward pass calls
    `transpose_solve(vecmat, x_bar)` (or `solve(matvec, x_bar)` when `symmetric`), where
    `vecmat` is the transpose of `matvec`. With `has_aux`, `solve` returns `(x, aux)` and so
    does this function."""
    from ..api_more import closure_convert
    from ..custom_derivatives import custom_vjp
    from ..api import vjp
    from ..api_extras import linear_transpose
    if transpose_solve is None and symmetric:
        transpose_solve = solve
    mv_conv, consts = closure_convert(matvec, b)
    x, aux = _split_aux(solve(matvec, b), has_aux, "custom_linear_solve")
    x = stop_gradient(x)
    if not consts and not any(isinstance(v, Tracer) for v in tree_util.leaves(b)):
        return (x, aux) if has_aux else x

    if transpose_solve is None:
        ts_conv, ts_consts = None, []
    else:
        # the adjoint solve, traced now: values it closes over (e.g. the matrix a direct
        # solver factorises) become explicit operands, so the backward pass can replay it
        if symmetric:
            def tsolve(r):
                return transpose_solve(matvec, r)
        else:
            f_t = linear_transpose(lambda v: mv_conv(v, *consts), x)

            def tsolve(r):
                return transpose_solve(lambda v: f_t(v)[0], r)
        ts_conv, ts_consts = closure_convert(tsolve, x)

    def attach(x, consts, ts_consts, b):
        return x

    def fwd(x, consts, ts_consts, b):
        return x, (x, consts, ts_consts)

    def bwd(res, x_bar):
        x_val, cs, tcs = res
        if ts_conv is None:
            raise TypeError("custom_linear_solve: transpose_solve is required for reverse-mode "
                            "differentiation (or pass symmetric=True)")
        lam = ts_conv(x_bar, *tcs)
        if has_aux and isinstance(lam, tuple) and len(lam) == 2:
            lam = lam[0]
        if cs:
            _, pull = vjp(lambda *c: mv_conv(x_val, *c), *cs)
            c_bar = list(_neg(list(pull(lam))))
        else:
            c_bar = []
        return _zeros_like(x_val), c_bar, _zeros_like(list(tcs)), lam

    att = custom_vjp(attach)
    att.defvjp(fwd, bwd)
    out = att(x, list(consts), list(ts_consts), b)
    return (out, aux) if has_aux else out


def custom_root(f, initial_guess, solve, tangent_solve, has_aux=False):
    """`solve(f, initial_guess)`, a root `x` of `f(x) = 0`, differentiated implicitly with
    respect to the values `f` closes over (as `jax.lax.custom_root`): the backward pass calls
    `tangent_solve(g, y)` to solve the linear system `g(v) = y` with `g` the transposed
    derivative of `f` at the root (for scalar `x`, `lambda g, y: y / g(1.0)` suffices). The
    initial guess gets no gradient. With `has_aux`, `solve` returns `(x, aux)`."""
    from ..api_more import closure_convert
    from ..custom_derivatives import custom_vjp
    from ..api import vjp
    f_conv, consts = closure_convert(f, initial_guess)
    x, aux = _split_aux(solve(f, initial_guess), has_aux, "custom_root")
    x = stop_gradient(x)
    if not consts:
        return (x, aux) if has_aux else x

    _, pull_x_now = vjp(lambda y: f_conv(y, *consts), x)
    # the adjoint solve at the root, traced now (see custom_linear_solve)
    ts_conv, ts_consts = closure_convert(
        lambda r: tangent_solve(lambda v: pull_x_now(v)[0], r), x)

    def attach(x, consts, ts_consts):
        return x

    def fwd(x, consts, ts_consts):
        return x, (x, consts, ts_consts)

    def bwd(res, x_bar):
        x_val, cs, tcs = res
        lam = ts_conv(x_bar, *tcs)
        _, pull_c = vjp(lambda *c: f_conv(x_val, *c), *cs)
        return _zeros_like(x_val), list(_neg(list(pull_c(lam)))), _zeros_like(list(tcs))

    att = custom_vjp(attach)
    att.defvjp(fwd, bwd)
    out = att(x, list(consts), list(ts_consts))
    return (out, aux) if has_aux else out
