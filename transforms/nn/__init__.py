"""`jax.nn`: activation functions and friends, over `transforms.numpy` and `lax`.

    from transforms import nn
    nn.relu(x), nn.gelu(x), nn.softmax(logits), nn.one_hot(labels, 10)
    nn.initializers.glorot_uniform()(key, (784, 128))

Every function is a composition of `tnp`/`lax` primitives, so it differentiates, batches and
compiles. Conventions (as JAX):

* `relu'(0) = 0`; NaN inputs propagate (`relu(nan)` is `nan`).
* Two-branch functions compute each branch only on inputs from its own range (the "double
  where" trick), so an unselected branch never injects `inf`/`NaN` into a gradient.
* `softmax`, `log_softmax` and `logsumexp` subtract the maximum (held constant, which is exact
  since they are shift invariant); `-inf` entries get zero derivative.
* Integer inputs are computed in float32 (JAX's default float). `one_hot`'s default dtype is
  float32, or float64 after `transforms.config.update("jax_enable_x64", True)`, as JAX.
"""
from __future__ import annotations

import functools
import math

import numpy as np

import transforms.numpy as tnp
from transforms import lax
from transforms.custom_derivatives import custom_jvp

from . import initializers  # noqa: F401
from ._attention import dot_product_attention  # noqa: F401

__all__ = ["relu", "relu6", "sigmoid", "log_sigmoid", "softplus", "soft_sign", "silu", "swish",
           "gelu", "elu", "celu", "selu", "leaky_relu", "hard_tanh", "hard_sigmoid", "hard_silu",
           "hard_swish", "glu", "softmax", "log_softmax", "logsumexp", "logmeanexp",
           "standardize", "one_hot", "tanh", "mish", "squareplus", "sparse_plus",
           "sparse_sigmoid", "log1mexp", "identity", "initializers", "dot_product_attention"]


def _float(x):
    x = tnp.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact):
        x = x.astype(np.float32)
    return x


def _const(v, x):
    return np.asarray(v, x.dtype)


def identity(x):
    """`x` unchanged."""
    return tnp.asarray(x)


def relu(x):
    """`max(x, 0)`; derivative 0 at 0; `relu(nan)` is nan."""
    x = tnp.asarray(x)
    return tnp.where(x <= 0, tnp.zeros_like(x), x)


def relu6(x):
    """`min(max(x, 0), 6)`; derivative 0 at 0 and 6; NaN propagates. Integer input gives
    floats, as JAX's `min(max(x, 0), 6.)` promotes with its float bound."""
    x = _float(x)
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


def soft_sign(x):
    """`x / (|x| + 1)`."""
    x = _float(x)
    return x / (tnp.abs(x) + 1)


def gelu(x, approximate=True):
    """Gaussian error linear unit. `approximate=True` (the default, as `jax.nn.gelu`) uses
    `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`; otherwise `0.5 x (1 + erf(x / sqrt 2))`.
    Differentiated through its derivative written out (same values as differentiating the
    formula), so a gradient keeps one value per element from the forward pass, not five."""
    x = _float(x)
    return _gelu_tanh(x) if approximate else _gelu_erf(x)


_GELU_A = 0.044715


def _gelu_tanh_t(x):
    """tanh(sqrt(2/pi) (x + 0.044715 x^3)), as in jax.nn.gelu."""
    return tnp.tanh(_const(math.sqrt(2.0 / math.pi), x) * (x + _GELU_A * (x * x * x)))


@custom_jvp
def _gelu_tanh(x):
    return 0.5 * x * (1.0 + _gelu_tanh_t(x))


@_gelu_tanh.defjvp
def _gelu_tanh_jvp(primals, tangents):
    # without this rule, reverse mode saved x, x/2, x^2, 1 - t^2 and 1 + t for the backward
    # pass (five arrays as large as the MLP's hidden layer); now only the derivative
    (x,), (dx,) = primals, tangents
    t = _gelu_tanh_t(x)
    c = _const(math.sqrt(2.0 / math.pi), x)
    d = 0.5 * (1.0 + t) + (0.5 * x) * ((1.0 - t * t) * (c * (1.0 + 3.0 * _GELU_A * (x * x))))
    return 0.5 * x * (1.0 + t), d * dx


