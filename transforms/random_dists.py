"""More distributions of `jax.random`, built on `transforms.random`'s uniform/normal draws with
JAX's key use, so their streams follow JAX's (see each docstring and `STREAM_NOTES`).

Bit-identical float32 samples need each step to round as XLA's CPU code does: `uniform`,
`normal`, `log`, `log1p`, `sqrt`, `+ - * /` are reproduced exactly (see `transforms.random`),
including multiply-adds that XLA fuses. `exp`, `tan`, `pow` are NumPy's here and XLA's there,
so samplers that use them agree with JAX to a few ulp rather than bit for bit.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import lax
from .core import Tracer, get_aval
from .lax._util import as_array

__all__ = ["laplace", "logistic", "cauchy", "rademacher", "lognormal", "pareto", "rayleigh",
           "maxwell", "double_sided_maxwell", "weibull_min", "geometric", "triangular", "wald",
           "multivariate_normal", "orthogonal", "gamma", "loggamma", "beta", "dirichlet",
           "chisquare", "f", "t", "generalized_normal", "ball", "poisson", "binomial",
           "multinomial", "clone", "key_impl", "key_dtype", "STREAM_NOTES"]

#: How each sampler's float32 stream compares with `jax.random`'s for the same key:
#: "exact" (bit for bit, tested), "ulp" (same draws, a few ulp apart: exp/tan/pow differ),
#: "distribution" (same distribution, different stream).
STREAM_NOTES = {
    "laplace": "exact", "logistic": "exact", "rayleigh": "exact", "geometric": "exact",
    "triangular": "exact", "rademacher": "exact", "wald": "exact", "cauchy": "ulp",
    "lognormal": "ulp", "t": "ulp",
    "pareto": "ulp", "weibull_min": "ulp", "maxwell": "ulp", "double_sided_maxwell": "ulp",
    "multivariate_normal": "ulp", "orthogonal": "ulp",
    "gamma": "ulp", "loggamma": "ulp", "beta": "ulp", "dirichlet": "ulp", "chisquare": "ulp",
    "f": "ulp", "generalized_normal": "ulp", "ball": "ulp",
    "poisson": "exact", "binomial": "exact", "multinomial": "exact",
}


def _R():
    from . import random as R
    return R


def _tnp():
    from . import numpy as tnp
    return tnp


def _prep(name, key, dtype, shape):
    R = _R()
    return R._check_key(name, key), R._float_dtype(dtype, name), R._shape(shape, name)


def _u(key, shape, dtype, lo, hi):
    R = _R()
    return R._uniform(key, shape, dtype, np.asarray(lo, dtype), np.asarray(hi, dtype))


def _log(x, dtype):
    return _R()._xla_log_f32(x) if dtype == np.float32 else lax.log(x)


def _log1p(x, dtype):
    return _R()._xla_log1p_f32(x) if dtype == np.float32 else lax.log1p(x)


def _fma(a, b, c, dtype):
    """`a * b + c` as XLA computes it for `dtype` (fused for float32)."""
    if dtype == np.float32:
        return _R()._fma32(a, b, c)
    return lax.add(lax.mul(a, b), c)


def _param(x, dtype, name, shape=None):
    x = as_array(x)
    if isinstance(x, Tracer):
        x = lax.convert_element_type(x, dtype)
    else:
        x = np.asarray(x, dtype)
    if shape is not None:
        _R()._check_broadcastable(name, shape, get_aval(x).shape)
        x = _R()._bcast(x, shape)
    return x


def _bshape(shape, name, *params):
    shapes = [get_aval(as_array(p)).shape for p in params]
    if shape is None:
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    shape = _R()._shape(shape, name)
    _R()._check_broadcastable(name, shape, *shapes)
    return shape


# ---------------------------------------------------------------------------------------------
# from one uniform or normal draw
# ---------------------------------------------------------------------------------------------

def laplace(key, shape=(), dtype=np.float32):
    """Standard Laplace samples: `sign(u) * log1p(-|u|)`, `u` uniform in (-1, 1)."""
    key, dtype, shape = _prep("laplace", key, dtype, shape)
    u = _u(key, shape, dtype, -1.0 + np.finfo(dtype).epsneg, 1.0)
    return lax.mul(lax.sign(u), _log1p(lax.neg(lax.abs(u)), dtype))


def logistic(key, shape=(), dtype=np.float32):
    """Standard logistic samples: `log(u) - log1p(-u)`, `u` uniform in [tiny, 1)."""
    key, dtype, shape = _prep("logistic", key, dtype, shape)
    x = _u(key, shape, dtype, np.finfo(dtype).tiny, 1.0)
    return lax.sub(_log(x, dtype), _log1p(lax.neg(x), dtype))


def cauchy(key, shape=(), dtype=np.float32):
    """Standard Cauchy samples: `tan(pi * (u - 1/2))`, `u` uniform in [eps, 1)."""
    key, dtype, shape = _prep("cauchy", key, dtype, shape)
    u = _u(key, shape, dtype, np.finfo(dtype).eps, 1.0)
    return lax.tan(lax.mul(np.asarray(np.pi, dtype), lax.sub(u, np.asarray(0.5, dtype))))


def rademacher(key, shape=(), dtype=np.int32):
    """Random signs -1 / +1 with equal probability (`2 * bernoulli(key, 0.5) - 1`)."""
    R = _R()
    key = R._check_key("rademacher", key)
    shape = R._shape(shape, "rademacher")
    b = lax.convert_element_type(R.bernoulli(key, 0.5, shape), np.dtype(dtype))
    return lax.sub(lax.mul(np.asarray(2, dtype), b), np.asarray(1, dtype))


def lognormal(key, sigma=np.float32(1), shape=None, dtype=np.float32):
    """Log-normal samples `exp(sigma * normal)`; `shape` defaults to `sigma`'s."""
    R = _R()
    key, dtype = R._check_key("lognormal", key), R._float_dtype(dtype, "lognormal")
    shape = _bshape(shape, "lognormal", sigma)
    sigma = _param(sigma, dtype, "lognormal")
    return lax.exp(lax.mul(R._normal(key, shape, dtype), _R()._bcast(sigma, shape)))


