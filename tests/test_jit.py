"""jit through the Numba backend: every primitive's lowering against the eager (NumPy)
implementation, the math kernels against float64, the fusion plan, and the jit API.

Compiles are the cost here (~0.2-2 s each), so each test jits ONE function covering many
operations, on small shapes."""
import functools
import logging
import re

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.core import Primitive, ShapedArray

from op_table import OPS, op_rng

# replaced before each test by one seeded from the test's name (conftest._per_test_rng)
RNG = np.random.default_rng(0)


def eager(f, *args):
    """Reference: the jaxpr of f evaluated with the primitives' NumPy implementations."""
    closed, shapes = T.make_jaxpr(f, return_shape=True)(*args)
    flat = [np.asarray(a) for a in T.tree.leaves(args)]
    return T.tree.unflatten(T.tree.structure(shapes), closed(*flat))


def assert_same(got, ref, rtol=1e-5, atol=1e-6, what=""):
    gl, rl = T.tree.leaves(got), T.tree.leaves(ref)
    assert len(gl) == len(rl)
    for i, (g, r) in enumerate(zip(gl, rl)):
        g, r = np.asarray(g), np.asarray(r)
        assert isinstance(g, np.ndarray)
        assert g.shape == r.shape and g.dtype == r.dtype, (what, i, g.shape, r.shape, g.dtype,
                                                          r.dtype)
        if r.dtype.kind == "f":
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, equal_nan=True,
                                       err_msg=f"{what} output {i}")
        else:
            np.testing.assert_array_equal(g, r, err_msg=f"{what} output {i}")


def check(f, *args, **tol):
    assert_same(T.jit(f)(*args), eager(f, *args), what=getattr(f, "__name__", ""), **tol)


# ---------------------------------------------------------------------------------------------
# Math kernels: accuracy against float64 NumPy
# ---------------------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-45, -1e-45, 1.2e-38, 3.4e38,
           -3.4e38, 88.7, 88.73, -87.3, -103.9, -104.0, 0.625, -0.625, 1e-8, 0.5]


def ulps(got, ref, dtype):
    """Max error in units in the last place of `dtype` over the finite reference values;
    non-finite references must be matched exactly (same inf, or NaN)."""
    ref_d = ref.astype(dtype)
    fin = np.isfinite(ref_d) & (np.abs(ref) < np.finfo(dtype).max)
    assert np.array_equal(np.isnan(got[~fin]), np.isnan(ref_d[~fin]))
    bad = ~fin & ~np.isnan(ref_d)
    np.testing.assert_array_equal(got[bad], ref_d[bad])
    spacing = np.spacing(np.abs(ref_d[fin]).astype(dtype)).astype(np.float64)
    spacing = np.maximum(spacing, np.finfo(dtype).smallest_subnormal)
    return float(np.max(np.abs(got[fin].astype(np.float64) - ref[fin]) / spacing))


def test_float32_kernels_accuracy():
    n = 60000
    wide = np.concatenate([RNG.uniform(-110, 95, n), np.sinh(RNG.uniform(-12, 12, n)), SPECIAL])
    pos = np.concatenate([np.exp(RNG.uniform(-103, 88, n)), RNG.uniform(0, 10, n), SPECIAL])
    trig = np.concatenate([RNG.uniform(-10, 10, n), RNG.uniform(-1e6, 1e6, n),
                           RNG.uniform(-1e9, 1e9, 100), [1e20, -3e38, 1e5 * np.pi], SPECIAL])
    px = np.concatenate([RNG.uniform(0, 10, n), RNG.integers(-8, 8, 1000), [0, -0.0, -2, 2, 1,
                         -1, np.inf, -np.inf, np.nan, 0, 1]])
    py = np.concatenate([RNG.uniform(-20, 20, n), RNG.integers(-8, 8, 1000), [-3, 3, 3, 0.5,
                         np.nan, np.inf, 2, 3, 0, 0.0, -np.inf]])
    wide, pos, trig, px, py = (a.astype(np.float32) for a in (wide, pos, trig, px, py))

    def kernels(w, p, t, x, y):
        return (tnp.exp(w), tnp.log(p), tnp.log(w), tnp.tanh(w), lax.logistic(w), tnp.sin(t),
                tnp.cos(t), tnp.power(x, y))

    out = T.jit(kernels)(wide, pos, trig, px, py)
    w64, p64, t64 = wide.astype(np.float64), pos.astype(np.float64), trig.astype(np.float64)
    with np.errstate(all="ignore"):
        refs = (np.exp(w64), np.log(p64), np.log(w64), np.tanh(w64),
                np.where(w64 >= 0, 1 / (1 + np.exp(-w64)), np.exp(w64) / (1 + np.exp(w64))),
                np.sin(t64), np.cos(t64), np.power(px.astype(np.float64), py.astype(np.float64)))
    names = ["exp", "log", "log(negative)", "tanh", "logistic", "sin", "cos", "pow"]
    for name, o, r in zip(names, out, refs):
        assert o.dtype == np.float32
        assert ulps(o, r, np.float32) <= 3.0, name


def test_float64_kernels_accuracy():
    n = 40000
    w = np.concatenate([RNG.uniform(-750, 712, n), SPECIAL, [709.78, -745.1, 1e-310]])
    p = np.concatenate([np.exp(RNG.uniform(-740, 709, n)), RNG.uniform(0, 3, n), SPECIAL,
                        [5e-324]])
    out = T.jit(lambda w, p: (tnp.exp(w), tnp.log(p), lax.logistic(w), tnp.sin(w[:100])))(w, p)
    with np.errstate(all="ignore"):
        refs = (np.exp(w), np.log(p),
                np.where(w >= 0, 1 / (1 + np.exp(-w)), np.exp(w) / (1 + np.exp(w))),
                np.sin(w[:100]))
    for name, o, r in zip(["exp", "log", "logistic", "sin"], out, refs):
        assert o.dtype == np.float64
        assert ulps(o, r, np.float64) <= 4.0, name



