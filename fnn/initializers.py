"""Parameter initialisers, as `jax.nn.initializers`.

A factory (`glorot_uniform()`, `normal(stddev=1e-2)`, ...) returns `init(key, shape,
dtype=float32) -> array`, drawing from `transforms.random`. `zeros` and `ones` are initialisers
themselves (as in JAX); calling them with no arguments also returns them, so `zeros()` works.

Fans follow JAX's `variance_scaling`: for a kernel of shape `(..., fan_in_axis, out)` (Dense
`(in, out)`, Conv2D HWIO `(h, w, in, out)`) the receptive field is the product of the other
dimensions, `fan_in = in * receptive_field` and `fan_out = out * receptive_field`.
"""
from __future__ import annotations

import math

import numpy as np

from transforms import random

__all__ = ["variance_scaling", "glorot_uniform", "glorot_normal", "xavier_uniform",
           "xavier_normal", "he_uniform", "he_normal", "kaiming_uniform", "kaiming_normal",
           "lecun_uniform", "lecun_normal", "zeros", "ones", "constant", "normal", "uniform",
           "truncated_normal"]

# standard deviation of the standard normal truncated to (-2, 2)
_TRUNC_STD = 0.87962566103423978


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """(fan_in, fan_out) of a kernel shape, as JAX's `_compute_fans`."""
    shape = _shape(shape)
    if len(shape) < 1:
        raise ValueError(f"cannot compute fans of a scalar shape {shape}")
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    nd = len(shape)
    in_axes = (in_axis,) if isinstance(in_axis, int) else tuple(in_axis)
    out_axes = (out_axis,) if isinstance(out_axis, int) else tuple(out_axis)
    b_axes = (batch_axis,) if isinstance(batch_axis, int) else tuple(batch_axis)
    in_size = math.prod(shape[a % nd] for a in in_axes)
    out_size = math.prod(shape[a % nd] for a in out_axes)
    batch = math.prod(shape[a % nd] for a in b_axes)
    receptive = math.prod(shape) / in_size / out_size / batch
    return in_size * receptive, out_size * receptive


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(),
                     dtype=np.float32):
    """Samples with variance `scale / n`, `n` the fan given by `mode` ('fan_in', 'fan_out',
    'fan_avg'), from `distribution` ('truncated_normal', 'normal', 'uniform')."""
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"invalid mode for variance scaling initializer: {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"invalid distribution for variance scaling initializer: "
                         f"{distribution!r}")
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        shape = _shape(shape)
        dtype = np.dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(denom, 1.0)
        if distribution == "truncated_normal":
            std = np.asarray(math.sqrt(variance) / _TRUNC_STD, dtype)
            return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * std
        if distribution == "normal":
            return random.normal(key, shape, dtype) * np.asarray(math.sqrt(variance), dtype)
        bound = np.asarray(math.sqrt(3.0 * variance), dtype)
        return random.uniform(key, shape, dtype, -1.0, 1.0) * bound
    return init


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Uniform on ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Uniform on ±sqrt(6 / fan_in) (He et al., 2015)."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Truncated normal with variance 2 / fan_in."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Uniform on ±sqrt(3 / fan_in)."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=np.float32):
    """Truncated normal with variance 1 / fan_in (LeCun et al., 1998)."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal


def zeros(key=None, shape=None, dtype=np.float32):
    """All zeros. `zeros(key, shape, dtype)`; `zeros()` returns this initialiser."""
    if key is None and shape is None:
        return zeros
    return np.zeros(_shape(shape), dtype)


def ones(key=None, shape=None, dtype=np.float32):
    """All ones. `ones(key, shape, dtype)`; `ones()` returns this initialiser."""
    if key is None and shape is None:
        return ones
    return np.ones(_shape(shape), dtype)


def constant(value, dtype=np.float32):
    """Every entry `value`."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        return np.full(_shape(shape), value, dtype)
    return init


def normal(stddev=1e-2, dtype=np.float32):
    """Normal with mean 0 and standard deviation `stddev`."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        dtype = np.dtype(dtype)
        return random.normal(key, _shape(shape), dtype) * np.asarray(stddev, dtype)
    return init


def truncated_normal(stddev=1e-2, dtype=np.float32, lower=-2.0, upper=2.0):
    """`stddev` times a standard normal truncated to (lower, upper)."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        dtype = np.dtype(dtype)
        return (random.truncated_normal(key, lower, upper, _shape(shape), dtype)
                * np.asarray(stddev, dtype))
    return init


def uniform(scale=1e-2, dtype=np.float32):
    """Uniform on [0, scale)."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        dtype = np.dtype(dtype)
        return random.uniform(key, _shape(shape), dtype) * np.asarray(scale, dtype)
    return init
