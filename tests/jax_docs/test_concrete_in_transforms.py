"""`tnp` results inside transformations behave like JAX arrays: a constructor's result (or one
computed from concrete values only) can be indexed by a tracer and has `.at`, under `jit`,
`vmap`, `grad`, their nests and control-flow bodies, while it keeps its concrete value where
JAX has one (`int(...)`, a Python `if`, `np.asarray` inside `vmap`/`grad`). Eager results
stay NumPy arrays. Values are compared with JAX when it is importable; dtypes follow our
NumPy rules (int64/float64 where JAX has int32/float32: README's differences)."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import errors, lax

try:
    import jax
    import jax.numpy as jnp
except ImportError:   # pragma: no cover
    jax = None

pytestmark = pytest.mark.usefixtures("jax_x32")


def _same_as_jax(ours, theirs_fn):
    """`ours` equals JAX's value (when JAX is importable); returns `ours` as an array."""
    ours = np.asarray(ours)
    if jax is not None:
        np.testing.assert_allclose(ours, np.asarray(theirs_fn()), rtol=1e-6)
    return ours


# --- the porting gap: each of these failed before ---------------------------------------------

def test_jit_indexes_constructed_arrays_by_a_tracer():
    out = T.jit(lambda i: tnp.arange(10)[i])(3)
    assert int(_same_as_jax(out, lambda: jax.jit(lambda i: jnp.arange(10)[i])(3))) == 3
    out = T.jit(lambda i: tnp.array([1., 2., 3.])[i])(1)
    assert float(_same_as_jax(out, lambda: jax.jit(lambda i: jnp.array([1., 2., 3.])[i])(1))) \
        == 2.0
    out = T.jit(lambda i: tnp.eye(3)[i])(1)
    np.testing.assert_array_equal(_same_as_jax(out, lambda: jax.jit(lambda i: jnp.eye(3)[i])(1)),
                                  [0., 1., 0.])
    c = np.arange(5.)
    out = T.jit(lambda i: tnp.asarray(c)[i])(2)
    assert float(_same_as_jax(out, lambda: jax.jit(lambda i: jnp.asarray(c)[i])(2))) == 2.0
    out = T.jit(lambda i: tnp.linspace(0., 1., 5)[i] + tnp.full(4, 7.)[i])(2)
    assert float(out) == 7.5


def test_vmap_indexes_and_updates_constructed_arrays():
    out = T.vmap(lambda i: tnp.zeros(3).at[i].set(1.))(np.arange(2))
    np.testing.assert_array_equal(
        _same_as_jax(out, lambda: jax.vmap(lambda i: jnp.zeros(3).at[i].set(1.))(jnp.arange(2))),
        [[1., 0., 0.], [0., 1., 0.]])
    out = T.vmap(lambda i: tnp.arange(10)[i])(np.arange(3))
    np.testing.assert_array_equal(out, [0, 1, 2])
    # a chain of operations on constants stays indexable
    out = T.vmap(lambda i: (tnp.arange(10) * 2)[::2][i] + tnp.ones(4, int).sum())(np.arange(3))
    np.testing.assert_array_equal(out, [4, 8, 12])
    out = T.vmap(lambda i: tnp.zeros_like(np.ones(3)).at[i].add(tnp.ones_like(np.ones(3))[i]))(
        np.arange(3))
    np.testing.assert_array_equal(out, np.eye(3))


def test_grad_through_an_update_of_a_constructed_array():
    def f(x):
        return (tnp.zeros(3).at[1].set(x) * tnp.arange(3.)[1]).sum()
    g = T.grad(f)(2.0)
    assert float(_same_as_jax(g, lambda: jax.grad(
        lambda x: (jnp.zeros(3).at[1].set(x) * jnp.arange(3.)[1]).sum())(2.0))) == 1.0

    def h(x):               # x scatters into a constant, read back at a constant index
        return (tnp.full(4, 2.).at[2].mul(x) ** 2)[2]
    assert float(T.grad(h)(3.0)) == pytest.approx(2 * 6. * 2.)


