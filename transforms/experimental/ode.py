"""`jax.experimental.ode.odeint`: adaptive Dormand-Prince (RK45) integration with the adjoint
method for gradients.

    ys = odeint(func, y0, t, *args)      # func(y, t, *args) -> dy/dt, ys[i] = y(t[i])

The solver takes embedded 5(4) Runge-Kutta steps, accepting a step when the RMS of its error
estimate relative to `atol + rtol * |y|` is at most 1 and choosing the next step size from it;
outputs at the requested times come from a 4th-order interpolant of the step that covers them.
Reverse-mode derivatives (with respect to `y0`, `t` and `args`) solve the adjoint system
backwards in time with the same solver (Pontryagin; Chen et al., "Neural Ordinary
Differential Equations", 2018), so memory does not grow with the number of steps. Forward
mode is not supported (as in JAX).
"""
from __future__ import annotations

import numpy as np

from .. import tree as tree_util

__all__ = ["odeint"]

# Dormand-Prince 5(4) tableau
_ALPHA = (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_BETA = ((1 / 5,),
         (3 / 40, 9 / 40),
         (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
         (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_C_SOL = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_C_ERR = (35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
          -2187 / 6784 + 12231 / 42400, 11 / 84 - 649 / 6300, -1.0 / 60.0)
# the solution at the middle of a step (Shampine's dense output), for the interpolant
_C_MID = (6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2,
          -2691868925 / 45128329728 / 2, 187940372067 / 1594534317056 / 2,
          -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2)


def _tnp():
    from .. import numpy as tnp
    return tnp


def _ravel(tree):
    tnp = _tnp()
    leaves, treedef = tree_util.flatten(tree)
    leaves = [tnp.asarray(x) for x in leaves]
    shapes = [x.shape for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = tnp.concatenate([tnp.ravel(x) for x in leaves]) if leaves else tnp.zeros((0,))

    def unravel(v):
        out, i = [], 0
        for s, n in zip(shapes, sizes):
            out.append(tnp.reshape(v[i:i + n], s))
            i += n
        return tree_util.unflatten(treedef, out)
    return flat, unravel


def _combine(coeffs, ks):
    acc = None
    for c, k in zip(coeffs, ks):
        if c == 0.0:
            continue
        term = c * k
        acc = term if acc is None else acc + term
    return acc


def _rk_step(f, y0, f0, t0, dt):
    ks = [f0]
    for a, row in zip(_ALPHA, _BETA):
        yi = y0 + dt * _combine(row, ks)
        ks.append(f(yi, t0 + dt * a))
    y1 = y0 + dt * _combine(_C_SOL, ks)
    err = dt * _combine(_C_ERR, ks)
    return y1, ks[-1], err, ks


def _interp_coeffs(y0, y1, ks, dt):
    """Coefficients (a, b, c, d, e) of the quartic through the step, in the fraction s of it:
    y(s) = (((a s + b) s + c) s + d) s + e."""
    tnp = _tnp()
    y_mid = y0 + dt * _combine(_C_MID, ks)
    dy0, dy1 = ks[0], ks[-1]
    a = -2.0 * dt * dy0 + 2.0 * dt * dy1 - 8.0 * y0 - 8.0 * y1 + 16.0 * y_mid
    b = 5.0 * dt * dy0 - 3.0 * dt * dy1 + 18.0 * y0 + 14.0 * y1 - 32.0 * y_mid
    c = -4.0 * dt * dy0 + dt * dy1 - 11.0 * y0 - 5.0 * y1 + 16.0 * y_mid
    return tnp.stack([a, b, c, dt * dy0, y0])


def _initial_step(f, t0, y0, order, rtol, atol, f0):
    tnp = _tnp()
    scale = atol + tnp.abs(y0) * rtol
    d0 = tnp.linalg.norm(y0 / scale)
    d1 = tnp.linalg.norm(f0 / scale)
    h0 = tnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / tnp.where(d1 == 0, 1.0, d1))
    f1 = f(y0 + h0 * f0, t0 + h0)
    d2 = tnp.linalg.norm((f1 - f0) / scale) / h0
    big = tnp.maximum(d1, d2)
    h1 = tnp.where((d1 <= 1e-15) & (d2 <= 1e-15), tnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / tnp.where(big == 0, 1.0, big)) ** (1.0 / (order + 1.0)))
    return tnp.minimum(100.0 * h0, h1)


def _next_step(dt, ratio, safety=0.9, ifactor=10.0, dfactor=0.2, order=5.0):
    tnp = _tnp()
    dfactor = tnp.where(ratio < 1, 1.0, dfactor)
    safe = tnp.where(ratio == 0, 1.0, ratio)
    factor = tnp.minimum(ifactor, tnp.maximum(safe ** (-1.0 / order) * safety, dfactor))
    return tnp.where(ratio == 0, dt * ifactor, dt * factor)


def _solve(f, y0, ts, rtol, atol, mxstep, hmax):
    """ys (len(ts), n) for flat y0 (n,) and the flat dynamics f(y, t)."""
    from .. import lax
    tnp = _tnp()
    dtype = y0.dtype
    f0 = f(y0, ts[0])
    dt = tnp.clip(_initial_step(f, ts[0], y0, 4, rtol, atol, f0), 0.0, hmax).astype(dtype)
    init = (y0, f0, ts[0].astype(dtype), dt, ts[0].astype(dtype),
            tnp.stack([y0] * 5))

    def to_target(carry, target):
        def cond(s):
            i, _, _, t, h, _, _ = s
            return (t < target) & (i < mxstep) & (h > 0)

        def body(s):
            i, y, fy, t, h, last_t, coef = s
            ny, nf, err, ks = _rk_step(f, y, fy, t, h)
            tol = atol + rtol * tnp.maximum(tnp.abs(y), tnp.abs(ny))
            ratio = tnp.sqrt(tnp.mean((err / tol) ** 2))
            ncoef = _interp_coeffs(y, ny, ks, h)
            nh = tnp.clip(_next_step(h, ratio), 0.0, hmax).astype(dtype)
            ok = ratio <= 1.0
            return (i + 1, tnp.where(ok, ny, y), tnp.where(ok, nf, fy),
                    tnp.where(ok, t + h, t), nh, tnp.where(ok, t, last_t),
                    tnp.where(ok, ncoef, coef))

        out = lax.while_loop(cond, body, (np.int64(0),) + tuple(carry))
        _, y, fy, t, h, last_t, coef = out
        s = (target - last_t) / tnp.where(t == last_t, 1.0, t - last_t)
        y_t = (((coef[0] * s + coef[1]) * s + coef[2]) * s + coef[3]) * s + coef[4]
        return (y, fy, t, h, last_t, coef), y_t

    _, ys = lax.scan(to_target, init, ts[1:])
    return tnp.concatenate([y0[None], ys])


def odeint(func, y0, t, *args, rtol=1.4e-8, atol=1.4e-8, mxstep=np.inf, hmax=np.inf):
    """Integrate `dy/dt = func(y, t, *args)` from `y0` (an array or pytree) at the strictly
    increasing float times `t`; returns the solution at each time, stacked on a new leading
    axis (pytree as `y0`). `rtol`/`atol`: local error tolerances; `mxstep`: maximum steps per
    output time; `hmax`: maximum step size. Differentiable in reverse mode with respect to
    `y0`, `t` and `args` by the adjoint method (see the module docstring)."""
    from ..api_more import closure_convert
    tnp = _tnp()
    t = tnp.asarray(t)
    if not np.issubdtype(t.dtype, np.floating):
        raise TypeError(f"odeint: t must be an array of floats, got dtype {t.dtype}")
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"odeint: t must be a non-empty 1-d array of times, got shape {t.shape}")
    conv, consts = closure_convert(func, y0, t[0], *args)
    flat0, unravel = _ravel(y0)
    ys = _odeint_flat(conv, unravel, float(rtol), float(atol), mxstep, hmax, flat0, t,
                      list(args), list(consts))
    return _tnp_vmap_unravel(unravel, ys)


def _tnp_vmap_unravel(unravel, ys):
    from ..interpreters.batching import vmap
    return vmap(unravel)(ys)


def _flat_func(conv, unravel, args, consts):
    def f(y, t):
        out = conv(unravel(y), t, *args, *consts)
        return _ravel(out)[0]
    return f


def _odeint_flat(conv, unravel, rtol, atol, mxstep, hmax, y0, ts, args, consts):
    from ..custom_derivatives import custom_vjp

    def primal(y0, ts, args, consts):
        return _solve(_flat_func(conv, unravel, args, consts), y0, ts, rtol, atol, mxstep, hmax)

    def fwd(y0, ts, args, consts):
        ys = primal(y0, ts, args, consts)
        return ys, (ys, ts, args, consts)

    def bwd(res, g):
        return _adjoint(conv, unravel, rtol, atol, mxstep, hmax, res, g)

    solver = custom_vjp(primal)
    solver.defvjp(fwd, bwd)
    return solver(y0, ts, args, consts)


def _adjoint(conv, unravel, rtol, atol, mxstep, hmax, res, g):
    """Cotangents of (y0, ts, args, consts): integrate the adjoint system backwards between
    consecutive output times, adding each output's cotangent on the way."""
    from .. import lax
    from ..api import vjp
    tnp = _tnp()
    ys, ts, args, consts = res
    params = (list(args), list(consts))
    f = _flat_func(conv, unravel, args, consts)

    def aug(state, t, p):
        y, y_bar = state[0], state[1]
        # integrated backwards (in s = -t); cotangents are taken with respect to the time the
        # dynamics are evaluated at
        y_dot, pull = vjp(lambda yy, tt, pp: _flat_func(conv, unravel, pp[0], pp[1])(yy, tt),
                          y, -t, p)
        yb, tb, pb = pull(y_bar)
        return (-y_dot, yb, tb, pb)

    def at(a, i):       # a[i] for a traced index (a may be a NumPy array)
        return lax.dynamic_index_in_dim(a, i, 0, keepdims=False)

    def step(carry, i):
        y_bar, t0_bar, p_bar = carry
        y_i, t_i, t_prev = at(ys, i), at(ts, i), at(ts, i - 1)
        t_bar = tnp.dot(f(y_i, t_i), at(g, i))
        t0_bar = t0_bar - t_bar
        state0 = (y_i, y_bar, t0_bar, p_bar)
        flat_s, unr = _ravel(state0)

        def aug_flat(s, t):
            st = unr(s)
            return _ravel(aug(st, t, params))[0]
        out = _solve(aug_flat, flat_s, tnp.stack([-t_i, -t_prev]), rtol, atol, mxstep, hmax)
        _, y_bar, t0_bar, p_bar = unr(out[1])
        y_bar = y_bar + at(g, i - 1)
        return (y_bar, t0_bar, p_bar), t_bar

    n = ts.shape[0]
    zeros_p = tree_util.map(tnp.zeros_like, params)
    init = (g[-1], tnp.zeros((), ts.dtype), zeros_p)
    if n == 1:
        return g[0], tnp.zeros_like(ts), zeros_p[0], zeros_p[1]
    (y_bar, t0_bar, p_bar), rev_t_bar = lax.scan(step, init, np.arange(n - 1, 0, -1))
    ts_bar = tnp.concatenate([t0_bar[None], rev_t_bar[::-1]])
    return y_bar, ts_bar, p_bar[0], p_bar[1]
