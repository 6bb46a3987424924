"""transforms.numpy against NumPy 2: values and dtypes (NEP 50) eagerly, the same dtypes while
tracing (make_jaxpr and under grad), operators/indexing/methods on tracers, `.at[]` updates,
and derivatives of the differentiable functions (check_grads, float64)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree
from transforms.errors import ConcretizationTypeError
from transforms.test_util import check_grads

from op_table import OPS as TABLE_OPS, OpInfo, op_rng

# Draws only while the module is imported, for the constant inputs of the case tables below;
# each test then gets its own generator (conftest._per_test_rng rebinds `rng`).
rng = np.random.default_rng(7)

F32 = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
F64 = rng.uniform(-1, 1, (3, 4))
P32 = rng.uniform(0.5, 2, (3, 4)).astype(np.float32)       # positive
U32 = rng.uniform(-0.8, 0.8, (3, 4)).astype(np.float32)    # inside (-1, 1)
I32 = rng.integers(-5, 6, (3, 4)).astype(np.int32)
PI32 = rng.integers(1, 6, (3, 4)).astype(np.int32)
I8 = rng.integers(-3, 4, (3, 4)).astype(np.int8)
B = rng.random((3, 4)) < 0.5
V32 = rng.uniform(-1, 1, (4,)).astype(np.float32)
W32 = rng.uniform(-1, 1, (4, 5)).astype(np.float32)
A3 = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
B3 = rng.uniform(-1, 1, (2, 4, 5)).astype(np.float32)
SQ = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
NANS = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
ARGSORT = np.argsort(F32, axis=1)
X1 = rng.uniform(-1, 1, (3, 1, 4)).astype(np.float32)

# (id, fn(m, *args) with m = numpy or tnp, args)
CASES = [
    # creation
    ("array_int_list", lambda m: m.array([1, 2, 3]), ()),
    ("array_float_list", lambda m: m.array([1.0, 2, 3]), ()),
    ("array_dtype", lambda m, x: m.array(x, dtype=m.float32), (F64,)),
    ("asarray", lambda m, x: m.asarray(x), (I32,)),
    ("asarray_scalar", lambda m: m.asarray(3.0), ()),
    ("zeros", lambda m: m.zeros((2, 3)), ()),
    ("zeros_int", lambda m: m.zeros(3, dtype=m.int32), ()),
    ("ones", lambda m: m.ones((2, 1), m.float32), ()),
    ("full_int", lambda m: m.full((2,), 7), ()),
    ("full_float32", lambda m: m.full((2, 2), 1.5, dtype=m.float32), ()),
    ("zeros_like", lambda m, x: m.zeros_like(x), (I32,)),
    ("ones_like", lambda m, x: m.ones_like(x), (F32,)),
    ("full_like", lambda m, x: m.full_like(x, 2), (F32,)),
    ("full_like_dtype", lambda m, x: m.full_like(x, 2, dtype=m.int64), (F32,)),
    ("arange", lambda m: m.arange(5), ()),
    ("arange_step", lambda m: m.arange(1, 7, 2), ()),
    ("arange_float", lambda m: m.arange(0.0, 1.0, 0.25), ()),
    ("arange_dtype", lambda m: m.arange(5, dtype=m.float32), ()),
    ("linspace", lambda m: m.linspace(0, 1, 5), ()),
    ("linspace_noend", lambda m: m.linspace(0, 1, 4, endpoint=False, dtype=m.float32), ()),
    ("eye", lambda m: m.eye(3), ()),
    ("eye_k", lambda m: m.eye(2, 3, k=1, dtype=m.int32), ()),
    # arithmetic and promotion (NEP 50)
    ("add_f32_f64", lambda m, x, y: m.add(x, y), (F32, F64)),
    ("add_f32_pyfloat", lambda m, x: m.add(x, 2.0), (F32,)),
    ("add_i32_pyint", lambda m, x: m.add(x, 2), (I32,)),
    ("add_i32_pyfloat", lambda m, x: m.add(x, 2.5), (I32,)),
    ("add_i8_i32", lambda m, x, y: m.add(x, y), (I8, I32)),
    ("add_f32_i32", lambda m, x, y: m.add(x, y), (F32, I32)),
    ("add_bool_bool", lambda m, x: m.add(x, x), (B,)),
    ("add_broadcast", lambda m, x, v: m.add(x, v), (F32, V32)),
    ("subtract", lambda m, x, y: m.subtract(x, y), (F32, I8)),
    ("multiply_i8_pyint", lambda m, x: m.multiply(x, 3), (I8,)),
    ("multiply_f32_pyfloat", lambda m, x: m.multiply(2.5, x), (F32,)),
    ("divide_i32_pyint", lambda m, x: m.divide(x, 2), (I32,)),
    ("true_divide_i8", lambda m, x, y: m.true_divide(x, y), (I8, PI32)),
    ("divide_f32", lambda m, x, y: m.divide(x, y), (F32, P32)),
    ("power_f32_2", lambda m, x: m.power(x, 2), (F32,)),
    ("power_f32_3", lambda m, x: m.power(x, 3), (F32,)),
    ("power_i32_2", lambda m, x: m.power(x, 2), (I32,)),
    ("power_i32_pyfloat", lambda m, x: m.power(x, 2.0), (I32,)),
    ("power_pyfloat_f32", lambda m, x: m.power(2.0, x), (F32,)),
    ("power_arrays", lambda m, x, y: m.power(x, y), (P32, F32)),
    ("power_f32_half", lambda m, x: m.power(x, 0.5), (P32,)),
    ("negative_i32", lambda m, x: m.negative(x), (I32,)),
    ("abs_i32", lambda m, x: m.abs(x), (I32,)),
    ("sign_int", lambda m, x: m.sign(x), (I32,)),
    ("exp_i32", lambda m, x: m.exp(x), (I32,)),
    ("exp_i8", lambda m, x: m.exp(x), (I8,)),
    ("log_int", lambda m, x: m.log(x), (PI32,)),
    ("log2", lambda m, x: m.log2(x), (P32,)),
    ("sqrt_bool", lambda m, x: m.sqrt(x), (B,)),
    ("square_i32", lambda m, x: m.square(x), (I32,)),
    ("square_bool", lambda m, x: m.square(x), (B,)),
    ("square_f32", lambda m, x: m.square(x), (F32,)),
    ("reciprocal", lambda m, x: m.reciprocal(x), (P32,)),
    ("maximum_scalar", lambda m, x: m.maximum(x, 0.0), (F32,)),
    ("minimum_mixed", lambda m, x, y: m.minimum(x, y), (I32, F32)),
    ("clip", lambda m, x: m.clip(x, -0.5, 0.5), (F32,)),
    ("clip_int", lambda m, x: m.clip(x, 1, 3), (I32,)),
    ("clip_int_float_bound", lambda m, x: m.clip(x, 1.5, 3), (I32,)),
    ("clip_one_sided", lambda m, x: m.clip(x, None, 0.25), (F32,)),
    ("where", lambda m, c, x: m.where(c, x, 0.0), (B, F32)),
    ("where_mixed", lambda m, c, x, y: m.where(c, x, y), (B, I32, F64)),
    ("where_scalars", lambda m, c: m.where(c, 1, 2), (B,)),
    ("where_broadcast", lambda m, c, v: m.where(c, v, -v), (B, V32)),
    ("floor", lambda m, x: m.floor(x * 3), (F32,)),
    ("ceil", lambda m, x: m.ceil(x * 3), (F32,)),
    ("round", lambda m, x: m.round(x * 3), (F32,)),
    ("round_halves", lambda m: m.round(m.array([0.5, 1.5, 2.5, -0.5, -2.5])), ()),
    ("round_decimals", lambda m, x: m.round(x, 2), (F64,)),
    ("round_int", lambda m, x: m.round(x), (I32,)),
    # comparisons and logic
    ("equal", lambda m, x: m.equal(x, 2), (I32,)),
    ("not_equal", lambda m, x, y: m.not_equal(x, y), (F32, F64)),
    ("less", lambda m, x: m.less(x, 2.5), (I32,)),
    ("less_equal", lambda m, x: m.less_equal(x, 0.0), (F32,)),
    ("greater", lambda m, x, y: m.greater(x, y), (F32, I32)),
    ("greater_equal", lambda m, x: m.greater_equal(x, 1), (I8,)),
    ("logical_and", lambda m, x, y: m.logical_and(x, y), (B, I32)),
    ("logical_or", lambda m, x, y: m.logical_or(x, y), (B, F32)),
    ("logical_not", lambda m, x: m.logical_not(x), (I32,)),
    ("isnan", lambda m, x: m.isnan(x), (NANS,)),
    ("isfinite", lambda m, x: m.isfinite(x), (NANS,)),
    ("isfinite_int", lambda m, x: m.isfinite(x), (I32,)),
    # reductions
    ("sum", lambda m, x: m.sum(x), (F32,)),
    ("sum_i8", lambda m, x: m.sum(x), (I8,)),
    ("sum_bool", lambda m, x: m.sum(x), (B,)),
    ("sum_axis", lambda m, x: m.sum(x, axis=0), (F32,)),
    ("sum_keepdims", lambda m, x: m.sum(x, axis=(0, 1), keepdims=True), (F32,)),
    ("sum_neg_axis", lambda m, x: m.sum(x, axis=-1), (A3,)),
    ("sum_dtype", lambda m, x: m.sum(x, dtype=m.float32), (I32,)),
    ("mean_int", lambda m, x: m.mean(x), (I32,)),
    ("mean_i8_axis", lambda m, x: m.mean(x, axis=0), (I8,)),
    ("mean_axis_keepdims", lambda m, x: m.mean(x, axis=1, keepdims=True), (F32,)),
    ("mean_multi_axis", lambda m, x: m.mean(x, axis=(0, 2)), (A3,)),
    ("max", lambda m, x: m.max(x, axis=0), (F32,)),
    ("max_keepdims", lambda m, x: m.max(x, keepdims=True), (F32,)),
    ("min_int", lambda m, x: m.min(x), (I32,)),
    ("min_axis", lambda m, x: m.min(x, axis=1), (F64,)),
    ("prod_i8", lambda m, x: m.prod(x), (I8,)),
    ("prod_axis", lambda m, x: m.prod(x, axis=1), (F32,)),
    ("var", lambda m, x: m.var(x), (F32,)),
    ("var_int", lambda m, x: m.var(x), (I32,)),
    ("var_axis_keepdims", lambda m, x: m.var(x, axis=1, keepdims=True), (F32,)),
    ("std_ddof", lambda m, x: m.std(x, axis=0, ddof=1), (F64,)),
    ("std", lambda m, x: m.std(x), (F32,)),
    ("argmax", lambda m, x: m.argmax(x), (F32,)),
    ("argmax_axis", lambda m, x: m.argmax(x, axis=1), (F32,)),
    ("argmin_axis", lambda m, x: m.argmin(x, axis=0), (F64,)),
    ("argmax_keepdims", lambda m, x: m.argmax(x, axis=0, keepdims=True), (F32,)),
    ("cumsum_flat", lambda m, x: m.cumsum(x), (F32,)),
    ("cumsum_i8", lambda m, x: m.cumsum(x, axis=1), (I8,)),
    ("cumsum_bool", lambda m, x: m.cumsum(x, axis=0), (B,)),
    ("logaddexp", lambda m, x, y: m.logaddexp(x, y), (F32, P32)),
    ("logaddexp_int", lambda m, x, y: m.logaddexp(x, y), (I32, I8)),
    ("logaddexp_scalar", lambda m, x: m.logaddexp(x, 0.5), (F64,)),
    ("logaddexp_large", lambda m: m.logaddexp(m.array([1000.0, -1000.0, -np.inf]),
                                              m.array([1000.0, -999.0, -np.inf])), ()),
    ("all", lambda m, x: m.all(x), (B,)),
    ("any_axis", lambda m, x: m.any(x, axis=0), (B,)),
    ("all_float", lambda m, x: m.all(x, axis=1, keepdims=True), (F32,)),
    # contractions
    ("dot_mv", lambda m, a, v: m.dot(a, v), (F32, V32)),
    ("dot_int", lambda m, a: m.dot(a, a.T), (I32,)),
    ("dot_mixed", lambda m, a, w: m.dot(a, w), (F64, W32)),
    ("dot_scalar", lambda m, a: m.dot(a, 2.0), (F32,)),
    ("dot_3d", lambda m, a, w: m.dot(a, w), (A3, W32)),
    ("matmul", lambda m, a, w: m.matmul(a, w), (F32, W32)),
    ("matmul_3d", lambda m, a, b: m.matmul(a, b), (A3, B3)),
    ("matmul_mv", lambda m, a, v: m.matmul(a, v), (F32, V32)),
    ("matmul_vm", lambda m, v, w: m.matmul(v, w), (V32, W32)),
    ("matmul_3d_2d", lambda m, a, w: m.matmul(a, w), (A3, W32)),
    ("matmul_bcast", lambda m, a, b: m.matmul(a[:1], b), (A3, B3)),
    ("einsum_mm", lambda m, a, w: m.einsum("ij,jk->ik", a, w), (F32, W32)),
    ("einsum_bmm", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), (A3, B3)),
    ("einsum_dot", lambda m, v: m.einsum("i,i->", v, v), (V32,)),
    ("einsum_T", lambda m, a: m.einsum("ij->ji", a), (F32,)),
    ("einsum_diag", lambda m, a: m.einsum("ii->i", a), (SQ,)),
    ("einsum_trace", lambda m, a: m.einsum("ii", a), (SQ,)),
    ("einsum_sum", lambda m, a: m.einsum("ij->", a), (F32,)),
    ("einsum_rowdot", lambda m, a, b: m.einsum("ij,ij->i", a, b), (F32, P32)),
    ("einsum_implicit", lambda m, a, w: m.einsum("ij,jk", a, w), (F32, W32)),
    ("einsum_ellipsis", lambda m, a, b: m.einsum("...ij,...jk->...ik", a, b), (A3, B3)),
    ("einsum_outer", lambda m, v, w: m.einsum("i,jk->ijk", v, w), (V32, W32)),
    ("einsum_three", lambda m, a, w, v: m.einsum("ij,jk,j->ik", a, w, v), (F32, W32, V32)),
    ("tensordot_1", lambda m, a, w: m.tensordot(a, w, axes=1), (F32, W32)),
    ("tensordot_2", lambda m, a, b: m.tensordot(a, b, axes=2), (A3, A3[0].copy())),
    ("tensordot_pairs", lambda m, a, b: m.tensordot(a, b, axes=([1, 2], [2, 1])),
     (A3, A3.transpose(0, 2, 1).copy())),
    ("tensordot_0", lambda m, v: m.tensordot(v, v, axes=0), (V32,)),
    ("outer", lambda m, v, w: m.outer(v, w), (V32, W32)),
    # shapes
    ("transpose", lambda m, a: m.transpose(a), (F32,)),
    ("transpose_axes", lambda m, a: m.transpose(a, (1, 0, 2)), (A3,)),
    ("reshape", lambda m, a: m.reshape(a, (4, 3)), (F32,)),
    ("reshape_neg", lambda m, a: m.reshape(a, (-1, 2)), (A3,)),
    ("reshape_flat", lambda m, a: m.reshape(a, -1), (F32,)),
    ("swapaxes", lambda m, a: m.swapaxes(a, 0, 2), (A3,)),
    ("moveaxis", lambda m, a: m.moveaxis(a, 0, -1), (A3,)),
    ("moveaxis_multi", lambda m, a: m.moveaxis(a, (0, 1), (2, 0)), (A3,)),
    ("expand_dims", lambda m, a: m.expand_dims(a, 0), (F32,)),
    ("expand_dims_multi", lambda m, a: m.expand_dims(a, (0, 3)), (F32,)),
    ("expand_dims_neg", lambda m, a: m.expand_dims(a, -1), (F32,)),
    ("squeeze", lambda m, a: m.squeeze(a), (X1,)),
    ("squeeze_axis", lambda m, a: m.squeeze(a, axis=1), (X1,)),
    ("ravel", lambda m, a: m.ravel(a), (A3,)),
    ("broadcast_to", lambda m, v: m.broadcast_to(v, (3, 4)), (V32,)),
    ("concatenate", lambda m, a, b: m.concatenate([a, b], axis=1), (F32, F32)),
    ("concatenate_mixed", lambda m, a, b: m.concatenate([a, b]), (F32, I32)),
    ("concatenate_none", lambda m, a, b: m.concatenate([a, b], axis=None), (F32, A3)),
    ("stack", lambda m, a, b: m.stack([a, b]), (F32, F32)),
    ("stack_neg", lambda m, a, b: m.stack([a, b], axis=-1), (F32, F32)),
    ("split", lambda m, a: m.split(a, 2, axis=1), (F32,)),
    ("split_indices", lambda m, a: m.split(a, [1, 3], axis=1), (F32,)),
    ("take", lambda m, a: m.take(a, np.array([0, 2, 2]), axis=1), (F32,)),
    ("take_flat", lambda m, a: m.take(a, np.array([[0, 5], [11, 3]])), (F32,)),
    ("take_neg", lambda m, a: m.take(a, np.array([-1, 0]), axis=0), (F32,)),
    ("take_wrap", lambda m, a: m.take(a, np.array([13, -14, 2]), mode="wrap"), (F32,)),
    ("take_clip", lambda m, a: m.take(a, np.array([13, -14, 2]), axis=1, mode="clip"), (F32,)),
    ("take_along_axis", lambda m, a: m.take_along_axis(a, ARGSORT, axis=1), (F32,)),
    ("take_along_axis_0", lambda m, a: m.take_along_axis(a, np.array([[2, 0, 1, 1]]), axis=0),
     (F32,)),
    ("pad", lambda m, a: m.pad(a, 1), (F32,)),
    ("pad_widths", lambda m, a: m.pad(a, ((1, 0), (0, 2)), constant_values=3), (F32,)),
    ("pad_int", lambda m, a: m.pad(a, ((0, 1), (2, 0))), (I32,)),
    ("tile", lambda m, v: m.tile(v, 2), (V32,)),
    ("tile_2d", lambda m, a: m.tile(a, (2, 1)), (F32,)),
    ("tile_more", lambda m, v: m.tile(v, (2, 1, 2)), (V32,)),
    ("repeat", lambda m, a: m.repeat(a, 2, axis=0), (F32,)),
    ("repeat_flat", lambda m, a: m.repeat(a, 2), (F32,)),
    ("repeat_counts", lambda m, a: m.repeat(a, [1, 2, 0, 1], axis=1), (F32,)),
    ("flip", lambda m, a: m.flip(a), (F32,)),
    ("flip_axis", lambda m, a: m.flip(a, 1), (A3,)),
    ("triu", lambda m, a: m.triu(a), (F32,)),
    ("triu_k", lambda m, a: m.triu(a, 1), (F32,)),
    ("tril_k", lambda m, a: m.tril(a, -1), (F32,)),
    ("tril_3d", lambda m, a: m.tril(a), (A3,)),
    ("norm", lambda m, a: m.linalg.norm(a), (F32,)),
    ("norm_int", lambda m, a: m.linalg.norm(a), (I32,)),
    ("norm_ord1_vec", lambda m, v: m.linalg.norm(v, ord=1), (V32,)),
    ("norm_inf_vec", lambda m, v: m.linalg.norm(v, ord=np.inf), (V32,)),
    ("norm_ord3_vec", lambda m, v: m.linalg.norm(v, ord=3), (V32,)),
    ("norm_axis", lambda m, a: m.linalg.norm(a, axis=1), (F32,)),
    ("norm_fro", lambda m, a: m.linalg.norm(a, "fro"), (F32,)),
    ("norm_keepdims", lambda m, a: m.linalg.norm(a, axis=0, keepdims=True), (F32,)),
    ("norm_mat_1", lambda m, a: m.linalg.norm(a, ord=1), (F64,)),
    ("norm_mat_inf", lambda m, a: m.linalg.norm(a, ord=np.inf), (F64,)),
    ("norm_mat_neg1", lambda m, a: m.linalg.norm(a, ord=-1), (F64,)),
    ("norm_mat_neg_inf", lambda m, a: m.linalg.norm(a, ord=-np.inf, keepdims=True), (F64,)),
    ("norm_axis_inf", lambda m, a: m.linalg.norm(a, ord=np.inf, axis=1), (F32,)),
]


# the one-argument primitives of the shared operator table (op_table.py), through their tnp
# spelling, in each of the table's dtypes, on inputs from the table's domains (drawn here, at
# import, from a generator seeded by the case's name)
CASES += [(f"{op.tnp}-{np.dtype(dt).name}", lambda m, x, _name=op.tnp: getattr(m, _name)(x),
           op.args(op_rng(op.tnp, np.dtype(dt).name, "tnp-value"), (3, 4), dt))
          for op in TABLE_OPS if op.tnp and op.nargs == 1 for dt in op.dtypes]


def _leaves(x):
    return [np.asarray(v) for v in tree.leaves(x)]


def _check_same(ours, ref, tol_scale=1.0):
    lo, lr = _leaves(ours), _leaves(ref)
    assert len(lo) == len(lr)
    for o, r in zip(lo, lr):
        assert o.dtype == r.dtype, f"dtype {o.dtype} != numpy's {r.dtype}"
        assert o.shape == r.shape, f"shape {o.shape} != numpy's {r.shape}"
        if r.dtype.kind == "f":
            rtol = {2: 2e-3, 4: 2e-5, 8: 1e-10}[r.dtype.itemsize] * tol_scale
            np.testing.assert_allclose(o, r, rtol=rtol, atol=rtol)
        else:
            np.testing.assert_array_equal(o, r)


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_eager_matches_numpy(name, fn, args):
    ref = fn(np, *args)
    ours = fn(tnp, *args)
    for o in tree.leaves(ours):
        assert isinstance(o, (np.ndarray, np.generic)), type(o)
    _check_same(ours, ref)


def _traced_avals(fn, args):
    closed = T.make_jaxpr(lambda *a: fn(tnp, *a))(*args)
    return closed.out_avals


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_traced_dtype_matches_eager(name, fn, args):
    ref = _leaves(fn(np, *args))
    # staged (make_jaxpr)
    avals = _traced_avals(fn, args)
    assert [(a.shape, a.dtype) for a in avals] == [(r.shape, r.dtype) for r in ref]
    # under differentiation (JVP tracers over concrete values)
    seen = {}

    def g(*a):
        out = fn(tnp, *a)
        seen["avals"] = [(tuple(np.shape(o)), np.result_type(o)) for o in tree.leaves(out)]
        return out

    out, _ = T.vjp(g, *args)
    assert seen["avals"] == [(r.shape, r.dtype) for r in ref]
    _check_same(out, fn(np, *args))


def test_dtype_names():
    # as jnp.float32: a type usable as a dtype, equal to NumPy's, callable on traced values
    for t, n in [(tnp.float32, np.float32), (tnp.float64, np.float64), (tnp.int32, np.int32),
                 (tnp.int64, np.int64), (tnp.bool_, np.bool_)]:
        assert t == n and np.dtype(t) == np.dtype(n) and np.zeros(2, t).dtype == np.dtype(n)
        assert np.ones(2).astype(t).dtype == np.dtype(n) and isinstance(t, type)
        assert isinstance(n(1), t) and not isinstance(np.ones(2), t)
        assert type(t(1)) is n
    out = T.jit(lambda x: tnp.float32(x) * 2)(np.arange(3))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 2.0, 4.0]
    assert T.grad(lambda x: tnp.sum(tnp.float32(x) ** 2))(np.ones(2, np.float32)).tolist() == [2, 2]


# ---------------------------------------------------------------------------------------------
# NEP 50 spot checks with the operators, under tracing
# ---------------------------------------------------------------------------------------------

def _traced(f, *args):
    """Run `f` on tracers (under jvp) and return the concrete outputs."""
    out, _ = T.jvp(f, args, tuple(np.zeros_like(a) if np.issubdtype(np.asarray(a).dtype,
                                                                      np.inexact)
                                  else np.zeros_like(a) for a in args))
    return out


OPS = [
    ("add", lambda x, y: x + y), ("radd", lambda x, y: 1.5 + x), ("sub", lambda x, y: x - y),
    ("rsub", lambda x, y: 2 - x), ("mul", lambda x, y: x * y), ("rmul", lambda x, y: 3 * x),
    ("truediv", lambda x, y: x / y), ("rtruediv", lambda x, y: 1 / y),
    ("floordiv", lambda x, y: x // y), ("rfloordiv", lambda x, y: 7 // y),
    ("pow", lambda x, y: abs(x) ** 2), ("pow_float", lambda x, y: abs(y) ** 1.5),
    ("rpow", lambda x, y: 2.0 ** x), ("mod", lambda x, y: x % y), ("rmod", lambda x, y: 5 % y),
    ("neg", lambda x, y: -x), ("pos", lambda x, y: +x), ("abs", lambda x, y: abs(x)),
    ("lt", lambda x, y: x < y), ("le", lambda x, y: x <= y), ("gt", lambda x, y: x > 0),
    ("ge", lambda x, y: x >= y), ("eq", lambda x, y: x == y), ("ne", lambda x, y: x != y),
    ("matmul", lambda x, y: x @ y.T), ("rmatmul_np", lambda x, y: np.ones((2, 3), x.dtype) @ x),
    ("ndarray_plus_tracer", lambda x, y: np.full(x.shape, 2, x.dtype) + x),
    ("npscalar_times_tracer", lambda x, y: np.float32(2) * x),
    ("npfloat64_times_tracer", lambda x, y: np.float64(2) * x),
    ("ndarray_lt_tracer", lambda x, y: np.zeros(x.shape, x.dtype) < x),
    ("ndarray_div_tracer", lambda x, y: np.ones(x.shape, np.float32) / y),
]

OP_INPUTS = {
    "f32": (rng.uniform(-3, 3, (3, 4)).astype(np.float32),
            rng.uniform(0.5, 3, (3, 4)).astype(np.float32)),
    "f64": (rng.uniform(-3, 3, (3, 4)), rng.uniform(0.5, 3, (3, 4))),
    "i32": (rng.integers(-7, 8, (3, 4)).astype(np.int32),
            rng.integers(1, 4, (3, 4)).astype(np.int32)),
    "mixed": (rng.integers(-7, 8, (3, 4)).astype(np.int32),
              rng.uniform(0.5, 3, (3, 4)).astype(np.float32)),
}


@pytest.mark.parametrize("kind", list(OP_INPUTS))
@pytest.mark.parametrize("name,op", OPS, ids=[o[0] for o in OPS])
def test_operators_on_tracers(name, op, kind):
    x, y = OP_INPUTS[kind]
    ref = op(x, y)
    _check_same(_traced(op, x, y), ref)
    (aval,) = T.make_jaxpr(op)(x, y).out_avals
    assert (aval.shape, aval.dtype) == (np.shape(ref), np.result_type(ref))


def test_floor_mod_negative_ints():
    x = np.array([-7, -1, 0, 5, 7], np.int32)
    y = np.array([2, -3, 4, -2, 3], np.int32)
    _check_same(_traced(lambda a, b: a // b, x, y), x // y)
    _check_same(_traced(lambda a, b: a % b, x, y), x % y)
    xf, yf = x.astype(np.float64) + 0.5, y.astype(np.float64)
    _check_same(_traced(lambda a, b: a % b, xf, yf), xf % yf)
    _check_same(_traced(lambda a, b: a // b, xf, yf), xf // yf)


def test_weak_scalars_keep_float32():
    x = np.ones(3, np.float32)
    f = lambda x: (x * 2.0 + 1) / 3.0 - x ** 2 + np.float32(0.5)  # noqa: E731
    assert T.make_jaxpr(f)(x).out_avals[0].dtype == np.float32
    # a numpy float64 scalar is not weak: it promotes (NumPy 2)
    assert T.make_jaxpr(lambda x: x * np.float64(2.0))(x).out_avals[0].dtype == np.float64
    assert T.grad(lambda x: (x * 2.0).sum())(x).dtype == np.float32


def test_int_division_gives_float64():
    x = np.arange(4, dtype=np.int32)
    assert T.make_jaxpr(lambda x: x / 2)(x).out_avals[0].dtype == np.float64
    assert T.make_jaxpr(lambda x: tnp.mean(x))(x).out_avals[0].dtype == np.float64
    assert T.make_jaxpr(lambda x: tnp.sum(x.astype(np.int8)))(x).out_avals[0].dtype == np.int64


# ---------------------------------------------------------------------------------------------
# indexing
# ---------------------------------------------------------------------------------------------

X = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)

INDICES = [
    ("int", 1), ("neg_int", -1), ("tuple_ints", (1, 2)), ("slice", np.s_[1:]),
    ("slice_step", np.s_[:, ::2]), ("neg_step", np.s_[::-1]), ("neg_step2", np.s_[:, 2:0:-1]),
    ("neg_step3", np.s_[..., ::-3]), ("empty_slice", np.s_[:, 2:1]),
    ("none", np.s_[None]), ("none_mid", np.s_[:, None, 1]), ("ellipsis", np.s_[..., 1]),
    ("ellipsis_mid", np.s_[0, ..., 1:3]), ("mixed_basic", np.s_[1, :, None, ::2, -1]),
    ("int_array", np.array([1, 0, 1])), ("int_list", [0, 0, 1]),
    ("int_array_2d", np.array([[0, 1], [1, 0]])),
    ("adjacent_adv", np.s_[:, np.array([0, 2]), np.array([1, 3])]),
    ("adjacent_adv_bcast", np.s_[:, np.array([[0], [2]]), np.array([1, 3])]),
    ("non_adjacent_adv", np.s_[:, np.array([0, 2]), :, np.array([1, 3])]),
    ("adv_first_and_last", np.s_[np.array([1, 0]), ..., np.array([4, 0])]),
    ("adv_with_int", np.s_[1, :, np.array([0, 3])]),          # int + array: non-adjacent? no
    ("adv_int_separated", np.s_[np.array([0, 1]), 1, :, np.array([2, 2])]),
    ("adv_and_slice", np.s_[np.array([1, 0]), 1:3]),
    ("adv_neg", np.s_[:, np.array([-1, -3])]),
    ("adv_none", np.s_[None, np.array([1, 0]), :, 1]),
    ("bool_scalar_like", np.s_[:, :, np.array([True, False, True, True])]),
]


@pytest.mark.parametrize("name,idx", INDICES, ids=[i[0] for i in INDICES])
def test_getitem_traced(name, idx):
    ref = X[idx]
    out = _traced(lambda x: x[idx], X)
    _check_same(out, ref)
    if name.startswith("bool"):
        return
    (aval,) = T.make_jaxpr(lambda x: x[idx])(X).out_avals
    assert aval.shape == ref.shape


@pytest.mark.parametrize("name,idx", [i for i in INDICES if not i[0].startswith("bool")],
                         ids=[i[0] for i in INDICES if not i[0].startswith("bool")])
def test_getitem_grad(name, idx):
    x = rng.uniform(-1, 1, X.shape)
    w = rng.uniform(-1, 1, X[idx].shape)
    g = T.grad(lambda x: (x[idx] * w).sum())(x)
    ref = np.zeros_like(x)
    pos = np.arange(x.size).reshape(x.shape)[idx]
    np.add.at(ref.reshape(-1), pos.reshape(-1), w.reshape(-1))
    np.testing.assert_allclose(g, ref)


def test_getitem_check_grads_small():
    x = rng.uniform(-1, 1, (3, 4))
    check_grads(lambda x: x[np.array([2, 0, 2]), 1:] * x[:, ::-2].sum(), (x,), order=2)
    check_grads(lambda x: x[None, 1, ..., ::2], (x,), order=2)


def test_traced_scalar_index():
    x = rng.uniform(-1, 1, (5, 3))

    def f(x, i):
        return (x[i] ** 2).sum()

    for i in (0, 3, -1):
        g = T.grad(f)(x, np.int32(i))
        ref = np.zeros_like(x)
        ref[i] = 2 * x[i]
        np.testing.assert_allclose(g, ref)
    assert "dynamic_slice" in str(T.make_jaxpr(f)(x, np.int32(1)))


def test_traced_array_index():
    x = rng.uniform(-1, 1, (5, 3))

    def f(x, idx):
        return x[idx]

    idx = np.array([4, 0, 4])
    jaxpr = T.make_jaxpr(f)(x, idx)
    assert "gather" in str(jaxpr)
    np.testing.assert_allclose(jaxpr(x, idx)[0], x[idx])


def test_boolean_mask_eager_and_under_grad():
    x = rng.uniform(-1, 1, (3, 4))
    g = T.grad(lambda x: (x[x > 0] ** 2).sum())(x)
    np.testing.assert_allclose(g, np.where(x > 0, 2 * x, 0))
    out, _ = T.jvp(lambda x: x[x > 0], (x,), (x,))
    np.testing.assert_allclose(out, x[x > 0])


def test_boolean_mask_error_when_staged():
    x = rng.uniform(-1, 1, (3, 4))
    with pytest.raises(ConcretizationTypeError) as e:
        T.make_jaxpr(lambda x: x[x > 0])(x)
    assert "where" in str(e.value)
    with pytest.raises(ConcretizationTypeError):
        T.make_jaxpr(lambda x: tnp.where(x > 0))(x)


def test_take_out_of_bounds_raises_like_numpy():
    with pytest.raises(IndexError):
        tnp.take(F32, np.array([20]))
    with pytest.raises(IndexError):
        tnp.take(F32, np.array([0, -5]), axis=0)
    # inside transforms, JAX's take: out-of-bounds positions are filled (NaN), or clamped
    # with mode='clip'
    closed = T.make_jaxpr(lambda a, i: tnp.take(a, i, axis=0))(F32, np.array([0]))
    assert np.isnan(closed(F32, np.array([7]))[0]).all()
    closed = T.make_jaxpr(lambda a, i: tnp.take(a, i, axis=0, mode="clip"))(F32, np.array([0]))
    np.testing.assert_array_equal(closed(F32, np.array([7]))[0], F32[[2]])


def test_index_errors():
    x = np.ones((2, 3))
    with pytest.raises(IndexError):
        _traced(lambda x: x[0, 0, 0], x)
    # out-of-bounds indices of traced arrays clamp (as JAX), see test_numpy_parity.py
    np.testing.assert_array_equal(_traced(lambda x: x[2], x), x[1])
    np.testing.assert_array_equal(_traced(lambda x: x[:, np.array([3])], x), x[:, [2]])


# ---------------------------------------------------------------------------------------------
# methods and attributes on tracers
# ---------------------------------------------------------------------------------------------

def test_methods_on_tracers():
    x = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
    seen = {}

    def f(x):
        seen["shape"], seen["ndim"], seen["dtype"], seen["size"] = x.shape, x.ndim, x.dtype, x.size
        return dict(
            reshape=x.reshape(6, 4), reshape_t=x.reshape((4, -1)), sum=x.sum(),
            sum_axis=x.sum(axis=1), sum_kd=x.sum(0, keepdims=True), mean=x.mean(axis=(0, 2)),
            max=x.max(axis=-1), min=x.min(), astype=x.astype(np.int32),
            astype_f64=x.astype(tnp.float64), transpose=x.transpose(),
            transpose_axes=x.transpose(1, 0, 2), transpose_tuple=x.transpose((2, 0, 1)),
            T=x.T, prod=x.prod(axis=0), argmax=x.argmax(axis=1), ravel=x.ravel(),
            squeeze=x[:1].squeeze(0), swapaxes=x.swapaxes(0, 1), var=x.var(), std=x.std(axis=1),
            clip=x.clip(-0.5, 0.5), round=(x * 10).round(), cumsum=x.cumsum(axis=2),
            any=(x > 0).any(), all=(x > -2).all(axis=0))

    ref = f(x)      # numpy arrays have every method
    for mode in ("jvp", "jaxpr"):
        if mode == "jvp":
            out = _traced(f, x)
            _check_same(out, ref)
        else:
            closed = T.make_jaxpr(f)(x)
            want = [(np.shape(r), np.result_type(r)) for r in tree.leaves(ref)]
            assert [(a.shape, a.dtype) for a in closed.out_avals] == want
        assert seen["shape"] == (2, 3, 4) and seen["ndim"] == 3
        assert seen["dtype"] == np.float32 and seen["size"] == 24


def test_len_iter_item():
    x = rng.uniform(-1, 1, (3, 2))
    out = _traced(lambda x: tnp.stack([r * len(x) for r in x]), x)
    np.testing.assert_allclose(out, x * 3)
    g = T.grad(lambda x: x.sum() * x[0, 0].item())(x)      # concrete under grad
    np.testing.assert_allclose(g, np.full_like(x, x[0, 0]))


# ---------------------------------------------------------------------------------------------
# .at[] functional updates
# ---------------------------------------------------------------------------------------------

AT_CASES = [
    ("int", 1, lambda s: 5.0),
    ("slice", np.s_[1:3], lambda s: rng.uniform(-1, 1, s)),
    ("tuple", np.s_[0, 2], lambda s: 7.0),
    ("neg_step", np.s_[::-2, 1], lambda s: rng.uniform(-1, 1, s)),
    ("dup_array", np.array([1, 3, 1, 1]), lambda s: rng.uniform(-1, 1, s)),
    ("dup_2d", np.s_[np.array([0, 0, 2]), np.array([1, 1, 3])], lambda s: rng.uniform(-1, 1, s)),
    ("adv_slice", np.s_[np.array([2, 0]), 1:], lambda s: rng.uniform(-1, 1, s)),
    ("ellipsis", np.s_[..., 0], lambda s: rng.uniform(-1, 1, s)),
    ("broadcast_row", np.s_[1:], lambda s: rng.uniform(-1, 1, s[-1:])),
    ("neg_index", -1, lambda s: rng.uniform(-1, 1, s)),
]


@pytest.mark.parametrize("name,idx,mkval", AT_CASES, ids=[c[0] for c in AT_CASES])
def test_at_updates(name, idx, mkval):
    x = rng.uniform(-1, 1, (4, 5))
    shape = x[idx].shape
    v = mkval(shape)
    v = np.asarray(v)
    # set (with duplicate indices NumPy keeps the last write; so does a scatter in order)
    ref_set = x.copy()
    ref_set[idx] = v
    ref_add = x.copy()
    pos = np.arange(x.size).reshape(x.shape)[idx]
    np.add.at(ref_add.reshape(-1), pos.reshape(-1), np.broadcast_to(v, shape).reshape(-1))
    ref_mul = x.copy()
    np.multiply.at(ref_mul.reshape(-1), pos.reshape(-1), np.broadcast_to(v, shape).reshape(-1))
    outs = _traced(lambda x: (x.at[idx].set(v), x.at[idx].add(v), x.at[idx].multiply(v),
                              x.at[idx].get()), x)
    _check_same(outs[0], ref_set)       # duplicates: the last write wins, as in NumPy
    _check_same(outs[1], ref_add)
    _check_same(outs[2], ref_mul)
    _check_same(outs[3], x[idx])
    # gradients: add is the identity in x; set zeroes the written positions
    gx, gv = T.grad(lambda x, v: (x.at[idx].add(v) ** 2).sum(), argnums=(0, 1))(x, v)
    np.testing.assert_allclose(gx, 2 * ref_add)
    check_grads(lambda x, v: x.at[idx].add(v) * x, (x, v), order=2)
    check_grads(lambda x, v: x.at[idx].set(v * v), (x, v), order=2)
    check_grads(lambda x: x.at[idx].multiply(v), (x,), order=2)


def test_at_keeps_dtype():
    x = np.zeros(4, np.float32)
    out = _traced(lambda x: x.at[1].set(2.5), x)
    assert out.dtype == np.float32
    xi = np.zeros(4, np.int32)
    out = T.make_jaxpr(lambda x: x.at[np.array([0, 0])].add(1))(xi)
    assert out.out_avals[0].dtype == np.int32
    np.testing.assert_array_equal(out(xi)[0], [2, 0, 0, 0])


def test_at_traced_index():
    x = rng.uniform(-1, 1, (5, 3))

    def f(x, i, v):
        return x.at[i].add(v)

    jaxpr = T.make_jaxpr(f)(x, np.int32(2), np.ones(3))
    ref = x.copy()
    ref[2] += 1
    np.testing.assert_allclose(jaxpr(x, np.int32(2), np.ones(3))[0], ref)
    gx, gv = T.grad(lambda x, v: (f(x, np.int32(4), v) ** 2).sum(), argnums=(0, 1))(x, np.ones(3))
    np.testing.assert_allclose(gv, 2 * (x[4] + 1))
    ref = 2 * x
    ref[4] += 2
    np.testing.assert_allclose(gx, ref)


# ---------------------------------------------------------------------------------------------
# derivatives of the differentiable tnp functions (float64)
# ---------------------------------------------------------------------------------------------

def r(*s, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, s)


def distinct(*s):
    return rng.permutation(int(np.prod(s))).reshape(s) / 7.0 - 0.5


GRAD_CASES = [
    ("add", lambda x, y: tnp.add(x, y[0]), (r(3, 4), r(1, 4))),
    ("subtract", lambda x, y: tnp.subtract(x, 2 * y), (r(3, 4), r(3, 4))),
    ("multiply", lambda x, y: tnp.multiply(x, y), (r(3, 4), r(4))),
    ("divide", lambda x, y: tnp.divide(x, y), (r(3, 4), r(3, 4, lo=0.5, hi=2))),
    ("power", lambda x, y: tnp.power(x, y), (r(3, 4, lo=0.5, hi=2), r(3, 4))),
    ("power_int", lambda x: tnp.power(x, 3), (r(3, 4),)),
    ("log2", tnp.log2, (r(3, 4, lo=0.5, hi=2),)),
    ("square", tnp.square, (r(3, 4),)),
    ("reciprocal", tnp.reciprocal, (r(3, 4, lo=0.5, hi=2),)),
    ("maximum", tnp.maximum, (distinct(3, 4), distinct(3, 4) + 0.03)),
    ("minimum", tnp.minimum, (distinct(3, 4), distinct(3, 4) + 0.03)),
    ("clip", lambda x: tnp.clip(x, -0.3, 0.4), (distinct(3, 4) * 1.1 + 0.01,)),
    ("where", lambda x, y: tnp.where(x > 0, x * y, tnp.sin(y)), (r(3, 4), r(3, 4))),
    ("sum_axis", lambda x: tnp.sum(x, axis=1), (r(3, 4),)),
    ("sum_kd", lambda x: tnp.sum(x * x, axis=0, keepdims=True), (r(3, 4),)),
    ("mean", lambda x: tnp.mean(x), (r(3, 4),)),
    ("mean_axis_kd", lambda x: tnp.mean(x ** 2, axis=(0, 2), keepdims=True), (r(2, 3, 4),)),
    ("max", lambda x: tnp.max(x, axis=1), (distinct(3, 4),)),
    ("min", lambda x: tnp.min(x), (distinct(3, 4),)),
    ("prod", lambda x: tnp.prod(x, axis=0), (r(3, 4, lo=0.5, hi=1.5),)),
    ("prod_all", lambda x: tnp.prod(x), (r(2, 3, lo=0.5, hi=1.5),)),
    ("var", lambda x: tnp.var(x), (r(3, 4),)),
    ("var_axis", lambda x: tnp.var(x, axis=1, keepdims=True), (r(3, 4),)),
    ("std", lambda x: tnp.std(x, axis=0, ddof=1), (r(3, 4),)),
    ("cumsum", lambda x: tnp.cumsum(x, axis=1), (r(3, 4),)),
    ("cumsum_flat", lambda x: tnp.cumsum(x), (r(3, 4),)),
    ("cumprod", lambda x: tnp.cumprod(x, axis=0), (r(3, 4, lo=0.5, hi=1.5),)),
    ("logaddexp", tnp.logaddexp, (r(3, 4), r(3, 4))),
    ("logaddexp_big", tnp.logaddexp, (r(3, 4) + 500, r(3, 4) + 500)),
    ("dot", tnp.dot, (r(3, 4), r(4, 2))),
    ("dot_mv", tnp.dot, (r(3, 4), r(4))),
    ("matmul_3d", tnp.matmul, (r(2, 3, 4), r(2, 4, 5))),
    ("matmul_bcast", tnp.matmul, (r(1, 3, 4), r(2, 4, 5))),
    ("matmul_vm", tnp.matmul, (r(4), r(2, 4, 5))),
    ("op_matmul", lambda a, b: a @ b, (r(3, 4), r(4, 2))),
    ("einsum_ij_jk", lambda a, b: tnp.einsum("ij,jk->ik", a, b), (r(3, 4), r(4, 2))),
    ("einsum_bmm", lambda a, b: tnp.einsum("bij,bjk->bik", a, b), (r(2, 3, 4), r(2, 4, 5))),
    ("einsum_dot", lambda a, b: tnp.einsum("i,i->", a, b), (r(4), r(4))),
    ("einsum_T", lambda a: tnp.einsum("ij->ji", a), (r(3, 4),)),
    ("einsum_diag", lambda a: tnp.einsum("ii->i", a), (r(4, 4),)),
    ("einsum_three", lambda a, b, c: tnp.einsum("ij,jk,k->i", a, b, c), (r(2, 3), r(3, 4), r(4))),
    ("tensordot", lambda a, b: tnp.tensordot(a, b, axes=([1, 2], [0, 1])), (r(2, 3, 4), r(3, 4, 2))),
    ("tensordot_int", lambda a, b: tnp.tensordot(a, b, 1), (r(2, 3), r(3, 4))),
    ("outer", tnp.outer, (r(3), r(4))),
    ("transpose", lambda a: tnp.transpose(a, (2, 0, 1)), (r(2, 3, 4),)),
    ("reshape", lambda a: tnp.reshape(a, (4, -1)), (r(2, 3, 4),)),
    ("swapaxes", lambda a: tnp.swapaxes(a, 0, 2), (r(2, 3, 4),)),
    ("moveaxis", lambda a: tnp.moveaxis(a, 0, -1), (r(2, 3, 4),)),
    ("expand_squeeze", lambda a: tnp.squeeze(tnp.expand_dims(a, (0, 2))), (r(3, 4),)),
    ("ravel", tnp.ravel, (r(3, 4),)),
    ("broadcast_to", lambda v: tnp.broadcast_to(v, (3, 4)), (r(4),)),
    ("concatenate", lambda a, b: tnp.concatenate([a, b, a], axis=1), (r(3, 4), r(3, 2))),
    ("stack", lambda a, b: tnp.stack([a, b], axis=1), (r(3, 4), r(3, 4))),
    ("split", lambda a: tnp.split(a, [1, 3], axis=1)[1] * 2, (r(3, 4),)),
    ("split_sum", lambda a: sum(p.sum() * (i + 1) for i, p in enumerate(tnp.split(a, 2))),
     (r(4, 3),)),
    ("take", lambda a: tnp.take(a, np.array([0, 2, 2, -1]), axis=1), (r(3, 4),)),
    ("take_flat", lambda a: tnp.take(a, np.array([[0, 5], [5, 3]])), (r(3, 4),)),
    ("take_along_axis", lambda a: tnp.take_along_axis(a, np.array([[0, 3], [1, 1], [2, 0]]),
                                                      axis=1), (r(3, 4),)),
    ("pad", lambda a: tnp.pad(a, ((1, 0), (2, 1)), constant_values=0.5), (r(3, 4),)),
    ("tile", lambda a: tnp.tile(a, (2, 3)), (r(2, 3),)),
    ("repeat", lambda a: tnp.repeat(a, 3, axis=1), (r(2, 3),)),
    ("repeat_counts", lambda a: tnp.repeat(a, [2, 0, 1], axis=1), (r(2, 3),)),
    ("flip", lambda a: tnp.flip(a, 1), (r(3, 4),)),
    ("triu", lambda a: tnp.triu(a, 1), (r(4, 4),)),
    ("tril", lambda a: tnp.tril(a), (r(3, 4),)),
    ("norm", lambda a: tnp.linalg.norm(a), (r(3, 4),)),
    ("norm_axis", lambda a: tnp.linalg.norm(a, axis=1), (r(3, 4),)),
    ("norm_ord1", lambda a: tnp.linalg.norm(a, ord=1), (r(4) + np.array([2, -2, 2, -2]),)),
    ("norm_ord3", lambda a: tnp.linalg.norm(a, ord=3, axis=0), (r(3, 4, lo=0.2, hi=1),)),
    ("getitem_mix", lambda a: a[1:, None, ::-1][np.array([1, 0])], (r(3, 4),)),
]


# the one-argument smooth primitives come from the shared operator table (op_table.py), through
# their tnp spelling; their inputs are drawn when the test runs
GRAD_CASES += [(op.tnp, getattr(tnp, op.tnp), op) for op in TABLE_OPS
               if op.tnp and op.nargs == 1 and op.grad == "check"]


@pytest.mark.parametrize("name,fn,args", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grads(name, fn, args):
    if isinstance(args, OpInfo):
        args = args.args(op_rng(name, "float64", "tnp-grad"), (3, 4), np.float64)
    check_grads(fn, args, order=2)


def test_prod_with_zero_gradient():
    # documented: tnp.prod's gradient is exact with zeros (exclusive products)
    x = np.array([[2.0, 0.0, 3.0], [1.0, 2.0, 3.0]])
    g = T.grad(lambda x: tnp.prod(x, axis=1).sum())(x)
    np.testing.assert_allclose(g, [[0, 6, 0], [6, 3, 2]])


def test_where_nan_gradient_double_where_trick():
    # the classic pitfall: the unselected branch's NaN derivative leaks unless masked twice
    x = np.array([-1.0, 4.0])
    safe = lambda x: tnp.where(x > 0, tnp.sqrt(tnp.where(x > 0, x, 1.0)), 0.0)  # noqa: E731
    np.testing.assert_allclose(T.grad(lambda x: safe(x).sum())(x), [0.0, 0.25])


def test_float32_grads_stay_float32():
    x = rng.uniform(0.5, 1, (3, 4)).astype(np.float32)

    def f(x):
        y = tnp.tanh(x @ x.T) * 2.0 + tnp.log(x).mean() - tnp.sqrt(x).var()
        return tnp.linalg.norm(y) + tnp.logaddexp(x, 1.0).sum() + tnp.max(x) / 3

    g = T.grad(f)(x)
    assert g.dtype == np.float32
    check_grads(f, (x,), order=1, atol=2e-2, rtol=2e-2)


# ---------------------------------------------------------------------------------------------
# dtype matrix: every pair of dtypes / weak Python scalars / NumPy scalars, as NumPy 2 does it
# ---------------------------------------------------------------------------------------------

_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.float16,
           np.float32, np.float64]
_SCALARS = [True, 2, 2.5, np.float32(2), np.int8(3), np.float64(1.5)]


def _example(dt):
    return np.array([True, False, True]) if dt == np.bool_ else np.array([1, 2, 3], dtype=dt)


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "true_divide", "floor_divide",
                                "remainder", "power", "maximum", "minimum", "equal", "less",
                                "arctan2", "logaddexp", "logical_and", "bitwise_and", "where"])
def test_binary_dtype_matrix(op):
    import itertools
    pairs = list(itertools.product(_DTYPES, _DTYPES)) + \
        list(itertools.product(_DTYPES, _SCALARS)) + list(itertools.product(_SCALARS, _DTYPES))
    if op == "where":
        np_fn = lambda x, y: np.where(np.array([True, False, True]), x, y)  # noqa: E731
        t_fn = lambda x, y: tnp.where(np.array([True, False, True]), x, y)  # noqa: E731
    else:
        np_fn, t_fn = getattr(np, op), getattr(tnp, op)
    checked = 0
    for a, b in pairs:
        x = _example(a) if isinstance(a, type) else a
        y = _example(b) if isinstance(b, type) else b
        try:
            with np.errstate(all="ignore"):
                ref = np_fn(x, y)
        except Exception:   # noqa: BLE001 - combinations NumPy rejects are not checked
            continue
        with np.errstate(all="ignore"):
            out = t_fn(x, y)
        assert np.result_type(out) == np.result_type(ref), (op, a, b)
        with np.errstate(all="ignore"):
            np.testing.assert_allclose(np.asarray(out, np.float64), np.asarray(ref, np.float64),
                                       rtol=2e-3, err_msg=f"{op} {a} {b}")
        if isinstance(a, type):
            (aval,) = T.make_jaxpr(lambda x: t_fn(x, y))(x).out_avals
            assert aval.dtype == np.result_type(ref), (op, a, b, aval)
        checked += 1
    assert checked > 80


@pytest.mark.parametrize("op", ["negative", "abs", "sign", "exp", "exp2", "log", "log1p", "expm1",
                                "log2", "sqrt", "square", "reciprocal", "sin", "cos", "tan",
                                "tanh", "sinh", "cosh", "arctan", "arcsin", "arccos", "arctanh",
                                "floor", "ceil", "round", "logical_not", "isnan", "isfinite",
                                "sum", "mean", "max", "min", "prod", "var", "std", "argmax",
                                "argmin", "cumsum", "all", "any"])
def test_unary_dtype_matrix(op):
    for dt in _DTYPES:
        x = _example(dt)
        for arg in (x, x[0]):
            try:
                with np.errstate(all="ignore"):
                    ref = getattr(np, op)(arg)
            except Exception:   # noqa: BLE001
                continue
            with np.errstate(all="ignore"):
                out = getattr(tnp, op)(arg)
            assert np.result_type(out) == np.result_type(ref), (op, dt, type(arg))
            if isinstance(arg, np.ndarray):
                (aval,) = T.make_jaxpr(lambda x: getattr(tnp, op)(x))(arg).out_avals
                assert aval.dtype == np.result_type(ref), (op, dt, aval)


@pytest.mark.parametrize("sub, shapes, ncontract", [
    ("bhqd,bhkd->bhqk", ((2, 3, 4, 5), (2, 3, 6, 5)), 1),
    ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 5)), 1),
    ("ab,bc,ca->", ((2, 3), (3, 4), (4, 2)), 2),
])
def test_einsum_contracts_shared_labels_in_dot_general(sub, shapes, ncontract):
    """A label summed away at a pairwise step is a contraction of that dot_general (not a
    batch dim summed afterwards, which made every attention einsum a batched outer product)."""
    rng = np.random.default_rng(0)
    ops = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    jaxpr = T.make_jaxpr(lambda *o: tnp.einsum(sub, *o))(*ops).jaxpr
    dots = [e for e in jaxpr.eqns if e.prim.name == "dot_general"]
    assert len(dots) == len(ops) - 1
    assert len(dots[-1].params["dimension_numbers"][0][0]) == ncontract
    assert not any(e.prim.name == "reduce_sum" for e in jaxpr.eqns)
    np.testing.assert_allclose(tnp.einsum(sub, *ops), np.einsum(sub, *ops), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(T.jit(lambda *o: tnp.einsum(sub, *o))(*ops),
                               np.einsum(sub, *ops), rtol=1e-5, atol=1e-5)