@pytest.mark.parametrize("op,value", [("add", 2.), ("mul", 2.), ("min", .5), ("max", 2.5),
                                      ("set", 9.)])
def test_at_updates_of_lifted_values_match_jax(op, value):
    def f(i):
        return getattr(tnp.arange(4.).at[i], op)(value)
    out = T.vmap(f)(np.arange(2))
    expect = np.stack([getattr(np.arange(4.), "copy")() for _ in range(2)])
    for k in range(2):
        expect[k, k] = {"add": k + value, "mul": k * value, "min": min(k, value),
                        "max": max(k, value), "set": value}[op]
    np.testing.assert_array_equal(out, expect)
    if jax is not None:
        theirs = jax.vmap(lambda i: getattr(jnp.arange(4.).at[i], op)(value))(jnp.arange(2))
        np.testing.assert_allclose(out, np.asarray(theirs))
    np.testing.assert_array_equal(T.jit(f)(1), expect[1])


def test_at_get_of_a_lifted_value():
    out = T.jit(lambda i: tnp.arange(4.).at[i].get())(2)
    assert float(_same_as_jax(out, lambda: jax.jit(lambda i: jnp.arange(4.).at[i].get())(2))) \
        == 2.0


# --- nests ------------------------------------------------------------------------------------

def test_nested_transformations():
    out = T.jit(T.vmap(lambda i: tnp.arange(10.)[i] * 2))(np.arange(3))
    np.testing.assert_array_equal(out, [0., 2., 4.])
    out = T.vmap(T.jit(lambda i: tnp.arange(10.)[i] * 2))(np.arange(3))
    np.testing.assert_array_equal(out, [0., 2., 4.])

    def loss(x):
        return (tnp.zeros(3).at[1].set(x) * tnp.arange(3.)).sum() * x
    out = T.vmap(T.grad(loss))(np.arange(3.))
    np.testing.assert_allclose(
        _same_as_jax(out, lambda: jax.vmap(jax.grad(
            lambda x: (jnp.zeros(3).at[1].set(x) * jnp.arange(3.)).sum() * x))(jnp.arange(3.))),
        [0., 2., 4.])
    out = T.grad(T.jit(lambda x: (tnp.zeros(3).at[1].set(x) * tnp.arange(3.)[2]).sum()))(2.0)
    assert float(out) == 2.0
    out = T.jit(T.grad(lambda x: tnp.ones(3).at[0].set(x)[0] * x))(3.0)
    assert float(out) == 6.0


# --- control-flow bodies ----------------------------------------------------------------------

def test_control_flow_bodies_index_a_constructed_array_by_the_loop_index():
    def by_scan():
        return lax.scan(lambda c, i: (c + tnp.arange(10.)[i], tnp.eye(4)[i]), 0., np.arange(4))

    def by_fori(n):
        return lax.fori_loop(0, 4, lambda i, c: c + tnp.arange(10.)[i + n], 0.)

    def by_cond(i):
        return lax.cond(i > 1, lambda j: tnp.arange(10.)[j], lambda j: -tnp.arange(10.)[j], i)

    def by_while(n):
        return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] + tnp.arange(9)[c[0]]),
                              (0, 0))[1]

    for run in (lambda f: f, T.jit):
        total, rows = run(by_scan)()
        assert float(total) == 6.0
        np.testing.assert_array_equal(rows, np.eye(4))
        assert float(run(by_fori)(1)) == 10.0
        assert float(run(by_cond)(3)) == 3.0 and float(run(by_cond)(1)) == -1.0
        assert int(run(by_while)(4)) == 6
    np.testing.assert_array_equal(T.vmap(by_fori)(np.arange(3)), [6., 10., 14.])
    np.testing.assert_array_equal(T.vmap(by_cond)(np.arange(4)), [0., -1., 2., 3.])
    if jax is not None:
        theirs = jax.vmap(lambda n: jax.lax.fori_loop(
            0, 4, lambda i, c: c + jnp.arange(10.)[i + n], 0.))(jnp.arange(3))
        np.testing.assert_allclose(T.vmap(by_fori)(np.arange(3)), np.asarray(theirs))


