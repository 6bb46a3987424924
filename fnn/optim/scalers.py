"""More optax building blocks that rescale updates: AdaDelta, Adan, Rprop, SM3, NovoGrad,
Adafactor's factored RMS, optimistic gradients, DoG, Polyak steps, parameter-block scaling,
update-norm normalisation, gradient centralisation, accumulation every k steps, and
annealed Gaussian noise.

Notation as in `transformations`: `g` the incoming update, `t` the step count after this
update, `p` the parameter. States are NamedTuples with optax's class and field names.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np

from transforms import lax
from transforms import random as _random
from transforms import tree
import transforms.numpy as tnp

from .base import (GradientTransformation, GradientTransformationExtraArgs,
                   NO_PARAMS_MSG, init_empty_state)
from .updates import (abs_sq, cast_scalar, safe_increment, safe_norm, tree_bias_correction,
                      tree_update_moment, tree_update_moment_per_elem_norm)
from .tree_utils import tree_add_scale, tree_norm, tree_random_like

__all__ = [
    "ScaleByAdaDeltaState", "scale_by_adadelta", "ScaleByAdanState", "scale_by_adan",
    "ScaleByRpropState", "scale_by_rprop", "ScaleBySM3State", "scale_by_sm3",
    "ScaleByNovogradState", "scale_by_novograd", "FactoredState", "scale_by_factored_rms",
    "ScaleByOptimisticGradientState", "scale_by_optimistic_gradient",
    "ScaleByDistanceOverGradientsState", "scale_by_distance_over_gradients",
    "scale_by_polyak", "scale_by_param_block_norm", "scale_by_param_block_rms",
    "normalize_by_update_norm", "centralize", "ApplyEvery", "apply_every", "AddNoiseState",
    "add_noise", "safe_root_mean_squares",
]


def _zeros(params, dtype=None):
    return tree.map(lambda p: tnp.zeros_like(p, dtype=dtype), params)


def _count0():
    return np.zeros([], np.int32)


def _need_params(params):
    if params is None:
        raise ValueError(NO_PARAMS_MSG)


# ---------------------------------------------------------------------------------------------
# AdaDelta, Adan, Rprop
# ---------------------------------------------------------------------------------------------

class ScaleByAdaDeltaState(NamedTuple):
    """AdaDelta's running averages of squared gradients (`e_g`) and squared updates (`e_x`)."""
    e_g: Any
    e_x: Any


def scale_by_adadelta(rho=0.9, eps=1e-6) -> GradientTransformation:
    """AdaDelta (Zeiler, 2012):

        E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g^2
        u = sqrt(E[x^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g
        E[x^2]_t = rho E[x^2]_{t-1} + (1 - rho) u^2
    """
    def init_fn(params):
        return ScaleByAdaDeltaState(e_g=_zeros(params), e_x=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        e_g = tree_update_moment(updates, state.e_g, rho, 2)
        updates = tree.map(lambda g, eg, ex: tnp.sqrt(ex + cast_scalar(eps, ex))
                           / tnp.sqrt(eg + cast_scalar(eps, eg)) * g,
                           updates, e_g, state.e_x)
        e_x = tree_update_moment(updates, state.e_x, rho, 2)
        return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)
    return GradientTransformation(init_fn, update_fn)


class ScaleByAdanState(NamedTuple):
    """Adan's moments `m` (gradient), `v` (gradient difference), `n` (squared corrected
    gradient), the previous gradient `g` and the step count `t`."""
    m: Any
    v: Any
    n: Any
    g: Any
    t: Any


