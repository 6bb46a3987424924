"""Every differentiable primitive in transforms.lax: values against NumPy, abstract evaluation
against the eager result, and first/second order derivatives (fwd and rev) against finite
differences in float64, plus the <vjp(ct), t> == <ct, jvp(t)> identity."""
import numpy as np
import pytest

import transforms as T
from transforms import lax
from transforms.test_util import check_grads

from op_table import F64, OPS, op_rng

# replaced before each test by one seeded from the test's name (conftest._per_test_rng)
_rng = np.random.default_rng(0)


def rnd(*shape, lo=-1.0, hi=1.0):
    return _rng.uniform(lo, hi, size=shape).astype(np.float64)


def pos(*shape):
    return rnd(*shape, lo=0.5, hi=2.0)


def unit(*shape):
    return rnd(*shape, lo=-0.8, hi=0.8)


def away_from_zero(*shape):
    x = rnd(*shape, lo=0.3, hi=1.5)
    return x * np.where(_rng.random(shape) < 0.5, -1.0, 1.0)


S = (2, 3)

# ---------------------------------------------------------------------------------------------
# elementwise: values and derivatives generated from the shared operator table (op_table.py)
# ---------------------------------------------------------------------------------------------

VALUE_CASES = [pytest.param(op, dt, id=f"{op.name}-{np.dtype(dt).name}")
               for op in OPS for dt in op.dtypes]
GRAD_CASES = [pytest.param(op, id=op.name) for op in OPS if op.grad]


@pytest.mark.parametrize("op,dtype", VALUE_CASES)
def test_elementwise_value(op, dtype):
    args = op.args(op_rng(op.name, np.dtype(dtype).name, "value"), S, dtype)
    got, want = np.asarray(op.fn(*args)), op.ref(*args)
    assert got.shape == np.shape(want)
    if op.exact:
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.asarray(want).dtype
    else:
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **op.tol(dtype))


@pytest.mark.parametrize("op", GRAD_CASES)
def test_elementwise_grad(op):
    """Derivatives in float64 against finite differences; piecewise-constant ops also have an
    exactly zero gradient and tangent."""
    args = op.args(op_rng(op.name, "float64", "grad"), S, F64)
    if op.grad == "zero":
        (x,) = args
        np.testing.assert_array_equal(T.grad(lambda x: op.fn(x).sum())(x), np.zeros(S))
        _, t = T.jvp(op.fn, (x,), (np.ones(S),))
        np.testing.assert_array_equal(t, np.zeros(S))
    check_grads(op.fn, args, order=op.grad_order)


def test_round_half_away_from_zero():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, -0.6])
    np.testing.assert_array_equal(lax.round(x), [-3, -2, -1, 1, 2, 3, 0, -1])
    np.testing.assert_array_equal(lax.round_even(x), np.rint(x))


@pytest.mark.parametrize("y", [0, 1, 2, 3, -1, -2, 5])
def test_integer_pow(y):
    x = away_from_zero(*S)
    np.testing.assert_allclose(lax.integer_pow(x, y), x ** float(y), rtol=1e-12)
    check_grads(lambda x: lax.integer_pow(x, y), (x,), order=2)


def test_integer_pow_int_dtype():
    x = np.arange(5, dtype=np.int32)
    out = lax.integer_pow(x, 3)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x ** 3)


# ---------------------------------------------------------------------------------------------
# binary elementwise
# ---------------------------------------------------------------------------------------------

