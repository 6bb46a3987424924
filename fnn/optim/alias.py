"""Optimisers with optax's names, signatures and defaults: each only chains building blocks.

`learning_rate` is a number or a schedule `count -> rate` (count = updates so far, from 0).
Every optimiser ends with `scale_by_learning_rate`, i.e. multiplies by `-learning_rate`, so
the returned updates are added to the parameters with `apply_updates`. In the formulas `g` is
the gradient, `p` the parameter, `t` the step number (1 on the first update), `lr` the
learning rate at the current step.
"""
from __future__ import annotations

from typing import Any, Optional

from . import transformations as tx
from .base import GradientTransformation, identity
from .combine import chain, masked

__all__ = [
    "sgd", "adam", "adamw", "nadam", "nadamw", "amsgrad", "adamax", "adamaxw", "adabelief",
    "yogi", "radam", "rmsprop", "adagrad", "lamb", "lars", "lion",
]

ScalarOrSchedule = Any


def sgd(learning_rate: ScalarOrSchedule, momentum: Optional[float] = None,
        nesterov: bool = False, accumulator_dtype: Optional[Any] = None) -> GradientTransformation:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

        without momentum:   u = -lr * g
        with momentum:      tr_t = g + momentum * tr_{t-1}   (tr_0 = 0)
                            u = -lr * tr_t                      (nesterov=False)
                            u = -lr * (g + momentum * tr_t)     (nesterov=True)
    """
    return chain(
        tx.trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
        if momentum is not None else identity(),
        tx.scale_by_learning_rate(learning_rate),
    )


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None, *,
         nesterov: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2015).

        m_t = b1 * m_{t-1} + (1 - b1) * g            v_t = b2 * v_{t-1} + (1 - b2) * g**2
        m^_t = m_t / (1 - b1**t)                      v^_t = v_t / (1 - b2**t)
        u = -lr * m^_t / (sqrt(v^_t + eps_root) + eps)

    `eps` is added outside the square root (`eps_root` inside, default 0). `nesterov=True` is
    NAdam (see `nadam`).
    """
    return chain(
        tx.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                         nesterov=nesterov),
        tx.scale_by_learning_rate(learning_rate),
    )


def nadam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0,
          mu_dtype: Optional[Any] = None) -> GradientTransformation:
    """NAdam (Dozat, 2016): Adam with a Nesterov-corrected first moment.

        m^_t = b1 * m_t / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)
        u = -lr * m^_t / (sqrt(v^_t + eps_root) + eps)
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None,
          weight_decay: float = 1e-4, mask: Any = None, *,
          nesterov: bool = False) -> GradientTransformation:
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

        u = -lr * (m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay * p)

    The decay is multiplied by the learning rate (as in optax and PyTorch). `mask` (pytree of
    bools or callable `params -> mask`) selects the parameters that decay.
    """
    return chain(
        tx.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                         nesterov=nesterov),
        tx.add_decayed_weights(weight_decay, mask),
        tx.scale_by_learning_rate(learning_rate),
    )


def nadamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8, eps_root: float = 0.0, mu_dtype: Optional[Any] = None,
           weight_decay: float = 1e-4, mask: Any = None) -> GradientTransformation:
    """`adamw` with NAdam's Nesterov-corrected first moment."""
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=True)


def amsgrad(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, eps_root: float = 0.0,
            mu_dtype: Optional[Any] = None) -> GradientTransformation:
    """AMSGrad: `u = -lr * m^_t / (sqrt(max_{s<=t} v^_s + eps_root) + eps)`."""
    return chain(
        tx.scale_by_amsgrad(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype),
        tx.scale_by_learning_rate(learning_rate),
    )


def adamax(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
           eps: float = 1e-8) -> GradientTransformation:
    """Adamax: `v_t = max(|g| + eps, b2 * v_{t-1})`, `u = -lr * (m_t / (1 - b1**t)) / v_t`."""
    return chain(tx.scale_by_adamax(b1=b1, b2=b2, eps=eps),
                 tx.scale_by_learning_rate(learning_rate))


def adamaxw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
            eps: float = 1e-8, weight_decay: float = 1e-4,
            mask: Any = None) -> GradientTransformation:
    """Adamax with decoupled weight decay: `u = -lr * (adamax direction + weight_decay * p)`."""
    return chain(tx.scale_by_adamax(b1=b1, b2=b2, eps=eps),
                 tx.add_decayed_weights(weight_decay, mask),
                 tx.scale_by_learning_rate(learning_rate))


