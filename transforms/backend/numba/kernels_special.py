"""Scalar float64 kernels of the special functions Numba's `math` lacks (digamma, polygamma,
erf_inv, bessel_i0e, bessel_i1e), derived here from their series:

* digamma: ψ(x + 1) = ψ(x) + 1/x moves x above 6, then the asymptotic series
  ψ(x) ≈ ln x − 1/(2x) − Σ B₂ₖ/(2k x²ᵏ); reflection ψ(1 − x) − ψ(x) = π cot(πx) for x < 0.
* polygamma(n, x) = (−1)ⁿ⁺¹ n! ζ(n + 1, x): the Hurwitz zeta summed directly for N terms
  and the Euler–Maclaurin tail after them.
* erf_inv: a rational first guess refined by Newton steps on math.erf (quadratic
  convergence; three steps reach float64 precision).
* i0e, i1e: the power series of I₀, I₁ times e^{−|x|} for |x| ≤ 30, the large-argument
  asymptotic series above.
"""
from __future__ import annotations

import math

from .cache import njit as _cached_njit

# Bernoulli numbers B2, B4, ..., B20
_B2K = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6,
        -3617.0 / 510, 43867.0 / 798, -174611.0 / 330)

# cached through the backend's own cache directory and fallbacks, as kernels.py's
_jit = _cached_njit(cache=True, nogil=True, error_model="numpy")


@_jit
def digamma_f64(x):
    if x != x:
        return x
    if x <= 0.0 and x == math.floor(x):
        return math.nan                      # poles (SciPy: nan at non-positive integers)
    acc = 0.0
    if x < 0.0:
        # ψ(x) = ψ(1 − x) − π cot(πx)
        acc = -math.pi / math.tan(math.pi * x)
        x = 1.0 - x
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = 0.0
    p = inv2
    for k in range(len(_B2K)):
        series += _B2K[k] / (2 * (k + 1)) * p
        p *= inv2
    return acc + math.log(x) - 0.5 / x - series


@_jit
def polygamma_f64(n, x):
    if x != x:
        return x
    if x <= 0.0 and x == math.floor(x):
        return math.nan
    if x < 0.0:
        return math.nan                      # reflection for n >= 1 not implemented here
    s = n + 1.0
    # ζ(s, x) = Σ_{k<N} (x + k)^{-s} + tail at a = x + N
    N = 12
    total = 0.0
    for k in range(N):
        total += (x + k) ** (-s)
    a = x + N
    tail = a ** (1.0 - s) / (s - 1.0) + 0.5 * a ** (-s)
    # Σ B₂ⱼ/(2j)! · s(s+1)…(s+2j−2) · a^{−s−2j+1}
    rising = s
    fact = 2.0
    apow = a ** (-s - 1.0)
    for j in range(1, len(_B2K) + 1):
        tail += _B2K[j - 1] / fact * rising * apow
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        fact *= (2 * j + 1) * (2 * j + 2)
        apow /= a * a
    nfact = math.gamma(n + 1.0)
    sgn = 1.0 if n % 2 == 1 else -1.0
    return sgn * nfact * (total + tail)


@_jit
def erf_inv_f64(x):
    if x != x or x < -1.0 or x > 1.0:
        return math.nan
    if x == 1.0:
        return math.inf
    if x == -1.0:
        return -math.inf
    # first guess: y with erf(y) ~ x from the logarithmic approximation of the tails
    a = 0.147
    ln = math.log(1.0 - x * x)
    t = 2.0 / (math.pi * a) + 0.5 * ln
    y = math.copysign(math.sqrt(math.sqrt(t * t - ln / a) - t), x)
    # Newton on erf(y) - x (derivative 2/√π e^{-y²}); near |x| = 1 use erfc for accuracy
    for _ in range(4):
        if abs(x) < 0.9:
            err = math.erf(y) - x
        else:
            err = math.copysign(1.0, x) * ((1.0 - abs(x)) - math.erfc(abs(y)))
        y -= err / (2.0 / math.sqrt(math.pi) * math.exp(-y * y))
    return y


@_jit
def _bessel_ie(order, x):
    ax = abs(x)
    if ax != ax:
        return ax
    if ax == 0.0:
        return 1.0 if order == 0 else 0.0
    if ax <= 30.0:
        # I_ν(x) = Σ (x/2)^{2k+ν} / (k! (k+ν)!)
        half = ax / 2.0
        term = 1.0 if order == 0 else half
        total = term
        q = half * half
        k = 0
        while True:
            k += 1
            term *= q / (k * (k + order))
            total += term
            if term <= 1e-17 * total:
                break
        out = total * math.exp(-ax)
    else:
        # e^{-x} I_ν(x) ~ 1/√(2πx) Σ_k (-1)^k a_k(ν) / x^k, a_k = Π (4ν² − (2j−1)²) / (k! 8^k)
        mu = 4.0 * order * order
        term = 1.0
        total = 1.0
        for k in range(1, 20):
            term *= -(mu - (2 * k - 1) ** 2) / (k * 8.0 * ax)
            total += term
            if abs(term) < 1e-17:
                break
        out = total / math.sqrt(2.0 * math.pi * ax)
    return -out if (order == 1 and x < 0) else out


@_jit
def bessel_i0e_f64(x):
    return _bessel_ie(0, x)


@_jit
def bessel_i1e_f64(x):
    return _bessel_ie(1, x)
