"""Short-time Fourier transforms and spectral densities (part of
`transforms.scipy.signal`): `stft`, `istft`, `csd`, `welch`, following SciPy's
definitions (window, overlap, boundary extension, padding, detrending, density or
spectrum scaling, one-sided doubling, mean or median averaging).

Segments are gathered with static indices and transformed with `tnp.fft`, so everything
differentiates, batches and compiles. Windows are built with `scipy.signal.get_window` as
constants when given by name (SciPy is then needed), or passed as arrays."""
from __future__ import annotations

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["stft", "istft", "csd", "welch"]


def _window(window, nperseg, n_input, name, cap=True):
    if isinstance(window, (str, tuple)):
        if nperseg is None:
            nperseg = 256
        if cap and nperseg > n_input:
            nperseg = n_input
        from scipy.signal import get_window
        return np.asarray(get_window(window, int(nperseg))), int(nperseg)
    win = np.asarray(window)
    if win.ndim != 1:
        raise ValueError(f"{name}: window must be 1-D")
    if nperseg is not None and int(nperseg) != win.shape[0]:
        raise ValueError(f"{name}: value specified for nperseg is different from length "
                         "of window")
    return win, win.shape[0]


def _float(x):
    x = tnp.asarray(x)
    dt = get_aval(x).dtype
    if dt in (np.float32, np.float64, np.complex64, np.complex128):
        return x
    return tnp.astype(x, np.float64)


def _extend(x, n, kind, name):
    """SciPy's boundary extensions by n samples at both ends of the last axis."""
    if kind == "zeros":
        pad = [(0, 0)] * (get_aval(x).ndim - 1) + [(n, n)]
        return tnp.pad(x, pad)
    first, last = x[..., :1], x[..., -1:]
    head = tnp.flip(x[..., 1:n + 1], axis=-1)
    tail = tnp.flip(x[..., -n - 1:-1], axis=-1)
    if kind == "even":
        return tnp.concatenate([head, x, tail], axis=-1)
    if kind == "odd":
        return tnp.concatenate([2 * first - head, x, 2 * last - tail], axis=-1)
    if kind == "constant":
        shp = get_aval(x).shape[:-1] + (n,)
        return tnp.concatenate([tnp.broadcast_to(first, shp), x,
                                tnp.broadcast_to(last, shp)], axis=-1)
    raise ValueError(f"{name}: unknown boundary option {kind!r}, must be one of 'even', "
                     "'odd', 'constant', 'zeros' or None")


def _detrend_fn(detrend, name):
    if detrend is False or detrend is None:
        return lambda d: d
    if callable(detrend):
        return detrend
    if detrend in ("constant", "c"):
        return lambda d: d - tnp.mean(d, axis=-1, keepdims=True)
    if detrend in ("linear", "l"):
        from ._signal_more import detrend as dt
        return lambda d: dt(d, axis=-1, type="linear")
    raise ValueError(f"{name}: detrend must be False, 'constant', 'linear' or a function, "
                     f"got {detrend!r}")


