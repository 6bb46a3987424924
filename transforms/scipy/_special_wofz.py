"""The Faddeeva function w(z) = e^{−z²} erfc(−iz) (part of `transforms.scipy.special`), by
Weideman's rational approximation (SIAM J. Numer. Anal. 31, 1994): a degree-N polynomial
in (L + iz)/(L − iz) whose coefficients come from an FFT computed once with NumPy."""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval

__all__ = ["wofz"]

_N = 40


def _coefficients(n):
    m = 2 * n
    k = np.arange(-m + 1, m)
    L = math.sqrt(n / math.sqrt(2))
    theta = k * math.pi / m
    t = L * np.tan(theta / 2)
    f = np.exp(-t * t) * (L * L + t * t)
    f = np.concatenate([[0.0], f])
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / (2 * m)
    return L, a[1:n + 1][::-1].copy()


_L, _A = _coefficients(_N)


def _upper(z):
    """w(z) for Im z ≥ 0."""
    iz = z * 1j
    d = _L - iz
    Z = (_L + iz) / d
    p = tnp.zeros_like(Z)
    for c in _A:                       # Horner, highest degree first
        p = p * Z + float(c)          # a Python float keeps complex64 input complex64
    return 2 * p / (d * d) + (1 / math.sqrt(math.pi)) / d


def wofz(z):
    """The Faddeeva function w(z) = e^{−z²} erfc(−iz) of complex (or real) `z`, as
    `jax.scipy.special.wofz` (complex result): Weideman's 40-term rational approximation in
    the upper half plane (about 1e-13 relative accuracy there) and w(z) = 2e^{−z²} − w(−z)
    below it. Batches and compiles; differentiable as a composition (w' = −2z w +
    2i/√π)."""
    z = tnp.asarray(z)
    dt = get_aval(z).dtype
    if dt in (np.float32, np.complex64):
        cdt = np.complex64
    else:
        cdt = np.complex128
    if not np.issubdtype(dt, np.complexfloating):
        real = tnp.astype(z, np.float32 if cdt == np.complex64 else np.float64)
        z = lax.complex(real, tnp.zeros_like(real))
    z = tnp.astype(z, cdt)
    lower = tnp.less(tnp.imag(z), 0)
    zu = tnp.where(lower, -z, z)
    w = _upper(zu)
    return tnp.astype(tnp.where(lower, 2 * tnp.exp(-z * z) - w, w), cdt)
