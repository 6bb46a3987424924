"""transforms.scipy.special / stats / signal against SciPy (float64 and float32, extreme
arguments), finite-difference derivatives, and jit against eager."""
import numpy as np
import pytest
import scipy.signal as ss
import scipy.special as sp
import scipy.stats as st

import transforms as T
import transforms.numpy as tnp
from transforms.scipy import signal as tss
from transforms.scipy import special as tsp
from transforms.scipy import stats as tst
from transforms.test_util import check_grads

X = np.array([0.05, 0.5, 1.0, 2.5, 7.3, 31.0, 150.0])
XNEG = np.array([-0.5, -2.7, -7.25])
P = np.array([1e-10, 0.02, 0.3, 0.5, 0.77, 0.999])
R = np.array([-30.0, -8.0, -2.0, -0.3, 0.0, 0.4, 3.0, 9.0, 40.0])

SPECIAL = [
    ("gammaln", tsp.gammaln, sp.gammaln, np.concatenate([X, XNEG])),
    ("gamma", tsp.gamma, sp.gamma, np.concatenate([X[:5], XNEG])),
    ("digamma", tsp.digamma, sp.digamma, np.concatenate([X, XNEG])),
    ("polygamma1", lambda x: tsp.polygamma(1, x), lambda x: sp.polygamma(1, x), X),
    ("polygamma2", lambda x: tsp.polygamma(2, x), lambda x: sp.polygamma(2, x), X),
    ("erf", tsp.erf, sp.erf, R),
    ("erfc", tsp.erfc, sp.erfc, R),
    ("erfinv", tsp.erfinv, sp.erfinv, np.concatenate([2 * P - 1, [-0.999999999]])),
    ("ndtr", tsp.ndtr, sp.ndtr, R),
    ("ndtri", tsp.ndtri, sp.ndtri, P[1:]),
    ("log_ndtr", tsp.log_ndtr, sp.log_ndtr, np.concatenate([R, [-100.0, -25.0, 12.0]])),
    ("expit", tsp.expit, sp.expit, R),
    ("logit", tsp.logit, sp.logit, P),
    ("log_expit", tsp.log_expit, sp.log_expit, R),
    ("i0e", tsp.i0e, sp.i0e, np.concatenate([R, X])),
    ("i1e", tsp.i1e, sp.i1e, np.concatenate([R, X])),
    ("i0", tsp.i0, sp.i0, R[2:-1]),
    ("entr", tsp.entr, sp.entr, np.concatenate([[0.0, -1.0], P])),
    ("xlogy", lambda x: tsp.xlogy(x, x + 1), lambda x: sp.xlogy(x, x + 1),
     np.concatenate([[0.0], X])),
    ("xlog1py", lambda x: tsp.xlog1py(x, x), lambda x: sp.xlog1py(x, x),
     np.concatenate([[0.0], X])),
    ("betaln", lambda x: tsp.betaln(x, 2.5), lambda x: sp.betaln(x, 2.5), X),
    ("logsumexp", lambda x: tsp.logsumexp(x), lambda x: sp.logsumexp(x), R),
    ("logsumexp_b", lambda x: tsp.logsumexp(x, b=tnp.abs(x) + 1),
     lambda x: sp.logsumexp(x, b=np.abs(x) + 1), R),
    ("softmax", lambda x: tsp.softmax(x), lambda x: sp.softmax(x), R),
    # SciPy's domain is a > (d - 1) / 2 = 1 for d = 3
    ("multigammaln", lambda x: tsp.multigammaln(x, 3), lambda x: sp.multigammaln(x, 3),
     X[3:]),
]


@pytest.mark.parametrize("name,fn,ref,x", SPECIAL, ids=[c[0] for c in SPECIAL])
def test_special_values(name, fn, ref, x):
    want = ref(x)
    np.testing.assert_allclose(fn(x), want, rtol=1e-12, atol=1e-300, equal_nan=True)
    np.testing.assert_allclose(T.jit(fn)(x), want, rtol=1e-12, atol=1e-300, equal_nan=True)
    got32 = T.jit(fn)(x.astype(np.float32))
    assert np.asarray(got32).dtype == np.float32
    want32 = ref(x.astype(np.float32).astype(np.float64))
    finite = np.isfinite(want32) & (np.abs(want32) < 3e38)
    np.testing.assert_allclose(np.asarray(got32)[finite], want32[finite], rtol=3e-5,
                               atol=1e-37)