def pareto(key, b, shape=None, dtype=np.float32):
    """Pareto samples `exp(e / b)`, `e` standard exponential; `shape` defaults to `b`'s."""
    R = _R()
    key, dtype = R._check_key("pareto", key), R._float_dtype(dtype, "pareto")
    shape = _bshape(shape, "pareto", b)
    b = _param(b, dtype, "pareto", shape)
    e = R.exponential(key, shape, dtype)
    return lax.exp(lax.div(e, b))


def rayleigh(key, scale, shape=None, dtype=np.float32):
    """Rayleigh samples `scale * sqrt(-2 log u)`; `shape` defaults to `scale`'s."""
    R = _R()
    key, dtype = R._check_key("rayleigh", key), R._float_dtype(dtype, "rayleigh")
    shape = _bshape(shape, "rayleigh", scale)
    scale = _param(scale, dtype, "rayleigh", shape)
    u = _u(key, shape, dtype, 0.0, 1.0)
    return lax.mul(scale, lax.sqrt(lax.mul(_log(u, dtype), np.asarray(-2, dtype))))


def maxwell(key, shape=(), dtype=np.float32):
    """Maxwell samples: the norm of 3 standard normal draws (the last axis of a
    `shape + (3,)` normal array)."""
    key, dtype, shape = _prep("maxwell", key, dtype, shape)
    z = _R()._normal(key, shape + (3,), dtype)
    nd = len(shape)
    parts = [lax.squeeze(lax.slice_in_dim(z, i, i + 1, axis=nd), (nd,)) for i in range(3)]
    acc = lax.mul(parts[0], parts[0])
    for q in parts[1:]:     # XLA's vectorised row reduction may round differently: 1 ulp
        acc = _fma(q, q, acc, dtype)
    return lax.sqrt(acc)


def double_sided_maxwell(key, loc, scale, shape=(), dtype=np.float32):
    """`loc + scale * sign * maxwell` with a random sign; the result has shape
    `shape + broadcast(loc, scale)` (as JAX: `shape` is prepended)."""
    R = _R()
    key, dtype = R._check_key("double_sided_maxwell", key), R._float_dtype(dtype, "double_sided_maxwell")
    loc, scale = _param(loc, dtype, "double_sided_maxwell"), _param(scale, dtype, "double_sided_maxwell")
    pshape = tuple(np.broadcast_shapes(get_aval(loc).shape, get_aval(scale).shape))
    shape = tuple(R._shape(shape, "double_sided_maxwell") or ()) or pshape
    shape = shape + pshape
    k1, k2 = R._split2(key)
    m = maxwell(k1, shape, dtype)
    s = rademacher(k2, shape, dtype)
    return _fma(lax.mul(s, m), R._bcast(scale, shape), R._bcast(loc, shape), dtype)


def weibull_min(key, scale, concentration, shape=(), dtype=np.float32):
    """Weibull samples `scale * (-log1p(-u)) ** (1 / concentration)`."""
    R = _R()
    key, dtype = R._check_key("weibull_min", key), R._float_dtype(dtype, "weibull_min")
    shape = R._shape(shape, "weibull_min")
    u = _u(key, shape, dtype, 0.0, 1.0)
    c = _param(concentration, dtype, "weibull_min")
    s = _param(scale, dtype, "weibull_min")
    e = lax.neg(_log1p(lax.neg(u), dtype))
    out_shape = tuple(np.broadcast_shapes(shape, get_aval(c).shape, get_aval(s).shape))
    p = lax.pow(R._bcast(e, out_shape), R._bcast(lax.div(np.asarray(1, dtype), c), out_shape))
    return lax.mul(p, R._bcast(s, out_shape))


def geometric(key, p, shape=None, dtype=np.int32):
    """Number of Bernoulli(`p`) trials up to the first success (>= 1):
    `floor(log u / log1p(-p)) + 1`."""
    R = _R()
    key = R._check_key("geometric", key)
    weak = isinstance(p, (int, float))        # a Python scalar is weakly typed: float32
    p = as_array(p)
    pdt = get_aval(p).dtype
    fdt = pdt if (np.issubdtype(pdt, np.floating) and not weak) else np.dtype(np.float32)
    shape = _bshape(shape, "geometric", p)
    p = _param(p, fdt, "geometric")
    u = _u(key, shape, fdt, 0.0, 1.0)
    u = lax.select(lax.eq(u, np.asarray(0, fdt)), lax.full(shape, 1, fdt), u)
    lp = R._bcast(_log1p(lax.neg(p), fdt), shape)
    g = lax.add(lax.floor(lax.div(_log(u, fdt), lp)), np.asarray(1, fdt))
    return lax.convert_element_type(g, np.dtype(dtype))


