"""The ideas of JAX's "Automatic differentiation" and "Advanced automatic differentiation"
tutorials, ported: grad over argnums tuples and pytrees, has_aux on every transform that
takes it, Jacobians and Hessians of pytrees, forward-over-reverse HVPs, linearize,
linear_transpose, per-example gradients, stop_gradient, complex and holomorphic
derivatives. Where JAX is importable each program is also run through JAX (same inputs, in
float32) and the two must agree; hand-checked values are asserted everywhere."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp

from ._helpers import assert_tree_close

try:        # the reference implementation, when this machine has it
    import jax
    import jax.numpy as jnp
except ImportError:         # pragma: no cover - then only the hand-checked values are asserted
    jax = jnp = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX is not installed")

rng = np.random.default_rng(7)
X3 = rng.normal(size=3).astype(np.float32)
M = rng.normal(size=(3, 3)).astype(np.float32)


def jax_jit(f):
    """`jax.jit(f)`: the JAX side of a comparison compiles once (its op-by-op mode compiles
    every primitive separately, which costs seconds per test)."""
    return jax.jit(f)


def same_as_jax(ours, theirs, rtol=2e-5, atol=1e-6):
    """Both results as NumPy pytrees with the same structure, shapes, dtypes and values."""
    theirs = jax.tree_util.tree_map(np.asarray, theirs)
    ours = T.tree.map(np.asarray, ours)
    assert_tree_close(ours, theirs, rtol, atol)
    for a, b in zip(T.tree.leaves(ours), jax.tree_util.tree_leaves(theirs)):
        assert a.shape == b.shape, (a.shape, b.shape)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)


# --- grad / value_and_grad -------------------------------------------------------------------

def loss3(a, b, c, np_=tnp):
    return np_.sum(np_.sin(a) * b) + c["k"] ** 2 * np_.sum(a)


ARGS3 = (X3, np.float32(2.5), {"k": np.float32(1.5)})


def test_value_and_grad_argnums_tuple_returns_a_tuple_of_pytrees():
    (v, (ga, gc)) = T.value_and_grad(loss3, argnums=(0, 2))(*ARGS3)
    a, b, c = ARGS3
    np.testing.assert_allclose(v, np.sum(np.sin(a) * b) + c["k"] ** 2 * a.sum(), rtol=1e-6)
    np.testing.assert_allclose(ga, np.cos(a) * b + c["k"] ** 2, rtol=1e-6)
    np.testing.assert_allclose(gc["k"], 2 * c["k"] * a.sum(), rtol=1e-6)
    assert isinstance(gc, dict) and ga.dtype == np.float32


def test_argnums_single_element_tuple_still_returns_a_tuple():
    g = T.grad(loss3, argnums=(1,))(*ARGS3)
    assert isinstance(g, tuple) and len(g) == 1
    np.testing.assert_allclose(g[0], np.sum(np.sin(X3)), rtol=1e-6)


def test_negative_argnums_count_from_the_end():
    g = T.grad(loss3, argnums=-1)(*ARGS3)
    np.testing.assert_allclose(g["k"], 2 * 1.5 * X3.sum(), rtol=1e-6)


@needs_jax
def test_value_and_grad_argnums_like_jax():
    for argnums in (0, 1, (0, 2), (2, 0, 1)):
        ours = T.value_and_grad(loss3, argnums=argnums)(*ARGS3)
        theirs = jax_jit(jax.value_and_grad(lambda *a: loss3(*a, np_=jnp), argnums=argnums))(*ARGS3)
        same_as_jax(ours, theirs)


def test_grad_has_aux_with_argnums_tuple():
    def f(x, y):
        return tnp.sum(x * y), {"xy": x * y, "n": 3}

    (gx, gy), aux = T.grad(f, argnums=(0, 1), has_aux=True)(X3, 2 * X3)
    np.testing.assert_allclose(gx, 2 * X3)
    np.testing.assert_allclose(gy, X3)
    np.testing.assert_allclose(aux["xy"], 2 * X3 * X3)
    assert aux["n"] == 3


def test_grad_of_a_python_scalar_is_a_float():
    g = T.grad(lambda x: x ** 3)(2.0)
    assert float(g) == 12.0
    assert np.asarray(g).dtype == np.float64 or np.asarray(g).dtype == np.float32


def test_grad_wrt_integer_input_is_an_error_naming_the_argument():
    with pytest.raises((TypeError, ValueError), match="argument 0"):
        T.grad(lambda x: x * 2.0)(np.int32(3))


# --- jacfwd / jacrev / hessian -----------------------------------------------------------------

def pyfun(p, np_=tnp):
    """A pytree in, a pytree out."""
    return {"u": np_.tanh(p["w"] @ p["x"]), "v": np_.sum(p["x"] ** 3) * p["s"]}


P = {"w": M, "x": X3, "s": np.float32(0.5)}


def test_jacfwd_and_jacrev_of_pytrees_agree_and_nest_out_then_in():
    jf, jr = T.jacfwd(pyfun)(P), T.jacrev(pyfun)(P)
    assert_tree_close(jf, jr, rtol=1e-5, atol=1e-6)
    assert jf["u"]["w"].shape == (3, 3, 3)
    assert jf["v"]["x"].shape == (3,)
    np.testing.assert_allclose(jr["v"]["x"], 3 * X3 ** 2 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(jr["v"]["s"], np.sum(X3 ** 3), rtol=1e-6)


@needs_jax
@pytest.mark.parametrize("which", ["jacfwd", "jacrev", "hessian"])
def test_jacobians_and_hessian_of_pytrees_like_jax(which):
    ours = getattr(T, which)(pyfun)(P)
    theirs = jax_jit(getattr(jax, which)(lambda p: pyfun(p, jnp)))(P)
    same_as_jax(ours, theirs, rtol=1e-4, atol=1e-5)


def test_hessian_of_pytree_input_blocks():
    def f(p):
        return tnp.sum(p["a"] ** 2 * p["b"]) + tnp.sum(p["a"]) * p["c"]

    p = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, -1.0]), "c": 0.5}
    H = T.hessian(f)(p)
    np.testing.assert_allclose(H["a"]["a"], np.diag(2 * p["b"]))
    np.testing.assert_allclose(H["a"]["b"], np.diag(2 * p["a"]))
    np.testing.assert_allclose(H["a"]["c"], [1.0, 1.0])
    np.testing.assert_allclose(H["b"]["b"], np.zeros((2, 2)))
    np.testing.assert_allclose(H["c"]["c"], 0.0)


def aux_fun(x, np_=tnp):
    y = np_.sin(x) * x
    return y, {"norm": np_.sum(y ** 2), "first": y[0]}


def test_jacfwd_and_jacrev_with_has_aux_return_the_aux_unbatched():
    for jac in (T.jacfwd, T.jacrev):
        J, aux = jac(aux_fun, has_aux=True)(X3)
        np.testing.assert_allclose(J, np.diag(np.cos(X3) * X3 + np.sin(X3)), rtol=1e-6,
                                   atol=1e-7)
        y = np.sin(X3) * X3
        np.testing.assert_allclose(aux["norm"], np.sum(y ** 2), rtol=1e-6)
        np.testing.assert_allclose(aux["first"], y[0], rtol=1e-6)
        assert np.shape(aux["first"]) == ()


@needs_jax
@pytest.mark.parametrize("which", ["jacfwd", "jacrev"])
def test_jacobians_with_has_aux_like_jax(which):
    ours = getattr(T, which)(aux_fun, has_aux=True)(X3)
    theirs = jax_jit(getattr(jax, which)(lambda x: aux_fun(x, jnp), has_aux=True))(X3)
    same_as_jax(ours, theirs)


def test_hessian_with_has_aux():
    def f(x):
        return tnp.sum(x ** 3), x * 2.0

    H, aux = T.hessian(f, has_aux=True)(X3)
    np.testing.assert_allclose(H, np.diag(6 * X3), rtol=1e-6)
    np.testing.assert_allclose(aux, 2 * X3)


def test_jacobian_argnums_tuple_gives_one_block_per_argument():
    def f(x, y):
        return x * y[0] + tnp.sin(y[1])

    jx, jy = T.jacrev(f, argnums=(0, 1))(X3, np.array([2.0, 0.3], np.float32))
    np.testing.assert_allclose(jx, 2 * np.eye(3))
    np.testing.assert_allclose(jy[:, 0], X3)
    np.testing.assert_allclose(jy[:, 1], np.full(3, np.cos(np.float32(0.3))), rtol=1e-6)
    jx2, jy2 = T.jacfwd(f, argnums=(0, 1))(X3, np.array([2.0, 0.3], np.float32))
    np.testing.assert_allclose(jy2, jy, rtol=1e-6)


# --- Hessian-vector products -----------------------------------------------------------------

def energy(x, np_=tnp):
    return np_.sum(np_.tanh(M @ x) ** 2) + np_.sum(x ** 4)


def hvp_fwd_over_rev(f, x, v):
    return T.jvp(T.grad(f), (x,), (v,))[1]


def test_hvp_forward_over_reverse_equals_hessian_times_vector():
    v = np.array([1.0, -2.0, 0.5], np.float32)
    H = T.hessian(energy)(X3)
    np.testing.assert_allclose(hvp_fwd_over_rev(energy, X3, v), H @ v, rtol=1e-5)
    # batched over many vectors: the columns of the Hessian
    cols = T.vmap(lambda v: hvp_fwd_over_rev(energy, X3, v))(np.eye(3, dtype=np.float32))
    np.testing.assert_allclose(cols, H.T, rtol=1e-5, atol=1e-6)


@needs_jax
def test_hvp_like_jax():
    v = np.array([1.0, -2.0, 0.5], np.float32)
    ours = hvp_fwd_over_rev(energy, X3, v)
    theirs = jax_jit(lambda x, v: jax.jvp(jax.grad(lambda x: energy(x, jnp)), (x,), (v,))[1])(X3, v)
    same_as_jax(ours, theirs, rtol=1e-5)


def test_hvp_of_pytree_parameters():
    def f(p):
        return tnp.sum(p["a"] ** 3) + p["b"] * tnp.sum(p["a"])

    p = {"a": np.array([1.0, 2.0]), "b": 3.0}
    v = {"a": np.array([1.0, 0.0]), "b": 1.0}
    out = T.jvp(T.grad(f), (p,), (v,))[1]
    np.testing.assert_allclose(out["a"], [6.0 * 1 + 1.0, 1.0])
    np.testing.assert_allclose(out["b"], 1.0)


# --- jvp / vjp with has_aux, linearize, linear_transpose ---------------------------------------

def test_vjp_has_aux_returns_three_values():
    out, f_vjp, aux = T.vjp(aux_fun, X3, has_aux=True)
    (ct,) = f_vjp(np.ones(3, np.float32))
    np.testing.assert_allclose(ct, np.cos(X3) * X3 + np.sin(X3), rtol=1e-6)
    np.testing.assert_allclose(aux["first"], out[0])


@needs_jax
def test_vjp_and_jvp_has_aux_like_jax():
    out, f_vjp, aux = T.vjp(aux_fun, X3, has_aux=True)
    jout, jf_vjp, jaux = jax.vjp(lambda x: aux_fun(x, jnp), X3, has_aux=True)
    same_as_jax((out, aux, f_vjp(2 * X3)), (jout, jaux, jf_vjp(2 * X3)))
    ours = T.jvp(aux_fun, (X3,), (X3,), has_aux=True)
    theirs = jax.jvp(lambda x: aux_fun(x, jnp), (X3,), (X3,), has_aux=True)
    same_as_jax(ours, theirs)


def test_linearize_matches_jvp_at_many_tangents():
    y, f_jvp = T.linearize(energy, X3)
    np.testing.assert_allclose(y, energy(X3), rtol=1e-6)
    for t in np.eye(3, dtype=np.float32):
        np.testing.assert_allclose(f_jvp(t), T.jvp(energy, (X3,), (t,))[1], rtol=1e-6)


@needs_jax
def test_linearize_like_jax_with_several_arguments():
    def f(x, y, np_=tnp):
        return {"a": np_.sin(x) * y, "b": np_.sum(x * x)}

    y0 = np.float32(1.5)
    out, f_jvp = T.linearize(f, X3, y0)
    jout, jf_jvp = jax.linearize(lambda x, y: f(x, y, jnp), X3, y0)
    same_as_jax(out, jout)
    same_as_jax(f_jvp(X3, np.float32(2.0)), jf_jvp(X3, np.float32(2.0)))


def test_linear_transpose_of_a_matrix_product_is_the_transpose():
    f_t = T.linear_transpose(lambda x: M @ x, X3)
    (ct,) = f_t(np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_allclose(ct, M.T @ np.array([1.0, 2.0, 3.0], np.float32), rtol=1e-6)


def test_linear_transpose_of_a_pytree_function():
    def f(p):
        return {"s": p["x"] + 2.0 * p["y"], "t": tnp.sum(p["x"])}

    p = {"x": np.zeros(2, np.float32), "y": np.zeros(2, np.float32)}
    (ct,) = T.linear_transpose(f, p)({"s": np.array([1.0, 2.0], np.float32),
                                      "t": np.float32(10.0)})
    np.testing.assert_allclose(ct["x"], [11.0, 12.0])
    np.testing.assert_allclose(ct["y"], [2.0, 4.0])


@needs_jax
def test_linear_transpose_like_jax():
    def f(x, y, np_=tnp):
        return np_.cumsum(x) - 3.0 * y[::-1], np_.sum(x)

    ct = (np.arange(3, dtype=np.float32), np.float32(2.0))
    ours = T.linear_transpose(f, X3, X3)(ct)
    theirs = jax.linear_transpose(lambda x, y: f(x, y, jnp), X3, X3)(ct)
    same_as_jax(ours, theirs)


def test_linear_transpose_of_a_nonlinear_function_is_an_error():
    with pytest.raises(TypeError, match="linear"):
        T.linear_transpose(lambda x: x * x, X3)(X3)


# --- stop_gradient, per-example gradients ------------------------------------------------------

def test_stop_gradient_on_a_pytree():
    def f(p):
        frozen = T.stop_gradient(p)
        return tnp.sum(p["a"] * frozen["a"]) + p["b"] * frozen["b"]

    g = T.grad(f)({"a": np.array([1.0, 2.0]), "b": 3.0})
    np.testing.assert_allclose(g["a"], [1.0, 2.0])
    np.testing.assert_allclose(g["b"], 3.0)


def test_per_example_gradients_with_vmap_jit_grad():
    w = np.array([0.5, -1.0, 2.0], np.float32)
    xs = rng.normal(size=(5, 3)).astype(np.float32)
    ys = rng.normal(size=5).astype(np.float32)

    def loss(w, x, y):
        return (tnp.dot(w, x) - y) ** 2

    per_ex = T.jit(T.vmap(T.grad(loss), in_axes=(None, 0, 0)))(w, xs, ys)
    expected = 2 * (xs @ w - ys)[:, None] * xs
    np.testing.assert_allclose(per_ex, expected, rtol=1e-5)
    # the batch gradient is their sum
    np.testing.assert_allclose(T.grad(lambda w: tnp.sum(T.vmap(loss, (None, 0, 0))(w, xs, ys)))(w),
                               expected.sum(0), rtol=1e-5)


# --- complex numbers -------------------------------------------------------------------------

Z = np.array([1.0 + 2.0j, -0.5 + 0.25j], np.complex64)


def test_grad_of_a_real_function_of_complex_input_is_the_conjugate_convention():
    # f(z) = |z|^2 = x^2 + y^2: JAX's grad is df/dx - i df/dy = 2x - 2iy = 2 conj(z)
    g = T.grad(lambda z: tnp.sum(tnp.abs(z) ** 2))(Z)
    np.testing.assert_allclose(g, 2 * np.conj(Z), rtol=1e-6)


def test_holomorphic_grad_is_the_complex_derivative():
    g = T.grad(lambda z: tnp.sum(z ** 3), holomorphic=True)(Z)
    np.testing.assert_allclose(g, 3 * Z ** 2, rtol=1e-5)
    J = T.jacfwd(lambda z: tnp.sin(z), holomorphic=True)(Z)
    np.testing.assert_allclose(J, np.diag(np.cos(Z)), rtol=1e-5)
    J2 = T.jacrev(lambda z: tnp.sin(z), holomorphic=True)(Z)
    np.testing.assert_allclose(J2, np.diag(np.cos(Z)), rtol=1e-5)


def test_complex_output_without_holomorphic_is_an_error():
    with pytest.raises(TypeError, match="holomorphic"):
        T.grad(lambda z: tnp.sum(z ** 2))(Z)


@needs_jax
def test_complex_derivatives_like_jax():
    def real_f(z, np_=tnp):
        return np_.sum(np_.real(z * np_.conj(z) * np_.sin(z)))

    same_as_jax(T.grad(real_f)(Z), jax_jit(jax.grad(lambda z: real_f(z, jnp)))(Z), rtol=1e-5)
    same_as_jax(T.grad(lambda z: tnp.sum(tnp.exp(z) * z), holomorphic=True)(Z),
                jax_jit(jax.grad(lambda z: jnp.sum(jnp.exp(z) * z), holomorphic=True))(Z),
                rtol=1e-5)
    # vjp of a complex function, and a jvp with complex tangents
    out, f_vjp = T.vjp(lambda z: tnp.sin(z) * z, Z)
    jout, jf_vjp = jax.vjp(lambda z: jnp.sin(z) * z, Z)
    same_as_jax((out, f_vjp(Z)), (jout, jf_vjp(Z)), rtol=1e-5)
    same_as_jax(T.jvp(lambda z: tnp.sin(z) * z, (Z,), (Z,)),
                jax_jit(lambda z: jax.jvp(lambda z: jnp.sin(z) * z, (z,), (z,)))(Z), rtol=1e-5)


# --- integer inputs, tangent dtypes, linearize with has_aux -----------------------------------

def test_integer_inputs_to_jacobians_are_an_error_as_in_jax():
    for jac in (T.jacfwd, T.jacrev, T.hessian):
        with pytest.raises(TypeError, match="int32"):
            jac(lambda n: n * 2.0)(np.int32(3))


def test_allow_int_gives_zero_gradients_for_integer_arguments():
    gx, gn = T.grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(2.0, np.int32(3))
    assert float(gx) == 3.0
    # JAX's zeros have dtype float0, which cannot cross jit here: the integer's own dtype
    assert np.asarray(gn).dtype == np.int32 and int(gn) == 0
    J = T.jacrev(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(X3, np.int32(2))
    np.testing.assert_allclose(J[0], 2 * np.eye(3))
    np.testing.assert_array_equal(J[1], np.zeros(3))
    gn = T.jit(T.grad(lambda x, n: x * n, argnums=1, allow_int=True))(2.0, np.int32(3))
    assert int(gn) == 0


def test_jvp_tangents_take_the_primal_dtype():
    # JAX requires equal dtypes; a float64 tangent (NumPy's default) for a float32 primal
    # must not turn the output float64
    y, t = T.jvp(tnp.sin, (X3,), (np.ones(3),))
    assert y.dtype == t.dtype == np.float32
    np.testing.assert_allclose(t, np.cos(X3), rtol=1e-6)
    y, t = T.jvp(lambda a: a * 2, (np.float32(1.0),), (1.0,))
    assert np.asarray(t).dtype == np.float32 and float(t) == 2.0
    with pytest.raises(TypeError, match="complex64 tangent for a float32 primal"):
        T.jvp(tnp.sin, (X3,), (X3.astype(np.complex64),))


def test_linearize_with_has_aux():
    def f(x):
        y = tnp.sin(x) * 2.0
        return tnp.sum(y), {"y": y}

    out, f_jvp, aux = T.linearize(f, X3, has_aux=True)
    np.testing.assert_allclose(out, np.sum(2 * np.sin(X3)), rtol=1e-6)
    np.testing.assert_allclose(aux["y"], 2 * np.sin(X3), rtol=1e-6)
    np.testing.assert_allclose(f_jvp(np.ones(3, np.float32)), np.sum(2 * np.cos(X3)), rtol=1e-6)
    with pytest.raises(TypeError, match="pair"):
        T.linearize(lambda x: x, X3, has_aux=True)


@needs_jax
def test_linearize_has_aux_like_jax():
    def f(x, np_=tnp):
        return np_.tanh(x) * x, np_.cos(x)

    ours = T.linearize(f, X3, has_aux=True)
    theirs = jax.linearize(lambda x: f(x, jnp), X3, has_aux=True)
    same_as_jax((ours[0], ours[2], ours[1](X3)), (theirs[0], theirs[2], theirs[1](X3)))


def test_jacrev_of_an_integer_output_is_an_error_but_jacfwd_gives_zeros():
    def f(x):
        return x * 2.0, tnp.argmax(x)

    with pytest.raises(TypeError, match=r"jacrev requires real-valued outputs.*int64\[1\]"):
        T.jacrev(f)(X3)
    J, Jn = T.jacfwd(f)(X3)
    np.testing.assert_array_equal(J, 2 * np.eye(3))
    np.testing.assert_array_equal(Jn, np.zeros(3))


def test_vjp_cotangent_of_the_wrong_kind_is_a_value_error():
    _, f_vjp = T.vjp(lambda x: {"y": x * 2.0}, X3)
    with pytest.raises(ValueError, match=r"int32 cotangent for a float32 output\['y'\]"):
        f_vjp({"y": np.ones(3, np.int32)})
    with pytest.raises(ValueError, match="complex64 cotangent for a float32 output"):
        f_vjp({"y": np.ones(3, np.complex64)})
    # another float precision is cast, a Python float stands for a scalar cotangent
    (g,) = f_vjp({"y": np.ones(3)})
    assert g.dtype == np.float32
    (g,) = T.vjp(tnp.sum, X3)[1](1.0)
    np.testing.assert_array_equal(g, np.ones(3))


def test_the_vjp_function_is_a_pytree_that_crosses_jit_and_vmap():
    _, f_vjp = T.vjp(lambda x: tnp.sin(x) * x[0], X3)
    # its leaves are the residuals: it can be an argument of a jitted function
    assert len(T.tree.leaves(f_vjp)) >= 1
    rows = T.jit(lambda fn, cts: T.vmap(fn)(cts))(f_vjp, np.eye(3, dtype=np.float32))[0]
    np.testing.assert_allclose(rows, T.jacrev(lambda x: tnp.sin(x) * x[0])(X3), rtol=1e-6)


# --- matrix-Jacobian and Jacobian-matrix products; checking against finite differences -------

def test_matrix_jacobian_products_by_vmap_of_vjp_and_jvp():
    def f(x, np_=tnp):
        return np_.tanh(M @ x) * x[0]

    J = T.jacfwd(f)(X3)
    rows = rng.normal(size=(2, 3)).astype(np.float32)        # row vectors (cotangents)
    cols = rng.normal(size=(3, 4)).astype(np.float32)        # column vectors (tangents)
    _, f_vjp = T.vjp(f, X3)
    mjp = T.vmap(lambda c: f_vjp(c)[0])(rows)
    jmp = T.vmap(lambda t: T.jvp(f, (X3,), (t,))[1], in_axes=1, out_axes=1)(cols)
    np.testing.assert_allclose(mjp, rows @ J, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jmp, J @ cols, rtol=1e-5, atol=1e-6)
    if jax is not None:
        _, jf_vjp = jax.vjp(lambda x: f(x, jnp), X3)
        same_as_jax(mjp, jax.vmap(lambda c: jf_vjp(c)[0])(rows), rtol=1e-5)


def test_check_grads_accepts_correct_and_rejects_wrong_derivatives():
    from transforms.test_util import check_grads

    check_grads(lambda x, y: tnp.sum(tnp.sin(x) * y), (np.array([0.3, 1.2]), 2.0), order=2)
    check_grads(energy, (X3.astype(np.float64),), order=2, modes=("rev",))

    @T.custom_jvp
    def wrong_sin(x):
        return tnp.sin(x)

    wrong_sin.defjvp(lambda p, t: (wrong_sin(p[0]), 2.0 * t[0]))    # not cos(x)
    with pytest.raises(AssertionError):
        check_grads(wrong_sin, (np.array([0.3, 1.2]),), order=1, modes=("fwd",))


# --- the cookbook's remaining forms, each compared with JAX -----------------------------------

def _cookbook(d, np_, lax_):
    """(name, thunk) for forms the sections above do not run: every HVP spelling, HVPs of a
    batch of vectors, complex cotangents/tangents, derivatives of a complex function's real
    and imaginary parts, holomorphic Hessians. `d` is T or jax."""
    f = lambda x: np_.sum(np_.tanh(x) ** 3 * x[::-1])             # noqa: E731
    v = np.array([1.0, -2.0, 0.5], np.float32)
    vs = np.eye(3, dtype=np.float32)[:2]
    return [
        ("hvp reverse-over-forward", lambda: d.grad(lambda x: d.jvp(f, (x,), (v,))[1])(X3)),
        ("hvp reverse-over-reverse", lambda: d.grad(lambda x: np_.vdot(d.grad(f)(x), v))(X3)),
        ("hvp by linearize", lambda: d.linearize(d.grad(f), X3)[1](v)),
        ("hessian-matrix product by vmap", lambda: d.vmap(
            lambda u: d.jvp(d.grad(f), (X3,), (u,))[1])(vs)),
        ("jacobian-matrix product by vmap of jvp", lambda: d.vmap(
            lambda u: d.jvp(lambda x: np_.sin(x) * x[0], (X3,), (u,))[1])(vs)),
        ("straight-through rounding", lambda: d.grad(lambda x: np_.sum(
            (x + lax_.stop_gradient(np_.round(x) - x)) ** 2))(X3)),
        ("grad of a real part", lambda: d.grad(lambda z: np_.real(np_.sum(z * z)))(Z)),
        ("grad of an imaginary part", lambda: d.grad(
            lambda z: np_.imag(np_.sum(np_.exp(z))))(Z)),
        ("vjp with an imaginary cotangent", lambda: d.vjp(lambda z: np_.conj(z) * z, Z)[1](
            np.full(2, 1j, np.complex64))),
        ("jvp with an imaginary tangent", lambda: d.jvp(lambda z: np_.conj(z) * z, (Z,),
                                                        (np.full(2, 1j, np.complex64),))),
        ("holomorphic hessian", lambda: d.hessian(lambda z: np_.sum(z ** 3),
                                                  holomorphic=True)(Z)),
        ("jacrev of a real function of complex input", lambda: d.jacrev(
            lambda z: np_.abs(z) ** 2)(Z)),
        ("grad of a complex norm", lambda: d.grad(lambda z: np_.linalg.norm(z))(Z)),
    ]


@needs_jax
@pytest.mark.parametrize("name", [n for n, _ in _cookbook(T, tnp, T)])
def test_cookbook_forms_match_jax(name):
    with jax.enable_x64(False):
        theirs = jax_jit(dict(_cookbook(jax, jnp, jax.lax))[name])()
    same_as_jax(dict(_cookbook(T, tnp, T))[name](), theirs, rtol=2e-5, atol=2e-6)


@needs_jax
def test_complex_jacobians_without_holomorphic_are_rejected_as_in_jax():
    for jac in (T.jacfwd, jax.jacfwd):
        with pytest.raises(TypeError, match="holomorphic=True"):
            jac(lambda z: z * 2)(Z)
    for jac in (T.jacrev, jax.jacrev):
        with pytest.raises(TypeError, match="holomorphic=True"):
            jac(lambda z: z * 2)(Z)
    for grad in (T.grad, jax.grad):
        with pytest.raises(TypeError, match="complex dtype"):
            grad(lambda x: (x * 1j).sum(), holomorphic=True)(X3)