def test_max_tie_splits_gradient():
    x = np.array([1.0, 2.0, 3.0])
    gx, gy = T.grad(lambda a, b: lax.max(a, b).sum(), argnums=(0, 1))(x, x)
    np.testing.assert_allclose(gx, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(gy, [0.5, 0.5, 0.5])


def test_pow_at_zero_base():
    # d/dx x**2 at 0 is 0; d/dy 0**y is 0 where defined
    g = T.grad(lambda x: lax.pow(x, np.float64(2.0)))(np.float64(0.0))
    assert g == 0.0 and np.isfinite(g)
    gy = T.grad(lambda y: lax.pow(np.float64(0.0), y))(np.float64(2.0))
    assert gy == 0.0


def test_binary_wrappers_broadcast_scalars():
    x = rnd(3).astype(np.float32)
    out = lax.add(x, 1.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x + 1, rtol=1e-6)
    out = lax.mul(2, x)
    assert out.dtype == np.float32


@pytest.mark.parametrize("call", [
    lambda: lax.add(1, 1.5), lambda: lax.add(1.5, 1), lambda: lax.mul(np.arange(3), 0.5),
    lambda: lax.max(0.5, np.arange(3)), lambda: lax.lt(np.arange(3), 0.5),
    lambda: lax.add(np.ones(2, np.float32), 1j), lambda: lax.sub(np.arange(2), 2.0),
    lambda: T.jit(lambda i: lax.mul(i, 0.5))(np.arange(3)),
])
def test_python_float_never_truncated_to_an_integer_operand(call):
    # lax.add(1, 1.5) gave 2 and lax.mul(arange(3), 0.5) gave [0 0 0]; JAX raises TypeError
    with pytest.raises(TypeError, match="same dtype"):
        call()
    # within their kind (or widening), Python scalars still adapt
    assert lax.add(np.int8(3), 4).dtype == np.int8
    assert lax.mul(np.arange(3.0, dtype=np.float32), 0.5).dtype == np.float32


def test_comparisons_and_logic():
    x, y = np.array([1, 2, 3]), np.array([3, 2, 1])
    for fn, ref in ((lax.eq, np.equal), (lax.ne, np.not_equal), (lax.lt, np.less),
                    (lax.le, np.less_equal), (lax.gt, np.greater), (lax.ge, np.greater_equal)):
        out = fn(x, y)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out, ref(x, y))
    a, b = np.array([True, False, True]), np.array([True, True, False])
    np.testing.assert_array_equal(lax.bitwise_and(a, b), a & b)
    np.testing.assert_array_equal(lax.bitwise_or(a, b), a | b)
    np.testing.assert_array_equal(lax.bitwise_xor(a, b), a ^ b)
    np.testing.assert_array_equal(lax.bitwise_not(a), ~a)
    np.testing.assert_array_equal(lax.shift_left(np.int32(1), np.int32(3)), 8)
    np.testing.assert_array_equal(lax.is_finite(np.array([1.0, np.inf, np.nan])),
                                  [True, False, False])


def test_div_integer_truncates_toward_zero():
    x = np.array([7, -7, 7, -7], dtype=np.int32)
    y = np.array([2, 2, -2, -2], dtype=np.int32)
    out = lax.div(x, y)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [3, -3, -3, 3])
    np.testing.assert_array_equal(lax.rem(x, y), np.fmod(x, y))


def test_comparison_grad_is_zero_and_select():
    x, y = rnd(*S), rnd(*S)
    f = lambda x, y: lax.select(lax.gt(x, y), lax.sin(x), lax.mul(y, y))  # noqa: E731
    np.testing.assert_allclose(f(x, y), np.where(x > y, np.sin(x), y * y))
    check_grads(f, (x, y), order=2)


def test_select_n_multiway():
    which = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.int32)
    a, b, c = rnd(*S), rnd(*S), rnd(*S)
    out = lax.select_n(which, a, b, c)
    np.testing.assert_allclose(out, np.choose(which, [a, b, c]))
    check_grads(lambda a, b, c: lax.select_n(which, a, b, c), (a, b, c), order=2)


@pytest.mark.parametrize("src,dst", [(np.float64, np.float32), (np.float32, np.float64),
                                     (np.float64, np.float64)])
def test_convert_element_type(src, dst):
    x = rnd(*S).astype(src)
    out = lax.convert_element_type(x, dst)
    assert out.dtype == dst
    if src == np.float64 and dst == np.float64:
        check_grads(lambda x: lax.convert_element_type(x, dst), (x,), order=2)
    g = T.grad(lambda x: lax.convert_element_type(x, dst).sum())(x)
    assert g.dtype == src
    np.testing.assert_allclose(g, np.ones(S))


