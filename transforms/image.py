"""`jax.image`: `resize` and `scale_and_translate`, as JAX computes them.

Interpolating methods build, for each resized dimension, a weight matrix `(in, out)` from the
kernel evaluated at the distance between each output pixel's centre (mapped into the input)
and each input pixel, normalised per output pixel; when downsampling with `antialias=True`
the kernel is widened by the inverse scale (a low-pass filter), as in JAX, TensorFlow and
Pillow. The image is then contracted with each matrix (a `tensordot`), so results
differentiate with respect to the image and compile. The weights depend only on the shapes
(and on `scale`/`translation`, which must therefore be concrete here).

Methods: "nearest"; "linear" ("bilinear", "trilinear", "triangle"); "cubic" ("bicubic",
"tricubic": Keys' kernel with a = -0.5); "lanczos3"; "lanczos5".
"""
from __future__ import annotations

import enum
import operator

import numpy as np

from .core import Tracer, get_aval
from .lax._util import as_array

__all__ = ["resize", "scale_and_translate", "ResizeMethod"]


class ResizeMethod(enum.Enum):
    """The interpolation methods of `resize` (`ResizeMethod.from_string("bilinear")`)."""
    NEAREST = 0
    LINEAR = 1
    LANCZOS3 = 2
    LANCZOS5 = 3
    CUBIC = 4

    @staticmethod
    def from_string(s: str):
        """The method named `s` (case-insensitive; JAX's aliases accepted)."""
        names = {"nearest": ResizeMethod.NEAREST, "linear": ResizeMethod.LINEAR,
                 "bilinear": ResizeMethod.LINEAR, "trilinear": ResizeMethod.LINEAR,
                 "triangle": ResizeMethod.LINEAR, "lanczos3": ResizeMethod.LANCZOS3,
                 "lanczos5": ResizeMethod.LANCZOS5, "cubic": ResizeMethod.CUBIC,
                 "bicubic": ResizeMethod.CUBIC, "tricubic": ResizeMethod.CUBIC}
        try:
            return names[s.lower()]
        except (KeyError, AttributeError):
            raise ValueError(f"Unknown resize method: {s!r} (one of {sorted(names)})") from None


def _triangle(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _keys_cubic(x):
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius):
    def k(x):
        y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 1e-3, y / np.where(x != 0, np.pi ** 2 * x ** 2, 1.0), 1.0)
        return np.where(x > radius, 0.0, out)
    return k


_KERNELS = {ResizeMethod.LINEAR: _triangle, ResizeMethod.CUBIC: _keys_cubic,
            ResizeMethod.LANCZOS3: _lanczos(3.0), ResizeMethod.LANCZOS5: _lanczos(5.0)}


