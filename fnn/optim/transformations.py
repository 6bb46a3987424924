"""Building blocks: gradient transformations that rescale, accumulate, clip or decay updates.

Notation in the docstrings: `g` is the incoming update (the gradient at the start of a chain),
`t` the step count after this update (1 on the first call), `p` the parameter. All operations
are leafwise. Counts are int32 scalars that saturate instead of overflowing. Every block keeps
each leaf's dtype (Python-number hyperparameters are weak; array hyperparameters are cast).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from transforms import lax, tree
import transforms.numpy as tnp

from . import base
from .base import EmptyState, GradientTransformation, NO_PARAMS_MSG, init_empty_state
from .updates import (BiasCorrection, dtype_of, is_number, abs_sq, cast_scalar, moment,
                      moment_per_elem_norm, global_norm, safe_int32_increment, safe_norm,
                      tree_bias_correction, tree_cast, tree_update_infinity_moment,
                      tree_update_moment, tree_update_moment_per_elem_norm)

__all__ = [
    "ScaleState", "scale", "ScaleByAdamState", "scale_by_adam", "ScaleByAmsgradState",
    "scale_by_amsgrad", "scale_by_adamax", "ScaleByBeliefState", "scale_by_belief",
    "scale_by_yogi", "scale_by_radam", "ScaleByRmsState", "ScaleByRmsWithCountState",
    "scale_by_rms", "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "scale_by_stddev",
    "ScaleByRssState", "scale_by_rss", "TraceState", "trace", "EmaState", "ema",
    "AddDecayedWeightsState", "WeightDecaySchedule", "add_decayed_weights",
    "ScaleByScheduleState", "scale_by_schedule", "scale_by_learning_rate", "ScaleByTrustRatioState",
    "scale_by_trust_ratio", "ScaleByLionState", "scale_by_lion", "scale_by_sign",
    "ClipState", "clip", "ClipByGlobalNormState", "clip_by_global_norm", "clip_by_block_rms",
    "ZeroNansState", "zero_nans", "keep_params_nonnegative", "identity", "set_to_zero",
]

identity = base.identity
set_to_zero = base.set_to_zero


def _zero_count():
    return np.zeros([], np.int32)


def _zeros_tree(params, dtype=None):
    return tree.map(lambda p: tnp.zeros_like(p, dtype=dtype), params)


def _canon_dtype(dtype):
    return None if dtype is None else np.dtype(dtype)


def _map3(f, updates, *states):
    """Apply `f(g, *s) -> (u, *new_s)` leafwise; return the trees `(u_tree, *new_s_trees)`."""
    leaves, treedef = tree.flatten(updates)
    others = [treedef.flatten_up_to(s) for s in states]
    outs = [f(g, *rest) for g, *rest in zip(leaves, *others)]
    return tuple(tree.unflatten(treedef, [o[i] for o in outs])
                 for i in range(1 + len(states)))


# ---------------------------------------------------------------------------------------------
# scaling
# ---------------------------------------------------------------------------------------------

ScaleState = EmptyState


def scale(step_size) -> GradientTransformation:
    """Multiply updates by a fixed `step_size`: `u = step_size * g`."""
    def update_fn(updates, state, params=None):
        del params
        return tree.map(lambda g: cast_scalar(step_size, g) * g, updates), state
    return GradientTransformation(init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
    count: Any  # int32 scalar: number of updates so far


def scale_by_schedule(step_size_fn: Callable[[Any], Any]) -> GradientTransformation:
    """`u = step_size_fn(count) * g`, `count` the number of previous updates (0 first)."""
    def init_fn(params):
        del params
        return ScaleByScheduleState(count=_zero_count())

    def update_fn(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        updates = tree.map(lambda g: tnp.asarray(step_size, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=safe_int32_increment(state.count))
    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(learning_rate=None, *,
                           flip_sign: bool = True) -> GradientTransformation:
    """`u = -learning_rate * g` (`+` when `flip_sign=False`); the rate may be a schedule.

    `learning_rate=None` is the identity (as optax: no sign flip either)."""
    if learning_rate is None:
        return identity()
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)


# ---------------------------------------------------------------------------------------------
# Adam family
# ---------------------------------------------------------------------------------------------

class ScaleByAdamState(NamedTuple):
    count: Any  # int32 scalar
    mu: Any     # first moment, tree like params
    nu: Any     # second moment, tree like params


def _nesterov_mu_hat(mu, updates, b1, count_inc):
    # mu_hat = b1 * m_{t} / (1 - b1^{t+1}) + (1 - b1) * g / (1 - b1^t)
    return tree.map(
        lambda m, g: cast_scalar(b1, m) * m + (1 - cast_scalar(b1, m)) * g,
        tree_bias_correction(mu, b1, safe_int32_increment(count_inc)),
        tree_bias_correction(updates, b1, count_inc))


def _sqrt_plus_eps(v, eps_root, eps):
    if not (is_number(eps_root) and eps_root == 0):
        v = v + cast_scalar(eps_root, v)
    return tnp.sqrt(v) + cast_scalar(eps, v)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_root: float = 0.0, mu_dtype=None, *,
                  nesterov: bool = False) -> GradientTransformation:
    """Rescale by Adam's moment estimates (Kingma & Ba, 2015).

        m_t = (1 - b1) * g + b1 * m_{t-1}            v_t = (1 - b2) * g**2 + b2 * v_{t-1}
        m^_t = m_t / (1 - b1**t)                      v^_t = v_t / (1 - b2**t)
        u = m^_t / (sqrt(v^_t + eps_root) + eps)

    `eps` sits outside the square root, `eps_root` inside. With `nesterov=True` (NAdam),
    `m^_t = b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)`. `mu_dtype` stores the
    first moment in another dtype. State: `ScaleByAdamState(count, mu, nu)`.
    """
    mu_dtype = _canon_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=_zeros_tree(params, mu_dtype),
                                nu=_zeros_tree(params))

    def update_fn(updates, state, params=None):
        del params
        count_inc = safe_int32_increment(state.count)
        bc1 = BiasCorrection(b1, count_inc)
        bc2 = BiasCorrection(b2, count_inc)
        bc1_next = BiasCorrection(b1, safe_int32_increment(count_inc)) if nesterov else None

        # one leaf at a time, so eager mode keeps few full-size temporaries alive
        def leaf(g, m, v):
            m = moment(g, m, b1, 1)
            v = moment_per_elem_norm(g, v, b2, 2)
            if nesterov:
                b1_ = cast_scalar(b1, m)
                m_hat = b1_ * bc1_next(m) + (1 - b1_) * bc1(g)
            else:
                m_hat = bc1(m)
            u = m_hat / _sqrt_plus_eps(bc2(v), eps_root, eps)
            if mu_dtype is not None and m.dtype != mu_dtype:
                m = tnp.asarray(m, dtype=mu_dtype)
            return u, m, v

        new_u, mu, nu = _map3(leaf, updates, state.mu, state.nu)
        return new_u, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    count: Any
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                     eps_root: float = 0.0, mu_dtype=None) -> GradientTransformation:
    """AMSGrad: Adam with the running maximum of the bias-corrected second moment.

        m^_t, v^_t as in `scale_by_adam`;   vmax_t = max(vmax_{t-1}, v^_t)
        u = m^_t / (sqrt(vmax_t + eps_root) + eps)
    """
    mu_dtype = _canon_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByAmsgradState(count=_zero_count(), mu=_zeros_tree(params, mu_dtype),
                                   nu=_zeros_tree(params), nu_max=_zeros_tree(params))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count_inc = safe_int32_increment(state.count)
        mu_hat = tree_bias_correction(mu, b1, count_inc)
        nu_hat = tree_bias_correction(nu, b2, count_inc)
        nu_max = tree.map(tnp.maximum, state.nu_max, nu_hat)
        updates = tree.map(lambda m, v: m / _sqrt_plus_eps(v, eps_root, eps), mu_hat, nu_max)
        mu = tree_cast(mu, mu_dtype)
        return updates, ScaleByAmsgradState(count=count_inc, mu=mu, nu=nu, nu_max=nu_max)
    return GradientTransformation(init_fn, update_fn)


def scale_by_adamax(b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8) -> GradientTransformation:
    """Adamax (the infinity-norm variant of Adam).

        m_t = (1 - b1) * g + b1 * m_{t-1}      v_t = max(|g| + eps, b2 * v_{t-1})
        u = (m_t / (1 - b1**t)) / v_t
    """
    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=_zeros_tree(params),
                                nu=_zeros_tree(params))

    def update_fn(updates, state, params=None):
        del params
        count_inc = safe_int32_increment(state.count)
        mu = tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_update_infinity_moment(updates, state.nu, b2, eps)
        mu_hat = tree_bias_correction(mu, b1, count_inc)
        updates = tree.map(lambda m, v: m / v, mu_hat, nu)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByBeliefState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


def scale_by_belief(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-16,
                    eps_root: float = 1e-16) -> GradientTransformation:
    """AdaBelief: the second moment tracks the gradient's deviation from its mean.

        m_t = (1 - b1) * g + b1 * m_{t-1}
        s_t = (1 - b2) * (g - m_t)**2 + b2 * s_{t-1} + eps_root
        u = (m_t / (1 - b1**t)) / (sqrt(s_t / (1 - b2**t)) + eps)

    The prediction error uses the *updated* mean `m_t`, as optax does.
    """
    def init_fn(params):
        return ScaleByBeliefState(count=_zero_count(), mu=_zeros_tree(params),
                                  nu=_zeros_tree(params))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, b1, 1)
        prediction_error = tree.map(lambda g, m: g - m, updates, mu)
        nu = tree_update_moment_per_elem_norm(prediction_error, state.nu, b2, 2)
        nu = tree.map(lambda v: v + cast_scalar(eps_root, v), nu)
        count_inc = safe_int32_increment(state.count)
        mu_hat = tree_bias_correction(mu, b1, count_inc)
        nu_hat = tree_bias_correction(nu, b2, count_inc)
        updates = tree.map(lambda m, v: m / (tnp.sqrt(v) + cast_scalar(eps, v)), mu_hat, nu_hat)
        return updates, ScaleByBeliefState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


def scale_by_yogi(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-3,
                  eps_root: float = 0.0,
                  initial_accumulator_value: float = 1e-6) -> GradientTransformation:
    """Yogi: an additive, sign-controlled second-moment update.

        m_t = (1 - b1) * g + b1 * m_{t-1}
        v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g**2) * g**2
        u = (m_t / (1 - b1**t)) / (sqrt(v_t / (1 - b2**t) + eps_root) + eps)

    Both moments start at `initial_accumulator_value`.
    """
    def init_fn(params):
        full = lambda p: tnp.full_like(p, initial_accumulator_value)  # noqa: E731
        return ScaleByAdamState(count=_zero_count(), mu=tree.map(full, params),
                                nu=tree.map(full, params))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, b1, 1)

        def nu_fn(g, v):
            g2 = abs_sq(g)
            return v - (1 - cast_scalar(b2, v)) * tnp.sign(v - g2) * g2
        nu = tree.map(nu_fn, updates, state.nu)
        count_inc = safe_int32_increment(state.count)
        mu_hat = tree_bias_correction(mu, b1, count_inc)
        nu_hat = tree_bias_correction(nu, b2, count_inc)
        updates = tree.map(lambda m, v: m / _sqrt_plus_eps(v, eps_root, eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


def _pow_by_squaring(x, n):
    """x ** n for a non-negative int32 n, by squaring as XLA lowers lax.pow(float, int)."""
    n = lax.convert_element_type(n, np.int32)
    acc = tnp.ones_like(x)
    for _ in range(31):
        acc = tnp.where((n & 1) == 1, acc * x, acc)
        n = n >> 1
        x = x * x
    return acc


def scale_by_radam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   eps_root: float = 0.0, threshold: float = 5.0, *,
                   nesterov: bool = False) -> GradientTransformation:
    """Rectified Adam (Liu et al., 2020).

        rho_inf = 2 / (1 - b2) - 1,   rho_t = rho_inf - 2 t b2**t / (1 - b2**t)
        if rho_t >= threshold:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            u = r_t * m^_t / (sqrt(v^_t + eps_root) + eps)
        else:
            u = m^_t
    (m^_t, v^_t as in `scale_by_adam`; the branch is a traceable select.)
    """
    ro_inf = 2.0 / (1.0 - b2) - 1.0

    def init_fn(params):
        return ScaleByAdamState(count=_zero_count(), mu=_zeros_tree(params),
                                nu=_zeros_tree(params))

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count_inc = safe_int32_increment(state.count)
        # rho_t in the leaves' float dtype (float32 for float32 parameters, as optax computes
        # it without x64), so a threshold at the edge picks the same branch as optax
        dts = [dtype_of(g) for g in tree.leaves(updates) if np.issubdtype(dtype_of(g), np.inexact)]
        rdt = np.result_type(*dts) if dts else np.dtype(np.float32)
        if not np.issubdtype(rdt, np.floating):
            rdt = np.dtype(np.float64)
        t = tnp.asarray(count_inc, dtype=rdt)
        # b2**count as JAX computes a float to an int32 power (by squaring): rho_t cancels
        # catastrophically for small t, so a 1-ulp difference in b2t moves updates by ~1%
        b2t = _pow_by_squaring(tnp.asarray(b2, dtype=rdt), count_inc)
        ro = tnp.asarray(ro_inf, dtype=rdt) - 2 * t * b2t / (1 - b2t)
        if nesterov:
            mu_hat = _nesterov_mu_hat(mu, updates, b1, count_inc)
        else:
            mu_hat = tree_bias_correction(mu, b1, count_inc)
        nu_hat = tree_bias_correction(nu, b2, count_inc)
        use_rect = ro >= threshold
        # keep the square root's argument positive on the unselected branch
        ro_safe = tnp.where(use_rect, ro, ro_inf)
        r = tnp.sqrt((ro_safe - 4) * (ro_safe - 2) * ro_inf
                     / ((ro_inf - 4) * (ro_inf - 2) * ro_safe))

        def f(m, v):
            rect = cast_scalar(r, m) * m / _sqrt_plus_eps(v, eps_root, eps)
            return tnp.where(use_rect, rect, m)
        updates = tree.map(f, mu_hat, nu_hat)
        return updates, ScaleByAdamState(count=count_inc, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# RMS family
# ---------------------------------------------------------------------------------------------

class ScaleByRmsState(NamedTuple):
    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    count: Any
    nu: Any


def _rms_scaling(v, eps, eps_in_sqrt):
    if eps_in_sqrt:
        return lax.rsqrt(v + cast_scalar(eps, v))
    return 1 / (tnp.sqrt(v) + cast_scalar(eps, v))


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True,
                 bias_correction: bool = False) -> GradientTransformation:
    """Divide by the root of a running mean of squared gradients (RMSProp, Hinton 2012).

        v_t = (1 - decay) * g**2 + decay * v_{t-1},   v_0 = initial_scale
        u = g / sqrt(v_t + eps)          (eps_in_sqrt=True, the default)
        u = g / (sqrt(v_t) + eps)        (eps_in_sqrt=False)

    With `bias_correction=True`, `v_t` is replaced by `v_t / (1 - decay**t)` (and the state
    carries a count).
    """
    def init_fn(params):
        nu = tree.map(lambda p: tnp.full_like(p, initial_scale), params)
        if bias_correction:
            return ScaleByRmsWithCountState(count=_zero_count(), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update_fn(updates, state, params=None):
        del params
        nu = tree_update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count_inc = safe_int32_increment(state.count)
            nu_hat = tree_bias_correction(nu, decay, count_inc)
        else:
            nu_hat = nu
        updates = tree.map(lambda g, v: _rms_scaling(v, eps, eps_in_sqrt) * g, updates, nu_hat)
        if bias_correction:
            return updates, ScaleByRmsWithCountState(count=count_inc, nu=nu)
        return updates, ScaleByRmsState(nu=nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByRStdDevState(NamedTuple):
    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    count: Any
    mu: Any
    nu: Any


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True,
                    bias_correction: bool = False) -> GradientTransformation:
    """Divide by a running estimate of the gradient's standard deviation (centred RMSProp).

        m_t = (1 - decay) * g + decay * m_{t-1},         m_0 = 0
        v_t = (1 - decay) * g**2 + decay * v_{t-1},      v_0 = initial_scale
        u = g / sqrt(v_t - m_t**2 + eps)       (eps_in_sqrt=True)
        u = g / (sqrt(v_t - m_t**2) + eps)     (eps_in_sqrt=False)

    `bias_correction=True` divides `m_t`, `v_t` by `1 - decay**t` first.
    """
    def init_fn(params):
        mu = _zeros_tree(params)
        nu = tree.map(lambda p: tnp.full_like(p, initial_scale), params)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=_zero_count(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        mu = tree_update_moment(updates, state.mu, decay, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count_inc = safe_int32_increment(state.count)
            mu_hat = tree_bias_correction(mu, decay, count_inc)
            nu_hat = tree_bias_correction(nu, decay, count_inc)
        else:
            mu_hat, nu_hat = mu, nu
        updates = tree.map(
            lambda g, m, v: _rms_scaling(v - abs_sq(m), eps, eps_in_sqrt) * g,
            updates, mu_hat, nu_hat)
        if bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count_inc, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value: float = 0.1,
                 eps: float = 1e-7) -> GradientTransformation:
    """Divide by the root of the sum of all past squared gradients (Adagrad).

        s_t = s_{t-1} + g**2,   s_0 = initial_accumulator_value
        u = g / sqrt(s_t + eps)   where s_t > 0,   else 0
    """
    def init_fn(params):
        return ScaleByRssState(sum_of_squares=tree.map(
            lambda p: tnp.full_like(p, initial_accumulator_value), params))

    def update_fn(updates, state, params=None):
        del params
        sum_of_squares = tree.map(lambda g, s: abs_sq(g) + s, updates, state.sum_of_squares)

        def f(g, s):
            inv = tnp.where(s > 0, lax.rsqrt(s + cast_scalar(eps, s)), tnp.zeros_like(s))
            return inv * g
        updates = tree.map(f, updates, sum_of_squares)
        return updates, ScaleByRssState(sum_of_squares=sum_of_squares)
    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# momentum and averages
# ---------------------------------------------------------------------------------------------

class TraceState(NamedTuple):
    trace: Any


def trace(decay: float, nesterov: bool = False,
          accumulator_dtype=None) -> GradientTransformation:
    """Momentum (heavy ball): `tr_t = g + decay * tr_{t-1}`, `u = tr_t`.

    With `nesterov=True`: `u = g + decay * tr_t`. `tr_0 = 0`. `accumulator_dtype` stores the
    trace in another dtype.
    """
    accumulator_dtype = _canon_dtype(accumulator_dtype)

    def init_fn(params):
        return TraceState(trace=_zeros_tree(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params

        def f(g, t):
            if g is None:
                return None
            return g + cast_scalar(decay, g) * t
        new_trace = tree.map(f, updates, state.trace, is_leaf=lambda x: x is None)
        if nesterov:
            updates = tree.map(f, updates, new_trace, is_leaf=lambda x: x is None)
        else:
            updates = new_trace
        return updates, TraceState(trace=tree_cast(new_trace, accumulator_dtype))
    return GradientTransformation(init_fn, update_fn)


class EmaState(NamedTuple):
    count: Any
    ema: Any


def ema(decay: float, debias: bool = True, accumulator_dtype=None) -> GradientTransformation:
    """Exponential moving average of the updates.

        e_t = (1 - decay) * g + decay * e_{t-1},   u = e_t / (1 - decay**t) if debias else e_t
    """
    accumulator_dtype = _canon_dtype(accumulator_dtype)

    def init_fn(params):
        return EmaState(count=_zero_count(), ema=_zeros_tree(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        updates = new_ema = tree_update_moment(updates, state.ema, decay, 1)
        count_inc = safe_int32_increment(state.count)
        if debias:
            updates = tree_bias_correction(new_ema, decay, count_inc)
        return updates, EmaState(count=count_inc, ema=tree_cast(new_ema, accumulator_dtype))
    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# weight decay, trust ratio, Lion, sign
# ---------------------------------------------------------------------------------------------

AddDecayedWeightsState = EmptyState


class WeightDecaySchedule(NamedTuple):
    """`add_decayed_weights`' state when the decay is a schedule: the step count."""
    count: Any


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """Decoupled weight decay: `u = g + weight_decay * p`.

    Placed before `scale_by_learning_rate` (as in `adamw`) the decay is multiplied by the
    learning rate. `weight_decay` may be a schedule of the step count (the state is then
    `WeightDecaySchedule(count)`). `mask` (a pytree of bools or a callable `params -> mask`)
    limits it to the selected leaves; the others pass through unchanged.
    """
    scheduled = callable(weight_decay)

    def init_fn(params):
        del params
        return WeightDecaySchedule(count=_zero_count()) if scheduled else EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        new_state = WeightDecaySchedule(safe_int32_increment(state.count)) if scheduled \
            else state
        if is_number(weight_decay) and weight_decay == 0.0:
            return updates, new_state
        s = weight_decay(state.count) if scheduled else weight_decay
        updates = tree.map(lambda g, p: None if g is None else g + cast_scalar(s, p) * p,
                           updates, params, is_leaf=lambda x: x is None)
        return updates, new_state

    tx = GradientTransformation(init_fn, update_fn)
    if mask is not None:
        from .combine import masked
        return masked(tx, mask)
    return tx


