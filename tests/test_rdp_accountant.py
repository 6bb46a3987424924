"""The DP-SGD example's RDP accountant against a numerical integration of the Renyi divergence,
the Gaussian mechanism's closed form and the value Abadi et al. (2016) report."""
import importlib.util
import math
import os

import numpy as np
import pytest
from scipy import integrate, stats

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                    "rdp_accountant.py")
_spec = importlib.util.spec_from_file_location("_example_rdp_accountant", PATH)
rdp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rdp)


def renyi_by_quadrature(q, sigma, alpha):
    """D_alpha(mu_1 || mu_0) for mu_0 = N(0, s^2), mu_1 = (1-q) N(0, s^2) + q N(1, s^2), by
    integrating mu_1^alpha mu_0^(1-alpha) numerically (no closed form used)."""
    def integrand(z):
        # in log space: mu_0(z)^(1 - alpha) overflows in the tails
        l0 = stats.norm.logpdf(z, 0.0, sigma)
        l1 = np.logaddexp(math.log1p(-q) + l0, math.log(q) + stats.norm.logpdf(z, 1.0, sigma))
        return math.exp(alpha * l1 + (1 - alpha) * l0)
    # the integrand's mass sits near z ~ alpha / 2 for large alpha: integrate a wide window
    lo, hi = -12 * sigma - alpha, 12 * sigma + alpha
    value, err = integrate.quad(integrand, lo, hi, limit=400, epsabs=0, epsrel=1e-11)
    return math.log(value) / (alpha - 1)


@pytest.mark.parametrize("q,sigma,alpha", [(0.01, 1.0, 2), (0.01, 1.0, 8), (0.05, 1.1, 4),
                                           (0.2, 2.0, 16), (0.5, 0.8, 3), (0.004, 4.0, 32)])
def test_closed_form_matches_numerical_integration(q, sigma, alpha):
    assert rdp.rdp_subsampled_gaussian(q, sigma, alpha) == pytest.approx(
        renyi_by_quadrature(q, sigma, alpha), rel=1e-7, abs=1e-12)


def test_gaussian_mechanism_and_edge_cases():
    for sigma in (0.5, 1.0, 3.0):
        for alpha in (2, 5, 40):
            assert rdp.rdp_subsampled_gaussian(1.0, sigma, alpha) == alpha / (2 * sigma**2)
    assert rdp.rdp_subsampled_gaussian(0.0, 1.0, 4) == 0.0
    # subsampling amplifies privacy: increasing in q
    vals = [rdp.rdp_subsampled_gaussian(q, 1.0, 8) for q in (0.001, 0.01, 0.1, 0.5, 1.0)]
    assert all(a < b for a, b in zip(vals, vals[1:]))
    with pytest.raises(ValueError, match="alpha"):
        rdp.rdp_subsampled_gaussian(0.1, 1.0, 1.5)
    with pytest.raises(ValueError, match="q"):
        rdp.rdp_subsampled_gaussian(1.5, 1.0, 2)
    with pytest.raises(ValueError, match="delta"):
        rdp.epsilon(0.01, 1.0, 10, delta=0)


def test_epsilon_known_value_and_conversions():
    # Abadi et al. 2016, section 3.1: q = 0.01, sigma = 4, T = 10000, delta = 1e-5 -> the
    # moments accountant gives epsilon ~ 1.26 (the classic conversion)
    eps_classic = rdp.epsilon(0.01, 4.0, 10_000, 1e-5, conversion="classic")
    assert eps_classic == pytest.approx(1.26, abs=0.01)
    eps = rdp.epsilon(0.01, 4.0, 10_000, 1e-5)
    assert 0.9 < eps < eps_classic                     # the improved conversion is tighter
    # composition: more steps, more epsilon; more noise, less
    assert rdp.epsilon(0.01, 4.0, 20_000, 1e-5) > eps > rdp.epsilon(0.01, 8.0, 10_000, 1e-5)
    # the conversion is the minimum over orders of the formula, evaluated here independently
    orders = np.arange(2, 257)
    curve = [10_000 * rdp.rdp_subsampled_gaussian(0.01, 4.0, a) for a in orders]
    direct = min(c + math.log(1e5) / (a - 1) for c, a in zip(curve, orders))
    assert eps_classic == pytest.approx(direct, rel=1e-12)
