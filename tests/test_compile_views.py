"""Static slices and reshapes of generated code are `views` intrinsics (cheaper to compile
than Numba's generic slicing and reshape), and give the same values."""
import ast

import numba
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms.backend.numba import views


@numba.njit
def _use_views(a, b):
    s = views.rows(a, 3, 9)
    t = views.shaped(views.rows(a, 0, 12), (3, 4))
    u = views.rows(b, 1, 2)                       # rows of a 3-D array
    flat = views.shaped(t, t.size)
    s[0] = -1.0                                   # a view, not a copy
    return s.sum(), t[2, 1], s.shape[0], u.shape, u[0, 1, 0], flat[5], t.strides


def test_intrinsics_match_numpy_slicing_and_reshape():
    a = np.arange(20, dtype=np.float32)
    b = np.arange(24.0).reshape(2, 3, 4)
    total, t21, n, ushape, u010, f5, strides = _use_views(a, b)
    assert a[3] == -1.0                           # written through the view
    assert total == a[3:9].sum() and n == 6
    assert t21 == a[:12].reshape(3, 4)[2, 1] and f5 == 5.0
    assert ushape == (1, 3, 4) and u010 == b[1:2][0, 1, 0]
    assert strides == a[:12].reshape(3, 4).strides


def test_rewrite_reads_only_and_literal_shapes_only():
    src = "\n".join([
        "    x = _wf32[0:10] + y[3:5]  # keeps a[1:2] in the comment",
        "    _wf32[0:10] = _s[1:4]",
        "    q[0:3] += 1",
        "    v = _wf32[4:100].reshape((2, 3, 4))",
        "    w = v.reshape(v.size)",
        "    z = v.reshape(-1)",
        "    k = a.b[0:4]",
        "    m = p[9:2]",
        "    # c[0:1] in a comment line",
    ])
    out = views.rewrite(src).splitlines()
    assert out[0] == "    x = _sl(_wf32, 0, 10) + _sl(y, 3, 5)  # keeps a[1:2] in the comment"
    assert out[1] == "    _st(_wf32, 0, 10, _sl(_s, 1, 4))"      # a slice store
    assert out[2] == "    q[0:3] += 1"                           # augmented: as written
    assert out[3] == "    v = _nd(_sl(_wf32, 4, 100), (2, 3, 4))"
    assert out[4] == "    w = _nd(v, v.size)"
    assert out[5] == "    z = v.reshape(-1)"                     # not a literal shape
    assert out[6] == "    k = a.b[0:4]"
    assert out[7] == "    m = p[9:2]"                            # empty: left to NumPy
    assert out[8] == "    # c[0:1] in a comment line"


def _static_slice_reads(fn_source):
    """Static `name[a:b]` slices read (not stored into) in function source."""
    tree = ast.parse(fn_source)
    stores = {id(t) for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))
              for t in (node.targets if isinstance(node, ast.Assign) else [node.target])}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Subscript) and id(n) not in stores
            and isinstance(n.slice, ast.Slice) and isinstance(n.slice.lower, ast.Constant)
            and isinstance(n.slice.upper, ast.Constant)]


def _mlp_step(params, x, y):
    def loss(p):
        h = tnp.maximum(x @ p["w1"] + p["b1"], 0.0)
        logits = h @ p["w2"] + p["b2"]
        m = tnp.max(logits, axis=1, keepdims=True)
        lse = tnp.log(tnp.sum(tnp.exp(logits - m), axis=1, keepdims=True)) + m
        return -tnp.mean(tnp.sum((logits - lse) * y, axis=1))
    value, g = T.value_and_grad(loss)(params)
    return T.tree.map(lambda p, d: p - 0.1 * d, params, g), value


def test_generated_step_uses_views_and_matches_eager():
    rng = np.random.default_rng(0)
    params = {"w1": rng.standard_normal((12, 16)).astype(np.float32) / 4,
              "b1": np.zeros(16, np.float32),
              "w2": rng.standard_normal((16, 5)).astype(np.float32) / 4,
              "b2": np.zeros(5, np.float32)}
    x = rng.standard_normal((8, 12)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 8)]
    low = T.jit(_mlp_step).lower(params, x, y)
    src = low.compile().source if hasattr(low, "compile") else low.source
    start = src.index("\ndef _fn(")
    fn_src = src[start:src.index("\ndef make_runner")]
    assert views.IMPORT in src
    assert "_sl(" in fn_src
    # every static slice the main function reads is a view intrinsic now
    assert _static_slice_reads(fn_src.strip()) == []
    got_p, got_v = T.jit(_mlp_step)(params, x, y)
    want_p, want_v = _mlp_step(params, x, y)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(got_p[k], want_p[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4)])
def test_conv_reshapes_are_views(shape):
    from transforms import lax
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return tnp.sum(y * y)
    low = T.jit(f).lower(x, w)
    src = low.compile().source
    fn_src = src[src.index("\ndef _fn("):src.index("\ndef make_runner")]
    assert ".reshape((" not in fn_src                # literal-shape reshapes are `_nd`
    np.testing.assert_allclose(T.jit(f)(x, w), f(x, w), rtol=1e-4)


@numba.njit
def _use_empty(n):
    a = views.empty(n, np.float32)
    b = views.empty((2, 3), np.int64)
    a[:] = 1.5
    b[:] = 7
    return a.sum(), b.shape, b.sum(), a


