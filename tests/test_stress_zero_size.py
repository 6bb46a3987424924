"""Zero-size shapes through every lowered primitive: jit must give the eager result (same
shape, dtype and values: an empty array, or what an empty contraction / padding / scan of
length 0 gives) or raise the eager error's type. Never a crash, garbage or a Numba error.

Driven by the backend's registries: `test_every_lowered_primitive_has_a_zero_size_case`
collects the primitive names each case's jaxpr contains and fails, naming them, when a
lowered primitive (opaque rule, pointwise rule, view, reduction or inlined call) appears in
no case -- so a new primitive's lowering must come with a zero-size case here.

Compiles dominate the cost, so the value cases are jitted together, in a few groups of one
function each; only a failing group is re-run case by case to name the culprit."""
import sys

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax, random, xla_f32
from transforms.ad_checkpoint import checkpoint_name
from transforms.core import Primitive
from transforms.ir import ClosedJaxpr, Jaxpr

pytestmark = pytest.mark.stress

f32, f64, i32, i64, u32, b_ = np.float32, np.float64, np.int32, np.int64, np.uint32, np.bool_


def arr(shape, dtype=f32, start=1):
    """Deterministic data (non-zero, so a wrong empty contraction shows)."""
    n = int(np.prod(shape, dtype=np.int64))
    a = (np.arange(n) % 7 + start).reshape(shape)
    return a.astype(dtype) if dtype != b_ else (a % 2 == 0)


E03, E30, E0 = (0, 3), (3, 0), (0,)
NHWC = ("NHWC", "HWIO", "NHWC")


def _unary(name, dtype=f32, shape=E03):
    return (f"{name}[{np.dtype(dtype).name}{list(shape)}]",
            lambda x: getattr(lax, name)(x), (arr(shape, dtype),))


def _binary(fn, name, dtype=f32):
    # tnp broadcasts: a (0, 3) operand against a (3,) one (broadcast_in_dim is covered too)
    return (name, fn, (arr(E03, dtype), arr((3,), dtype)))


@T.custom_jvp
def _cj(x):
    return x * 2


_cj.defjvp(lambda p, t: (_cj(p[0]), t[0] * 2))


@T.custom_vjp
def _cv(x):
    return x * 3


_cv.defvjp(lambda x: (_cv(x), None), lambda _, g: (g * 3,))


def _debug_empty(x):
    T.debug.callback(lambda v: None, x)
    return x


def _callback_double(x):
    return T.pure_callback(lambda a: a * 2, T.ShapeDtypeStruct(x.shape, x.dtype), x)


@T.custom_batching.custom_vmap
def _cvmap_double(x):
    return x * 2


@_cvmap_double.def_vmap
def _cvmap_double_rule(axis_size, in_batched, x):
    return x * 2, in_batched[0]


def _pool_grad(x):
    return T.grad(lambda x: lax.max_pool(x, (2, 2)).sum())(x)


