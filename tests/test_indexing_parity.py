"""`.at[]` updates and out-of-bounds indices as in JAX: inside transforms, gathers clamp (or
fill with mode='fill'), scatters drop out-of-bounds updates, and a gather's transpose drops
out-of-bounds cotangents (except mode='clip'). Expected values recorded from JAX (x64)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp

X = np.array([1.0, 2.0, 3.0])
X0 = np.array([0.0, 5.0, 0.0])
R = np.arange(10.0)


def eager(f):
    return lambda *a: f(*[tnp.asarray(v) for v in a])


def vmapped(f):
    return lambda *a: T.vmap(f)(*[np.stack([v, v]) for v in a])[1]


WAYS = [eager, T.jit, vmapped]

AT_CASES = [
    ("grad_multiply_y", T.grad(lambda y: tnp.at(X)[1].multiply(y).sum()), (4.0,), 2.0),
    ("grad_multiply_y_array", T.grad(lambda y: tnp.at(X)[np.array([1, 2])].multiply(y).sum()),
     (np.array([4.0, 5.0]),), [2.0, 3.0]),
    ("divide_int", lambda v: tnp.at(v)[1:].divide(2), (np.arange(4, dtype=np.int32),),
     [0.0, 0.5, 1.0, 1.5]),
    ("divide_duplicates", lambda v: tnp.at(v)[np.array([1, 1])].divide(np.array([2.0, 4.0])),
     (X,), [1.0, 0.25, 3.0]),
    ("power_duplicates", lambda v: tnp.at(v)[np.array([1, 1])].power(np.array([2.0, 3.0])),
     (X,), [1.0, 64.0, 3.0]),
    ("apply_duplicates", lambda v: tnp.at(v)[np.array([1, 1])].apply(lambda u: u * 10), (X,),
     [1.0, 200.0, 3.0]),
    ("apply_traced_index", lambda v, i: tnp.at(v)[i].apply(lambda u: u * 10),
     (X, np.array([1, 1, 2, 0, 0, 0])), [1000.0, 200.0, 30.0]),
    ("min_duplicates", lambda v: tnp.at(v)[np.array([1, 1])].min(np.array([1.0, 3.0])), (X0,),
     [0.0, 1.0, 0.0]),
    ("max_duplicates", lambda v: tnp.at(v)[np.array([1, 1])].max(np.array([7.0, 6.0])), (X0,),
     [0.0, 7.0, 0.0]),
    ("min_traced_index", lambda v, i: tnp.at(v)[i].min(np.array([1.0, 3.0])),
     (X0, np.array([1, 1])), [0.0, 1.0, 0.0]),
    ("grad_min_updates", T.grad(lambda v: tnp.at(X0)[np.array([1, 1])].min(v).sum()),
     (np.array([1.0, 3.0]),), [1.0, 0.0]),
    ("grad_min_tie", T.grad(lambda v: tnp.at(X0)[np.array([1, 1])].min(v).sum()),
     (np.array([1.0, 1.0]),), [0.5, 0.5]),
    ("grad_min_operand", T.grad(lambda v: tnp.at(v)[np.array([1, 1])].min(
        np.array([5.0, 7.0])).sum()), (X0,), [1.0, 0.5, 1.0]),
    ("grad_power_y", T.grad(lambda y: tnp.at(X)[1].power(y).sum()), (3.0,), 5.545177444479562),
    ("grad_power_x", T.grad(lambda v: tnp.at(v)[1].power(3.0).sum()), (X,), [1.0, 12.0, 1.0]),
    ("grad_divide_y", T.grad(lambda y: tnp.at(X)[1].divide(y).sum()), (4.0,), -0.125),
    ("grad_apply_duplicates", T.grad(lambda v: tnp.at(v)[np.array([1, 1])].apply(
        tnp.sin).sum()), (X,), [1.0, -0.2556391190927912, 1.0]),
]


@pytest.mark.parametrize("way", WAYS, ids=["eager", "jit", "vmap"])
@pytest.mark.parametrize("name, f, args, want", AT_CASES, ids=[c[0] for c in AT_CASES])
def test_at_updates_as_jax(way, name, f, args, want):
    got = way(f)(*args)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    if name == "divide_int":
        assert np.asarray(got).dtype == np.float64      # NumPy's true division of integers


def test_multiply_gradient_with_duplicate_indices_is_jax_error():
    with pytest.raises(NotImplementedError, match="at most once"):
        T.grad(lambda y: tnp.at(X)[np.array([1, 1])].multiply(y).sum())(np.array([4.0, 5.0]))


OOB_CASES = [
    # gradients: the gather's transpose drops out-of-bounds cotangents (JAX: 27, not 36)
    ("grad_traced_scalar", T.grad(lambda x, i: x[i] * x[9]), (R, 11), [0] * 9 + [18.0]),
    ("grad_traced_array", T.grad(lambda x, i: (x[i] * x[9]).sum()), (R, np.array([11, 9])),
     [0] * 9 + [27.0]),
    ("grad_traced_array_all_out", T.grad(lambda x, i: (x[i] ** 2).sum()),
     (R, np.array([11, 99])), [0.0] * 10),
    ("grad_static_int", T.grad(lambda x: x[11]), (R,), [0] * 9 + [1.0]),
    ("grad_static_negative", T.grad(lambda x: x[-11]), (R,), [1.0] + [0] * 9),
    ("grad_take", T.grad(lambda x: tnp.take(x, np.array([11, 2, -1])).sum()), (R,),
     [0, 0, 1.0] + [0] * 6 + [1.0]),
    ("grad_take_along_axis_clip", T.grad(lambda x: tnp.take_along_axis(
        x, np.array([11, 2, -1]), 0, mode="clip").sum()), (R,), [0, 0, 1.0] + [0] * 6 + [2.0]),
    # values: static indices clamp, take fills, scatters drop
    ("x_11", lambda x: x[11], (R,), 9.0),
    ("at_get", lambda x: x.at[11].get(), (R,), 9.0),
    ("at_get_array", lambda x: x.at[np.array([12, -1, -11])].get(), (R,), [9.0, 9.0, 0.0]),
    ("at_get_fill", lambda x: x.at[np.array([12, -1, -11])].get(mode="fill"), (R,),
     [np.nan, 9.0, np.nan]),
    ("at_get_fill_value", lambda x: x.at[12].get(mode="fill", fill_value=3), (R,), 3.0),
    ("take", lambda x: tnp.take(x, 11), (R,), np.nan),
    ("take_array", lambda x: tnp.take(x, np.array([-1, -10, -11, 10])), (R,),
     [9.0, 0.0, np.nan, np.nan]),
    ("take_fill_value", lambda x: tnp.take(x, 11, mode="fill", fill_value=-1.0), (R,), -1.0),
    ("take_clip", lambda x: tnp.take(x, np.array([-1, 12]), mode="clip"), (R,), [0.0, 9.0]),
    ("take_int", lambda x: tnp.take(x, 11), (np.arange(10),), np.iinfo(np.int64).min),
    ("take_along_axis", lambda x: tnp.take_along_axis(x, np.array([11, -1, -11]), 0), (R,),
     [np.nan, 9.0, np.nan]),
    ("set_dropped", lambda x: x.at[np.array([12, -1, -11])].set(100.0), (R,),
     list(range(9)) + [100.0]),
    ("set_negative_dropped", lambda x: x.at[-11].set(100.0), (R,), R),
    ("add_dropped", lambda x: x.at[10].add(1.0), (R,), R),
    ("set_clip", lambda x: x.at[10].set(-1.0, mode="clip"), (R,), list(range(9)) + [-1.0]),
    ("2d", lambda m: tnp.stack([m[5, 1], m[1, 7], m.at[5, 1].set(0.0)[2, 1],
                                m[np.array([5]), 1][0]]),
     (np.arange(12.0).reshape(3, 4),), [9.0, 7.0, 9.0, 9.0]),
]


def under_jvp(f):
    """`f` run on JVP tracers: inside a transform, evaluated eagerly."""
    return lambda *a: T.jvp(f, a, tuple(np.zeros_like(v) for v in a))[0]


@pytest.mark.parametrize("way", [under_jvp, T.jit, vmapped], ids=["jvp", "jit", "vmap"])
@pytest.mark.parametrize("name, f, args, want", OOB_CASES, ids=[c[0] for c in OOB_CASES])
def test_out_of_bounds_indices_as_jax(way, name, f, args, want):
    got = way(f)(*args)
    np.testing.assert_array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64))


def test_at_out_of_bounds_follows_jax_eagerly_too():
    """`.at` exists only in JAX's API, so JAX's rules hold on eager NumPy input as under jit:
    an out-of-bounds get clamps, out-of-bounds updates are dropped (in-bounds ones kept)."""
    x = np.arange(10.0)
    assert tnp.at(x)[11].get() == 9.0
    assert tnp.at(x)[-11].get() == 0.0
    np.testing.assert_array_equal(tnp.at(x)[np.array([2, 11])].get(), [2.0, 9.0])
    np.testing.assert_array_equal(tnp.at(x)[11].set(1.0), x)
    want = x.copy(); want[2] += 5.0
    np.testing.assert_array_equal(tnp.at(x)[np.array([2, 11])].add(5.0), want)
    want = x.copy(); want[3] *= 2.0
    np.testing.assert_array_equal(tnp.at(x)[np.array([3, 12])].multiply(2.0), want)
    np.testing.assert_array_equal(tnp.at(x)[10].divide(2.0), x)
    np.testing.assert_array_equal(tnp.at(x)[10].apply(tnp.negative), x)
    np.testing.assert_array_equal(tnp.at(x)[10].set(1.0, mode="clip")[-1], 1.0)
    # the same under jit
    jg = T.jit(lambda a: (a.at[11].get(), a.at[np.array([2, 11])].add(5.0)))
    got = jg(x)
    assert float(got[0]) == 9.0
    np.testing.assert_array_equal(got[1], tnp.at(x)[2].add(5.0))
    np.testing.assert_array_equal(x, np.arange(10.0))       # the input is never written


def test_out_of_bounds_static_index_on_numpy_input_is_numpy_error():
    with pytest.raises(IndexError):
        tnp.take(R, 11)
    with pytest.raises(IndexError):
        tnp.take_along_axis(R, np.array([11]), 0)
    # an explicit mode asks for JAX's semantics, eagerly too
    assert tnp.at(R)[11].get(mode="clip") == 9.0
    assert np.isnan(tnp.at(R)[11].get(mode="fill"))
    np.testing.assert_array_equal(tnp.at(R)[np.array([11])].get(mode="clip"), [9.0])
    np.testing.assert_array_equal(tnp.at(R)[11].set(0.0, mode="drop"), R)
