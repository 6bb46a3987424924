"""More jax.lax names (transforms/lax/more.py, collectives_more.py): values against NumPy and
hand-computed results, under jit / vmap / grad, and against JAX when it is importable."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

X = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])


# compared with JAX at its 32-bit defaults (see conftest.jax_x32)
pytestmark = pytest.mark.usefixtures("jax_x32")


def _fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def test_cumulative_extrema_and_logsumexp():
    np.testing.assert_array_equal(lax.cummax(X), np.maximum.accumulate(X))
    np.testing.assert_array_equal(lax.cummin(X), np.minimum.accumulate(X))
    np.testing.assert_array_equal(lax.cummax(X, reverse=True),
                                  np.maximum.accumulate(X[::-1])[::-1])
    np.testing.assert_allclose(lax.cumlogsumexp(X), np.logaddexp.accumulate(X), rtol=1e-12)
    m = np.arange(12.0).reshape(3, 4)[::-1]
    np.testing.assert_array_equal(T.jit(lambda a: lax.cummin(a, axis=0))(m),
                                  np.minimum.accumulate(m, axis=0))
    w = np.linspace(-1, 1, 8)
    g = T.grad(lambda x: tnp.sum(lax.cumlogsumexp(x) * w))(X)
    np.testing.assert_allclose(g, _fd(lambda x: np.sum(np.logaddexp.accumulate(x) * w), X),
                               rtol=1e-6)


def test_clamp_square_reciprocal_acosh():
    np.testing.assert_array_equal(lax.clamp(2.0, X, 5.0), np.clip(X, 2, 5))
    lo, hi = np.zeros(8), np.full(8, 4.0)
    np.testing.assert_array_equal(T.jit(lax.clamp)(lo, X, hi), np.clip(X, 0, 4))
    g = T.grad(lambda x: tnp.sum(lax.clamp(2.0, x, 5.0)))(X)
    np.testing.assert_array_equal(g, ((X > 2) & (X < 5)).astype(float))
    glo = T.grad(lambda m: tnp.sum(lax.clamp(m, X, 5.0)))(2.0)
    assert float(glo) == 2.0     # the two 1s below it; the tie at 2 gets nothing
    with pytest.raises(TypeError, match="scalar"):
        lax.clamp(np.zeros(3), X, 1.0)
    np.testing.assert_array_equal(lax.square(X), X * X)
    np.testing.assert_allclose(lax.reciprocal(X), 1 / X)
    np.testing.assert_allclose(lax.acosh(X), np.arccosh(X), rtol=1e-14)
    np.testing.assert_allclose(T.grad(lambda x: lax.acosh(x))(3.0), 1 / np.sqrt(8), rtol=1e-12)


def test_bit_operations():
    v = np.array([0, 1, 7, 255, -1, -2 ** 31, 2 ** 31 - 1], np.int32)
    want_pop = [bin(int(x) & 0xFFFFFFFF).count("1") for x in v]
    np.testing.assert_array_equal(lax.population_count(v), want_pop)
    np.testing.assert_array_equal(T.jit(lax.population_count)(v), want_pop)
    want_clz = [32 - (int(x) & 0xFFFFFFFF).bit_length() for x in v]
    np.testing.assert_array_equal(lax.clz(v), want_clz)
    u8 = np.array([0, 1, 128, 200], np.uint8)
    np.testing.assert_array_equal(lax.clz(u8), [8, 7, 0, 0])
    np.testing.assert_array_equal(lax.population_count(u8), [0, 1, 1, 3])
    a = np.array([2 ** 31, 5, 2 ** 32 - 1], np.uint32)
    b = np.array([4, 7, 2 ** 32 - 1], np.uint32)
    np.testing.assert_array_equal(lax.mulhi(a, b),
                                  [(int(x) * int(y)) >> 32 for x, y in zip(a, b)])
    s = np.array([-3, 5], np.int32)
    np.testing.assert_array_equal(lax.mulhi(s, np.array([2 ** 30, -7], np.int32)),
                                  [(-3 * 2 ** 30) >> 32, (5 * -7) >> 32])
    np.testing.assert_array_equal(lax.reduce_xor(np.arange(11), (0,)),
                                  np.bitwise_xor.reduce(np.arange(11)))


def test_nextafter_matches_numpy():
    for dt in (np.float32, np.float64):
        a = np.array([1, 0, -1, 2, 0, -0.0, np.inf, 5, np.nan], dt)
        b = np.array([2, -1, 0, 2, 1, 1, 0, np.inf, 1], dt)
        want = np.nextafter(a, b)
        np.testing.assert_array_equal(lax.nextafter(a, b), want)
        np.testing.assert_array_equal(T.jit(lax.nextafter)(a, b), want)


def test_reduce_precision_rounds_like_bfloat16_and_half():
    x = np.random.default_rng(0).normal(size=200).astype(np.float32) * 100
    x[:3] = [1e30, -1e-30, np.nan]
    half = lax.reduce_precision(x, 5, 10)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(half, x.astype(np.float16).astype(np.float32))
    # bfloat16: round to nearest even on the top 16 bits
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    want = np.where(np.isnan(x), x, rounded.view(np.float32))
    np.testing.assert_array_equal(lax.reduce_precision(x, 8, 7), want)
    np.testing.assert_array_equal(T.jit(lambda v: lax.reduce_precision(v, 8, 7))(x), want)


def test_shape_helpers():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(lax.broadcast(x, (4,)), np.broadcast_to(x, (4, 2, 3)))
    np.testing.assert_array_equal(lax.broadcasted_iota(np.int32, (2, 3), 1),
                                  np.broadcast_to(np.arange(3), (2, 3)))
    assert lax.broadcast_to_rank(x, 4).shape == (1, 1, 2, 3)
    assert lax.broadcast_shapes((2, 1), (1, 3)) == (2, 3)
    f = lax.full_like(x, 7, dtype=np.int32, shape=(4,))
    assert f.dtype == np.int32 and f.shape == (4,) and (f == 7).all()
    assert lax.empty((2, 2), np.float32).shape == (2, 2)
    assert lax.collapse(np.ones((2, 3, 4, 5)), 1, 3).shape == (2, 12, 5)
    parts = lax.split(np.arange(10.0), [3, 0, 7])
    assert [p.shape for p in parts] == [(3,), (0,), (7,)]
    np.testing.assert_array_equal(lax.tile(x, (2, 2)), np.tile(x, (2, 2)))
    np.testing.assert_array_equal(lax.stack([x, x + 1], axis=1), np.stack([x, x + 1], axis=1))
    us = lax.unstack(x, axis=1)
    assert len(us) == 3 and np.array_equal(us[2], x[:, 2])
    assert lax.dtype(1.0) == np.float64 and lax.dtype(np.float32(1)) == np.float32
    g = T.grad(lambda v: tnp.sum(lax.tile(v, (3,)) ** 2))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [6.0, 12.0])


def test_reduce_with_monoids_and_python_functions():
    m = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(lax.reduce(m, 0.0, lax.add, (1,)), m.sum(1))
    np.testing.assert_array_equal(lax.reduce(m, -np.inf, lax.max, (0,)), m.max(0))
    np.testing.assert_array_equal(lax.reduce(m, 10.0, lax.add, (0, 1)), m.sum() + 10)
    np.testing.assert_array_equal(lax.reduce(m, 1.0, lambda a, b: a * b, (0,)), m.prod(0))
    # a pytree reduction: (max, argmax) pairs
    def pick(a, b):
        take_b = b[0] > a[0]
        return tnp.where(take_b, b[0], a[0]), tnp.where(take_b, b[1], a[1])
    vals, idx = lax.reduce((X, np.arange(8)), (-np.inf, 0), pick, (0,))
    assert float(vals) == 9.0 and int(idx) == 5
    jv = T.jit(lambda v: lax.reduce(v, 0.0, lambda a, b: a + b, (0,)))(X)
    assert float(jv) == X.sum()


def test_indexing_and_products():
    x = np.arange(5.0)
    idx = np.array([[1], [3]])
    np.testing.assert_array_equal(lax.scatter_sub(x, idx, np.array([10.0, 20.0])),
                                  [0, -9, 2, -17, 4])
    np.testing.assert_array_equal(lax.scatter_apply(x, idx, lambda v: v * 100),
                                  [0, 100, 2, 300, 4])
    src = np.arange(24.0).reshape(2, 3, 4)
    ii = np.array([[0, 2], [1, 1]])
    np.testing.assert_array_equal(lax.index_take(src, ii, (0, 2)),
                                  np.stack([src[0, :, 2], src[1, :, 1]]))
    a = np.random.default_rng(1).normal(size=(3, 2, 4))
    b = np.random.default_rng(2).normal(size=(3, 4, 5))
    np.testing.assert_allclose(lax.batch_matmul(a, b), a @ b, rtol=1e-12)
    v, i = lax.approx_max_k(X, 3)
    np.testing.assert_array_equal(v, [9, 6, 5])
    np.testing.assert_array_equal(i, [5, 7, 4])
    m = np.array([[3.0, 1.0], [0.0, 5.0], [2.0, 4.0]])
    v, i = lax.approx_min_k(m, 2, reduction_dimension=0)
    np.testing.assert_array_equal(v, [[0, 1], [2, 4]])
    np.testing.assert_array_equal(i, [[1, 0], [2, 2]])
    out = lax.optimization_barrier((x, {"a": x + 1}))
    np.testing.assert_array_equal(out[1]["a"], x + 1)


def test_collectives_under_vmap_and_pmap():
    x = np.arange(12.0).reshape(3, 4)
    n = T.vmap(lambda v: lax.axis_size("i") + 0 * v[0], axis_name="i")(x)
    np.testing.assert_array_equal(n, [3, 3, 3])
    # psum_scatter: member i keeps entry i of the sum
    y = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(T.vmap(lambda v: lax.psum_scatter(v, "i"), axis_name="i")(y),
                                  y.sum(0))
    t = T.pmap(lambda v: lax.psum_scatter(v, "i", tiled=True), axis_name="i")(
        np.arange(18.0).reshape(3, 6))
    np.testing.assert_array_equal(t, np.arange(18.0).reshape(3, 6).sum(0).reshape(3, 2))
    # all_to_all untiled on a (n, n) block per member is a transpose across members
    z = np.arange(2 * 3 * 3.0).reshape(3, 3, 2)
    a2a = T.vmap(lambda v: lax.all_to_all(v, "i", 0, 0), axis_name="i")(z)
    np.testing.assert_array_equal(a2a, np.swapaxes(z, 0, 1))
    tiled = T.vmap(lambda v: lax.all_to_all(v, "i", 0, 1, tiled=True), axis_name="i")(
        np.arange(3 * 6 * 2.0).reshape(3, 6, 2))
    src = np.arange(3 * 6 * 2.0).reshape(3, 6, 2)
    want = np.stack([np.concatenate([src[j, 2 * i:2 * i + 2] for j in range(3)], axis=1)
                     for i in range(3)])
    np.testing.assert_array_equal(tiled, want)
    sh = T.vmap(lambda v: lax.pshuffle(v, "i", [2, 0, 1]), axis_name="i")(x)
    np.testing.assert_array_equal(sh, x[[2, 0, 1]])
    # gradient of psum_scatter: each member's cotangent reaches every contributor
    g = T.grad(lambda v: tnp.sum(T.vmap(lambda r: lax.psum_scatter(r, "i") * 1.0,
                                        axis_name="i")(v) * np.arange(3.0)))(y)
    np.testing.assert_array_equal(g, np.broadcast_to(np.arange(3.0), (3, 3)))


def test_against_jax():
    jax = pytest.importorskip("jax")
    jl = jax.lax
    x = X.astype(np.float32)
    for name in ("cummax", "cummin", "cumlogsumexp"):
        np.testing.assert_allclose(getattr(lax, name)(x), getattr(jl, name)(x), rtol=1e-6)
    v = np.array([0, 1, 7, -1, 12345], np.int32)
    np.testing.assert_array_equal(lax.population_count(v), jl.population_count(v))
    np.testing.assert_array_equal(lax.clz(v), jl.clz(v))
    np.testing.assert_array_equal(lax.reduce_precision(x * 1.2345, 5, 3),
                                  jl.reduce_precision(x * 1.2345, 5, 3))
    np.testing.assert_array_equal(lax.tile(x.reshape(2, 4), (2, 3)),
                                  jl.tile(x.reshape(2, 4), (2, 3)))
    np.testing.assert_array_equal(lax.collapse(np.ones((2, 3, 4)), 0, 2).shape,
                                  jl.collapse(np.ones((2, 3, 4)), 0, 2).shape)
    z = np.arange(2 * 3 * 3.0, dtype=np.float32).reshape(3, 3, 2)
    np.testing.assert_array_equal(
        T.vmap(lambda v: lax.all_to_all(v, "i", 0, 1), axis_name="i")(z),
        jax.vmap(lambda v: jl.all_to_all(v, "i", 0, 1), axis_name="i")(z))
    g = np.arange(6.0, dtype=np.float32)
    np.testing.assert_array_equal(T.grad(lambda v: tnp.sum(lax.clamp(2.0, v, 4.0) ** 2))(g),
                                  jax.grad(lambda v: (jl.clamp(2.0, v, 4.0) ** 2).sum())(g))


def _fd_mat(fun, m, eps=1e-6):
    out = np.zeros_like(m)
    for i in np.ndindex(m.shape):
        e = np.zeros_like(m)
        e[i] = eps
        out[i] = (fun(m + e) - fun(m - e)) / (2 * eps)
    return out


def test_custom_linear_solve_gradients():
    a0 = np.array([[4.0, 1.0], [1.0, 3.0]])
    b0 = np.array([1.0, 2.0])

    def loss(a, b):
        x = lax.custom_linear_solve(lambda v: a @ v, b, lambda mv, r: tnp.linalg.solve(a, r),
                                    symmetric=True)
        return tnp.sum(x ** 2)
    assert np.isclose(loss(a0, b0), np.sum(np.linalg.solve(a0, b0) ** 2))
    ga, gb = T.grad(loss, argnums=(0, 1))(a0, b0)
    np.testing.assert_allclose(ga, _fd_mat(lambda m: np.sum(np.linalg.solve(m, b0) ** 2), a0),
                               rtol=1e-6)
    np.testing.assert_allclose(gb, _fd_mat(lambda v: np.sum(np.linalg.solve(a0, v) ** 2), b0),
                               rtol=1e-6)
    c0 = np.array([[4.0, 2.0], [1.0, 3.0]])
    w = np.array([1.0, -2.0])

    def loss2(a, b):
        # an iterative solver: its iterations are never differentiated
        def solve(mv, r):
            return lax.fori_loop(0, 60, lambda i, x: x + 0.2 * (r - mv(x)), tnp.zeros_like(r))
        x = lax.custom_linear_solve(lambda v: a @ v, b, solve,
                                    transpose_solve=lambda vm, r: tnp.linalg.solve(a.T, r))
        return tnp.sum(x * w)
    want = _fd_mat(lambda m: np.sum(np.linalg.solve(m, b0) * w), c0)
    np.testing.assert_allclose(T.grad(loss2)(c0, b0), want, rtol=1e-5)
    np.testing.assert_allclose(T.jit(T.grad(loss2))(c0, b0), want, rtol=1e-5)
    with pytest.raises(TypeError, match="transpose_solve"):
        T.grad(lambda a: tnp.sum(lax.custom_linear_solve(
            lambda v: a @ v, b0, lambda mv, r: tnp.linalg.solve(a, r))))(c0)


def test_custom_root_implicit_gradient():
    def sqrt_root(a):
        def f(x):
            return x * x - a

        def newton(f, x0):
            return lax.fori_loop(0, 30, lambda i, x: x - f(x) / (2 * x), x0)
        return lax.custom_root(f, 1.0, newton, lambda g, y: y / g(1.0))
    assert np.isclose(sqrt_root(2.0), np.sqrt(2.0))
    np.testing.assert_allclose(T.grad(sqrt_root)(2.0), 0.5 / np.sqrt(2.0), rtol=1e-12)
    np.testing.assert_allclose(T.jit(T.grad(sqrt_root))(3.0), 0.5 / np.sqrt(3.0), rtol=1e-12)


def test_conv_helpers():
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 5))
    p = lax.conv_general_dilated_patches(x, (2, 3), (1, 1), "VALID")
    assert p.shape == (2, 18, 5, 3)
    # channel c, window position (i, j) -> output channel c * 6 + i * 3 + j
    np.testing.assert_array_equal(p[:, 1 * 6 + 1 * 3 + 2, 2, 1], x[:, 1, 3, 3])
    assert lax.conv_shape_tuple((2, 3, 10, 9), (4, 3, 3, 2), (2, 1), "SAME") == (2, 4, 5, 9)
    assert lax.conv_shape_tuple((2, 3, 10, 9), (4, 3, 3, 2), (2, 1),
                                [(1, 0), (0, 2)]) == (2, 4, 5, 10)
    dn = ("NHWC", "HWIO", "NHWC")
    assert lax.conv_transpose_shape_tuple((2, 5, 6, 3), (3, 3, 3, 4), (2, 2), "SAME",
                                          dn) == (2, 10, 12, 4)


def test_conv_helpers_against_jax():
    jax = pytest.importorskip("jax")
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 5)).astype(np.float32)
    np.testing.assert_array_equal(
        lax.conv_general_dilated_patches(x, (2, 3), (1, 2), "SAME"),
        jax.lax.conv_general_dilated_patches(x, (2, 3), (1, 2), "SAME"))
    xn = np.moveaxis(x, 1, -1)
    dn = ("NHWC", "HWIO", "NHWC")
    np.testing.assert_array_equal(
        lax.conv_general_dilated_patches(xn, (2, 2), (1, 1), "VALID", dimension_numbers=dn),
        jax.lax.conv_general_dilated_patches(xn, (2, 2), (1, 1), "VALID",
                                             dimension_numbers=dn))
    for pad in ("SAME", "VALID"):
        assert lax.conv_transpose_shape_tuple((2, 5, 6, 3), (3, 3, 3, 4), (2, 2), pad, dn) == \
            tuple(int(d) for d in jax.lax.conv_transpose_shape_tuple(
                (2, 5, 6, 3), (3, 3, 3, 4), (2, 2), pad, dn))


def test_special_functions_values_and_derivatives():
    special = pytest.importorskip("scipy.special")
    a = np.array([0.5, 2.0, 5.0])
    x = np.array([0.3, 2.5, 4.0])
    np.testing.assert_allclose(lax.igamma(a, x), special.gammainc(a, x), rtol=1e-14)
    np.testing.assert_allclose(lax.igammac(a, x), special.gammaincc(a, x), rtol=1e-14)
    np.testing.assert_allclose(T.jit(T.vmap(lambda v: lax.igamma(v, 1.0)))(a),
                               special.gammainc(a, 1.0), rtol=1e-14)
    h = 1e-6
    gx = T.grad(lambda v: lax.igamma(2.0, v))(1.5)
    np.testing.assert_allclose(gx, (special.gammainc(2, 1.5 + h) - special.gammainc(2, 1.5 - h))
                               / (2 * h), rtol=1e-7)
    ga = T.grad(lambda v: lax.igammac(v, 1.5))(2.0)
    np.testing.assert_allclose(ga, (special.gammaincc(2 + h, 1.5) - special.gammaincc(2 - h, 1.5))
                               / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(lax.betainc(2.0, 3.0, 0.4), special.betainc(2, 3, 0.4))
    gb = T.grad(lambda v: lax.betainc(2.0, 3.0, v))(0.4)
    np.testing.assert_allclose(gb, 12 * 0.4 * 0.6 ** 2, rtol=1e-12)     # x (1-x)^2 / B(2, 3)
    with pytest.raises(NotImplementedError, match="a or b"):
        T.grad(lambda v: lax.betainc(v, 3.0, 0.4))(2.0)
    np.testing.assert_allclose(lax.zeta(2.0, 1.0), np.pi ** 2 / 6, rtol=1e-14)
    gz = T.grad(lambda q: lax.zeta(3.0, q))(2.0)
    np.testing.assert_allclose(gz, -3 * special.zeta(4.0, 2.0), rtol=1e-12)


def test_special_functions_against_jax():
    jax = pytest.importorskip("jax")
    a = np.float32([0.5, 2.0, 5.0])
    x = np.float32([0.3, 2.5, 4.0])
    np.testing.assert_allclose(lax.igamma(a, x), jax.lax.igamma(a, x), rtol=2e-6)
    np.testing.assert_allclose(T.grad(lambda v: lax.igamma(v, np.float32(1.5)))(np.float32(2.0)),
                               jax.grad(lambda v: jax.lax.igamma(v, 1.5))(2.0), rtol=1e-5)
    np.testing.assert_allclose(lax.betainc(2.0, 3.0, x[:1] / 5), jax.lax.betainc(2.0, 3.0, x[:1] / 5),
                               rtol=2e-6)


def test_small_device_names():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 3))
    b = rng.normal(size=(3, 3, 4))
    gs = np.array([2, 0, 4], np.int32)
    want = np.zeros((7, 4))
    want[0:2] = a[0:2] @ b[0]
    want[2:6] = a[2:6] @ b[2]
    np.testing.assert_allclose(lax.ragged_dot(a, b, gs), want, rtol=1e-12)
    np.testing.assert_allclose(T.jit(lax.ragged_dot)(a, b, gs), want, rtol=1e-12)
    np.testing.assert_array_equal(
        T.vmap(lambda v: lax.pbroadcast(v, "i", 1), axis_name="i")(np.arange(3.0)), [1, 1, 1])
    assert lax.platform_dependent(2.0, cpu=lambda x: x * 3, default=lambda x: x) == 6.0
    assert lax.platform_dependent(2.0, tpu=lambda x: x * 3, default=lambda x: x) == 2.0
    x = np.ones(3)
    assert lax.with_sharding_constraint(x, None) is x
    assert float(lax.composite(lambda v: v * 2, "my.double")(2.0)) == 4.0
    np.testing.assert_array_equal(lax.broadcast_like(np.arange(3), np.zeros((2, 3))),
                                  np.broadcast_to(np.arange(3), (2, 3)))


def test_enums_permutations_and_bitcast():
    assert lax.conv_general_permutations(("NHWC", "HWIO", "NHWC")) == \
        ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    assert lax.GatherScatterMode.from_any("clip") is lax.GatherScatterMode.CLIP
    assert lax.GatherScatterMode.from_any(None) is lax.GatherScatterMode.FILL_OR_DROP
    np.testing.assert_array_equal(lax.bitcast_convert_type(np.float32([1.0, -2.0]), np.int32),
                                  np.float32([1.0, -2.0]).view(np.int32))
    np.testing.assert_array_equal(
        T.jit(lambda v: lax.bitcast_convert_type(v, np.uint32))(np.float32([1.0])),
        np.float32([1.0]).view(np.uint32))


def test_pswapaxes_swaps_the_mapped_axis_with_a_data_axis():
    x = np.arange(3 * 3 * 2, dtype=np.float32).reshape(3, 3, 2)
    for axis, want in ((0, x.transpose(1, 0, 2)), (1, None)):
        got = T.vmap(lambda v: lax.pswapaxes(v, "i", axis), axis_name="i")
        if want is None:           # mapped size 3 against data axis 1 of size 2: refused
            with pytest.raises(Exception):
                got(x)
            continue
        np.testing.assert_array_equal(got(x), want)
        np.testing.assert_array_equal(T.jit(got)(x), want)
