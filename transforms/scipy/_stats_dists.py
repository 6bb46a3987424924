"""More `scipy.stats` distributions (part of `transforms.scipy.stats`): truncnorm, pareto,
gumbel_l, gumbel_r, gennorm, vonmises, wrapcauchy, betabinom, nbinom, multinomial, and
CDFs of gamma, beta, chi2 and poisson through the incomplete gamma/beta functions.
Compositions of `tnp` and `special` functions: they batch and compile, and differentiate
where their special functions do (betainc only in x)."""
from __future__ import annotations

import math
import types

import numpy as np

from .. import numpy as tnp
from . import special as sp
from ._special_util import stats_args

_LOG_2PI = math.log(2 * math.pi)
_LOG_SQRT_2PI = 0.5 * _LOG_2PI


def _f(*xs):
    return stats_args(*xs)


def _ns(name, doc, **fns):
    ns = types.SimpleNamespace(__name__=name, __doc__=doc, **fns)
    for fname, fn in fns.items():
        if not getattr(fn, "__doc__", None):
            fn.__doc__ = f"`{name}.{fname}`, as `jax.scipy.stats.{name}.{fname}`."
    return ns


def _exp(logf):
    def f(*a, **k):
        return tnp.exp(logf(*a, **k))
    return f


def _ninf(x):
    return tnp.full_like(x, -np.inf)


# -- truncnorm ------------------------------------------------------------------------------

def _log_ndtr_diff(lo, hi):
    """log(Φ(hi) − Φ(lo)) for lo ≤ hi, from the tail in which both lie (no cancellation
    far out in either tail)."""
    mirror = tnp.greater(lo, 0)
    a = tnp.where(mirror, -hi, lo)
    b = tnp.where(mirror, -lo, hi)
    la, lb = sp.log_ndtr(a), sp.log_ndtr(b)
    gap = tnp.less(la, lb)
    # an empty interval is −inf; the guard keeps log1p(−1) out of the eager evaluation
    d = tnp.where(gap, la - lb, -1.0)
    return tnp.where(gap, lb + tnp.log1p(-tnp.exp(d)), -np.inf)


def _truncnorm_parts(x, a, b, loc, scale):
    x, a, b, loc, scale = _f(x, a, b, loc, scale)
    z = (x - loc) / scale
    return z, a, b, scale, _log_ndtr_diff(a, b)


def _truncnorm_logpdf(x, a, b, loc=0, scale=1):
    z, a, b, scale, logz = _truncnorm_parts(x, a, b, loc, scale)
    val = -0.5 * z * z - _LOG_SQRT_2PI - tnp.log(scale) - logz
    inside = tnp.logical_and(tnp.greater_equal(z, a), tnp.less_equal(z, b))
    return tnp.where(inside, val, _ninf(val))


def _log1mexp(v):
    """log(1 − e^v) for v ≤ 0."""
    v = tnp.minimum(v, 0.0)
    vs = tnp.where(tnp.equal(v, 0), -1.0, v)
    out = tnp.where(tnp.greater(vs, -math.log(2)), tnp.log(-tnp.expm1(vs)),
                    tnp.log1p(-tnp.exp(vs)))
    return tnp.where(tnp.equal(v, 0), -np.inf, out)


def _truncnorm_logcdf(x, a, b, loc=0, scale=1):
    z, a, b, scale, logz = _truncnorm_parts(x, a, b, loc, scale)
    zc = tnp.clip(z, a, b)
    val = _log_ndtr_diff(a, zc) - logz
    # near the top the complement is small: log(1 − sf) keeps the relative accuracy
    other = _log1mexp(_log_ndtr_diff(zc, b) - logz)
    val = tnp.where(tnp.greater(val, -math.log(2)), other, val)
    return tnp.where(tnp.less(z, a), _ninf(val), tnp.where(tnp.greater(z, b), 0.0, val))


def _truncnorm_logsf(x, a, b, loc=0, scale=1):
    z, a, b, scale, logz = _truncnorm_parts(x, a, b, loc, scale)
    zc = tnp.clip(z, a, b)
    val = _log_ndtr_diff(zc, b) - logz
    other = _log1mexp(_log_ndtr_diff(a, zc) - logz)
    val = tnp.where(tnp.greater(val, -math.log(2)), other, val)
    return tnp.where(tnp.greater(z, b), _ninf(val), tnp.where(tnp.less(z, a), 0.0, val))


