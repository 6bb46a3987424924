"""Special matrices of `scipy.linalg` (part of `transforms.scipy.linalg`).

Constructors from data (`toeplitz`, `hankel`, `circulant`, `companion`,
`convolution_matrix`, `leslie`, `fiedler`, `fiedler_companion`) are compositions of `tnp`
gathers, so they differentiate, batch and compile. Constructors from a static size (`dft`,
`hadamard`, `hilbert`, `invhilbert`, `helmert`, `pascal`, `invpascal`) return constant
arrays computed exactly with NumPy and Python integers, as SciPy's."""
from __future__ import annotations

import math

import numpy as np

from .. import numpy as tnp
from ..core import get_aval

__all__ = ["toeplitz", "hankel", "circulant", "companion", "convolution_matrix", "leslie",
           "fiedler", "fiedler_companion", "dft", "hadamard", "hilbert", "invhilbert",
           "helmert", "pascal", "invpascal"]


def _vec(v):
    v = tnp.asarray(v)
    if get_aval(v).ndim == 0:
        v = tnp.reshape(v, (1,))
    return v


def toeplitz(c, r=None):
    """The Toeplitz matrix with first column `c` and first row `r` (r[0] ignored; r = c
    when None, the symmetric case of `jax.scipy.linalg.toeplitz` for real input).
    Leading axes of c and r batch, as JAX's. Differentiates, batches and compiles."""
    c = _vec(c)
    r = c if r is None else _vec(r)
    m, n = get_aval(c).shape[-1], get_aval(r).shape[-1]
    batch = np.broadcast_shapes(get_aval(c).shape[:-1], get_aval(r).shape[:-1])
    c = tnp.broadcast_to(c, batch + (m,))
    r = tnp.broadcast_to(r, batch + (n,))
    # vals = [c reversed, r[1:]]: entry (i, j) is vals[m − 1 − i + j]
    vals = tnp.concatenate([tnp.flip(c, axis=-1), r[..., 1:]], axis=-1)
    idx = (m - 1) - np.arange(m)[:, None] + np.arange(n)[None, :]
    return vals[..., idx]


def hankel(c, r=None):
    """The Hankel matrix with first column `c` and last row `r` (zeros below the
    anti-diagonal when None; r[0] ignored), as `scipy.linalg.hankel`. Differentiates,
    batches and compiles."""
    c = tnp.ravel(tnp.asarray(c))
    m = get_aval(c).shape[0]
    r = tnp.zeros_like(c) if r is None else tnp.ravel(tnp.asarray(r))
    n = get_aval(r).shape[0]
    dt = np.result_type(get_aval(c).dtype, get_aval(r).dtype)
    vals = tnp.concatenate([tnp.astype(c, dt), tnp.astype(r[1:], dt)])
    idx = np.arange(m)[:, None] + np.arange(n)[None, :]
    return vals[idx]


def circulant(c):
    """The circulant matrix with first column `c`, as `scipy.linalg.circulant`.
    Differentiates, batches and compiles."""
    c = tnp.ravel(tnp.asarray(c))
    n = get_aval(c).shape[0]
    idx = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return c[idx]


def companion(a):
    """The companion matrix of the polynomial with coefficients `a` (highest first;
    a[0] ≠ 0), as `scipy.linalg.companion`: first row −a[1:]/a[0], ones below the
    diagonal. Differentiates, batches and compiles."""
    a = tnp.asarray(a)
    if get_aval(a).ndim != 1 or get_aval(a).shape[0] < 2:
        raise ValueError("companion: a must be 1-D with at least two coefficients, got "
                         f"shape {get_aval(a).shape}")
    if get_aval(a).dtype not in (np.float32, np.float64):
        a = tnp.astype(a, np.float64)
    n = get_aval(a).shape[0] - 1
    first = -a[1:] / a[0]
    sub = np.eye(n, k=-1, dtype=get_aval(a).dtype)
    return tnp.concatenate([first[None, :], tnp.asarray(sub[1:])], axis=0)


