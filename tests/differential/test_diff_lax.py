"""Differential tests: transforms.lax primitives against jax.lax (x64 on) on seeded random
cases — elementwise math, indexing (slices, dynamic slices, gather-style indexing with clamping,
.at[] updates dropping out-of-bounds), dot_general, conv_general_dilated, reduce_window (every
reducer, init values, padding, dilations), cumulative reductions, sorting. Eager, plus one
jitted sample. A failure names the primitive, its inputs and both results."""
import pytest

jax = pytest.importorskip("jax")
jl = pytest.importorskip("jax.lax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import zlib  # noqa: E402

import pathlib  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402

import transforms as T  # noqa: E402
import transforms.numpy as tnp  # noqa: E402
from transforms import lax as tl  # noqa: E402

F32, F64, I32, B = np.float32, np.float64, np.int32, np.bool_


def _same(name, inputs, ours, theirs, rtol=None):
    lo, lt = jax.tree.leaves(ours), jax.tree.leaves(theirs)
    assert len(lo) == len(lt), f"lax.{name}: {len(lo)} outputs vs jax {len(lt)}"
    for a, b in zip(lo, lt):
        a, b = np.asarray(a), np.asarray(jax.device_get(b))
        msg = f"lax.{name} on {inputs!r}:\nours={a!r}\njax ={b!r}"
        assert a.shape == b.shape and a.dtype == b.dtype, msg
        if a.dtype.kind == "f":
            r = rtol or (2e-5 if a.dtype == np.float32 else 1e-10)
            assert np.allclose(a, b, rtol=r, atol=r * 0.1, equal_nan=True), msg
        else:
            assert np.array_equal(a, b), msg


def _r(rng, shape, dt=F64, lo=-2.0, hi=2.0):
    if np.dtype(dt) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dt).kind == "i":
        return rng.integers(int(lo) - 3, int(hi) + 4, size=shape).astype(dt)
    return rng.uniform(lo, hi, size=shape).astype(dt)


UNARY = {  # name: domain
    "abs": None, "acos": (-0.9, 0.9), "asin": (-0.9, 0.9), "asinh": None, "atan": None,
    "atanh": (-0.9, 0.9), "bessel_i0e": None, "bessel_i1e": None, "ceil": None, "cos": None,
    "cosh": None, "digamma": (0.2, 4.0), "erf": None, "erf_inv": (-0.9, 0.9), "erfc": None,
    "cbrt": None, "exp": None, "exp2": None, "expm1": None, "floor": None, "is_finite": None,
    "lgamma": (0.2, 4.0), "log": (0.1, 3.0), "log1p": (0.1, 3.0), "logistic": None,
    "neg": None, "round": None, "rsqrt": (0.1, 3.0), "sign": None, "sin": None, "sinh": None,
    "sqrt": (0.1, 3.0), "tan": (-1.0, 1.0), "tanh": None,
}
BINARY = ["add", "sub", "mul", "div", "max", "min", "pow", "rem", "atan2", "eq", "ne", "lt",
          "le", "gt", "ge"]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    lo, hi = UNARY[name] or (-2.0, 2.0)
    for dt in (F32, F64):
        x = _r(rng, (2, 5), dt, lo, hi)
        _same(name, x, getattr(tl, name)(x), getattr(jl, name)(x))


