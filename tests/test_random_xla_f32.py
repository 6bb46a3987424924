"""The `xla_*_f32` primitives (transforms/xla_f32.py): XLA's float32 log/log1p/erf and JAX's
float32 erf_inv as one pointwise primitive each, so that the samplers trace to a few
equations. Their values must be the former `lax` compositions' (tests/_xla_f32_reference.py)
and JAX's to the bit, eagerly and under jit; derivatives are the plain functions'."""
import math
import os
import sys

import numpy as np
import pytest

import transforms as T
from transforms import lax, random
from transforms.xla_f32 import (erf_f32_numpy, erfinv_f32_numpy, log1p_f32_numpy,
                                log_f32_numpy, xla_erf_f32, xla_erfinv_f32, xla_log1p_f32,
                                xla_log_f32)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _xla_f32_reference as ref  # noqa: E402

F32 = np.float32
TINY = np.finfo(F32).tiny

# name -> (primitive wrapper, NumPy implementation, former composition, plain lax function,
#          its derivative in float64)
FUNCS = {
    "log": (xla_log_f32, log_f32_numpy, ref.log_f32, lax.log, lambda x: 1 / x),
    "log1p": (xla_log1p_f32, log1p_f32_numpy, ref.log1p_f32, lax.log1p, lambda x: 1 / (1 + x)),
    "erf": (xla_erf_f32, erf_f32_numpy, ref.erf_f32, lax.erf,
            lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
    "erfinv": (xla_erfinv_f32, erfinv_f32_numpy, ref.erfinv_f32, lax.erf_inv, None),
}

EDGES = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45,
                  3e-39, -3e-39, TINY, -TINY, 0.5, -0.5, 2.0, -2.0, 1e30, -1e30, 3.4e38,
                  0.41421354, 0.41421357, -0.41421354, -0.41421357, 3.832, 3.8321, -3.8321,
                  np.nextafter(F32(1), F32(0)), np.nextafter(F32(-1), F32(0)),
                  np.nextafter(F32(1), F32(2)), 0.9999, -0.9999, 0.993, 1e-7, -1e-7], F32)


def _inputs(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(F32)
    return np.concatenate([EDGES, bits, rng.uniform(-1, 1, n).astype(F32),
                           rng.uniform(-4, 4, n).astype(F32)])


def _assert_same_bits(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == F32 and got.shape == want.shape, what
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=what)
    # bits, so that -0.0 vs 0.0 and last-bit differences fail
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32),
                                  err_msg=what)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_eager_jit_and_former_composition_agree_bitwise(name):
    prim, numpy_fn, former, _, _ = FUNCS[name]
    x = _inputs()
    want = former(x)
    _assert_same_bits(numpy_fn(x), want, f"{name}: NumPy implementation vs former")
    _assert_same_bits(prim(x), want, f"{name}: eager primitive vs former")
    _assert_same_bits(T.jit(prim)(x), want, f"{name}: jit vs former")
    # 0-d and 2-d operands, and the value inside a larger fused program
    _assert_same_bits(T.jit(prim)(F32(0.25)), former(np.asarray([0.25], F32))[0], name)
    x2 = x[:600].reshape(20, 30)
    _assert_same_bits(T.jit(lambda v: prim(v) * F32(2.0))(x2), want[:600].reshape(20, 30)
                      * F32(2.0), f"{name}: fused")