def convolution_matrix(a, n, mode="full"):
    """The matrix A with A @ v == convolve(a, v, mode) for v of length `n`, as
    `scipy.linalg.convolution_matrix` (modes 'full', 'same', 'valid'). Differentiates in a,
    batches and compiles."""
    a = tnp.ravel(tnp.asarray(a))
    m = get_aval(a).shape[0]
    if m == 0:
        raise ValueError("convolution_matrix: a must be non-empty")
    if n <= 0:
        raise ValueError(f"convolution_matrix: n must be positive, got {n}")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"convolution_matrix: mode must be 'full', 'same' or 'valid', got "
                         f"{mode!r}")
    full = m + n - 1
    # row i, column j holds a[i − j] (0 outside)
    k = np.arange(full)[:, None] - np.arange(n)[None, :]
    valid = (k >= 0) & (k < m)
    A = tnp.where(valid, a[np.clip(k, 0, m - 1)], 0)
    if mode == "full":
        return A
    if mode == "same":
        length = max(m, n)
    else:
        length = max(m, n) - min(m, n) + 1
    start = (full - length) // 2
    return A[start:start + length]


def leslie(f, s):
    """The Leslie matrix from fecundities `f` (length n) and survival rates `s` (length
    n − 1), as `scipy.linalg.leslie`. Differentiates, batches and compiles."""
    f, s = tnp.asarray(f), tnp.asarray(s)
    n = get_aval(f).shape[-1]
    if get_aval(s).shape[-1] != n - 1:
        raise ValueError(f"leslie: s must have length len(f) - 1 = {n - 1}, got "
                         f"{get_aval(s).shape[-1]}")
    dt = np.result_type(get_aval(f).dtype, get_aval(s).dtype)
    sub = tnp.concatenate([tnp.diag(tnp.astype(s, dt)), tnp.zeros((n - 1, 1), dt)], axis=1)
    return tnp.concatenate([tnp.astype(f, dt)[None, :], sub], axis=0)


def fiedler(a):
    """The symmetric Fiedler matrix |a[i] − a[j]|, as `scipy.linalg.fiedler`.
    Differentiates (away from ties), batches and compiles."""
    a = tnp.asarray(a)
    return tnp.abs(a[..., :, None] - a[..., None, :])


def fiedler_companion(a):
    """The Fiedler companion matrix of the polynomial with coefficients `a` (highest
    first), as `scipy.linalg.fiedler_companion`: pentadiagonal, with the same eigenvalues
    as `companion(a)`. Differentiates, batches and compiles."""
    a = tnp.asarray(a)
    if get_aval(a).dtype not in (np.float32, np.float64):
        a = tnp.astype(a, np.float64)
    if get_aval(a).ndim != 1:
        raise ValueError(f"fiedler_companion: a must be 1-D, got shape {get_aval(a).shape}")
    size = get_aval(a).shape[0]
    if size <= 2:
        if size == 2:
            return tnp.reshape(-a[1] / a[0], (1, 1))
        return tnp.zeros((0,), get_aval(a).dtype)       # SciPy's empty result
    c = -a[1:] / a[0]
    n = size - 1
    # SciPy's layout (0-based, c = −a[1:]/a[0]): c[0] at (0, 0), odd k at (k − 1, k), even
    # k ≥ 2 at (k, k − 1); ones at (1, 0), (r, r − 2) for odd r ≥ 3, (r, r + 2) for even r
    pos = [(0, 0)] + [(k - 1, k) if k % 2 else (k, k - 1) for k in range(1, n)]
    # a gather: entry (i, j) takes vals[src[i, j]], the extra last value being zero
    src = np.full((n, n), n)
    for k, (i, j) in enumerate(pos):
        src[i, j] = k
    ones = np.zeros((n, n), bool)
    ones[1, 0] = True
    for r in range(2, n):
        if r % 2:
            ones[r, r - 2] = True
        elif r + 2 < n:
            ones[r, r + 2] = True
    if n > 2:
        ones[0, 2] = True
    vals = tnp.concatenate([c, tnp.zeros((1,), get_aval(a).dtype)])
    return tnp.where(ones, 1.0, vals[src])