ScaleByTrustRatioState = EmptyState


def scale_by_trust_ratio(min_norm: float = 0.0, trust_coefficient: float = 1.0,
                         eps: float = 0.0) -> GradientTransformation:
    """Layer-wise trust ratio (LARS/LAMB): `u = g * tc * ||p|| / (||g|| + eps)`.

    Norms are per leaf, floored at `min_norm`; where either norm is 0 the ratio is 1.
    """
    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)

        def f(u, p):
            param_norm = safe_norm(p, min_norm)
            update_norm = safe_norm(u, min_norm)
            zero_norm = tnp.logical_or(param_norm == 0.0, update_norm == 0.0)
            denom = update_norm + cast_scalar(eps, update_norm)
            denom = tnp.where(zero_norm, tnp.ones_like(denom), denom)  # no 0/0 off-branch
            trust_ratio = cast_scalar(trust_coefficient, param_norm) * param_norm / denom
            safe_ratio = tnp.where(zero_norm, np.asarray(1.0, dtype=p.dtype), trust_ratio)
            return u * tnp.asarray(safe_ratio, dtype=u.dtype)
        return tree.map(f, updates, params), state
    return GradientTransformation(init_empty_state, update_fn)


class ScaleByLionState(NamedTuple):
    count: Any
    mu: Any