DIFF = [("gammaln", tsp.gammaln, X[:5]), ("digamma", tsp.digamma, X[:5]),
        ("erfinv", tsp.erfinv, np.array([-0.8, -0.4, 0.0, 0.54])), ("erfc", tsp.erfc, R[2:-2]),
        ("log_ndtr", tsp.log_ndtr, np.array([-30.0, -3.0, 0.5, 5.0])),
        ("i0e", tsp.i0e, np.array([-2.0, 0.3, 5.0])), ("i1e", tsp.i1e, np.array([-2.0, 0.3])),
        ("logsumexp", tsp.logsumexp, R[:5]), ("entr", tsp.entr, P[1:]),
        ("xlogy", lambda x: tsp.xlogy(x, x + 2), X[:4])]


@pytest.mark.parametrize("name,fn,x", DIFF, ids=[c[0] for c in DIFF])
def test_special_derivatives(name, fn, x):
    check_grads(fn, [x], order=2, modes=("fwd", "rev"), rtol=1e-5)


def test_erfinv_derivatives_near_the_ends_match_closed_forms():
    # close to +-1 the third derivative is so large that second-order finite differences lose
    # their accuracy; the closed forms f' = sqrt(pi)/2 exp(y^2), f'' = 2 y f'^2 (y = erfinv x)
    # check the rules exactly there instead
    x = np.array([-0.999, -0.96, 0.9, 0.99999])
    y = sp.erfinv(x)
    d1 = np.sqrt(np.pi) / 2 * np.exp(y * y)
    np.testing.assert_allclose(T.vmap(T.grad(tsp.erfinv))(x), d1, rtol=1e-12)
    np.testing.assert_allclose(T.vmap(T.grad(T.grad(tsp.erfinv)))(x), 2 * y * d1 * d1,
                               rtol=1e-11)
    np.testing.assert_allclose(T.jit(T.vmap(T.grad(T.grad(tsp.erfinv))))(x), 2 * y * d1 * d1,
                               rtol=1e-11)


STATS = [
    ("norm_logpdf", lambda x: tst.norm.logpdf(x, 0.5, 2.0), lambda x: st.norm.logpdf(x, 0.5, 2.0)),
    ("norm_cdf", lambda x: tst.norm.cdf(x, 0.5, 2.0), lambda x: st.norm.cdf(x, 0.5, 2.0)),
    ("norm_logcdf", lambda x: tst.norm.logcdf(x), lambda x: st.norm.logcdf(x)),
    ("norm_sf", lambda x: tst.norm.sf(x, 1.0), lambda x: st.norm.sf(x, 1.0)),
    ("t_logpdf", lambda x: tst.t.logpdf(x, 3.5, 0.2, 1.5), lambda x: st.t.logpdf(x, 3.5, 0.2, 1.5)),
    ("cauchy_logpdf", lambda x: tst.cauchy.logpdf(x, 1.0), lambda x: st.cauchy.logpdf(x, 1.0)),
    ("laplace_cdf", lambda x: tst.laplace.cdf(x, 0.1, 2.0), lambda x: st.laplace.cdf(x, 0.1, 2.0)),
    ("logistic_logpdf", lambda x: tst.logistic.logpdf(x), lambda x: st.logistic.logpdf(x)),
    ("logistic_cdf", lambda x: tst.logistic.cdf(x, 0.3), lambda x: st.logistic.cdf(x, 0.3)),
    ("uniform_logpdf", lambda x: tst.uniform.logpdf(x, -1.0, 3.0),
     lambda x: st.uniform.logpdf(x, -1.0, 3.0)),
    ("expon_logpdf", lambda x: tst.expon.logpdf(x, 0.0, 2.0), lambda x: st.expon.logpdf(x, 0.0, 2.0)),
    ("expon_cdf", lambda x: tst.expon.cdf(x), lambda x: st.expon.cdf(x)),
    ("gamma_logpdf", lambda x: tst.gamma.logpdf(x, 2.5, 0.0, 1.5),
     lambda x: st.gamma.logpdf(x, 2.5, 0.0, 1.5)),
    ("beta_logpdf", lambda x: tst.beta.logpdf(x / 50 + 0.4, 2.0, 3.5),
     lambda x: st.beta.logpdf(x / 50 + 0.4, 2.0, 3.5)),
    ("chi2_logpdf", lambda x: tst.chi2.logpdf(x, 3.0), lambda x: st.chi2.logpdf(x, 3.0)),
]