@pytest.mark.parametrize("dt, edge", [(np.float32, -104.0), (np.float64, -746.0)])
def test_exp_underflow_edge(dt, edge):
    """exp of arguments at and below the underflow edge (masked attention logits: -1e30 minus
    the row's max) is exactly 0 (those lanes skip the scaling); just above it, as NumPy."""
    tiny = np.finfo(dt).smallest_subnormal
    x = np.array([-np.inf, -1e30 if dt == np.float32 else -1e300, edge * 10, edge - 1, edge,
                  np.nextafter(dt(edge), dt(0)), edge + 0.03, edge + 0.5, edge + 5, np.nan,
                  -0.0], dt)
    got = np.asarray(T.jit(tnp.exp)(x))
    with np.errstate(under="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(got[:5], np.zeros(5, dt))
    assert np.all(np.abs(got[5:9] - ref[5:9]) <= 2 * tiny + 4e-7 * ref[5:9])
    assert got[8] > 0 and np.isnan(got[9]) and got[10] == 1
    # a causal softmax row: the masked-out lanes are exact zeros and the row sums to 1
    logits = np.where(np.tril(np.ones((6, 6), bool)), np.arange(36, dtype=dt).reshape(6, 6),
                      dt(-1e30))
    sm = np.asarray(T.jit(lambda v: tnp.exp(v - tnp.max(v, -1, keepdims=True)))(logits))
    assert np.all(sm[np.triu_indices(6, 1)] == 0)
    np.testing.assert_allclose(sm[np.tril_indices(6)], np.exp(
        (logits - logits.max(-1, keepdims=True))[np.tril_indices(6)]), rtol=1e-6)

# ---------------------------------------------------------------------------------------------
# Every primitive: jit equals eager
# ---------------------------------------------------------------------------------------------

def _elementwise(x, xp, y):
    """What the operator table (tested by `test_table_ops_jit`) does not cover: tnp functions
    built from several primitives, other integer powers, casts, float comparisons."""
    return [tnp.round(x * 3), tnp.log2(xp), lax.integer_pow(x, -2), lax.integer_pow(x, 0),
            lax.integer_pow(x, 7), tnp.square(x), tnp.reciprocal(xp), tnp.isfinite(x / (x * 0)),
            x <= y, x >= y, x == y, x != y, tnp.where(x > 0, x, y), tnp.clip(x, -0.5, 0.5),
            tnp.logaddexp(x, y), x // y, x % y, x.astype(np.float64).astype(np.float32),
            (x * 100).astype(np.int32), x.astype(bool), lax.select_n(x > 0, x, y)]


def _table_inputs(rng, shape=(5, 6)):
    """Inputs for every (operator, dtype) of the shared table: each argument from its domain,
    with a NaN in the first float argument and an infinity in the second (the non-finite paths
    of every lowering must agree with eager too). Ops with the same domain, dtype and argument
    position share one array, which keeps the jitted function's signature (and its compile
    time) small."""
    shared, cases = {}, []
    for op in OPS:
        if not op.jit:
            continue
        for dt in op.dtypes:
            args = []
            for k, d in enumerate(op.domains):
                if (d, dt, k) not in shared:
                    a = np.array(d(rng, shape, dt))
                    if a.dtype.kind == "f" and k < 2:
                        a.flat[k] = (np.nan, np.inf)[k]
                    shared[d, dt, k] = a
                args.append(shared[d, dt, k])
            cases.append((f"{op.name}-{np.dtype(dt).name}", op.fn, args))
    return list(shared.values()), cases


def test_table_ops_jit():
    """Every elementwise primitive of the operator table (op_table.py), in each of its dtypes,
    jitted as ONE function (one compilation) and compared with eager evaluation."""
    inputs, cases = _table_inputs(op_rng("test_jit", "table"))
    names = [n for n, _, _ in cases]
    slots = [[next(i for i, x in enumerate(inputs) if x is a) for a in args]
             for _, _, args in cases]
    fns = [f for _, f, _ in cases]

    def every_op(xs):
        return [f(*[xs[i] for i in idx]) for f, idx in zip(fns, slots)]

    got, ref = T.jit(every_op)(inputs), eager(every_op, inputs)
    for name, g, r in zip(names, got, ref):
        tol = dict(rtol=1e-13, atol=1e-14) if np.asarray(r).dtype == np.float64 else \
            dict(rtol=2e-6, atol=1e-6)
        assert_same(g, r, what=name, **tol)


def test_elementwise_float32_and_float64():
    x = RNG.standard_normal((5, 6)).astype(np.float32)
    y = RNG.standard_normal((5, 6)).astype(np.float32)
    xp = np.abs(x) + 0.1
    x[0, 0], y[0, 1] = np.nan, np.inf

    def both(x, xp, y):
        return (_elementwise(x, xp, y),
                _elementwise(x.astype(np.float64), xp.astype(np.float64),
                             y.astype(np.float64)))
    got, ref = T.jit(both)(x, xp, y), eager(both, x, xp, y)
    assert_same(got[0], ref[0], rtol=2e-6, atol=1e-6, what="f32")
    assert_same(got[1], ref[1], rtol=1e-13, atol=1e-14, what="f64")


def test_integer_and_bool_ops():
    i = RNG.integers(-20, 20, (4, 5)).astype(np.int32)
    j = (RNG.integers(1, 5, (4, 5)) * RNG.choice([-1, 1], (4, 5))).astype(np.int32)
    j[0, 0] = 0
    u = np.abs(i).astype(np.uint32)
    b1 = i > 0

    # and/or/xor/eq/shift_left in int32, int64 and bool, and bool's not, are the operator
    # table's (test_table_ops_jit); here what the table does not say: zero divisors, shift
    # counts beyond the width, casts, integer powers, reductions, unsigned and mixed dtypes
    def ints(i, j):
        return [i + j, i - j, i * j, lax.div(i, j), lax.rem(i, j), i // j, i % j,
                tnp.maximum(i, j), tnp.minimum(i, j), tnp.abs(i), tnp.sign(i), -i,
                lax.shift_right_logical(i, tnp.abs(j) * 9), ~i, i < j, i.astype(np.float32),
                (i.astype(np.float32) / 3).astype(np.int32), i.astype(np.int8),
                i.astype(bool), lax.integer_pow(i, 3), lax.integer_pow(j + (j == 0), -1), i ** 2,
                tnp.sum(i, axis=0), tnp.max(i, axis=1), tnp.prod(i[:, :3], axis=1)]

    def all_ints(i, j, u, b1):
        return (ints(i, j), ints(i.astype(np.int64), j.astype(np.int64)),
                [u + u, u * u, u - u, u // (u + 1), tnp.maximum(u, u * 2), u.astype(np.float64)],
                [b1.astype(np.float32), tnp.where(b1, 1, 2), tnp.any(b1), tnp.all(b1, axis=1),
                 tnp.sum(b1), tnp.max(b1, axis=0), tnp.cumsum(b1, axis=1)])
    check(all_ints, i, j, u, b1)


def test_shape_ops():
    x = RNG.standard_normal((4, 5, 6)).astype(np.float32)

    def shapes(x):
        return [x.T, tnp.transpose(x, (1, 0, 2)), x.reshape(20, 6), x.reshape(-1), x[1],
                x[:, 2], x[..., ::2], x[::-1, 1:4], tnp.flip(x, 1), tnp.expand_dims(x, 1),
                x[None, :, None], tnp.squeeze(x[:, :1]), tnp.concatenate([x, x * 2], axis=1),
                tnp.stack([x[0], x[1]]), tnp.pad(x, ((1, 2), (0, 1), (2, 0))),
                lax.pad(x, np.float32(-1), [(1, -1, 1), (-2, 0, 0), (0, 0, 2)]),
                tnp.broadcast_to(x[:, :1], (4, 5, 6)), tnp.tile(x[0], (2, 1)),
                tnp.repeat(x[0], 2, axis=0), tnp.triu(x[0]), tnp.tril(x[0], -1),
                tnp.arange(12).reshape(3, 4) * 2, lax.iota(np.int32, (3, 4), 1),
                tnp.swapaxes(x, 0, 2), tnp.moveaxis(x, 0, -1), tnp.split(x, 2, axis=2)[1],
                tnp.ravel(x.T), (x.T * 2).reshape(6, 20), tnp.eye(3) + x[0, :3, :3],
                lax.rev(x, (0, 2)) + x, x.reshape(4, 30)[:, 7:19].reshape(4, 3, 4)]
    check(shapes, x)


def test_reductions_and_scans():
    x = RNG.standard_normal((4, 5, 6)).astype(np.float32)
    xn = x.copy()
    xn[1, 2, 3] = xn[2, 0, 0] = np.nan

    def reds(x, xn):
        return [x.sum(), x.sum(axis=0), x.sum(axis=1), x.sum(axis=(0, 2)), x.max(axis=2),
                x.min(axis=0), tnp.prod(x[:, :2, :3], axis=1), x.mean(axis=1),
                tnp.var(x, axis=0), tnp.std(x), tnp.argmax(x, axis=1), tnp.argmin(x, axis=2),
                tnp.argmax(x), tnp.cumsum(x, axis=1), tnp.cumprod(x[:, :3], axis=2),
                lax.cumsum(x, axis=0, reverse=True), lax.cumprod(x, 2, reverse=True),
                tnp.any(x > 1, axis=0), tnp.all(x > -3, axis=(1, 2)), tnp.linalg.norm(x[0]),
                tnp.max(x, axis=(0, 1)), tnp.sum(x.astype(np.int32), axis=1),
                tnp.exp(x) / tnp.sum(tnp.exp(x), axis=-1, keepdims=True),
                xn.max(axis=2), xn.min(axis=0), tnp.argmax(xn, axis=2), tnp.argmin(xn, axis=1),
                xn.sum(axis=1), (x * 2).sum(axis=0) + x.max(axis=0)]
    check(reds, x, xn, rtol=1e-5, atol=1e-5)


def test_float_max_min_reductions_nan_inf_and_long_rows():
    """Float max/min accumulate through LLVM's maximum/minimum intrinsics (so the row loop
    vectorises): NaN anywhere in a row gives NaN, +-inf and all-(-inf) rows, rows longer than
    a vector with a remainder, float32 and float64, all exactly NumPy's values."""
    for dt in (np.float32, np.float64):
        x = RNG.standard_normal((9, 37)).astype(dt)
        x[1, 36] = np.nan                      # NaN in the vector remainder
        x[2, 0] = np.nan                       # NaN first
        x[3] = -np.inf
        x[4, 17] = np.inf
        x[5, 3] = -np.inf
        x[6] = np.nan
        x[7] = np.linspace(-3, 5, 37)[::-1]    # maximum first, minimum last

        def f(x):
            return [tnp.max(x, axis=1), tnp.min(x, axis=1), tnp.max(x, axis=0),
                    tnp.min(x, axis=0), tnp.max(x[3:6]), tnp.min(x[4:6]),
                    tnp.max(tnp.where(x > 0, x, dt(-1e30)), axis=-1)]
        got, want = T.jit(f)(x), f(x)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
        src = T.jit(f).lower(x).source
        assert "_k_max_reduce(" in src and "_k_min_reduce(" in src


def test_dot_general():
    a = RNG.standard_normal((6, 7)).astype(np.float32)
    b = RNG.standard_normal((7, 5)).astype(np.float32)
    A = RNG.standard_normal((30, 70)).astype(np.float32)
    B = RNG.standard_normal((70, 50)).astype(np.float32)
    ia = RNG.integers(-5, 5, (6, 7)).astype(np.int32)
    ib = RNG.integers(-5, 5, (7, 5)).astype(np.int32)

    def dots(a, b, A, B, ia, ib):
        AB = tnp.stack([A, A * 2])
        return [a @ b, b.T @ a.T, tnp.dot(a[0], b), a @ b[:, 0], tnp.dot(a[0], a[1]),
                A @ B, B.T @ A.T, A @ A.T, A.T @ A, (A @ B).T,
                tnp.einsum("bij,bjk->bik", AB, tnp.stack([B, B])),
                tnp.einsum("bij,bkj->bik", AB, AB), tnp.einsum("bji,bjk->bik", AB, AB),
                tnp.tensordot(A.reshape(30, 7, 10), B.reshape(7, 10, 50), axes=2),
                tnp.outer(a[0], b[0]), ia @ ib, a.astype(np.float64) @ b.astype(np.float64),
                (a > 0) @ (b > 0),
                lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=np.float64),
                A[:, :40] @ B[:40, :9], A[:20].T @ B[:20, :9]]   # slices: not read in place
    check(dots, a, b, A, B, ia, ib, rtol=1e-4, atol=1e-4)



@pytest.mark.parametrize("parallel_min", [None, "0"])
def test_dot_general_blas_on_one_thread_below_the_threshold(monkeypatch, parallel_min):
    """Small products run BLAS on the calling thread, mid-sized ones on the threads chosen
    at run time (NUMBAX_BLAS_PARALLEL_MIN=0: all of them); both give NumPy's values, and the
    BLAS thread count is restored."""
    from transforms.backend.numba import kernels
    if parallel_min is not None:
        monkeypatch.setenv("NUMBAX_BLAS_PARALLEL_MIN", parallel_min)
    a = RNG.standard_normal((512, 64)).astype(np.float32)     # a weight gradient's shape:
    b = RNG.standard_normal((512, 48)).astype(np.float32)     # a long contraction
    f = lambda a, b: (a.T @ b, tnp.einsum("bi,bj->ij", a[:, :8], b) * 2)  # noqa: E731
    src = T.jit(f).lower(a, b).source
    if kernels.GEMM_SERIAL != kernels.GEMM:
        # a.T @ b: 1.6M multiply-adds (run-time threads); the einsum's 0.2M: serial
        # (a call is linked, `_k_<kernel>(`, or by symbol, `_hc(_kr_<kernel>_f32, `: calls.py)
        assert (len(re.findall(r"_k_gemm_cblas_serial\(|_hc\(_kr_gemm_cblas_serial_", src))
                > 0) == (parallel_min is None)
        assert len(re.findall(r"_k_gemm_cblas_auto\(|_hc\(_kr_gemm_cblas_auto_", src)) == \
            (1 if parallel_min is None else 2)
    threads = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threads.threadpool_info()]
    out = T.jit(f)(a, b)
    np.testing.assert_allclose(out[0], a.T @ b, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out[1], 2 * a[:, :8].T @ b, rtol=1e-5, atol=1e-4)
    assert [i["num_threads"] for i in threads.threadpool_info()] == before
    np.testing.assert_allclose(a.T @ b, out[0], rtol=1e-5, atol=1e-4)   # NumPy still works
    with pytest.raises(ValueError, match="NUMBAX_BLAS_PARALLEL_MIN"):
        monkeypatch.setenv("NUMBAX_BLAS_PARALLEL_MIN", "many")
        T.jit(lambda a, b: a.T @ b + 1)(a, b)