def test_convert_float_to_int_truncates_and_has_zero_grad():
    x = np.array([-1.7, -0.2, 0.2, 1.7])
    np.testing.assert_array_equal(lax.convert_element_type(x, np.int32), [-1, 0, 0, 1])
    g = T.grad(lambda x: (lax.convert_element_type(lax.convert_element_type(x, np.int32),
                                                   np.float64) * x).sum())(x)
    np.testing.assert_allclose(g, [-1, 0, 0, 1])


# ---------------------------------------------------------------------------------------------
# shape primitives
# ---------------------------------------------------------------------------------------------

def test_broadcast_in_dim():
    x = rnd(3)
    f = lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1,))  # noqa: E731
    np.testing.assert_array_equal(f(x), np.broadcast_to(x[None, :, None], (2, 3, 4)))
    check_grads(f, (x,), order=2)
    y = rnd(1, 4)
    g = lambda y: lax.broadcast_in_dim(y, (3, 2, 4), (1, 2))  # noqa: E731 (size-1 expansion)
    np.testing.assert_array_equal(g(y), np.broadcast_to(y, (3, 2, 4)))
    check_grads(g, (y,), order=2)


def test_reshape_transpose_squeeze_expand():
    x = rnd(2, 3, 1)
    check_grads(lambda x: lax.reshape(x, (3, 2)), (x,), order=2)
    np.testing.assert_array_equal(lax.reshape(x, (3, -1)), x.reshape(3, 2))
    check_grads(lambda x: lax.transpose(x, (2, 0, 1)), (x,), order=2)
    np.testing.assert_array_equal(lax.transpose(x, (2, 0, 1)), x.transpose(2, 0, 1))
    check_grads(lambda x: lax.squeeze(x, (2,)), (x,), order=2)
    assert lax.squeeze(x, (2,)).shape == (2, 3)
    check_grads(lambda x: lax.expand_dims(x, (0, 3)), (x,), order=2)
    assert lax.expand_dims(x, (0, 3)).shape == (1, 2, 3, 1, 1)


def test_concatenate():
    a, b, c = rnd(2, 3), rnd(2, 1), rnd(2, 2)
    f = lambda a, b, c: lax.concatenate([a, b, c], 1)  # noqa: E731
    np.testing.assert_array_equal(f(a, b, c), np.concatenate([a, b, c], 1))
    check_grads(f, (a, b, c), order=2)
    # one operand constant
    check_grads(lambda a: lax.concatenate([a, b], 1), (a,), order=2)


@pytest.mark.parametrize("config", [
    [(1, 2, 0), (0, 1, 0)],              # plain edges
    [(1, 0, 1), (2, 1, 2)],              # interior padding
    [(-1, 1, 0), (1, -2, 1)],            # negative (cropping) edges with interior
    [(0, 0, 0), (-1, -1, 0)],
])
def test_pad(config):
    x = rnd(3, 4)
    f = lambda x, v: lax.pad(x, v, config)  # noqa: E731
    v = np.float64(0.7)
    out = f(x, v)
    # reference: interior, then edge pad/crop
    ref = x
    for d, (lo, hi, it) in enumerate(config):
        n = ref.shape[d]
        if it:
            shp = list(ref.shape)
            shp[d] = n + (n - 1) * it
            big = np.full(shp, 0.7)
            sl = [slice(None)] * ref.ndim
            sl[d] = slice(None, None, it + 1)
            big[tuple(sl)] = ref
            ref = big
        pw = [(0, 0)] * ref.ndim
        pw[d] = (max(lo, 0), max(hi, 0))
        ref = np.pad(ref, pw, constant_values=0.7)
        sl = [slice(None)] * ref.ndim
        sl[d] = slice(-min(lo, 0), ref.shape[d] + min(hi, 0))
        ref = ref[tuple(sl)]
    np.testing.assert_array_equal(out, ref)
    check_grads(f, (x, v), order=2)


@pytest.mark.parametrize("start,limit,strides", [
    ((0, 1), (3, 4), None), ((1, 0), (3, 4), (1, 2)), ((0, 1), (3, 4), (2, 2)),
    ((0, 0), (3, 4), (3, 3))])
