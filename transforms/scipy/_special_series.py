"""Series-defined functions of `scipy.special` (part of `transforms.scipy.special`):
`spence`, `owens_t`, `hyp1f1`, `hyp2f1` and `bessel_jn`. Compositions of `tnp`/`lax`
operations (fixed-length sums, Gauss-Legendre quadrature, `while_loop` series), so they
batch and compile, and differentiate in x where noted."""
from __future__ import annotations

import math
import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval
from ..custom_derivatives import custom_jvp
from ._special_incomplete import _require_zero_tangent
from ._special_util import _f, _f2

__all__ = ["spence", "owens_t", "hyp1f1", "hyp2f1", "bessel_jn"]

_PI2_6 = math.pi ** 2 / 6


def _bernoulli_series_coeffs(n):
    """B_k/(k+1)! for k = 0..n (B₁ = −1/2), for Li₂(u) = Σ B_k w^{k+1}/(k+1)!, w = −log(1−u)."""
    from ._special_more import _bernoulli_fractions
    b = _bernoulli_fractions(n)
    return [float(bk / math.factorial(k + 1)) for k, bk in enumerate(b)]


_LI2_COEFFS = _bernoulli_series_coeffs(40)


def _li2_core(u):
    """Li₂(u) for u in [−1, 1/2] by the Bernoulli series in w = −log(1 − u) (|w| ≤ log 2)."""
    w = -tnp.log1p(-u)
    w2 = w * w
    # odd Bernoulli numbers past B₁ vanish: Σ = c0 w + c1 w² + Σ_k c_{2k} w^{2k+1}
    total = _LI2_COEFFS[0] * w + _LI2_COEFFS[1] * w2
    p = w
    for k in range(2, len(_LI2_COEFFS), 2):
        p = p * w2
        total = total + _LI2_COEFFS[k] * p
    return total


def _li2(u):
    """The dilogarithm Li₂(u) for real u ≤ 1, reduced to [−1, 1/2] by the reflection and
    inversion identities."""
    hi = tnp.greater(u, 0.5)
    lo = tnp.less(u, -1.0)
    mid = tnp.logical_not(tnp.logical_or(hi, lo))
    um = tnp.where(mid, u, 0.0)
    # u in (1/2, 1]: Li₂(u) = π²/6 − log u log(1 − u) − Li₂(1 − u)
    uh = tnp.where(hi, u, 0.75)
    one_m = 1 - uh
    log_term = tnp.where(tnp.equal(one_m, 0), 0.0,
                         tnp.log(uh) * tnp.log(tnp.where(tnp.equal(one_m, 0), 1.0, one_m)))
    vh = _PI2_6 - log_term - _li2_core(one_m)
    # u < −1: Li₂(u) = −π²/6 − ½ log²(−u) − Li₂(1/u)
    ul = tnp.where(lo, u, -2.0)
    vl = -_PI2_6 - 0.5 * tnp.log(-ul) ** 2 - _li2_core(1 / ul)
    return tnp.where(hi, vh, tnp.where(lo, vl, _li2_core(um)))


def spence(x):
    """Spence's function ∫₁ˣ log t/(1 − t) dt = Li₂(1 − x) for x ≥ 0 (nan below), as
    `jax.scipy.special.spence`. A fixed-length Bernoulli series after reduction: float64
    accuracy; differentiates, batches and compiles."""
    x = _f(x)
    return tnp.where(tnp.less(x, 0), np.nan, _li2(1 - tnp.maximum(x, 0.0)))


# 48-point Gauss-Legendre nodes and weights on [0, 1]
_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)
_GL_X = (_GL_X + 1) / 2
_GL_W = _GL_W / 2


def _owens_t_small_a(h, a):
    """T(h, a) = (1/2π) ∫₀ᵃ e^{−h²(1+x²)/2}/(1+x²) dx for 0 ≤ a ≤ 1 by quadrature."""
    x = a[..., None] * _GL_X.astype(get_aval(a).dtype)
    f = tnp.exp(-0.5 * (h * h)[..., None] * (1 + x * x)) / (1 + x * x)
    return a * tnp.sum(f * _GL_W.astype(get_aval(a).dtype), axis=-1) / (2 * math.pi)