def triangular(key, left, mode, right, shape=None, dtype=np.float32):
    """Triangular samples on [left, right] with peak at `mode` (inverse CDF of one uniform)."""
    R = _R()
    key, dtype = R._check_key("triangular", key), R._float_dtype(dtype, "triangular")
    shape = _bshape(shape, "triangular", left, mode, right)
    le, mo, ri = (_param(v, dtype, "triangular", shape) for v in (left, mode, right))
    fc = lax.div(lax.sub(mo, le), lax.sub(ri, le))
    u = _u(key, shape, dtype, 0.0, 1.0)
    span = lax.sub(ri, le)
    out1 = lax.add(le, lax.sqrt(lax.mul(lax.mul(u, span), lax.sub(mo, le))))
    out2 = lax.sub(ri, lax.sqrt(lax.mul(lax.mul(lax.sub(np.asarray(1, dtype), u), span),
                                        lax.sub(ri, mo))))
    return lax.select(lax.lt(u, fc), out1, out2)


def wald(key, mean, shape=None, dtype=np.float32):
    """Wald (inverse Gaussian) samples of the given `mean` (unit shape parameter), by
    Michael, Schucany and Haas' transformation of one normal and one uniform draw."""
    R = _R()
    key, dtype = R._check_key("wald", key), R._float_dtype(dtype, "wald")
    shape = _bshape(shape, "wald", mean)
    mu = _param(mean, dtype, "wald", shape)
    k1, k2 = R._split2(key)
    v = R._normal(k1, shape, dtype)
    z = _u(k2, shape, dtype, 0.0, 1.0)
    y = lax.integer_pow(v, 2)
    y_sq = lax.integer_pow(y, 2)
    mu_sq = lax.integer_pow(mu, 2)
    four = np.asarray(4, dtype)
    two = np.asarray(2, dtype)
    sqrt_term = lax.sqrt(_fma(lax.mul(four, mu), y, lax.mul(mu_sq, y_sq), dtype))
    x = _fma(lax.neg(lax.div(mu, two)), sqrt_term,
             lax.add(mu, lax.div(lax.mul(mu_sq, y), two)), dtype)
    return lax.select(lax.le(z, lax.div(mu, lax.add(mu, x))), x, lax.div(mu_sq, x))


def multivariate_normal(key, mean, cov, shape=None, dtype=np.float32, method="cholesky"):
    """Samples `mean + factor @ z` with `z` standard normal of shape `shape + (n,)` and
    `factor` the Cholesky factor of `cov` (or from its SVD / eigendecomposition with
    `method="svd"` / `"eigh"`); `shape` defaults to the broadcast batch shape."""
    R = _R()
    tnp = _tnp()
    key, dtype = R._check_key("multivariate_normal", key), R._float_dtype(dtype, "multivariate_normal")
    if method not in ("cholesky", "svd", "eigh"):
        raise ValueError(f"multivariate_normal: method must be 'cholesky', 'svd' or 'eigh', got "
                         f"{method!r}")
    mean, cov = _param(mean, dtype, "multivariate_normal"), _param(cov, dtype, "multivariate_normal")
    ms, cs = get_aval(mean).shape, get_aval(cov).shape
    if len(ms) < 1 or len(cs) < 2 or cs[-2:] != (ms[-1], ms[-1]):
        raise ValueError(f"multivariate_normal: need mean of shape (..., n) and cov of shape "
                         f"(..., n, n), got {ms} and {cs}")
    if shape is None:
        shape = tuple(np.broadcast_shapes(ms[:-1], cs[:-2]))
    else:
        shape = R._shape(shape, "multivariate_normal")
        R._check_broadcastable("multivariate_normal", shape, ms[:-1], cs[:-2])
    if method == "svd":
        u, s, _ = tnp.linalg.svd(cov)
        factor = u * tnp.sqrt(s[..., None, :])
    elif method == "eigh":
        w, v = tnp.linalg.eigh(cov)
        factor = v * tnp.sqrt(w[..., None, :])
    else:
        factor = tnp.linalg.cholesky(cov)
    z = R._normal(key, shape + ms[-1:], dtype)
    return mean + tnp.einsum("...ij,...j->...i", factor, z)


def orthogonal(key, n, shape=(), dtype=np.float32, m=None):
    """A Haar-random orthogonal `(n, m)` matrix (semi-orthogonal if `n != m`) per batch index
    of `shape`: the Q of a QR of a normal matrix, columns signed by R's diagonal."""
    R = _R()
    tnp = _tnp()
    key, dtype, shape = _prep("orthogonal", key, dtype, shape)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    z = R._normal(key, shape + (max(n, m), min(n, m)), dtype)
    q, r = tnp.linalg.qr(z)
    d = tnp.diagonal(r, axis1=-2, axis2=-1)
    x = q * tnp.expand_dims(tnp.sign(d), -2)
    return tnp.swapaxes(x, -1, -2) if n < m else x


def clone(key):
    """A copy of `key` for reuse (the identity: keys are plain arrays here)."""
    return key