def test_edge_values():
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, 1.0, -1.0, inf, -inf, nan, -0.5], F32)
    for f in (xla_log_f32, T.jit(xla_log_f32)):
        np.testing.assert_array_equal(f(x), np.array([-inf, -inf, 0, nan, inf, nan, nan, nan],
                                                     F32))
        # XLA's kernel clamps below the smallest normal: a denormal's log is log(tiny)
        np.testing.assert_array_equal(f(np.array([1e-45, 3e-39], F32)), f(np.full(2, TINY)))
        np.testing.assert_allclose(f(np.full(1, TINY)), [np.log(np.float64(TINY))], rtol=1e-7)
    for f in (xla_log1p_f32, T.jit(xla_log1p_f32)):
        np.testing.assert_array_equal(f(x)[[0, 3, 4, 5, 6]], np.array([0, -inf, inf, nan, nan],
                                                                        F32))
        assert np.signbit(f(x)[1])                                     # log1p(-0) = -0
    for f in (xla_erf_f32, T.jit(xla_erf_f32)):
        np.testing.assert_array_equal(f(x)[[0, 4, 5, 6]], np.array([0, 1, -1, nan], F32))
    for f in (xla_erfinv_f32, T.jit(xla_erfinv_f32)):
        got = f(np.array([0.0, 1.0, -1.0, 1.5, -2.0, nan, inf], F32))
        np.testing.assert_array_equal(got, np.array([0, inf, -inf, nan, nan, nan, nan], F32))


def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_platforms", "cpu")
    return jax


