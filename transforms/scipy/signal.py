"""`scipy.signal.convolve` / `correlate` (`jax.scipy.signal`): N-dimensional, modes full,
same and valid, by direct summation over the smaller operand's offsets (one fused
multiply-add per offset; differentiable, batched and compiled like any composition)."""
from __future__ import annotations

import itertools

import numpy as np

from .. import numpy as tnp
from ..core import get_aval
from ..lax.linalg import check_precision


def correlate(in1, in2, mode="full", method="auto", precision=None):
    """z[k] = Σ_n in1[n + k] conj(in2[n]), as `scipy.signal.correlate` (`method` and
    `precision` are accepted: the sum is direct and exact on the CPU)."""
    check_precision(precision)
    return _correlate(tnp.asarray(in1), _conj(tnp.asarray(in2)), mode, "correlate")


def _conj(x):
    """`x` conjugated when complex (correlation conjugates its second operand, as SciPy)."""
    return tnp.conjugate(x) if get_aval(x).dtype.kind == "c" else x


def convolve(in1, in2, mode="full", method="auto", precision=None):
    """z[k] = Σ_n in1[n] in2[k − n], as `scipy.signal.convolve` (`method` and `precision`
    are accepted: the sum is direct and exact on the CPU)."""
    check_precision(precision)
    in1, in2 = tnp.asarray(in1), tnp.asarray(in2)
    nd = get_aval(in1).ndim
    if get_aval(in2).ndim != nd:      # checked before flipping in2 over in1's axes
        raise ValueError("convolve: in1 and in2 should have the same dimensionality, got "
                         f"shapes {get_aval(in1).shape} and {get_aval(in2).shape}")
    return _correlate(in1, tnp.flip(in2, axis=tuple(range(nd))) if nd else in2, mode,
                      "convolve")


def _correlate(a, v, mode, name):
    sa, sv = get_aval(a).shape, get_aval(v).shape
    if len(sa) != len(sv):
        raise ValueError(f"{name}: in1 and in2 should have the same dimensionality")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"{name}: mode must be 'full', 'same' or 'valid', got {mode!r}")
    if 0 in sa or 0 in sv:
        raise ValueError(f"{name}: inputs cannot be empty")
    if mode == "valid" and not (all(x >= y for x, y in zip(sa, sv)) or
                                all(y >= x for x, y in zip(sa, sv))):
        raise ValueError(f"{name}: for 'valid' mode, one must be at least as large as the "
                         "other in every dimension")
    dt = np.result_type(get_aval(a).dtype, get_aval(v).dtype)
    a, v = tnp.astype(a, dt), tnp.astype(v, dt)
    full = tuple(x + y - 1 for x, y in zip(sa, sv))
    # the full correlation: out[k] = Σ_n a[n + k - (len(v) - 1)] v[n]
    ap = tnp.pad(a, [(y - 1, y - 1) for y in sv])
    out = None
    for off in itertools.product(*[range(y) for y in sv]):
        window = ap[tuple(slice(o, o + f) for o, f in zip(off, full))]
        term = window * v[off]
        out = term if out is None else out + term
    if mode == "full":
        return out
    if mode == "same":
        start = [(f - x) // 2 for f, x in zip(full, sa)]
        return out[tuple(slice(s, s + x) for s, x in zip(start, sa))]
    big, small = (sa, sv) if all(x >= y for x, y in zip(sa, sv)) else (sv, sa)
    valid = tuple(x - y + 1 for x, y in zip(big, small))
    start = [(f - x) // 2 for f, x in zip(full, valid)]
    return out[tuple(slice(s, s + x) for s, x in zip(start, valid))]


# re-exported: defined in their own module (it imports `convolve`/`correlate` lazily)
from ._signal_more import convolve2d, correlate2d, detrend, fftconvolve  # noqa: E402,F401
from ._spectral import csd, istft, stft, welch  # noqa: E402,F401


# the public names (helpers such as get_aval are imported, not exported)
__all__ = ["convolve", "convolve2d", "correlate", "correlate2d", "csd", "detrend",
           "fftconvolve", "istft", "stft", "welch"]