@pytest.mark.parametrize("name", BINARY)
def test_binary(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for dt in (F32, F64, I32):
        if dt == I32 and name in ("pow", "atan2"):
            continue
        lo, hi = (0.5, 2.0) if name in ("pow", "div", "rem") else (-2.0, 2.0)
        x, y = _r(rng, (3, 4), dt, lo, hi), _r(rng, (3, 4), dt, lo, hi)
        if dt == I32 and name in ("div", "rem"):
            y = np.where(y == 0, 1, y).astype(I32)
        _same(name, (x, y), getattr(tl, name)(x, y), getattr(jl, name)(x, y))


def test_integer_ops():
    rng = np.random.default_rng(0)
    x, s = _r(rng, (6,), I32, -100, 100), rng.integers(0, 31, 6).astype(I32)
    for name in ("shift_left", "shift_right_arithmetic", "shift_right_logical", "bitwise_and",
                 "bitwise_or", "bitwise_xor"):
        _same(name, (x, s), getattr(tl, name)(x, s), getattr(jl, name)(x, s))
    _same("bitwise_not", x, tl.bitwise_not(x), jl.bitwise_not(x))
    for n in (-2, 0, 3):
        y = _r(rng, (4,), F64, 0.5, 2.0)
        _same(f"integer_pow[{n}]", y, tl.integer_pow(y, n), jl.integer_pow(y, n))
    y = _r(rng, (4,), F64)
    for dt in (F32, I32, B):
        _same(f"convert_element_type[{dt}]", y, tl.convert_element_type(y, dt),
              jl.convert_element_type(y, dt))


def test_structural():
    rng = np.random.default_rng(1)
    x = _r(rng, (3, 4, 5))
    cases = [
        ("slice", lambda L: L.slice(x, (0, 1, 0), (3, 4, 5), (2, 1, 2))),
        ("slice_in_dim", lambda L: L.slice_in_dim(x, 1, 4, 2, axis=1)),
        ("index_in_dim", lambda L: L.index_in_dim(x, 2, axis=2, keepdims=False)),
        ("pad", lambda L: L.pad(x, 0.5, ((1, -1, 1), (0, 2, 0), (-2, 1, 2)))),
        ("rev", lambda L: L.rev(x, (0, 2))),
        ("transpose", lambda L: L.transpose(x, (2, 0, 1))),
        ("reshape", lambda L: L.reshape(x, (12, 5))),
        ("reshape_dims", lambda L: L.reshape(x, (5, 12), dimensions=(2, 0, 1))),
        ("broadcast_in_dim", lambda L: L.broadcast_in_dim(x[:, 0, :1], (2, 3, 6), (1, 2))),
        ("squeeze", lambda L: L.squeeze(x[:, :1], (1,))),
        ("expand_dims", lambda L: L.expand_dims(x, (0, 3))),
        ("concatenate", lambda L: L.concatenate([x, x[:, :2]], 1)),
        ("select_n", lambda L: L.select_n(x[0] > 0, x[0], x[1])),
        ("select_n3", lambda L: L.select_n(np.array([0, 2, 1, 0, 2], I32), x[0, 0], x[1, 0],
                                           x[2, 0])),
        ("iota", lambda L: L.iota(I32, 5)),
        ("full", lambda L: L.full((2, 3), 1.5, F32)),
        ("reduce_sum", lambda L: L.reduce_sum(x, (0, 2))),
        ("reduce_max", lambda L: L.reduce_max(x, (1,))),
        ("reduce_min", lambda L: L.reduce_min(x, (0,))),
        ("reduce_prod", lambda L: L.reduce_prod(x, (2,))),
        ("reduce_and", lambda L: L.reduce_and(x > -1, (1,))),
        ("reduce_or", lambda L: L.reduce_or(x > 1, (0, 1))),
        ("argmax", lambda L: L.argmax(x, 1, I32)),
        ("argmin", lambda L: L.argmin(x, 2, I32)),
    ]
    for name, f in cases:
        _same(name, x, f(tl), f(jl))


def test_dynamic_indexing_clamps():
    rng = np.random.default_rng(2)
    x = _r(rng, (5, 6))
    u = _r(rng, (2, 3))
    for start in [(0, 0), (1, 2), (4, 5), (-1, 3), (7, -9)]:
        s = tuple(np.int32(v) for v in start)
        _same("dynamic_slice", (x, start), tl.dynamic_slice(x, s, (2, 3)),
              jl.dynamic_slice(x, s, (2, 3)))
        _same("dynamic_update_slice", (x, u, start), tl.dynamic_update_slice(x, u, s),
              jl.dynamic_update_slice(x, u, s))
        _same("dynamic_slice_in_dim", (x, start), tl.dynamic_slice_in_dim(x, s[0], 2, 0),
              jl.dynamic_slice_in_dim(x, s[0], 2, 0))
        _same("dynamic_index_in_dim", (x, start), tl.dynamic_index_in_dim(x, s[1], 1),
              jl.dynamic_index_in_dim(x, s[1], 1))
        _same("dynamic_update_slice_in_dim", (x, u, start),
              tl.dynamic_update_slice_in_dim(x, u[:, :1], s[1], 1),
              jl.dynamic_update_slice_in_dim(x, u[:, :1], s[1], 1))
        _same("dynamic_update_index_in_dim", (x, start),
              tl.dynamic_update_index_in_dim(x, u[0, :1].repeat(5)[:, None], s[1], 1),
              jl.dynamic_update_index_in_dim(x, u[0, :1].repeat(5)[:, None], s[1], 1))


def test_traced_indexing_matches_jax():
    # inside transforms indexing follows JAX: clamp for x[i], drop for .at[].set/add
    rng = np.random.default_rng(3)
    x = _r(rng, (5, 4))
    idx = np.array([0, 4, 7, -1, -8], I32)
    v = _r(rng, (5, 4))
    ours = T.jit(lambda x, i, v: (x[i], x[i, 1:3], x[1:, i[:2]], x.at[i].set(v), x.at[i].add(v),
                                  x.at[i, 0].max(v[:, 0]), x.at[i].get(mode="fill",
                                                                       fill_value=-1.0)))
    theirs = jax.jit(lambda x, i, v: (x[i], x[i, 1:3], x[1:, i[:2]], x.at[i].set(v),
                                      x.at[i].add(v), x.at[i, 0].max(v[:, 0]),
                                      x.at[i].get(mode="fill", fill_value=-1.0)))
    _same("indexing (jit)", (x, idx, v), ours(x, idx, v), theirs(x, idx, v))
    eager = T.vmap(lambda x, i: tnp.take(x, i, axis=0, mode="clip"), in_axes=(None, 0))(x, idx)
    _same("take (vmap)", (x, idx), eager,
          jax.vmap(lambda x, i: jnp.take(x, i, axis=0, mode="clip"), (None, 0))(x, idx))


@pytest.mark.parametrize("dt", [F32, F64, I32])
def test_dot_general(dt):
    rng = np.random.default_rng(4)
    cases = [((3, 4), (4, 5), (((1,), (0,)), ((), ()))),
             ((2, 3, 4), (2, 4, 5), (((2,), (1,)), ((0,), (0,)))),
             ((4, 3, 2), (2, 5, 4), (((0, 2), (2, 0)), ((), ()))),
             ((2, 3, 4), (4, 2, 6), (((2,), (0,)), ((0,), (1,))))]
    for sa, sb, dn in cases:
        a, b = _r(rng, sa, dt), _r(rng, sb, dt)
        _same("dot_general", (a, b, dn), tl.dot_general(a, b, dn), jl.dot_general(a, b, dn))
    a, b = _r(rng, (3, 4), dt), _r(rng, (4,), dt)
    _same("dot", (a, b), tl.dot(a, b), jl.dot(a, b))


CONV_CASES = [  # lhs shape, rhs shape, strides, padding, lhs_dil, rhs_dil, dn, groups
    ((2, 3, 7, 6), (4, 3, 3, 2), (1, 1), "VALID", None, None, None, 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), "SAME", None, None, None, 1),
    ((1, 4, 6, 6), (6, 2, 3, 3), (1, 2), ((1, 0), (2, 1)), (1, 2), (2, 1), None, 2),
    ((2, 7, 7, 3), (3, 3, 3, 5), (1, 1), "SAME", None, (2, 2), ("NHWC", "HWIO", "NHWC"), 1),
    ((2, 3, 9), (2, 3, 4), (2,), ((2, 1),), (2,), None, None, 1),
]