def owens_t(h, a):
    """Owen's T function T(h, a), as `jax.scipy.special.owens_t`: even in h, odd in a;
    48-point Gauss-Legendre quadrature for |a| ≤ 1 and Owen's identity
    T(h, a) = ½Φ(h) + ½Φ(ah) − Φ(h)Φ(ah) − T(ah, 1/a) beyond. Differentiates, batches and
    compiles (absolute accuracy ~1e-16; relative accuracy degrades far in the tail)."""
    from .special import ndtr
    h, a = _f2(h, a)
    sgn = tnp.sign(a)
    h, a = tnp.abs(h), tnp.abs(a)
    small = tnp.less_equal(a, 1.0)
    a_s = tnp.where(small, a, 1.0)
    direct = _owens_t_small_a(h, a_s)
    a_b = tnp.where(small, 2.0, a)
    ah = a_b * h
    Ph, Pah = ndtr(h), ndtr(ah)
    inv = 0.5 * Ph + 0.5 * Pah - Ph * Pah - _owens_t_small_a(ah, 1 / a_b)
    return sgn * tnp.where(small, direct, inv)


def _series_loop(term_ratio, init_term, x_like, maxiter=5000):
    """Σₙ tₙ with t₀ = init_term and tₙ₊₁ = tₙ · term_ratio(n), summed until every term is
    below eps relative to the sum (a while_loop)."""
    eps = float(np.finfo(get_aval(x_like).dtype).eps)
    dt = get_aval(x_like).dtype

    def cond(c):
        n, t, s = c
        return tnp.logical_and(tnp.less(n, maxiter),
                               tnp.any(tnp.greater(tnp.abs(t), eps * tnp.abs(s))))

    def body(c):
        n, t, s = c
        t = t * term_ratio(tnp.astype(n, dt))
        return n + 1, t, s + t

    t0 = tnp.broadcast_to(tnp.astype(init_term, dt), get_aval(x_like).shape)
    return lax.while_loop(cond, body, (tnp.asarray(0, np.int32), t0, t0))[2]


def hyp1f1(a, b, x):
    """Kummer's confluent hypergeometric function ₁F₁(a; b; x), as
    `jax.scipy.special.hyp1f1`: the power series summed to float precision (a
    `while_loop`), with Kummer's transformation e^x ₁F₁(b − a; b; −x) for x < 0 so the
    terms do not alternate. Accurate for moderate |x| (up to a few hundred); batches and
    compiles; differentiates in x (d/dx = (a/b) ₁F₁(a+1; b+1; x))."""
    a, b = _f2(a, b)
    a, x = _f2(a, x)
    b, x = _f2(b, x)
    a, b, x = tnp.broadcast_arrays(tnp.astype(a, get_aval(x).dtype), b, x)
    return _hyp1f1(a, b, x)


def _hyp1f1_impl(a, b, x):
    neg = tnp.less(x, 0)
    aa = tnp.where(neg, b - a, a)
    xx = tnp.abs(x)
    s = _series_loop(lambda n: (aa + n) / (b + n) * xx / (n + 1), 1.0, xx)
    return tnp.where(neg, tnp.exp(x) * s, s)


@custom_jvp
def _hyp1f1(a, b, x):
    return _hyp1f1_impl(a, b, x)


@_hyp1f1.defjvp
def _hyp1f1_jvp(primals, tangents):
    a, b, x = primals
    ta, tb, tx = tangents
    _require_zero_tangent(ta, "hyp1f1", "a")
    _require_zero_tangent(tb, "hyp1f1", "b")
    return _hyp1f1(a, b, x), a / b * _hyp1f1(a + 1, b + 1, x) * tx