def test_slice(start, limit, strides):
    x = rnd(3, 4)
    f = lambda x: lax.slice(x, start, limit, strides)  # noqa: E731
    st = strides or (1, 1)
    np.testing.assert_array_equal(f(x), x[start[0]:limit[0]:st[0], start[1]:limit[1]:st[1]])
    check_grads(f, (x,), order=2)


def test_rev():
    x = rnd(3, 4)
    np.testing.assert_array_equal(lax.rev(x, (0, 1)), x[::-1, ::-1])
    check_grads(lambda x: lax.rev(x, (1,)), (x,), order=2)


@pytest.mark.parametrize("i,j", [(1, 2), (0, 0), (5, -3), (-9, -4)])   # the last two clamp
def test_dynamic_slice(i, j):
    x = rnd(4, 5)
    f = lambda x: lax.dynamic_slice(x, (np.int64(i), np.int64(j)), (2, 3))  # noqa: E731
    # as JAX: a negative start counts from the end (once), then the window is clamped
    ci, cj = min(max(i + 4 if i < 0 else i, 0), 2), min(max(j + 5 if j < 0 else j, 0), 2)
    np.testing.assert_array_equal(f(x), x[ci:ci + 2, cj:cj + 3])
    check_grads(f, (x,), order=2)


def test_dynamic_slice_traced_index_under_grad():
    x = rnd(6)

    def f(x, i):
        return lax.dynamic_slice(x * x, (i,), (3,)).sum()

    for i in (0, 2, 3):
        g = T.grad(f)(x, np.int32(i))
        ref = np.zeros(6)
        ref[i:i + 3] = 2 * x[i:i + 3]
        np.testing.assert_allclose(g, ref)
    # the index itself is a traced argument of the jaxpr
    jaxpr = T.make_jaxpr(f)(x, np.int32(1))
    assert "dynamic_slice" in str(jaxpr)
    check_grads(lambda x: f(x, np.int32(2)), (x,), order=2)


def test_dynamic_update_slice():
    x, u = rnd(4, 5), rnd(2, 2)
    f = lambda x, u: lax.dynamic_update_slice(x, u, (np.int64(1), np.int64(3)))  # noqa: E731
    ref = x.copy()
    ref[1:3, 3:5] = u
    np.testing.assert_array_equal(f(x, u), ref)
    check_grads(f, (x, u), order=2)


def test_iota():
    out = lax.iota(np.int32, (2, 3), 1)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 1, 2], [0, 1, 2]])


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1), (1, 2), (0, 2)])
def test_reduce_sum(axes):
    x = rnd(2, 3, 4)
    np.testing.assert_allclose(lax.reduce_sum(x, axes), x.sum(axes))
    check_grads(lambda x: lax.reduce_sum(x, axes), (x,), order=2)


@pytest.mark.parametrize("name,fn,ref", [("max", lax.reduce_max, np.max),
                                         ("min", lax.reduce_min, np.min)])
@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1)])
def test_reduce_minmax(name, fn, ref, axes):
    x = _rng.permutation(12).reshape(3, 4).astype(np.float64) / 3   # distinct, no ties
    np.testing.assert_array_equal(fn(x, axes), ref(x, axis=axes))
    check_grads(lambda x: fn(x, axes), (x,), order=2)


def test_reduce_max_ties_average():
    x = np.array([1.0, 3.0, 3.0, 2.0])
    np.testing.assert_allclose(T.grad(lambda x: lax.reduce_max(x, (0,)))(x), [0, .5, .5, 0])


@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1)])
def test_reduce_prod(axes):
    x = away_from_zero(3, 4)
    np.testing.assert_allclose(lax.reduce_prod(x, axes), x.prod(axes))
    check_grads(lambda x: lax.reduce_prod(x, axes), (x,), order=2)


def test_reduce_prod_with_zeros_is_exact():
    # the JVP uses exclusive cumulative products, so a single zero gives the right gradient
    x = np.array([2.0, 0.0, 3.0, 4.0])
    np.testing.assert_allclose(T.grad(lambda x: lax.reduce_prod(x, (0,)))(x), [0, 24, 0, 0])
    x2 = np.array([2.0, 0.0, 3.0, 0.0])
    np.testing.assert_allclose(T.grad(lambda x: lax.reduce_prod(x, (0,)))(x2), [0, 0, 0, 0])
    check_grads(lambda x: lax.reduce_prod(x, (0,)), (x,), order=1)