@pytest.mark.parametrize("i", range(len(CONV_CASES)))
def test_conv_general_dilated(i):
    ls, rs, st, pad, ld, rd, dn, g = CONV_CASES[i]
    rng = np.random.default_rng(10 + i)
    for dt in (F32, F64):
        lhs, rhs = _r(rng, ls, dt), _r(rng, rs, dt)
        kw = dict(lhs_dilation=ld, rhs_dilation=rd, dimension_numbers=dn,
                  feature_group_count=g)
        _same("conv_general_dilated", (lhs, rhs, st, pad, kw),
              tl.conv_general_dilated(lhs, rhs, st, pad, **kw),
              jl.conv_general_dilated(lhs, rhs, st, pad, **kw), rtol=1e-4 if dt == F32 else None)


RW_CASES = [  # window, strides, padding, base_dilation, window_dilation
    ((2, 2), (1, 1), "VALID", None, None),
    ((2, 3), (2, 1), "SAME", None, None),
    ((3, 2), (1, 2), ((1, 2), (0, 1)), (2, 1), (1, 2)),
    ((1, 2), (1, 1), ((0, 0), (1, 0)), None, None),
]
REDUCERS = [  # name, ours, theirs, dtypes, init values (identity first)
    ("add", tl.add, jl.add, (F32, F64, I32), (0, 2)),
    ("max", tl.max, jl.max, (F32, F64, I32, B), (None, 1)),
    ("min", tl.min, jl.min, (F32, F64, I32, B), (None, 0)),
    ("mul", tl.mul, jl.mul, (F32, F64, I32), (1, 3)),
    ("bitwise_or", tl.bitwise_or, jl.bitwise_or, (I32, B), (0, 8)),
    ("bitwise_and", tl.bitwise_and, jl.bitwise_and, (I32, B), (-1, 6)),
    ("bitwise_xor", tl.bitwise_xor, jl.bitwise_xor, (I32, B), (0, 5)),
]


