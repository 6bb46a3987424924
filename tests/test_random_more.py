"""The other jax.random distributions: streams against JAX where it is importable (bit for bit
for the samplers `STREAM_NOTES` calls "exact", a few ulp for "ulp"), and moments / hand-made
checks without it."""
import numpy as np
import pytest

import transforms as T
from transforms import random as R

KEY = R.key(42)
S = (2000,)


# compared with JAX at its 32-bit defaults (see conftest.jax_x32)
pytestmark = pytest.mark.usefixtures("jax_x32")


def _jax():
    return pytest.importorskip("jax")


# name -> (our call, JAX call) with the same arguments
CASES = {
    "laplace": lambda m, k: m.laplace(k, S),
    "logistic": lambda m, k: m.logistic(k, S),
    "rayleigh": lambda m, k: m.rayleigh(k, 2.0, S),
    "geometric": lambda m, k: m.geometric(k, 0.3, S),
    "triangular": lambda m, k: m.triangular(k, 0.0, 0.3, 1.0, S),
    "rademacher": lambda m, k: m.rademacher(k, S),
    "wald": lambda m, k: m.wald(k, 1.5, S),
    "t": lambda m, k: m.t(k, 4.0, (200,)),
    "cauchy": lambda m, k: m.cauchy(k, S),
    "lognormal": lambda m, k: m.lognormal(k, 0.5, S),
    "pareto": lambda m, k: m.pareto(k, 3.0, S),
    "weibull_min": lambda m, k: m.weibull_min(k, 2.0, 1.5, S),
    "maxwell": lambda m, k: m.maxwell(k, S),
    "gamma": lambda m, k: m.gamma(k, np.float32([0.5, 1.0, 2.5, 10.0] * 25)),
    "loggamma": lambda m, k: m.loggamma(k, np.float32([0.5, 1.0, 2.5, 10.0] * 25)),
    "beta": lambda m, k: m.beta(k, 2.0, 3.0, (100,)),
    "chisquare": lambda m, k: m.chisquare(k, 3.0, (100,)),
    "dirichlet": lambda m, k: m.dirichlet(k, np.float32([1.0, 2.0, 3.0]), (30,)),
    "poisson": lambda m, k: m.poisson(k, np.float32([0.5, 3.0, 20.0, 100.0] * 100)),
    "binomial": lambda m, k: m.binomial(k, np.float32([5.0, 20.0, 1000.0, 20.0] * 100),
                                        np.float32([0.05, 0.3, 0.3, 0.8] * 100)),
    "multinomial": lambda m, k: m.multinomial(k, 10.0, np.float32([0.2, 0.3, 0.5]),
                                              shape=(200, 3)),
}
EXACT = [n for n in CASES if R.STREAM_NOTES.get(n) == "exact"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_streams_follow_jax(name):
    jax = _jax()
    gamma_family = name in ("gamma", "loggamma", "beta", "chisquare", "dirichlet", "t")
    for seed in ((42,) if gamma_family else (0, 42)):   # JAX compiles its gamma slowly
        ours = np.asarray(CASES[name](R, R.key(seed)))
        theirs = np.asarray(CASES[name](jax.random, jax.random.key(seed)))
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        if name in EXACT:
            np.testing.assert_array_equal(ours, theirs)
        else:   # same draws; exp / tan / pow round differently from XLA's: a few ulp
            np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=1e-6)


