"""More optimisers with optax's names, signatures and defaults (each chains building blocks
from `transformations` and `scalers`; `learning_rate` is a number or a schedule)."""
from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from . import scalers as sc
from . import transformations as tx

from .combine import chain

__all__ = ["adadelta", "adafactor", "adan", "fromage", "noisy_sgd", "novograd",
           "optimistic_adam", "optimistic_adam_v2", "optimistic_gradient_descent",
           "polyak_sgd", "rprop", "sign_sgd", "signum", "sm3"]


def adadelta(learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None):
    """AdaDelta: `add_decayed_weights`, `scale_by_adadelta(rho, eps)`, then `-lr`. Without a
    learning rate the last step is the identity, as in optax (so the updates then point
    uphill: pass `learning_rate=1.0` for AdaDelta's own unit-rate descent)."""
    return chain(tx.add_decayed_weights(weight_decay, mask=weight_decay_mask),
                 sc.scale_by_adadelta(rho=rho, eps=eps),
                 tx.scale_by_learning_rate(learning_rate))


def adafactor(learning_rate=None, min_dim_size_to_factor: int = 128, decay_rate=0.8,
              decay_offset=0, multiply_by_parameter_scale: bool = True, clipping_threshold=1.0,
              momentum=None, dtype_momentum=np.float32, weight_decay_rate=None, eps=1e-30,
              factored: bool = True, weight_decay_mask=None):
    """Adafactor (Shazeer & Stern, 2018): `scale_by_factored_rms`, then (optionally)
    `clip_by_block_rms(clipping_threshold)`, `lr`, `scale_by_param_block_rms()`,
    `ema(momentum)` (no debiasing), `add_decayed_weights(weight_decay_rate)`, and `-1`."""
    chain_ = [sc.scale_by_factored_rms(factored, decay_rate, decay_offset,
                                       min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        chain_.append(tx.clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        chain_.append(tx.scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        chain_.append(sc.scale_by_param_block_rms())
    if momentum is not None:
        chain_.append(tx.ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        chain_.append(tx.add_decayed_weights(weight_decay_rate, mask=weight_decay_mask))
    chain_.append(tx.scale(-1))
    return chain(*chain_)


def adan(learning_rate, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=1e-8, weight_decay=0.0,
         mask=None):
    """Adan: `scale_by_adan`, `add_decayed_weights(weight_decay, mask)`, `-lr`."""
    return chain(sc.scale_by_adan(b1=b1, b2=b2, b3=b3, eps=eps, eps_root=eps_root),
                 tx.add_decayed_weights(weight_decay, mask), tx.scale_by_learning_rate(
                     learning_rate))


def fromage(learning_rate, min_norm=1e-6):
    """Fromage (Bernstein et al., 2020): with `m = 1 / sqrt(1 + lr^2)`, the trust-ratio-scaled
    gradient times `-lr m`, then the parameters shrink by `m - 1`."""
    if not callable(learning_rate):
        mult = 1 / (1 + learning_rate ** 2) ** 0.5
        return chain(tx.scale_by_trust_ratio(min_norm),
                     tx.scale_by_learning_rate(learning_rate * mult),
                     tx.add_decayed_weights(mult - 1))

    def mult_of(c):
        return 1 / (1 + learning_rate(c) ** 2) ** 0.5
    return chain(tx.scale_by_trust_ratio(min_norm),
                 tx.scale_by_learning_rate(lambda c: mult_of(c) * learning_rate(c)),
                 tx.add_decayed_weights(lambda c: mult_of(c) - 1))


def noisy_sgd(learning_rate, eta=0.01, gamma=0.55, key=None, *, seed=None):
    """SGD with annealed Gaussian gradient noise: `add_noise(eta, gamma, key)` then `-lr`."""
    return chain(sc.add_noise(eta, gamma, key, seed=seed),
                 tx.scale_by_learning_rate(learning_rate))


def novograd(learning_rate, b1=0.9, b2=0.25, eps=1e-6, eps_root=0.0, weight_decay=0.0):
    """NovoGrad: `scale_by_novograd` then `-lr`."""
    return chain(sc.scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                      weight_decay=weight_decay),
                 tx.scale_by_learning_rate(learning_rate))


def optimistic_gradient_descent(learning_rate, alpha=1.0, beta=1.0):
    """Optimistic gradient descent: `scale_by_optimistic_gradient(alpha, beta)` then `-lr`."""
    return chain(sc.scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 tx.scale_by_learning_rate(learning_rate))


def optimistic_adam(learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                    mu_dtype=None, *, nesterov: bool = True):
    """The older optimistic Adam: Adam's direction, then `scale_by_optimistic_gradient(alpha=
    learning_rate, beta=optimism or learning_rate)`, then `-1` (no schedules; prefer
    `optimistic_adam_v2`)."""
    warnings.warn("optimistic_adam is deprecated in optax; use optimistic_adam_v2",
                  DeprecationWarning, stacklevel=2)
    if callable(learning_rate):
        raise ValueError("optimistic_adam: learning-rate schedules are not supported; use "
                         "optimistic_adam_v2")
    if optimism is None:
        optimism = learning_rate
    return chain(tx.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                  nesterov=nesterov),
                 sc.scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
                 tx.scale_by_learning_rate(1.0))


def optimistic_adam_v2(learning_rate, *, alpha=1.0, beta=1.0, b1=0.9, b2=0.999, eps=1e-8,
                       eps_root=0.0, mu_dtype=None, nesterov: bool = True):
    """Optimistic Adam: Adam's (Nesterov) direction, `scale_by_optimistic_gradient(alpha,
    beta)`, then `-lr`."""
    return chain(tx.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
                                  nesterov=nesterov),
                 sc.scale_by_optimistic_gradient(alpha=alpha, beta=beta),
                 tx.scale_by_learning_rate(learning_rate))


def polyak_sgd(max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant: str = "sps"):
    """SGD with the Polyak step size: `u = -scaling * min((f - f_min) / (||g||^2 + eps),
    max_learning_rate) * g`; pass the loss as `update(grads, state, params, value=loss)`."""
    from .alias import sgd
    return chain(sgd(learning_rate=scaling),
                 sc.scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps,
                                    variant=variant))


def rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
    """Rprop: `scale_by_rprop` then `-1`."""
    return chain(sc.scale_by_rprop(learning_rate=learning_rate, eta_minus=eta_minus,
                                   eta_plus=eta_plus, min_step_size=min_step_size,
                                   max_step_size=max_step_size), tx.scale(-1.0))


def sign_sgd(learning_rate):
    """signSGD: `u = -lr * sign(g)`."""
    return chain(tx.scale_by_sign(), tx.scale_by_learning_rate(learning_rate))


def signum(learning_rate, beta=0.9, accumulator_dtype: Optional[Any] = None):
    """Signum: `u = -lr * sign(m)`, `m = beta m + (1 - beta) g` (not debiased)."""
    return chain(tx.ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
                 tx.scale_by_sign(), tx.scale_by_learning_rate(learning_rate))


def sm3(learning_rate, momentum=0.9):
    """SM3: `scale_by_sm3(momentum)` then `-learning_rate` (a number)."""
    return chain(sc.scale_by_sm3(momentum), tx.scale(-learning_rate))