def _weights(in_size, out_size, scale, translation, kernel, antialias):
    """The `(in_size, out_size)` interpolation matrix (float64, NumPy)."""
    inv = 1.0 / scale
    kscale = max(inv, 1.0) if antialias else 1.0
    sample = (np.arange(out_size, dtype=np.float64) + 0.5) * inv - translation * inv - 0.5
    x = np.abs(sample[None, :] - np.arange(in_size, dtype=np.float64)[:, None]) / kscale
    w = kernel(x)
    total = w.sum(axis=0, keepdims=True)
    w = np.where(np.abs(total) > 1000.0 * float(np.finfo(np.float32).eps),
                 w / np.where(total != 0, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return np.where(inside[None, :], w, 0.0)


def _concrete(v, what):
    if isinstance(v, Tracer):
        raise TypeError(f"scale_and_translate: {what} must be concrete here (the weights are "
                        f"computed when tracing); got a traced value")
    return np.asarray(v, np.float64)


def _method(method):
    if isinstance(method, ResizeMethod):
        return method
    if isinstance(method, str):
        return ResizeMethod.from_string(method)
    raise TypeError(f"resize: method must be a string or a ResizeMethod, got {method!r}")


def _apply(x, mats):
    from . import numpy as tnp
    for d, w in mats:
        x = tnp.moveaxis(tnp.tensordot(x, w, axes=([d], [0])), -1, d)
    return x


def _float_image(image):
    from . import numpy as tnp
    x = as_array(image)
    dt = get_aval(x).dtype
    if not np.issubdtype(dt, np.inexact):
        x = tnp.asarray(x, dtype=np.float32)
    return x


def _resize_nearest(x, shape):
    from . import numpy as tnp
    in_shape = get_aval(x).shape
    for d, (m, n) in enumerate(zip(in_shape, shape)):
        if m == n:
            continue
        offs = np.floor(((np.arange(n, dtype=np.float32) + np.float32(0.5))
                         * np.float32(m) / np.float32(n)).astype(np.float32)).astype(np.int32)
        x = tnp.take(x, np.minimum(offs, m - 1), axis=d)
    return x


def resize(image, shape, method, antialias=True, precision=None):
    """`image` resized to `shape` (one entry per dimension: dimensions whose size does not
    change are left alone) by `method` (see the module docstring), as `jax.image.resize`.
    Integer images are converted to float32 by the interpolating methods. `precision` is
    accepted (CPU matmuls are full precision)."""
    del precision
    x = as_array(image)
    in_shape = get_aval(x).shape
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"resize: shape must be a tuple of ints, got {shape!r}") from None
    if len(shape) != len(in_shape):
        raise ValueError(f"shape must have length equal to the number of dimensions of x; "
                         f" {shape} vs {in_shape}")
    if any(s < 0 for s in shape):
        raise ValueError(f"resize: negative size in shape {shape}")
    m = _method(method)
    if m is ResizeMethod.NEAREST:
        return _resize_nearest(x, shape)
    x = _float_image(x)
    dt = get_aval(x).dtype
    mats = []
    for d, (a, b) in enumerate(zip(in_shape, shape)):
        if a == b:
            continue
        scale = 1.0 if b == 0 else b / a
        mats.append((d, _weights(a, b, scale, 0.0, _KERNELS[m], antialias).astype(dt)))
    return _apply(x, mats)


def scale_and_translate(image, shape, spatial_dims, scale, translation, method="linear",
                        antialias=True, precision=None):
    """Resample `image` to `shape` along `spatial_dims`: output pixel centre `o` samples the
    input at `(o + 0.5 - translation) / scale - 0.5` with the `method`'s kernel (widened by
    `1/scale` when downsampling with `antialias`), as `jax.image.scale_and_translate`.
    `scale` and `translation` (one entry per spatial dim) must be concrete here. "nearest"
    is not supported (as in JAX)."""
    del precision
    x = _float_image(image)
    in_shape = get_aval(x).shape
    shape = tuple(operator.index(s) for s in shape)
    if len(shape) != len(in_shape):
        raise ValueError(f"scale_and_translate: shape {shape} must have one entry per "
                         f"dimension of the image {in_shape}")
    m = _method(method)
    if m is ResizeMethod.NEAREST:
        raise ValueError("scale_and_translate: the 'nearest' method is not supported (as JAX)")
    dims = [operator.index(d) % len(in_shape) for d in spatial_dims]
    sc = np.broadcast_to(_concrete(scale, "scale"), (len(dims),))
    tr = np.broadcast_to(_concrete(translation, "translation"), (len(dims),))
    for d in range(len(in_shape)):
        if d not in dims and shape[d] != in_shape[d]:
            raise ValueError(f"scale_and_translate: dimension {d} changes size but is not in "
                             f"spatial_dims {tuple(dims)}")
    dt = get_aval(x).dtype
    mats = [(d, _weights(in_shape[d], shape[d], float(s), float(t), _KERNELS[m],
                         antialias).astype(dt)) for d, s, t in zip(dims, sc, tr)]
    return _apply(x, mats)