CASES = [
    # -- pointwise, float (both widths; 2-D and 1-D empties)
    *[_unary(n) for n in ["abs", "acos", "asin", "asinh", "atan", "atanh", "ceil", "cos",
                          "cosh", "erf", "exp", "exp2", "expm1", "floor", "is_finite", "log",
                          "log1p", "logistic", "neg", "cbrt", "round", "rsqrt", "sign", "sin",
                          "sinh", "sqrt", "tan", "tanh"]],
    *[_unary(n, f64, E30) for n in ["sin", "cos", "exp", "log", "tanh", "round_even"]],
    _unary("sin", f32, E0), _unary("cos", f32, (2, 0, 3)),
    ("sinc_f32", tnp.sinc, (arr(E0),)),
    *[_binary(f, n) for f, n in [(tnp.add, "add"), (tnp.subtract, "sub"),
                                 (tnp.multiply, "mul"), (tnp.divide, "div"),
                                 (tnp.remainder, "rem"), (tnp.power, "pow"),
                                 (tnp.arctan2, "atan2"), (tnp.maximum, "max"),
                                 (tnp.minimum, "min"), (tnp.equal, "eq"),
                                 (tnp.not_equal, "ne"), (tnp.less, "lt"),
                                 (tnp.less_equal, "le"), (tnp.greater, "gt"),
                                 (tnp.greater_equal, "ge")]],
    _binary(tnp.add, "add_i64", i64), _binary(tnp.floor_divide, "floordiv_i32", i32),
    _binary(tnp.bitwise_and, "and_i32", i32), _binary(tnp.bitwise_or, "or_b", b_),
    _binary(tnp.bitwise_xor, "xor_u32", u32),
    ("not", lambda x: lax.bitwise_not(x), (arr(E03, b_),)),
    ("shift_left", lambda x: lax.shift_left(x, x), (arr(E03, u32),)),
    ("shift_right_logical", lambda x: lax.shift_right_logical(x, x), (arr(E03, u32),)),
    ("integer_pow", lambda x: lax.integer_pow(x, 3), (arr(E03),)),
    ("select_n", lambda p, a, b: lax.select_n(p, a, b), (arr(E03, b_), arr(E03), arr(E03))),
    ("convert_element_type", lambda x: lax.convert_element_type(x, i32), (arr(E03),)),
    ("bitcast_convert_type", lambda x: random.bitcast_convert_type(x, i32), (arr(E03),)),
    ("threefry2x32", lambda a, b, c, d: random.threefry2x32(a, b, c, d),
     tuple(arr(E0, u32) for _ in range(4))),
    ("uniform_empty", lambda k: random.uniform(k, (0, 3)), (random.key(0),)),
    ("xla_f32", lambda x: (xla_f32.xla_log_f32(x), xla_f32.xla_log1p_f32(x),
                           xla_f32.xla_erf_f32(x), xla_f32.xla_erfinv_f32(x)), (arr(E03),)),
    ("normal_empty", lambda k: random.normal(k, (3, 0)), (random.key(0),)),
    ("argsort", lambda x: (random.argsort(x, axis=1), random.argsort(x.T, axis=0)),
     (arr(E03),)),
    # -- views
    ("broadcast_in_dim", lambda x: lax.broadcast_in_dim(x, (0, 2, 3), (0, 2)), (arr(E03),)),
    ("transpose", lambda x: lax.transpose(x, (1, 0)) + 1, (arr(E03),)),
    ("squeeze", lambda x: lax.squeeze(x, (1,)) * 2, (arr((0, 1)),)),
    ("rev", lambda x: lax.rev(x, (0, 1)) - 1, (arr(E03),)),
    ("slice", lambda x: lax.slice(x, (0, 1), (0, 3)) * 3, (arr(E03),)),
    ("slice_to_empty", lambda x: lax.slice(x, (1, 0), (1, 3)) * 3, (arr((2, 3)),)),
    ("iota", lambda x: x + lax.iota(f32, 0), (arr(E0),)),
    ("reshape", lambda x: lax.reshape(x, (3, 0)) + 1, (arr(E03),)),
    ("reshape_opaque", lambda x: lax.reshape(x.T, (0, 2, 3)), (arr((6, 0)),)),
    ("stop_gradient", lambda x: lax.stop_gradient(x) * 2, (arr(E03),)),
    # -- reductions: over an empty axis (non-empty result: the identity) and to empty
    ("reduce_sum", lambda x: (lax.reduce_sum(x, (0,)), lax.reduce_sum(x, (1,)),
                              lax.reduce_sum(x, (0, 1))), (arr(E03),)),
    ("reduce_max", lambda x: (lax.reduce_max(x, (0,)), lax.reduce_max(x, (1,))), (arr(E03),)),
    ("reduce_min_i32", lambda x: lax.reduce_min(x, (0,)), (arr(E03, i32),)),
    ("reduce_prod", lambda x: lax.reduce_prod(x, (0,)), (arr(E03),)),
    ("reduce_and_or", lambda x: (lax.reduce_and(x, (0,)), lax.reduce_or(x, (0,))),
     (arr(E03, b_),)),
    ("argmax_to_empty", lambda x: (lax.argmax(x, 1), lax.argmin(x, 1)), (arr(E03),)),
    ("cumsum", lambda x: (lax.cumsum(x, 1), lax.cumprod(x, 0), lax.cumsum(x, 1, reverse=True)),
     (arr(E30),)),
    # -- opaque rules
    ("concatenate", lambda a, b: (lax.concatenate([a, b], 0), lax.concatenate([a, a], 0)),
     (arr(E03), arr((2, 3)))),
    ("pad", lambda x, y: (lax.pad(x, f32(7), [(1, 2, 0), (0, 1, 1)]),
                          lax.pad(y, f32(7), [(-1, 0, 0), (0, 0, 0)])),
     (arr(E03), arr((1, 3)))),
    ("dynamic_slice", lambda x, y, i: (lax.dynamic_slice(x, (i, i), (0, 2)),
                                       lax.dynamic_slice(y, (i, i), (0, 2))),
     (arr(E03), arr((4, 3)), np.int64(1))),
    ("dynamic_update_slice", lambda x, u, i: (lax.dynamic_update_slice(x, u, (i, i)),
                                              lax.dynamic_update_slice(u, u, (i, i))),
     (arr((4, 3)), arr(E03), np.int64(1))),
    ("gather", lambda x, i, j: (lax.gather(x, i), lax.gather(x[:, :0], j)),
     (arr((4, 3)), np.zeros((0, 1), i64), np.array([[1], [2]]))),
    ("take_empty_index", lambda x, i: (tnp.take(x, i, axis=0), tnp.take(x, i, axis=1)),
     (arr((4, 3)), np.zeros(0, i64))),
    ("take_along_axis", lambda x, i: tnp.take_along_axis(x, i, axis=1),
     (arr(E03), np.zeros((0, 2), i64))),
    ("scatter", lambda x, i, u: (lax.scatter(x, i, u), lax.scatter_add(x, i, u),
                                 lax.scatter_mul(x, i, u)),
     (arr((4, 3)), np.zeros((0, 1), i64), arr(E03))),
    ("scatter_min_max", lambda x, i, u: (lax.scatter_min(x, i, u), lax.scatter_max(x, i, u)),
     (arr((4, 3)), np.zeros((0, 1), i64), arr(E03))),
    ("logaddexp", lambda x, y: (tnp.logaddexp(x, y), tnp.logaddexp2(x, y)),
     (arr(E03), arr(E03))),
    ("shift_right_arithmetic", lambda x: lax.shift_right_arithmetic(x, x),
     (arr(E03, np.int32),)),
    ("special", lambda x: (lax.lgamma(x + 2), lax.digamma(x + 2), lax.polygamma(1, x + 2),
                           lax.erfc(x), lax.erf_inv(x * 0.5), lax.bessel_i0e(x),
                           lax.bessel_i1e(x)), (arr(E03, f64),)),
    ("argsort", lambda x: tnp.sort(x, axis=0), (arr(E03),)),
    ("decompositions", lambda a, b: (lax.linalg.cholesky(a), lax.linalg.triangular_solve(
        a, b, left_side=True, lower=True), tnp.linalg.solve(a, b), tnp.linalg.slogdet(a),
        lax.linalg.eigh(a), lax.linalg.qr(a), lax.linalg.svd(a, full_matrices=False),
        lax.linalg.lu_factor(a)), (arr((0, 3, 3), f64), arr((0, 3, 2), f64))),
    ("scatter_empty_operand", lambda x, i, u: lax.scatter_add(x, i, u),
     (arr(E03), np.zeros((0, 1), i64), arr(E03))),
    ("dot_general", lambda a, b, c, d: (a @ b, c @ d, tnp.outer(a[:, 0], b[0]),
                                        tnp.einsum("bij,bjk->bik", a[None], b[None])),
     (arr((0, 64)), arr((64, 300)), arr((5, 0)), arr((0, 40)))),
    ("dot_general_int", lambda a, b: (a @ b, b.T @ a.T), (arr((0, 8), i64), arr((8, 30), i64))),
    ("conv_general_dilated",
     lambda x, w, x2, w2: (lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                    dimension_numbers=NHWC),
                           lax.conv_general_dilated(x2, w2, (1, 1), "VALID",
                                                    dimension_numbers=NHWC)),
     (arr((0, 6, 6, 3)), arr((3, 3, 3, 4)), arr((2, 5, 5, 0)), arr((3, 3, 0, 4)))),
    ("conv_grad", lambda x, w: T.grad(
        lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                              dimension_numbers=NHWC).sum(),
        argnums=(0, 1))(x, w), (arr((0, 6, 6, 3)), arr((3, 3, 3, 4)))),
    ("reduce_window", lambda x: (lax.max_pool(x, (2, 2)), lax.sum_pool(x, (2, 2)),
                                 lax.reduce_window(x, np.inf, lax.min, (1, 2, 2, 1),
                                                   (1, 2, 2, 1), "VALID")),
     (arr((0, 4, 4, 3)),)),
    ("reduce_window_general", lambda x, i: (
        lax.reduce_window(x, 2.0, lax.mul, (1, 2, 2, 1), (1, 1, 1, 1), "SAME"),
        lax.reduce_window(i, 0, lax.bitwise_or, (1, 2, 2, 1), (1, 1, 1, 1), "VALID"),
        lax.reduce_window(i, -1, lax.bitwise_and, (1, 2, 2, 1), (1, 1, 1, 1), "VALID"),
        lax.reduce_window(i, 0, lax.bitwise_xor, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")),
     (arr((0, 4, 4, 3)), np.zeros((2, 4, 0, 3), np.int32))),
    ("select_and_gather_add", lambda x: T.jvp(lambda x: lax.max_pool(x, (2, 2)), (x,),
                                              (x,))[1], (arr((0, 4, 4, 3)),)),
    ("select_and_scatter_add", _pool_grad, (arr((0, 4, 4, 3)),)),
    ("select_and_scatter_add_overlap",
     lambda x: T.grad(lambda x: lax.max_pool(x, (3, 3), (1, 1)).sum())(x),
     (arr((0, 5, 5, 2)),)),
    # -- complex numbers and FFT (empty batches of signals)
    ("complex_parts", lambda x, y: (lax.complex(x, y), lax.conj(lax.complex(x, y)),
                                    lax.real(lax.complex(x, y)) + lax.imag(lax.complex(y, x))),
     (arr(E03, f64), arr(E03, f64))),
    ("fft", lambda x, z: (tnp.fft.fft(z, axis=1), tnp.fft.rfft(x, axis=1),
                          tnp.fft.ifft(z, axis=0) if z.shape[0] else z),
     (arr(E03, f64), arr(E03, f64).astype(np.complex128))),
    # -- debugging and naming primitives carry empty values through unchanged
    ("debug_callback", lambda x: _debug_empty(x) * 2, (arr(E03),)),
    ("checkpoint_name", lambda x: checkpoint_name(x, "h") + 1, (arr(E03),)),
    ("pure_callback", lambda x: _callback_double(x) + 1, (arr(E03),)),
    ("custom_vmap_call", lambda x: _cvmap_double(x) + 1, (arr(E03),)),
    # -- control flow and calls
    ("cond", lambda p, x: lax.cond(p, lambda x: x + 1, lambda x: x * 2, x),
     (np.bool_(True), arr(E03))),
    ("scan_empty_xs", lambda c, xs: lax.scan(lambda c, x: (c + x, c * x), c, xs),
     (arr((3,)), arr(E03))),
    ("scan_length_0", lambda c: lax.scan(lambda c, _: (c + 1, c), c, None, length=0),
     (arr((3,)),)),
    ("scan_empty_carry", lambda c, xs: lax.scan(lambda c, x: (c * 2, x.sum() + c.sum()), c, xs),
     (arr(E0), arr((4, 2)))),
    ("while", lambda e, n: lax.while_loop(lambda s: s[1] < 3, lambda s: (s[0] + 1, s[1] + 1),
                                          (e, n)), (arr(E03), np.int64(0))),
    ("fori_loop", lambda e: lax.fori_loop(0, 0, lambda i, x: x + 1, e), (arr(E03),)),
    ("pjit", lambda x: T.jit(lambda y: y * 2)(x) + 1, (arr(E03),)),
    ("checkpoint", lambda x: T.grad(lambda x: T.checkpoint(lambda y: tnp.sin(y) * 2)(x).sum())(x),
     (arr(E03),)),
    ("custom_jvp_vjp", lambda x: (_cj(x), _cv(x), T.grad(lambda x: _cv(x).sum())(x)),
     (arr(E03),)),
    # -- vmap over an empty batch
    ("vmap_matvec", T.vmap(lambda x, w: x @ w, in_axes=(0, None)), (arr((0, 8)), arr((8, 5)))),
    ("vmap_scan", T.vmap(lambda x: lax.scan(lambda c, y: (c + y, c), 0.0, x)),
     (arr((0, 4)),)),
]

# the eager error, raised by jit too (at trace time: shapes are static)
ERROR_CASES = [
    ("argmax_over_empty_axis", lambda x: lax.argmax(x, 0), (arr(E03),), ValueError),
    ("argmin_over_empty_axis", lambda x: lax.argmin(x, 1), (arr(E30),), ValueError),
    ("gather_from_empty_axis", lambda x, i: lax.gather(x, i),
     (arr(E03), np.array([[0], [1]])), IndexError),
    ("take_from_empty_axis", lambda x, i: tnp.take(x, i, axis=1, mode="clip"),
     (arr(E30), np.array([0, 1])), IndexError),
    ("take_along_empty_axis", lambda x, i: tnp.take_along_axis(x, i, axis=1),
     (arr(E30), np.zeros((3, 2), i64)), IndexError),
]

N_GROUPS = 4


def _lowered_primitive_names():
    """Names of the primitives the backend lowers, restricted to primitives that exist."""
    from transforms.backend.numba import registry
    registry.load_rules()                             # (rules register on import)
    handled = (set(registry.LOWERINGS) | set(registry.POINTWISE) | set(registry.VIEWS) |
               set(registry.REDUCTIONS) | set(registry.INLINE_CALLS))
    existing = {v.name for m in list(sys.modules.values())
                if getattr(m, "__name__", "").startswith("transforms")
                for v in vars(m).values() if isinstance(v, Primitive)}
    return handled & existing


def _prims_of(jaxpr, out):
    for e in jaxpr.eqns:
        out.add(e.prim.name)
        for p in e.params.values():
            for sub in (p if isinstance(p, (tuple, list)) else (p,)):
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    _prims_of(sub.jaxpr if isinstance(sub, ClosedJaxpr) else sub, out)
    return out


def test_every_lowered_primitive_has_a_zero_size_case():
    seen = set()
    for _, fn, args in CASES:
        _prims_of(T.make_jaxpr(fn)(*args).jaxpr, seen)
    for _, fn, args, _ in ERROR_CASES:
        try:
            _prims_of(T.make_jaxpr(fn)(*args).jaxpr, seen)
        except Exception:           # noqa: BLE001 - these fail at trace time by design
            pass
    missing = sorted(_lowered_primitive_names() - seen)
    assert not missing, (f"lowered primitives not covered by a zero-size case: {missing}; "
                         "add one to CASES in tests/test_stress_zero_size.py")


def _compare(name, got, want):
    gl, wl = T.tree.leaves(got), T.tree.leaves(want)
    assert len(gl) == len(wl), name
    for k, (g, w) in enumerate(zip(gl, wl)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (name, k, g.shape, w.shape, g.dtype,
                                                          w.dtype)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6, equal_nan=True,
                                       err_msg=f"{name} output {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{name} output {k}")


@pytest.mark.parametrize("group", range(N_GROUPS))
def test_zero_size_cases_under_jit_match_eager(group):
    cases = CASES[group::N_GROUPS]
    wants = [fn(*args) for _, fn, args in cases]
    n_args = [len(args) for _, _, args in cases]

    def together(*flat):
        outs, i = [], 0
        for (_, fn, _), n in zip(cases, n_args):
            outs.append(fn(*flat[i:i + n]))
            i += n
        return outs
    flat = [a for _, _, args in cases for a in args]
    try:
        gots = T.jit(together)(*flat)
        for (name, _, _), got, want in zip(cases, gots, wants):
            _compare(name, got, want)
    except Exception:               # noqa: BLE001 - name the failing cases, one jit each
        failures = []
        for (name, fn, args), want in zip(cases, wants):
            try:
                _compare(name, T.jit(fn)(*args), want)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
        raise AssertionError("zero-size cases failing under jit:\n" + "\n".join(failures))


@pytest.mark.parametrize("name,fn,args,err", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_zero_size_errors_under_jit_match_eager(name, fn, args, err):
    with pytest.raises(err) as eager:
        fn(*args)
    with pytest.raises(err) as jitted:
        T.jit(fn)(*args)
    assert type(jitted.value) is type(eager.value) or \
        isinstance(jitted.value, type(eager.value)), (eager.value, jitted.value)
