"""`scipy.special` functions used by probabilistic code (`jax.scipy.special`).

Primitives where a function needs its own kernel (`lax.lgamma`, `digamma`, `polygamma`,
`erfc`, `erf_inv`, `bessel_i0e`, `bessel_i1e`), numerically stable compositions for the
rest. Values follow SciPy (float64 accuracy); integer input is computed in float64.
The incomplete gamma/beta functions and exponential integrals live in
`_special_incomplete`, series-defined functions in `_special_series`, the other additions
in `_special_more`; all are re-exported here.
"""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as tnp
from ..core import get_aval
from ._special_util import _f, _f2


# Python floats (weak scalars): NumPy float64 scalars would promote float32 operands
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gammaln(x):
    """log |Γ(x)|."""
    return lax.lgamma(_f(x))


def gamma(x):
    """Γ(x) (with its sign: negative between odd and even negative integers)."""
    x = _f(x)
    sign = tnp.where(tnp.logical_and(tnp.less(x, 0), tnp.equal(tnp.remainder(tnp.floor(x), 2), 1)),
                     -1.0, 1.0)
    return tnp.astype(sign, get_aval(x).dtype) * tnp.exp(gammaln(x))


def digamma(x):
    """ψ(x), the derivative of log Γ."""
    return lax.digamma(_f(x))


psi = digamma


def polygamma(n, x):
    """ψ⁽ⁿ⁾(x) for a static non-negative integer n."""
    n = np.asarray(n)
    if n.ndim != 0 or n.dtype.kind not in "iu":
        raise TypeError("polygamma: n must be a non-negative integer scalar")
    return lax.polygamma(int(n), _f(x))


def multigammaln(a, d):
    """log of the multivariate gamma function of dimension d."""
    a = _f(a)
    j = np.arange(d, dtype=get_aval(a).dtype)
    out = tnp.sum(gammaln(tnp.expand_dims(a, -1) - j / 2), axis=-1)
    return out + d * (d - 1) / 4 * math.log(math.pi)     # a Python float: keeps float32


def betaln(a, b):
    """log |B(a, b)| = log Γ(a) + log Γ(b) − log Γ(a + b)."""
    a, b = _f2(a, b)
    return gammaln(a) + gammaln(b) - gammaln(a + b)


def beta(a, b):
    """B(a, b) for positive arguments."""
    return tnp.exp(betaln(a, b))


def erf(x):
    """The error function."""
    return lax.erf(_f(x))


def erfc(x):
    """1 − erf(x), accurate in the tails."""
    return lax.erfc(_f(x))


def erfinv(x):
    """The inverse error function."""
    return lax.erf_inv(_f(x))


def expit(x):
    """The logistic sigmoid 1/(1 + e^{−x})."""
    return lax.logistic(_f(x))


def logit(p):
    """log(p/(1 − p))."""
    p = _f(p)
    return tnp.log(p) - tnp.log1p(-p)


def log_expit(x):
    """log σ(x) = −log(1 + e^{−x}), stable for large |x|."""
    x = _f(x)
    return -tnp.logaddexp(tnp.zeros_like(x), -x)


def xlogy(x, y):
    """x log y, 0 where x = 0 (even for y = 0)."""
    x, y = _f2(x, y)
    safe_y = tnp.where(tnp.equal(x, 0), 1.0, y)
    return tnp.where(tnp.equal(x, 0), 0.0, x * tnp.log(safe_y))


def xlog1py(x, y):
    """x log(1 + y), 0 where x = 0."""
    x, y = _f2(x, y)
    safe_y = tnp.where(tnp.equal(x, 0), 0.0, y)
    return tnp.where(tnp.equal(x, 0), 0.0, x * tnp.log1p(safe_y))


def entr(x):
    """−x log x for x > 0, 0 at 0, −inf below."""
    x = _f(x)
    safe = tnp.where(tnp.greater(x, 0), x, 1.0)
    edge = tnp.where(tnp.equal(x, 0), tnp.zeros_like(x), tnp.full_like(x, -np.inf))
    return tnp.where(tnp.greater(x, 0), -x * tnp.log(safe), edge)


def rel_entr(x, y):
    """x log(x/y) (0 at x = 0, inf where y = 0 < x)."""
    x, y = _f2(x, y)
    pos = tnp.logical_and(tnp.greater(x, 0), tnp.greater(y, 0))
    sx, sy = tnp.where(pos, x, 1.0), tnp.where(pos, y, 1.0)
    val = sx * (tnp.log(sx) - tnp.log(sy))
    both_zero = tnp.logical_and(tnp.equal(x, 0), tnp.greater_equal(y, 0))
    return tnp.where(pos, val, tnp.where(both_zero, tnp.zeros_like(x), tnp.full_like(x, np.inf)))


def kl_div(x, y):
    """x log(x/y) − x + y."""
    x, y = _f2(x, y)
    return rel_entr(x, y) - x + y


def ndtr(x):
    """The standard normal CDF Φ(x) = erfc(−x/√2)/2."""
    x = _f(x)
    return 0.5 * erfc(-x / _SQRT2)


