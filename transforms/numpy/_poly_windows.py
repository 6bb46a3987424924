"""Polynomials as coefficient arrays, highest power first (`poly`, `polyadd`, `polysub`,
`polymul`, `polydiv`, `polyder`, `polyint`, `polyfit`, `roots`; `polyval` is in
`_math_extra`), and the window functions `bartlett`, `blackman`, `hamming`, `hanning`,
`kaiser`.

Coefficient counts are shapes, so they are static; the coefficient values may be traced, and
the arithmetic ones differentiate, batch and compile. Following JAX, nothing trims leading zeros
unless asked (`trim_leading_zeros=`, which needs concrete values), because trimming would make
the shape depend on the data.
"""
from __future__ import annotations

import numpy as np

from ..core import Tracer, concrete_or_error, get_aval
from . import _ops
from ._math_extra import convolve, polyval  # noqa: F401 - polyval: the family's evaluator
from ._ops import asarray
from ._shape_ops import concatenate, ravel, reshape


def _coeffs(p, name):
    p = asarray(p)
    if get_aval(p).ndim != 1:
        raise ValueError(f"{name}: coefficients must be 1-D, got shape {get_aval(p).shape}")
    return p


def _pad_front(p, n):
    k = get_aval(p).shape[0]
    if k >= n:
        return p
    return concatenate([np.zeros((n - k,), get_aval(p).dtype), p])


def _trim_leading(p, name):
    v = np.asarray(concrete_or_error(p, f"{name}: trim_leading_zeros=True (the result's "
                                        f"length depends on the values)"))
    nz = np.flatnonzero(v)
    return p[int(nz[0]):] if nz.size else p[-1:]


def polyadd(a1, a2):
    """Mirrors `jax.numpy.polyadd` / `numpy.polyadd`: the sum of two polynomials (the shorter
    padded at the front). Differentiable; batches and compiles."""
    a1, a2 = _coeffs(a1, "polyadd"), _coeffs(a2, "polyadd")
    n = max(get_aval(a1).shape[0], get_aval(a2).shape[0])
    return _ops.add(_pad_front(a1, n), _pad_front(a2, n))


def polysub(a1, a2):
    """Mirrors `jax.numpy.polysub` / `numpy.polysub`: `a1 - a2` as polynomials.
    Differentiable; batches and compiles."""
    a1, a2 = _coeffs(a1, "polysub"), _coeffs(a2, "polysub")
    n = max(get_aval(a1).shape[0], get_aval(a2).shape[0])
    return _ops.subtract(_pad_front(a1, n), _pad_front(a2, n))


def polymul(a1, a2, *, trim_leading_zeros=False):
    """Mirrors `jax.numpy.polymul`: the product polynomial (a full convolution). As JAX,
    leading zeros are kept unless `trim_leading_zeros=True` (NumPy always trims; trimming
    needs concrete values). Differentiable; batches and compiles."""
    a1, a2 = _coeffs(a1, "polymul"), _coeffs(a2, "polymul")
    if trim_leading_zeros:
        a1, a2 = _trim_leading(a1, "polymul"), _trim_leading(a2, "polymul")
    if get_aval(a1).shape[0] == 0 or get_aval(a2).shape[0] == 0:
        return np.zeros((1,), _ops.result_type_(a1, a2))
    return convolve(a1, a2)


def polydiv(u, v, *, trim_leading_zeros=False):
    """Mirrors `jax.numpy.polydiv`: `(quotient, remainder)` of polynomial long division. As
    JAX, the remainder keeps the length of `u` (leading zeros included) unless
    `trim_leading_zeros=True` (concrete values only); NumPy trims it. A leading zero of `v`
    gives inf/nan, as both. Float results; differentiable; batches and compiles."""
    u, v = _coeffs(u, "polydiv"), _coeffs(v, "polydiv")
    dt = _ops.result_type_(u, v, 1.0)
    u, v = _ops.astype(u, dt), _ops.astype(v, dt)
    n, m = get_aval(u).shape[0], get_aval(v).shape[0]
    if m == 0:
        raise ValueError("polydiv: the divisor must have at least one coefficient")
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / v[0]
        r = u
        q = []
        for k in range(max(n - m + 1, 0)):
            d = scale * r[k]
            q.append(d)
            r = _ops.at(r)[k:k + m].add(-d * v)
    quot = _ops.stack(q) if q else np.zeros((1,), dt)
    if trim_leading_zeros:
        rv = np.asarray(concrete_or_error(r, "polydiv: trim_leading_zeros=True"))
        k = 0
        while k < len(rv) - 1 and np.allclose(rv[k], 0, rtol=1e-14, atol=1e-14):
            k += 1
        r = r[k:]
    return quot, r


