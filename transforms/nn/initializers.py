"""`jax.nn.initializers`: parameter initialisers drawing from `transforms.random`.

A factory (`glorot_uniform()`, `normal(stddev=1e-2)`, ...) returns `init(key, shape,
dtype=float32) -> array`. `zeros` and `ones` are initialisers themselves (as in JAX); calling
them with no arguments also returns them, so `zeros()` works too. The default dtype is float32
(JAX's default float), float64 with `transforms.config.update("jax_enable_x64", True)`.

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
           "truncated_normal", "orthogonal", "delta_orthogonal", "compute_fans", "Initializer"]

# standard deviation of the standard normal truncated to (-2, 2)
_TRUNC_STD = 0.87962566103423978

Initializer = object  # the type of `init(key, shape, dtype)` callables (annotation only)


def _dtype(dtype):
    if dtype is None:
        from transforms.config import config
        return np.dtype(np.float64 if config.jax_enable_x64 else np.float32)
    return np.dtype(dtype)


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """(fan_in, fan_out) of a kernel shape, as JAX's `_compute_fans`."""
    shape = _shape(shape)
    if isinstance(in_axis, (int, np.integer)) and in_axis == -2 and len(shape) <= 1:
        # as JAX: a bias-like vector has no input axis, so the fans are undefined
        raise ValueError(f"cannot compute the fans of a {len(shape)}-D weights shape {shape} "
                         f"with the default in_axis=-2: the shape must be at least 2-D, or "
                         f"in_axis/out_axis given explicitly")
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
                     dtype=None):
    """Samples with variance `scale / n`, `n` the fan given by `mode` ('fan_in', 'fan_out',
    'fan_avg', 'fan_geo_avg'), from `distribution` ('truncated_normal', 'normal', 'uniform')."""
    if mode not in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
        raise ValueError(f"invalid mode for variance scaling initializer: {mode!r}")
    if distribution not in ("truncated_normal", "normal", "uniform"):
        raise ValueError(f"invalid distribution for variance scaling initializer: "
                         f"{distribution!r}")
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        shape = _shape(shape)
        dtype = _dtype(dtype)
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis)
        denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
                 "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
        # JAX divides by the fan as is; only an empty shape (fan 0, nothing drawn) is guarded
        variance = scale / denom if denom else 0.0
        if not np.issubdtype(dtype, np.inexact):
            raise TypeError(f"variance_scaling: dtype must be a floating or complex type, "
                            f"got {dtype}")
        complex_ = np.issubdtype(dtype, np.complexfloating)
        if complex_:
            if distribution == "truncated_normal":
                std = np.asarray(math.sqrt(variance) / _COMPLEX_TRUNC_STD, dtype)
                return _complex_truncated_normal(key, 2.0, shape, dtype) * std
            std = np.asarray(math.sqrt(variance), dtype)
            if distribution == "normal":
                return random.normal(key, shape, dtype) * std
            return _complex_disk(key, shape, dtype) * std
        # the scale factor rounded step by step in `dtype`, as JAX computes it (variance
        # rounded, then its sqrt, then the division), so the draws are JAX's to the bit
        var = np.asarray(variance, dtype)
        if distribution == "truncated_normal":
            std = np.sqrt(var) / np.asarray(_TRUNC_STD, dtype)
            return random.truncated_normal(key, -2.0, 2.0, shape, dtype) * std
        if distribution == "normal":
            return random.normal(key, shape, dtype) * np.sqrt(var)
        bound = np.sqrt(np.asarray(3, dtype) * var)
        return random.uniform(key, shape, dtype, -1.0, 1.0) * bound
    return init


# sqrt(E|z|^2) of the standard complex normal with its modulus truncated to 2: 1 - 4/(e^4 - 1)
_COMPLEX_TRUNC_STD = 0.95311164380491208


def _polar(key, shape, dtype, radius):
    """`radius(u) * exp(i * 2 pi v)` for independent uniforms u, v in [0, 1) drawn from the two
    halves of `split(key)` (the modulus from the first): a rotation-invariant complex sample
    whose modulus follows the inverse CDF `radius`."""
    import transforms.numpy as tnp
    real = np.finfo(dtype).dtype
    k_r, k_theta = random.split(key)
    r = radius(random.uniform(k_r, shape, real).astype(dtype))
    theta = np.asarray(2 * np.pi, real) * random.uniform(k_theta, shape, real).astype(dtype)
    return r * tnp.exp(np.asarray(1j, dtype) * theta)


def _complex_disk(key, shape, dtype):
    """Uniform on the disk of radius sqrt(2) (unit variance): |z|^2 = 2u is uniform."""
    import transforms.numpy as tnp
    return _polar(key, shape, dtype, lambda u: tnp.sqrt(np.asarray(2.0, dtype) * u))