def key_impl(keys):
    """The PRNG implementation of a key: always "threefry2x32"."""
    _R()._check_key("key_impl", keys) if get_aval(as_array(keys)).shape == (2,) else None
    return "threefry2x32"


def key_dtype(impl=None):
    """The dtype of key data: uint32 (a key is a `uint32[2]` array here, as JAX's raw keys)."""
    if impl not in (None, "threefry2x32", "threefry"):
        raise ValueError(f"unknown PRNG implementation {impl!r}; only 'threefry2x32' exists")
    return np.dtype(np.uint32)


# ---------------------------------------------------------------------------------------------
# gamma (Marsaglia and Tsang, "A simple method for generating gamma variables", 2000), one
# while_loop per sample as JAX, and the distributions built on it
# ---------------------------------------------------------------------------------------------

def _gamma_one(key, alpha, log_space):
    R = _R()
    dtype = get_aval(alpha).dtype
    c_ = (lambda v: np.asarray(v, dtype))
    zero, one = c_(0), c_(1)
    boost_mask = lax.ge(alpha, one)
    alpha_orig = alpha
    alpha = lax.select(boost_mask, alpha, lax.add(alpha, one))
    d = lax.sub(alpha, c_(1.0 / 3.0))
    # XLA rewrites x / sqrt(d) as x * rsqrt(d), rsqrt(d) being 1 / sqrt(d) rounded
    c = lax.mul(c_(1.0 / 3.0), lax.div(one, lax.sqrt(d)))

    def cond_fn(s):
        _, X, V, U = s
        # 1 - 0.0331 * X**2: the multiply feeding the subtraction is fused by XLA
        first = lax.ge(U, _fma(c_(-0.0331), lax.mul(X, X), one, dtype))
        inner = lax.add(lax.sub(one, V), _log(V, dtype))
        second = lax.ge(_log(U, dtype), _fma(d, inner, lax.mul(X, c_(0.5)), dtype))
        return lax.bitwise_and(first, second)

    def body_fn(s):
        k = s[0]
        ks = R.split(k, 3)
        k, xk, uk = ks[0], ks[1], ks[2]

        def next_x(kxv):
            kk = R.split(kxv[0], 2)
            x = R._normal(kk[1], (), dtype)
            return kk[0], x, _fma(x, c, one, dtype)

        _, x, v = lax.while_loop(lambda kxv: lax.le(kxv[2], zero), next_x,
                                 (xk, zero, c_(-1)))
        X = lax.mul(x, x)
        V = lax.mul(lax.mul(v, v), v)
        U = _u(uk, (), dtype, 0.0, 1.0)
        return k, X, V, U

    ks = R.split(key, 2)
    key, subkey = ks[0], ks[1]
    _, _, V, _ = lax.while_loop(cond_fn, body_fn, (key, zero, one, c_(2)))
    if log_space:
        e = R.exponential(subkey, (), dtype)
        log_samples = lax.neg(e)
        skip = lax.bitwise_or(boost_mask, lax.eq(log_samples, zero))
        base = lax.add(_log(d, dtype), _log(V, dtype))
        boosted = _fma(log_samples, lax.div(one, alpha_orig), base, dtype)
        return lax.select(skip, base, boosted)
    samples = lax.sub(one, _u(subkey, (), dtype, 0.0, 1.0))
    boost = lax.select(boost_mask, one, lax.pow(samples, lax.div(one, alpha_orig)))
    return lax.mul(lax.mul(d, V), boost)


def _gamma_flat(keys, alphas, log_space):
    """Samples for flat `keys` (n, 2) and `alphas` (n,): the per-sample rejection loop under
    `vmap` (JAX's `use_vmap` path for threefry keys: the same values as mapping it sample by
    sample, since a batched while loop freezes each finished sample)."""
    from .interpreters.batching import vmap
    return vmap(lambda k, a: _gamma_one(k, a, log_space))(keys, alphas)


def _gamma_sample(key, a, shape, dtype, log_space):
    R = _R()
    a = _param(a, dtype, "gamma", shape)
    n = math.prod(shape)
    keys = R.split(key, n)
    flat = lax.reshape(a, (n,))
    out = _gamma_flat(keys, lax.stop_gradient(flat), log_space)
    out = lax.reshape(out, shape)
    return _gamma_reparam(out, a, log_space)


def _gamma_reparam(sample, a, log_space):
    """`sample` with the implicit reparameterisation derivative with respect to `a` (as JAX):
    d sample / d a = -(dF/da) / (dF/dx) for F the gamma CDF; computed on the host (SciPy's
    regularised incomplete gamma, dF/da by a central difference in float64)."""
    from .custom_derivatives import custom_jvp
    if not isinstance(a, Tracer):
        return sample

    @custom_jvp
    def attach(s, al):
        return s

    @attach.defjvp
    def attach_jvp(primals, tangents):
        s, al = primals
        _, ta = tangents
        g = random_gamma_grad(al, lax.exp(s) if log_space else s)
        if log_space:
            g = lax.div(g, lax.exp(s))
        from .lax.elementwise import instantiate
        ta = instantiate(ta, al)
        return s, lax.mul(g, ta)

    return attach(lax.stop_gradient(sample), a)


