"""`transforms.numpy.fft`: NumPy 2's `numpy.fft` over the `lax.fft` primitive (as `jax.numpy.fft`).

Dtypes follow NumPy 2: float16/float32/complex64 inputs give complex64 (float32 for the real
results of `irfft`/`hfft`), everything else complex128/float64. `n`/`s` crop or zero-pad the
input along each transformed axis; `norm` is "backward" (default), "ortho" or "forward".
Up to three axes are one `fft` equation; more are split into several, as in JAX.
Repeated axes are rejected (as in JAX; NumPy would transform twice).
"""
from __future__ import annotations

import operator

import numpy as np

from .. import lax
from ..core import Tracer, get_aval
from ..lax.fft import fft as _lax_fft
from ._construct import roll as _roll
from ._ops import asarray

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = (None, "backward", "ortho", "forward")


def _check_norm(norm):
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm!r}; should be "backward", "ortho" or '
                         f'"forward".')


def _complex_dtype(dt):
    return np.dtype(np.complex64) if dt in (np.float16, np.float32, np.complex64) \
        else np.dtype(np.complex128)


class FFTInputTypeError(TypeError, ValueError):
    """Complex input to a real-input transform (NumPy raises TypeError, JAX ValueError)."""


def _real_dtype(dt, name):
    if dt.kind == "c":
        raise FFTInputTypeError(f"fft.{name} requires real input, got {dt.name}")
    return np.dtype(np.float32) if dt in (np.float16, np.float32) else np.dtype(np.float64)


def _to_complex(a):
    dt = get_aval(a).dtype
    cdt = _complex_dtype(dt)
    if dt == cdt:
        return a
    if dt.kind == "c":
        return lax.convert_element_type(a, cdt)
    r = lax.convert_element_type(a, np.float32 if cdt == np.complex64 else np.float64)
    return lax.complex(r, lax.zeros_like_aval(get_aval(r)))


def _to_real(a, name):
    dt = get_aval(a).dtype
    rdt = _real_dtype(dt, name)
    return a if dt == rdt else lax.convert_element_type(a, rdt)


def _resize(a, axis, n):
    """Crop or zero-pad `a` along `axis` to length `n`."""
    shape = get_aval(a).shape
    cur = shape[axis]
    if cur == n:
        return a
    if cur > n:
        limit = list(shape)
        limit[axis] = n
        return lax.slice(a, (0,) * len(shape), tuple(limit))
    cfg = [(0, 0, 0)] * len(shape)
    cfg[axis] = (0, n - cur, 0)
    return lax.pad(a, np.zeros((), get_aval(a).dtype), cfg)


def _axes_and_lengths(name, a, s, axes, last_from_half=False):
    nd = get_aval(a).ndim
    if s is not None:
        s = (operator.index(s),) if np.ndim(s) == 0 else tuple(operator.index(n) for n in s)
    if axes is None:
        axes = tuple(range(nd)) if s is None else tuple(range(nd - len(s), nd))
    elif np.ndim(axes) == 0:
        axes = (operator.index(axes),)
    else:
        axes = tuple(operator.index(x) for x in axes)
    for ax in axes:
        if not -nd <= ax < nd:
            raise ValueError(f"fft.{name}: axis {ax} is out of bounds for an array of "
                             f"dimension {nd}")
    axes = tuple(ax % nd for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"fft.{name} does not support repeated axes, got axes {axes}")
    if s is None:
        shape = get_aval(a).shape
        s = [shape[ax] for ax in axes]
        if last_from_half and axes:
            s[-1] = 2 * (s[-1] - 1)
        s = tuple(s)
    elif len(s) != len(axes):
        raise ValueError(f"fft.{name}: s {s} and axes {axes} have different lengths")
    for n in s:
        if n < 1:
            raise ValueError(f"fft.{name}: invalid number of FFT data points ({n}) specified")
    return axes, s


def _apply(a, fft_type, axes, lengths):
    """One `lax.fft` over `axes` (already of the right sizes), moved to the end and back."""
    nd = get_aval(a).ndim
    rest = [i for i in range(nd) if i not in axes]
    perm = rest + list(axes)
    x = lax.transpose(a, perm)
    y = _lax_fft(x, fft_type, tuple(lengths))
    inv = np.argsort(perm)
    return lax.transpose(y, tuple(int(i) for i in inv))


def _scale(y, norm, n_total, inverse):
    if norm in (None, "backward"):
        f = 1.0 if not inverse else None
    elif norm == "ortho":
        f = 1.0 / np.sqrt(n_total) if not inverse else np.sqrt(n_total)
    else:
        f = 1.0 / n_total if not inverse else float(n_total)
    if f is None or f == 1.0:
        return y
    dt = get_aval(y).dtype
    return lax.mul(y, lax.full(get_aval(y).shape, np.asarray(f, dt), dt))


def _chunks(axes):
    """Groups of at most three axes, last group last."""
    axes = list(axes)
    out = []
    while axes:
        out.insert(0, axes[-3:])
        axes = axes[:-3]
    return out


def _c2c(name, a, s, axes, norm, inverse):
    _check_norm(norm)
    a = _to_complex(asarray(a))
    axes, s = _axes_and_lengths(name, a, s, axes)
    for ax, n in zip(axes, s):
        a = _resize(a, ax, n)
    if not axes:
        return a
    lengths = dict(zip(axes, s))
    for group in _chunks(axes):
        a = _apply(a, "IFFT" if inverse else "FFT", group, [lengths[g] for g in group])
    return _scale(a, norm, int(np.prod(s)), inverse)