def _complex_truncated_normal(key, upper, shape, dtype):
    """The standard complex normal (before truncation `E|z|^2 = 1`, so |z|^2 ~ Exp(1)) with
    |z| < `upper`: |z|^2 by inverting the truncated exponential CDF."""
    import transforms.numpy as tnp
    mass = np.asarray(1.0 - math.exp(-upper ** 2), dtype)
    return _polar(key, shape, dtype,
                  lambda u: tnp.sqrt(-tnp.log(np.asarray(1.0, dtype) - mass * u)))


def glorot_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Uniform on ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Uniform on ±sqrt(6 / fan_in) (He et al., 2015)."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Truncated normal with variance 2 / fan_in."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Uniform on ±sqrt(3 / fan_in)."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Truncated normal with variance 1 / fan_in (LeCun et al., 1998)."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


xavier_uniform, xavier_normal = glorot_uniform, glorot_normal
kaiming_uniform, kaiming_normal = he_uniform, he_normal


def zeros(key=None, shape=None, dtype=None):
    """All zeros. `zeros(key, shape, dtype)`; `zeros()` returns this initialiser."""
    if key is None and shape is None:
        return zeros
    return np.zeros(_shape(shape), _dtype(dtype))


def ones(key=None, shape=None, dtype=None):
    """All ones. `ones(key, shape, dtype)`; `ones()` returns this initialiser."""
    if key is None and shape is None:
        return ones
    return np.ones(_shape(shape), _dtype(dtype))


def constant(value, dtype=None):
    """Every entry `value`."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        import transforms.numpy as tnp
        return tnp.full(_shape(shape), value, _dtype(dtype))
    return init


def _scaled(draw, scale, default_dtype):
    """The initializer `scale * draw(key, shape, dtype)`."""
    def init(key, shape, dtype=default_dtype):
        dtype = _dtype(dtype)
        return draw(key, _shape(shape), dtype) * np.asarray(scale, dtype)
    return init


def normal(stddev=1e-2, dtype=None):
    """Normal with mean 0 and standard deviation `stddev`."""
    return _scaled(random.normal, stddev, dtype)


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """`stddev` times a standard normal truncated to (lower, upper)."""
    return _scaled(lambda key, shape, dtype: random.truncated_normal(key, lower, upper, shape,
                                                                       dtype), stddev, dtype)


def uniform(scale=1e-2, dtype=None):
    """Uniform on [0, scale)."""
    return _scaled(random.uniform, scale, dtype)


def _qr(a):
    """Reduced QR; NumPy's on concrete input, `tnp.linalg.qr` when traced (if available)."""
    import transforms.numpy as tnp
    from transforms import core
    if not isinstance(a, core.Tracer):
        return np.linalg.qr(np.asarray(a))
    qr = getattr(tnp.linalg, "qr", None)
    if qr is None:
        raise NotImplementedError("orthogonal initialisers need concrete keys here: call them "
                                  "outside jit/vmap (tnp.linalg.qr is not available traced)")
    return qr(a)


def orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """A (scaled) matrix with orthonormal columns or rows (Saxe et al., 2014), as JAX: the
    `column_axis` dimension against all others flattened; QR of a normal sample with the sign
    of R's diagonal folded in, so the result is uniform over orthogonal matrices."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        import transforms.numpy as tnp
        shape = _shape(shape)
        dtype = _dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        mshape = (n_cols, n_rows) if n_rows < n_cols else (n_rows, n_cols)
        a = random.normal(key, mshape, dtype)
        q, r = _qr(a)
        q = q * tnp.sign(tnp.diagonal(r))
        if n_rows < n_cols:
            q = q.T
        rest = list(shape)
        del rest[column_axis % len(shape)]
        q = tnp.reshape(q, tuple(rest) + (n_cols,))
        q = tnp.moveaxis(q, -1, column_axis)
        return (q * np.asarray(scale, dtype)).astype(dtype)
    return init


def delta_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """Delta-orthogonal kernel for 1-3D convolutions (Xiao et al., 2018), as JAX: zeros except
    an orthogonal `(in, out)` matrix at the spatial centre; needs `in <= out`."""
    default_dtype = dtype

    def init(key, shape, dtype=default_dtype):
        import transforms.numpy as tnp
        shape = _shape(shape)
        dtype = _dtype(dtype)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
        if shape[-1] < shape[-2]:
            raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
        ortho = orthogonal(scale, column_axis, dtype)(key, shape[-2:])
        centre = tuple(d // 2 for d in shape[:-2])
        from transforms import lax
        upd = tnp.reshape(ortho, (1,) * len(centre) + tuple(shape[-2:]))
        return lax.dynamic_update_slice(tnp.zeros(shape, dtype), upd, centre + (0, 0))
    return init
