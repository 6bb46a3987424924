"""jit with zero-size arrays and unusual dtypes: results equal NumPy's (empty, or the values an
empty contraction/padding gives), or the eager call's clear error; never a crash or garbage.

The matmul cases used to write past a workspace (heap corruption that killed the process), so
they run in a child process: a regression then fails this test instead of the whole session."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fnn
import transforms as T
import transforms.numpy as tnp
from transforms import lax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape,
                                                                 got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_matmul_family_with_zero_size_dims_in_a_child_process(tmp_path):
    code = textwrap.dedent("""
        import numpy as np, transforms as T, transforms.numpy as tnp
        f32, f64, i64 = np.float32, np.float64, np.int64
        cases = [
            (lambda x, w: x @ w, (np.ones((0, 64), f64), np.ones((64, 4096), f64))),
            (lambda x, w: x @ w, (np.ones((0, 64), f32), np.ones((64, 4096), f32))),
            (lambda x, w: x @ w, (np.ones((0, 64), i64), np.ones((64, 300), i64))),
            (lambda x, w: x @ w, (np.ones((7, 64), f64), np.ones((64, 0), f64))),
            (lambda x, w: x @ w, (np.ones((5, 0), f64), np.ones((0, 40), f64))),   # zeros
            (lambda x, w: x @ w, (np.ones((0, 3, 64), f64), np.ones((0, 64, 400), f64))),
            (lambda x, w: tnp.einsum('bij,bjk->bik', x, w),
             (np.ones((2, 3, 0), f32), np.ones((2, 0, 400), f32))),
            (lambda x, w: tnp.einsum('bij,bjk->bik', x, w),
             (np.ones((0, 3, 64), f32), np.ones((0, 64, 400), f32))),
            (tnp.outer, (np.ones(0, f64), np.ones(4000, f64))),
            (lambda a, b: tnp.tensordot(a, b, axes=1),
             (np.ones((0, 64), f64), np.ones((64, 400), f64))),
            (T.vmap(lambda x, w: x @ w, in_axes=(0, None)),
             (np.ones((0, 64), f64), np.ones((64, 400), f64))),
        ]
        for i, (f, args) in enumerate(cases):
            got, want = T.jit(f)(*args), f(*args)
            ref = np.asarray(want)
            assert got.shape == ref.shape and got.dtype == ref.dtype, (i, got.shape, ref.shape)
            assert (got == ref).all(), i
        print("all ok")
    """)
    env = dict(os.environ)
    env.setdefault("NUMBAX_CACHE_DIR", str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0 and "all ok" in p.stdout, (p.returncode, p.stderr[-2000:])


def test_take_from_an_empty_axis_is_the_eager_index_error_never_garbage():
    take = T.jit(lambda x, i: tnp.take(x, i, axis=1, mode="clip"))
    along = T.jit(lambda x, i: tnp.take_along_axis(x, i, axis=1))
    idx = np.array([0, 1])
    for fn, args in [(take, (np.ones((3, 0)), idx)),
                     (along, (np.ones((2, 0)), np.zeros((2, 3), np.int64))),
                     (lambda x, i: tnp.take(x, i), (np.ones(0), idx))]:
        with pytest.raises(IndexError, match="size 0"):
            fn(*args)
        with pytest.raises(ValueError):       # (also a ValueError: the API's error contract)
            fn(*args)
    # eager lax.gather (what .at[].get(mode='clip') and advanced indexing build on)
    with pytest.raises(IndexError, match="size 0"):
        lax.gather(np.ones((0, 2)), np.zeros((3, 1), np.int64))
    # an empty result from an empty axis is fine, as in NumPy (no bounds to check)
    _same(take(np.ones((0, 0)), np.array([5, 6])), np.take(np.ones((0, 0)), [0, 0], axis=1))
    _same(tnp.take(np.ones((0, 0)), np.array([5]), axis=1), np.ones((0, 1)))
    _same(along(np.ones((0, 0)), np.zeros((1, 3), np.int64)), np.ones((0, 3)))


def test_take_and_take_along_axis_with_empty_indices_under_jit():
    x = np.arange(12.0).reshape(3, 4)
    _same(T.jit(lambda x, i: tnp.take(x, i, axis=0))(x, np.zeros(0, np.int64)),
          np.take(x, np.zeros(0, np.int64), axis=0))
    i = np.zeros((0, 4), np.int64)
    _same(T.jit(lambda x, i: tnp.take_along_axis(x[:0], i, axis=1))(x, i), np.ones((0, 4)))


def test_pooling_and_conv_layers_and_their_gradients_on_an_empty_batch():
    key = T.random.key(0)
    sample = np.ones((1, 6, 6, 3), np.float32)
    empty = np.ones((0, 6, 6, 3), np.float32)
    for layer in [fnn.MaxPool((2, 2)), fnn.AvgPool((2, 2)), fnn.Conv2D(4, (3, 3))]:
        params, state = layer.init(key, sample)

        def loss(p, x):
            return layer.apply(p, state, x)[0].sum()

        def fwd(p, x):
            return layer.apply(p, state, x)[0]
        want = fwd(params, empty)
        assert want.shape[0] == 0 and want.dtype == np.float32
        _same(T.jit(fwd)(params, empty), want)
        g_p, g_x = T.jit(T.grad(loss, argnums=(0, 1)))(params, empty)
        _same(g_x, np.zeros_like(empty))
        for leaf in T.tree.leaves(g_p):             # nothing contributes: exact zeros
            _same(leaf, np.zeros_like(leaf))


def test_scan_over_empty_xs_and_with_length_zero():
    def over_xs(c, xs):
        return lax.scan(lambda c, x: (c + x, c * x), c, xs)

    def counted(c):
        return lax.scan(lambda c, _: (c + 1, c), c, None, length=0)
    c = np.arange(3.0)
    for f, args in [(over_xs, (c, np.ones((0, 3)))), (counted, (c,))]:
        carry, ys = T.jit(f)(*args)
        _same(carry, c)
        _same(ys, np.ones((0, 3)))


def test_float32_sin_cos_sinc_of_empty_arrays():
    for fn in (tnp.sin, tnp.cos, tnp.sinc, lambda x: tnp.sin(x) * tnp.cos(2 * x)):
        for shape in [(0,), (3, 0)]:
            _same(T.jit(fn)(np.ones(shape, np.float32)), np.ones(shape, np.float32))


def test_concatenate_repeat_diag_with_zero_size_operands_match_numpy():
    e, e2 = np.ones(0), np.ones((0, 3))
    cases = [
        (lambda a, b: tnp.concatenate([a, b]), lambda a, b: np.concatenate([a, b]), (e, e)),
        (lambda a, b: tnp.concatenate([a, b]), lambda a, b: np.concatenate([a, b]),
         (e, np.arange(3.0))),
        (lambda a, b: tnp.concatenate([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1),
         (np.ones((0, 2)), e2)),
        (lambda a: tnp.repeat(a, 2), lambda a: np.repeat(a, 2), (e,)),
        (lambda a: tnp.repeat(a, np.array([1, 0, 2]), axis=0),
         lambda a: np.repeat(a, [1, 0, 2], axis=0), (np.ones((3, 0)),)),
        (lambda a: tnp.diag(a, 5), lambda a: np.diag(a, 5), (np.arange(1.0, 3.0),)),
        (lambda a: tnp.diag(a, -5), lambda a: np.diag(a, -5), (np.arange(1.0, 3.0),)),
        (lambda a: tnp.diag(a, 2), lambda a: np.diag(a, 2), (e,)),
        (lambda a: tnp.diag(a, 3), lambda a: np.diag(a, 3), (np.ones((2, 3)),)),
        (lambda a: tnp.diag(a, -5), lambda a: np.diag(a, -5), (np.ones((2, 3)),)),
        (lambda a: tnp.diag(a), np.diag, (np.ones((0, 0)),)),
    ]
    for f, ref, args in cases:
        want = ref(*args)
        _same(f(*args), want)
        _same(T.jit(f)(*args), want)


def test_argmax_argmin_over_an_empty_axis_raise_numpys_error_under_jit():
    for fn, x in [(lambda x: tnp.argmax(x), np.ones(0)),
                  (lambda x: tnp.argmin(x, axis=1), np.ones((3, 0))),
                  (lambda x: tnp.argmax(x, axis=0), np.ones((0, 0)))]:
        for g in (fn, T.jit(fn)):
            with pytest.raises(ValueError, match="empty sequence"):
                g(x)
    with pytest.raises(ValueError, match="empty sequence"):
        T.jit(T.vmap(tnp.argmax))(np.ones((3, 0)))
    # the reduced axis is not empty, the result is: fine (as NumPy)
    _same(T.jit(lambda x: tnp.argmax(x, axis=1))(np.ones((0, 3))), np.zeros(0, np.int64))


def test_big_endian_inputs_are_converted_as_eager_does():
    f = T.jit(lambda a, b: (a * 2 + b.sum(), b))
    a, b = np.arange(4.0).astype(">f8"), np.arange(3, dtype=">i4")
    got, back = f(a, b)
    _same(got, np.arange(4.0) * 2 + 3)
    assert back.dtype.isnative and back.dtype == np.int32
    np.testing.assert_array_equal(back, [0, 1, 2])
    got, _ = f(np.arange(4.0), np.arange(3, dtype=np.int32))     # native again: still right
    _same(got, np.arange(4.0) * 2 + 3)
    c = np.arange(4.0).astype(">f8")                               # a closed-over constant
    _same(T.jit(lambda i: lax.dynamic_slice(c, (i,), (2,)))(1), np.array([1.0, 2.0]))


def test_str_and_bytes_outputs_are_a_type_error_naming_the_output():
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"output\['name'\] has dtype <U3"):
        T.jit(lambda a: {"y": a, "name": "abc"})(x)
    with pytest.raises(TypeError, match=r"output\[1\] has dtype \|S2"):
        T.jit(lambda a: (a, np.array(b"ab")))(x)


def test_unsupported_dtypes_are_a_type_error_naming_the_argument():
    from transforms.errors import UnsupportedDtypeError
    assert issubclass(UnsupportedDtypeError, TypeError)
    assert issubclass(UnsupportedDtypeError, NotImplementedError)     # as before
    f = T.jit(lambda p, s: p["w"][1] * 2)
    w = [np.ones(2, np.float32), np.ones(2, np.float16)]
    with pytest.raises(TypeError, match=r"argument args\[0\]\['w'\]\[1\] .*float16.*float32"):
        f({"w": w}, 1.0)
    # (complex64/complex128 compile since the complex lowering landed)
    for bad in [np.array([1, "a"], object), np.array(["ab"]),
                np.array(["2020-01-01"], "datetime64[D]")]:
        with pytest.raises(UnsupportedDtypeError,
                           match=r"argument args\[1\] .*dtype " + re.escape(str(bad.dtype))):
            T.jit(lambda a, b: b)(np.ones(2), bad)
    # an unsupported intermediate names the operation and the user's line
    with pytest.raises(UnsupportedDtypeError, match="convert_element_type.*float16"):
        T.jit(lambda a: a.astype(np.float16).astype(np.float32))(np.ones(2, np.float32))


def test_lax_reduce_max_min_over_an_empty_axis_give_the_identity_eagerly_and_jitted():
    # as JAX's lax.reduce_max/min (NumPy's max raises; tnp.max keeps NumPy's error)
    x = np.ones((0, 3), np.float32)
    cases = [(lambda x: lax.reduce_max(x, (0,)), x, np.full(3, -np.inf, np.float32)),
             (lambda x: lax.reduce_min(x, (0,)), x.astype(np.int32),
              np.full(3, np.iinfo(np.int32).max, np.int32)),
             (lambda x: lax.reduce_max(x, (0,)), x.astype(bool), np.zeros(3, bool))]
    for f, a, want in cases:
        _same(f(a), want)
        _same(T.jit(f)(a), want)
    with pytest.raises(ValueError, match="identity"):
        tnp.max(x, axis=0)


def test_cnn_training_step_on_an_empty_batch_leaves_the_parameters_unchanged():
    from fnn import optim
    model = fnn.Sequential([fnn.Conv2D(4, (3, 3)), fnn.relu, fnn.MaxPool((2, 2)),
                            fnn.Flatten(), fnn.Dense(8), fnn.relu, fnn.Dense(3)])
    params, state = model.init(T.random.key(0), np.ones((2, 8, 8, 1), np.float32))
    opt = optim.adam(1e-3)

    def step(p, o, x, y):
        def loss(p):
            out = model.apply(p, state, x)[0]
            return fnn.losses.cross_entropy(out, y, reduction="sum")
        value, g = T.value_and_grad(loss)(p)
        updates, o = opt.update(g, o, p)
        return optim.apply_updates(p, updates), o, value
    x, y = np.ones((0, 8, 8, 1), np.float32), np.zeros(0, np.int64)
    for fn in (step, T.jit(step)):
        new, _, value = fn(params, opt.init(params), x, y)
        _same(value, np.float32(0))                  # a sum over no examples
        for a, b in zip(T.tree.leaves(new), T.tree.leaves(params)):
            _same(a, b)                              # zero gradients: Adam moves nothing


def test_bitwise_ops_on_floats_and_sign_of_bools_are_type_errors_never_numba_errors():
    f, b = np.ones(2, np.float32), np.array([True, False])
    for fn, x in [(lambda a: a & a, f), (lambda a: a | a, f), (lambda a: a ^ a, f),
                  (lambda a: ~a, f), (lambda a: a << a, f), (lambda a: a >> a, f),
                  (tnp.sign, b), (lambda a: lax.bitwise_not(a), f)]:
        for g in (fn, T.jit(fn)):
            with pytest.raises(TypeError, match="(does not accept dtype|not supported)"):
                g(x)


def test_shifting_booleans_gives_int8_as_numpy():
    b = np.array([True, False, True])
    for f, ref in [(tnp.left_shift, np.left_shift), (tnp.right_shift, np.right_shift)]:
        want = ref(b, b)
        assert want.dtype == np.int8
        _same(f(b, b), want)
        _same(T.jit(f)(b, b), want)


def test_sign_of_infinities_under_jit_is_one_not_nan():
    for dt in (np.float32, np.float64):
        x = np.array([-np.inf, -2.5, 0.0, 3.0, np.inf, np.nan], dt)
        got = T.jit(lambda a: tnp.sign(a) * 2)(x)
        _same(got, np.array([-2, -2, 0, 2, 2, np.nan], dt))


def test_integer_to_a_constant_negative_power_is_numpys_value_error_under_jit_too():
    for x, p in [(np.array([1, 2]), -1), (np.array([1, 2], np.int8), np.int64(-2)),
                 (np.array([True]), -1)]:
        with pytest.raises(ValueError, match="negative integer powers"):
            np.power(x, p)
        for g in (lambda a: a ** p, T.jit(lambda a: a ** p)):
            with pytest.raises(ValueError, match="negative integer powers"):
                g(x)
    _same(T.jit(lambda a: a ** -1)(np.array([2.0])), np.array([0.5]))
