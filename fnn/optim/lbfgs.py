"""L-BFGS and its line searches, with optax's API: `lbfgs()` chains `scale_by_lbfgs` (the
two-loop recursion over the last `memory_size` parameter and gradient differences), a scaling
by -1 (or -lr) and a line search that needs the loss:

    opt = optim.lbfgs()
    value_and_grad = optim.value_and_grad_from_state(loss)
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)

`scale_by_zoom_linesearch` looks for a step satisfying the strong Wolfe conditions (bracketing
then zooming with cubic, quadratic or bisection steps, Nocedal & Wright, Algorithms 3.5 and
3.6); `scale_by_backtracking_linesearch` for sufficient decrease only (Armijo). Both run as
`lax.while_loop`s, so they work under `jit`; both keep the value and gradient at the accepted
point in their state, which `value_and_grad_from_state` reuses on the next step.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from transforms import lax
from transforms import tree
import transforms as _T
import transforms.numpy as tnp

from .base import (GradientTransformation, GradientTransformationExtraArgs, identity)
from .combine import chain
from .transformations import scale, scale_by_learning_rate
from .tree_utils import (tree_add_scale, tree_cast_like, tree_get, tree_norm, tree_real,
                         tree_scale, tree_sub, tree_vdot, tree_where, tree_zeros_like)
from .updates import safe_increment

__all__ = [
    "ScaleByLBFGSState", "scale_by_lbfgs", "lbfgs", "BacktrackingLinesearchInfo",
    "ScaleByBacktrackingLinesearchState", "scale_by_backtracking_linesearch",
    "ZoomLinesearchInfo", "ScaleByZoomLinesearchState", "scale_by_zoom_linesearch",
    "value_and_grad_from_state",
]


# ---------------------------------------------------------------------------------------------
# the L-BFGS direction
# ---------------------------------------------------------------------------------------------

class ScaleByLBFGSState(NamedTuple):
    """The count, the last params and updates, and the ring buffers of parameter differences,
    update differences and their weights `1 / <dg, dp>`."""
    count: Any
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: Any


def _set_row(buf, idx, row):
    """`buf` with `buf[idx] = row` (a select, so `idx` may be traced)."""
    sel = tnp.arange(buf.shape[0]) == idx
    sel = tnp.reshape(sel, (buf.shape[0],) + (1,) * (buf.ndim - 1))
    return tnp.where(sel, tnp.asarray(row, dtype=buf.dtype)[None], buf)


def _row(buf, idx):
    return tnp.take(buf, idx, axis=0)


def _two_loop(g, dps, dgs, rhos, gamma, start):
    """The L-BFGS two-loop recursion: the inverse-Hessian approximation applied to `g`, with
    the oldest stored pair at ring position `start` (two `lax.scan`s, so a long memory
    compiles to one loop body, not an unrolled chain)."""
    m = rhos.shape[0]
    order = (start + tnp.arange(m, dtype=np.int32)) % m

    def pair(idx):
        return (tree.map(lambda x: _row(x, idx), dps), tree.map(lambda x: _row(x, idx), dgs),
                _row(rhos, idx))

    def newest_to_oldest(vec, idx):
        dp, dg, rho = pair(idx)
        a = rho * tree_real(tree_vdot(dp, vec))
        return tree_cast_like(tree_add_scale(vec, -a, dg), vec), a

    vec, alphas = lax.scan(newest_to_oldest, g, order, reverse=True)
    vec = tree_cast_like(tree_scale(gamma, vec), g)

    def oldest_to_newest(vec, idx_a):
        idx, a = idx_a
        dp, dg, rho = pair(idx)
        b = rho * tree_real(tree_vdot(dg, vec))
        return tree_cast_like(tree_add_scale(vec, a - b, dp), vec), b

    vec, _ = lax.scan(oldest_to_newest, vec, (order, alphas))
    return vec


def scale_by_lbfgs(memory_size: int = 10,
                   scale_init_precond: bool = True) -> GradientTransformation:
    """The L-BFGS direction (Nocedal & Wright, Algorithm 7.4): the gradient times the inverse
    Hessian approximated from the last `memory_size` pairs `(p_k - p_{k-1}, g_k - g_{k-1})`.

    The initial inverse Hessian is `gamma I` with `gamma = <dg, dp> / ||dg||^2` (on the first
    step `min(1, 1 / ||g||)`) when `scale_init_precond`, else `I`. Pairs with `<dg, dp> = 0`
    get weight 0. Follow it by a negative scaling and a line search (see `lbfgs`).
    """
    if memory_size < 1:
        raise ValueError(f"scale_by_lbfgs: memory_size must be >= 1, got {memory_size}")

    def init_fn(params):
        stacked = tree.map(lambda p: tnp.zeros((memory_size,) + tuple(tnp.shape(p)),
                                               dtype=tnp.asarray(p).dtype), params)
        return ScaleByLBFGSState(
            count=np.zeros([], np.int32), params=tree_zeros_like(params),
            updates=tree_zeros_like(params), diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=tnp.zeros(memory_size, _value_dtype(params)))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_lbfgs needs params")
        idx = state.count % memory_size
        prev_idx = (state.count - 1) % memory_size
        started = state.count > 0
        dp = tree_sub(params, state.params)
        dg = tree_sub(updates, state.updates)
        curv = tree_real(tree_vdot(dg, dp))
        safe = tnp.where(curv == 0.0, tnp.ones_like(curv), curv)
        w = tnp.where(curv == 0.0, tnp.zeros_like(curv), 1.0 / safe)
        dp = tree.map(lambda x: tnp.where(started, x, tnp.zeros_like(x)), dp)
        dg = tree.map(lambda x: tnp.where(started, x, tnp.zeros_like(x)), dg)
        w = tnp.where(started, w, tnp.zeros_like(w))
        dps = tree.map(lambda buf, r: _set_row(buf, prev_idx, r), state.diff_params_memory, dp)
        dgs = tree.map(lambda buf, r: _set_row(buf, prev_idx, r), state.diff_updates_memory,
                       dg)
        rhos = _set_row(state.weights_memory, prev_idx, w)
        if scale_init_precond:
            num = tree_real(tree_vdot(dg, dp))
            den = tree_norm(dg, squared=True)
            gamma = tnp.where(den > 0.0, num / tnp.where(den > 0.0, den, 1.0), 1.0)
            gnorm = tree_norm(tree.map(lax.stop_gradient, updates))
            first = tnp.minimum(1.0, 1.0 / gnorm)
            gamma = tnp.where(started, gamma, first)
        else:
            gamma = 1.0
        direction = _two_loop(updates, dps, dgs, rhos, gamma, idx)
        return direction, ScaleByLBFGSState(
            count=safe_increment(state.count), params=params, updates=updates,
            diff_params_memory=dps, diff_updates_memory=dgs, weights_memory=rhos)
    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# helpers shared by the line searches
# ---------------------------------------------------------------------------------------------

def _split_kwargs(value_fn, extra_args, who):
    names = set(inspect.signature(value_fn).parameters)
    fn_kwargs = {k: v for k, v in extra_args.items() if k in names}
    rest = sorted(k for k in extra_args if k not in names)
    if rest:
        raise TypeError(f"{who}.update: keyword arguments {rest} are not parameters of "
                        f"value_fn")
    return fn_kwargs


def _value_dtype(params):
    leaves = tree.leaves(params)
    dt = np.dtype(tnp.asarray(leaves[0]).dtype) if leaves else np.dtype(np.float32)
    if np.issubdtype(dt, np.complexfloating):
        dt = np.finfo(dt).dtype
    return dt


def _cast_like(new, old):
    """`new` with every leaf in the dtype of the matching leaf of `old` (keeps while-loop
    carries type-stable)."""
    return tree.map(lambda n, o: tnp.asarray(n, dtype=tnp.asarray(o).dtype), new, old)


# ---------------------------------------------------------------------------------------------
# backtracking (Armijo)
# ---------------------------------------------------------------------------------------------

class BacktrackingLinesearchInfo(NamedTuple):
    """How many values the search evaluated and the sufficient-decrease violation left."""
    num_linesearch_steps: Any
    decrease_error: Any


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted step size, the value there, its gradient (`store_grad=True`, else None),
    and `info`."""
    learning_rate: Any
    value: Any
    grad: Any
    info: Any