# --- the concrete value stays usable where JAX has it -----------------------------------------

def test_concrete_values_inside_vmap_and_grad():
    # int() of a computation on constants, a Python `if` on one, NumPy on one
    out = T.vmap(lambda i: i + int(tnp.arange(3).sum()))(np.arange(2))
    np.testing.assert_array_equal(
        _same_as_jax(out, lambda: jax.vmap(lambda i: i + int(jnp.arange(3).sum()))(
            jnp.arange(2))), [3, 4])
    out = T.vmap(lambda i: i + np.asarray(tnp.arange(3)).sum())(np.arange(2))
    np.testing.assert_array_equal(out, [3, 4])
    out = T.vmap(lambda x: x + np.sin(tnp.arange(3.)).sum())(np.arange(2.))
    np.testing.assert_allclose(out, np.arange(2.) + np.sin(np.arange(3.)).sum())
    assert float(T.grad(lambda x: x * int(tnp.arange(3).sum()))(2.)) == 3.0
    np.testing.assert_array_equal(
        T.vmap(lambda i: i * 2 if tnp.arange(3).sum() > 1 else i)(np.arange(3)), [0, 2, 4])
    assert float(T.grad(lambda x: x * 2 if tnp.arange(3).sum() > 1 else x)(1.)) == 2.0
    g = T.grad(lambda x: x * np.asarray(tnp.arange(3.)).sum())(2.)
    assert float(_same_as_jax(g, lambda: jax.grad(
        lambda x: x * np.asarray(jnp.arange(3.)).sum())(2.))) == 3.0
    # shapes are static everywhere
    assert T.jit(lambda x: x + tnp.zeros(tnp.arange(4).shape))(1.).shape == (4,)


def test_concrete_values_under_jit():
    # the lifted constant itself is concrete, as a JAX array created under jit is
    assert float(T.jit(lambda x: x * 2 if tnp.array(True) else x)(1.)) == 2.0
    assert T.jit(lambda x: tnp.zeros(int(tnp.array(3))) + x)(1.).shape == (3,)
    # more permissive than JAX (README: operations on constants only run while tracing)
    assert float(T.jit(lambda x: x + int(tnp.arange(3).sum()))(1.)) == 4.0
    # NumPy on a value that depends on the argument still fails, with JAX's error
    with pytest.raises(errors.TracerArrayConversionError):
        T.jit(lambda x: np.sin(tnp.arange(3.) * x))(1.)
    with pytest.raises(errors.TracerArrayConversionError):
        T.grad(lambda x: np.sin(tnp.arange(3.) * x).sum())(1.)


def test_lifted_constants_are_jaxpr_constants():
    closed = T.make_jaxpr(lambda i: tnp.arange(10)[i])(3)
    assert len(closed.consts) == 1
    np.testing.assert_array_equal(closed.consts[0], np.arange(10))


# --- boundaries -------------------------------------------------------------------------------

def test_eager_results_stay_numpy_arrays():
    assert type(tnp.arange(3)) is np.ndarray and type(tnp.zeros(2)) is np.ndarray
    assert type(tnp.asarray(np.ones(2)).sum()) is np.float64
    c = np.arange(3.)
    assert tnp.asarray(c) is c