truncnorm = _ns("truncnorm", "The normal distribution truncated to [a, b] (standardised "
                "bounds), as `jax.scipy.stats.truncnorm`; tails computed from log_ndtr.",
                logpdf=_truncnorm_logpdf, pdf=_exp(_truncnorm_logpdf),
                logcdf=_truncnorm_logcdf, cdf=_exp(_truncnorm_logcdf),
                logsf=_truncnorm_logsf, sf=_exp(_truncnorm_logsf))


# -- pareto ---------------------------------------------------------------------------------

def _pareto_logpdf(x, b, loc=0, scale=1):
    x, b, loc, scale = _f(x, b, loc, scale)
    z = (x - loc) / scale
    ok = tnp.greater_equal(z, 1)
    zs = tnp.where(ok, z, 1.0)
    val = tnp.log(b) - tnp.log(scale) - (b + 1) * tnp.log(zs)
    return tnp.where(ok, val, _ninf(val))


def _pareto_logsf(x, b, loc=0, scale=1):
    x, b, loc, scale = _f(x, b, loc, scale)
    z = (x - loc) / scale
    return tnp.where(tnp.less(z, 1), 0.0, -b * tnp.log(tnp.maximum(z, 1.0)))


def _pareto_cdf(x, b, loc=0, scale=1):
    return -tnp.expm1(_pareto_logsf(x, b, loc, scale))


def _pareto_ppf(q, b, loc=0, scale=1):
    q, b, loc, scale = _f(q, b, loc, scale)
    return loc + scale * tnp.exp(-tnp.log1p(-q) / b)


pareto = _ns("pareto", "The Pareto distribution, as `jax.scipy.stats.pareto`.",
             logpdf=_pareto_logpdf, pdf=_exp(_pareto_logpdf), cdf=_pareto_cdf,
             logsf=_pareto_logsf, sf=_exp(_pareto_logsf), ppf=_pareto_ppf)


# -- gumbel ---------------------------------------------------------------------------------

def _std(x, loc, scale):
    x, loc, scale = _f(x, loc, scale)
    return (x - loc) / scale, scale


def _gumbel_r_logpdf(x, loc=0, scale=1):
    z, scale = _std(x, loc, scale)
    return -z - tnp.exp(-z) - tnp.log(scale)


def _gumbel_r_logcdf(x, loc=0, scale=1):
    z, _ = _std(x, loc, scale)
    return -tnp.exp(-z)


def _gumbel_r_logsf(x, loc=0, scale=1):
    z, _ = _std(x, loc, scale)
    return _log1mexp(-tnp.exp(-z))


def _gumbel_r_ppf(q, loc=0, scale=1):
    q, loc, scale = _f(q, loc, scale)
    return loc - scale * tnp.log(-tnp.log(q))


gumbel_r = _ns("gumbel_r", "The right-skewed Gumbel distribution, as "
               "`jax.scipy.stats.gumbel_r`.",
               logpdf=_gumbel_r_logpdf, pdf=_exp(_gumbel_r_logpdf), logcdf=_gumbel_r_logcdf,
               cdf=_exp(_gumbel_r_logcdf), logsf=_gumbel_r_logsf, sf=_exp(_gumbel_r_logsf),
               ppf=_gumbel_r_ppf)


def _gumbel_l_logpdf(x, loc=0, scale=1):
    z, scale = _std(x, loc, scale)
    return z - tnp.exp(z) - tnp.log(scale)


def _gumbel_l_logcdf(x, loc=0, scale=1):
    z, _ = _std(x, loc, scale)
    return _log1mexp(-tnp.exp(z))


def _gumbel_l_logsf(x, loc=0, scale=1):
    z, _ = _std(x, loc, scale)
    return -tnp.exp(z)


def _gumbel_l_ppf(q, loc=0, scale=1):
    q, loc, scale = _f(q, loc, scale)
    return loc + scale * tnp.log(-tnp.log1p(-q))