class _BacktrackCarry(NamedTuple):
    learning_rate: Any
    new_value: Any
    new_grad: Any
    decrease_error: Any
    iter_num: Any


def scale_by_backtracking_linesearch(max_backtracking_steps: int, slope_rtol=1e-4,
                                     decrease_factor=0.8, increase_factor=1.5,
                                     max_learning_rate=1.0, atol=0.0, rtol=0.0,
                                     store_grad: bool = False,
                                     verbose: bool = False) -> GradientTransformationExtraArgs:
    """Scale the updates `u` by the first step `s` (from `min(increase_factor * s_prev,
    max_learning_rate)`, shrinking by `decrease_factor`) with sufficient decrease

        f(p + s u) <= (1 + rtol) f(p) + s slope_rtol <u, grad> + atol

    at most `max_backtracking_steps` shrinks; a step giving a non-finite value is 0. `update`
    needs `value=f(p)`, `grad` and `value_fn` (further keyword arguments go to `value_fn`).
    """
    del verbose

    def init_fn(params):
        dt = _value_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=np.asarray(1.0, dt), value=np.asarray(np.inf, dt),
            grad=tree_zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=np.asarray(0, np.int32),
                                            decrease_error=np.asarray(np.inf, dt)))

    def dec_error(step, slope, value, new_value):
        e = new_value - (1.0 + rtol) * value - step * slope_rtol * slope
        e = tnp.where(tnp.isnan(e), np.inf, e)
        return tnp.maximum(e, 0.0)

    def update_fn(updates, state, params=None, *, value, grad, value_fn, **extra_args):
        fn_kwargs = _split_kwargs(value_fn, extra_args, "scale_by_backtracking_linesearch")
        f = functools.partial(value_fn, **fn_kwargs)
        slope = tree_real(tree_vdot(updates, tree.map(tnp.conj, grad)))
        dt = _value_dtype(params)

        def cond(c):
            return tnp.logical_and(tnp.logical_not(c.decrease_error <= atol),
                                   c.iter_num <= max_backtracking_steps)

        def body(c):
            lr = tnp.where(c.iter_num > 0, decrease_factor * c.learning_rate, c.learning_rate)
            trial = tree_add_scale(params, lr, updates)
            if store_grad:
                new_value, new_grad = _T.value_and_grad(f)(trial)
            else:
                new_value, new_grad = f(trial), c.new_grad
            err = dec_error(lr, slope, value, new_value)
            if store_grad:
                keep = tnp.logical_or(err <= atol, c.iter_num == max_backtracking_steps)
                new_grad = tree_where(keep, new_grad, c.new_grad)
            return _cast_like(_BacktrackCarry(lr, new_value, new_grad, err, c.iter_num + 1), c)

        lr0 = tnp.minimum(increase_factor * state.learning_rate, max_learning_rate)
        carry = _BacktrackCarry(
            learning_rate=tnp.asarray(lr0, dt), new_value=tnp.asarray(value, dt),
            new_grad=tree_zeros_like(params), decrease_error=tnp.asarray(np.inf, dt),
            iter_num=np.asarray(0, np.int32))
        out = lax.while_loop(cond, body, carry)
        lr = tnp.where(tnp.isinf(out.decrease_error), tnp.zeros_like(out.learning_rate),
                       out.learning_rate)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=lr, value=out.new_value,
            grad=out.new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=out.iter_num,
                                            decrease_error=out.decrease_error))
        return tree_scale(lr, updates), _cast_like(new_state, state)
    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# zoom (strong Wolfe)