def _r2c(name, a, s, axes, norm):
    _check_norm(norm)
    a = _to_real(asarray(a), name)
    axes, s = _axes_and_lengths(name, a, s, axes)
    if not axes:
        raise ValueError(f"fft.{name}: at least one axis is needed")
    for ax, n in zip(axes, s):
        a = _resize(a, ax, n)
    lengths = dict(zip(axes, s))
    groups = _chunks(axes)
    a = _apply(a, "RFFT", groups[-1], [lengths[g] for g in groups[-1]])
    for group in groups[:-1]:
        a = _apply(a, "FFT", group, [lengths[g] for g in group])
    return _scale(a, norm, int(np.prod(s)), False)


def _c2r(name, a, s, axes, norm):
    _check_norm(norm)
    a = _to_complex(asarray(a))
    axes, s = _axes_and_lengths(name, a, s, axes, last_from_half=True)
    if not axes:
        raise ValueError(f"fft.{name}: at least one axis is needed")
    for i, (ax, n) in enumerate(zip(axes, s)):
        a = _resize(a, ax, n // 2 + 1 if i == len(axes) - 1 else n)
    lengths = dict(zip(axes, s))
    groups = _chunks(axes)
    for group in groups[:-1]:
        a = _apply(a, "IFFT", group, [lengths[g] for g in group])
    a = _apply(a, "IRFFT", groups[-1], [lengths[g] for g in groups[-1]])
    return _scale(a, norm, int(np.prod(s)), True)


def _one(s_or_n):
    return None if s_or_n is None else (operator.index(s_or_n),)


def fft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.fft`."""
    return _c2c("fft", a, _one(n), (axis,), norm, False)


def ifft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.ifft`."""
    return _c2c("ifft", a, _one(n), (axis,), norm, True)


def fftn(a, s=None, axes=None, norm=None):
    """`numpy.fft.fftn`."""
    return _c2c("fftn", a, s, axes, norm, False)


def ifftn(a, s=None, axes=None, norm=None):
    """`numpy.fft.ifftn`."""
    return _c2c("ifftn", a, s, axes, norm, True)


def fft2(a, s=None, axes=(-2, -1), norm=None):
    """`numpy.fft.fft2`."""
    return _c2c("fft2", a, s, axes, norm, False)


def ifft2(a, s=None, axes=(-2, -1), norm=None):
    """`numpy.fft.ifft2`."""
    return _c2c("ifft2", a, s, axes, norm, True)


def rfft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.rfft`."""
    return _r2c("rfft", a, _one(n), (axis,), norm)


def irfft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.irfft`."""
    return _c2r("irfft", a, _one(n), (axis,), norm)


def rfftn(a, s=None, axes=None, norm=None):
    """`numpy.fft.rfftn`."""
    return _r2c("rfftn", a, s, axes, norm)


def irfftn(a, s=None, axes=None, norm=None):
    """`numpy.fft.irfftn`."""
    return _c2r("irfftn", a, s, axes, norm)


def rfft2(a, s=None, axes=(-2, -1), norm=None):
    """`numpy.fft.rfft2`."""
    return _r2c("rfft2", a, s, axes, norm)


def irfft2(a, s=None, axes=(-2, -1), norm=None):
    """`numpy.fft.irfft2`."""
    return _c2r("irfft2", a, s, axes, norm)


_SWAP = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


def hfft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.hfft`: the FFT of a Hermitian-symmetric signal given by its first half."""
    _check_norm(norm)
    a = asarray(a)
    if get_aval(a).dtype.kind == "c":
        a = lax.conj(a)
    return _c2r("hfft", a, _one(n), (axis,), _SWAP[norm])


def ihfft(a, n=None, axis=-1, norm=None):
    """`numpy.fft.ihfft`: the inverse of `hfft` (real input, half spectrum out)."""
    _check_norm(norm)
    return lax.conj(_r2c("ihfft", a, _one(n), (axis,), _SWAP[norm]))


def _freq_dtype(dtype):
    return np.dtype(np.float64) if dtype is None else np.dtype(dtype)


def _freqs(k, n, d, dtype):
    if isinstance(d, Tracer):
        dt = _freq_dtype(dtype)
        return lax.div(lax.convert_element_type(np.asarray(k / n, dt), dt),
                       lax.convert_element_type(d, dt))
    return (k * (1.0 / (n * d))).astype(_freq_dtype(dtype))


def fftfreq(n, d=1.0, *, dtype=None, device=None):
    """`numpy.fft.fftfreq`: sample frequencies `[0, 1, ..., -1] / (d * n)`."""
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"fftfreq: n must be positive, got {n}")
    k = np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)]).astype(float)
    return _freqs(k, n, d, dtype)


def rfftfreq(n, d=1.0, *, dtype=None, device=None):
    """`numpy.fft.rfftfreq`: sample frequencies `[0, 1, ..., n // 2] / (d * n)`."""
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"rfftfreq: n must be positive, got {n}")
    return _freqs(np.arange(0, n // 2 + 1, dtype=float), n, d, dtype)


def _shift(x, axes, sign):
    x = asarray(x)
    nd = get_aval(x).ndim
    if axes is None:
        axes = tuple(range(nd))
    elif np.ndim(axes) == 0:
        axes = (operator.index(axes),)
    else:
        axes = tuple(operator.index(a) for a in axes)
    if not axes:
        return x
    shape = get_aval(x).shape
    shifts = tuple(sign * (shape[ax] // 2) for ax in axes)
    return _roll(x, shifts, axes)


def fftshift(x, axes=None):
    """`numpy.fft.fftshift`: zero frequency to the centre."""
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    """`numpy.fft.ifftshift`: the inverse of `fftshift`."""
    return _shift(x, axes, -1)