def random_gamma_grad(a, x):
    """d x / d a for `x ~ Gamma(a, 1)` under implicit reparameterisation: `-(dF/da) /
    (dF/dx)`, F the regularised lower incomplete gamma function (as `jax.lax.random_gamma_grad`).
    Evaluated on the host with SciPy (a `pure_callback`); not itself differentiable."""
    from .callback import pure_callback
    from .api import ShapeDtypeStruct
    a, x = as_array(a), as_array(x)
    shape = tuple(np.broadcast_shapes(get_aval(a).shape, get_aval(x).shape))
    dt = get_aval(x).dtype
    a, x = _R()._bcast(a, shape), _R()._bcast(x, shape)
    return pure_callback(_gamma_grad_host, ShapeDtypeStruct(shape, dt), a, x,
                         vmap_method="expand_dims")


def _gamma_grad_host(a, x):
    from scipy import special
    a64 = np.asarray(a, np.float64)
    x64 = np.asarray(x, np.float64)
    h = np.maximum(1e-6 * a64, 1e-8)
    dfda = (special.gammainc(a64 + h, x64) - special.gammainc(np.maximum(a64 - h, 1e-300), x64)) \
        / (a64 + h - np.maximum(a64 - h, 1e-300))
    log_dfdx = (a64 - 1) * np.log(np.maximum(x64, 1e-300)) - x64 - special.gammaln(a64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        g = -dfda / np.exp(log_dfdx)
    g = np.where(np.isfinite(g), g, 0.0)
    return np.broadcast_to(g, np.broadcast_shapes(a64.shape, x64.shape)).astype(
        np.result_type(x))


def gamma(key, a, shape=None, dtype=np.float32):
    """Gamma(`a`, 1) samples by Marsaglia and Tsang's method (one rejection loop per sample,
    keys `split(key, size)` in row-major order, as JAX); differentiable with respect to `a`
    (implicit reparameterisation). `shape` defaults to `a`'s."""
    R = _R()
    key, dtype = R._check_key("gamma", key), R._float_dtype(dtype, "gamma")
    shape = _bshape(shape, "gamma", a)
    return _gamma_sample(key, a, shape, dtype, False)


def loggamma(key, a, shape=None, dtype=np.float32):
    """`log` of Gamma(`a`, 1) samples, computed in log space (accurate for small `a`)."""
    R = _R()
    key, dtype = R._check_key("loggamma", key), R._float_dtype(dtype, "loggamma")
    shape = _bshape(shape, "loggamma", a)
    return _gamma_sample(key, a, shape, dtype, True)


def beta(key, a, b, shape=None, dtype=np.float32):
    """Beta(`a`, `b`) samples `Ga / (Ga + Gb)` from two log-space gamma draws."""
    R = _R()
    key, dtype = R._check_key("beta", key), R._float_dtype(dtype, "beta")
    shape = _bshape(shape, "beta", a, b)
    ka, kb = R._split2(key)
    lga = loggamma(ka, _param(a, dtype, "beta", shape), shape, dtype)
    lgb = loggamma(kb, _param(b, dtype, "beta", shape), shape, dtype)
    mx = lax.max(lga, lgb)
    ga, gb = lax.exp(lax.sub(lga, mx)), lax.exp(lax.sub(lgb, mx))
    return lax.div(ga, lax.add(ga, gb))


def dirichlet(key, alpha, shape=None, dtype=np.float32):
    """Dirichlet(`alpha`) samples (along the last axis): the softmax of log-gamma draws.
    `shape` is the batch shape (default `alpha.shape[:-1]`)."""
    R = _R()
    key, dtype = R._check_key("dirichlet", key), R._float_dtype(dtype, "dirichlet")
    alpha = _param(alpha, dtype, "dirichlet")
    ash = get_aval(alpha).shape
    if len(ash) < 1:
        raise ValueError("dirichlet requires alpha.ndim >= 1, got alpha.ndim == 0")
    if shape is None:
        shape = ash[:-1]
    else:
        shape = R._shape(shape, "dirichlet")
        R._check_broadcastable("dirichlet", shape, ash[:-1])
    lg = loggamma(key, alpha, shape + ash[-1:], dtype)
    from .nn import softmax
    return softmax(lg, axis=-1)


def chisquare(key, df, shape=None, dtype=np.float32):
    """Chi-square(`df`) samples: `2 * exp(loggamma(df / 2))`."""
    R = _R()
    key, dtype = R._check_key("chisquare", key), R._float_dtype(dtype, "chisquare")
    shape = _bshape(shape, "chisquare", df)
    half = lax.div(_param(df, dtype, "chisquare", shape), np.asarray(2, dtype))
    return lax.mul(lax.exp(loggamma(key, half, shape, dtype)), np.asarray(2, dtype))


def f(key, dfnum, dfden, shape=None, dtype=np.float32):
    """F(`dfnum`, `dfden`) samples: the ratio of two scaled chi-square draws."""
    R = _R()
    key, dtype = R._check_key("f", key), R._float_dtype(dtype, "f")
    shape = _bshape(shape, "f", dfnum, dfden)
    dn, dd = _param(dfnum, dtype, "f", shape), _param(dfden, dtype, "f", shape)
    k_dfd, k_dfn = R._split2(key)
    num = lax.div(chisquare(k_dfn, dn, shape, dtype), dn)
    den = lax.div(chisquare(k_dfd, dd, shape, dtype), dd)
    return lax.div(num, den)


def t(key, df, shape=None, dtype=np.float32):
    """Student's t(`df`) samples: `normal * sqrt(df / 2 / gamma(df / 2))`."""
    R = _R()
    key, dtype = R._check_key("t", key), R._float_dtype(dtype, "t")
    shape = _bshape(shape, "t", df)
    df = _param(df, dtype, "t", shape)
    kn, kg = R._split2(key)
    n = R._normal(kn, shape, dtype)
    half = lax.div(df, np.asarray(2, dtype))
    g = gamma(kg, half, shape, dtype)
    return lax.mul(n, lax.sqrt(lax.div(half, g)))


def generalized_normal(key, p, shape=(), dtype=np.float32):
    """Generalized normal samples of power `p` (density proportional to `exp(-|x|^p)`):
    `sign * gamma(1/p) ** (1/p)`."""
    R = _R()
    key, dtype = R._check_key("generalized_normal", key), R._float_dtype(dtype, "generalized_normal")
    shape = R._shape(shape, "generalized_normal")
    p = _param(p, dtype, "generalized_normal")
    ks = R.split(key, 2)
    inv = lax.div(np.asarray(1, dtype), p)
    g = gamma(ks[0], R._bcast(inv, shape), shape, dtype)
    r = rademacher(ks[1], shape, dtype)
    return lax.mul(r, lax.pow(g, R._bcast(inv, shape)))


def ball(key, d, p=2, shape=(), dtype=np.float32):
    """Points uniform in the unit `p`-norm ball of dimension `d`: shape `shape + (d,)`."""
    R = _R()
    tnp = _tnp()
    key, dtype = R._check_key("ball", key), R._float_dtype(dtype, "ball")
    shape = R._shape(shape, "ball")
    d = operator.index(d)
    ks = R.split(key, 2)
    g = generalized_normal(ks[0], p, shape + (d,), dtype)
    e = R.exponential(ks[1], shape, dtype)
    pp = np.asarray(p, dtype)
    return g / ((tnp.sum(tnp.abs(g) ** pp, axis=-1) + e) ** (1 / pp))[..., None]


# ---------------------------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------------------------

def poisson(key, lam, shape=None, dtype=np.int32):
    """Poisson(`lam`) counts: Knuth's multiplication method for `lam < 10`, Hormann's
    transformed rejection (PTRS) above, as JAX and NumPy choose; whole-array while loops
    drawing from `key` as JAX's do (the counts equal JAX's)."""
    with np.errstate(all="ignore"):     # eagerly both samplers run on every element
        return _poisson(key, lam, shape, dtype)


def _poisson(key, lam, shape, dtype):
    R = _R()
    key = R._check_key("poisson", key)
    lam = as_array(lam)
    fdt = np.dtype(np.float32)
    shape = _bshape(shape, "poisson", lam)
    lam = _param(lam, fdt, "poisson", shape)
    dtype = np.dtype(dtype)
    use_knuth = lax.bitwise_or(lax.ne(lam, lam), lax.lt(lam, np.asarray(10, fdt)))
    lam_k = lax.select(use_knuth, lam, lax.full(shape, 0, fdt))
    lam_r = lax.select(use_knuth, lax.full(shape, 1e5, fdt), lam)
    # both branches draw from the same key (as JAX), each element keeps one of them
    res = lax.select(use_knuth, _poisson_knuth(key, lam_k, shape, fdt),
                     _poisson_rejection(key, lam_r, shape, fdt))
    res = lax.select(lax.eq(lam, np.asarray(0, fdt)), lax.full(shape, 0, fdt), res)
    return lax.convert_element_type(res, dtype)


def _poisson_knuth(key, lam, shape, fdt):
    R = _R()
    neg_lam = lax.neg(lam)

    def cond(c):
        _, _, _, lp = c
        return lax.reduce_or(lax.gt(lp, neg_lam), tuple(range(len(shape))))

    def body(c):
        i, k, rng, lp = c
        ks = R.split(rng, 2)
        k = lax.select(lax.gt(lp, neg_lam), lax.add(k, np.asarray(1, fdt)), k)
        u = _u(ks[1], shape, fdt, 0.0, 1.0)
        return i + 1, k, ks[0], lax.add(lp, _log(u, fdt))

    init = (np.asarray(0, np.int32), lax.full(shape, 0, fdt), key, lax.full(shape, 0, fdt))
    k = lax.while_loop(cond, body, init)[1]
    return lax.sub(k, np.asarray(1, fdt))


def _poisson_rejection(key, lam, shape, fdt):
    R = _R()
    c_ = (lambda v: np.asarray(v, fdt))
    log_lam = _log(lam, fdt)
    b = _fma(c_(2.53), lax.sqrt(lam), c_(0.931), fdt)
    a = _fma(c_(0.02483), b, c_(-0.059), fdt)
    inv_alpha = lax.add(c_(1.1239), lax.div(c_(1.1328), lax.sub(b, c_(3.4))))
    v_r = lax.sub(c_(0.9277), lax.div(c_(3.6224), lax.sub(b, c_(2))))

    def body(cst):
        i, k_out, accepted, rng = cst
        ks = R.split(rng, 3)
        u = lax.sub(_u(ks[1], shape, fdt, 0.0, 1.0), c_(0.5))
        v = _u(ks[2], shape, fdt, 0.0, 1.0)
        us = lax.sub(c_(0.5), lax.abs(u))
        k = lax.floor(lax.add(_fma(lax.add(lax.div(lax.mul(c_(2), a), us), b), u, lam, fdt),
                              c_(0.43)))
        s = _log(lax.div(lax.mul(v, inv_alpha), lax.add(lax.div(a, lax.mul(us, us)), b)), fdt)
        tt = lax.sub(_fma(k, log_lam, lax.neg(lam), fdt), lax.lgamma(lax.add(k, c_(1))))
        accept1 = lax.bitwise_and(lax.ge(us, c_(0.07)), lax.le(v, v_r))
        reject = lax.bitwise_or(lax.lt(k, c_(0)),
                                lax.bitwise_and(lax.lt(us, c_(0.013)), lax.gt(v, us)))
        accept = lax.bitwise_or(accept1, lax.bitwise_and(lax.bitwise_not(reject), lax.le(s, tt)))
        return i + 1, lax.select(accept, k, k_out), lax.bitwise_or(accepted, accept), ks[0]

    def cond(cst):
        return lax.reduce_or(lax.bitwise_not(cst[2]), tuple(range(len(shape))))

    init = (np.asarray(0, np.int32), lax.full(shape, -1, fdt), lax.full(shape, False, np.bool_),
            key)
    return lax.while_loop(cond, body, init)[1]


def binomial(key, n, p, shape=None, dtype=np.float32):
    """Binomial(`n`, `p`) counts, as floats of `dtype` (as JAX): for `n * min(p, 1-p) <= 10`
    by inversion (counting geometric waiting times), above by Hormann's BTRS rejection
    sampler, both as whole-array while loops drawing from `key` as JAX does (the counts equal
    JAX's). NaN for a NaN or negative `n` or an invalid `p`, inf for an infinite `n`."""
    with np.errstate(all="ignore"):     # eagerly both samplers run on every element
        return _binomial(key, n, p, shape, dtype)


def _binomial(key, n, p, shape, dtype):
    R = _R()
    tnp = _tnp()
    key, dtype = R._check_key("binomial", key), R._float_dtype(dtype, "binomial")
    shape = _bshape(shape, "binomial", n, p)
    weak = isinstance(p, (int, float))
    p = as_array(p)
    pdt = get_aval(p).dtype
    fdt = pdt if (np.issubdtype(pdt, np.floating) and not weak) else np.dtype(np.float32)
    prob = _param(p, fdt, "binomial", shape)
    count = _param(n, fdt, "binomial", shape)
    c_ = (lambda v: np.asarray(v, fdt))
    p_lt_half = lax.lt(prob, c_(0.5))
    q = lax.select(p_lt_half, prob, lax.sub(c_(1), prob))
    count_bad = lax.bitwise_or(lax.ne(count, count), lax.lt(count, c_(0)))
    count_inf = lax.eq(lax.abs(count), c_(np.inf))
    q_nan = lax.ne(q, q)
    q_neg = lax.lt(q, c_(0))
    q = lax.select(lax.bitwise_or(q_nan, q_neg), lax.full(shape, 0.01, fdt), q)
    use_inv = lax.bitwise_or(count_bad, lax.le(lax.mul(count, q), c_(10)))
    count = lax.floor(count)
    count_inv = lax.select(use_inv, count, lax.full(shape, 0, fdt))
    count_btrs = lax.select(use_inv, lax.full(shape, 1e4, fdt), count)
    q_btrs = lax.select(use_inv, lax.full(shape, 0.5, fdt), q)
    samples = lax.select(use_inv, _binomial_inversion(key, count_inv, q, shape, fdt),
                         _btrs(key, count_btrs, q_btrs, shape, fdt))
    invalid = lax.bitwise_or(lax.bitwise_or(q_neg, q_nan), count_bad)
    samples = lax.select(invalid, lax.full(shape, np.nan, fdt), samples)
    samples = lax.select(lax.bitwise_and(count_inf, lax.bitwise_not(invalid)),
                         lax.full(shape, np.inf, fdt), samples)
    keep = lax.bitwise_or(lax.bitwise_or(p_lt_half, count_bad), lax.bitwise_or(q_nan, count_inf))
    samples = lax.select(keep, samples, lax.sub(count, samples))
    del tnp
    return lax.convert_element_type(samples, dtype)


def _binomial_inversion(key, count, prob, shape, fdt):
    R = _R()
    # log1p(-0) must be -0 so that log(u) / it is +inf (no trials can succeed): keep the sign
    log1mp = lax.select(lax.eq(prob, np.asarray(0, fdt)), lax.full(shape, -0.0, fdt),
                        _log1p(lax.neg(prob), fdt))
    axes = tuple(range(len(shape)))

    def cond(c):
        return lax.reduce_or(lax.le(c[2], count), axes)

    def body(c):
        i, num, total, rng = c
        ks = R.split(rng, 2)
        sub, rng = ks[0], ks[1]
        num = lax.select(lax.le(total, count), lax.add(num, np.asarray(1, fdt)), num)
        u = _u(sub, shape, fdt, 0.0, 1.0)
        geom = lax.ceil(lax.div(_log(u, fdt), log1mp))
        return i + 1, num, lax.add(total, geom), rng

    zero = lax.full(shape, 0, fdt)
    k = lax.while_loop(cond, body, (np.asarray(0, np.int32), zero, zero, key))[1]
    return lax.sub(k, np.asarray(1, fdt))


_STIRLING_TAIL = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                  0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                  0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                  0.00833056343336287)


