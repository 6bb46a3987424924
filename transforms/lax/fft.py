"""The discrete Fourier transform: one `fft` primitive over the trailing axes (as `jax.lax.fft`).

`fft(x, fft_type, fft_lengths)` transforms the last `len(fft_lengths)` axes of `x`:

| type    | operand                       | result                          |
|---------|-------------------------------|---------------------------------|
| "FFT"   | complex, trailing = lengths   | complex, same shape             |
| "IFFT"  | complex, trailing = lengths   | complex, same shape (1/N scaled)|
| "RFFT"  | real, trailing = lengths      | complex, last axis n // 2 + 1   |
| "IRFFT" | complex, last axis n // 2 + 1 | real, trailing = lengths        |

Precision is kept (float32 <-> complex64, float64 <-> complex128). Eagerly it is NumPy's
pocketfft. The map is linear, so the JVP applies the same transform to the tangent.

Transposes use JAX's bilinear pairing `<a, b> = Re(sum(a * b))` (no conjugation; see
`lax/complex.py`). With F the unnormalised DFT matrix (symmetric):

* FFT:   F^T = F, so the transpose of FFT is FFT, of IFFT is IFFT.
* RFFT:  y = (first n//2+1 rows of F) x with x real. Re(sum_k ct_k y_k) = sum_j x_j
  Re((F^T pad(ct))_j), so the transpose is `real(FFT(pad(ct)))`, with ct zero-padded on the
  last axis to n (over several axes the leading ones are plain FFTs, whose transposes are FFTs).
* IRFFT: x_j = (1/N) Re(sum_k w_k y_k e^{+2 pi i jk/n}) (Hermitian extension: w_k = 2 for
  the bins that stand for a conjugate pair, 1 for bin 0 and, n even, bin n/2; the imaginary
  parts of those two bins are ignored). Hence the transpose is
  `w * conj(RFFT(ct)) / N`, N the product of the lengths; bins 0 and n/2 of RFFT of a real
  signal are real, so the ignored imaginary parts get a zero cotangent as they must.
"""
from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray, get_aval
from ..interpreters.batching import moveaxis
from ._util import as_array, is_undefined

FFT_TYPES = ("FFT", "IFFT", "RFFT", "IRFFT")

fft_p = Primitive("fft")


def _norm_type(fft_type):
    if hasattr(fft_type, "name"):          # an enum such as jax.lax.FftType
        fft_type = fft_type.name
    t = str(fft_type).upper()
    if t not in FFT_TYPES:
        raise ValueError(f"lax.fft: unknown fft_type {fft_type!r}; use one of {FFT_TYPES}")
    return t


def _complex_of(dtype):
    return np.dtype(np.complex64) if np.dtype(dtype) in (np.float32, np.complex64) \
        else np.dtype(np.complex128)


def _real_of(dtype):
    return np.dtype(np.float32) if np.dtype(dtype) == np.complex64 else np.dtype(np.float64)


def fft(x, fft_type, fft_lengths):
    """`jax.lax.fft`: transform the trailing `len(fft_lengths)` axes of `x` (see module doc)."""
    x = as_array(x)
    fft_type = _norm_type(fft_type)
    if isinstance(fft_lengths, (int, np.integer)):
        fft_lengths = (fft_lengths,)
    fft_lengths = tuple(int(n) for n in fft_lengths)
    _fft_abstract(get_aval(x), fft_type=fft_type, fft_lengths=fft_lengths)   # eager checks too
    return fft_p.bind(x, fft_type=fft_type, fft_lengths=fft_lengths)


@fft_p.def_abstract_eval
def _fft_abstract(x, *, fft_type, fft_lengths):
    d = len(fft_lengths)
    if d < 1 or d > 3:
        raise ValueError(f"lax.fft: 1 to 3 transformed axes are supported, got {d}")
    if x.ndim < d:
        raise ValueError(f"lax.fft: operand of rank {x.ndim} has fewer than {d} axes")
    if any(n < 1 for n in fft_lengths):
        raise ValueError(f"lax.fft: fft_lengths must be positive, got {fft_lengths}")
    lead, trail = x.shape[:x.ndim - d], tuple(x.shape[x.ndim - d:])
    kind = x.dtype.kind
    if fft_type in ("FFT", "IFFT"):
        if kind != "c":
            raise TypeError(f"lax.fft {fft_type} requires a complex operand, got {x.dtype.name}")
        if trail != fft_lengths:
            raise ValueError(f"lax.fft {fft_type}: trailing shape {trail} != fft_lengths "
                             f"{fft_lengths}")
        return ShapedArray(x.shape, x.dtype)
    if fft_type == "RFFT":
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"lax.fft RFFT requires a float32/float64 operand, got "
                            f"{x.dtype.name}")
        if trail != fft_lengths:
            raise ValueError(f"lax.fft RFFT: trailing shape {trail} != fft_lengths "
                             f"{fft_lengths}")
        return ShapedArray(lead + fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,),
                           _complex_of(x.dtype))
    if kind != "c":
        raise TypeError(f"lax.fft IRFFT requires a complex operand, got {x.dtype.name}")
    want = fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,)
    if trail != want:
        raise ValueError(f"lax.fft IRFFT: trailing shape {trail} != {want} for fft_lengths "
                         f"{fft_lengths}")
    return ShapedArray(lead + fft_lengths, _real_of(x.dtype))