def test_dtypes_of_lifted_values_follow_our_numpy_rules():
    seen = {}

    def f(i):
        for name, v in (("arange", tnp.arange(3)), ("arange_f", tnp.arange(3.)),
                        ("zeros", tnp.zeros(3)), ("array", tnp.array([1., 2.])),
                        ("full_int", tnp.full(3, 2)), ("scalar", tnp.array(1.0))):
            seen[name] = (v.dtype, v.weak_type)
        return i
    T.vmap(f)(np.arange(2))
    eager = {"arange": tnp.arange(3), "arange_f": tnp.arange(3.), "zeros": tnp.zeros(3),
             "array": tnp.array([1., 2.]), "full_int": tnp.full(3, 2),
             "scalar": tnp.array(1.0)}
    for name, value in eager.items():
        assert seen[name] == (value.dtype, False), name   # strong, as the eager value
    assert seen["arange"][0] == np.int64 and seen["scalar"][0] == np.float64
    if jax is not None:                # JAX: int32/float32, a weak float32 for array(1.0)
        assert jnp.arange(3).dtype == np.int32 and jnp.array(1.0).dtype == np.float32


def test_indexing_a_closed_over_numpy_array_by_a_tracer_names_the_fix():
    c = np.arange(10)
    with pytest.raises(errors.TracerArrayConversionError, match=r"tnp\.asarray\(c\)\[i\]"):
        T.jit(lambda i: c[i])(3)
    with pytest.raises(errors.TracerArrayConversionError):
        T.vmap(lambda i: c[i])(np.arange(3))
    if jax is not None:                # JAX raises the same error type
        with pytest.raises(jax.errors.TracerArrayConversionError):
            jax.jit(lambda i: c[i])(3)
    # the fix
    np.testing.assert_array_equal(T.vmap(lambda i: tnp.asarray(c)[i])(np.arange(3)), [0, 1, 2])


def test_a_lifted_value_is_no_input_of_the_derivative():
    def f(x):
        c = tnp.ones(3)                # a constant: zero tangent
        return (c * x).sum() + c[0]
    assert float(T.grad(f)(2.0)) == 3.0
    y, t = T.jvp(lambda x: tnp.arange(3.) + x, (1.0,), (1.0,))
    np.testing.assert_array_equal(y, [1., 2., 3.])
    np.testing.assert_array_equal(t, [1., 1., 1.])


def test_a_lifted_value_kept_after_its_transformation_is_its_constant():
    # a table built on first use inside a transformation and cached (as with a JAX array)
    store = {}

    def f(i):
        if "table" not in store:
            store["table"] = tnp.arange(10.) * 2
        return store["table"][i]
    np.testing.assert_array_equal(T.vmap(f)(np.arange(3)), [0., 2., 4.])
    np.testing.assert_array_equal(T.vmap(f)(np.arange(3)), [0., 2., 4.])   # reused
    assert float(T.jit(f)(2)) == 4.0 and float(f(4)) == 8.0
    assert float(T.grad(lambda x: x * f(3))(1.)) == 6.0
    np.testing.assert_array_equal(np.asarray(store["table"])[:3], [0., 2., 4.])
    # a value that depends on the transformation's input has still leaked
    leaked = {}

    def g(x):
        leaked["x"] = x * 2
        return x
    T.vmap(g)(np.arange(3.))
    with pytest.raises(errors.UnexpectedTracerError):
        leaked["x"] + 1
    with pytest.raises(errors.UnexpectedTracerError):
        T.jit(lambda y: y + leaked["x"])(1.)


def test_linalg_and_fft_results_are_lifted_too():
    out = T.vmap(lambda i: tnp.fft.fftfreq(8)[i])(np.arange(3))
    np.testing.assert_allclose(
        _same_as_jax(out, lambda: jax.vmap(lambda i: jnp.fft.fftfreq(8)[i])(jnp.arange(3))),
        [0., .125, .25])
    out = T.vmap(lambda i: tnp.linalg.inv(np.eye(3) * 2.)[i])(np.arange(2))
    np.testing.assert_allclose(out, np.eye(3)[:2] / 2)
    out = T.jit(lambda i: tnp.linalg.svd(np.diag([3., 2., 1.])).S[i])(1)   # a named tuple
    assert float(out) == pytest.approx(2.0)