def scale_by_adan(b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0) -> GradientTransformation:
    """Adan (Xie et al., 2022), as optax parameterises it (b's are decay rates):

        d = g - g_prev (0 on the first step)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) d;   n = b3 n + (1 - b3) (g + (1 - b2) d)^2
        u = (m^ + (1 - b2) v^) / (sqrt(n^ + eps_root) + eps)    (^: bias-corrected)
    """
    def init_fn(params):
        return ScaleByAdanState(m=_zeros(params), v=_zeros(params), n=_zeros(params),
                                g=_zeros(params), t=_count0())

    def update_fn(updates, state, params=None):
        del params
        first = state.t == 0
        diff = tree.map(lambda g, gp: tnp.where(first, tnp.zeros_like(g), g - gp), updates,
                        state.g)
        m = tree_update_moment(updates, state.m, b1, 1)
        v = tree_update_moment(diff, state.v, b2, 1)
        sq = tree_add_scale(updates, 1 - b2, diff)
        n = tree_update_moment_per_elem_norm(sq, state.n, b3, 2)
        t = safe_increment(state.t)
        m_hat = tree_bias_correction(m, b1, t)
        v_hat = tree_bias_correction(v, b2, t)
        n_hat = tree_bias_correction(n, b3, t)
        u = tree_add_scale(m_hat, 1 - b2, v_hat)
        u = tree.map(lambda a, nh: a / (tnp.sqrt(nh + cast_scalar(eps_root, nh))
                                        + cast_scalar(eps, nh)), u, n_hat)
        return u, ScaleByAdanState(m=m, v=v, n=n, g=updates, t=t)
    return GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    """Rprop's per-element step sizes and the previous (sign-times-step) updates."""
    step_sizes: Any
    prev_updates: Any


