"""`scipy.stats` distributions (`jax.scipy.stats`): log-densities, densities and CDFs written
with numerically stable formulas, differentiable in every argument, batched and compiled.
Each distribution is a namespace (`stats.norm.logpdf(x, loc, scale)`), as in JAX."""
from __future__ import annotations

import types

import numpy as np

from .. import numpy as tnp
from ..core import get_aval
from . import special as sp
from ._special_util import stats_args

_LOG_2PI = float(np.log(2 * np.pi))


def _f(*xs):
    return stats_args(*xs)


def _ns(name, **fns):
    return types.SimpleNamespace(__name__=name, **fns)


# -- continuous -----------------------------------------------------------------------------

def _norm_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return -0.5 * z * z - tnp.log(scale) - 0.5 * _LOG_2PI


def _norm_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return sp.ndtr((x - loc) / scale)


def _norm_logcdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return sp.log_ndtr((x - loc) / scale)


def _norm_ppf(q, loc=0, scale=1):
    q, loc, scale = _f(q, loc, scale)
    return loc + scale * sp.ndtri(q)


norm = _ns("norm", logpdf=_norm_logpdf, pdf=lambda *a, **k: tnp.exp(_norm_logpdf(*a, **k)),
           cdf=_norm_cdf, logcdf=_norm_logcdf, ppf=_norm_ppf,
           sf=lambda x, loc=0, scale=1: _norm_cdf(2 * tnp.asarray(loc) - tnp.asarray(x), loc,
                                                  scale),
           logsf=lambda x, loc=0, scale=1: _norm_logcdf(2 * tnp.asarray(loc) - tnp.asarray(x),
                                                        loc, scale))


def _t_logpdf(x, df, loc=0, scale=1):
    x, df, loc, scale = _f(x, df, loc, scale)
    z = (x - loc) / scale
    return (sp.gammaln((df + 1) / 2) - sp.gammaln(df / 2) - 0.5 * tnp.log(df * np.pi)
            - tnp.log(scale) - (df + 1) / 2 * tnp.log1p(z * z / df))


t = _ns("t", logpdf=_t_logpdf, pdf=lambda *a, **k: tnp.exp(_t_logpdf(*a, **k)))


def _cauchy_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return -np.log(np.pi) - tnp.log(scale) - tnp.log1p(z * z)


def _cauchy_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return 0.5 + tnp.arctan((x - loc) / scale) / np.pi


cauchy = _ns("cauchy", logpdf=_cauchy_logpdf, pdf=lambda *a, **k: tnp.exp(_cauchy_logpdf(*a, **k)),
             cdf=_cauchy_cdf)


def _laplace_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return -np.log(2.0) - tnp.log(scale) - tnp.abs(x - loc) / scale


def _laplace_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return tnp.where(tnp.less(z, 0), 0.5 * tnp.exp(tnp.minimum(z, 0)),
                     1 - 0.5 * tnp.exp(-tnp.maximum(z, 0)))


laplace = _ns("laplace", logpdf=_laplace_logpdf,
              pdf=lambda *a, **k: tnp.exp(_laplace_logpdf(*a, **k)), cdf=_laplace_cdf)


def _logistic_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return -tnp.abs(z) - 2 * tnp.log1p(tnp.exp(-tnp.abs(z))) - tnp.log(scale)


def _logistic_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return sp.expit((x - loc) / scale)


logistic = _ns("logistic", logpdf=_logistic_logpdf,
               pdf=lambda *a, **k: tnp.exp(_logistic_logpdf(*a, **k)), cdf=_logistic_cdf,
               sf=lambda x, loc=0, scale=1: _logistic_cdf(-tnp.asarray(x), -tnp.asarray(loc),
                                                          scale),
               ppf=lambda q, loc=0, scale=1: _f(loc)[0] + _f(scale)[0] * sp.logit(q),
               isf=lambda q, loc=0, scale=1: _f(loc)[0] - _f(scale)[0] * sp.logit(q))


def _uniform_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    inside = tnp.logical_and(tnp.greater_equal(x, loc), tnp.less_equal(x, loc + scale))
    return tnp.where(inside, -tnp.log(scale), -np.inf)


def _uniform_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    return tnp.clip((x - loc) / scale, 0, 1)


uniform = _ns("uniform", logpdf=_uniform_logpdf,
              pdf=lambda *a, **k: tnp.exp(_uniform_logpdf(*a, **k)), cdf=_uniform_cdf)