def polyder(p, m=1):
    """Mirrors `jax.numpy.polyder` / `numpy.polyder`: the `m`-th derivative polynomial (dtype
    as NumPy: integers stay integers). Differentiable; batches and compiles."""
    p = _coeffs(p, "polyder")
    m = int(m)
    if m < 0:
        raise ValueError("polyder: order of derivative must be non-negative")
    for _ in range(m):
        n = get_aval(p).shape[0]
        if n <= 1:
            return np.zeros((1,), get_aval(p).dtype) if not isinstance(p, Tracer) else \
                _ops.zeros((1,), get_aval(p).dtype)
        p = p[:-1] * np.arange(n - 1, 0, -1)
    return p


def polyint(p, m=1, k=None):
    """Mirrors `jax.numpy.polyint` / `numpy.polyint`: the `m`-th antiderivative, with
    integration constants `k` (a scalar for all, or `m` values, lowest order first as NumPy).
    Float result; differentiable in `p` and `k`; batches and compiles."""
    p = _coeffs(p, "polyint")
    m = int(m)
    if m < 0:
        raise ValueError("polyint: order of integral must be non-negative")
    if m == 0:
        return p
    if k is None:
        ks = [0.0] * m
    else:
        kk = ravel(asarray(k))
        ks = [kk[i] for i in range(get_aval(kk).shape[0])]
        if len(ks) == 1:
            ks = ks * m
    if len(ks) != m:
        raise ValueError(f"polyint: k must be a scalar or have length m={m}")
    dt = _ops.result_type_(p, 1.0)
    p = _ops.astype(p, dt)
    for i in range(m):
        n = get_aval(p).shape[0]
        p = concatenate([p / np.arange(n, 0, -1, dtype=dt),
                         reshape(_ops.astype(asarray(ks[i]), dt), (1,))])
    return p


def polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    """Mirrors `jax.numpy.polyfit` / `numpy.polyfit`: least-squares coefficients of degree
    `deg` (columns scaled as NumPy for conditioning; `y` may be 2-D, one fit per column;
    `w` weights). `full=True` also returns `(residuals, rank, singular_values, rcond)`;
    `cov=True` is not supported. Differentiable in `x`, `y`, `w` (through the SVD); batches
    and compiles."""
    if cov:
        raise NotImplementedError("polyfit: cov=True is not supported")
    from . import linalg
    from ._construct import vander
    deg = int(deg)
    if deg < 0:
        raise ValueError("polyfit: expected deg >= 0")
    x, y = asarray(x), asarray(y)
    dt = _ops.result_type_(x, y, 1.0)
    x, y = _ops.astype(x, dt), _ops.astype(y, dt)
    if get_aval(x).ndim != 1 or get_aval(y).ndim not in (1, 2):
        raise TypeError("polyfit: x must be 1-D and y 1-D or 2-D")
    n = get_aval(x).shape[0]
    if get_aval(y).shape[0] != n:
        raise TypeError("polyfit: x and y must have the same length")
    rcond = n * np.finfo(dt).eps if rcond is None else rcond
    lhs = vander(x, deg + 1)
    rhs = y
    if w is not None:
        w = _ops.astype(asarray(w), dt)
        lhs = lhs * w[:, None]
        rhs = rhs * (w if get_aval(rhs).ndim == 1 else w[:, None])
    scale = _ops.sqrt(_ops.sum(lhs * lhs, axis=0))
    scale = _ops.where(_ops.equal(scale, 0), 1.0, scale)
    c, resids, rank, s = linalg.lstsq(lhs / scale, rhs, rcond)
    c = (c.T / scale).T
    return (c, resids, rank, s, rcond) if full else c