def _stirling_tail(k, fdt):
    """log(k!) minus its Stirling approximation: tabulated for k <= 9, series above."""
    from .lax.more import clamp
    c_ = (lambda v: np.asarray(v, fdt))
    small = lax.le(k, c_(9))
    kc = clamp(c_(0), k, c_(9))
    kp1 = lax.add(kc, c_(1))
    kp1sq = lax.mul(kp1, kp1)
    approx = lax.div(lax.sub(c_(1.0 / 12), lax.div(lax.sub(c_(1.0 / 360),
                                                           lax.div(c_(1.0 / 1260), kp1sq)),
                                                   kp1sq)), kp1)
    idx = lax.convert_element_type(lax.floor(kc), np.int32)
    table = np.asarray(_STIRLING_TAIL, fdt)
    from . import numpy as tnp
    return lax.select(small, tnp.take(table, idx), approx)


def _btrs(key, count, prob, shape, fdt):
    R = _R()
    c_ = (lambda v: np.asarray(v, fdt))
    one = c_(1)
    stddev = lax.sqrt(lax.mul(lax.mul(count, prob), lax.sub(one, prob)))
    b = _fma(c_(2.53), stddev, c_(1.15), fdt)
    a = _fma(c_(0.01), prob, _fma(c_(0.0248), b, c_(-0.0873), fdt), fdt)
    c = _fma(count, prob, c_(0.5), fdt)
    v_r = lax.sub(c_(0.92), lax.div(c_(4.2), b))
    r = lax.div(prob, lax.sub(one, prob))
    alpha = lax.mul(lax.add(c_(2.83), lax.div(c_(5.1), b)), stddev)
    m = lax.floor(lax.mul(lax.add(count, one), prob))
    axes = tuple(range(len(shape)))
    log = (lambda v: _log(v, fdt))

    def body(cst):
        i, k_out, accepted, rng = cst
        ks = R.split(rng, 3)
        rng = ks[0]
        u = lax.sub(_u(ks[1], shape, fdt, 0.0, 1.0), c_(0.5))
        v = _u(ks[2], shape, fdt, 0.0, 1.0)
        us = lax.sub(c_(0.5), lax.abs(u))
        accept1 = lax.bitwise_and(lax.ge(us, c_(0.07)), lax.le(v, v_r))
        k = lax.floor(_fma(lax.add(lax.div(lax.mul(c_(2), a), us), b), u, c, fdt))
        reject = lax.bitwise_or(lax.lt(k, c_(0)), lax.gt(k, count))
        lv = log(lax.div(lax.mul(v, alpha), lax.add(lax.div(a, lax.mul(us, us)), b)))
        cm1 = lax.add(lax.sub(count, m), one)
        ck1 = lax.add(lax.sub(count, k), one)
        t1 = lax.mul(lax.add(m, c_(0.5)), log(lax.div(lax.add(m, one), lax.mul(r, cm1))))
        t2 = _fma(lax.add(count, one), log(lax.div(cm1, ck1)), t1, fdt)
        t3 = _fma(lax.add(k, c_(0.5)), log(lax.div(lax.mul(r, ck1), lax.add(k, one))), t2, fdt)
        ub = lax.sub(lax.sub(lax.add(lax.add(t3, _stirling_tail(m, fdt)),
                                     _stirling_tail(lax.sub(count, m), fdt)),
                             _stirling_tail(k, fdt)),
                     _stirling_tail(lax.sub(count, k), fdt))
        accept = lax.bitwise_or(accept1, lax.bitwise_and(lax.bitwise_not(reject), lax.le(lv, ub)))
        return i + 1, lax.select(accept, k, k_out), lax.bitwise_or(accepted, accept), rng

    def cond(cst):
        return lax.reduce_or(lax.bitwise_not(cst[2]), axes)

    init = (np.asarray(0, np.int32), lax.full(shape, -1, fdt), lax.full(shape, False, np.bool_),
            key)
    return lax.while_loop(cond, body, init)[1]