def scale_by_rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6,
                   max_step_size=50.0) -> GradientTransformation:
    """Rprop (Riedmiller & Braun, 1993), optax's variant. With `s = g * prev` per element:

        step = step                                   where s == 0
             = clip(step * (eta_plus if s > 0 else eta_minus), min, max)   elsewhere
        prev' = 0 where s < 0, else step * sign(g)
        u = 0 where s < 0, else prev      (the previous step's prev', as optax computes it;
                                          then `rprop` negates it)

    Step sizes start at `learning_rate`.
    """
    def init_fn(params):
        return ScaleByRpropState(
            step_sizes=tree.map(lambda p: tnp.full_like(p, learning_rate), params),
            prev_updates=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        sign = tree.map(lambda g, pg: g * pg, updates, state.prev_updates)

        def new_step(s, step):
            dt = step.dtype
            factor = tnp.where(s > 0, tnp.asarray(eta_plus, dt), tnp.asarray(eta_minus, dt))
            grown = tnp.minimum(tnp.maximum(step * factor, tnp.asarray(min_step_size, dt)),
                                tnp.asarray(max_step_size, dt))
            return tnp.where(s == 0, step, grown)
        steps = tree.map(new_step, sign, state.step_sizes)
        prev = tree.map(lambda s, g, st: tnp.where(s < 0, tnp.zeros_like(g), st * tnp.sign(g)),
                        sign, updates, steps)
        # as optax: the emitted update is the *previous* step's signed step (zero on the first
        # update and after a sign change)
        out = tree.map(lambda s, old: tnp.where(s < 0, tnp.zeros_like(old), old), sign,
                       state.prev_updates)
        return out, ScaleByRpropState(step_sizes=steps, prev_updates=prev)
    return GradientTransformation(init_fn, update_fn)


class ScaleBySM3State(NamedTuple):
    """SM3's state: per leaf, one accumulator per axis (`mu`, a list) and the momentum
    (`nu`)."""
    mu: Any
    nu: Any


def scale_by_sm3(b1=0.9, b2=1.0, eps=1e-8) -> GradientTransformation:
    """SM3 (Anil et al., 2019): memory-efficient Adagrad with one accumulator per axis.

        a = (1 - b2 if b2 != 1 else 1) g^2 + b2 min_i mu_i   (mu_i broadcast along axis i;
                                                              one accumulator for rank < 2)
        u = b1 nu + (1 - b1) * g / sqrt(a + eps)   (0 where a == 0);   nu' = u
        mu_i' = max of `a` over every axis but i
    """
    def axis_zeros(p):
        p = tnp.asarray(p)
        nd = len(tnp.shape(p))
        return [tnp.zeros((tnp.shape(p)[i],), p.dtype) for i in range(nd)]

    def init_fn(params):
        return ScaleBySM3State(mu=tree.map(axis_zeros, params), nu=_zeros(params))

    def expand(v, shape, i):
        return tnp.reshape(v, [1] * i + [shape[i]] + [1] * (len(shape) - i - 1))

    c0 = 1.0 - b2 if b2 != 1.0 else 1.0

    def leaf(g, mus, nu):
        shape = tuple(tnp.shape(g))
        if len(shape) < 2:
            prev = tnp.reshape(mus[0], shape)
        else:
            prev = functools.reduce(tnp.minimum, [expand(m, shape, i) for i, m in enumerate(mus)])
        acc = c0 * g ** 2 + b2 * prev
        inv = tnp.where(acc > 0, lax.rsqrt(acc + cast_scalar(eps, acc)), tnp.zeros_like(acc))
        u = (1 - b1) * (g * inv) + b1 * nu
        if len(shape) < 2:
            new_mus = [acc]
        else:
            new_mus = [tnp.max(acc, axis=tuple(j for j in range(len(shape)) if j != i))
                       for i in range(len(shape))]
        return u, new_mus

    def update_fn(updates, state, params=None):
        del params
        leaves, treedef = tree.flatten(updates)
        mus = treedef.flatten_up_to(state.mu)
        nus = treedef.flatten_up_to(state.nu)
        outs = [leaf(g, m, n) for g, m, n in zip(leaves, mus, nus)]
        nu = tree.unflatten(treedef, [o[0] for o in outs])
        mu = tree.unflatten(treedef, [o[1] for o in outs])
        return nu, ScaleBySM3State(mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByNovogradState(NamedTuple):
    """NovoGrad's state: the count, the first moment `mu` (like params) and one scalar second
    moment per leaf (`nu`)."""
    count: Any
    mu: Any
    nu: Any


def scale_by_novograd(b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0,
                      mu_dtype=None) -> GradientTransformation:
    """NovoGrad (Ginsburg et al., 2019), layer-wise second moments:

        nu_1 = ||g||^2,      nu_t = b2 nu_{t-1} + (1 - b2) ||g||^2     (per leaf)
        a = g / (sqrt(nu_t + eps_root) + eps) + weight_decay * p
        mu_1 = a,            mu_t = b1 mu_{t-1} + a;      u = mu_t
    """
    mu_dtype = None if mu_dtype is None else np.dtype(mu_dtype)

    def init_fn(params):
        return ScaleByNovogradState(
            count=_count0(), mu=_zeros(params, mu_dtype),
            nu=tree.map(lambda p: tnp.zeros((), dtype=tnp.asarray(p).dtype), params))

    def update_fn(updates, state, params=None):
        _need_params(params)
        count = safe_increment(state.count)
        first = count == 1

        def leaf_nu(g, n):
            sq = tnp.asarray(tnp.sum(abs_sq(g)), dtype=n.dtype)
            return tnp.where(first, sq, (1 - cast_scalar(b2, n)) * sq + cast_scalar(b2, n) * n)
        nu = tree.map(leaf_nu, updates, state.nu)

        def leaf_mu(g, p, m, n):
            a = g / (tnp.sqrt(n + cast_scalar(eps_root, n)) + cast_scalar(eps, n)) \
                + cast_scalar(weight_decay, p) * p
            return tnp.where(first, a, cast_scalar(b1, a) * m + a)
        mu = tree.map(leaf_mu, updates, params, state.mu, nu)
        if mu_dtype is not None:
            mu = tree.map(lambda m: tnp.asarray(m, dtype=mu_dtype), mu)
        return mu, ScaleByNovogradState(count=count, mu=mu, nu=nu)
    return GradientTransformation(init_fn, update_fn)


class FactoredState(NamedTuple):
    """Adafactor's state: the count and, per leaf, the row/column statistics (`v_row`,
    `v_col`; shape (1,) placeholders when not factored) or the full second moment (`v`)."""
    count: Any
    v_row: Any
    v_col: Any
    v: Any


def _factored_dims(shape, factored, min_dim):
    """The two largest axes `(d1, d0)` (second largest first) if the leaf is factored."""
    if not factored or len(shape) < 2:
        return None
    order = np.argsort(shape)
    if shape[order[-2]] < min_dim:
        return None
    return int(order[-2]), int(order[-1])


def _decay_rate_pow(i, exponent=0.8):
    """Adafactor's default second-moment decay at step `i`: `1 - (i + 1)**-exponent`."""
    t = tnp.asarray(i + 1, np.float32)
    return 1.0 - t ** (-exponent)


def scale_by_factored_rms(factored: bool = True, decay_rate=0.8, step_offset=0,
                          min_dim_size_to_factor: int = 128, epsilon=1e-30,
                          decay_rate_fn: Callable = _decay_rate_pow) -> GradientTransformation:
    """Adafactor's second-moment scaling (Shazeer & Stern, 2018). With
    `b = decay_rate_fn(count - step_offset, decay_rate)` and `s = g^2 + epsilon`:

    * factored leaves (rank >= 2, the second-largest axis at least `min_dim_size_to_factor`):
      row and column means of `s` over the largest (d0) and second-largest (d1) axes are kept
      as moving averages `R`, `C`, and `u = g / sqrt(R / mean(R) (x) C)`;
    * other leaves: `v = b v + (1 - b) s`, `u = g / sqrt(v)`.
    """
    def init_fn(params):
        rows, cols, vs = [], [], []
        leaves, treedef = tree.flatten(params)
        for p in leaves:
            p = tnp.asarray(p)
            shape, dt = tuple(p.shape), p.dtype
            dims = _factored_dims(shape, factored, min_dim_size_to_factor)
            if dims is not None:
                d1, d0 = dims
                rows.append(tnp.zeros(shape[:d0] + shape[d0 + 1:], dt))
                cols.append(tnp.zeros(shape[:d1] + shape[d1 + 1:], dt))
                vs.append(tnp.zeros((1,), dt))
            else:
                rows.append(tnp.zeros((1,), dt))
                cols.append(tnp.zeros((1,), dt))
                vs.append(tnp.zeros_like(p))
        un = functools.partial(tree.unflatten, treedef)
        return FactoredState(count=_count0(), v_row=un(rows), v_col=un(cols), v=un(vs))

    def update_fn(updates, state, params=None):
        _need_params(params)
        leaves, treedef = tree.flatten(updates)
        vr = treedef.flatten_up_to(state.v_row)
        vc = treedef.flatten_up_to(state.v_col)
        vv = treedef.flatten_up_to(state.v)
        ps = treedef.flatten_up_to(params)
        beta = decay_rate_fn(state.count - step_offset, decay_rate)
        outs = []
        for g, r, c, v, p in zip(leaves, vr, vc, vv, ps):
            shape, dt = tuple(tnp.shape(p)), tnp.asarray(p).dtype
            b = tnp.asarray(beta, dtype=dt) if np.issubdtype(dt, np.floating) else beta
            dims = _factored_dims(shape, factored, min_dim_size_to_factor)
            s = abs_sq(g) + epsilon
            ph = tnp.zeros((1,), dt)
            if dims is not None:
                d1, d0 = dims
                nr = tnp.asarray(b * r + (1.0 - b) * tnp.mean(s, axis=d0), dtype=dt)
                nc = tnp.asarray(b * c + (1.0 - b) * tnp.mean(s, axis=d1), dtype=dt)
                red = d1 - 1 if d1 > d0 else d1
                row_factor = (nr / tnp.mean(nr, axis=red, keepdims=True)) ** (-0.5)
                col_factor = nc ** (-0.5)
                u = g * tnp.expand_dims(row_factor, d0) * tnp.expand_dims(col_factor, d1)
                outs.append((u, nr, nc, ph))
            else:
                nv = tnp.asarray(b * v + (1.0 - b) * s, dtype=dt)
                outs.append((g * nv ** (-0.5), ph, ph, nv))
        un = functools.partial(tree.unflatten, treedef)
        return un([o[0] for o in outs]), FactoredState(
            count=safe_increment(state.count), v_row=un([o[1] for o in outs]),
            v_col=un([o[2] for o in outs]), v=un([o[3] for o in outs]))
    return GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# optimistic gradients, DoG, Polyak
# ---------------------------------------------------------------------------------------------

class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no update has happened yet, and the previous gradient."""
    is_initial_step: Any
    previous_gradient: Any


def scale_by_optimistic_gradient(alpha=1.0, beta=1.0) -> GradientTransformation:
    """Optimistic gradient (Mokhtari et al., 2019): `u = (alpha + beta) g - beta g_prev`, with
    `g_prev = g` on the first step."""
    def init_fn(params):
        return ScaleByOptimisticGradientState(is_initial_step=np.asarray(True),
                                              previous_gradient=_zeros(params))

    def update_fn(updates, state, params=None):
        del params

        def f(g, gp):
            gp = tnp.where(state.is_initial_step, g, gp)
            return (cast_scalar(alpha, g) + cast_scalar(beta, g)) * g - cast_scalar(beta, g) * gp
        new = tree.map(f, updates, state.previous_gradient)
        return new, ScaleByOptimisticGradientState(is_initial_step=np.asarray(False),
                                                   previous_gradient=updates)
    return GradientTransformation(init_fn, update_fn)


class ScaleByDistanceOverGradientsState(NamedTuple):
    """DoG's state per leaf: the largest distance from the initial parameters seen, the sum
    of squared gradient norms (shape (1,)), and the initial parameters."""
    max_dist: Any
    grad_sum_of_squares: Any
    init_params: Any


def scale_by_distance_over_gradients(reps_rel=1e-6, eps=1e-8, param_dtype=np.float32,
                                     global_scale=1.0) -> GradientTransformation:
    """Layer-wise DoG (Ivgi et al., 2023): per leaf,

        r_t = max(r_{t-1}, ||p - p_0||),  r_0 = reps_rel (1 + ||p_0||)
        G_t = G_{t-1} + ||g||^2;          u = global_scale * r_t / sqrt(G_t + eps) * g
    (positive: chain with `scale_by_learning_rate`.)
    """
    def l2(x, y=0.0):
        return tnp.sqrt(tnp.sum(tnp.square(x - y)))

    def init_fn(params):
        return ScaleByDistanceOverGradientsState(
            max_dist=tree.map(lambda x: reps_rel * (1 + l2(x)), params),
            grad_sum_of_squares=tree.map(lambda x: tnp.zeros((1,), np.float32), params),
            init_params=tree.map(lambda x: tnp.asarray(x, dtype=param_dtype), params))

    def update_fn(updates, state, params=None):
        _need_params(params)
        max_dist = tree.map(lambda d, x, y: tnp.maximum(d, l2(x, y)), state.max_dist, params,
                            state.init_params)
        gsos = tree.map(lambda s, g: s + tnp.sum(tnp.square(g)), state.grad_sum_of_squares,
                        updates)
        out = tree.map(lambda g, d, s: global_scale * (d / tnp.sqrt(s + eps)) * g, updates,
                       max_dist, gsos)
        return out, ScaleByDistanceOverGradientsState(max_dist, gsos, state.init_params)
    return GradientTransformation(init_fn, update_fn)


def scale_by_polyak(f_min=0.0, max_learning_rate=1.0, eps=0.0,
                    variant: str = "sps") -> GradientTransformationExtraArgs:
    """Polyak step size (Loizou et al., 2021): `u = min((f - f_min) / (||g||^2 + eps),
    max_learning_rate) * g`, with the loss value `f` passed as `update(..., value=f)`; 0 when
    `||g||^2 + eps` is below machine epsilon. `variant='sps+'` clips `f - f_min` at 0."""
    if variant not in ("sps", "sps+"):
        raise ValueError(f"scale_by_polyak: variant must be 'sps' or 'sps+', got {variant!r}")

    def update_fn(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        sq = tree_norm(updates, squared=True)
        gap = tnp.asarray(tnp.asarray(value) - f_min, dtype=sq.dtype)
        if variant == "sps+":
            gap = tnp.maximum(gap, 0)
        # optax compares with float64's machine epsilon whatever the dtype
        step = tnp.where(sq + eps <= np.finfo(float).eps, tnp.zeros_like(sq),
                         tnp.minimum(gap / (sq + eps), max_learning_rate))
        return tree.map(lambda g: cast_scalar(step, g) * g, updates), state
    return GradientTransformationExtraArgs(init_empty_state, update_fn)


# ---------------------------------------------------------------------------------------------
# stateless rescalings
# ---------------------------------------------------------------------------------------------

def safe_root_mean_squares(x, min_rms):
    """`max(rms(x), min_rms)` with a finite gradient where `rms(x) == 0`."""
    x = tnp.asarray(x)
    rms = tnp.sqrt(tnp.mean(abs_sq(lax.stop_gradient(x))))
    x = tnp.where(rms <= min_rms, tnp.ones_like(x), x)
    return tnp.where(rms <= min_rms, cast_scalar(min_rms, x), tnp.sqrt(tnp.mean(abs_sq(x))))


def scale_by_param_block_norm(min_scale=1e-3) -> GradientTransformation:
    """`u = g * max(||p||, min_scale)` per leaf."""
    def update_fn(updates, state, params=None):
        _need_params(params)
        return tree.map(lambda u, p: u * safe_norm(p, min_scale), updates, params), state
    return GradientTransformation(init_empty_state, update_fn)


def scale_by_param_block_rms(min_scale=1e-3) -> GradientTransformation:
    """`u = g * max(rms(p), min_scale)` per leaf."""
    def update_fn(updates, state, params=None):
        _need_params(params)
        return tree.map(lambda u, p: u * safe_root_mean_squares(p, min_scale), updates,
                        params), state
    return GradientTransformation(init_empty_state, update_fn)


def normalize_by_update_norm(scale_factor=1.0, eps=1e-6) -> GradientTransformation:
    """`u = scale_factor * g / (||g|| + eps)`, `||g||` the norm of all updates together."""
    def update_fn(updates, state, params=None):
        del params
        n = (tree_norm(updates) + eps) / scale_factor
        return tree.map(lambda g: g / cast_scalar(n, g), updates), state
    return GradientTransformation(init_empty_state, update_fn)


def centralize() -> GradientTransformation:
    """Gradient centralisation (Yong et al., 2020): subtract from each leaf of rank >= 2 its
    mean over all axes but the first."""
    def sub_mean(g):
        nd = len(tnp.shape(g))
        if nd > 1:
            return g - tnp.mean(g, axis=tuple(range(1, nd)), keepdims=True)
        return g

    def update_fn(updates, state, params=None):
        del params
        return tree.map(sub_mean, updates), state
    return GradientTransformation(init_empty_state, update_fn)


class ApplyEvery(NamedTuple):
    """`apply_every`'s state: the step within the period and the accumulated gradients."""
    count: Any
    grad_acc: Any


def apply_every(k: int = 1) -> GradientTransformation:
    """Accumulate updates over `k` steps: every k-th step emits their sum (and restarts), the
    others emit zeros."""
    def init_fn(params):
        return ApplyEvery(count=_count0(), grad_acc=_zeros(params))

    def update_fn(updates, state, params=None):
        del params
        c = state.count % k
        keep = c != 0
        acc = tree.map(lambda g, ga: tnp.where(keep, ga, tnp.zeros_like(ga)) + g, updates,
                       state.grad_acc)
        emit = c == k - 1
        out = tree.map(lambda ga: tnp.where(emit, ga, tnp.zeros_like(ga)), acc)
        return out, ApplyEvery(count=safe_increment(state.count) % k, grad_acc=acc)
    return GradientTransformation(init_fn, update_fn)


class AddNoiseState(NamedTuple):
    """`add_noise`'s state: the count and the random key for the next draw."""
    count: Any
    rng_key: Any


def add_noise(eta, gamma, key=None, *, seed=None) -> GradientTransformation:
    """Annealed Gaussian gradient noise (Neelakantan et al., 2015):
    `u = g + sqrt(eta / t**gamma) * N(0, 1)`, drawn as optax does (the state's key is split
    into the next key and a sample key; one key per leaf), so the noise equals optax's for the
    same key. `key` is a key or an int seed (`seed=` is the older spelling)."""
    if seed is not None:
        if key is not None:
            raise ValueError("add_noise: give key or seed, not both")
        key = seed
    if key is None:
        key = 0

    def init_fn(params):
        del params
        k = _random.PRNGKey(key) if isinstance(key, (int, np.integer)) else key
        return AddNoiseState(count=_count0(), rng_key=k)

    def update_fn(updates, state, params=None):
        del params
        count = safe_increment(state.count)
        std = tnp.sqrt(eta / tnp.asarray(count, np.float32) ** gamma)
        keys = _random.split(state.rng_key)
        noise = tree_random_like(keys[1], updates, sampler=_random.normal)
        updates = tree.map(lambda g, n: g + cast_scalar(std, g) * n, updates, noise)
        return updates, AddNoiseState(count=count, rng_key=keys[0])
    return GradientTransformation(init_fn, update_fn)
