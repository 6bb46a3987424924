"""The sine/cosine and Fresnel integrals of `scipy.special` (part of
`transforms.scipy.special`): power series for small arguments and continued fractions in
complex arithmetic (fixed length, evaluated from the tail with `fori_loop`) for large
ones, so they batch and compile; the composition differentiates in x."""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval
from ._special_util import _f

__all__ = ["sici", "fresnel"]

_EULER = 0.5772156649015329


def _complex(re, im):
    return lax.complex(re, im)


def sici(x):
    """`(Si(x), Ci(x))`: ∫₀ˣ sin t/t dt and γ + log|x| + ∫₀^{|x|} (cos t − 1)/t dt, as
    `scipy.special.sici` (Si odd, Ci even in x, as SciPy's real version; Ci(0) = −inf).
    Series up to |x| = 2, the continued fraction of E₁(i|x|) (120 terms) beyond.
    Differentiates, batches and compiles."""
    x = _f(x)
    ax = tnp.abs(x)
    dt = get_aval(x).dtype
    small = tnp.less_equal(ax, 2.0)
    xs = tnp.where(small, ax, 1.0)
    x2 = xs * xs
    si, ci = xs, tnp.zeros_like(xs)
    t_odd, t_even = xs, tnp.ones_like(xs)            # x^{2k+1}/(2k+1)!, x^{2k}/(2k)!
    for k in range(1, 20):
        t_even = -t_even * x2 / ((2 * k - 1) * (2 * k))
        t_odd = -t_odd * x2 / ((2 * k) * (2 * k + 1))
        ci = ci + t_even / (2 * k)
        si = si + t_odd / (2 * k + 1)
    ci = ci + _EULER + tnp.log(tnp.where(tnp.equal(xs, 0), 1.0, xs))    # 0 is set below
    # E₁(iy) = −Ci(y) + i(Si(y) − π/2) = e^{−iy}/(iy + 1 − 1²/(iy + 3 − 2²/(iy + 5 − …)))
    y = tnp.where(small, 4.0, ax)
    z = _complex(tnp.zeros_like(y), y)
    K = 120

    def step(j, f):
        k = tnp.astype(K - 1 - j, dt)
        return z + 2 * k + 1 - (k + 1) ** 2 / f

    f = lax.fori_loop(0, K, step, z + (2 * K + 1))
    e1 = tnp.exp(-z) / f
    si_big = tnp.imag(e1) + math.pi / 2
    ci_big = -tnp.real(e1)
    si = tnp.sign(x) * tnp.where(small, si, si_big)
    ci = tnp.where(small, ci, ci_big)
    ci = tnp.where(tnp.equal(x, 0), -np.inf, ci)
    return tnp.astype(si, dt), tnp.astype(ci, dt)


def fresnel(x):
    """`(S(x), C(x))` = (∫₀ˣ sin(πt²/2) dt, ∫₀ˣ cos(πt²/2) dt), as
    `scipy.special.fresnel` (both odd). Series up to |x| = 1.5, a 100-term continued
    fraction of the complementary error function beyond (relative error ~1e-12 at
    |x| ~ 1e4, where the phase πx²/2 is large). Differentiates, batches and compiles."""
    x = _f(x)
    ax = tnp.abs(x)
    dt = get_aval(x).dtype
    small = tnp.less_equal(ax, 1.5)
    xs = tnp.where(small, ax, 1.0)
    # C = Σ (−1)^k (π/2)^{2k} x^{4k+1}/((4k+1)(2k)!), S likewise with odd powers of π/2
    u = 0.5 * math.pi * xs * xs
    term = xs                                         # (π/2)^n x^{2n+1}/n! · (−1)^⌊n/2⌋
    c = tnp.zeros_like(xs)
    s = tnp.zeros_like(xs)
    for n in range(0, 40):
        if n % 2 == 0:
            c = c + term / (2 * n + 1)
        else:
            s = s + term / (2 * n + 1)
        sign = -1 if n % 2 == 1 else 1
        term = term * u / (n + 1) * sign
    # large |x|: (C + iS) = (1 + i)/2 · (1 − e^{iπx²/2} (x − ix) h), h the continued
    # fraction 1/(b₁ + a₁/(b₂ + …)) with b₁ = 1 − iπx², bₖ₊₁ = bₖ + 4, aₖ = −(2k−1)(2k)
    y = tnp.where(small, 2.0, ax)
    pix2 = math.pi * y * y
    K = 100

    def step(j, f):
        k = tnp.astype(K - 1 - j, dt)                # 0-based level
        b = _complex(1 + 4 * k, -pix2)
        a = -(2 * k + 1) * (2 * k + 2)
        return b + a / f

    f = lax.fori_loop(0, K, step, _complex(tnp.full_like(y, 1.0 + 4 * K), -pix2))
    h = 1 / f * _complex(y, -y)
    cs = _complex(tnp.full_like(y, 0.5), tnp.full_like(y, 0.5)) * \
        (1 - tnp.exp(_complex(tnp.zeros_like(y), 0.5 * pix2)) * h)
    c = tnp.sign(x) * tnp.where(small, c, tnp.real(cs))
    s = tnp.sign(x) * tnp.where(small, s, tnp.imag(cs))
    return tnp.astype(s, dt), tnp.astype(c, dt)
