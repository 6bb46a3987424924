"""A part of `optax.contrib`: `reduce_on_plateau`, the schedule-free optimisers, AdEMAMix,
Prodigy, D-Adaptation AdamW, SAM and Muon (from `muon.py`, with the limits listed there),
with optax's signatures, formulas and state layouts. The rest of optax.contrib (COCOB, DoG,
Mechanic, Sophia, GaLore, ...) is not provided.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from transforms import lax, tree
import transforms.numpy as tnp

from .base import (EmptyState, GradientTransformation, GradientTransformationExtraArgs,
                   init_empty_state, with_extra_args_support)
from .combine import chain
from .schedules import warmup_constant_schedule
from .transformations import add_decayed_weights, scale_by_learning_rate, scale_by_rms
from .tree_utils import (tree_add_scale, tree_bias_correction, tree_dtype, tree_norm,
                         tree_update_moment, tree_update_moment_per_elem_norm, tree_zeros_like)
from .updates import apply_updates, safe_increment
from .muon import (MuonDimensionNumbers, MuonState, muon, scale_by_muon,  # noqa: F401
                   scale_by_shape)

__all__ = ["ReduceLROnPlateauState", "reduce_on_plateau", "ScheduleFreeState", "schedule_free",
           "schedule_free_adamw", "schedule_free_sgd", "schedule_free_eval_params",
           "ScaleByAdemamixState", "scale_by_ademamix", "ademamix",
           "ScaleBySimplifiedAdEMAMixState", "scale_by_simplified_ademamix",
           "simplified_ademamix", "ProdigyState", "prodigy", "DAdaptAdamWState",
           "dadapt_adamw", "NormalizeState", "normalize", "SAMState", "sam",
           "MuonDimensionNumbers", "MuonState", "muon", "scale_by_muon"]


# ---------------------------------------------------------------------------------------------
# reduce_on_plateau
# ---------------------------------------------------------------------------------------------

class ReduceLROnPlateauState(NamedTuple):
    """The current scale, the best (averaged) loss, steps without improvement, remaining
    cooldown, the losses accumulated so far and their mean."""
    scale: Any
    best_value: Any
    plateau_count: Any
    cooldown_count: Any
    count: Any
    avg_value: Any


def reduce_on_plateau(factor: float = 0.1, patience: int = 10, rtol: float = 1e-4,
                      atol: float = 0.0, cooldown: int = 0, accumulation_size: int = 1,
                      min_scale: float = 0.0) -> GradientTransformationExtraArgs:
    """Multiply the updates by a scale that drops by `factor` when the loss stops improving.

    `update(..., value=loss)`: losses are averaged over `accumulation_size` calls; each full
    average counts as an improvement if it is below `(1 - rtol) * best - atol`. After
    `patience` averages without one (and outside a `cooldown` after the last drop) the scale
    becomes `max(scale * factor, min_scale)`.
    """
    if not 0.0 < factor < 1.0:
        raise ValueError(f"reduce_on_plateau: factor must be in (0, 1), got {factor}")
    if rtol < 0.0 or atol < 0.0:
        raise ValueError(f"reduce_on_plateau: rtol and atol must be >= 0, got {rtol}, {atol}")
    if rtol == 0.0 and atol == 0.0:
        raise ValueError("reduce_on_plateau: one of rtol and atol must be positive")
    if rtol > 1.0:
        raise ValueError(f"reduce_on_plateau: rtol must be <= 1, got {rtol}")

    def init_fn(params):
        lo, hi = tree_dtype(params, "lowest"), tree_dtype(params, "highest")
        return ReduceLROnPlateauState(
            scale=np.asarray(1.0, lo), best_value=np.asarray(np.inf, hi),
            plateau_count=np.asarray(0, np.int32), cooldown_count=np.asarray(0, np.int32),
            count=np.asarray(0, np.int32), avg_value=np.asarray(0.0, hi))

    def new_scale(st):
        improved = st.avg_value < (1 - rtol) * st.best_value - atol
        best = tnp.where(improved, tnp.asarray(st.avg_value, st.best_value.dtype),
                         st.best_value)
        plateau = tnp.where(improved, tnp.zeros_like(st.plateau_count),
                            safe_increment(st.plateau_count))
        cooling = st.cooldown_count > 0
        hit = plateau == patience
        scale = tnp.where(
            cooling, st.scale,
            tnp.maximum(tnp.where(hit, st.scale * tnp.asarray(factor, st.scale.dtype),
                                  st.scale), tnp.asarray(min_scale, st.scale.dtype)))
        plateau = tnp.where(tnp.logical_or(cooling, hit), tnp.zeros_like(plateau), plateau)
        cool = tnp.where(cooling, st.cooldown_count - 1,
                         tnp.where(hit, np.int32(cooldown), np.int32(0)))
        return ReduceLROnPlateauState(
            scale=scale, best_value=best, plateau_count=tnp.asarray(plateau, np.int32),
            cooldown_count=tnp.asarray(cool, np.int32), count=np.asarray(0, np.int32),
            avg_value=tnp.zeros_like(st.avg_value))

    def update_fn(updates, state, params=None, *, value, **extra_args):
        del params, extra_args
        n = safe_increment(state.count)
        avg = (tnp.asarray(state.count, state.avg_value.dtype) * state.avg_value
               + tnp.asarray(value, state.avg_value.dtype)) \
            / tnp.asarray(n, state.avg_value.dtype)
        st = state._replace(avg_value=tnp.asarray(avg, state.avg_value.dtype), count=n)
        full = n == accumulation_size
        st = tree.map(lambda a, b: tnp.where(full, a, b), new_scale(st), st)
        return tree.map(lambda g: tnp.asarray(st.scale, g.dtype) * g, updates), st
    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# schedule-free
# ---------------------------------------------------------------------------------------------

class ScheduleFreeState(NamedTuple):
    """The interpolation `b1`, the sum of step weights, the step count, the largest
    learning rate so far, the base optimiser's state and the base iterate `z`."""
    b1: Any
    weight_sum: Any
    step_count: Any
    max_lr: Any
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state, params):
    """The parameters to evaluate a schedule-free model at: the average `x = (y - (1 - b1)
    z) / b1` (the trained `params` are the interpolation `y`)."""
    b1, z = getattr(state, "b1", None), getattr(state, "z", None)
    if b1 is None or z is None:
        raise ValueError("schedule_free_eval_params needs a ScheduleFreeState")
    return tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, z)


