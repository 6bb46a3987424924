"""2-D convolution, FFT convolution and detrending (part of `transforms.scipy.signal`):
compositions of `tnp` operations (FFTs through `tnp.fft`), so they differentiate, batch and
compile."""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["convolve2d", "correlate2d", "fftconvolve", "detrend"]


def _check2d(name, in1, in2, boundary, fillvalue):
    if boundary != "fill" or fillvalue != 0:
        raise NotImplementedError(f"{name}: only boundary='fill' with fillvalue=0 is "
                                  "supported (as JAX)")
    if get_aval(in1).ndim != 2 or get_aval(in2).ndim != 2:
        raise ValueError(f"{name}: in1 and in2 must be 2-D, got shapes "
                         f"{get_aval(in1).shape} and {get_aval(in2).shape}")


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, precision=None):
    """The 2-D convolution of two matrices, as `jax.scipy.signal.convolve2d` (modes 'full',
    'same', 'valid'; only zero filling at the boundary, as JAX). Differentiates, batches
    and compiles."""
    from .signal import convolve
    in1, in2 = tnp.asarray(in1), tnp.asarray(in2)
    _check2d("convolve2d", in1, in2, boundary, fillvalue)
    return convolve(in1, in2, mode=mode)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, precision=None):
    """The 2-D cross-correlation of two matrices, as `jax.scipy.signal.correlate2d` and
    SciPy's (whose 'same' window is centred differently from `correlate`'s for even
    kernels: it is computed here as flip(convolve(flip(in1), in2))). Differentiates,
    batches and compiles."""
    from .signal import _conj, convolve
    in1, in2 = tnp.asarray(in1), tnp.asarray(in2)
    _check2d("correlate2d", in1, in2, boundary, fillvalue)
    in2 = _conj(in2)                   # SciPy conjugates the second operand
    s1, s2 = get_aval(in1).shape, get_aval(in2).shape
    swap = all(a <= b for a, b in zip(s1, s2)) and s1 != s2
    if mode != "same" and swap:
        return convolve(tnp.flip(in2), in1, mode=mode)
    return tnp.flip(convolve(tnp.flip(in1), in2, mode=mode))


def _float(x):
    x = tnp.asarray(x)
    return x if get_aval(x).dtype in (np.float32, np.float64) else tnp.astype(x, np.float64)


def _inexact(x):
    """`x` as a float (integers and bools: float64) or complex array."""
    x = tnp.asarray(x)
    return x if get_aval(x).dtype.kind == "c" else _float(x)


def fftconvolve(in1, in2, mode="full", axes=None):
    """Convolution through FFTs of the full output size (real FFTs for real inputs), as
    `jax.scipy.signal.fftconvolve`: over `axes` (all by default); the other axes broadcast
    (sizes equal or 1). Differentiates, batches and compiles."""
    in1, in2 = _inexact(in1), _inexact(in2)
    nd = get_aval(in1).ndim
    if get_aval(in2).ndim != nd:
        raise ValueError("fftconvolve: in1 and in2 should have the same dimensionality")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"fftconvolve: mode must be 'full', 'same' or 'valid', got "
                         f"{mode!r}")
    if nd == 0:
        return in1 * in2
    axes = list(range(nd)) if axes is None else [a % nd for a in np.atleast_1d(axes)]
    s1, s2 = get_aval(in1).shape, get_aval(in2).shape
    for a in range(nd):
        if a not in axes and s1[a] != s2[a] and 1 not in (s1[a], s2[a]):
            raise ValueError(f"fftconvolve: incompatible shapes for in1 and in2 on axis {a}: "
                             f"{s1} and {s2}")
    if any(s1[a] == 0 or s2[a] == 0 for a in axes):
        raise ValueError("fftconvolve: inputs cannot be empty")
    dt = np.result_type(get_aval(in1).dtype, get_aval(in2).dtype)
    in1, in2 = tnp.astype(in1, dt), tnp.astype(in2, dt)
    full = [s1[a] + s2[a] - 1 for a in axes]
    if dt.kind == "c":          # complex: full FFTs (the real ones would drop the imaginary)
        f1 = tnp.fft.fftn(in1, s=full, axes=axes)
        f2 = tnp.fft.fftn(in2, s=full, axes=axes)
        out = tnp.astype(tnp.fft.ifftn(f1 * f2, s=full, axes=axes), dt)
    else:
        f1 = tnp.fft.rfftn(in1, s=full, axes=axes)
        f2 = tnp.fft.rfftn(in2, s=full, axes=axes)
        out = tnp.astype(tnp.fft.irfftn(f1 * f2, s=full, axes=axes), dt)
    if mode == "full":
        return out
    if mode == "valid":
        if not (all(s1[a] >= s2[a] for a in axes) or all(s2[a] >= s1[a] for a in axes)):
            raise ValueError("fftconvolve: for 'valid' mode, one must be at least as large "
                             "as the other in every dimension")
        want = {a: abs(s1[a] - s2[a]) + 1 for a in axes}
    else:
        want = {a: s1[a] for a in axes}
    idx = [slice(None)] * nd
    for a, f in zip(axes, full):
        start = (f - want[a]) // 2
        idx[a] = slice(start, start + want[a])
    return out[tuple(idx)]


def detrend(data, axis=-1, type="linear", bp=0, overwrite_data=None):
    """Remove the mean ('constant') or the least-squares line ('linear', piecewise between
    the static breakpoints `bp`) along `axis`, as `jax.scipy.signal.detrend`.
    Differentiates, batches and compiles."""
    if type not in ("linear", "l", "constant", "c"):
        raise ValueError(f"detrend: trend type must be 'linear' or 'constant', got {type!r}")
    data = _float(data)
    x = tnp.moveaxis(data, axis, -1)
    n = get_aval(x).shape[-1]
    if type in ("constant", "c"):
        return tnp.moveaxis(x - tnp.mean(x, axis=-1, keepdims=True), -1, axis)
    bps = sorted(set([0] + [int(b) for b in np.atleast_1d(bp)] + [n]))
    if bps[0] < 0 or bps[-1] > n:
        raise ValueError(f"detrend: breakpoints must lie in [0, {n}], got {bp!r}")
    pieces = []
    for lo, hi in zip(bps[:-1], bps[1:]):
        seg = x[..., lo:hi]
        m = hi - lo
        t = np.arange(m, dtype=get_aval(x).dtype) - (m - 1) / 2
        denom = float(np.sum(t * t))
        mean = tnp.mean(seg, axis=-1, keepdims=True)
        if denom == 0:
            pieces.append(seg - mean)
            continue
        slope = tnp.sum(seg * t, axis=-1, keepdims=True) / denom
        pieces.append(seg - mean - slope * t)
    out = pieces[0] if len(pieces) == 1 else tnp.concatenate(pieces, axis=-1)
    return tnp.moveaxis(out, -1, axis)