def _init(dt, v, name):
    dt = np.dtype(dt)
    if v is None:   # the reducer's identity
        if dt == np.bool_:
            return np.bool_(name == "min")
        if dt.kind == "f":
            return dt.type(-np.inf if name == "max" else np.inf)
        return dt.type(np.iinfo(dt).min if name == "max" else np.iinfo(dt).max)
    if dt == np.bool_:
        return np.bool_(v != 0 if name != "bitwise_and" else v == -1)
    return dt.type(v)


@pytest.mark.parametrize("red", [r[0] for r in REDUCERS])
def test_reduce_window(red):
    name, ours, theirs, dtypes, inits = next(r for r in REDUCERS if r[0] == red)
    rng = np.random.default_rng(zlib.crc32(red.encode()))
    for dt in dtypes:
        x = _r(rng, (4, 5), dt, -1.5, 1.5)
        for win, st, pad, bd, wd in RW_CASES:
            for v in inits:
                init = _init(dt, v, name)
                args = (x, init, win, st, pad, bd, wd)
                _same(f"reduce_window[{name}]", args,
                      tl.reduce_window(x, init, ours, win, st, pad, bd, wd),
                      jl.reduce_window(x, init, theirs, win, st, pad, bd, wd))


def test_reduce_window_grad_and_jit_sample():
    rng = np.random.default_rng(7)
    x = _r(rng, (1, 5, 6, 2))
    for red, ti, ji in (("add", tl.add, jl.add), ("max", tl.max, jl.max),
                        ("min", tl.min, jl.min)):
        init = {"add": 0.0, "max": -np.inf, "min": np.inf}[red]
        f = lambda L, op: lambda x: (L.reduce_window(x, init, op, (1, 2, 3, 1), (1, 2, 1, 1),
                                                     "SAME") ** 2).sum()
        _same(f"grad(reduce_window[{red}])", x, T.grad(f(tl, ti))(x), jax.grad(f(jl, ji))(x))
        _same(f"jit(reduce_window[{red}])", x, T.jit(f(tl, ti))(x), jax.jit(f(jl, ji))(x))
    g = lambda L, op: lambda x: L.reduce_window(x, 2.0, op, (1, 2, 2, 1), (1, 1, 1, 1), "SAME")
    _same("jit(reduce_window[mul])", x, T.jit(g(tl, tl.mul))(x), jax.jit(g(jl, jl.mul))(x))
    with pytest.raises(TypeError, match="not differentiable"):
        T.grad(lambda x: g(tl, tl.mul)(x).sum())(x)
    with pytest.raises(Exception):   # JAX refuses too
        jax.grad(lambda x: g(jl, jl.mul)(x).sum())(x)