def test_multivariate_normal_and_orthogonal_follow_jax():
    jax = _jax()
    cov = np.array([[2.0, 0.5], [0.5, 1.0]], np.float32)
    mean = np.float32([1.0, -1.0])
    np.testing.assert_allclose(R.multivariate_normal(KEY, mean, cov, (50,)),
                               jax.random.multivariate_normal(jax.random.key(42), mean, cov,
                                                              (50,)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(R.orthogonal(KEY, 4, (2,)),
                               jax.random.orthogonal(jax.random.key(42), 4, (2,)), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# without JAX: distributions by their moments and defining properties
# ---------------------------------------------------------------------------------------------

N = (40000,)


def _moments(x, mean, var, tol=0.05):
    x = np.asarray(x, np.float64)
    assert abs(x.mean() - mean) < tol * max(1.0, abs(mean)), (x.mean(), mean)
    assert abs(x.var() - var) < 2 * tol * max(1.0, var), (x.var(), var)


def test_laplace_logistic_rayleigh_match_their_formulas():
    # the same uniform draw transformed: check the transformation by hand
    u = np.asarray(R.uniform(KEY, S, minval=-1 + np.finfo(np.float32).epsneg, maxval=1.0))
    np.testing.assert_allclose(R.laplace(KEY, S), np.sign(u) * np.log1p(-np.abs(u)), rtol=1e-6)
    v = np.asarray(R.uniform(KEY, S, minval=np.finfo(np.float32).tiny))
    np.testing.assert_allclose(R.logistic(KEY, S), np.log(v) - np.log1p(-v), rtol=1e-5,
                               atol=1e-6)
    w = np.asarray(R.uniform(KEY, S))
    np.testing.assert_allclose(R.rayleigh(KEY, 2.0, S), 2 * np.sqrt(-2 * np.log(w)), rtol=1e-6)


def test_moments_of_continuous_distributions():
    k = R.key(7)
    _moments(R.laplace(k, N), 0.0, 2.0)
    _moments(R.logistic(k, N), 0.0, np.pi ** 2 / 3)
    _moments(R.rayleigh(k, 2.0, N), 2 * np.sqrt(np.pi / 2), (4 - np.pi) / 2 * 4)
    _moments(R.maxwell(k, N), 2 * np.sqrt(2 / np.pi), 3 - 8 / np.pi)
    _moments(R.lognormal(k, 0.5, N), np.exp(0.125), (np.exp(0.25) - 1) * np.exp(0.25))
    _moments(R.pareto(k, 5.0, N), 5 / 4, 5 / (16 * 3))
    _moments(R.weibull_min(k, 1.0, 1.0, N), 1.0, 1.0)
    _moments(R.triangular(k, 0.0, 0.3, 1.0, N), 1.3 / 3, (1 + 0.09 - 0.3) / 18)
    _moments(R.wald(k, 1.5, N), 1.5, 1.5 ** 3)
    _moments(R.double_sided_maxwell(k, 1.0, 2.0, N), 1.0, 4 * 3)
    c = np.asarray(R.cauchy(k, N))
    assert abs(np.median(c)) < 0.05 and abs(np.median(np.abs(c)) - 1) < 0.05


def test_moments_of_gamma_family():
    k, n = R.key(7), (5000,)        # a rejection loop per sample: fewer draws, looser bounds
    _moments(R.gamma(k, 2.5, n), 2.5, 2.5, tol=0.08)
    _moments(R.gamma(k, 0.5, n), 0.5, 0.5, tol=0.08)
    _moments(R.beta(k, 2.0, 3.0, n), 0.4, 6 / (25 * 6), tol=0.08)
    _moments(R.chisquare(k, 3.0, n), 3.0, 6.0, tol=0.08)
    _moments(R.t(k, 5.0, n), 0.0, 5 / 3, tol=0.1)
    _moments(R.f(k, 5.0, 10.0, n), 10 / 8, 2 * 100 * 13 / (5 * 64 * 6), tol=0.15)
    _moments(R.generalized_normal(k, 2.0, n), 0.0, 0.5, tol=0.08)
    _moments(np.exp(R.loggamma(k, 3.0, n)), 3.0, 3.0, tol=0.08)


def test_gamma_ks_statistic():
    from math import gamma as G
    x = np.sort(np.asarray(R.gamma(R.key(3), 2.0, (5000,)), np.float64))
    cdf = 1 - np.exp(-x) * (1 + x)            # Gamma(2, 1)
    ks = np.max(np.abs(cdf - np.arange(1, x.size + 1) / x.size))
    assert ks < 0.025 and G(2.0) == 1.0


def test_discrete_distributions():
    k = R.key(11)
    g = np.asarray(R.geometric(k, 0.3, N))
    assert g.dtype == np.int32 and g.min() >= 1
    _moments(g, 1 / 0.3, 0.7 / 0.09)
    r = np.asarray(R.rademacher(k, N))
    assert set(np.unique(r)) == {-1, 1} and abs(r.mean()) < 0.02
    with np.errstate(all="raise"):      # the branch not taken must not warn
        p = np.asarray(R.poisson(k, 3.0, N))
    assert p.dtype == np.int32
    _moments(p, 3.0, 3.0)
    _moments(R.poisson(k, 40.0, N), 40.0, 40.0, tol=0.02)
    lam = np.float32([0.0, 0.5, 20.0])
    assert np.asarray(R.poisson(k, lam, (100, 3)))[:, 0].max() == 0
    edge = np.asarray(R.binomial(k, np.float32([10.0, -1.0, np.inf, 4.0]),
                                 np.float32([1.0, 0.5, 0.5, 0.0])))
    assert edge[0] == 10 and np.isnan(edge[1]) and edge[2] == np.inf and edge[3] == 0
    b = np.asarray(R.binomial(k, 20.0, 0.3, N))
    assert b.min() >= 0 and b.max() <= 20 and np.all(b == np.round(b))
    _moments(b, 6.0, 4.2)
    _moments(R.binomial(k, 20.0, 0.8, N), 16.0, 3.2)
    m = np.asarray(R.multinomial(k, 10.0, np.float32([0.2, 0.3, 0.5]), shape=(5000, 3)))
    np.testing.assert_array_equal(m.sum(-1), 10.0)
    np.testing.assert_allclose(m.mean(0), [2.0, 3.0, 5.0], atol=0.1)


def test_multivariate_dirichlet_orthogonal_ball():
    k = R.key(5)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = np.asarray(R.multivariate_normal(k, np.zeros(2), cov, (20000,), dtype=np.float64,
                                         method="cholesky"), np.float64)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.06)
    for method in ("svd", "eigh"):
        y = np.asarray(R.multivariate_normal(k, np.ones(2), cov, (20000,), dtype=np.float64,
                                             method=method))
        np.testing.assert_allclose(np.cov(y.T), cov, atol=0.06)
    d = np.asarray(R.dirichlet(k, np.float32([1.0, 2.0, 3.0]), (5000,)))
    np.testing.assert_allclose(d.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(d.mean(0), [1 / 6, 2 / 6, 3 / 6], atol=0.01)
    q = np.asarray(R.orthogonal(k, 5, (3,), dtype=np.float64))
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(5), (3, 5, 5)),
                               atol=1e-10)
    q2 = np.asarray(R.orthogonal(k, 2, (), dtype=np.float64, m=4))
    assert q2.shape == (2, 4)
    np.testing.assert_allclose(q2 @ q2.T, np.eye(2), atol=1e-10)
    pts = np.asarray(R.ball(k, 3, 2, (5000,)))
    r = np.linalg.norm(pts, axis=-1)
    assert r.max() <= 1.0 and abs(np.mean(r ** 3) - 0.5) < 0.03   # uniform in the ball


def test_samplers_under_jit_and_vmap():
    f = T.jit(lambda k: (R.laplace(k, (5,)), R.wald(k, 1.5, (5,)), R.geometric(k, 0.3, (5,))))
    for a, b in zip(f(KEY), (R.laplace(KEY, (5,)), R.wald(KEY, 1.5, (5,)),
                            R.geometric(KEY, 0.3, (5,)))):
        np.testing.assert_array_equal(a, b)
    keys = R.split(KEY, 3)
    batched = T.vmap(lambda k: R.logistic(k, (4,)))(keys)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], R.logistic(keys[i], (4,)))
    gb = T.vmap(lambda k: R.gamma(k, 2.0, (4,)))(keys)
    for i in range(3):
        np.testing.assert_array_equal(gb[i], R.gamma(keys[i], 2.0, (4,)))