def ndtri(p):
    """Φ⁻¹(p) = √2 erf⁻¹(2p − 1)."""
    p = _f(p)
    return _SQRT2 * erfinv(2 * p - 1)


def log_ndtr(x):
    """log Φ(x), accurate far into both tails: log1p(−Φ(−x)) above 0, log of erfc in the
    middle, and the asymptotic series below −20 (where Φ underflows)."""
    x = _f(x)
    dt = get_aval(x).dtype
    lower = -20.0 if dt == np.float64 else -10.0
    upper = 3.0
    mid = tnp.log(ndtr(tnp.clip(x, lower, upper)))
    hi = tnp.log1p(-ndtr(-tnp.maximum(x, upper)))
    xl = tnp.minimum(x, lower)
    z2 = xl * xl
    # log φ(x) − log(−x) + log(1 − 1/x² + 3/x⁴ − 15/x⁶ + 105/x⁸)
    series = 1 - 1 / z2 + 3 / z2 ** 2 - 15 / z2 ** 3 + 105 / z2 ** 4
    lo = -0.5 * z2 - _LOG_SQRT_2PI - tnp.log(-xl) + tnp.log(series)
    return tnp.where(tnp.greater(x, upper), hi, tnp.where(tnp.less(x, lower), lo, mid))


def i0e(x):
    """e^{−|x|} I₀(x)."""
    return lax.bessel_i0e(_f(x))


def i1e(x):
    """e^{−|x|} I₁(x)."""
    return lax.bessel_i1e(_f(x))


def i0(x):
    """I₀(x) = e^{|x|} i0e(x)."""
    x = _f(x)
    return tnp.exp(tnp.abs(x)) * i0e(x)


def i1(x):
    """I₁(x) = e^{|x|} i1e(x)."""
    x = _f(x)
    return tnp.exp(tnp.abs(x)) * i1e(x)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log Σ b·e^{a} over `axis`, stable (the maximum is subtracted first); with
    `return_sign`, `(log|Σ|, sign)`."""
    a = _f(a)
    if b is not None:
        a, b = tnp.broadcast_arrays(a, _f(b))
    m = tnp.max(a, axis=axis, keepdims=True)
    m = lax.stop_gradient(tnp.where(tnp.isfinite(m), m, 0.0))
    e = tnp.exp(a - m)
    if b is not None:
        e = e * b
    s = tnp.sum(e, axis=axis, keepdims=True)
    sign = tnp.sign(s)
    out = tnp.log(tnp.abs(s)) + m
    if not keepdims:
        ax = tuple(range(get_aval(a).ndim)) if axis is None else axis
        out = tnp.squeeze(out, axis=ax)
        sign = tnp.squeeze(sign, axis=ax)
    if return_sign:
        return out, sign
    return out if b is None else tnp.where(tnp.less(sign, 0), np.nan, out)


def softmax(x, axis=None):
    """e^{x} / Σ e^{x} over `axis` (all axes when None, as SciPy)."""
    x = _f(x)
    return tnp.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x, axis=None):
    """x − logsumexp(x) over `axis`."""
    x = _f(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def factorial(n, exact=False):
    """n! = Γ(n + 1) (0 for negative n), as floats."""
    if exact:
        raise NotImplementedError("factorial(exact=True) is not supported")
    n = _f(n)
    return tnp.where(tnp.less(n, 0), 0.0, tnp.exp(gammaln(n + 1)))


# re-exported: defined in their own modules (they import only the helpers above)
from ._special_incomplete import (betainc, exp1, expi, expn, gammainc,  # noqa: E402,F401
                                  gammaincc)
from ._special_more import (bernoulli, boxcox, boxcox1p, comb, dawsn, erfcx,  # noqa: E402,F401
                            gammasgn, loggamma, poch, zeta)
from ._special_series import (bessel_jn, hyp1f1, hyp2f1, owens_t,  # noqa: E402,F401
                              spence)
from ._special_trig import fresnel, sici  # noqa: E402,F401
from ._special_sph import sph_harm_y  # noqa: E402,F401
from ._special_wofz import wofz  # noqa: E402,F401


# the public names (helpers such as get_aval are imported, not exported)
__all__ = ["bernoulli", "bessel_jn", "beta", "betainc", "betaln", "boxcox", "boxcox1p",
           "comb", "dawsn", "digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp1",
           "expi", "expit", "expn", "factorial", "fresnel", "gamma", "gammainc", "gammaincc",
           "gammaln", "gammasgn", "hyp1f1", "hyp2f1", "i0", "i0e", "i1", "i1e", "kl_div",
           "log_expit", "log_ndtr", "log_softmax", "loggamma", "logit", "logsumexp",
           "multigammaln", "ndtr", "ndtri", "owens_t", "poch", "polygamma", "psi",
           "rel_entr", "sici", "softmax", "spence", "sph_harm_y", "wofz", "xlog1py", "xlogy",
           "zeta"]