def dft(n, scale=None):
    """The n×n discrete Fourier transform matrix (complex128), as `scipy.linalg.dft`
    (`scale` None, 'sqrtn' or 'n'). A constant (static n)."""
    if scale not in (None, "sqrtn", "n"):
        raise ValueError(f"dft: scale must be None, 'sqrtn' or 'n', got {scale!r}")
    k = np.arange(n)
    m = np.exp(-2j * np.pi * np.outer(k, k) / n)
    if scale == "sqrtn":
        m = m / math.sqrt(n)
    elif scale == "n":
        m = m / n
    return tnp.asarray(m)


def hadamard(n, dtype=int):
    """The n×n Hadamard matrix (n a power of 2) by Sylvester's construction, as
    `scipy.linalg.hadamard`. A constant (static n)."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"hadamard: n must be a positive power of 2, got {n}")
    h = np.array([[1]], dtype=dtype)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return tnp.asarray(h)


def hilbert(n):
    """The n×n Hilbert matrix 1/(i + j + 1), as `jax.scipy.linalg.hilbert`. A constant
    (static n)."""
    i = np.arange(n)
    return tnp.asarray(1.0 / (i[:, None] + i[None, :] + 1))


def invhilbert(n, exact=False):
    """The inverse of the n×n Hilbert matrix from its closed form with exact integers, as
    `scipy.linalg.invhilbert` (float64; `exact=True` would return Python integers and is
    not supported). A constant (static n)."""
    if exact:
        raise NotImplementedError("invhilbert(exact=True) is not supported")
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            s = i + j
            v = ((-1) ** s * (s + 1) * math.comb(n + i, n - j - 1) * math.comb(n + j, n - i - 1)
                 * math.comb(s, i) ** 2)
            out[i, j] = float(v)
    return tnp.asarray(out)


def helmert(n, full=False):
    """The Helmert matrix of order n (the (n−1)×n contrast rows, or n×n with the leading
    constant row when `full`), as `scipy.linalg.helmert`. A constant (static n)."""
    h = np.tril(np.ones((n, n)), -1) - np.diag(np.arange(n))
    d = np.arange(n) * np.arange(1, n + 1)
    h[0] = 1
    d[0] = n
    h = h / np.sqrt(d)[:, None]
    return tnp.asarray(h if full else h[1:])


def pascal(n, kind="symmetric", exact=True):
    """The n×n Pascal matrix ('symmetric', 'lower' or 'upper'), as `scipy.linalg.pascal`
    (computed with exact integers; returned as int64 when it fits, else float64, as
    SciPy's exact=True up to n = 34). A constant (static n)."""
    if kind not in ("symmetric", "lower", "upper"):
        raise ValueError(f"pascal: kind must be 'symmetric', 'lower' or 'upper', got "
                         f"{kind!r}")
    if kind == "lower":
        m = [[math.comb(i, j) for j in range(n)] for i in range(n)]
    elif kind == "upper":
        m = [[math.comb(j, i) for j in range(n)] for i in range(n)]
    else:
        m = [[math.comb(i + j, i) for j in range(n)] for i in range(n)]
    big = n and max(max(row) for row in m) >= 2 ** 63
    dt = np.float64 if (big or not exact) else np.int64
    return tnp.asarray(np.array(m, dtype=dt).reshape(n, n))


def invpascal(n, kind="symmetric", exact=True):
    """The inverse of `pascal(n, kind)` from its closed form with exact integers, as
    `scipy.linalg.invpascal`. A constant (static n)."""
    if kind not in ("symmetric", "lower", "upper"):
        raise ValueError(f"invpascal: kind must be 'symmetric', 'lower' or 'upper', got "
                         f"{kind!r}")
    low = [[(-1) ** (i + j) * math.comb(i, j) for j in range(n)] for i in range(n)]
    if kind == "lower":
        m = low
    elif kind == "upper":
        m = [list(r) for r in zip(*low)]
    else:
        # (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹
        m = [[sum(low[k][i] * low[k][j] for k in range(n)) for j in range(n)]
             for i in range(n)]
    big = n and max(abs(v) for row in m for v in row) >= 2 ** 63
    dt = np.float64 if (big or not exact) else np.int64
    return tnp.asarray(np.array(m, dtype=dt).reshape(n, n))
