"""More of `scipy.special` (part of `transforms.scipy.special`): log-gamma and its sign,
Pochhammer symbols and binomial coefficients, the Hurwitz zeta function, the scaled
complementary error function, Box-Cox transforms, Bernoulli numbers and Dawson's integral.
Compositions of `lax`/`tnp` operations: they differentiate, batch and compile."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval
from ._special_util import _f, _f2

__all__ = ["loggamma", "gammasgn", "poch", "comb", "zeta", "erfcx", "boxcox", "boxcox1p",
           "bernoulli", "dawsn"]

_SQRT_PI = math.sqrt(math.pi)


def loggamma(x):
    """log Γ(x) for real x > 0 (nan for x < 0, as SciPy and JAX on real input; complex
    input is not supported). Differentiates (ψ), batches and compiles."""
    x = _f(x)
    return tnp.where(tnp.less(x, 0), np.nan, lax.lgamma(x))


def gammasgn(x):
    """The sign of Γ(x): 1 for x > 0, (−1)^⌈−x⌉ between negative integers, nan at
    non-positive integers except 0 (+1 at +0, as SciPy). Piecewise constant (zero
    derivative); batches and compiles."""
    x = _f(x)
    fl = tnp.floor(x)
    odd = tnp.equal(tnp.remainder(fl, 2), 1)
    neg = tnp.where(odd, -1.0, 1.0)
    out = tnp.where(tnp.greater(x, 0), 1.0, neg)
    pole = tnp.logical_and(tnp.less(x, 0), tnp.equal(x, fl))
    out = tnp.where(tnp.equal(x, 0), 1.0, out)
    return tnp.astype(tnp.where(tnp.logical_or(pole, tnp.isnan(x)), np.nan, out),
                      get_aval(x).dtype)


def poch(z, m):
    """The rising factorial (z)ₘ = Γ(z + m)/Γ(z), as `jax.scipy.special.poch`, via
    log-gammas with their signs (exact integers lose the last bits to exp/log).
    Differentiates in z and m, batches and compiles."""
    z, m = _f2(z, m)
    val = tnp.exp(lax.lgamma(z + m) - lax.lgamma(z)) * gammasgn(z + m) * gammasgn(z)
    return tnp.where(tnp.equal(m, 0), 1.0, val)


def comb(N, k, *, exact=False, repetition=False):
    """The binomial coefficient N choose k as a float (0 when k > N, k < 0 or N < 0), as
    `scipy.special.comb`; `repetition` counts multisets (N + k − 1 choose k). `exact=True`
    is not supported (it returns Python integers). Differentiates through log-gammas,
    batches and compiles."""
    if exact:
        raise NotImplementedError("comb(exact=True) is not supported (it needs Python "
                                  "integers)")
    N, k = _f2(N, k)
    if repetition:
        N = N + k - 1
    ok = tnp.logical_and(tnp.logical_and(tnp.greater_equal(k, 0), tnp.greater_equal(N, k)),
                         tnp.greater_equal(N, 0))
    Ns, ks = tnp.where(ok, N, 1.0), tnp.where(ok, k, 0.0)
    val = tnp.exp(lax.lgamma(Ns + 1) - lax.lgamma(ks + 1) - lax.lgamma(Ns - ks + 1))
    # integer arguments give integers: round away the exp/log error
    both_int = tnp.logical_and(tnp.equal(Ns, tnp.floor(Ns)), tnp.equal(ks, tnp.floor(ks)))
    val = tnp.where(both_int, val + lax.stop_gradient(tnp.round(val) - val), val)
    return tnp.where(ok, val, 0.0)


def _bernoulli_fractions(n):
    """Exact Bernoulli numbers B₀..Bₙ (B₁ = −1/2) by the Akiyama-Tanigawa algorithm."""
    out = []
    a = [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        out.append(a[0])
    if n >= 1:
        out[1] = -out[1]        # the algorithm gives B₁ = +1/2
    return out


# B₂ⱼ/(2j)! for the Euler-Maclaurin tail of zeta (j = 1..12)
_B = _bernoulli_fractions(26)
_ZETA_TAIL = [float(_B[2 * j] / math.factorial(2 * j)) for j in range(1, 13)]
_ZETA_N = 9


def zeta(x, q=None):
    """The Hurwitz zeta function ζ(x, q) = Σₖ (k + q)^{−x} (Riemann's when q is None), as
    `jax.scipy.special.zeta`, by Euler-Maclaurin summation (9 terms and 12 Bernoulli
    corrections: float64 accuracy). Defined for x > 1 (inf at x = 1) and q > 0; nan
    elsewhere, including Riemann's continuation to x < 1 that SciPy gives for q=None.
    Differentiates in x and q, batches and compiles."""
    if q is None:
        q = 1.0
    x, q = _f2(x, q)
    ok = tnp.logical_and(tnp.greater(x, 1), tnp.greater(q, 0))
    xs, qs = tnp.where(ok, x, 2.0), tnp.where(ok, q, 1.0)
    total = None
    for k in range(_ZETA_N):
        t = tnp.exp(-xs * tnp.log(qs + k))
        total = t if total is None else total + t
    a = qs + _ZETA_N
    loga = tnp.log(a)
    a_mx = tnp.exp(-xs * loga)                     # a^{−x}
    total = total + a * a_mx / (xs - 1) + 0.5 * a_mx
    # Σⱼ B₂ⱼ/(2j)! · x(x+1)…(x+2j−2) · a^{−x−2j+1}
    fac = xs * a_mx / a
    for j, c in enumerate(_ZETA_TAIL):
        total = total + c * fac
        fac = fac * (xs + 2 * j + 1) * (xs + 2 * j + 2) / (a * a)
    total = tnp.where(tnp.equal(x, 1), np.inf, total)
    return tnp.where(tnp.logical_or(ok, tnp.equal(x, 1)), total, np.nan)


def _erfcx_cf(x):
    """erfcx for x ≥ 4 by the continued fraction 1/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/…)))."""
    f = x
    for k in range(60, 0, -1):
        f = x + (k / 2) / f
    return 1 / (_SQRT_PI * f)


def erfcx(x):
    """The scaled complementary error function e^{x²} erfc(x), as
    `jax.scipy.special.erfcx`: directly below 4, a 60-term continued fraction above (no
    overflow for large x), and 2e^{x²} − erfcx(−x) for x < 0 (inf below about −26.6).
    Differentiates (d/dx = 2x erfcx(x) − 2/√π), batches and compiles."""
    x = _f(x)
    ax = tnp.abs(x)
    small = tnp.less(ax, 4.0)
    axs = tnp.where(small, ax, 0.0)
    direct = tnp.exp(axs * axs) * lax.erfc(axs)
    cf = _erfcx_cf(tnp.where(small, 4.0, ax))
    pos = tnp.where(small, direct, cf)
    xn = tnp.minimum(x, 0.0)
    # for x < 0 the e^{x²} term dominates; clip to keep it finite where it would overflow
    return tnp.where(tnp.less(x, 0), 2 * tnp.exp(xn * xn) - pos, pos)


def boxcox(x, lmbda):
    """The Box-Cox transform (x^λ − 1)/λ (log x at λ = 0), as `jax.scipy.special.boxcox`,
    via expm1 for accuracy at small λ. Differentiates, batches and compiles."""
    x, lmbda = _f2(x, lmbda)
    zero = tnp.equal(lmbda, 0)
    lsafe = tnp.where(zero, 1.0, lmbda)
    return tnp.where(zero, tnp.log(x), tnp.expm1(lsafe * tnp.log(x)) / lsafe)


def boxcox1p(x, lmbda):
    """The Box-Cox transform of 1 + x ((1+x)^λ − 1)/λ (log1p(x) at λ = 0), as
    `jax.scipy.special.boxcox1p`. Differentiates, batches and compiles."""
    x, lmbda = _f2(x, lmbda)
    zero = tnp.equal(lmbda, 0)
    lsafe = tnp.where(zero, 1.0, lmbda)
    return tnp.where(zero, tnp.log1p(x), tnp.expm1(lsafe * tnp.log1p(x)) / lsafe)


def bernoulli(n):
    """The Bernoulli numbers B₀…Bₙ as a float64 array (B₁ = −1/2), as
    `jax.scipy.special.bernoulli`; `n` is a static non-negative integer (computed exactly
    with rational arithmetic, then rounded)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"bernoulli: n must be a non-negative integer, got {n!r}")
    return np.array([float(b) for b in _bernoulli_fractions(int(n))])