def _expon_logpdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return tnp.where(tnp.less(z, 0), -np.inf, -z - tnp.log(scale))


def _expon_cdf(x, loc=0, scale=1):
    x, loc, scale = _f(x, loc, scale)
    z = (x - loc) / scale
    return tnp.where(tnp.less(z, 0), 0.0, -tnp.expm1(-tnp.maximum(z, 0)))


expon = _ns("expon", logpdf=_expon_logpdf, pdf=lambda *a, **k: tnp.exp(_expon_logpdf(*a, **k)),
            cdf=_expon_cdf)


def _gamma_logpdf(x, a, loc=0, scale=1):
    x, a, loc, scale = _f(x, a, loc, scale)
    z = (x - loc) / scale
    pos = tnp.greater(z, 0)
    zs = tnp.where(pos, z, 1.0)
    val = sp.xlogy(a - 1, zs) - zs - sp.gammaln(a) - tnp.log(scale)
    return tnp.where(pos, val, tnp.where(tnp.logical_and(tnp.equal(z, 0), tnp.equal(a, 1)),
                                         -tnp.log(scale), -np.inf))


gamma = _ns("gamma", logpdf=_gamma_logpdf, pdf=lambda *a, **k: tnp.exp(_gamma_logpdf(*a, **k)))


def _beta_logpdf(x, a, b, loc=0, scale=1):
    x, a, b, loc, scale = _f(x, a, b, loc, scale)
    z = (x - loc) / scale
    inside = tnp.logical_and(tnp.greater(z, 0), tnp.less(z, 1))
    zs = tnp.where(inside, z, 0.5)
    val = sp.xlogy(a - 1, zs) + sp.xlog1py(b - 1, -zs) - sp.betaln(a, b) - tnp.log(scale)
    return tnp.where(inside, val, -np.inf)


beta = _ns("beta", logpdf=_beta_logpdf, pdf=lambda *a, **k: tnp.exp(_beta_logpdf(*a, **k)))


def _chi2_logpdf(x, df, loc=0, scale=1):
    x, df, loc, scale = _f(x, df, loc, scale)
    return _gamma_logpdf(x, df / 2, loc, 2 * scale)


chi2 = _ns("chi2", logpdf=_chi2_logpdf, pdf=lambda *a, **k: tnp.exp(_chi2_logpdf(*a, **k)))


# -- discrete -------------------------------------------------------------------------------

def _is_int(k):
    return tnp.equal(k, tnp.floor(k))


def _poisson_logpmf(k, mu, loc=0):
    k, mu, loc = _f(k, mu, loc)
    k = k - loc
    ok = tnp.logical_and(_is_int(k), tnp.greater_equal(k, 0))
    ks = tnp.where(ok, k, 0.0)
    val = sp.xlogy(ks, mu) - mu - sp.gammaln(ks + 1)
    return tnp.where(ok, val, -np.inf)


def _poisson_cdf(k, mu, loc=0):
    # Σ_{j <= k} e^{-mu} mu^j / j!  (k small and static-free: evaluated through the
    # regularised gamma relation would need igammac; summed directly up to max k here)
    k, mu, loc = _f(k, mu, loc)
    kk = tnp.floor(k - loc)
    kmax = int(np.max(np.asarray(kk))) if not hasattr(kk, "_trace") else None
    if kmax is None:
        raise NotImplementedError("poisson.cdf of traced k is not supported")
    j = np.arange(max(kmax, 0) + 1, dtype=get_aval(mu).dtype)
    terms = tnp.exp(_poisson_logpmf(j, tnp.expand_dims(mu, -1)))
    mask = j <= tnp.expand_dims(kk, -1)
    return tnp.where(tnp.less(kk, 0), 0.0, tnp.sum(tnp.where(mask, terms, 0.0), axis=-1))


poisson = _ns("poisson", logpmf=_poisson_logpmf,
              pmf=lambda *a, **k: tnp.exp(_poisson_logpmf(*a, **k)), cdf=_poisson_cdf)


def _bernoulli_logpmf(k, p, loc=0):
    k, p, loc = _f(k, p, loc)
    k = k - loc
    val = tnp.where(tnp.equal(k, 1), tnp.log(p), tnp.log1p(-p))
    return tnp.where(tnp.logical_or(tnp.equal(k, 0), tnp.equal(k, 1)), val, -np.inf)


bernoulli = _ns("bernoulli", logpmf=_bernoulli_logpmf,
                pmf=lambda *a, **k: tnp.exp(_bernoulli_logpmf(*a, **k)))