def test_gamma_is_differentiable_in_its_shape_parameter():
    # implicit reparameterisation: the sample moves with `a` at a fixed CDF level u = F(x; a),
    # so dx/da is the derivative of the quantile function x(a) = F^-1(u; a)
    special = pytest.importorskip("scipy.special")
    k = R.key(9)
    a = 2.5
    x = float(R.gamma(k, a, (), dtype=np.float64))
    g = float(T.grad(lambda a: R.gamma(k, a, (), dtype=np.float64))(np.float64(a)))
    u = special.gammainc(a, x)
    h = 1e-6
    fd = (special.gammaincinv(a + h, u) - special.gammaincinv(a - h, u)) / (2 * h)
    assert abs(g - fd) < 1e-5 * max(1.0, abs(fd))
    # and E[d sample/da] = d E[sample]/da = 1
    ga = T.grad(lambda a: R.gamma(R.key(1), a, (10000,)).mean())(np.float32(3.0))
    assert abs(float(ga) - 1.0) < 0.04


def test_gamma_gradient_matches_jax():
    jax = _jax()
    ours = T.grad(lambda a: R.gamma(KEY, a, (5,)).sum())(np.float32(2.0))
    theirs = jax.grad(lambda a: jax.random.gamma(jax.random.key(42), a, (5,)).sum())(2.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_key_helpers_and_errors():
    assert R.key_impl(KEY) == "threefry2x32" and R.key_dtype() == np.uint32
    np.testing.assert_array_equal(R.clone(KEY), KEY)
    with pytest.raises(ValueError, match="broadcast"):
        R.rayleigh(KEY, np.ones(3), (2,))
    with pytest.raises(TypeError, match="floating"):
        R.laplace(KEY, (2,), dtype=np.int32)
    with pytest.raises(ValueError, match="alpha.ndim"):
        R.dirichlet(KEY, 1.0)