def _spectral(x, y, fs, window, nperseg, noverlap, nfft, detrend, return_onesided,
              scaling, axis, mode, boundary, padded, name):
    x = tnp.moveaxis(_float(x), axis, -1)
    if y is not None:
        y = tnp.moveaxis(_float(y), axis, -1)
        shape = np.broadcast_shapes(get_aval(x).shape[:-1], get_aval(y).shape[:-1])
        if get_aval(x).shape[-1] != get_aval(y).shape[-1]:
            raise ValueError(f"{name}: x and y must have the same length along axis")
        x = tnp.broadcast_to(x, shape + get_aval(x).shape[-1:])
        y = tnp.broadcast_to(y, shape + get_aval(y).shape[-1:])
    n_in = get_aval(x).shape[-1]
    win, nperseg = _window(window, nperseg, n_in, name, cap=(mode == "psd"))
    if nfft is None:
        nfft = nperseg
    elif nfft < nperseg:
        raise ValueError(f"{name}: nfft must be greater than or equal to nperseg")
    noverlap = nperseg // 2 if noverlap is None else int(noverlap)
    if noverlap >= nperseg:
        raise ValueError(f"{name}: noverlap must be less than nperseg")
    step = nperseg - noverlap
    if boundary is not None:
        x = _extend(x, nperseg // 2, boundary, name)
        if y is not None:
            y = _extend(y, nperseg // 2, boundary, name)
    if padded:
        nadd = (-(get_aval(x).shape[-1] - nperseg) % step) % nperseg
        pad = [(0, 0)] * (get_aval(x).ndim - 1) + [(0, nadd)]
        x = tnp.pad(x, pad)
        if y is not None:
            y = tnp.pad(y, pad)
    length = get_aval(x).shape[-1]
    if length < nperseg:
        raise ValueError(f"{name}: nperseg = {nperseg} is greater than the input length "
                         f"{length}")
    nseg = (length - nperseg) // step + 1
    idx = np.arange(nseg)[:, None] * step + np.arange(nperseg)[None, :]
    complex_in = any(np.issubdtype(get_aval(v).dtype, np.complexfloating)
                     for v in (x, y) if v is not None)
    onesided = return_onesided and not complex_in
    det = _detrend_fn(detrend, name)
    real_dt = np.float32 if get_aval(x).dtype in (np.float32, np.complex64) else np.float64
    w = win.astype(real_dt)

    def spectrum(v):
        seg = det(tnp.take(v, idx, axis=-1)) * w          # (..., nseg, nperseg)
        return tnp.fft.rfft(seg, n=nfft) if onesided else tnp.fft.fft(seg, n=nfft)

    if scaling == "density":
        scale = 1.0 / (fs * float(np.sum(win * win)))
    elif scaling == "spectrum":
        scale = 1.0 / float(np.sum(win)) ** 2
    else:
        raise ValueError(f"{name}: unknown scaling {scaling!r}")
    X = spectrum(x)
    if mode == "stft":
        result = X * np.sqrt(scale)
    else:
        Y = X if y is None else spectrum(y)
        result = tnp.conj(X) * Y * scale
        if onesided:
            nf = get_aval(result).shape[-1]
            dbl = np.ones(nf)
            dbl[1:nf if nfft % 2 else nf - 1] = 2.0
            result = result * dbl.astype(real_dt)
    freqs = (np.fft.rfftfreq(nfft, 1 / fs) if onesided else np.fft.fftfreq(nfft, 1 / fs))
    time = np.arange(nperseg / 2, length - nperseg / 2 + 1, step) / float(fs)
    if boundary is not None:
        time = time - (nperseg / 2) / fs
    # (..., nseg, freq) -> (..., freq, nseg), the frequency axis where `axis` was
    result = tnp.swapaxes(result, -1, -2)
    return freqs, time, result


def stft(x, fs=1.0, window="hann", nperseg=256, noverlap=None, nfft=None, detrend=False,
         return_onesided=True, boundary="zeros", padded=True, axis=-1, scaling="spectrum"):
    """The short-time Fourier transform `(f, t, Zxx)`, as `jax.scipy.signal.stft`
    (`scaling` 'spectrum' or 'psd'; `boundary` 'zeros', 'even', 'odd', 'constant' or None).
    Zxx has the frequency and segment axes last, as SciPy's for axis=-1. Differentiates,
    batches and compiles."""
    if scaling not in ("spectrum", "psd"):
        raise ValueError(f"stft: scaling must be 'spectrum' or 'psd', got {scaling!r}")
    f, t, Z = _spectral(x, None, fs, window, nperseg, noverlap, nfft, detrend,
                        return_onesided, "density" if scaling == "psd" else "spectrum",
                        axis, "stft", boundary, padded, "stft")
    return f, t, _restore_axis(Z, axis)


def _restore_axis(res, axis):
    """SciPy puts the frequency axis where `axis` was and the segment axis last."""
    if axis in (-1, get_aval(res).ndim - 2):
        return res
    return tnp.moveaxis(res, -2, axis if axis >= 0 else axis - 1)


def csd(x, y, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
        detrend="constant", return_onesided=True, scaling="density", axis=-1,
        average="mean"):
    """The cross power spectral density `(f, Pxy)` by Welch's method, as
    `jax.scipy.signal.csd` (`average` 'mean' or 'median', the latter with SciPy's bias
    correction). Differentiates, batches and compiles."""
    if average not in ("mean", "median"):
        raise ValueError(f"csd: average must be 'mean' or 'median', got {average!r}")
    same = y is None or y is x
    f, _, P = _spectral(x, None if same else y, fs, window, nperseg, noverlap, nfft,
                        detrend, return_onesided, scaling, axis, "psd", None, False, "csd")
    nseg = get_aval(P).shape[-1]
    if nseg > 1:
        if average == "mean":
            P = tnp.mean(P, axis=-1)
        else:
            bias = 1.0 + sum(1.0 / (k + 1) - 1.0 / k for k in range(2, nseg, 2)
                             if k <= 2 * ((nseg - 1) // 2))
            if np.issubdtype(get_aval(P).dtype, np.complexfloating):
                P = tnp.median(tnp.real(P), axis=-1) + 1j * tnp.median(tnp.imag(P), axis=-1)
            else:
                P = tnp.median(P, axis=-1)
            P = P / bias
    else:
        P = P[..., 0]
    if same:
        P = tnp.real(P)
    if axis not in (-1, get_aval(P).ndim - 1):
        P = tnp.moveaxis(P, -1, axis)
    return f, P


def welch(x, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
          detrend="constant", return_onesided=True, scaling="density", axis=-1,
          average="mean"):
    """The power spectral density `(f, Pxx)` by Welch's method, as
    `jax.scipy.signal.welch` (`csd(x, x)`, real). Differentiates, batches and
    compiles."""
    return csd(x, x, fs, window, nperseg, noverlap, nfft, detrend, return_onesided,
               scaling, axis, average)


def istft(Zxx, fs=1.0, window="hann", nperseg=None, noverlap=None, nfft=None,
          input_onesided=True, boundary=True, time_axis=-1, freq_axis=-2,
          scaling="spectrum"):
    """The inverse short-time Fourier transform `(t, x)` by weighted overlap-add, as
    `jax.scipy.signal.istft` (whose `t` has length x.shape[0], as SciPy's, also for
    batched input). Differentiates, batches and compiles."""
    Z = tnp.asarray(Zxx)
    nd = get_aval(Z).ndim
    if nd < 2:
        raise ValueError("istft: input stft must be at least 2d")
    time_axis, freq_axis = time_axis % nd, freq_axis % nd
    if time_axis == freq_axis:
        raise ValueError("istft: must specify differing time and frequency axes")
    Z = tnp.moveaxis(Z, (freq_axis, time_axis), (-2, -1))
    nfreq, nseg = get_aval(Z).shape[-2:]
    n_default = 2 * (nfreq - 1) if input_onesided else nfreq
    if nperseg is None:
        nperseg = n_default
    nperseg = int(nperseg)
    if nfft is None:
        nfft = n_default if input_onesided and nperseg == n_default + 1 else nperseg
    elif nfft < nperseg:
        raise ValueError("istft: nfft must be greater than or equal to nperseg")
    noverlap = nperseg // 2 if noverlap is None else int(noverlap)
    if noverlap >= nperseg:
        raise ValueError("istft: noverlap must be less than nperseg")
    step = nperseg - noverlap
    win, _ = _window(window, nperseg, nperseg, "istft", cap=False)
    Zt = tnp.swapaxes(Z, -1, -2)                              # (..., nseg, freq)
    segs = tnp.fft.irfft(Zt, n=nfft) if input_onesided else tnp.fft.ifft(Zt, n=nfft)
    segs = segs[..., :nperseg]
    if scaling == "spectrum":
        segs = segs * float(np.sum(win))
    elif scaling == "psd":
        segs = segs * float(np.sqrt(fs * np.sum(win ** 2)))
    else:
        raise ValueError(f"istft: unknown scaling {scaling!r}")
    real_dt = np.float32 if get_aval(segs).dtype in (np.float32, np.complex64) else np.float64
    segs = segs * win.astype(real_dt)
    out_len = nperseg + (nseg - 1) * step
    x = _overlap_add(segs, step, out_len)
    norm = np.zeros(out_len)
    for i in range(nseg):
        norm[i * step:i * step + nperseg] += win ** 2
    if boundary:
        h = nperseg // 2
        x = x[..., h:out_len - h]
        norm = norm[h:out_len - h]
    x = x / np.where(norm > 1e-10, norm, 1.0).astype(real_dt)
    if input_onesided:
        x = tnp.real(x)
    # SciPy and JAX take the time axis' length from x.shape[0] (the signal length for 1-D
    # input, the first batch size otherwise): kept for parity
    return np.arange(get_aval(x).shape[0]) / float(fs), x


def _overlap_add(segs, step, out_len):
    """Σᵢ segs[i] placed at i·step. When step divides the segment length, as for the usual
    half overlap, it is a few shifted block sums; otherwise one padded add per segment."""
    nseg, nper = get_aval(segs).shape[-2:]
    lead = get_aval(segs).shape[:-2]
    zpad = [(0, 0)] * len(lead)
    if nper % step == 0:
        k = nper // step
        blocks = tnp.reshape(segs, lead + (nseg, k, step))
        total = None
        for m in range(k):
            # block m of segment i lands at output block i + m
            part = tnp.pad(blocks[..., :, m, :], zpad + [(m, k - 1 - m), (0, 0)])
            total = part if total is None else total + part
        return tnp.reshape(total, lead + ((nseg + k - 1) * step,))[..., :out_len]
    out = None
    for i in range(nseg):
        part = tnp.pad(segs[..., i, :], zpad + [(i * step, out_len - i * step - nper)])
        out = part if out is None else out + part
    return out