def test_reduce_and_or_argmax():
    b = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(lax.reduce_and(b, (1,)), [False, True])
    np.testing.assert_array_equal(lax.reduce_or(b, (0,)), [True, True])
    x = rnd(3, 4)
    out = lax.argmax(x, 1, np.int32)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x.argmax(1))
    np.testing.assert_array_equal(lax.argmin(x, 0), x.argmin(0))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum(axis, reverse):
    x = rnd(3, 4)
    ref = np.flip(np.cumsum(np.flip(x, axis), axis), axis) if reverse else np.cumsum(x, axis)
    np.testing.assert_allclose(lax.cumsum(x, axis, reverse), ref)
    check_grads(lambda x: lax.cumsum(x, axis, reverse), (x,), order=2)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod(axis, reverse):
    x = away_from_zero(3, 4)
    ref = np.flip(np.cumprod(np.flip(x, axis), axis), axis) if reverse else np.cumprod(x, axis)
    np.testing.assert_allclose(lax.cumprod(x, axis, reverse), ref)
    check_grads(lambda x: lax.cumprod(x, axis, reverse), (x,), order=2)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_with_zeros_is_exact(reverse):
    # the JVP is a prefix scan of the product rule: no division by x, so zeros are fine
    x = np.array([[2.0, 0.0, 3.0, 4.0, 0.5], [1.5, -2.0, 0.0, 0.0, 1.1]])
    check_grads(lambda x: lax.cumprod(x, 1, reverse), (x,), order=2)
    g = T.grad(lambda x: lax.cumprod(x, 0, reverse).sum())(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_allclose(g, [1.0, 8.0, 0.0] if not reverse else [0.0, 9.0, 1.0])


def test_reduce_prod_second_order_with_zero():
    x = np.array([[2.0, 0.0, 3.0], [1.0, 2.0, 0.5]])
    check_grads(lambda x: lax.reduce_prod(x, (1,)), (x,), order=2)
    h = T.hessian(lambda x: lax.reduce_prod(x, (0,)))(np.array([2.0, 0.0, 3.0]))
    np.testing.assert_allclose(h, [[0, 3, 0], [3, 0, 2], [0, 2, 0]])


# ---------------------------------------------------------------------------------------------
# dot_general
# ---------------------------------------------------------------------------------------------

DOTS = [
    ("matvec", (3, 4), (4,), (((1,), (0,)), ((), ())), lambda a, b: a @ b),
    ("matmul", (3, 4), (4, 5), (((1,), (0,)), ((), ())), lambda a, b: a @ b),
    ("lhs_T", (4, 3), (4, 5), (((0,), (0,)), ((), ())), lambda a, b: a.T @ b),
    ("rhs_T", (3, 4), (5, 4), (((1,), (1,)), ((), ())), lambda a, b: a @ b.T),
    ("outer", (3,), (4,), (((), ()), ((), ())), lambda a, b: np.multiply.outer(a, b)),
    ("batched", (2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,))), lambda a, b: a @ b),
    ("batch_mid", (3, 2, 4), (4, 2, 5), (((2,), (0,)), ((1,), (1,))),
     lambda a, b: np.einsum("ibk,kbj->bij", a, b)),
    ("two_contract", (2, 3, 4), (4, 3, 5), (((1, 2), (1, 0)), ((), ())),
     lambda a, b: np.einsum("ijk,kjl->il", a, b)),
]


@pytest.mark.parametrize("name,sa,sb,dn,ref", DOTS, ids=[d[0] for d in DOTS])
def test_dot_general(name, sa, sb, dn, ref):
    a, b = rnd(*sa), rnd(*sb)
    f = lambda a, b: lax.dot_general(a, b, dn)  # noqa: E731
    np.testing.assert_allclose(f(a, b), ref(a, b), rtol=1e-12)
    check_grads(f, (a, b), order=2)


def test_dot_general_preferred_element_type():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = lax.dot_general(a, a.T.copy(), (((1,), (0,)), ((), ())), preferred_element_type=np.int64)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, a.astype(np.int64) @ a.T)


