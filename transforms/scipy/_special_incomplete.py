"""Incomplete gamma and beta functions and the exponential integrals (part of
`transforms.scipy.special`): elementwise series and continued fractions iterated by a
`lax.while_loop` until every element has converged, so they run eagerly, under `jit` and
`vmap`. Derivatives come from `custom_jvp` rules with the closed-form derivatives."""
from __future__ import annotations

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import Tracer, get_aval
from ..custom_derivatives import custom_jvp
from ..errors import NonDifferentiableError
from ._special_util import _f, _f2

_EULER = 0.5772156649015329
_MAXITER = 2000


def _eps(x):
    return float(np.finfo(get_aval(x).dtype).eps)


def _tiny(x):
    return float(np.finfo(get_aval(x).dtype).tiny) * 1e4


def _iterate(step, done, init, maxiter=_MAXITER):
    """Run `step(i, state)` until `done(state)` holds for every element (or `maxiter`)."""
    def cond(c):
        return tnp.logical_and(tnp.less(c[0], maxiter), tnp.logical_not(tnp.all(done(c[1]))))

    def body(c):
        return c[0] + 1, step(c[0], c[1])

    return lax.while_loop(cond, body, (tnp.asarray(1, np.int32), init))[1]


def _require_zero_tangent(t, fname, argname):
    """JAX defines no derivative with respect to this argument: refuse a live tangent
    (zero tangents of arguments not being differentiated arrive as concrete zeros)."""
    if isinstance(t, Tracer) or np.any(np.asarray(t) != 0):
        raise NonDifferentiableError(f"{fname}: the derivative with respect to {argname} is "
                                     "not implemented (as in JAX)")


# -- regularised incomplete gamma -----------------------------------------------------------

def _igamma_series(a, x):
    """P(a, x) by its power series (for x < a + 1): e^{-x} x^a/Γ(a+1) Σ xⁿ/((a+1)…(a+n))."""
    eps = _eps(x)

    def step(i, s):
        term, total = s
        term = term * x / (a + tnp.astype(i, get_aval(a).dtype))
        return term, total + term

    one = tnp.ones_like(x)
    _, total = _iterate(step, lambda s: tnp.less_equal(tnp.abs(s[0]), eps * tnp.abs(s[1])),
                        (one, one))
    return tnp.exp(a * tnp.log(x) - x - lax.lgamma(a + 1)) * total


def _igammac_cf(a, x):
    """Q(a, x) by its continued fraction (for x ≥ a + 1), modified Lentz."""
    eps, tiny = _eps(x), _tiny(x)
    dt = get_aval(x).dtype
    b = x + 1 - a
    c = tnp.full_like(x, 1 / tiny)
    d = 1 / b
    h = d

    def step(i, s):
        b, c, d, h, delta = s
        fi = tnp.astype(i - 1, dt) + 1
        an = -fi * (fi - a)
        b = b + 2
        d = an * d + b
        d = tnp.where(tnp.less(tnp.abs(d), tiny), tiny, d)
        c = b + an / c
        c = tnp.where(tnp.less(tnp.abs(c), tiny), tiny, c)
        d = 1 / d
        delta = d * c
        return b, c, d, h * delta, delta

    s = _iterate(step, lambda s: tnp.less_equal(tnp.abs(s[4] - 1), eps),
                 (b, c, d, h, tnp.full_like(x, 2.0)))
    return tnp.exp(a * tnp.log(x) - x - lax.lgamma(a)) * s[3]


def _igamma_pair(a, x):
    """(P, Q), each from the branch that is accurate for it."""
    use_series = tnp.less(x, a + 1)
    xs = tnp.where(use_series, x, 0.5 * (a + 1))
    ac = tnp.where(use_series, 1.0, a)
    xc = tnp.where(use_series, 4.0, x)
    p = _igamma_series(a, tnp.where(tnp.greater(xs, 0), xs, 1.0))
    q = _igammac_cf(ac, xc)
    P = tnp.where(use_series, p, 1 - q)
    Q = tnp.where(use_series, 1 - p, q)
    bad = tnp.logical_or(tnp.logical_or(tnp.less(x, 0), tnp.less_equal(a, 0)),
                         tnp.logical_or(tnp.isnan(a), tnp.isnan(x)))
    zero_x = tnp.equal(x, 0)
    inf_x = tnp.isinf(x)
    P = tnp.where(zero_x, 0.0, tnp.where(inf_x, 1.0, P))
    Q = tnp.where(zero_x, 1.0, tnp.where(inf_x, 0.0, Q))
    return tnp.where(bad, np.nan, P), tnp.where(bad, np.nan, Q)