def schedule_free(base_optimizer: GradientTransformation, learning_rate, b1=0.9,
                  weight_lr_power=2.0, state_dtype=None) -> GradientTransformationExtraArgs:
    """Schedule-free wrapper (Defazio et al., 2024). With `z` the base optimiser's iterate,
    `x` the running average and `y` (the params) their interpolation:

        z_t = z_{t-1} + base_update(grad at y);     w_t = max_lr_t ** weight_lr_power
        c_t = w_t / sum_{i<=t} w_i;                  x_t = (1 - c_t) x_{t-1} + c_t z_t
        y_t = b1 x_t + (1 - b1) z_t                  (the update is y_t - y_{t-1})

    Evaluate at `schedule_free_eval_params(state, params)`.
    """
    base_optimizer = with_extra_args_support(base_optimizer)

    def init_fn(params):
        dt = tree_dtype(params, "lowest")
        z = params if state_dtype is None else tree.map(
            lambda p: tnp.asarray(p, dtype=state_dtype), params)
        z = tree.map(lambda t: tnp.array(t, copy=True), z)
        return ScheduleFreeState(b1=np.asarray(b1, dt), weight_sum=np.zeros([], dt),
                                 step_count=np.ones([], np.int32), max_lr=np.zeros([], dt),
                                 base_optimizer_state=base_optimizer.init(params), z=z)

    def update_fn(grads, state, params=None, **extra_args):
        lr = learning_rate
        if callable(learning_rate):
            lr = tnp.asarray(learning_rate(state.step_count), dtype=state.max_lr.dtype)
        max_lr = tnp.maximum(state.max_lr, lr)
        weight = max_lr ** weight_lr_power
        total = state.weight_sum + weight
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = weight / total
        bad = tnp.logical_or(tnp.isnan(weight), tnp.isnan(total))
        ck = tnp.where(bad, tnp.full_like(ratio, np.nan),
                       tnp.where(tnp.isnan(ratio), tnp.zeros_like(ratio), ratio))
        base_u, base_st = base_optimizer.update(grads, state.base_optimizer_state, params,
                                                **extra_args)
        z = tree.map(lambda zi, u: tnp.asarray(zi + u, dtype=tnp.asarray(zi).dtype), state.z,
                     base_u)
        prev_x = tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, state.z)
        x = tree.map(lambda xi, zi: (1.0 - ck) * xi + ck * zi, prev_x, z)
        new_y = tree.map(lambda xi, zi: b1 * xi + (1.0 - b1) * zi, x, z)
        updates = tree.map(lambda n, p: n - p, new_y, params)
        return updates, ScheduleFreeState(b1=state.b1, weight_sum=total,
                                          step_count=safe_increment(state.step_count),
                                          max_lr=max_lr, base_optimizer_state=base_st, z=z)
    return GradientTransformationExtraArgs(init_fn, update_fn)