def _binom_logpmf(k, n, p, loc=0):
    k, n, p, loc = _f(k, n, p, loc)
    k = k - loc
    ok = tnp.logical_and(tnp.logical_and(_is_int(k), tnp.greater_equal(k, 0)),
                         tnp.less_equal(k, n))
    ks = tnp.where(ok, k, 0.0)
    comb = sp.gammaln(n + 1) - sp.gammaln(ks + 1) - sp.gammaln(n - ks + 1)
    val = comb + sp.xlogy(ks, p) + sp.xlog1py(n - ks, -p)
    return tnp.where(ok, val, -np.inf)


binom = _ns("binom", logpmf=_binom_logpmf, pmf=lambda *a, **k: tnp.exp(_binom_logpmf(*a, **k)))


def _geom_logpmf(k, p, loc=0):
    k, p, loc = _f(k, p, loc)
    k = k - loc
    ok = tnp.logical_and(_is_int(k), tnp.greater_equal(k, 1))
    ks = tnp.where(ok, k, 1.0)
    return tnp.where(ok, sp.xlog1py(ks - 1, -p) + tnp.log(p), -np.inf)


geom = _ns("geom", logpmf=_geom_logpmf, pmf=lambda *a, **k: tnp.exp(_geom_logpmf(*a, **k)))


# -- multivariate ---------------------------------------------------------------------------

def _mvn_logpdf(x, mean, cov, allow_singular=None):
    x, mean, cov = _f(x, mean, cov)
    d = get_aval(cov).shape[-1]
    L = tnp.linalg.cholesky(cov)
    diff = x - mean
    from ..lax import decompositions as D
    batch = get_aval(diff).shape[:-1]
    Lb = tnp.broadcast_to(L, batch + (d, d))
    z = D.triangular_solve(Lb, diff[..., None], left_side=True, lower=True)[..., 0]
    half_logdet = tnp.sum(tnp.log(tnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * tnp.sum(z * z, axis=-1) - half_logdet - 0.5 * d * _LOG_2PI


multivariate_normal = _ns("multivariate_normal", logpdf=_mvn_logpdf,
                          pdf=lambda *a, **k: tnp.exp(_mvn_logpdf(*a, **k)))


def _dirichlet_logpdf(x, alpha):
    x, alpha = _f(x, alpha)
    norm_const = tnp.sum(sp.gammaln(alpha), axis=-1) - sp.gammaln(tnp.sum(alpha, axis=-1))
    return tnp.sum(sp.xlogy(alpha - 1, x), axis=-1) - norm_const


dirichlet = _ns("dirichlet", logpdf=_dirichlet_logpdf,
                pdf=lambda *a, **k: tnp.exp(_dirichlet_logpdf(*a, **k)))


# -- further distributions, CDFs through the incomplete gamma/beta functions, and functions
from ._stats_dists import (betabinom, gennorm, gumbel_l, gumbel_r,  # noqa: E402,F401
                           multinomial, nbinom, pareto, truncnorm, vonmises, wrapcauchy)
from . import _stats_dists as _sd  # noqa: E402
from ._stats_funcs import ModeResult, gaussian_kde, mode, rankdata, sem  # noqa: E402,F401

gamma.cdf, gamma.sf = _sd.gamma_cdf, _sd.gamma_sf
chi2.cdf, chi2.sf = _sd.chi2_cdf, _sd.chi2_sf
beta.cdf, beta.sf = _sd.beta_cdf, _sd.beta_sf
poisson.cdf = _sd.poisson_cdf


# the public names (helpers such as get_aval are imported, not exported)
__all__ = ["ModeResult", "bernoulli", "beta", "betabinom", "binom", "cauchy", "chi2",
           "dirichlet", "expon", "gamma", "gaussian_kde", "gennorm", "geom", "gumbel_l",
           "gumbel_r", "laplace", "logistic", "mode", "multinomial",
           "multivariate_normal", "nbinom", "norm", "pareto", "poisson", "rankdata",
           "sem", "t", "truncnorm", "uniform", "vonmises", "wrapcauchy"]


def _register_distribution_modules():
    """JAX's distributions are modules, imported as `import jax.scipy.stats.norm as norm`:
    each namespace here is importable under its module name too."""
    import sys
    for name, value in list(globals().items()):
        if isinstance(value, types.SimpleNamespace) and not name.startswith("_"):
            sys.modules.setdefault(f"{__name__}.{name}", value)


_register_distribution_modules()