# ---------------------------------------------------------------------------------------------

class ZoomLinesearchInfo(NamedTuple):
    """How many steps the search took and the Wolfe violations at the accepted step."""
    num_linesearch_steps: Any
    decrease_error: Any
    curvature_error: Any


class ScaleByZoomLinesearchState(NamedTuple):
    """The accepted step size, the value and gradient there, and `info`."""
    learning_rate: Any
    value: Any
    grad: Any
    info: Any


class _Zoom(NamedTuple):
    count: Any
    stepsize: Any
    value: Any
    grad: Any
    slope: Any
    decrease_error: Any
    curvature_error: Any
    interval_found: Any
    done: Any
    failed: Any
    low: Any
    value_low: Any
    slope_low: Any
    high: Any
    value_high: Any
    slope_high: Any
    cubic_ref: Any
    value_cubic_ref: Any
    safe_stepsize: Any
    safe_value: Any
    safe_grad: Any


def _cubic_minimiser(a, fa, fpa, b, fb, c, fc):
    """The minimiser of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc); NaN
    where the fit is degenerate (no warnings: every division is guarded)."""
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    ok = denom != 0
    denom = tnp.where(ok, denom, tnp.ones_like(denom))
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    A = (dc ** 2 * rb - db ** 2 * rc) / denom
    B = (-dc ** 3 * rb + db ** 3 * rc) / denom
    radical = B * B - 3.0 * A * fpa
    ok = tnp.logical_and(tnp.logical_and(ok, A != 0), radical >= 0)
    root = tnp.sqrt(tnp.where(ok, radical, tnp.zeros_like(radical)))
    x = a + (-B + root) / (3.0 * tnp.where(ok, A, tnp.ones_like(A)))
    return tnp.where(ok, x, tnp.full_like(x, np.nan))


