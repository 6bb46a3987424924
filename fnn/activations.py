"""Activation functions, as `jax.nn`: numerically stable and with well-defined derivatives.

Each is a plain function of arrays (NumPy arrays eagerly, traced values inside transforms), so
it can be used directly as a layer in `fnn.Sequential`.

Conventions worth knowing:

* `relu'(0) = 0` (as JAX); `leaky_relu` uses `x >= 0` for the identity branch (as JAX).
* NaN inputs give NaN outputs (as JAX and `np.maximum(nan, 0)`); `softmax`/`log_softmax` of a
  row holding `+inf` or NaN is all NaN, as in JAX.
* Functions with two branches compute each branch only on inputs from its own range (the
  "double where" trick), so a branch that is not selected can never inject `inf`/`NaN` into a
  gradient.
* `softmax`, `log_softmax` and `logsumexp` subtract the maximum (held constant for
  differentiation, which is exact because they are shift invariant); rows containing `-inf`
  entries have finite, correct derivatives (the `-inf` entries get zero).
* `logsumexp` and `log_softmax` add the non-maximal terms with `log1p`, so
  `logsumexp([0., -20.])` in float32 is 2.06e-9, not 0 (JAX's `log(sum(exp))` rounds to 0:
  the results differ from JAX's by less than one ulp of the larger of the result and 1).
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
    """`max(x, 0)`, with derivative 0 at 0; NaN stays NaN."""
    x = tnp.asarray(x)
    return tnp.where(x <= 0, tnp.zeros_like(x), x)


def relu6(x):
    """`min(max(x, 0), 6)`, with derivative 0 at 0 and 6 (as JAX); NaN stays NaN."""
    x = tnp.asarray(x)
    return tnp.where(x <= 0, tnp.zeros_like(x), tnp.where(x >= 6, tnp.full_like(x, 6), x))


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


def _max_held(x, axis):
    """The maximum along `axis` (kept dims), held constant, `+inf`/NaN kept (so a row holding
    them is NaN, as JAX's softmax)."""
    return lax.stop_gradient(tnp.max(x, axis=axis, keepdims=True))


def _log1p_rest(x, m, axis):
    """`log(sum(exp(x - m), axis))` (kept dims) as `log1p(t)`, `t` the sum without one maximal
    term: `exp(x - m)` at the maxima is 1 exactly, so the small terms are not lost by adding
    them to 1 first. At the maxima the summand is `e - stop_gradient(e)` (0, with `e`'s
    derivatives), plus `count(maxima) - 1`, so every derivative is that of the plain sum."""
    e = tnp.exp(x - m)
    is_max = x == m
    rest = tnp.where(is_max, e - lax.stop_gradient(e), e)
    ties = tnp.sum(is_max.astype(x.dtype), axis=axis, keepdims=True) - 1
    t = tnp.sum(rest, axis=axis, keepdims=True) + lax.stop_gradient(ties)
    with np.errstate(divide="ignore", invalid="ignore"):   # log1p(-1) = -inf: all -inf
        return tnp.log1p(t)


def softmax(x, axis=-1):
    """`exp(x) / sum(exp(x), axis)`, computed with the maximum subtracted."""
    x = _float(x)
    with np.errstate(invalid="ignore"):
        unnormalized = tnp.exp(x - _max_held(x, axis))
        return unnormalized / tnp.sum(unnormalized, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """`x - logsumexp(x, axis)`, computed with the maximum subtracted (non-maximal terms added
    with `log1p`)."""
    x = _float(x)
    m = _max_held(x, axis)
    with np.errstate(invalid="ignore"):
        return (x - m) - _log1p_rest(x, m, axis)


def logsumexp(x, axis=None, keepdims=False):
    """`log(sum(exp(x), axis))`, stable for large |x| and accurate near 0 (`max +
    log1p(rest)`); `-inf` entries contribute nothing (an all-`-inf` reduction gives `-inf`),
    `+inf` gives `+inf`, NaN gives NaN."""
    x = _float(x)
    m = _shift(x, axis)
    with np.errstate(invalid="ignore"):
        out = _log1p_rest(x, m, axis) + m
    if not keepdims:
        axes = tuple(range(x.ndim)) if axis is None else axis
        out = tnp.squeeze(out, axis=axes)
    return out


def one_hot(x, num_classes, dtype=np.float32, axis=-1):
    """`x[..., None] == arange(num_classes)` as `dtype`, the new axis at `axis`.

    As `jax.nn.one_hot`: indices outside `[0, num_classes)` (negative ones included: no
    wrap-around) and NaN give an all-zero row; float indices count only when integral. The
    default dtype is float32, which is `jax.nn.one_hot`'s default float without x64 (JAX's
    default mode); `dtype=None` means the same.
    """
    if dtype is None:
        dtype = np.float32
    x = tnp.asarray(x)
    classes = np.arange(int(num_classes))
    if axis in (-1, x.ndim):
        return (tnp.expand_dims(x, -1) == classes).astype(dtype)
    out = (tnp.expand_dims(x, -1) == classes).astype(dtype)
    return tnp.moveaxis(out, -1, axis)