def scale_by_lion(b1: float = 0.9, b2: float = 0.99, mu_dtype=None) -> GradientTransformation:
    """Lion (Chen et al., 2023): the sign of an interpolated momentum.

        u = sign((1 - b1) * g + b1 * m_{t-1}),    m_t = (1 - b2) * g + b2 * m_{t-1}
    """
    mu_dtype = _canon_dtype(mu_dtype)

    def init_fn(params):
        return ScaleByLionState(count=_zero_count(), mu=_zeros_tree(params, mu_dtype))

    def update_fn(updates, state, params=None):
        del params
        updates_new = tree.map(
            lambda g, m: tnp.sign((1.0 - cast_scalar(b1, g)) * g + cast_scalar(b1, g)
                                  * tnp.asarray(m, dtype=g.dtype)),
            updates, state.mu)
        mu = tree_update_moment(updates, state.mu, b2, 1)
        mu = tree_cast(mu, mu_dtype)
        count_inc = safe_int32_increment(state.count)
        return updates_new, ScaleByLionState(count=count_inc, mu=mu)
    return GradientTransformation(init_fn, update_fn)


def scale_by_sign() -> GradientTransformation:
    """`u = sign(g)` (signSGD)."""
    def update_fn(updates, state, params=None):
        del params
        return tree.map(tnp.sign, updates), state
    return GradientTransformation(init_empty_state, update_fn)