@pytest.mark.parametrize("name,fn,ref", STATS, ids=[c[0] for c in STATS])
def test_stats_continuous(name, fn, ref):
    np.testing.assert_allclose(fn(R), ref(R), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(T.jit(fn)(R), ref(R), rtol=1e-10, atol=1e-12)


def test_stats_discrete_and_multivariate():
    k = np.array([0.0, 1.0, 2.0, 5.0, 7.0, 2.5, -1.0])
    np.testing.assert_allclose(tst.poisson.logpmf(k, 3.2), st.poisson.logpmf(k, 3.2))
    np.testing.assert_allclose(tst.poisson.cdf(k[:5], 3.2), st.poisson.cdf(k[:5], 3.2))
    np.testing.assert_allclose(tst.binom.logpmf(k, 6, 0.3), st.binom.logpmf(k, 6, 0.3))
    np.testing.assert_allclose(tst.bernoulli.pmf(np.array([0.0, 1.0, 2.0]), 0.3),
                               st.bernoulli.pmf([0, 1, 2], 0.3))
    np.testing.assert_allclose(tst.geom.logpmf(k, 0.25), st.geom.logpmf(k, 0.25))
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    x = rng.normal(size=(5, 3))
    mean = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(tst.multivariate_normal.logpdf(x, mean, cov),
                               st.multivariate_normal.logpdf(x, mean, cov))
    np.testing.assert_allclose(T.jit(tst.multivariate_normal.logpdf)(x, mean, cov),
                               st.multivariate_normal.logpdf(x, mean, cov))
    alpha = np.array([1.5, 2.0, 0.7])
    p = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(tst.dirichlet.logpdf(p, alpha), st.dirichlet.logpdf(p, alpha))
    check_grads(lambda m, c: tst.multivariate_normal.logpdf(x, m, c), [mean, cov], order=1)
    check_grads(lambda a: tst.dirichlet.logpdf(p, a), [alpha], order=2)


def test_stats_grad_in_every_argument():
    check_grads(lambda x, mu, s: tst.norm.logpdf(x, mu, s),
                [np.array([0.3, -1.0]), np.array([0.1, 0.2]), np.array([1.5, 0.7])], order=2)
    check_grads(lambda x, df: tst.t.logpdf(x, df), [np.array([0.3, -1.0]), np.array([2.5, 4.0])],
                order=2)
    check_grads(lambda x, a: tst.gamma.logpdf(x, a), [np.array([0.3, 2.0]), np.array([2.5, 1.2])],
                order=2)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_signal_convolve_correlate(mode):
    rng = np.random.default_rng(2)
    a1, v1 = rng.normal(size=9), rng.normal(size=4)
    a2, v2 = rng.normal(size=(6, 7)), rng.normal(size=(3, 2))
    for a, v in ((a1, v1), (a2, v2)):
        np.testing.assert_allclose(tss.convolve(a, v, mode), ss.convolve(a, v, mode))
        np.testing.assert_allclose(tss.correlate(a, v, mode), ss.correlate(a, v, mode))
        np.testing.assert_allclose(T.jit(lambda a, v: tss.convolve(a, v, mode))(a, v),
                                   ss.convolve(a, v, mode))
    check_grads(lambda a, v: tss.convolve(a, v, mode), [a2, v2], order=1)