def test_batched_dot_reads_split_heads_in_place():
    """Attention's products on heads split off (batch, time, heads * dim) buffers: each batch
    entry is a strided matrix read in place (no packed copy); values and gradients as eager."""
    B, L, H, D = 3, 10, 4, 8
    x = RNG.standard_normal((B, L, H * D)).astype(np.float32)
    y = RNG.standard_normal((B, L, H * D)).astype(np.float32)

    def heads(v):                       # (B, L, H*D) -> (B, H, L, D), a transposed view
        return tnp.transpose(tnp.reshape(v, (B, L, H, D)), (0, 2, 1, 3))

    def core(x, y):
        q, k = heads(x * 2), heads(y + 1)
        s = tnp.einsum("bhqd,bhkd->bhqk", q, k)              # contraction innermost in both
        o = tnp.einsum("bhqk,bhkd->bhqd", s, k)              # rhs free dim innermost
        kt = tnp.einsum("bhkd,bhqk->bhdq", k, s)             # lhs contraction strided
        return s, o, kt

    src = T.jit(core).lower(x, y).source
    body = src[src.index("def _fn("):src.index("def make_runner(")]
    # (small per-entry products: the register-blocked kernel, reading the same strides)
    assert "_np.empty(" not in body and body.count("batched small gemm") == 3
    ref = core(x, y)
    for got, want in zip(T.jit(core)(x, y), ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    loss = lambda x, y: sum(tnp.sum(t * t) for t in core(x, y))  # noqa: E731
    for got, want in zip(T.jit(T.grad(loss, argnums=(0, 1)))(x, y),
                         T.grad(loss, argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)


def test_softmax_rows_vectorisable_loops():
    """A masked softmax over rows: the row max is loaded once per row (not per element) and
    the exp-sum adds the stored exponentials in a loop of its own, so the exp loop has no
    floating-point reduction (which LLVM may not vectorise); values as NumPy's."""
    x = RNG.standard_normal((6, 3, 16, 16)).astype(np.float32)
    mask = np.tril(np.ones((16, 16), bool))

    def softmax(x):
        x = tnp.where(mask, x, np.float32(-1e30))
        e = tnp.exp(x - tnp.max(x, axis=-1, keepdims=True))
        return e / tnp.sum(e, axis=-1, keepdims=True)
    src = T.jit(softmax).lower(x).source
    body = src[src.index("def _fn("):src.index("def make_runner(")]
    exp_line = next(ln for ln in body.splitlines() if "= sub " in ln)
    assert re.search(r"- _ld\d+", exp_line), exp_line          # hoisted row max
    sum_line = next(ln for ln in body.splitlines() if "= reduce_sum" in ln)
    assert "_k_exp" not in sum_line and re.search(r"= _k_add_reassoc\((\w+), _", sum_line), \
        sum_line
    xm = np.where(mask, x, np.float32(-1e30))
    e = np.exp(xm - xm.max(-1, keepdims=True))
    np.testing.assert_allclose(T.jit(softmax)(x), e / e.sum(-1, keepdims=True), rtol=1e-6,
                               atol=1e-7)
    g = T.jit(T.grad(lambda x: tnp.sum(softmax(x) * x)))(x)
    np.testing.assert_allclose(g, T.grad(lambda x: tnp.sum(softmax(x) * x))(x), rtol=1e-5,
                               atol=1e-6)

def test_deep_nests_index_inner_loops_from_hoisted_row_offsets():
    """In 3- and 4-deep loop nests (a masked softmax over (B, H, T, S) rows, a head-merging
    transpose) the inner loop indexes `i + _rowN`, the outer loops' terms summed before it
    (LLVM did not vectorise those inner loops otherwise); values as NumPy's, and the
    gradient's nests too."""
    x = RNG.standard_normal((3, 2, 5, 7)).astype(np.float32)
    mask = np.tril(np.ones((5, 7), bool))

    def f(x):
        s = tnp.where(mask, x, np.float32(-1e30))
        e = tnp.exp(s - tnp.max(s, axis=-1, keepdims=True))
        w = tnp.where(mask, e / tnp.sum(e, axis=-1, keepdims=True), 0.0)
        return w, tnp.transpose(w, (0, 2, 1, 3)) * 2.0 + 1.0, tnp.sum(w * x, axis=(0, 2))
    src = T.jit(f).lower(x).source
    body = src[src.index("def _fn("):src.index("def make_runner(")]
    assert re.search(r"\[_i\d \+ _row\d+\]", src), body
    xm = np.where(mask, x, np.float32(-1e30))
    e = np.exp(xm - xm.max(-1, keepdims=True))
    w = np.where(mask, e / e.sum(-1, keepdims=True), 0.0)
    for g, r in zip(T.jit(f)(x), (w, np.transpose(w, (0, 2, 1, 3)) * 2 + 1,
                                  (w * x).sum(axis=(0, 2)))):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-6)
    loss = lambda x: sum(tnp.sum(t * t) for t in f(x))  # noqa: E731
    np.testing.assert_allclose(T.jit(T.grad(loss))(x), T.grad(loss)(x), rtol=1e-5, atol=1e-6)


def test_attention_heads_merge_without_copies():
    """Splitting (B, T, H*D) into heads, a batched product per head and merging the heads
    back (transpose (0, 2, 1, 3) + reshape): each head's product is written by BLAS with a
    row stride straight into the merged layout, in the forward pass and in the gradients of
    queries, keys and values (the keys' one behind two more transposes), so no copy loop
    remains; values and gradients as eager."""
    B, L, H, D = 3, 12, 4, 8
    q, k, v = (RNG.standard_normal((B, L, H * D)).astype(np.float32) for _ in range(3))

    def split(a):
        return tnp.transpose(tnp.reshape(a, (B, L, H, D)), (0, 2, 1, 3))

    def attn(q, k, v):
        s = tnp.matmul(split(q), tnp.swapaxes(split(k), -1, -2)) * np.float32(D ** -0.5)
        w = tnp.exp(s - tnp.max(s, axis=-1, keepdims=True))
        o = tnp.matmul(w / tnp.sum(w, axis=-1, keepdims=True), split(v))
        return tnp.reshape(tnp.transpose(o, (0, 2, 1, 3)), (B, L, H * D)) * 2.0

    loss = lambda q, k, v: tnp.sum(tnp.sin(attn(q, k, v)))  # noqa: E731
    g = T.jit(T.grad(loss, argnums=(0, 1, 2)))
    for fn, args in ((T.jit(attn), (q, k, v)), (g, (q, k, v))):
        src = fn.lower(*args).source
        body = src[src.index("def _fn("):src.index("def make_runner(")]
        assert "out_layout=(0, 2, 1, 3)" in body
        # a copy would be a loop into a fresh `_cN = _np.empty(...)` buffer
        assert "= reshape[new_sizes=(3, 12, 32)]" in body
        assert not re.search(r"_c\d+ = _np\.empty\(", body), body
    np.testing.assert_allclose(T.jit(attn)(q, k, v), attn(q, k, v), rtol=1e-5, atol=1e-5)
    for got, want in zip(g(q, k, v), T.grad(loss, argnums=(0, 1, 2))(q, k, v)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert g.lower(q, k, v).source.count("out_layout=(0, 2, 1, 3)") >= 4


def test_row_sums_beside_column_sums_add_up_after_the_row_loop():
    """A loop nest holding both column sums and a float row sum (a layer norm's gradient),
    or a row sum beside stored work: the row's summands go to a row buffer and are added up
    after the inner loop, so the inner loop carries no dependence from one iteration to the
    next; values as eager."""
    x = RNG.standard_normal((6, 5, 40)).astype(np.float32)
    g = RNG.standard_normal((40,)).astype(np.float32)

    def f(x, g):
        y = x * g
        return tnp.sum(y, axis=(0, 1)), tnp.sum(x * y, axis=2), tnp.sum(y * 2.0, axis=(0, 2))

    src = T.jit(f).lower(x, g).source
    assert re.search(r"for _j in range\(40\): _sum\d+ = _k_add_reassoc\(_sum\d+, _rs\d+\[_j\]\)",
                     src), src
    for got, want in zip(T.jit(f)(x, g), f(x, g)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    np.testing.assert_allclose(T.jit(f)(x64, g64)[1], np.sum(x64 * (x64 * g64), axis=2),
                               rtol=1e-13, atol=1e-13)

    # a row sum alone over the rows (row form) whose summands are not stored, beside a
    # stored elementwise result (softmax's backward): the same row buffer
    def h(x, g):
        y = x * g
        return y, tnp.sum(-(y * x), axis=-1)
    src = T.jit(h).lower(x, g).source
    assert re.search(r"for _j in range\(40\): \w+_ = _k_add_reassoc\(\w+_, _rs\d+\[_j\]\)",
                     src), src
    for got, want in zip(T.jit(h)(x, g), h(x, g)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(T.jit(h)(x64, g64)[1], np.sum(-(x64 * g64 * x64), axis=-1),
                               rtol=1e-13, atol=1e-13)


def test_add_reassoc_sum_loop_vectorises():
    """kernels.add_reassoc lets LLVM's loop vectoriser turn a float running sum into vector
    partial sums (what the fused reductions rely on): the compiled loop holds a vector
    `fadd reassoc`, and the sum is the array's sum."""
    from numba import njit

    from transforms.backend.numba.kernels import add_reassoc

    @njit(cache=False)
    def total(a):
        acc = np.float32(0.0)
        for i in range(a.shape[0]):
            acc = add_reassoc(acc, a[i])
        return acc
    a = RNG.standard_normal(1000).astype(np.float32)
    np.testing.assert_allclose(total(a), a.astype(np.float64).sum(), rtol=1e-5, atol=1e-4)
    ir = "\n".join(total.inspect_llvm().values())
    assert re.search(r"fadd reassoc <\d+ x float>", ir), "the sum loop did not vectorise"


def test_float_sums_accumulate_reassociably():
    """Float sum reductions accumulate through kernels.add_reassoc (an `fadd reassoc`), so
    LLVM vectorises a row sum or a full sum (a gradient's squared norm) instead of waiting on
    every addition in order; integer and boolean sums stay exact plain additions. Values as
    NumPy's, including long rows, NaN/inf and empty rows."""
    x = RNG.standard_normal((7, 300)).astype(np.float32)
    xi = RNG.integers(-5, 5, (7, 300)).astype(np.int32)

    def f(x, xi):
        return (tnp.sum(x * x), tnp.sum(x, axis=1), tnp.mean(x, axis=0), tnp.sum(xi, axis=1),
                tnp.sum(xi > 0, axis=0))
    src = T.jit(f).lower(x, xi).source
    sums = [ln for ln in src.splitlines() if "= reduce_sum" in ln and "#" in ln
            and not ln.lstrip().startswith("#")]
    f32 = [ln for ln in sums if ":f32[" in ln.split("#")[1]]
    ints = [ln for ln in sums if ":i64[" in ln.split("#")[1]]
    # each float sum accumulates through add_reassoc, or stores its summand in a row buffer
    # that a `for _j` line adds up through add_reassoc
    assert len(f32) == 3 and all("_k_add_reassoc(" in ln or re.match(r"\s*_rs\d+\[", ln)
                                 for ln in f32), sums
    assert all("_k_add_reassoc(" in ln for ln in src.splitlines() if "for _j in" in ln)
    assert len(ints) == 2 and not any("_k_add_reassoc(" in ln for ln in ints), sums
    got = T.jit(f)(x, xi)
    want = (np.sum(x * x), x.sum(1), x.mean(0), xi.sum(1), (xi > 0).sum(0))
    for g_, w_ in zip(got, want):
        if np.asarray(w_).dtype.kind == "f":
            np.testing.assert_allclose(g_, w_, rtol=2e-6, atol=1e-5)
        else:
            np.testing.assert_array_equal(g_, w_)
    # float64: a long sum to near double precision
    x64 = RNG.standard_normal(100_003)
    np.testing.assert_allclose(T.jit(lambda v: tnp.sum(v * v))(x64), np.sum(x64 * x64),
                               rtol=1e-13)
    # NaN and inf propagate as in NumPy; an empty row sums to 0
    y = x.copy()
    y[2, 17], y[4, 250], y[5, 3] = np.nan, np.inf, -np.inf
    rows = T.jit(lambda v: tnp.sum(v, axis=1))(y)
    np.testing.assert_array_equal(np.isnan(rows), np.isnan(y.sum(1)))    # rows 2 and 5
    assert rows[4] == np.inf
    np.testing.assert_allclose(rows[[0, 1, 3, 6]], y.sum(1)[[0, 1, 3, 6]], rtol=2e-6,
                               atol=1e-5)
    assert T.jit(lambda v: tnp.sum(v, axis=1))(np.zeros((3, 0), np.float32)).tolist() == [0, 0, 0]


def test_indexing_gather_scatter_dynamic():
    x = RNG.standard_normal((6, 7)).astype(np.float32)
    idx = np.array([3, 0, 5, 5, 1])
    idx2 = np.array([[0, 1], [3, 4], [5, 6], [0, 1]])

    def indexing(x, idx, idx2, i):
        z = tnp.zeros((6, 7), np.float32)
        return [x[idx], x[idx, 2], x[:, idx], x[idx2[:, 0], idx2[:, 1]],
                tnp.take(x, idx, axis=1), tnp.take_along_axis(x, np.array([[0, 2, 1, 0, 5, 4, 3]]),
                                                               axis=0),
                z.at[idx, 1].add(1.0), z.at[idx].set(x[idx]), z.at[idx2[:, 0], idx2[:, 1]].add(5.),
                x.at[idx].multiply(2.0), x.at[2:4, 1].set(0.0), x[-1],
                lax.scatter_add(z, np.array([[7], [-9], [2], [2]]), tnp.ones((4, 7), np.float32)),
                lax.gather(x, np.array([[7, 1], [-3, 9]])),
                lax.scatter(z, np.array([[1], [1]]), tnp.stack([x[0], x[1]])),
                lax.scatter_mul(x, np.array([[0], [0]]), tnp.full((2, 7), 2.0, np.float32)),
                lax.dynamic_slice(x, (i, i + 1), (2, 3)),
                lax.dynamic_update_slice(x, tnp.ones((2, 2), np.float32), (i, 5)),
                lax.dynamic_slice(x, (i * 10, 0), (3, 7)), x[i]]
    check(indexing, x, idx, idx2, np.int32(2))


def test_scalars_python_scalars_and_random():
    def scal(s, t, n):
        return [s * t + 1, tnp.exp(s), s > t, tnp.sqrt(tnp.abs(s)) * tnp.ones(3) + t,
                tnp.asarray(s * 2).astype(np.int32), n * 2, tnp.asarray(s).astype(np.float32) + n]
    check(scal, np.float32(1.5), np.float32(-0.5), np.int64(3))
    check(scal, 1.5, -0.5, 3)

    def rnd(key):
        k1, k2 = T.random.split(key)
        return [T.random.normal(k1, (3, 4)), T.random.uniform(k2, (5,)),
                T.random.randint(k1, (4,), 0, 10), T.random.bernoulli(k2, 0.3, (6,)),
                T.random.permutation(k1, 8)]
    check(rnd, T.random.key(0))


def test_python_scalar_arguments_are_weakly_typed():
    """As in JAX (and as in the eager call): a Python scalar argument adapts to the arrays it
    meets, so a learning rate passed as a float keeps float32 parameters float32."""
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    cases = [
        (lambda p, lr: p - lr * p, (x, 0.1)),
        (lambda p, lr: p * (-lr / 2) ** 2 + (lr + 1) * p, (x, 0.1)),
        (lambda p, n: p * n, (x, 3)),
        (lambda p, n: p * n + n, (np.arange(4, dtype=np.int8), 3)),
        (lambda p, b: p * b, (x, True)),
        (lambda a, b: a * b, (2.0, 3)),                 # scalars only: float64, as eagerly
    ]
    for f, args in cases:
        got, want = T.jit(f)(*args), f(*args)
        assert got.dtype == np.asarray(want).dtype, (got.dtype, np.asarray(want).dtype)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert T.make_jaxpr(f)(*args).out_avals[0].dtype == np.asarray(want).dtype
    # a training loop passing the rate as a float neither widens nor recompiles
    step = T.jit(lambda p, g, lr: p - lr * g)
    p = x
    for lr in (0.1, 0.05, 0.01):
        p = step(p, x, lr)
    assert p.dtype == np.float32 and step.cache_misses == []


def test_unsupported_primitive_is_a_clear_error():
    p = Primitive("my_mystery_op")
    p.def_impl(lambda x: x * 2)
    p.def_abstract_eval(lambda x: ShapedArray(x.shape, x.dtype))
    with pytest.raises(NotImplementedError, match="my_mystery_op"):
        T.jit(lambda x: p.bind(x) + 1)(np.ones(3, np.float32))


# ---------------------------------------------------------------------------------------------
# Fusion, BLAS, buffers: the plan and the generated source
# ---------------------------------------------------------------------------------------------

def test_fusion_plan_adam_and_softmax_and_source():
    p = RNG.standard_normal((30, 20)).astype(np.float32)
    m, v, g = np.zeros_like(p), np.zeros_like(p), RNG.standard_normal((30, 20)).astype(np.float32)

    def adam(p, m, v, g, t):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        mh = m / (1 - 0.9 ** t)
        vh = v / (1 - 0.999 ** t)
        return p - 1e-3 * mh / (tnp.sqrt(vh) + 1e-8), m, v

    lowered = T.jit(adam).lower(p, m, v, g, np.float32(1))
    plan = lowered.as_text().split("fusion plan:")[1]
    assert plan.count("loop nest over [30,20]") == 1, plan       # the update is ONE loop
    assert "def _fn(" in lowered.source and "# " in lowered.source
    assert "= add" in lowered.source                                # IR beside each line

    def xent(x, w, y):
        logits = x @ w
        m = tnp.max(logits, axis=1, keepdims=True)
        lse = tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True)) + m
        return -tnp.mean(tnp.sum(y * (logits - lse), axis=1))
    x = RNG.standard_normal((32, 40)).astype(np.float32)
    w = RNG.standard_normal((40, 30)).astype(np.float32)
    y = np.eye(30, dtype=np.float32)[RNG.integers(0, 30, 32)]
    low = T.jit(T.value_and_grad(xent, argnums=1)).lower(x, w, y)
    src = low.source
    assert len(re.findall(r"_k_gemm\w*\(|_hc\(_kr_gemm", src)) == 2   # forward and dw
    plan = low.as_text().split("fusion plan:")[1]
    assert "transpose" not in plan
    # softmax cross-entropy: the forward rows (max, exp-sum, log) run in one row loop, and so
    # do the backward rows
    assert plan.count("rows fused") == 2 and plan.count("loop nest over [32,30]") == 0
    got = T.jit(T.value_and_grad(xent, argnums=1))(x, w, y)
    assert_same(got, eager(T.value_and_grad(xent, argnums=1), x, w, y), rtol=1e-4, atol=1e-5)
    # transposed operands go to BLAS as flags, not copies
    low = T.jit(lambda a, b: (a.T @ b.T).T).lower(x.T.copy(), w.T.copy())
    body = low.source.split("def _fn")[1].split("return")[0]
    # one product, no copies
    assert len(re.findall(r"_k_gemm\w*\(|_hc\(_kr_gemm", body)) == 1 and "for " not in body
    np.testing.assert_allclose(T.jit(lambda a, b: (a.T @ b.T).T)(x.T.copy(), w.T.copy()),
                               (x @ w).T, rtol=1e-4, atol=1e-4)


def test_outputs_inputs_literals_and_layouts():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    c = np.arange(4.0, dtype=np.float32)

    def f(x, y):
        return {"x": x, "two": 2.0, "t": x.T, "c": c, "s": tnp.sum(x), "r": x.reshape(12) + c[0],
                "y": y}
    out = T.jit(f)(x, 1)
    assert out["x"] is x and out["y"] == 1 and out["two"] == 2.0
    np.testing.assert_array_equal(out["t"], x.T)
    np.testing.assert_array_equal(out["c"], c)
    assert out["c"] is not c                                         # constants are copied
    np.testing.assert_allclose(out["s"], x.sum(), rtol=1e-6)
    assert out["s"].shape == () and isinstance(out["s"], np.ndarray)
    # non-contiguous and read-only inputs are accepted
    g = T.jit(lambda a: a * 2 + 1)
    xt = np.asfortranarray(RNG.standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_allclose(g(xt), xt * 2 + 1)
    ro = np.broadcast_to(np.float32(3), (4, 3))
    np.testing.assert_allclose(g(ro), np.full((4, 3), 7.0))
    np.testing.assert_allclose(g(xt.T[::1]), xt.T * 2 + 1)
    # zero-size arrays: empty loops, reductions give their identities
    e = np.zeros((0, 4), np.float32)
    out = T.jit(lambda e: (e.sum(), tnp.sum(e, axis=0), e * 2, e.max(initial=-1.0)))(e)
    assert_same(out, (np.float32(0), np.zeros(4, np.float32), e, np.float32(-1)))
    with pytest.raises(NotImplementedError, match="float16"):
        T.jit(lambda a: a.astype(np.float16))(x)


# ---------------------------------------------------------------------------------------------
# The jit API: keys, statics, recompiles, errors, decorators
# ---------------------------------------------------------------------------------------------

def test_recompiles_on_new_shapes_dtypes_statics_never_stale(caplog):
    calls = []

    def f(x, n, scale=1.0):
        calls.append(1)
        return x * n + scale

    jf = T.jit(f, static_argnums=1, static_argnames="scale")
    a = np.ones(3, np.float32)
    np.testing.assert_allclose(jf(a, 2), 3.0)
    np.testing.assert_allclose(jf(a, 2), 3.0)
    assert len(calls) == 1                                           # cached
    with caplog.at_level(logging.INFO, logger="transforms.jit"):
        np.testing.assert_allclose(jf(a, 3), 4.0)                     # new static value
        np.testing.assert_allclose(jf(np.ones(4, np.float32), 3), np.full(4, 4.0))   # shape
        r = jf(np.ones(4, np.float64), 3)                             # dtype
        assert r.dtype == np.float64
        np.testing.assert_allclose(jf(a, 3, scale=5.0), 8.0)          # static kwarg
        np.testing.assert_allclose(jf(a, n=3, scale=5.0), 8.0)        # static by name
    assert len(calls) == 6
    msgs = " | ".join(jf.cache_misses)
    assert "static argument position 1: 2 -> 3" in msgs
    assert "f32[3] -> f32[4]" in msgs and "f32[4] -> f64[4]" in msgs
    assert "'scale'" in msgs
    assert any("recompiling" in r.getMessage() for r in caplog.records)


def test_tree_structure_change_recompiles_with_reason():
    jf = T.jit(lambda d: tnp.sum(d["a"]) + tnp.sum(d["b"]) if "b" in d else tnp.sum(d["a"]))
    a = np.ones(2, np.float32)
    assert float(jf({"a": a})) == 2.0
    assert float(jf({"a": a, "b": a * 3})) == 8.0
    assert "tree structure" in jf.cache_misses[-1]
    assert float(jf({"a": a})) == 2.0                                 # the first one is kept


def test_kwargs_pytrees_and_errors():
    @T.jit
    def f(params, x, *, bias):
        return {"y": params["w"] @ x + bias, "n": tnp.sum(x)}, [x * 2]

    w = RNG.standard_normal((2, 3)).astype(np.float32)
    x = np.ones(3, np.float32)
    out = f({"w": w}, x, bias=np.float32(1))
    np.testing.assert_allclose(out[0]["y"], w @ x + 1, rtol=1e-6)
    np.testing.assert_allclose(out[1][0], 2 * x)
    with pytest.raises(TypeError, match="static"):
        T.jit(lambda x, s: x, static_argnums=1)(x, [1, 2])            # unhashable static
    with pytest.raises(TypeError, match="not an array"):
        T.jit(lambda x, s: x)(x, "hello")

    class Model:
        def __init__(self, k):
            self.k = k

        @functools.partial(T.jit, static_argnums=0)
        def apply(self, x):
            return x * self.k

        def __hash__(self):
            return hash(self.k)

        def __eq__(self, other):
            return isinstance(other, Model) and other.k == self.k
    np.testing.assert_allclose(Model(3.0).apply(x), 3 * x)

    low = T.jit(lambda x: tnp.sin(x) * 2).lower(x)
    assert "sin" in low.as_text() and "_k_sin_f32" in low.source
    assert low.compile()(x).shape == (3,)


def test_donated_arguments_are_updated_in_place():
    def step(p, m, g):
        m2 = 0.9 * m + 0.1 * g
        return p - 0.01 * m2, m2, tnp.sum(p), p.T * 1.0

    p = RNG.standard_normal((3, 4)).astype(np.float32)
    m, g = np.ones((3, 4), np.float32), np.full((3, 4), 2.0, np.float32)
    ref = eager(step, p, m, g)
    pp, mm = p.copy(), m.copy()
    out = T.jit(step, donate_argnums=(0, 1))(pp, mm, g)
    assert_same(out, ref)
    # a donated buffer holds an output of its shape; p's cannot (p is read again, transposed,
    # after the update)
    assert np.shares_memory(out[0], mm) or np.shares_memory(out[1], mm)
    assert not any(np.shares_memory(o, pp) for o in out)
    np.testing.assert_array_equal(g, np.full((3, 4), 2.0, np.float32))   # not donated: intact


def _poison_empty(monkeypatch):
    """Make every np.empty buffer NaN-filled (fresh processes get zero pages, hiding
    code that reads memory it never wrote)."""
    real = np.empty

    def poisoned(shape, dtype=float, *args, **kwargs):
        out = real(shape, dtype, *args, **kwargs)
        if np.dtype(dtype).kind == "f":
            out.fill(np.nan)
        elif np.dtype(dtype).kind in "iu":
            out.fill(77)
        return out
    monkeypatch.setattr(np, "empty", poisoned)


def test_reductions_over_size_one_axes_write_their_results(monkeypatch):
    # regression: a reduction whose reduced axes all had size 1 never stored its result, so
    # the output was whatever the (uninitialised) buffer held
    _poison_empty(monkeypatch)
    rng = np.random.default_rng(3)
    for shape, axes in [((4, 1, 3), (1,)), ((1, 1), (0, 1)), ((3, 1), (1,)),
                        ((2, 1, 1, 4), (1, 2)), ((6, 1), (0, 1))]:
        x = rng.random(shape).astype(np.float32)
        for name in ("reduce_sum", "reduce_max", "reduce_prod"):
            f = T.jit(lambda x, name=name, axes=axes: getattr(lax, name)(x * 2 + 1, axes))
            np.testing.assert_allclose(f(x), getattr(lax, name)(x * 2 + 1, axes), rtol=1e-6)


def test_non_finite_constant_outputs():
    f = T.jit(lambda x: (x + 1, tnp.full((3,), np.inf, np.float32), tnp.full((2,), -np.inf)))
    a, b, c = f(np.ones(2, np.float32))
    assert np.all(np.isposinf(b)) and np.all(np.isneginf(c)) and b.dtype == np.float32