def dawsn(x):
    """Dawson's integral F(x) = e^{−x²} ∫₀ˣ e^{t²} dt, as `jax.scipy.special.dawsn`: the
    Taylor series Σ (−2)ⁿ x^{2n+1}/(1·3·…·(2n+1)) for |x| < 0.2 and Rybicki's exponentially
    convergent sum (step h = 0.25, 14 terms: float64 accuracy) above. Differentiates,
    batches and compiles."""
    x = _f(x)
    ax = tnp.abs(x)
    small = tnp.less(ax, 0.2)
    xs = tnp.where(small, x, 0.0)
    x2 = xs * xs
    term, series = xs, xs
    for n in range(1, 12):
        term = term * (-2 * x2) / (2 * n + 1)
        series = series + term
    # Rybicki (Numerical Recipes §6.10): around the nearest even multiple n₀h of h,
    # F(x) ≈ π^{−1/2} Σ_{n odd} e^{−(x' − nh)²}/n with x' = x − n₀h
    h = 0.25
    xl = tnp.where(small, 1.0, ax)
    n0 = 2 * tnp.round(0.5 * xl / h)
    xp = xl - n0 * h
    e1 = tnp.exp(2 * xp * h)
    e2 = e1 * e1
    d1 = n0 + 1
    d2 = d1 - 2
    total = tnp.zeros_like(xl)
    for i in range(14):
        c = math.exp(-((2 * i + 1) * h) ** 2)
        total = total + c * (e1 / d1 + 1 / (d2 * e1))
        d1 = d1 + 2
        d2 = d2 - 2
        e1 = e1 * e2
    big = tnp.sign(x) * tnp.exp(-xp * xp) * total / _SQRT_PI
    return tnp.where(small, series, big)