def schedule_free_sgd(learning_rate=1.0, warmup_steps: Optional[int] = None, b1=0.9,
                      weight_decay=None, weight_lr_power=2.0, state_dtype=None):
    """Schedule-free SGD: `schedule_free(sgd(lr))` (with `add_decayed_weights` first when
    `weight_decay` is given; a linear warm-up from 0 over `warmup_steps`)."""
    from .alias import sgd
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(0, learning_rate, warmup_steps)
    opt = sgd(learning_rate)
    if weight_decay is not None:
        opt = chain(add_decayed_weights(weight_decay), opt)
    return schedule_free(opt, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(learning_rate=0.0025, warmup_steps: Optional[int] = None, b1=0.9,
                        b2=0.999, eps=1e-8, weight_decay=0.0, weight_lr_power=2.0,
                        state_dtype=None):
    """Schedule-free AdamW: `schedule_free` around RMS scaling with bias correction
    (`g / (sqrt(v^) + eps)`), decoupled weight decay and `-lr`."""
    if warmup_steps is not None:
        learning_rate = warmup_constant_schedule(0, learning_rate, warmup_steps)
    opt = chain(scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
                add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    return schedule_free(opt, learning_rate=learning_rate, b1=b1,
                         weight_lr_power=weight_lr_power, state_dtype=state_dtype)


# ---------------------------------------------------------------------------------------------
# AdEMAMix
# ---------------------------------------------------------------------------------------------

class ScaleByAdemamixState(NamedTuple):
    """The counts (overall and for the slow momentum), the fast and slow momenta and the
    second moment."""
    count: Any
    count_m2: Any
    m1: Any
    m2: Any
    nu: Any


def scale_by_ademamix(b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8, eps_root=0.0,
                      mu_dtype=None) -> GradientTransformation:
    """AdEMAMix (Pagliardini et al., 2024): Adam plus a slow momentum `m2` (decay `b3`,
    not debiased) weighted by `alpha`:

        u = (m1^ + alpha m2) / (sqrt(nu^ + eps_root) + eps)
    `b3` and `alpha` may be schedules of the step count.
    """
    mu_dtype = None if mu_dtype is None else np.dtype(mu_dtype)

    def init_fn(params):
        z = tree_zeros_like(params, dtype=mu_dtype)
        return ScaleByAdemamixState(count=np.zeros([], np.int32),
                                    count_m2=np.zeros([], np.int32), m1=z, m2=z, nu=z)

    def update_fn(updates, state, params=None):
        del params
        c_b3 = b3(state.count_m2) if callable(b3) else b3
        c_alpha = alpha(state.count_m2) if callable(alpha) else alpha
        m1 = tree_update_moment(updates, state.m1, b1, 1)
        m2 = tree_update_moment(updates, state.m2, c_b3, 1)
        nu = tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = safe_increment(state.count)
        m1_hat = tree_bias_correction(m1, b1, count)
        nu_hat = tree_bias_correction(nu, b2, count)
        out = tree.map(lambda a, b, v: (a + c_alpha * b) / (tnp.sqrt(v + eps_root) + eps),
                       m1_hat, m2, nu_hat)
        return out, ScaleByAdemamixState(count=count, count_m2=safe_increment(state.count_m2),
                                         m1=m1, m2=m2, nu=nu)
    return GradientTransformation(init_fn, update_fn)


def ademamix(learning_rate, b1=0.9, b2=0.999, b3=0.9999, alpha=5.0, eps=1e-8, eps_root=0.0,
             mu_dtype=None, weight_decay=0.0, mask=None):
    """AdEMAMix: `scale_by_ademamix`, `add_decayed_weights(weight_decay, mask)`, `-lr`."""
    return chain(scale_by_ademamix(b1=b1, b2=b2, b3=b3, alpha=alpha, eps=eps,
                                   eps_root=eps_root, mu_dtype=mu_dtype),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    """The count, the (undamped) momentum `m` and the second moment `n`."""
    t: Any
    m: Any
    n: Any


def scale_by_simplified_ademamix(b1=0.99, b2=0.95, alpha=0.0, eps=1e-8,
                                 eps_root=0.0) -> GradientTransformation:
    """Simplified AdEMAMix: `m = g + b1 m`, `n = b2 n + (1 - b2) g^2`,
    `u = (m + alpha g) / (sqrt(n^ + eps_root) + eps)` (`alpha` may be a schedule)."""
    def init_fn(params):
        return ScaleBySimplifiedAdEMAMixState(t=np.zeros([], np.int32),
                                              m=tree_zeros_like(params),
                                              n=tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        c_alpha = alpha(state.t) if callable(alpha) else alpha
        m = tree_add_scale(updates, b1, state.m)
        n = tree.map(lambda g, old: g * g + b2 * (old - g * g), updates, state.n)
        t = safe_increment(state.t)
        n_hat = tree_bias_correction(n, b2, t)
        num = tree_add_scale(m, c_alpha, updates)
        out = tree.map(lambda a, v: a / (tnp.sqrt(v + eps_root) + eps), num, n_hat)
        return out, ScaleBySimplifiedAdEMAMixState(t=t, m=m, n=n)
    return GradientTransformation(init_fn, update_fn)


def simplified_ademamix(learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0,
                        weight_decay=0.0, mask=None):
    """Simplified AdEMAMix with decoupled weight decay and `-lr`."""
    return chain(scale_by_simplified_ademamix(b1=b1, b2=b2, alpha=alpha, eps=eps,
                                              eps_root=eps_root),
                 add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))


# ---------------------------------------------------------------------------------------------
# learning-rate-free Adam variants
# ---------------------------------------------------------------------------------------------

def _bias_correction_factor(beta1, beta2, count, dt):
    """`sqrt(1 - beta2^t) / (1 - beta1^t)` in the state's dtype (as JAX computes a weak
    float to an int32 power without x64)."""
    t = tnp.asarray(count, dt)
    return tnp.sqrt(1 - tnp.power(tnp.asarray(beta2, dt), t)) \
        / (1 - tnp.power(tnp.asarray(beta1, dt), t))


class ProdigyState(NamedTuple):
    """Adam's moments of the scaled gradients, the weighted gradient sum, the initial
    parameters, the distance estimate `estim_lr`, its weighted numerator and the count."""
    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: Any
    numerator_weighted: Any
    count: Any


def prodigy(learning_rate=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, estim_lr0=1e-6,
            estim_lr_coef=1.0, weight_decay=0.0,
            safeguard_warmup: bool = False) -> GradientTransformationExtraArgs:
    """Prodigy (Mishchenko & Defazio, 2023): Adam whose step is `d * lr`, with the distance
    to the solution `d` estimated on the fly from `<g, p0 - p>` against the weighted sum of
    past gradients (`d` never decreases; starts at `estim_lr0`)."""
    beta1, beta2 = betas
    if beta3 is None:
        beta3 = beta2 ** 0.5

    def init_fn(params):
        dt = tree_dtype(params, "lowest")
        z = tree_zeros_like(params)
        return ProdigyState(z, z, z, params, np.asarray(estim_lr0, dt), np.zeros((), dt),
                            np.zeros((), np.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("prodigy needs params")
        dt = state.estim_lr.dtype
        count = safe_increment(state.count)
        sched = learning_rate(state.count) if callable(learning_rate) else learning_rate
        d = state.estim_lr
        dlr = tnp.asarray(d * sched * _bias_correction_factor(beta1, beta2, count, dt), dt)
        dg = tree.map(lambda g: d * g, updates)
        num_acc = sum(tnp.sum(g * (p0 - p)) for g, p0, p in zip(
            tree.leaves(updates), tree.leaves(state.params0), tree.leaves(params)))
        exp_avg = tree.map(lambda ea, x: beta1 * ea + (1 - beta1) * x, state.exp_avg, dg)
        exp_avg_sq = tree.map(lambda es, x: beta2 * es + (1 - beta2) * x * x,
                              state.exp_avg_sq, dg)
        step = d if safeguard_warmup else dlr
        grad_sum = tree.map(lambda s, x: beta3 * s + step * x / estim_lr0, state.grad_sum, dg)
        numer = beta3 * state.numerator_weighted + d / estim_lr0 * dlr * num_acc
        denom = sum(tnp.sum(tnp.abs(s)) for s in tree.leaves(grad_sum))
        new_d = tnp.maximum(d, estim_lr_coef * numer / denom)
        out = tree.map(lambda ea, es, p: -weight_decay * dlr * p
                       - dlr * ea / (tnp.sqrt(es) + new_d * eps), exp_avg, exp_avg_sq, params)
        return out, ProdigyState(exp_avg, exp_avg_sq, grad_sum, state.params0,
                                 tnp.asarray(new_d, dt), tnp.asarray(numer, dt), count)
    return GradientTransformationExtraArgs(init_fn, update_fn)


class DAdaptAdamWState(NamedTuple):
    """Adam's moments, the weighted gradient sum, the distance estimate `estim_lr`, its
    weighted numerator and the count."""
    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    estim_lr: Any
    numerator_weighted: Any
    count: Any


def dadapt_adamw(learning_rate=1.0, betas=(0.9, 0.999), eps=1e-8, estim_lr0=1e-6,
                 weight_decay=0.0) -> GradientTransformationExtraArgs:
    """D-Adaptation AdamW (Defazio & Mishchenko, 2023): AdamW with step `d * lr * bias
    correction`, `d` a non-decreasing lower bound on the distance to the solution estimated
    from the gradients (starting at `estim_lr0`)."""
    beta1, beta2 = betas
    sb2 = beta2 ** 0.5

    def init_fn(params):
        dt = tree_dtype(params, "lowest")
        z = tree_zeros_like(params)
        return DAdaptAdamWState(z, z, z, np.asarray(estim_lr0, dt), np.zeros([], dt),
                                np.zeros([], np.int32))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("dadapt_adamw needs params")
        dt = state.numerator_weighted.dtype
        sched = learning_rate(state.count) if callable(learning_rate) else learning_rate
        count = safe_increment(state.count)
        dlr = tnp.asarray(state.estim_lr * sched * _bias_correction_factor(beta1, beta2, count,
                                                                           dt), dt)
        s_w = tree.map(lambda s, es: s / (tnp.sqrt(es) + eps), state.grad_sum,
                       state.exp_avg_sq)
        num_acc = sum(tnp.sum(g * s) for g, s in zip(tree.leaves(updates), tree.leaves(s_w)))
        exp_avg = tree.map(lambda ea, g: beta1 * ea + (1 - beta1) * dlr * g, state.exp_avg,
                           updates)
        exp_avg_sq = tree.map(lambda es, g: beta2 * es + (1 - beta2) * g * g,
                              state.exp_avg_sq, updates)
        grad_sum = tree.map(lambda s, g: sb2 * s + (1 - sb2) * dlr * g, state.grad_sum,
                            updates)
        l1 = sum(tnp.sum(tnp.abs(s)) for s in tree.leaves(grad_sum))
        numer = sb2 * state.numerator_weighted + (1 - sb2) * dlr * num_acc
        new_d = tnp.maximum(state.estim_lr, numer / ((1 - sb2) * l1))
        out = tree.map(lambda ea, es, p: -weight_decay * dlr * p - ea / (tnp.sqrt(es) + eps),
                       exp_avg, exp_avg_sq, params)
        return out, DAdaptAdamWState(exp_avg, exp_avg_sq, grad_sum, tnp.asarray(new_d, dt),
                                     tnp.asarray(numer, dt), count)
    return GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# sharpness-aware minimisation
# ---------------------------------------------------------------------------------------------

NormalizeState = EmptyState


def normalize() -> GradientTransformation:
    """`u = g / ||g||` (the norm of all updates together): SAM's usual adversarial step."""
    def update_fn(updates, state, params=None):
        del params
        n = tree_norm(updates)
        return tree.map(lambda g: g / tnp.asarray(n, g.dtype), updates), state
    return GradientTransformation(init_empty_state, update_fn)


class SAMState(NamedTuple):
    """Steps since the last outer update, the outer and adversarial optimisers' states, and
    the parameters at the start of the cycle (`cache`, None in opaque mode)."""
    steps_since_sync: Any
    opt_state: Any
    adv_state: Any
    cache: Any


def sam(optimizer: GradientTransformation, adv_optimizer: GradientTransformation,
        sync_period: int = 2, reset_state: bool = True, opaque_mode: bool = False,
        batch_axis_name: Optional[str] = None) -> GradientTransformationExtraArgs:
    """Sharpness-aware minimisation (Foret et al., 2021).

    Transparent mode (default): of every `sync_period` calls, the first `sync_period - 1` move
    the parameters *up* by `adv_optimizer` (e.g. `chain(normalize(), sgd(rho))`), and the last
    returns the update that takes the parameters from wherever they are to the cycle's start
    `cache` plus `optimizer`'s step for the gradient at the adversarial point.
    `reset_state` re-initialises the adversarial state each cycle.

    Opaque mode: one call does the whole cycle, calling `grad_fn(params, i)` (keyword
    argument of `update`) for the gradients at the adversarial points; `batch_axis_name`
    averages them over that mapped axis.
    """
    if sync_period < 1:
        raise ValueError(f"sam: sync_period must be >= 1, got {sync_period}")

    def init_fn(params):
        return SAMState(steps_since_sync=np.zeros([], np.int32), opt_state=optimizer.init(params),
                        adv_state=adv_optimizer.init(params),
                        cache=None if opaque_mode else params)

    def pick(cond, a, b):
        return tree.map(lambda x, y: tnp.where(cond, x, y), a, b)

    def transparent(updates, state, params=None, *, grad_fn=None):
        del grad_fn
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_u, adv_st = adv_optimizer.update(updates, state.adv_state, params)
        adv_u = tree.map(lambda x: -x, adv_u)
        opt_u, opt_st = optimizer.update(updates, state.opt_state, state.cache)
        opt_u = tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_u)
        cache = pick(first, params, state.cache)
        out = pick(last, opt_u, adv_u)
        if reset_state:
            adv_st = pick(last, adv_optimizer.init(params), adv_st)
        else:
            adv_st = pick(last, state.adv_state, adv_st)
        opt_st = pick(last, opt_st, state.opt_state)
        return out, SAMState(steps_since_sync=(state.steps_since_sync + 1) % sync_period,
                             opt_state=opt_st, adv_state=adv_st, cache=cache)

    def opaque(updates, state, params=None, *, grad_fn=None):
        if grad_fn is None:
            raise ValueError("sam: opaque_mode needs update(..., grad_fn=fn(params, i))")
        adv_params, adv_u, adv_st = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_u, adv_st = adv_optimizer.update(adv_u, adv_st, adv_params)
            adv_u = tree.map(lambda x: -x, adv_u)
            adv_params = apply_updates(adv_params, adv_u)
            adv_u = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_u = lax.pmean(adv_u, axis_name=batch_axis_name)
        if reset_state:
            adv_st = adv_optimizer.init(params)
        out, opt_st = optimizer.update(adv_u, state.opt_state, params)
        return out, SAMState(steps_since_sync=np.zeros([], np.int32), opt_state=opt_st,
                             adv_state=adv_st, cache=None)

    return GradientTransformationExtraArgs(init_fn, opaque if opaque_mode else transparent)
