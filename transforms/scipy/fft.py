"""`scipy.fft`'s discrete cosine transforms (`jax.scipy.fft`): `dct`, `idct`, `dctn`,
`idctn` of types 2 and 3 with `norm` None/'backward', 'ortho' or 'forward', as SciPy's.

Each 1-D transform is a product with a constant N×N cosine matrix along the axis (O(N²)
work, exact in float64, suited to the small and medium sizes DCTs are used at in JAX
programs), so they differentiate, batch and compile. The inverse transforms use the
inverse matrix, so `idct(dct(x, norm=n), norm=n) == x` for every norm, as SciPy. JAX
implements type 2 only; type 3 here follows SciPy."""
from __future__ import annotations

import functools

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["dct", "idct", "dctn", "idctn"]


@functools.lru_cache(maxsize=64)
def _matrix(n, type, norm, inverse):
    k = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    if type == 2:
        m = 2 * np.cos(np.pi * k * (2 * j + 1) / (2 * n))
        if norm == "ortho":
            scale = np.full(n, np.sqrt(1 / (2 * n)))
            scale[0] = np.sqrt(1 / (4 * n))
            m = m * scale[:, None]
    elif type == 3:
        m = 2 * np.cos(np.pi * j * (2 * k + 1) / (2 * n))
        m[:, 0] = 1.0
        if norm == "ortho":
            scale = np.full(n, np.sqrt(1 / (2 * n)))
            scale[0] = np.sqrt(1 / n)
            m = m * scale[None, :]
    else:
        raise NotImplementedError(f"dct: type must be 2 or 3, got {type!r}")
    if norm == "forward":
        m = m / (2 * n)
    if inverse:
        m = np.linalg.inv(m)
    return m


def _norm(norm, name):
    if norm in (None, "backward"):
        return "backward"
    if norm in ("ortho", "forward"):
        return norm
    raise ValueError(f"{name}: norm must be None, 'backward', 'ortho' or 'forward', got "
                     f"{norm!r}")


def _resize(x, n, axis):
    size = get_aval(x).shape[axis]
    if n is None or n == size:
        return x
    if n < 1:
        raise ValueError(f"dct: invalid number of data points {n}")
    if n < size:
        return tnp.take(x, np.arange(n), axis=axis)
    pad = [(0, 0)] * get_aval(x).ndim
    pad[axis] = (0, n - size)
    return tnp.pad(x, pad)


def _apply(x, type, n, axis, norm, inverse, name):
    x = tnp.asarray(x)
    if get_aval(x).dtype not in (np.float32, np.float64):
        x = tnp.astype(x, np.float64)
    ndim = get_aval(x).ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for a {ndim}-d array")
    axis %= ndim
    x = _resize(x, n, axis)
    size = get_aval(x).shape[axis]
    m = _matrix(size, type, _norm(norm, name), inverse).astype(get_aval(x).dtype)
    y = tnp.tensordot(x, m, axes=([axis], [1]))       # the new axis lands last
    return tnp.moveaxis(y, -1, axis)


def dct(x, type=2, n=None, axis=-1, norm=None):
    """The discrete cosine transform of `x` along `axis`, as `scipy.fft.dct` (`type` 2 or
    3; `n` truncates or zero-pads first). Differentiates, batches and compiles."""
    return _apply(x, type, n, axis, norm, False, "dct")


def idct(x, type=2, n=None, axis=-1, norm=None):
    """The inverse of `dct` with the same `type` and `norm`, as `scipy.fft.idct`.
    Differentiates, batches and compiles."""
    return _apply(x, type, n, axis, norm, True, "idct")


def _axes_sizes(x, s, axes, name):
    nd = get_aval(tnp.asarray(x)).ndim
    if axes is None:
        axes = list(range(nd)) if s is None else list(range(nd - len(s), nd))
    axes = [a if isinstance(a, int) else int(a) for a in np.atleast_1d(axes)]
    if s is None:
        s = [None] * len(axes)
    if len(s) != len(axes):
        raise ValueError(f"{name}: s and axes must have the same length, got {len(s)} and "
                         f"{len(axes)}")
    return axes, s


def dctn(x, type=2, s=None, axes=None, norm=None):
    """The N-d discrete cosine transform over `axes` (all by default), as
    `scipy.fft.dctn`. Differentiates, batches and compiles."""
    axes, s = _axes_sizes(x, s, axes, "dctn")
    for a, n in zip(axes, s):
        x = _apply(x, type, n, a, norm, False, "dctn")
    return tnp.asarray(x)


def idctn(x, type=2, s=None, axes=None, norm=None):
    """The inverse of `dctn`, as `scipy.fft.idctn`. Differentiates, batches and
    compiles."""
    axes, s = _axes_sizes(x, s, axes, "idctn")
    for a, n in zip(axes, s):
        x = _apply(x, type, n, a, norm, True, "idctn")
    return tnp.asarray(x)