def test_empty_intrinsic_allocates_like_numpy():
    total, shape, bsum, a = _use_empty(10)
    assert total == 15.0 and shape == (2, 3) and bsum == 42
    assert a.dtype == np.float32 and a.flags.c_contiguous
    line = "    _rs = _np.empty(10, _np.float32)  # x\n    _t = _np.empty((2, 3), _np.bool_)"
    assert views.rewrite(line) == ("    _rs = _em(10, _np.float32)  # x\n"
                                   "    _t = _em((2, 3), _np.bool_)")
    assert views.rewrite("    q = _np.empty(n, _np.float32)") == \
        "    q = _np.empty(n, _np.float32)"                      # computed sizes stay


def test_gather_indices_convert_without_int_overload():
    """Index conversions are NumPy casts (``int()`` is an overload Numba compiles afresh in
    every process); gathers stay exact, out-of-range fills included."""
    def f(h, labels):
        return tnp.take_along_axis(h, labels[:, None], axis=1, mode="fill")[:, 0]

    h = np.arange(12.0).reshape(4, 3)
    labels = np.array([0, 2, -1, 5])
    src = T.jit(f).lower(h, labels).compile().source
    fn_src = src[src.index("\ndef _fn("):src.index("\ndef make_runner")]
    assert "_np.int64(" in fn_src and " int(" not in fn_src
    np.testing.assert_array_equal(T.jit(f)(h, labels), f(h, labels))


@numba.njit
def _use_store(a, b, c, d):
    views.store(a, 2, 5, 7)                       # scalar fill (cast to float32)
    views.store(a, 10, 14, views.rows(a, 8, 12))  # overlapping copy: as NumPy
    views.store(b, 0, 2, 1.5)                     # a 2-D target: Numba's own assignment
    views.store(c, 1, 3, d)                       # another dtype: Numba's own assignment
    views.store(d, 0, len(d), 0)                  # `x[:] = 0`


def test_store_intrinsic_matches_numpy_slice_assignment():
    a = np.arange(20, dtype=np.float32)
    b = np.zeros((3, 2))
    c = np.zeros(4)
    d = np.array([4, 5], np.int32)
    want_a = a.copy()
    want_a[2:5] = 7
    want_a[10:14] = want_a[8:12]
    _use_store(a, b, c, d)
    np.testing.assert_array_equal(a, want_a)
    np.testing.assert_array_equal(b, [[1.5, 1.5], [1.5, 1.5], [0, 0]])
    np.testing.assert_array_equal(c, [0, 4, 5, 0])
    np.testing.assert_array_equal(d, [0, 0])
    assert views.rewrite("    p0[:] = _C1_f32  # fill") == "    _st(p0, 0, len(p0), _C1_f32)  # fill"


def _loops_of_fn(f, *args):
    src = T.jit(f).lower(*args).source
    body = src[src.index("\ndef _fn("):src.index("\ndef make_runner")]
    return sum(1 for ln in body.splitlines() if ln.lstrip().startswith("for "))


@pytest.mark.parametrize("case", ["flat", "flat3d", "transposed", "row_index", "col_index"])
def test_reshaped_iota_reads_in_place(case):
    # issue 17: random's counters are iota(n).reshape(shape); read in place, a sampler over a
    # 2-D shape is one loop (the counter is the flat index) and compiles to the same helper
    # as the 1-D sampler, instead of writing the counter out first
    from transforms import lax
    x = np.arange(24, dtype=np.int32).reshape(4, 6) * 7
    flat = np.arange(24, dtype=np.int32)
    cases = {   # f, its value, whether the iota fuses into the loop reading it
        "flat": (lambda x: lax.iota(np.int32, 24).reshape(4, 6) * 3 + x,
                 flat.reshape(4, 6) * 3 + x, True),
        "flat3d": (lambda x: lax.iota(np.int32, 24).reshape(2, 3, 4) + 5 + x.reshape(2, 3, 4),
                   flat.reshape(2, 3, 4) + 5 + x.reshape(2, 3, 4), True),
        "transposed": (lambda x: lax.iota(np.int32, 24).reshape(6, 4).T + x,
                       flat.reshape(6, 4).T + x, None),
        # not a function of the flat index: still correct (not a view)
        "row_index": (lambda x: lax.broadcasted_iota(np.int32, (4, 6), 0).reshape(6, 4) + 1,
                      np.repeat(np.arange(4, dtype=np.int32), 6).reshape(6, 4) + 1, False),
        "col_index": (lambda x: lax.broadcasted_iota(np.int32, (4, 6), 1).reshape(24) - x.reshape(24),
                      np.tile(np.arange(6, dtype=np.int32), 4) - x.reshape(24), False),
    }
    f, want, fused = cases[case]
    np.testing.assert_array_equal(T.jit(f)(x), want)
    np.testing.assert_array_equal(f(x), want)
    if fused:
        assert _loops_of_fn(f, x) == 1


def test_sampler_over_a_matrix_is_one_loop():
    from transforms import random
    k = random.key(3)
    for shape in [(64, 64), (3, 5, 7), (1, 64), (64, 1, 3)]:
        f = lambda k: random.normal(k, shape)       # noqa: E731
        np.testing.assert_array_equal(T.jit(f)(k), f(k))
        assert _loops_of_fn(f, k) == 1, shape
