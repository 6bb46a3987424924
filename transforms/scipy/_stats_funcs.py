"""`scipy.stats` functions (part of `transforms.scipy.stats`): `rankdata`, `mode`, `sem`
and the `gaussian_kde` estimator. Built from sorts, comparisons and reductions, so they
batch and compile; `sem` and `gaussian_kde`'s densities differentiate."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import numpy as tnp
from ..core import get_aval
from ..lax import decompositions as D
from . import special as sp


def _float(x):
    x = tnp.asarray(x)
    return x if get_aval(x).dtype in (np.float32, np.float64) else tnp.astype(x, np.float64)


def rankdata(a, method="average", *, axis=None, nan_policy="propagate"):
    """Ranks from 1 along `axis` (of the flattened array when None), ties resolved by
    `method` 'average', 'min', 'max', 'dense' or 'ordinal', as
    `jax.scipy.stats.rankdata`: float64 for 'average' and for float input (so a nan can
    propagate to its lane under jit), integers for integer input otherwise.
    Batches and compiles (O(n²) comparisons per lane: meant for moderate n); piecewise
    constant."""
    if method not in ("average", "min", "max", "dense", "ordinal"):
        raise ValueError(f"rankdata: unknown method {method!r}")
    if nan_policy != "propagate":
        raise NotImplementedError("rankdata: only nan_policy='propagate' is supported")
    a = tnp.asarray(a)
    if axis is None:
        a, axis = tnp.ravel(a), -1
    x = tnp.moveaxis(a, axis, -1)
    xi, xj = x[..., :, None], x[..., None, :]
    less = tnp.sum(tnp.astype(tnp.less(xj, xi), np.int64), axis=-1)
    equal = tnp.sum(tnp.astype(tnp.equal(xj, xi), np.int64), axis=-1)
    if method == "min":
        r = less + 1
    elif method == "max":
        r = less + equal
    elif method == "average":
        r = tnp.astype(less, np.float64) + (tnp.astype(equal, np.float64) + 1) / 2
    elif method == "ordinal":
        n = get_aval(x).shape[-1]
        idx = np.arange(n)
        earlier_tie = tnp.logical_and(tnp.equal(xj, xi), idx[None, :] < idx[:, None])
        r = less + tnp.sum(tnp.astype(earlier_tie, np.int64), axis=-1) + 1
    else:
        # dense: the number of distinct values below, plus one; a value is counted once,
        # at its first occurrence
        n = get_aval(x).shape[-1]
        idx = np.arange(n)
        first = tnp.logical_not(tnp.any(tnp.logical_and(
            tnp.equal(xj, xi), idx[None, :] < idx[:, None]), axis=-1))
        below_first = tnp.logical_and(tnp.less(xj, xi), first[..., None, :])
        r = tnp.sum(tnp.astype(below_first, np.int64), axis=-1) + 1
    out = r
    if np.issubdtype(get_aval(x).dtype, np.floating):
        # a nan anywhere in a lane makes its ranks nan (float, as SciPy's)
        nan_any = tnp.any(tnp.isnan(x), axis=-1, keepdims=True)
        out = tnp.where(nan_any, np.nan, tnp.astype(out, np.float64))
    return tnp.moveaxis(out, -1, axis)


class ModeResult(NamedTuple):
    """`(mode, count)`, as `scipy.stats.mode`'s result."""
    mode: object
    count: object


def mode(a, axis=0, nan_policy="propagate", keepdims=False):
    """The most common value along `axis` (the smallest among ties) and its count, as
    `jax.scipy.stats.mode` (`axis=None` flattens). Batches and compiles (O(n²)
    comparisons); piecewise constant."""
    if nan_policy != "propagate":
        raise NotImplementedError("mode: only nan_policy='propagate' is supported")
    a = tnp.asarray(a)
    if axis is None:
        a, axis = tnp.ravel(a), 0
    x = tnp.moveaxis(a, axis, -1)
    counts = tnp.sum(tnp.astype(tnp.equal(x[..., :, None], x[..., None, :]), np.int64),
                     axis=-1)
    best = tnp.max(counts, axis=-1, keepdims=True)
    is_best = tnp.equal(counts, best)
    dt = get_aval(x).dtype
    big = np.finfo(dt).max if np.issubdtype(dt, np.floating) else np.iinfo(dt).max
    m = tnp.min(tnp.where(is_best, x, big), axis=-1)
    c = best[..., 0]
    if keepdims:
        m, c = tnp.expand_dims(m, axis), tnp.expand_dims(c, axis)
    return ModeResult(m, c)


def sem(a, axis=0, ddof=1, nan_policy="propagate", *, keepdims=False):
    """The standard error of the mean std(a, ddof)/√n along `axis` (`None` flattens), as
    `jax.scipy.stats.sem`. Differentiates, batches and compiles."""
    if nan_policy != "propagate":
        raise NotImplementedError("sem: only nan_policy='propagate' is supported")
    a = _float(a)
    if axis is None:
        a, axis = tnp.ravel(a), 0
    n = get_aval(a).shape[axis]
    return tnp.std(a, axis=axis, ddof=ddof, keepdims=keepdims) / math.sqrt(n)