def test_dot_general_float32_grad_dtype():
    a, b = rnd(3, 4).astype(np.float32), rnd(4, 2).astype(np.float32)
    ga, gb = T.grad(lambda a, b: lax.dot(a, b).sum(), argnums=(0, 1))(a, b)
    assert ga.dtype == np.float32 and gb.dtype == np.float32
    np.testing.assert_allclose(ga, np.ones((3, 2), np.float32) @ b.T, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# gather / scatter
# ---------------------------------------------------------------------------------------------

def test_gather():
    x = rnd(4, 3)
    idx = np.array([[0], [2], [2], [3]])
    f = lambda x: lax.gather(x, idx)  # noqa: E731
    np.testing.assert_array_equal(f(x), x[[0, 2, 2, 3]])
    check_grads(f, (x,), order=2)
    idx2 = np.array([[[0, 1], [3, 2]], [[1, 0], [1, 0]]])     # B=(2,2), k=2
    g = lambda x: lax.gather(x, idx2)  # noqa: E731
    np.testing.assert_array_equal(g(x), x[idx2[..., 0], idx2[..., 1]])
    check_grads(g, (x,), order=2)
    # out-of-bounds indices clamp, and the gradient goes to the clamped positions
    oob = np.array([[7], [-2], [1]])
    np.testing.assert_array_equal(lax.gather(x, oob), x[[3, 0, 1]])
    check_grads(lambda x: lax.gather(x, oob), (x,), order=2)


def test_scatter_add():
    x, u = rnd(4, 3), rnd(3, 3)
    idx = np.array([[1], [3], [1]])                     # duplicate index accumulates
    f = lambda x, u: lax.scatter_add(x, idx, u)  # noqa: E731
    ref = x.copy()
    np.add.at(ref, [1, 3, 1], u)
    np.testing.assert_allclose(f(x, u), ref)
    check_grads(f, (x, u), order=2)
    # out-of-bounds updates are dropped, and get a zero cotangent
    oob = np.array([[9], [0], [-5]])
    np.testing.assert_allclose(lax.scatter_add(x, oob, u),
                               x + np.array([u[1], 0 * u[1], 0 * u[1], 0 * u[1]]))
    gu = T.grad(lambda u: (lax.scatter_add(x, oob, u) ** 2).sum())(u)
    np.testing.assert_allclose(gu, [0 * u[0], 2 * (x[0] + u[1]), 0 * u[0]])
    check_grads(lambda x, u: lax.scatter_add(x, oob, u), (x, u), order=2)


@pytest.mark.parametrize("rows", [[2, 0], [2, 0, 2, 2], [1, 7, -3, 1]])
def test_scatter_set(rows):
    # duplicates: the last write wins (and only it gets a cotangent); out of bounds: dropped
    x, u = rnd(4, 3), rnd(len(rows), 3)
    idx = np.array(rows)[:, None]
    f = lambda x, u: lax.scatter(x, idx, u)  # noqa: E731
    ref = x.copy()
    for r, row in zip(rows, u):
        if 0 <= r < 4:
            ref[r] = row
    np.testing.assert_array_equal(f(x, u), ref)
    check_grads(f, (x, u), order=2)


def test_scatter_mul():
    x, u = rnd(4, 3), away_from_zero(2, 3)
    idx = np.array([[2], [2]])
    ref = x.copy()
    np.multiply.at(ref, [2, 2], u)
    np.testing.assert_allclose(lax.scatter_mul(x, idx, u), ref)
    check_grads(lambda x: lax.scatter_mul(x, idx, u), (x,), order=2)


# ---------------------------------------------------------------------------------------------
# stop_gradient and composites
# ---------------------------------------------------------------------------------------------

def test_stop_gradient():
    x = rnd(3)
    f = lambda x: (lax.stop_gradient(x) * x).sum()  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(x), x)
    tree = {"a": x, "b": np.arange(3)}
    out = lax.stop_gradient(tree)
    assert out["b"].dtype == tree["b"].dtype
    np.testing.assert_allclose(T.grad(lambda x: T.stop_gradient(x).sum())(x), 0 * x)