def roots(p, *, strip_zeros=True):
    """Mirrors `jax.numpy.roots` / `numpy.roots`: the roots of the polynomial, as the
    eigenvalues of its companion matrix (complex128, or complex64 for float32 input).
    Eager only: general eigenvalues are computed eagerly here (see `linalg.eig`), so traced
    coefficients raise. With `strip_zeros=True` leading zeros are dropped and trailing ones
    give zero roots (as NumPy); with False a leading zero gives nan roots (as JAX)."""
    p = _coeffs(p, "roots")
    v = np.asarray(concrete_or_error(p, "roots: p (general eigenvalues are computed eagerly)"))
    cdt = np.complex64 if v.dtype in (np.float32, np.complex64) else np.complex128
    trailing = 0
    if strip_zeros:
        nz = np.flatnonzero(v)
        if nz.size == 0:
            return np.zeros((0,), cdt)
        trailing = len(v) - nz[-1] - 1
        v = v[nz[0]:nz[-1] + 1]
    n = len(v)
    if n < 2:
        return np.zeros((trailing,), cdt)
    with np.errstate(divide="ignore", invalid="ignore"):
        comp = np.diag(np.ones(n - 2, v.dtype), -1) if n > 2 else np.zeros((1, 1), v.dtype)
        comp = comp.astype(np.result_type(v.dtype, np.float64))
        comp[0, :] = -v[1:] / v[0]
        if not np.all(np.isfinite(comp)):
            r = np.full((n - 1,), np.nan + 1j * np.nan)
        else:
            r = np.linalg.eigvals(comp)
    return np.concatenate([r.astype(cdt), np.zeros((trailing,), cdt)])


def poly(seq_of_zeros):
    """Mirrors `jax.numpy.poly` / `numpy.poly`: the monic polynomial with the given roots (a
    1-D array), or the characteristic polynomial of a square matrix (from its eigenvalues,
    computed eagerly as `linalg.eigvals`: real when they all are, as NumPy; JAX always gives
    complex). For 1-D roots it differentiates, batches and compiles."""
    z = asarray(seq_of_zeros)
    nd = get_aval(z).ndim
    if nd == 2:
        shape = get_aval(z).shape
        if shape[0] != shape[1] or shape[0] == 0:
            raise ValueError(f"poly: input must be 1-D or a non-empty square 2-D array, got "
                             f"shape {shape}")
        from . import linalg
        z = asarray(linalg.eigvals(z))
    elif nd != 1:
        raise ValueError("poly: input must be 1-D or a square 2-D array")
    dt = _ops.result_type_(z, 1.0)
    a = np.ones((1,), dt)
    for i in range(get_aval(z).shape[0]):
        zero = np.zeros((1,), dt)
        a = _ops.subtract(concatenate([a, zero]), _ops.multiply(z[i], concatenate([zero, a])))
    return a


# --- windows: the length is static; `kaiser`'s beta may be traced ------------------------------

def _window(M, name, shape):
    """A window of static length `M` as NumPy builds it: empty for M < 1, [1.] for M == 1,
    else `shape(n, M - 1)` over the symmetric positions n = 1-M, 3-M, ..., M-1 (float64)."""
    M = int(concrete_or_error(M, f"{name}: M (the window length)"))
    if M < 1:
        return np.zeros((0,))
    if M == 1:
        return np.ones((1,))
    return shape(np.arange(1 - M, M, 2, dtype=np.float64), M - 1)


def bartlett(M):
    """Mirrors `numpy.bartlett`: the triangular window of length `M` (static), float64.
    A constant: nothing to differentiate or batch."""
    return _window(M, "bartlett", lambda n, d: np.where(n <= 0, 1 + n / d, 1 - n / d))


def blackman(M):
    """Mirrors `numpy.blackman`: the Blackman window of length `M` (static), float64.
    A constant: nothing to differentiate or batch."""
    return _window(M, "blackman", lambda n, d: 0.42 + 0.5 * np.cos(np.pi * n / d)
                   + 0.08 * np.cos(2.0 * np.pi * n / d))


def hamming(M):
    """Mirrors `numpy.hamming`: the Hamming window of length `M` (static), float64.
    A constant: nothing to differentiate or batch."""
    return _window(M, "hamming", lambda n, d: 0.54 + 0.46 * np.cos(np.pi * n / d))


def hanning(M):
    """Mirrors `numpy.hanning`: the Hann window of length `M` (static), float64.
    A constant: nothing to differentiate or batch."""
    return _window(M, "hanning", lambda n, d: 0.5 + 0.5 * np.cos(np.pi * n / d))


def kaiser(M, beta):
    """Mirrors `numpy.kaiser`: the Kaiser window of length `M` (static) and shape `beta`,
    float64. `beta` may be traced: differentiable in `beta`, batches and compiles."""
    from ._math_more import i0
    M = int(concrete_or_error(M, "kaiser: M (the window length)"))
    if M < 1:
        return np.zeros((0,))
    if M == 1:
        return np.ones((1,))
    n = np.arange(M, dtype=np.float64)
    alpha = (M - 1) / 2.0
    b = _ops.astype(asarray(beta), np.float64)
    return i0(b * np.sqrt(1 - ((n - alpha) / alpha) ** 2)) / i0(b)