def _quadratic_minimiser(a, fa, fpa, b, fb):
    """The minimiser of the quadratic through (a, fa) with slope fpa and (b, fb); NaN where
    the fit is degenerate."""
    db = b - a
    ok = db != 0
    db2 = tnp.where(ok, db ** 2, tnp.ones_like(db))
    B = (fb - fa - fpa * db) / db2
    ok = tnp.logical_and(ok, B != 0)
    x = a - fpa / (2.0 * tnp.where(ok, B, tnp.ones_like(B)))
    return tnp.where(ok, x, tnp.full_like(x, np.nan))


def scale_by_zoom_linesearch(max_linesearch_steps: int, max_learning_rate=None, tol=0.0,
                             increase_factor=2.0, slope_rtol=1e-4, curv_rtol=0.9,
                             approx_dec_rtol=1e-6, stepsize_precision=1e-5,
                             initial_guess_strategy: str = "keep",
                             verbose: bool = False) -> GradientTransformationExtraArgs:
    """Scale the updates `u` by a step `s` meeting the strong Wolfe conditions

        f(p + s u) <= f(p) + slope_rtol s <u, g>         (sufficient decrease; with
                                                          `approx_dec_rtol` also Hager-Zhang's
                                                          approximate version)
        |<u, g(p + s u)>| <= curv_rtol |<u, g>|           (curvature)

    to within `tol`: first grow the step (by `increase_factor`, from 1 or the last step for
    `initial_guess_strategy='keep'`) until an interval holding such a step is bracketed, then
    zoom into it (cubic, else quadratic, else bisection), at most `max_linesearch_steps`
    evaluations; if none is found, the best step with sufficient decrease (or the last one).
    `update` needs `value`, `grad` and `value_fn` (extra keyword arguments go to `value_fn`).
    """
    del verbose
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(f"scale_by_zoom_linesearch: initial_guess_strategy must be 'one' or "
                         f"'keep', got {initial_guess_strategy!r}")
    interval_threshold = stepsize_precision

    def decrease_error(step, v, s, v0, s0):
        e = v - v0 - slope_rtol * step * s0
        if approx_dec_rtol is not None:
            approx = tnp.maximum(s - (2 * slope_rtol - 1.0) * s0,
                                 v - v0 - approx_dec_rtol * tnp.abs(v0))
            e = tnp.minimum(approx, e)
        e = tnp.maximum(e, 0.0)
        return tnp.where(tnp.isnan(e), np.inf, e)

    def curvature_error(s, s0):
        e = tnp.maximum(tnp.abs(s) - curv_rtol * tnp.abs(s0), 0.0)
        return tnp.where(tnp.isnan(e), np.inf, e)

    def init_fn(params):
        dt = _value_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=np.asarray(1.0, dt), value=np.asarray(np.inf, dt),
            grad=tree_zeros_like(params),
            info=ZoomLinesearchInfo(num_linesearch_steps=np.asarray(0, np.int32),
                                    decrease_error=np.asarray(np.inf, np.float32),
                                    curvature_error=np.asarray(np.inf, np.float32)))

    def update_fn(updates, state, params=None, *, value, grad, value_fn, **extra_args):
        fn_kwargs = _split_kwargs(value_fn, extra_args, "scale_by_zoom_linesearch")
        vg = _T.value_and_grad(functools.partial(value_fn, **fn_kwargs))
        dt = _value_dtype(params)
        value0 = tnp.asarray(value, dt)
        slope0 = tnp.asarray(tree_real(tree_vdot(updates, grad)), dt)
        guess = tnp.asarray(1.0 if initial_guess_strategy == "one" else state.learning_rate,
                            dt)

        def on_line(step):
            v, g = vg(tree_add_scale(params, step, updates))
            s = tree_real(tree_vdot(tree.map(tnp.conj, g), updates))
            return tnp.asarray(v, dt), g, tnp.asarray(s, dt)

        def search(c):
            new = tnp.where(c.count == 0, guess, increase_factor * c.stepsize)
            if max_learning_rate is not None:
                at_max = new >= max_learning_rate
                new = tnp.minimum(new, max_learning_rate)
            else:
                at_max = tnp.asarray(False)
            v, g, s = on_line(new)
            de, ce = decrease_error(new, v, s, value0, slope0), curvature_error(s, slope0)
            err = tnp.maximum(de, ce)
            ok_dec = de <= tol
            safe = tree_where(ok_dec, (new, v, g), (c.safe_stepsize, c.safe_value, c.safe_grad))
            high_new = tnp.logical_or(de > 0.0, tnp.logical_and(v >= c.value, c.count > 0))
            low_new = tnp.logical_and(s >= 0.0, tnp.logical_not(high_new))
            lo, vlo, slo, hi, vhi, shi = tree_where(
                low_new, (new, v, s, c.stepsize, c.value, c.slope),
                (c.stepsize, c.value, c.slope, new, v, s))
            found = tnp.logical_or(tnp.logical_or(high_new, low_new), err <= tol)
            done = tnp.logical_or(err <= tol, tnp.logical_and(at_max, tnp.logical_not(found)))
            failed = tnp.logical_and(c.count + 1 >= max_linesearch_steps, tnp.logical_not(done))
            return _Zoom(safe_increment(c.count), new, v, g, s, de, ce, found, done, failed,
                         lo, vlo, slo, hi, vhi, shi, lo, vlo, *safe)

        def zoom(c):
            lo, hi = c.low, c.high
            delta = tnp.abs(hi - lo)
            left, right = tnp.minimum(hi, lo), tnp.maximum(hi, lo)
            too_small = delta <= interval_threshold
            # NaN for a degenerate fit: every comparison below is then false
            cub = _cubic_minimiser(lo, c.value_low, c.slope_low, hi, c.value_high,
                                   c.cubic_ref, c.value_cubic_ref)
            quad = _quadratic_minimiser(lo, c.value_low, c.slope_low, hi, c.value_high)
            use_cub = tnp.logical_and(cub > left + 0.2 * delta, cub < right - 0.2 * delta)
            use_quad = tnp.logical_and(tnp.logical_not(use_cub),
                                       tnp.logical_and(quad > left + 0.1 * delta,
                                                       quad < right - 0.1 * delta))
            mid = tnp.where(use_cub, cub, tnp.where(use_quad, quad, (lo + hi) / 2.0))
            v, g, s = on_line(mid)
            de, ce = decrease_error(mid, v, s, value0, slope0), curvature_error(s, slope0)
            err = tnp.maximum(de, ce)
            better = tnp.logical_and(de <= tol, v < c.safe_value)
            safe = tree_where(better, (mid, v, g), (c.safe_stepsize, c.safe_value, c.safe_grad))
            done = err <= tol
            hi_mid = tnp.logical_or(de > 0.0, v >= c.value_low)
            hi_lo = tnp.logical_and(s * (hi - lo) >= 0.0, tnp.logical_not(hi_mid))
            lo_mid = tnp.logical_not(hi_mid)
            nh = tree_where(hi_mid, (mid, v, s), (hi, c.value_high, c.slope_high))
            nh = tree_where(hi_lo, (lo, c.value_low, c.slope_low), nh)
            nl = tree_where(lo_mid, (mid, v, s), (lo, c.value_low, c.slope_low))
            cref = tree_where(tnp.logical_or(hi_mid, hi_lo), (hi, c.value_high),
                              (lo, c.value_low))
            give_up = tnp.logical_or(c.count + 1 >= max_linesearch_steps,
                                     tnp.logical_and(too_small, safe[0] > 0.0))
            failed = tnp.logical_and(give_up, tnp.logical_not(done))
            return _Zoom(safe_increment(c.count), mid, v, g, s, de, ce, c.interval_found, done,
                         failed, *nl, *nh, *cref, *safe)

        def fall_back(c):
            use_safe = tnp.logical_or(c.safe_stepsize > 0.0, tnp.isinf(c.decrease_error))
            step, v, g = tree_where(use_safe, (c.safe_stepsize, c.safe_value, c.safe_grad),
                                    (c.stepsize, c.value, c.grad))
            return c._replace(stepsize=step, value=v, grad=g)

        def body(c):
            new = lax.cond(c.interval_found, zoom, search, c)
            new = _cast_like(new, c)
            return _cast_like(lax.cond(new.failed, fall_back, lambda x: x, new), c)

        def cond(c):
            return tnp.logical_not(tnp.logical_or(c.done, c.failed))

        f32 = functools.partial(tnp.asarray, dtype=dt)
        zero, inf = f32(0.0), f32(np.inf)
        start = _Zoom(np.asarray(0, np.int32), zero, value0, grad, slope0, inf, inf,
                      np.asarray(False), np.asarray(False), np.asarray(False),
                      zero, value0, slope0, zero, value0, slope0, zero, value0, zero, value0,
                      grad)
        start = start._replace(grad=_cast_like(grad, params),
                               safe_grad=_cast_like(grad, params))
        out = lax.while_loop(cond, body, start)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=out.stepsize, value=out.value, grad=out.grad,
            info=ZoomLinesearchInfo(num_linesearch_steps=out.count,
                                    decrease_error=out.decrease_error,
                                    curvature_error=out.curvature_error))
        return tree_scale(out.stepsize, updates), _cast_like(new_state, state)
    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# the optimiser and its value-and-grad helper