gumbel_l = _ns("gumbel_l", "The left-skewed Gumbel distribution, as "
               "`jax.scipy.stats.gumbel_l`.",
               logpdf=_gumbel_l_logpdf, pdf=_exp(_gumbel_l_logpdf), logcdf=_gumbel_l_logcdf,
               cdf=_exp(_gumbel_l_logcdf), logsf=_gumbel_l_logsf, sf=_exp(_gumbel_l_logsf),
               ppf=_gumbel_l_ppf)


# -- gennorm, vonmises, wrapcauchy ----------------------------------------------------------

def _gennorm_logpdf(x, beta, loc=0, scale=1):
    x, beta, loc, scale = _f(x, beta, loc, scale)
    z = (x - loc) / scale
    return (tnp.log(beta) - math.log(2) - sp.gammaln(1 / beta) - tnp.abs(z) ** beta
            - tnp.log(scale))


def _gennorm_cdf(x, beta, loc=0, scale=1):
    x, beta, loc, scale = _f(x, beta, loc, scale)
    z = (x - loc) / scale
    return 0.5 + 0.5 * tnp.sign(z) * sp.gammainc(1 / beta, tnp.abs(z) ** beta)


gennorm = _ns("gennorm", "The generalised normal distribution (shape beta), as "
              "`jax.scipy.stats.gennorm`; the CDF through gammainc.",
              logpdf=_gennorm_logpdf, pdf=_exp(_gennorm_logpdf), cdf=_gennorm_cdf)


def _vonmises_logpdf(x, kappa, loc=0, scale=1):
    x, kappa, loc, scale = _f(x, kappa, loc, scale)
    z = (x - loc) / scale
    # i0e(κ) = e^{−κ} I₀(κ): no overflow for large concentrations
    return kappa * (tnp.cos(z) - 1) - _LOG_2PI - tnp.log(sp.i0e(kappa)) - tnp.log(scale)


vonmises = _ns("vonmises", "The von Mises distribution (periodic, as SciPy's density), as "
               "`jax.scipy.stats.vonmises`.",
               logpdf=_vonmises_logpdf, pdf=_exp(_vonmises_logpdf))


def _wrapcauchy_logpdf(x, c, loc=0, scale=1):
    x, c, loc, scale = _f(x, c, loc, scale)
    z = (x - loc) / scale
    inside = tnp.logical_and(tnp.greater_equal(z, 0), tnp.less_equal(z, 2 * np.pi))
    val = (tnp.log1p(-c * c) - _LOG_2PI - tnp.log(1 + c * c - 2 * c * tnp.cos(z))
           - tnp.log(scale))
    return tnp.where(inside, val, _ninf(val))


wrapcauchy = _ns("wrapcauchy", "The wrapped Cauchy distribution on [0, 2π], as "
                 "`jax.scipy.stats.wrapcauchy`.",
                 logpdf=_wrapcauchy_logpdf, pdf=_exp(_wrapcauchy_logpdf))


# -- discrete -------------------------------------------------------------------------------

def _int_in(k, lo, hi=None):
    ok = tnp.logical_and(tnp.equal(k, tnp.floor(k)), tnp.greater_equal(k, lo))
    return ok if hi is None else tnp.logical_and(ok, tnp.less_equal(k, hi))


def _betabinom_logpmf(k, n, a, b, loc=0):
    k, n, a, b, loc = _f(k, n, a, b, loc)
    k = k - loc
    ok = _int_in(k, 0, n)
    ks = tnp.where(ok, k, 0.0)
    val = (sp.gammaln(n + 1) - sp.gammaln(ks + 1) - sp.gammaln(n - ks + 1)
           + sp.betaln(ks + a, n - ks + b) - sp.betaln(a, b))
    return tnp.where(ok, val, _ninf(val))


betabinom = _ns("betabinom", "The beta-binomial distribution, as "
                "`jax.scipy.stats.betabinom`.",
                logpmf=_betabinom_logpmf, pmf=_exp(_betabinom_logpmf))