def multinomial(key, n, p, *, shape=None, dtype=np.float32, unroll=1):
    """Multinomial counts of `n` trials over the outcomes on `p`'s last axis: one binomial per
    outcome on the remaining trials, along a `scan` (as JAX; the counts equal JAX's). Result shape `p.shape` (or
    `shape`, whose last entry is the number of outcomes)."""
    R = _R()
    tnp = _tnp()
    key, dtype = R._check_key("multinomial", key), R._float_dtype(dtype, "multinomial")
    p = _param(p, dtype, "multinomial")
    if shape is None:
        shape = get_aval(p).shape
    shape = R._shape(shape, "multinomial")
    n = _param(n, dtype, "multinomial", shape[:-1])
    p = R._bcast(p, shape)
    p = tnp.moveaxis(p, -1, 0)
    remaining = lax.cumsum(p, 0, reverse=True)
    ratios = p / tnp.where(remaining == 0, 1, remaining)
    keys = R.split(key, shape[-1])

    def step(rem, rk):
        ratio, k = rk
        cnt = binomial(k, rem, tnp.clip(ratio, 0, 1), dtype=dtype)
        return rem - cnt, cnt

    with np.errstate(all="ignore"):
        _, counts = lax.scan(step, n, (ratios, keys))
    return tnp.moveaxis(counts, 0, -1)
