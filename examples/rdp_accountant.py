"""A Renyi-differential-privacy (RDP) accountant for DP-SGD: the subsampled Gaussian mechanism.

    eps = epsilon(q=batch / n, sigma=noise_multiplier, steps=T, delta=1e-5)

Model (Mironov 2017; Abadi et al. 2016; Mironov, Talwar & Zhang 2019): each step includes every
example independently with probability `q` (Poisson sampling), clips each example's gradient
to norm C, sums and adds N(0, (sigma C)^2) noise per coordinate. One step's privacy loss at
Renyi order alpha is the Renyi divergence D_alpha(mu_1 || mu_0) between

    mu_0 = N(0, sigma^2)      and      mu_1 = (1 - q) N(0, sigma^2) + q N(1, sigma^2)

(sensitivity 1 after scaling by C). For integer alpha >= 2 it has the closed form (expand
(1 - q + q * exp((2z - 1) / (2 sigma^2)))^alpha binomially and integrate each Gaussian term):

    A_alpha = sum_{k=0..alpha} C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2))
    rdp(alpha) = log(A_alpha) / (alpha - 1)

which this module evaluates in log space. RDP composes additively over steps (T * rdp(alpha)),
and an RDP bound converts to (epsilon, delta)-DP by (Canonne, Kamath & Steinke 2020, Prop. 12;
Balle et al. 2020)

    epsilon = min_alpha  T rdp(alpha) + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)

minimised over the integer orders 2..256 (fractional orders could tighten the bound slightly).
`epsilon(..., conversion="classic")` uses Mironov's original T rdp(alpha) + log(1/delta)/(alpha-1)
instead (always larger). With q = 1 the mechanism is the plain Gaussian one, rdp(alpha) =
alpha / (2 sigma^2).

Caveat: the examples shuffle the data and cut it into fixed batches, while the analysis assumes
Poisson sampling with rate q = batch / n - the usual approximation of DP-SGD implementations,
not a formal guarantee for shuffled batches.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp

DEFAULT_ORDERS = tuple(range(2, 257))

__all__ = ["rdp_subsampled_gaussian", "rdp_to_epsilon", "epsilon", "DEFAULT_ORDERS"]


def _check(q, sigma):
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"sampling rate q must be in [0, 1], got {q}")
    if not sigma > 0:
        raise ValueError(f"noise multiplier sigma must be > 0, got {sigma}")


def rdp_subsampled_gaussian(q: float, sigma: float, alpha: int) -> float:
    """RDP at integer order `alpha` >= 2 of ONE step of the Poisson-subsampled Gaussian
    mechanism with sampling rate `q` and noise multiplier `sigma` (closed form above)."""
    _check(q, sigma)
    if int(alpha) != alpha or alpha < 2:
        raise ValueError(f"order alpha must be an integer >= 2, got {alpha}")
    alpha = int(alpha)
    if q == 0:
        return 0.0
    if q == 1:
        return alpha / (2 * sigma**2)
    k = np.arange(alpha + 1, dtype=np.float64)
    log_binom = gammaln(alpha + 1) - gammaln(k + 1) - gammaln(alpha - k + 1)
    log_terms = (log_binom + (alpha - k) * math.log1p(-q) + k * math.log(q)
                 + (k * k - k) / (2 * sigma**2))
    return float(logsumexp(log_terms)) / (alpha - 1)


def rdp_to_epsilon(rdp, orders, delta: float, conversion: str = "improved") -> tuple[float, int]:
    """`(epsilon, best order)` of an RDP curve (`rdp[i]` at `orders[i]`, already composed over
    all steps) for the given `delta` (0 < delta < 1)."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    rdp, orders = np.asarray(rdp, np.float64), np.asarray(orders, np.float64)
    if conversion == "improved":
        eps = rdp + np.log1p(-1 / orders) - (math.log(delta) + np.log(orders)) / (orders - 1)
    elif conversion == "classic":
        eps = rdp + math.log(1 / delta) / (orders - 1)
    else:
        raise ValueError(f"conversion must be 'improved' or 'classic', got {conversion!r}")
    i = int(np.nanargmin(eps))
    return max(float(eps[i]), 0.0), int(orders[i])


def epsilon(q: float, sigma: float, steps: int, delta: float, orders=DEFAULT_ORDERS,
            conversion: str = "improved") -> float:
    """epsilon of `steps` DP-SGD steps with sampling rate `q` and noise multiplier `sigma`, at
    the given `delta`."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    rdp = [steps * rdp_subsampled_gaussian(q, sigma, a) for a in orders]
    return rdp_to_epsilon(rdp, orders, delta, conversion)[0]