def test_composite_chain():
    x, w = rnd(3, 4), rnd(4, 2)

    def f(x, w):
        h = lax.tanh(lax.dot(x, w))
        h = lax.concatenate([h, lax.exp(h)], 1)
        return lax.reduce_sum(lax.mul(h, h), (0, 1))

    check_grads(f, (x, w), order=2)


# ---------------------------------------------------------------------------------------------
# abstract evaluation agrees with the eager implementation
# ---------------------------------------------------------------------------------------------

ABSTRACT_CASES = [
    (lambda x: lax.exp(x), lambda: (rnd(2, 3).astype(np.float32),)),
    (lambda x: lax.reduce_sum(x, (1,)), lambda: (rnd(2, 3).astype(np.float32),)),
    (lambda x: lax.reduce_prod(x, (0,)), lambda: (np.arange(6, dtype=np.int8).reshape(2, 3),)),
    (lambda x: lax.argmax(x, 1, np.int32), lambda: (rnd(2, 3),)),
    (lambda x: lax.cumsum(x, 0), lambda: (np.arange(6, dtype=np.int32),)),
    (lambda x: lax.pad(x, 0.0, [(1, -1, 1), (0, 2, 0)]), lambda: (rnd(3, 2),)),
    (lambda x: lax.slice(x, (0, 1), (3, 2), (2, 1)), lambda: (rnd(3, 2),)),
    (lambda x: lax.gather(x, np.array([[0, 1], [2, 0]])), lambda: (rnd(3, 2, 4),)),
    (lambda x: lax.dot_general(x, x, (((2,), (2,)), ((0,), (0,)))), lambda: (rnd(2, 3, 4),)),
    (lambda x: lax.convert_element_type(x, np.int16), lambda: (rnd(2, 3),)),
    (lambda x: lax.lt(x, 0.5), lambda: (rnd(2, 3),)),
    (lambda x: lax.dynamic_slice(x, (np.int32(1), np.int32(0)), (1, 2)), lambda: (rnd(3, 2),)),
    (lambda x: lax.scatter_add(x, np.array([[0], [0]]), np.ones((2, 2))), lambda: (rnd(3, 2),)),
    (lambda x: lax.integer_pow(x, -2), lambda: (rnd(2).astype(np.float32) + 2,)),
    (lambda x: lax.broadcast_in_dim(x, (4, 2, 3), (1, 2)), lambda: (rnd(2, 3),)),
    (lambda x: lax.iota(np.int16, (2, 3), 0) + 0 * x.shape[0], lambda: (rnd(1),)),
]


@pytest.mark.parametrize("i", range(len(ABSTRACT_CASES)))
def test_abstract_eval_matches_impl(i):
    f, make_args = ABSTRACT_CASES[i]
    args = make_args()
    eager = np.asarray(f(*args))
    jaxpr = T.make_jaxpr(f)(*args)
    (aval,) = jaxpr.out_avals
    assert aval.shape == eager.shape and aval.dtype == eager.dtype, (aval, eager.shape,
                                                                      eager.dtype)
    # evaluating the jaxpr gives the eager value
    (out,) = jaxpr(*args)
    np.testing.assert_array_equal(out, eager)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int8, np.int32,
                                   np.uint8, np.bool_, np.complex64])
def test_select_large_arrays_bit_exact(dtype):
    # large selects take a branch-free bitwise path: it must match np.where bit for bit
    # (NaNs, -0.0, infinities) on contiguous, transposed and broadcast operands
    g = np.random.default_rng(5)
    a = (g.standard_normal((64, 40)) * 10).astype(dtype)
    b = (g.standard_normal((64, 40)) * 10).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        a.flat[:4] = [np.nan, -0.0, np.inf, -np.inf]
    m = g.random((64, 40)) < 0.5
    c = np.broadcast_to(np.ones((), dtype), (40, 64))
    for args in ((m, a, b), (m.T, a.T, c), (m, np.ascontiguousarray(a[:, ::-1]), b)):
        out, ref = lax.select(*args), np.where(*args)
        assert out.dtype == ref.dtype and out.shape == ref.shape
        assert np.ascontiguousarray(out).tobytes() == np.ascontiguousarray(ref).tobytes()