# ---------------------------------------------------------------------------------------------

def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., Any]:
    """`value_and_grad(params, *args, state=opt_state, **kwargs)`: the value and gradient a
    line search stored in `opt_state` (found with `tree_get(state, 'value')` and `'grad'`)
    when the stored value is finite, else `T.value_and_grad(value_fn)(params, ...)`. Saves
    one evaluation per L-BFGS step."""
    def vg(params, *fn_args, state, **fn_kwargs):
        value = tree_get(state, "value")
        grad = tree_get(state, "grad")
        if value is None or grad is None:
            raise ValueError("value_and_grad_from_state: the optimiser state keeps no 'value' "
                             "and 'grad' (use a line search that stores them)")
        finite = tnp.logical_not(tnp.logical_or(tnp.isinf(value), tnp.isnan(value)))

        def fresh(p, a, kw):
            return _T.value_and_grad(value_fn)(p, *a, **kw)
        return lax.cond(finite, lambda p, a, kw: (value, grad), fresh, params, fn_args,
                        fn_kwargs)
    return vg


def lbfgs(learning_rate=None, memory_size: int = 10, scale_init_precond: bool = True,
          linesearch: Optional[GradientTransformation] = scale_by_zoom_linesearch(
              max_linesearch_steps=20, initial_guess_strategy="one")
          ) -> GradientTransformationExtraArgs:
    """L-BFGS: `scale_by_lbfgs(memory_size, scale_init_precond)`, then `-1` (or `-lr`), then
    `linesearch` (default `scale_by_zoom_linesearch(max_linesearch_steps=20,
    initial_guess_strategy='one')`; None for none). `update` takes `value`, `grad` and
    `value_fn` for the line search."""
    base_scaling = scale(-1.0) if learning_rate is None else scale_by_learning_rate(
        learning_rate)
    if linesearch is None:
        linesearch = identity()
    return chain(scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond),
                 base_scaling, linesearch)