class gaussian_kde:
    """Gaussian kernel density estimation, as `jax.scipy.stats.gaussian_kde`: `dataset`
    of shape (d, n) (or (n,) for d = 1), optional `weights`, and `bw_method` 'scott'
    (default), 'silverman', a scalar factor or a callable of the estimator. Methods
    `evaluate`/`__call__`/`pdf`, `logpdf`, `integrate_gaussian`, `integrate_box_1d`,
    `integrate_kde` and `resample(key, shape)`. The densities differentiate in the points
    and the data, batch and compile."""

    def __init__(self, dataset, bw_method=None, weights=None):
        data = _float(tnp.atleast_2d(tnp.asarray(dataset)))
        d, n = get_aval(data).shape
        if n < 2:
            raise ValueError("gaussian_kde: dataset should have multiple elements")
        self.dataset = data
        self.d, self.n = d, n
        if weights is None:
            w = tnp.full((n,), 1.0 / n, get_aval(data).dtype)
        else:
            w = _float(weights)
            if get_aval(w).shape != (n,):
                raise ValueError(f"gaussian_kde: weights must have shape ({n},), got "
                                 f"{get_aval(w).shape}")
            w = w / tnp.sum(w)
        self.weights = w
        self.neff = 1.0 / tnp.sum(w * w)
        if bw_method is None or bw_method == "scott":
            factor = self.neff ** (-1.0 / (d + 4))
        elif bw_method == "silverman":
            factor = (self.neff * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        elif callable(bw_method):
            factor = bw_method(self)
        elif isinstance(bw_method, str):
            raise ValueError(f"gaussian_kde: unknown bw_method {bw_method!r}")
        else:
            factor = bw_method
        self.factor = factor
        mean = tnp.sum(data * w, axis=1, keepdims=True)
        diff = data - mean
        # the weighted, unbiased covariance (NumPy's cov with aweights)
        data_cov = tnp.matmul(diff * w, tnp.transpose(diff)) / (1 - tnp.sum(w * w))
        self.covariance = data_cov * factor ** 2
        self.inv_cov = tnp.linalg.inv(self.covariance)
        self._chol = D.cholesky(self.covariance)

    def _points(self, points):
        p = _float(tnp.atleast_2d(tnp.asarray(points)))
        if get_aval(p).shape[0] != self.d:
            if get_aval(p).shape == (1, self.d):
                p = tnp.transpose(p)
            else:
                raise ValueError(f"gaussian_kde: points have dimension "
                                 f"{get_aval(p).shape[0]}, dataset has {self.d}")
        return p

    def logpdf(self, points):
        """log of the estimated density at `points` (shape (d, m) or (m,) for d = 1)."""
        p = self._points(points)
        diff = self.dataset[:, :, None] - p[:, None, :]             # (d, n, m)
        flat = tnp.reshape(diff, (self.d, -1))
        z = D.triangular_solve(self._chol, flat, left_side=True, lower=True)
        maha = tnp.reshape(tnp.sum(z * z, axis=0), (self.n, -1))
        log_norm = tnp.sum(tnp.log(tnp.diagonal(self._chol))) + 0.5 * self.d * \
            math.log(2 * math.pi)
        return sp.logsumexp(-0.5 * maha - log_norm, axis=0, b=self.weights[:, None])

    def evaluate(self, points):
        """The estimated density at `points`."""
        return tnp.exp(self.logpdf(points))

    __call__ = evaluate
    pdf = evaluate

    def integrate_gaussian(self, mean, cov):
        """∫ kde(x) N(x; mean, cov) dx."""
        mean = _float(tnp.atleast_1d(tnp.asarray(mean)))
        cov = _float(tnp.atleast_2d(tnp.asarray(cov)))
        total = self.covariance + cov
        L = D.cholesky(total)
        diff = self.dataset - mean[:, None]
        z = D.triangular_solve(L, diff, left_side=True, lower=True)
        e = tnp.exp(-0.5 * tnp.sum(z * z, axis=0))
        norm = tnp.exp(tnp.sum(tnp.log(tnp.diagonal(L)))) * (2 * math.pi) ** (self.d / 2)
        return tnp.sum(self.weights * e) / norm

    def integrate_box_1d(self, low, high):
        """The estimated probability of [low, high] (1-D data only)."""
        if self.d != 1:
            raise ValueError("gaussian_kde.integrate_box_1d: the data must be 1-D")
        sd = tnp.sqrt(self.covariance[0, 0])
        x = self.dataset[0]
        return tnp.sum(self.weights * (sp.ndtr((high - x) / sd) - sp.ndtr((low - x) / sd)))

    def integrate_kde(self, other):
        """∫ kde(x) other(x) dx for another `gaussian_kde` of the same dimension."""
        if other.d != self.d:
            raise ValueError("gaussian_kde.integrate_kde: dimensions differ")
        total = self.covariance + other.covariance
        L = D.cholesky(total)
        diff = self.dataset[:, :, None] - other.dataset[:, None, :]
        flat = tnp.reshape(diff, (self.d, -1))
        z = D.triangular_solve(L, flat, left_side=True, lower=True)
        e = tnp.reshape(tnp.exp(-0.5 * tnp.sum(z * z, axis=0)), (self.n, other.n))
        norm = tnp.exp(tnp.sum(tnp.log(tnp.diagonal(L)))) * (2 * math.pi) ** (self.d / 2)
        return tnp.sum(self.weights[:, None] * other.weights[None, :] * e) / norm

    def resample(self, key, shape=()):
        """Draws of shape (d, *shape) from the estimate: a data point chosen by weight plus
        Gaussian noise with the kernel covariance."""
        from .. import random
        shape = tuple(shape)
        k1, k2 = random.split(key)
        ind = random.choice(k1, self.n, shape=shape, p=self.weights)
        eps = random.normal(k2, (self.d,) + shape, get_aval(self.dataset).dtype)
        noise = tnp.tensordot(self._chol, eps, axes=1)
        return self.dataset[:, ind] + noise