def hyp2f1(a, b, c, x):
    """The Gauss hypergeometric function ₂F₁(a, b; c; x) for x < 1, as
    `jax.scipy.special.hyp2f1`: the power series for 0 ≤ x ≤ 0.9 and, for x < 0, Pfaff's
    transformation (1 − x)^{−a} ₂F₁(a, c − b; c; x/(x − 1)), summed to float precision (a
    `while_loop`). Converges slowly (and is not attempted: nan) for x > 0.9 and for
    x < −9, where the 1 − x connection formulas would be needed. Batches and compiles;
    differentiates in x (a, b and c refuse)."""
    a, b = _f2(a, b)
    c, x = _f2(c, x)
    dt = np.result_type(get_aval(a).dtype, get_aval(c).dtype)
    a, b, c, x = tnp.broadcast_arrays(*[tnp.astype(v, dt) for v in (a, b, c, x)])
    return _hyp2f1(a, b, c, x)


@custom_jvp
def _hyp2f1(a, b, c, x):
    return _hyp2f1_impl(a, b, c, x)


@_hyp2f1.defjvp
def _hyp2f1_jvp(primals, tangents):
    a, b, c, x = primals
    for t, name in zip(tangents[:3], "abc"):
        _require_zero_tangent(t, "hyp2f1", name)
    return _hyp2f1(a, b, c, x), a * b / c * _hyp2f1(a + 1, b + 1, c + 1, x) * tangents[3]


def _hyp2f1_impl(a, b, c, x):
    neg = tnp.less(x, 0)
    z = tnp.where(neg, x / (x - 1), x)
    bb = tnp.where(neg, c - b, b)
    ok = tnp.logical_and(tnp.greater_equal(z, 0), tnp.less_equal(z, 0.9))
    zs = tnp.where(ok, z, 0.0)
    s = _series_loop(lambda n: (a + n) * (bb + n) / ((c + n) * (n + 1)) * zs, 1.0, zs)
    val = tnp.where(neg, tnp.exp(-a * tnp.log1p(-tnp.minimum(x, 0.0))) * s, s)
    return tnp.where(ok, val, np.nan)


def bessel_jn(z, *, v, n_iter=50):
    """Bessel functions of the first kind J₀(z) … J_v(z), stacked on a new leading axis
    (shape (v + 1,) + z.shape), as `jax.scipy.special.bessel_jn`: Miller's backward
    recurrence from order max(v, n_iter) normalised by J₀ + 2ΣJ₂ₖ = 1 (accurate for
    |z| well below n_iter, as JAX's). Differentiates, batches and compiles."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"bessel_jn: v must be a non-negative integer, got {v!r}")
    z = _f(z)
    start = max(int(v), int(n_iter)) + 10
    start += start % 2
    zs = tnp.where(tnp.equal(z, 0), 1.0, z)
    nxt = tnp.zeros_like(zs)
    cur = tnp.full_like(zs, 1e-30)
    vals = {}
    norm = tnp.zeros_like(zs)
    dt = get_aval(zs).dtype
    # rescale before overflow; the normalisation divides the scale back out
    limit, shrink = (1e250, 1e-250) if dt == np.float64 else (1e30, 1e-30)
    for k in range(start, 0, -1):
        # J_{k−1} = (2k/z) J_k − J_{k+1}
        prev = (2 * k / zs) * cur - nxt
        nxt, cur = cur, prev
        big = tnp.greater(tnp.abs(cur), limit)
        f = tnp.astype(tnp.where(big, shrink, 1.0), dt)   # two Python floats: cast back
        cur, nxt, norm = cur * f, nxt * f, norm * f
        vals = {key: val * f for key, val in vals.items()}
        order = k - 1
        if order <= v:
            vals[order] = cur
        if order % 2 == 0 and order > 0:
            norm = norm + 2 * cur
    norm = norm + cur                      # + J₀
    out = tnp.stack([vals[i] / norm for i in range(v + 1)])
    at0 = np.zeros((v + 1,) + (1,) * get_aval(z).ndim)
    at0[0] = 1.0
    return tnp.where(tnp.equal(z, 0), at0.astype(get_aval(z).dtype), out)