@custom_jvp
def _gelu_erf(x):
    # 0.5 x (1 + erf(x/sqrt2)) written as 0.5 x erfc(-x/sqrt2): for x << 0 the first form
    # cancels to 0 (or garbage) while erfc keeps the tiny tail value in full precision
    return 0.5 * x * lax.erfc(-x * _const(1.0 / math.sqrt(2.0), x))


@_gelu_erf.defjvp
def _gelu_erf_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    e = lax.erfc(-x * _const(1.0 / math.sqrt(2.0), x))
    pdf = _const(1.0 / math.sqrt(2.0 * math.pi), x) * tnp.exp(-0.5 * (x * x))
    return 0.5 * x * e, (0.5 * e + x * pdf) * dx


def silu(x):
    """`x * sigmoid(x)` (also called swish)."""
    x = _float(x)
    return x * lax.logistic(x)


swish = silu


def mish(x):
    """`x * tanh(softplus(x))`."""
    x = _float(x)
    return x * tnp.tanh(softplus(x))


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


def celu(x, alpha=1.0):
    """`x` where `x > 0`, else `alpha * (exp(x / alpha) - 1)` (continuously differentiable ELU)."""
    x = _float(x)
    # max/min rather than a where on x > 0: exp never sees a large x, and at the kink the
    # derivatives split the tie as JAX's (first 1, second 1/(4 alpha), as jax.nn.celu)
    zero = tnp.zeros_like(x)
    return tnp.maximum(x, zero) + alpha * tnp.expm1(tnp.minimum(x, zero) / alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    """Scaled ELU: `scale * elu(x, alpha)` with the self-normalising constants
    (alpha ~ 1.6733, scale ~ 1.0507)."""
    x = _float(x)
    return _const(_SELU_SCALE, x) * elu(x, _const(_SELU_ALPHA, x))


def hard_tanh(x):
    """`-1` below -1, `1` above 1, `x` between."""
    x = tnp.asarray(x)  # integers stay integers, as JAX's where(x > 1, 1, ...)
    return tnp.where(x > 1, tnp.ones_like(x), tnp.where(x < -1, -tnp.ones_like(x), x))


def hard_sigmoid(x):
    """`relu6(x + 3) / 6`."""
    x = _float(x)
    return relu6(x + 3.0) / 6.0


def hard_silu(x):
    """`x * hard_sigmoid(x)` (also called hard_swish)."""
    x = _float(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def squareplus(x, b=4):
    """`(x + sqrt(x^2 + b)) / 2`, a smooth ReLU."""
    x = _float(x)
    return (x + tnp.sqrt(x * x + b)) / 2


def sparse_plus(x):
    """`0` for `x <= -1`, `(x + 1)^2 / 4` for `-1 < x < 1`, `x` for `x >= 1`."""
    x = _float(x)
    return tnp.where(x <= -1, tnp.zeros_like(x),
                     tnp.where(x >= 1, x, (x + 1) * (x + 1) / 4))


def sparse_sigmoid(x):
    """Derivative of `sparse_plus`: `0`, `(x + 1) / 2`, `1` on the same three pieces."""
    x = _float(x)
    # a clip, so the derivative at the corners x = -1, 1 is 1/4 (half of 1/2), as JAX's
    return _const(0.5, x) * tnp.clip(x + _const(1.0, x), _const(0.0, x), _const(2.0, x))


def log1mexp(x):
    """`log(1 - exp(-x))` for `x > 0`, accurate for small and large x."""
    x = _float(x)
    small = x < _const(math.log(2.0), x)
    xs = tnp.where(small, x, tnp.ones_like(x))
    xl = tnp.where(small, tnp.ones_like(x), x)
    return tnp.where(small, tnp.log(-tnp.expm1(-xs)), tnp.log1p(-tnp.exp(-xl)))


def glu(x, axis=-1):
    """Gated linear unit: split `x` in two halves along `axis`, `a * sigmoid(b)`."""
    x = _float(x)
    n = x.shape[axis]
    if n % 2:
        raise ValueError(f"glu: axis {axis} of size {n} must be even")
    a, b = tnp.split(x, 2, axis=axis)
    return a * sigmoid(b)


def _shift(x, axis, where=None):
    """The maximum along `axis` (kept dims), held constant, with non-finite maxima -> 0."""
    if where is None:
        m = tnp.max(x, axis=axis, keepdims=True)
    else:
        m = tnp.max(x, axis=axis, keepdims=True, initial=-np.inf, where=where)
    m = tnp.where(tnp.isfinite(m), m, tnp.zeros_like(m))
    return lax.stop_gradient(m)


def _max_held(x, axis):
    """The maximum along `axis` (kept dims), held constant, `+inf`/NaN kept (so a row holding
    them is NaN, as JAX's softmax)."""
    return lax.stop_gradient(tnp.max(x, axis=axis, keepdims=True))


def _log1p_rest(x, m, axis):
    """`log(sum(exp(x - m), axis))` (kept dims) as `log1p(t)`, `t` the sum without one maximal
    term: `exp(x - m)` at the maxima is 1 exactly, so the small terms are not lost by adding
    them to 1 first (float32 `logsumexp([0., -20.])` is 2.06e-9, not 0). At the maxima the
    summand is `e - stop_gradient(e)` (0, with `e`'s derivatives), plus `count(maxima) - 1`,
    so every derivative is that of the plain sum."""
    e = tnp.exp(x - m)
    is_max = x == m
    rest = tnp.where(is_max, e - lax.stop_gradient(e), e)
    ties = tnp.sum(is_max.astype(x.dtype), axis=axis, keepdims=True) - 1
    t = tnp.sum(rest, axis=axis, keepdims=True) + lax.stop_gradient(ties)
    with np.errstate(divide="ignore", invalid="ignore"):   # log1p(-1) = -inf: all -inf
        return tnp.log1p(t)


def softmax(x, axis=-1, where=None):
    """`exp(x) / sum(exp(x), axis)`, computed with the maximum subtracted.

    `where` (a boolean mask broadcastable to `x`) restricts the normalisation to the entries
    it marks; the others come out 0.
    """
    x = _float(x)
    if where is None:
        return _softmax(x, _norm_axes(axis, x.ndim))
    e = tnp.exp(x - _shift(x, axis, where))
    e = tnp.where(where, e, tnp.zeros_like(e))
    total = tnp.sum(e, axis=axis, keepdims=True)
    total = tnp.where(total > 0, total, tnp.ones_like(total))   # an all-masked row: no 0 / 0
    return tnp.where(where, e / total, tnp.zeros_like(e))


def _softmax_rows(x, axes):
    # a row holding +inf or NaN is all NaN, as JAX's
    with np.errstate(invalid="ignore"):
        e = tnp.exp(x - _max_held(x, axes))
        return e / tnp.sum(e, axis=axes, keepdims=True)


@functools.partial(custom_jvp, nondiff_argnums=(1,))
def _softmax(x, axes):
    return _softmax_rows(x, axes)


@_softmax.defjvp
def _softmax_jvp(axes, primals, tangents):
    # dy = y (dx - sum(y dx)), as JAX's softmax: reverse mode keeps only y for the backward
    # pass (differentiating e / sum(e) also kept e / sum(e)^2, one more array of x's size,
    # and a longer backward loop)
    (x,), (dx,) = primals, tangents
    y = _softmax_rows(x, axes)
    return y, y * (dx - tnp.sum(y * dx, axis=axes, keepdims=True))


def log_softmax(x, axis=-1, where=None):
    """`x - logsumexp(x, axis)`, computed with the maximum subtracted; with `where`, masked-out
    entries are `-inf`."""
    x = _float(x)
    if where is None:
        m = _max_held(x, axis)
        with np.errstate(invalid="ignore"):
            return (x - m) - _log1p_rest(x, m, axis)
    shifted = x - _shift(x, axis, where)
    e = tnp.exp(shifted)
    e = tnp.where(where, e, tnp.zeros_like(e))
    total = tnp.sum(e, axis=axis, keepdims=True)
    total = tnp.where(total > 0, total, tnp.ones_like(total))   # an all-masked row: no log 0
    return tnp.where(where, shifted - tnp.log(total), tnp.full_like(shifted, -np.inf))


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        return (axis % ndim,) if ndim else ()
    return tuple(a % ndim for a in axis)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, where=None):
    """`log(sum(b * exp(a), axis))`, stable for large |a|.

    `-inf` entries contribute nothing (an all-`-inf` reduction gives `-inf`). `b` scales the
    terms; with `return_sign=True` the result is `(log|sum|, sign(sum))`, otherwise a negative
    sum gives NaN. `where` masks entries out of the sum.
    """
    x = _float(a)
    if b is not None:
        b = tnp.asarray(b)
        x, b = tnp.broadcast_arrays(x, b)
    m = _shift(x, axis, where)
    if b is None and where is None and not return_sign:
        with np.errstate(invalid="ignore"):
            out = _log1p_rest(x, m, axis) + m
        return out if keepdims else tnp.squeeze(out, axis=_norm_axes(axis, x.ndim))
    e = tnp.exp(x - m)
    if b is not None:
        e = e * b.astype(e.dtype)
    if where is not None:
        e = tnp.where(where, e, tnp.zeros_like(e))
    s = tnp.sum(e, axis=axis, keepdims=True)
    sign = None
    if return_sign or b is not None:
        sign = lax.stop_gradient(tnp.sign(s))
        s = tnp.abs(s) if return_sign else s
    with np.errstate(divide="ignore", invalid="ignore"):    # log(0) = -inf
        out = tnp.log(s) + m
    if not keepdims:
        axes = _norm_axes(axis, x.ndim)
        out = tnp.squeeze(out, axis=axes)
        if sign is not None:
            sign = tnp.squeeze(sign, axis=axes)
    if return_sign:
        return out, sign
    return out


def logmeanexp(x, axis=None, where=None, keepdims=False):
    """`log(mean(exp(x), axis))`, stable: `logsumexp - log(n)`."""
    x = _float(x)
    if where is None:
        axes = _norm_axes(axis, x.ndim)
        n = math.prod(x.shape[i] for i in axes)
        cnt = _const(n, x)
    else:
        cnt = tnp.sum(tnp.broadcast_to(tnp.asarray(where), x.shape).astype(x.dtype),
                      axis=axis, keepdims=keepdims)
    return logsumexp(x, axis=axis, keepdims=keepdims, where=where) - tnp.log(cnt)


def standardize(x, axis=-1, mean=None, variance=None, epsilon=1e-5, where=None, *,
                algorithm="fast"):
    """`(x - mean) / sqrt(variance + epsilon)` along `axis`; statistics are computed when
    omitted, the variance as `mean(x^2) - mean(x)^2` clipped at 0 (`algorithm="fast"`, JAX's
    default) or as `mean((x - mean)^2)` (`algorithm="stable"`)."""
    x = _float(x)
    if mean is None:
        mean = tnp.mean(x, axis=axis, keepdims=True, where=where)
    if variance is None:
        if algorithm == "stable":
            d = x - mean
            variance = tnp.mean(d * d, axis=axis, keepdims=True, where=where)
        elif algorithm == "fast":
            variance = (tnp.mean(x * x, axis=axis, keepdims=True, where=where)
                        - tnp.asarray(mean) * tnp.asarray(mean))
            variance = tnp.maximum(variance, 0)
        else:
            raise ValueError(f"Unknown algorithm {algorithm!r}. Expected 'fast' or 'stable'.")
    return (x - mean) * lax.rsqrt(tnp.asarray(variance + epsilon).astype(x.dtype))


def _default_float():
    from transforms.config import config
    return np.float64 if config.jax_enable_x64 else np.float32


def one_hot(x, num_classes, *, dtype=None, axis=-1):
    """`x[..., None] == arange(num_classes)` as `dtype` (out-of-range entries give all zeros).

    `dtype=None` is float32 (JAX's default float), float64 with `jax_enable_x64` on.
    """
    dtype = _default_float() if dtype is None else dtype
    x = tnp.asarray(x)
    classes = np.arange(int(num_classes))
    out = (tnp.expand_dims(x, -1) == classes).astype(dtype)
    if axis in (-1, x.ndim):
        return out
    return tnp.moveaxis(out, -1, axis)