def _nbinom_logpmf(k, n, p, loc=0):
    k, n, p, loc = _f(k, n, p, loc)
    k = k - loc
    ok = _int_in(k, 0)
    ks = tnp.where(ok, k, 0.0)
    val = (sp.gammaln(ks + n) - sp.gammaln(n) - sp.gammaln(ks + 1) + sp.xlogy(n, p)
           + sp.xlog1py(ks, -p))
    return tnp.where(ok, val, _ninf(val))


def _nbinom_cdf(k, n, p, loc=0):
    k, n, p, loc = _f(k, n, p, loc)
    kk = tnp.floor(k - loc)
    ok = tnp.greater_equal(kk, 0)
    return tnp.where(ok, sp.betainc(n, tnp.where(ok, kk, 0.0) + 1, p), 0.0)


nbinom = _ns("nbinom", "The negative binomial distribution (failures before n successes), "
             "as `jax.scipy.stats.nbinom`; the CDF through betainc (differentiable in p).",
             logpmf=_nbinom_logpmf, pmf=_exp(_nbinom_logpmf), cdf=_nbinom_cdf)


def _multinomial_logpmf(x, n, p):
    x, n, p = _f(x, n, p)
    total = tnp.sum(x, axis=-1)
    ok = tnp.logical_and(tnp.equal(total, n),
                         tnp.all(tnp.logical_and(tnp.equal(x, tnp.floor(x)),
                                                 tnp.greater_equal(x, 0)), axis=-1))
    val = sp.gammaln(n + 1) + tnp.sum(sp.xlogy(x, p) - sp.gammaln(x + 1), axis=-1)
    return tnp.where(ok, val, _ninf(val))


multinomial = _ns("multinomial", "The multinomial distribution over the last axis, as "
                  "`jax.scipy.stats.multinomial`.",
                  logpmf=_multinomial_logpmf, pmf=_exp(_multinomial_logpmf))


# -- CDFs for the existing gamma, beta, chi2 and poisson namespaces --------------------------

def gamma_cdf(x, a, loc=0, scale=1):
    """`gamma.cdf`: P(a, (x − loc)/scale) (0 below loc)."""
    x, a, loc, scale = _f(x, a, loc, scale)
    z = tnp.maximum((x - loc) / scale, 0.0)
    return sp.gammainc(a, z)


def gamma_sf(x, a, loc=0, scale=1):
    """`gamma.sf`: Q(a, (x − loc)/scale)."""
    x, a, loc, scale = _f(x, a, loc, scale)
    z = tnp.maximum((x - loc) / scale, 0.0)
    return sp.gammaincc(a, z)


def chi2_cdf(x, df, loc=0, scale=1):
    """`chi2.cdf`: the gamma CDF with shape df/2 and scale 2."""
    x, df, loc, scale = _f(x, df, loc, scale)
    return gamma_cdf(x, df / 2, loc, 2 * scale)


def chi2_sf(x, df, loc=0, scale=1):
    """`chi2.sf`: the gamma survival function with shape df/2 and scale 2."""
    x, df, loc, scale = _f(x, df, loc, scale)
    return gamma_sf(x, df / 2, loc, 2 * scale)


def beta_cdf(x, a, b, loc=0, scale=1):
    """`beta.cdf`: I_z(a, b) with z clipped to [0, 1] (differentiable in x only)."""
    x, a, b, loc, scale = _f(x, a, b, loc, scale)
    z = tnp.clip((x - loc) / scale, 0.0, 1.0)
    return sp.betainc(a, b, z)


def beta_sf(x, a, b, loc=0, scale=1):
    """`beta.sf`: I_{1−z}(b, a)."""
    x, a, b, loc, scale = _f(x, a, b, loc, scale)
    z = tnp.clip((x - loc) / scale, 0.0, 1.0)
    return sp.betainc(b, a, 1 - z)


def poisson_cdf(k, mu, loc=0):
    """`poisson.cdf`: Q(⌊k⌋ + 1, mu) (0 below loc); works for traced k."""
    k, mu, loc = _f(k, mu, loc)
    kk = tnp.floor(k - loc)
    ok = tnp.greater_equal(kk, 0)
    return tnp.where(ok, sp.gammaincc(tnp.where(ok, kk, 0.0) + 1, mu), 0.0)