# ---------------------------------------------------------------------------------------------
# clipping and sanitising
# ---------------------------------------------------------------------------------------------

ClipState = EmptyState


def clip(max_delta) -> GradientTransformation:
    """Clip every element to `[-max_delta, max_delta]`."""
    def update_fn(updates, state, params=None):
        del params
        return tree.map(lambda g: tnp.clip(g, -cast_scalar(max_delta, g),
                                           cast_scalar(max_delta, g)), updates), state
    return GradientTransformation(init_empty_state, update_fn)


ClipByGlobalNormState = EmptyState


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Rescale all updates together so that their global 2-norm is at most `max_norm`.

        n = sqrt(sum over leaves of sum(g**2))
        u = g                     if n < max_norm
        u = (g / n) * max_norm    otherwise
    """
    def update_fn(updates, state, params=None):
        del params
        g_norm = global_norm(updates)
        trigger = g_norm < max_norm

        # where the clip applies g_norm >= max_norm, so dividing by max(g_norm, max_norm) is
        # dividing by g_norm; elsewhere it avoids a 0/0 on the unselected branch
        denom = tnp.maximum(g_norm, max_norm)

        def f(t):
            clipped = (t / tnp.asarray(denom, dtype=t.dtype)) * cast_scalar(max_norm, t)
            return tnp.where(trigger, t, clipped)
        return tree.map(f, updates), state
    return GradientTransformation(init_empty_state, update_fn)


def clip_by_block_rms(threshold: float) -> GradientTransformation:
    """Per leaf: `u = g / max(1, rms(g) / threshold)`, `rms(g) = sqrt(mean(g**2))`."""
    def update_fn(updates, state, params=None):
        del params

        def f(u):
            denom = tnp.maximum(1.0, tnp.sqrt(tnp.mean(abs_sq(u))) / cast_scalar(threshold, u))
            return u / denom
        return tree.map(f, updates), state
    return GradientTransformation(init_empty_state, update_fn)


class ZeroNansState(NamedTuple):
    found_nan: Any  # tree of bool scalars: whether the leaf had a NaN at the last update


def zero_nans() -> GradientTransformation:
    """Replace NaNs in the updates by 0; the state records which leaves had any."""
    def init_fn(params):
        return ZeroNansState(found_nan=tree.map(lambda p: np.asarray(False), params))

    def update_fn(updates, state, params=None):
        del params, state
        found = tree.map(lambda x: tnp.any(tnp.isnan(x)), updates)
        updates = tree.map(lambda x: tnp.where(tnp.isnan(x), tnp.zeros_like(x), x), updates)
        return updates, ZeroNansState(found_nan=found)
    return GradientTransformation(init_fn, update_fn)


def keep_params_nonnegative() -> GradientTransformation:
    """Shorten updates so that `p + u >= 0`: `u = -p` where `p + u < 0`, else `u`."""
    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        updates = tree.map(lambda p, u: tnp.where((p + u) < 0.0, -p, u), params, updates)
        return updates, state
    return GradientTransformation(init_empty_state, update_fn)