def test_cumulative_and_sorting():
    rng = np.random.default_rng(8)
    for dt in (F32, F64, I32):
        x = _r(rng, (3, 5), dt, -1.5, 1.5)
        for ax in (0, 1):
            for rev in (False, True):
                for name in ("cumsum", "cumprod"):
                    _same(name, (x, ax, rev), getattr(tl, name)(x, ax, rev),
                          getattr(jl, name)(x, ax, rev))
        _same("sort", x, tl.sort(x, dimension=0), jl.sort(x, dimension=0))
        k = _r(rng, (3, 5), I32)
        _same("sort_key_val", (x, k), tl.sort_key_val(k, x, 1), jl.sort_key_val(k, x, 1))
        _same("sort_multi", (k, x), tl.sort((k, x), num_keys=1), jl.sort((k, x), num_keys=1))
        _same("top_k", x, tl.top_k(x, 3), jl.top_k(x, 3))


def test_every_shared_lax_name_is_covered():
    shared = {n for n in dir(tl) if not n.startswith("_")} & set(dir(jl))
    covered = set(UNARY) | set(BINARY) | {r[0] for r in REDUCERS} | {
        "shift_left", "shift_right_arithmetic", "shift_right_logical", "bitwise_not",
        "integer_pow", "convert_element_type", "slice", "slice_in_dim", "index_in_dim", "pad",
        "rev", "transpose", "reshape", "broadcast_in_dim", "squeeze", "expand_dims",
        "concatenate", "select_n", "iota", "full", "reduce_sum", "reduce_max", "reduce_min",
        "reduce_prod", "reduce_and", "reduce_or", "argmax", "argmin", "dynamic_slice",
        "dynamic_update_slice", "dynamic_slice_in_dim", "dynamic_index_in_dim",
        "dynamic_update_index_in_dim", "dynamic_update_slice_in_dim", "dot_general", "dot", "conv_general_dilated",
        "reduce_window", "cumsum", "cumprod", "sort", "sort_key_val", "top_k"}
    # covered by the rest of the test suite or not numerical: control flow and collectives
    # (tests/test_control_flow.py, test_collectives.py), classes, shape helpers, complex
    # numbers, convolution wrappers over conv_general_dilated, linalg (tests/test_linalg.py)
    # (fft: tests/test_fft.py and the jnp.fft cases of test_diff_numpy)
    elsewhere = {"ConvDimensionNumbers", "FftType", "fft", "Precision", "all_gather",
                 "associative_scan",
                 "axis_index", "complex", "cond", "conj", "conv", "conv_dimension_numbers",
                 "conv_general_shape_tuple", "conv_transpose", "conv_with_general_padding",
                 "fori_loop", "gather", "imag", "linalg", "map", "padtype_to_pads", "pmax",
                 "pmean", "pmin", "polygamma", "ppermute", "psum", "real",
                 "reduce_window_shape_tuple", "scan", "scatter", "scatter_add", "scatter_max",
                 "scatter_min", "scatter_mul", "select", "stop_gradient", "switch",
                 "while_loop"}
    # the names added with transforms/lax/more.py are checked against JAX (when importable)
    # and NumPy in tests/test_lax_more.py and test_jax_names_top.py: a name must be used there
    here = pathlib.Path(__file__).resolve().parent.parent
    text = "".join((here / f).read_text() for f in ("test_lax_more.py", "test_jax_names_top.py"))
    elsewhere |= set(re.findall(r"\blax\.(\w+)", text))
    # not numerical: an enum, tokens, a type cast of the varying-ness of a value, a shape
    elsewhere |= {"RoundingMethod", "after_all", "create_token", "pcast", "shape_as_value",
                  # derivative helpers, exercised by the gradients of igamma and random.gamma
                  # in test_lax_more.py and test_random_more.py
                  "igamma_grad_a", "random_gamma_grad"}
    missing = sorted(shared - covered - elsewhere)
    assert not missing, f"shared lax names without a differential case: {missing}"