def _dP_da(a, x):
    """∂P(a, x)/∂a = Σₙ e^{-x} x^{a+n}/Γ(a+n+1) (log x − ψ(a+n+1)) (all terms of P's
    series are positive, so the sum is accurate; it runs past the Poisson-like peak at
    n ≈ x)."""
    dt = get_aval(x).dtype
    xs = tnp.where(tnp.greater(x, 0), x, 1.0)
    logx = tnp.log(xs)

    def term(n):
        an = a + n
        return tnp.exp(an * logx - xs - lax.lgamma(an + 1)), logx - lax.digamma(an + 1)

    t0, w0 = term(0.0)

    def step(i, s):
        n = tnp.astype(i - 1, dt)
        t, w = term(n)
        return t, s[1] + t * w, tnp.zeros_like(xs) + n

    _, total, _ = _iterate(step, lambda s: tnp.logical_and(tnp.greater(s[2], xs),
                                                           tnp.less(s[0], 1e-17)),
                           (t0, t0 * w0, tnp.zeros_like(xs)), maxiter=100000)
    # the first step recomputes n = 0: subtract it once
    return tnp.where(tnp.greater(x, 0), total - t0 * w0, 0.0)


def _dP_dx(a, x):
    xs = tnp.where(tnp.greater(x, 0), x, 1.0)
    val = tnp.exp((a - 1) * tnp.log(xs) - xs - lax.lgamma(a))
    return tnp.where(tnp.greater(x, 0), val, 0.0)


@custom_jvp
def _gammainc(a, x):
    return _igamma_pair(a, x)[0]


@_gammainc.defjvp
def _gammainc_jvp(primals, tangents):
    a, x = primals
    ta, tx = tangents
    return _gammainc(a, x), _dP_dx(a, x) * tx + _dP_da(a, x) * ta


@custom_jvp
def _gammaincc(a, x):
    return _igamma_pair(a, x)[1]


@_gammaincc.defjvp
def _gammaincc_jvp(primals, tangents):
    a, x = primals
    ta, tx = tangents
    return _gammaincc(a, x), -(_dP_dx(a, x) * tx + _dP_da(a, x) * ta)


def gammainc(a, x):
    """The regularised lower incomplete gamma function P(a, x) = γ(a, x)/Γ(a), as
    `jax.scipy.special.gammainc` (nan for a ≤ 0 or x < 0). Series for x < a + 1, continued
    fraction otherwise, each a `while_loop` to float precision. Differentiable in x and a
    (∂/∂a by a positive series), batches and compiles."""
    a, x = _f2(a, x)
    return _gammainc(a, x)


def gammaincc(a, x):
    """The regularised upper incomplete gamma function Q(a, x) = 1 − P(a, x), accurate in
    its own tail, as `jax.scipy.special.gammaincc`. Differentiable in x and a, batches and
    compiles."""
    a, x = _f2(a, x)
    return _gammaincc(a, x)


# -- regularised incomplete beta ------------------------------------------------------------