def adabelief(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
              eps: float = 1e-16, eps_root: float = 1e-16) -> GradientTransformation:
    """AdaBelief (Zhuang et al., 2020).

        m_t = b1 * m_{t-1} + (1 - b1) * g
        s_t = b2 * s_{t-1} + (1 - b2) * (g - m_t)**2 + eps_root
        u = -lr * (m_t / (1 - b1**t)) / (sqrt(s_t / (1 - b2**t)) + eps)
    """
    return chain(tx.scale_by_belief(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                 tx.scale_by_learning_rate(learning_rate))


def yogi(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-3) -> GradientTransformation:
    """Yogi (Zaheer et al., 2018): `v_t = v_{t-1} - (1 - b2) sign(v_{t-1} - g**2) g**2`,
    `u = -lr * m^_t / (sqrt(v^_t) + eps)`; moments start at 1e-6."""
    return chain(tx.scale_by_yogi(b1=b1, b2=b2, eps=eps),
                 tx.scale_by_learning_rate(learning_rate))


def radam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8, eps_root: float = 0.0, threshold: float = 5.0, *,
          nesterov: bool = False) -> GradientTransformation:
    """Rectified Adam: Adam's step times the variance rectification `r_t` once
    `rho_t >= threshold`, plain bias-corrected momentum before (see `scale_by_radam`)."""
    return chain(tx.scale_by_radam(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                   threshold=threshold, nesterov=nesterov),
                 tx.scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: Optional[float] = None, nesterov: bool = False,
            bias_correction: bool = False) -> GradientTransformation:
    """RMSProp (Hinton, 2012).

        v_t = decay * v_{t-1} + (1 - decay) * g**2,   v_0 = initial_scale
        u = -lr * g / sqrt(v_t + eps)        (eps_in_sqrt=True, the default: eps INSIDE)
        u = -lr * g / (sqrt(v_t) + eps)      (eps_in_sqrt=False)

    `centered=True` subtracts the squared running mean of `g` from `v_t` (see
    `scale_by_stddev`). With `momentum`, the scaled updates then go through
    `trace(momentum, nesterov)` (after the learning rate, as in optax).
    """
    if centered:
        first = tx.scale_by_stddev(decay=decay, eps=eps, initial_scale=initial_scale,
                                   eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction)
    else:
        first = tx.scale_by_rms(decay=decay, eps=eps, initial_scale=initial_scale,
                                eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction)
    return chain(
        first,
        tx.scale_by_learning_rate(learning_rate),
        tx.trace(decay=momentum, nesterov=nesterov) if momentum is not None else identity(),
    )


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    """Adagrad (Duchi et al., 2011).

        s_t = s_{t-1} + g**2,   s_0 = initial_accumulator_value
        u = -lr * g / sqrt(s_t + eps)    (0 where s_t == 0)
    """
    return chain(
        tx.scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        tx.scale_by_learning_rate(learning_rate),
    )


def lamb(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-6, eps_root: float = 0.0, weight_decay: float = 0.0,
         mask: Any = None) -> GradientTransformation:
    """LAMB (You et al., 2020): Adam direction plus weight decay, rescaled per leaf by the
    trust ratio.

        r = m^_t / (sqrt(v^_t + eps_root) + eps) + weight_decay * p
        u = -lr * (||p|| / ||r||) * r      (ratio 1 where either norm is 0)
    """
    return chain(
        tx.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        tx.add_decayed_weights(weight_decay=weight_decay, mask=mask),
        tx.scale_by_trust_ratio(),
        tx.scale_by_learning_rate(learning_rate),
    )


def lars(learning_rate: ScalarOrSchedule, weight_decay: float = 0.0, weight_decay_mask: Any = True,
         trust_coefficient: float = 0.001, eps: float = 0.0, trust_ratio_mask: Any = True,
         momentum: float = 0.9, nesterov: bool = False) -> GradientTransformation:
    """LARS (You et al., 2017): weight decay, per-leaf trust ratio, learning rate, momentum.

        r = g + weight_decay * p
        s = -lr * trust_coefficient * ||p|| / (||r|| + eps) * r
        tr_t = s + momentum * tr_{t-1},   u = tr_t
    """
    return chain(
        tx.add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(tx.scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps),
               mask=trust_ratio_mask),
        tx.scale_by_learning_rate(learning_rate),
        tx.trace(decay=momentum, nesterov=nesterov),
    )


def lion(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.99,
         mu_dtype: Optional[Any] = None,
         weight_decay: float = 1e-3, mask: Any = None) -> GradientTransformation:
    """Lion (Chen et al., 2023).

        u = -lr * (sign(b1 * m_{t-1} + (1 - b1) * g) + weight_decay * p)
        m_t = b2 * m_{t-1} + (1 - b2) * g
    """
    return chain(
        tx.scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        tx.add_decayed_weights(weight_decay, mask),
        tx.scale_by_learning_rate(learning_rate),
    )