def test_jax_bitwise():
    jax = _jax()
    jnp = jax.numpy
    x = _inputs(4000, seed=3)
    # XLA flushes float32 denormals to zero (a known limit of ours): no denormal inputs, and
    # for erf_inv (~0.89 x near 0) none with a denormal result either
    x = x[(np.abs(x) >= TINY) | (x == 0) | ~np.isfinite(x)]
    u = x[(np.abs(x) <= 1) & ((np.abs(x) >= 4 * TINY) | (x == 0))]
    for name, jfn, inp in (("log", jnp.log, np.abs(x)), ("log1p", jnp.log1p, x),
                           ("erf", jax.lax.erf, x), ("erfinv", jax.lax.erf_inv, u)):
        want = np.asarray(jax.jit(jfn)(inp))
        prim = FUNCS[name][0]
        _assert_same_bits(prim(inp), want, f"{name} eager vs JAX")
        _assert_same_bits(T.jit(prim)(inp), want, f"{name} jit vs JAX")
    # derivatives: JAX's rules of the plain functions, on JAX's (= our) values
    x = np.array([0.3, -0.7, 0.05, 0.999, -0.9999], F32)
    for name, jfn in (("log1p", jnp.log1p), ("erf", jax.lax.erf), ("erfinv", jax.lax.erf_inv)):
        want = np.asarray(jax.grad(lambda v: jfn(v).sum())(x))
        np.testing.assert_allclose(T.grad(lambda v: FUNCS[name][0](v).sum())(x), want,
                                   rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_derivatives_are_the_plain_functions(name):
    prim, _, _, plain, deriv = FUNCS[name]
    x = np.array([0.3, 0.7, 1.9, 0.05, 0.999] if name != "erfinv"
                 else [0.3, -0.7, 0.05, 0.999, -0.9999], F32)
    g = T.grad(lambda v: prim(v).sum())(x)
    gj = T.jit(T.grad(lambda v: prim(v).sum()))(x)
    if name != "erfinv":
        # the same float32 expression as the plain function's rule: equal bits (jit's exp is
        # not NumPy's to the last bit: jit is compared with jit)
        np.testing.assert_array_equal(g, T.grad(lambda v: plain(v).sum())(x))
        np.testing.assert_array_equal(gj, T.jit(T.grad(lambda v: plain(v).sum()))(x))
    else:
        # the rule's y is JAX's approximation (as JAX's rule), lax.erf_inv's a more exact one
        np.testing.assert_allclose(g, T.grad(lambda v: plain(v).sum())(x), rtol=1e-4)
    np.testing.assert_allclose(gj, g, rtol=1e-6)
    x64 = x.astype(np.float64)
    if deriv is None:                          # erf_inv' = sqrt(pi)/2 exp(erfinv(x)^2)
        y = np.asarray(prim(x), np.float64)
        want = math.sqrt(math.pi) / 2 * np.exp(y * y)
    else:
        want = deriv(x64)
    np.testing.assert_allclose(g, want, rtol=2e-6)
    # forward mode, and a central finite difference of the float32 values themselves
    _, t = T.jvp(prim, (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, g)
    h = np.abs(x64) * 1e-3
    if name == "erfinv":                       # stay inside (-1, 1)
        h = np.minimum(h, (1 - np.abs(x64)) * 0.1)
    h = h.astype(F32)
    fd = (np.asarray(prim(x + h), np.float64) - np.asarray(prim(x - h), np.float64)) / (
        (x + h).astype(np.float64) - (x - h).astype(np.float64))
    # (erf_inv's float32 approximation near |x| = 1 is only that accurate in slope)
    np.testing.assert_allclose(g, fd, rtol=2e-3 if name != "erfinv" else 5e-3)
    # second derivatives exist (the rule is built from primitives that differentiate)
    g2 = T.grad(lambda v: T.grad(lambda w: prim(w).sum())(v).sum())(x)
    h2 = T.grad(lambda v: prim(v).sum())
    fd2 = (np.asarray(h2(x + h), np.float64) - np.asarray(h2(x - h), np.float64)) / (2 * h)
    np.testing.assert_allclose(g2, fd2, rtol=2e-2, atol=1e-3)


def test_vmap_is_pointwise():
    x = _inputs(300)[:600].reshape(20, 30)
    for name, (prim, numpy_fn, _, _, _) in FUNCS.items():
        want = numpy_fn(x)
        _assert_same_bits(T.vmap(prim)(x), want, name)
        _assert_same_bits(T.vmap(prim, in_axes=1, out_axes=1)(x), want, name)
        _assert_same_bits(T.jit(T.vmap(prim))(x), want, name)
        pts = np.linspace(0.1, 0.9, 8, dtype=F32)
        gv = T.vmap(T.grad(prim))(pts)
        np.testing.assert_array_equal(gv, T.grad(lambda v: prim(v).sum())(pts))
        assert np.all(np.isfinite(gv)) and np.all(gv > 0)


def test_bad_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match="xla_log_f32: argument x must be float32, got float64"):
        xla_log_f32(np.ones(3))
    with pytest.raises(TypeError, match="xla_erfinv_f32.*int32"):
        xla_erfinv_f32(np.ones(3, np.int32))


def _eqns(fn, *args):
    return T.make_jaxpr(fn)(*args).jaxpr.eqns


def test_normal_traces_to_a_few_equations():
    # random.normal(key, (64, 10)) was ~195 equations and ~460 generated lines when the
    # float32 erf_inv was a composition of lax operations; a bound that fails if it comes back
    k = random.key(0)
    eqns = _eqns(lambda k: random.normal(k, (64, 10)), k)
    names = [e.prim.name for e in eqns]
    assert len(eqns) <= 40, names
    assert names.count("xla_erfinv_f32") == 1 and names.count("fma32") == 1, names
    lines = T.jit(lambda k: random.normal(k, (64, 10))).lower(k).source.splitlines()
    assert len(lines) <= 200
    for fn, prim in ((lambda k: random.exponential(k, (5,)), "xla_log1p_f32"),
                     (lambda k: random.gumbel(k, (5,)), "xla_log_f32"),
                     (lambda k: random.truncated_normal(k, -1.0, 2.0, (5,)), "xla_erf_f32")):
        names = [e.prim.name for e in _eqns(fn, k)]
        assert prim in names and len(names) <= 60, names


def test_samplers_jit_equals_eager_and_former():
    k = random.key(7)
    lo = np.nextafter(F32(-1), F32(0))
    u = random.uniform(k, (2000,), F32, lo, 1.0)
    want = np.sqrt(F32(2.0)) * ref.erfinv_f32(np.asarray(u))
    _assert_same_bits(random.normal(k, (2000,)), want, "normal eager")
    _assert_same_bits(T.jit(lambda k: random.normal(k, (2000,)))(k), want, "normal jit")
    for f in (lambda k: random.exponential(k, (500,)), lambda k: random.gumbel(k, (500,)),
              lambda k: random.truncated_normal(k, -0.5, 3.0, (500,))):
        _assert_same_bits(T.jit(f)(k), f(k), "sampler jit vs eager")
