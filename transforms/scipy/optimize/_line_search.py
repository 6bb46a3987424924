"""A strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6) written as one
`lax.while_loop`, so it runs eagerly and under `jit`: each step either widens the bracket or
narrows it (`zoom`), evaluating the objective and its gradient once per step."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import api
from ... import lax
from ... import numpy as tnp


class LineSearchResults(NamedTuple):
    """What `line_search` found: `a_k` the step, `f_k`/`g_k` the value and gradient at
    `xk + a_k pk`, counts of evaluations, `failed` and a `status` (0 found, 1 ran out of
    iterations, 2 the direction is not a descent direction)."""
    failed: object
    nit: object
    nfev: object
    ngev: object
    k: object
    a_k: object
    f_k: object
    g_k: object
    status: object


class _State(NamedTuple):
    i: object
    done: object
    zooming: object
    a_try: object     # the step the next iteration evaluates while bracketing
    a_prev: object    # the previous bracketing step, its phi, slope and gradient
    phi_prev: object
    dphi_prev: object
    g_prev: object
    a_lo: object      # the zoom interval: lo satisfies sufficient decrease, phi_lo lowest
    phi_lo: object
    dphi_lo: object
    a_hi: object
    phi_hi: object
    dphi_hi: object
    a_star: object
    phi_star: object
    g_star: object
    g_lo: object


def _safe_div(num, den):
    ok = tnp.not_equal(den, 0)
    return tnp.where(ok, num / tnp.where(ok, den, 1.0), np.nan)


def _cubic_min(a, fa, da, b, fb, db):
    """The minimiser of the cubic matching values and slopes at a and b (nan if none; the
    divisions are guarded so eager evaluation raises no warnings)."""
    d1 = da + db - 3 * _safe_div(fa - fb, a - b)
    disc = d1 * d1 - da * db
    d2 = tnp.sign(b - a) * tnp.sqrt(tnp.maximum(tnp.where(tnp.isnan(disc), -1.0, disc), 0))
    t = b - (b - a) * _safe_div(db + d2 - d1, db - da + 2 * d2)
    return tnp.where(tnp.greater_equal(disc, 0), t, np.nan)


def line_search(f, xk, pk, old_fval=None, old_old_fval=None, gfk=None, c1=1e-4, c2=0.9,
                maxiter=20):
    """A step length along `pk` from `xk` satisfying the strong Wolfe conditions
    (`jax.scipy.optimize.line_search`'s contract: returns `LineSearchResults`).

    The first trial step is min(1, 2.02 (f(xk) − old_old_fval) / f'(0)) as SciPy's; the
    bracket widens by doubling; the zoom phase takes the safeguarded cubic interpolant's
    minimiser (bisection when it falls outside the middle 80% of the interval). On failure
    the lowest point found that satisfies sufficient decrease is returned (step 0 if none).
    Runs under `jit` (one `while_loop`); differentiating through it is not supported."""
    xk = tnp.asarray(xk)
    pk = tnp.asarray(pk)
    vg = api.value_and_grad(f)
    if old_fval is None or gfk is None:
        phi0, g0 = vg(xk)
        extra = 1
    else:
        phi0, g0 = tnp.asarray(old_fval), tnp.asarray(gfk)
        extra = 0
    dt = phi0.dtype
    dphi0 = tnp.dot(g0, pk)
    if old_old_fval is None:
        a1 = tnp.asarray(1.0, dt)
    else:
        cand = 1.01 * 2 * _safe_div(phi0 - old_old_fval, dphi0)
        ok = tnp.logical_and(tnp.isfinite(cand), tnp.greater(cand, 0))
        a1 = tnp.where(ok, tnp.minimum(cand, 1.0), 1.0)
    a1 = tnp.astype(a1, dt)
    zero = tnp.zeros((), dt)
    false = tnp.asarray(False)
    init = _State(i=tnp.asarray(0, np.int32), done=false, zooming=false, a_try=a1,
                  a_prev=zero, phi_prev=phi0, dphi_prev=dphi0, g_prev=g0, a_lo=zero,
                  phi_lo=phi0, dphi_lo=dphi0, a_hi=zero, phi_hi=phi0, dphi_hi=dphi0, a_star=zero, phi_star=phi0,
                  g_star=g0, g_lo=g0)

    def cond(s):
        return tnp.logical_and(tnp.logical_not(s.done), tnp.less(s.i, maxiter))

    def body(s):
        # the trial step: bracketing uses a_try, zooming a safeguarded interpolant
        lo, hi = tnp.minimum(s.a_lo, s.a_hi), tnp.maximum(s.a_lo, s.a_hi)
        width = hi - lo
        cub = _cubic_min(s.a_lo, s.phi_lo, s.dphi_lo, s.a_hi, s.phi_hi, s.dphi_hi)
        inside = tnp.logical_and(tnp.greater(cub, lo + 0.1 * width),
                                 tnp.less(cub, hi - 0.1 * width))
        a_zoom = tnp.where(inside, cub, 0.5 * (s.a_lo + s.a_hi))
        a = tnp.where(s.zooming, a_zoom, s.a_try)
        phi, g = vg(xk + a * pk)
        dphi = tnp.dot(g, pk)
        # written as 'not <=' so a nan value counts as too high
        armijo_bad = tnp.logical_not(tnp.less_equal(phi, phi0 + c1 * a * dphi0))
        curv_ok = tnp.less_equal(tnp.abs(dphi), -c2 * dphi0)
        # bracketing (algorithm 3.5)
        b_hi = tnp.logical_or(armijo_bad, tnp.logical_and(tnp.greater(s.i, 0),
                                                          tnp.greater_equal(phi, s.phi_prev)))
        b_done = tnp.logical_and(tnp.logical_not(b_hi), curv_ok)
        b_rev = tnp.logical_and(tnp.logical_not(tnp.logical_or(b_hi, b_done)),
                                tnp.greater_equal(dphi, 0))
        # zoom (algorithm 3.6)
        z_hi = tnp.logical_or(armijo_bad, tnp.greater_equal(phi, s.phi_lo))
        z_done = tnp.logical_and(tnp.logical_not(z_hi), curv_ok)
        z_flip = tnp.logical_and(tnp.logical_not(tnp.logical_or(z_hi, z_done)),
                                 tnp.greater_equal(dphi * (s.a_hi - s.a_lo), 0))
        z_lo = tnp.logical_not(tnp.logical_or(z_hi, z_done))
        zm = s.zooming
        w = tnp.where
        done = w(zm, z_done, b_done)
        # new interval ends. bracketing: b_hi -> (lo=prev, hi=a), b_rev -> (lo=a, hi=prev);
        # zooming: z_hi -> hi=a, z_lo -> lo=a (and hi=old lo when z_flip)
        a_lo = w(zm, w(z_lo, a, s.a_lo), w(b_hi, s.a_prev, a))
        phi_lo = w(zm, w(z_lo, phi, s.phi_lo), w(b_hi, s.phi_prev, phi))
        dphi_lo = w(zm, w(z_lo, dphi, s.dphi_lo), w(b_hi, s.dphi_prev, dphi))
        g_lo = w(zm, w(z_lo, g, s.g_lo), w(b_hi, s.g_prev, g))
        a_hi = w(zm, w(z_hi, a, w(z_flip, s.a_lo, s.a_hi)), w(b_hi, a, s.a_prev))
        phi_hi = w(zm, w(z_hi, phi, w(z_flip, s.phi_lo, s.phi_hi)), w(b_hi, phi, s.phi_prev))
        dphi_hi = w(zm, w(z_hi, dphi, w(z_flip, s.dphi_lo, s.dphi_hi)),
                    w(b_hi, dphi, s.dphi_prev))
        starts_zoom = tnp.logical_and(tnp.logical_not(zm), tnp.logical_or(b_hi, b_rev))
        return _State(i=s.i + 1, done=done, zooming=tnp.logical_or(zm, starts_zoom),
                      a_try=2 * a, a_prev=a, phi_prev=phi, dphi_prev=dphi, g_prev=g,
                      a_lo=a_lo, phi_lo=phi_lo, dphi_lo=dphi_lo, a_hi=a_hi, phi_hi=phi_hi,
                      dphi_hi=dphi_hi,
                      a_star=w(done, a, s.a_star), phi_star=w(done, phi, s.phi_star),
                      g_star=w(done, g, s.g_star), g_lo=g_lo)

    s = lax.while_loop(cond, body, init)
    # failure: fall back on the zoom interval's low end (it satisfies sufficient decrease)
    fallback = tnp.logical_and(tnp.logical_not(s.done), s.zooming)
    a_k = tnp.where(s.done, s.a_star, tnp.where(fallback, s.a_lo, 0.0))
    f_k = tnp.where(s.done, s.phi_star, tnp.where(fallback, s.phi_lo, phi0))
    g_k = tnp.where(s.done, s.g_star, tnp.where(fallback, s.g_lo, g0))
    not_descent = tnp.greater_equal(dphi0, 0)
    status = tnp.where(s.done, 0, tnp.where(not_descent, 2, 1))
    nfev = s.i + extra
    return LineSearchResults(failed=tnp.logical_not(s.done), nit=s.i, nfev=nfev, ngev=nfev,
                             k=s.i, a_k=a_k, f_k=f_k, g_k=g_k,
                             status=tnp.astype(status, np.int32))