def fft_numpy(x, fft_type, fft_lengths):
    """The NumPy (pocketfft) evaluation, also used by the jit backend's object-mode call."""
    x = np.asarray(x)
    d = len(fft_lengths)
    axes = tuple(range(x.ndim - d, x.ndim))
    if fft_type == "FFT":
        out, dt = np.fft.fftn(x, s=fft_lengths, axes=axes), x.dtype
    elif fft_type == "IFFT":
        out, dt = np.fft.ifftn(x, s=fft_lengths, axes=axes), x.dtype
    elif fft_type == "RFFT":
        out, dt = np.fft.rfftn(x, s=fft_lengths, axes=axes), _complex_of(x.dtype)
    else:
        out, dt = np.fft.irfftn(x, s=fft_lengths, axes=axes), _real_of(x.dtype)
    return np.asarray(out, dtype=dt)


def fft_eval(x, fft_type, fft_lengths):
    """The primitive's evaluation (the impl; also called by the jit backend in object mode)."""
    x = np.asarray(x)
    if x.size == 0 or any(s == 0 for s in x.shape):
        a = _fft_abstract(ShapedArray(x.shape, x.dtype), fft_type=fft_type,
                          fft_lengths=fft_lengths)
        return np.zeros(a.shape, a.dtype)
    return fft_numpy(x, fft_type, fft_lengths)


fft_p.def_impl(lambda x, *, fft_type, fft_lengths: fft_eval(x, fft_type, fft_lengths))


@fft_p.def_jvp
def _fft_jvp(primals, tangents, *, fft_type, fft_lengths):
    out = fft_p.bind(primals[0], fft_type=fft_type, fft_lengths=fft_lengths)
    t = tangents[0]
    if t is None:
        return out, None
    return out, fft_p.bind(t, fft_type=fft_type, fft_lengths=fft_lengths)


def _hermitian_weights(fft_lengths, dtype):
    """w_k over the last (half-spectrum) axis: 1 for bin 0 and (n even) bin n/2, else 2."""
    n = fft_lengths[-1]
    w = np.full(n // 2 + 1, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.astype(dtype)


@fft_p.def_transpose
def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    from . import elementwise as E
    from . import shape as S
    from .complex import conj, real
    assert is_undefined(x)
    if fft_type in ("FFT", "IFFT"):
        return [fft_p.bind(ct, fft_type=fft_type, fft_lengths=fft_lengths)]
    nd = get_aval(ct).ndim
    if fft_type == "RFFT":
        n = fft_lengths[-1]
        m = n // 2 + 1
        zero = np.zeros((), get_aval(ct).dtype)
        cfg = [(0, 0, 0)] * (nd - 1) + [(0, n - m, 0)]
        padded = S.pad(ct, zero, cfg) if n > m else ct
        return [real(fft_p.bind(padded, fft_type="FFT", fft_lengths=fft_lengths))]
    # IRFFT: ct is real
    total = float(np.prod(fft_lengths))
    cdt = x.aval.dtype
    spec = conj(fft_p.bind(ct, fft_type="RFFT", fft_lengths=fft_lengths))
    w = _hermitian_weights(fft_lengths, np.float64) / total
    w = w.astype(_real_of(cdt))
    wshape = (1,) * (nd - 1) + (w.shape[0],)
    wc = np.asarray(w.reshape(wshape) + 0j, cdt)
    wc = S.broadcast_in_dim(wc, get_aval(spec).shape, tuple(range(nd)))
    return [E.mul(spec, wc)]


@fft_p.def_batch
def _fft_batch(args, dims, *, fft_type, fft_lengths):
    (x,), (d,) = args, dims
    x = moveaxis(x, d, 0)
    return fft_p.bind(x, fft_type=fft_type, fft_lengths=fft_lengths), 0


class FftType:
    """`jax.lax.FftType`'s names (strings are accepted too)."""
    FFT = "FFT"
    IFFT = "IFFT"
    RFFT = "RFFT"
    IRFFT = "IRFFT"