def _betacf(a, b, x):
    """The continued fraction of I_x(a, b) (modified Lentz), accurate for x < (a+1)/(a+b+2)."""
    eps, tiny = _eps(x), _tiny(x)
    dt = get_aval(x).dtype
    qab, qap, qam = a + b, a + 1, a - 1
    c = tnp.ones_like(x)
    d = 1 - qab * x / qap
    d = 1 / tnp.where(tnp.less(tnp.abs(d), tiny), tiny, d)

    def fix(v):
        return tnp.where(tnp.less(tnp.abs(v), tiny), tiny, v)

    def step(i, s):
        c, d, h, delta = s
        m = tnp.astype(i - 1, dt) + 1
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 / fix(1 + aa * d)
        c = fix(1 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 / fix(1 + aa * d)
        c = fix(1 + aa / c)
        delta = d * c
        return c, d, h * delta, delta

    s = _iterate(step, lambda s: tnp.less_equal(tnp.abs(s[3] - 1), eps),
                 (c, d, d, tnp.full_like(x, 2.0)))
    return s[2]


def _betainc_impl(a, b, x):
    flip = tnp.greater(x, (a + 1) / (a + b + 2))
    aa, bb = tnp.where(flip, b, a), tnp.where(flip, a, b)
    xx = tnp.where(flip, 1 - x, x)
    inside = tnp.logical_and(tnp.greater(x, 0), tnp.less(x, 1))
    xx = tnp.where(inside, xx, 0.25)
    lbeta = lax.lgamma(aa) + lax.lgamma(bb) - lax.lgamma(aa + bb)
    front = tnp.exp(aa * tnp.log(xx) + bb * tnp.log1p(-xx) - lbeta) / aa
    val = front * _betacf(aa, bb, xx)
    val = tnp.where(flip, 1 - val, val)
    val = tnp.where(tnp.equal(x, 0), 0.0, tnp.where(tnp.equal(x, 1), 1.0, val))
    bad = tnp.logical_or(tnp.logical_or(tnp.less_equal(a, 0), tnp.less_equal(b, 0)),
                         tnp.logical_or(tnp.less(x, 0), tnp.greater(x, 1)))
    return tnp.where(bad, np.nan, val)


@custom_jvp
def _betainc(a, b, x):
    return _betainc_impl(a, b, x)


@_betainc.defjvp
def _betainc_jvp(primals, tangents):
    a, b, x = primals
    ta, tb, tx = tangents
    _require_zero_tangent(ta, "betainc", "a")
    _require_zero_tangent(tb, "betainc", "b")
    inside = tnp.logical_and(tnp.greater(x, 0), tnp.less(x, 1))
    xs = tnp.where(inside, x, 0.5)
    lbeta = lax.lgamma(a) + lax.lgamma(b) - lax.lgamma(a + b)
    dx = tnp.exp((a - 1) * tnp.log(xs) + (b - 1) * tnp.log1p(-xs) - lbeta)
    return _betainc(a, b, x), tnp.where(inside, dx, 0.0) * tx


def betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b), as `jax.scipy.special.betainc`
    (nan outside a, b > 0, 0 ≤ x ≤ 1). A continued fraction (on the symmetric side when
    x > (a+1)/(a+b+2)) iterated to float precision. Differentiable in x only (as JAX;
    differentiating in a or b raises), batches and compiles."""
    a, x = _f2(a, x)
    b, x = _f2(b, x)
    a, b, x = tnp.broadcast_arrays(tnp.astype(a, get_aval(x).dtype), b, x)
    return _betainc(a, b, x)


# -- exponential integrals ------------------------------------------------------------------

def _e1_positive(x):
    """E₁(x) for x > 0: the series up to 2, the continued fraction (60 terms) above."""
    small = tnp.less_equal(x, 2.0)
    xs = tnp.where(small, x, 0.5)
    xl = tnp.where(small, 2.0, x)
    dt = get_aval(x).dtype

    # −γ − log x − Σ_{k≥1} (−x)^k/(k·k!)  (converges fast for x ≤ 2)
    def sstep(k, s):
        term, total = s
        kf = tnp.astype(k, dt)
        term = -term * xs / kf
        return term, total + term / kf

    _, tot = lax.fori_loop(1, 40, sstep, (tnp.ones_like(xs), tnp.zeros_like(xs)))
    series = -_EULER - tnp.log(xs) - tot

    # e^{−x} / (x + 1 − 1²/(x + 3 − 2²/(x + 5 − …))), evaluated from the tail
    K = 60

    def cstep(j, f):
        k = tnp.astype(K - 1 - j, dt)
        return xl + 2 * k + 1 - (k + 1) ** 2 / f

    f = lax.fori_loop(0, K, cstep, xl + 2 * K + 1)
    cf = tnp.exp(-xl) / f
    return tnp.where(small, series, cf)


def _ei_positive(x):
    """Ei(x) for x > 0: the positive series γ + log x + Σ xᵏ/(k·k!) up to 40, the
    asymptotic series e^x/x Σ k!/xᵏ beyond."""
    big = tnp.greater(x, 40.0)
    xs = tnp.where(big, 1.0, x)
    xb = tnp.where(big, x, 50.0)
    dt = get_aval(x).dtype

    def sstep(k, s):
        term, total = s
        kf = tnp.astype(k, dt)
        term = term * xs / kf
        return term, total + term / kf

    _, tot = lax.fori_loop(1, 160, sstep, (tnp.ones_like(xs), tnp.zeros_like(xs)))
    series = _EULER + tnp.log(xs) + tot

    def astep(k, s):
        term, total = s
        term = term * tnp.astype(k, dt) / xb
        return term, total + term

    _, atot = lax.fori_loop(1, 25, astep, (tnp.ones_like(xb), tnp.ones_like(xb)))
    asym = tnp.exp(xb) / xb * atot
    return tnp.where(big, asym, series)


def _exp1_impl(x):
    pos = tnp.greater(x, 0)
    val = _e1_positive(tnp.where(pos, x, 1.0))
    val = tnp.where(tnp.isinf(x), 0.0, val)
    # the inner where of two Python floats would be float64: cast back
    return tnp.astype(tnp.where(pos, val, tnp.where(tnp.equal(x, 0), np.inf, np.nan)),
                      get_aval(x).dtype)


def _expi_impl(x):
    pos = tnp.greater(x, 0)
    neg = tnp.less(x, 0)
    ep = _ei_positive(tnp.where(pos, x, 1.0))
    en = -_e1_positive(tnp.where(neg, -x, 1.0))
    val = tnp.where(pos, ep, tnp.where(neg, en, -np.inf))
    val = tnp.where(tnp.equal(x, -np.inf), 0.0, val)
    return tnp.astype(tnp.where(tnp.isnan(x), np.nan, val), get_aval(x).dtype)


@custom_jvp
def _exp1(x):
    return _exp1_impl(x)


@_exp1.defjvp
def _exp1_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _exp1(x), -tnp.exp(-x) / x * t


@custom_jvp
def _expi(x):
    return _expi_impl(x)


@_expi.defjvp
def _expi_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _expi(x), tnp.exp(x) / x * t


def exp1(x):
    """The exponential integral E₁(x) = ∫₁^∞ e^{−xt}/t dt for x > 0 (inf at 0, nan below),
    as `jax.scipy.special.exp1`. Differentiates (d/dx = −e^{−x}/x), batches and compiles."""
    return _exp1(_f(x))


def expi(x):
    """The exponential integral Ei(x) = −PV∫_{−x}^∞ e^{−t}/t dt (−E₁(−x) for x < 0), as
    `jax.scipy.special.expi`. Differentiates (d/dx = eˣ/x), batches and compiles."""
    return _expi(_f(x))


def expn(n, x):
    """The generalised exponential integral Eₙ(x) = ∫₁^∞ e^{−xt}/tⁿ dt for integer n ≥ 0,
    as `jax.scipy.special.expn`: E₀ = e^{−x}/x, else the power series for x ≤ 2 and the
    continued fraction (60 terms) above. Differentiable in x (d/dx Eₙ = −Eₙ₋₁), batches
    and compiles; nan for n < 0, non-integer n or x < 0."""
    n, x = _f2(n, x)
    return _expn(n, x)


def _expn_cf(n, x):
    # e^{−x} / (x + n − 1·n/(x + n + 2 − 2(n+1)/(x + n + 4 − …))), from the tail
    dt = get_aval(x).dtype
    K = 60

    def step(j, f):
        k = tnp.astype(K - 1 - j, dt)
        return x + n + 2 * k - (k + 1) * (n + k) / f

    f = lax.fori_loop(0, K, step, x + n + 2 * K)
    return tnp.exp(-x) / f


def _expn_series(n, x):
    # x ≤ 2: (−x)^{n−1}/(n−1)! (−log x + ψ(n)) − Σ_{k ≥ 0, k ≠ n−1} (−x)ᵏ/((k − n + 1) k!)
    dt = get_aval(x).dtype

    def step(k, s):
        term, total = s           # term = (−x)^k / k!
        kf = tnp.astype(k, dt)
        denom = kf - n + 1
        contrib = tnp.where(tnp.equal(denom, 0), 0.0,
                            term / tnp.where(tnp.equal(denom, 0), 1.0, denom))
        return -term * x / (kf + 1), total - contrib

    _, tot = lax.fori_loop(0, 45, step, (tnp.ones_like(x), tnp.zeros_like(x)))
    lead = tnp.exp((n - 1) * tnp.log(x) - lax.lgamma(n)) * \
        tnp.where(tnp.equal(tnp.remainder(n - 1, 2), 0), 1.0, -1.0)
    return tot + lead * (lax.digamma(n) - tnp.log(x))


def _expn_impl(n, x):
    xpos = tnp.where(tnp.greater(x, 0), x, 1.0)
    n1 = tnp.maximum(n, 1.0)
    small = tnp.less_equal(xpos, 2.0)
    val = tnp.where(small, _expn_series(n1, tnp.where(small, xpos, 0.5)),
                    _expn_cf(n1, tnp.where(small, 2.0, xpos)))
    val = tnp.where(tnp.equal(n, 0), tnp.exp(-xpos) / xpos, val)
    at0 = tnp.where(tnp.greater(n, 1), 1 / tnp.maximum(n - 1, 1.0), np.inf)
    val = tnp.where(tnp.equal(x, 0), at0, val)
    val = tnp.where(tnp.isinf(x), 0.0, val)
    bad = tnp.logical_or(tnp.logical_or(tnp.less(n, 0), tnp.less(x, 0)),
                         tnp.not_equal(n, tnp.floor(n)))
    return tnp.astype(tnp.where(bad, np.nan, val), get_aval(x).dtype)


@custom_jvp
def _expn(n, x):
    return _expn_impl(n, x)


@_expn.defjvp
def _expn_jvp(primals, tangents):
    n, x = primals
    tn, tx = tangents
    _require_zero_tangent(tn, "expn", "n")
    prev = tnp.where(tnp.equal(n, 0), 0.0, _expn(tnp.maximum(n - 1, 0.0), x))
    # E₋₁ is not covered: d/dx E₀ = −e^{−x}(x + 1)/x²
    xs = tnp.where(tnp.equal(x, 0), 1.0, x)
    d0 = -tnp.exp(-xs) * (xs + 1) / (xs * xs)
    return _expn(n, x), -tnp.where(tnp.equal(n, 0), -d0, prev) * tx


__all__ = ["gammainc", "gammaincc", "betainc", "exp1", "expi", "expn"]
