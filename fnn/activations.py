"""Activation functions, as `jax.nn`: numerically stable and with well-defined derivatives.

Each is a plain function of arrays (NumPy arrays eagerly, traced values inside transforms), so
it can be used directly as a layer in `fnn.Sequential`.

Conventions worth knowing:

* `relu'(0) = 0` (as JAX); `leaky_relu` uses `x >= 0` for the identity branch (as JAX).
* Functions with two branches compute each branch only on inputs from its own range (the
  "double where" trick), so a branch that is not selected can never inject `inf`/`NaN` into a
  gradient.
* `softmax`, `log_softmax` and `logsumexp` subtract the maximum (held constant for
  differentiation, which is exact because they are shift invariant); rows containing `-inf`
  entries have finite, correct derivatives (the `-inf` entries get zero).
"""
from __future__ import annotations

import math

import numpy as np

import transforms.numpy as tnp
from transforms import lax

__all__ = ["relu", "relu6", "sigmoid", "log_sigmoid", "tanh", "softplus", "gelu", "silu",
           "swish", "leaky_relu", "elu", "softmax", "log_softmax", "logsumexp", "one_hot"]


def _float(x):
    x = tnp.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = x.astype(np.float32)
    return x


def relu(x):
    """`max(x, 0)`, with derivative 0 at 0."""
    x = tnp.asarray(x)
    return tnp.where(x > 0, x, tnp.zeros_like(x))


def relu6(x):
    """`min(max(x, 0), 6)`."""
    x = tnp.asarray(x)
    return tnp.where(x > 0, tnp.where(x < 6, x, tnp.full_like(x, 6)), tnp.zeros_like(x))


def sigmoid(x):
    """`1 / (1 + exp(-x))` (the logistic function)."""
    return lax.logistic(_float(x))


def tanh(x):
    """Hyperbolic tangent."""
    return tnp.tanh(_float(x))


def softplus(x):
    """`log(1 + exp(x))`, stable for large |x|; its derivative is `sigmoid(x)` everywhere."""
    x = _float(x)
    pos = x > 0
    zero = tnp.zeros_like(x)
    x_pos = tnp.where(pos, x, zero)       # only non-negative values reach exp(-x)
    x_neg = tnp.where(pos, zero, x)       # only non-positive values reach exp(x)
    return tnp.where(pos, x_pos + tnp.log1p(tnp.exp(-x_pos)), tnp.log1p(tnp.exp(x_neg)))


def log_sigmoid(x):
    """`log(sigmoid(x)) = -softplus(-x)`."""
    return -softplus(-_float(x))


def gelu(x, approximate=True):
    """Gaussian error linear unit. `approximate=True` (the default, as `jax.nn.gelu`) uses
    `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; otherwise `0.5 x (1 + erf(x / sqrt 2))`."""
    x = _float(x)
    if approximate:
        c = np.asarray(math.sqrt(2.0 / math.pi), x.dtype)
        return 0.5 * x * (1.0 + tnp.tanh(c * (x + 0.044715 * (x * x * x))))
    return 0.5 * x * (1.0 + lax.erf(x * np.asarray(1.0 / math.sqrt(2.0), x.dtype)))


def silu(x):
    """`x * sigmoid(x)` (also called swish)."""
    x = _float(x)
    return x * lax.logistic(x)


swish = silu


def leaky_relu(x, negative_slope=0.01):
    """`x` where `x >= 0`, else `negative_slope * x`."""
    x = _float(x)
    return tnp.where(x >= 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    """`x` where `x > 0`, else `alpha * (exp(x) - 1)`."""
    x = _float(x)
    pos = x > 0
    safe = tnp.where(pos, tnp.zeros_like(x), x)   # exp never sees large positive inputs
    return tnp.where(pos, x, alpha * tnp.expm1(safe))


def _shift(x, axis):
    """The maximum along `axis` (kept dims), held constant, with non-finite maxima -> 0."""
    m = tnp.max(x, axis=axis, keepdims=True)
    m = tnp.where(tnp.isfinite(m), m, tnp.zeros_like(m))
    return lax.stop_gradient(m)


def softmax(x, axis=-1):
    """`exp(x) / sum(exp(x), axis)`, computed with the maximum subtracted."""
    x = _float(x)
    unnormalized = tnp.exp(x - _shift(x, axis))
    return unnormalized / tnp.sum(unnormalized, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """`x - logsumexp(x, axis)`, computed with the maximum subtracted."""
    x = _float(x)
    shifted = x - _shift(x, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return shifted - tnp.log(tnp.sum(tnp.exp(shifted), axis=axis, keepdims=True))


def logsumexp(x, axis=None, keepdims=False):
    """`log(sum(exp(x), axis))`, stable for large |x|; `-inf` entries contribute nothing (an
    all-`-inf` reduction gives `-inf`)."""
    x = _float(x)
    m = _shift(x, axis)
    s = tnp.sum(tnp.exp(x - m), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):            # log(0) = -inf for all -inf inputs
        out = tnp.log(s) + m
    if not keepdims:
        axes = tuple(range(x.ndim)) if axis is None else axis
        out = tnp.squeeze(out, axis=axes)
    return out


def one_hot(x, num_classes, dtype=np.float32, axis=-1):
    """`x[..., None] == arange(num_classes)` as `dtype` (out-of-range entries give all zeros)."""
    x = tnp.asarray(x)
    classes = np.arange(int(num_classes))
    if axis in (-1, x.ndim):
        return (tnp.expand_dims(x, -1) == classes).astype(dtype)
    out = (tnp.expand_dims(x, -1) == classes).astype(dtype)
    return tnp.moveaxis(out, -1, axis)
