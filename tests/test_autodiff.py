"""The autodiff API: grad / value_and_grad / vjp / jvp / linearize / jacfwd / jacrev / hessian,
pytrees, has_aux, argnums, higher order and nesting, stop_gradient."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.test_util import check_grads

# replaced before each test by one seeded from the test's name (conftest._per_test_rng)
rng = np.random.default_rng(0)


def r(*s):
    return rng.uniform(-1, 1, s)


# ---------------------------------------------------------------------------------------------
# grad / value_and_grad
# ---------------------------------------------------------------------------------------------

def test_grad_basic_and_dtype():
    x = r(3)
    g = T.grad(lambda x: tnp.sum(x ** 3))(x)
    np.testing.assert_allclose(g, 3 * x ** 2)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64
    x32 = x.astype(np.float32)
    assert T.grad(lambda x: tnp.sum(x ** 3))(x32).dtype == np.float32


def test_grad_python_scalar_argument():
    g = T.grad(lambda x: x * x + 3 * x)(2.0)
    assert np.ndim(g) == 0 and float(g) == 7.0
    g = T.grad(lambda x: tnp.sin(x))(np.float32(0.5))
    np.testing.assert_allclose(g, np.cos(0.5), rtol=1e-6)
    assert np.result_type(g) == np.float32


def test_grad_argnums():
    f = lambda x, y, z: tnp.sum(x * y ** 2 + z)  # noqa: E731
    x, y, z = r(3), r(3), r(3)
    np.testing.assert_allclose(T.grad(f)(x, y, z), y ** 2)
    np.testing.assert_allclose(T.grad(f, argnums=1)(x, y, z), 2 * x * y)
    np.testing.assert_allclose(T.grad(f, argnums=-1)(x, y, z), np.ones(3))
    gs = T.grad(f, argnums=(0, 2))(x, y, z)
    assert isinstance(gs, tuple) and len(gs) == 2
    np.testing.assert_allclose(gs[0], y ** 2)
    np.testing.assert_allclose(gs[1], np.ones(3))
    gs = T.grad(f, argnums=(1,))(x, y, z)
    assert isinstance(gs, tuple) and len(gs) == 1
    with pytest.raises(ValueError):
        T.grad(f, argnums=3)(x, y, z)


def test_grad_non_differentiated_args_may_be_ints():
    f = lambda x, n: tnp.sum(x ** 2) * n  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(np.ones(2), 3), [6.0, 6.0])


def test_grad_kwargs_passed_through():
    f = lambda x, scale=1.0: tnp.sum(x) * scale  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(np.ones(2), scale=3.0), [3.0, 3.0])


def test_value_and_grad():
    x = r(4)
    v, g = T.value_and_grad(lambda x: tnp.sum(tnp.sin(x)))(x)
    np.testing.assert_allclose(v, np.sin(x).sum())
    np.testing.assert_allclose(g, np.cos(x))
    v, (g1, g2) = T.value_and_grad(lambda a, b: tnp.vdot(a, b) if hasattr(tnp, "vdot")
                                   else tnp.sum(a * b), argnums=(0, 1))(x, 2 * x)
    np.testing.assert_allclose(v, 2 * (x * x).sum())
    np.testing.assert_allclose(g1, 2 * x)
    np.testing.assert_allclose(g2, x)


def test_has_aux():
    x = r(3)

    def f(x):
        y = tnp.sin(x)
        return tnp.sum(y), {"y": y, "n": 3}

    g, aux = T.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g, np.cos(x))
    np.testing.assert_allclose(aux["y"], np.sin(x))
    assert aux["n"] == 3
    assert isinstance(aux["y"], np.ndarray)           # a value, not a tracer
    (v, aux2), g2 = T.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(v, np.sin(x).sum())
    np.testing.assert_allclose(aux2["y"], np.sin(x))
    np.testing.assert_allclose(g2, g)
    with pytest.raises(TypeError):
        T.grad(lambda x: tnp.sum(x), has_aux=True)(x)


def test_pytree_arguments():
    params = {"w": r(3, 2), "b": r(2), "layers": [r(2), (r(2), None)], "none": None}

    def loss(p, x):
        h = tnp.tanh(x @ p["w"] + p["b"])
        h = h * p["layers"][0] + p["layers"][1][0]
        return tnp.sum(h ** 2)

    x = r(4, 3)
    g = T.grad(loss)(params, x)
    assert set(g) == {"w", "b", "layers", "none"}
    assert g["none"] is None and g["layers"][1][1] is None
    assert isinstance(g["layers"], list) and isinstance(g["layers"][1], tuple)
    for k in ("w", "b"):
        assert g[k].shape == params[k].shape
    # against check_grads on the same tree
    check_grads(loss, (params, x), order=1)
    # numerical check of one leaf
    eps = 1e-6
    p2 = {**params, "b": params["b"] + np.array([eps, 0])}
    fd = (loss(p2, x) - loss(params, x)) / eps
    np.testing.assert_allclose(g["b"][0], fd, rtol=1e-4)


def test_namedtuple_and_custom_node():
    from collections import namedtuple
    P = namedtuple("P", ["a", "b"])
    g = T.grad(lambda p: tnp.sum(p.a * p.b))(P(np.ones(2), 2 * np.ones(2)))
    assert isinstance(g, P)
    np.testing.assert_allclose(g.a, [2, 2])


def test_grad_of_grad():
    f = lambda x: x ** 4 + tnp.sin(x)  # noqa: E731
    x = 0.7
    np.testing.assert_allclose(T.grad(f)(x), 4 * x ** 3 + np.cos(x))
    np.testing.assert_allclose(T.grad(T.grad(f))(x), 12 * x ** 2 - np.sin(x))
    np.testing.assert_allclose(T.grad(T.grad(T.grad(f)))(x), 24 * x - np.cos(x))


def test_grad_of_grad_vector():
    x = r(3)
    f = lambda x: tnp.sum(tnp.exp(x) * x)  # noqa: E731
    g2 = T.grad(lambda x: tnp.sum(T.grad(f)(x) ** 2))(x)
    d1 = np.exp(x) * (1 + x)
    np.testing.assert_allclose(g2, 2 * d1 * np.exp(x) * (2 + x))


def test_grad_closure_over_outer_tracer():
    # d/dy of grad_x (x*y)^2 at x: inner grad closes over the outer tracer y
    def outer(y):
        return T.grad(lambda x: (x * y) ** 2)(1.5)

    np.testing.assert_allclose(T.grad(outer)(2.0), 4 * 1.5 * 2.0)   # d/dy 2 x y^2


def test_grad_of_function_calling_jvp():
    x = r(3)

    def f(x):
        _, t = T.jvp(lambda z: tnp.sin(z) * z, (x,), (tnp.ones_like(x),))
        return tnp.sum(t ** 2)

    # t = cos(x) x + sin(x); df/dx = 2 t (2cos(x) - x sin(x))
    t = np.cos(x) * x + np.sin(x)
    np.testing.assert_allclose(T.grad(f)(x), 2 * t * (2 * np.cos(x) - x * np.sin(x)))
    check_grads(f, (x,), order=1)


def test_jvp_of_grad():
    x = r(3)
    f = lambda x: tnp.sum(tnp.sin(x) * x)  # noqa: E731
    v = r(3)
    _, hv = T.jvp(T.grad(f), (x,), (v,))
    hdiag = 2 * np.cos(x) - x * np.sin(x)
    np.testing.assert_allclose(hv, hdiag * v)


def test_non_scalar_output_error():
    with pytest.raises(TypeError) as e:
        T.grad(lambda x: x * 2)(np.ones(3))
    assert "scalar" in str(e.value) and "(3,)" in str(e.value)
    with pytest.raises(TypeError):
        T.grad(lambda x: (x.sum(), x.sum()))(np.ones(3))


def test_integer_output_error():
    with pytest.raises(TypeError) as e:
        T.grad(lambda x: tnp.sum(x).astype(np.int32))(np.ones(3))
    assert "int32" in str(e.value)


def test_integer_input_error():
    with pytest.raises(TypeError) as e:
        T.grad(lambda x, y: tnp.sum(x * y), argnums=1)(np.ones(3), np.arange(3))
    msg = str(e.value)
    assert "argument 1" in msg and "int64" in msg
    with pytest.raises(TypeError) as e:
        T.grad(lambda p: tnp.sum(p["a"]))({"a": np.arange(3)})
    assert "['a']" in str(e.value)


# ---------------------------------------------------------------------------------------------
# vjp / jvp / linearize
# ---------------------------------------------------------------------------------------------

def test_vjp_pytrees():
    def f(p, x):
        return {"out": tnp.tanh(x @ p["w"]), "sq": [p["b"] ** 2]}

    p, x = {"w": r(3, 2), "b": r(2)}, r(4, 3)
    out, vjp_fn = T.vjp(f, p, x)
    assert set(out) == {"out", "sq"}
    ct = {"out": r(4, 2), "sq": [r(2)]}
    gp, gx = vjp_fn(ct)
    assert set(gp) == {"w", "b"} and gx.shape == x.shape
    y = np.tanh(x @ p["w"])
    dpre = ct["out"] * (1 - y ** 2)
    np.testing.assert_allclose(gp["w"], x.T @ dpre)
    np.testing.assert_allclose(gp["b"], 2 * p["b"] * ct["sq"][0])
    np.testing.assert_allclose(gx, dpre @ p["w"].T)
    # the cotangent must match the output structure
    with pytest.raises((ValueError, TypeError)):
        vjp_fn({"out": r(4, 2)})
    with pytest.raises((ValueError, TypeError)):
        vjp_fn({"out": r(4, 3), "sq": [r(2)]})


def test_vjp_has_aux_and_int_primal():
    out, vjp_fn, aux = T.vjp(lambda x, n: (x * n, {"n": n}), r(3), np.int32(2), has_aux=True)
    gx, gn = vjp_fn(np.ones(3))
    np.testing.assert_allclose(gx, [2, 2, 2])
    assert gn.dtype == np.int32 and gn == 0           # zero cotangent for the integer primal
    assert aux["n"] == 2


def test_vjp_callable_twice_and_linear():
    x = r(3)
    _, vjp_fn = T.vjp(lambda x: tnp.sin(x) * 2, x)
    (a,) = vjp_fn(np.ones(3))
    (b,) = vjp_fn(2 * np.ones(3))
    np.testing.assert_allclose(b, 2 * a)
    np.testing.assert_allclose(a, 2 * np.cos(x))


def test_jvp_basic_and_pytrees():
    x, t = r(3), r(3)
    out, tan = T.jvp(tnp.sin, (x,), (t,))
    np.testing.assert_allclose(out, np.sin(x))
    np.testing.assert_allclose(tan, np.cos(x) * t)
    p = {"a": r(2), "b": [r(2)]}
    tp = {"a": r(2), "b": [r(2)]}
    out, tan = T.jvp(lambda p: {"s": p["a"] * p["b"][0]}, (p,), (tp,))
    np.testing.assert_allclose(tan["s"], tp["a"] * p["b"][0] + p["a"] * tp["b"][0])


def test_jvp_structure_checks():
    x = r(3)
    with pytest.raises(TypeError):
        T.jvp(tnp.sin, x, x)                               # not tuples
    with pytest.raises(ValueError):
        T.jvp(lambda a, b: a * b, (x, x), (x,))            # count mismatch
    with pytest.raises(ValueError):
        T.jvp(tnp.sin, (x,), (r(4),))                      # shape mismatch
    with pytest.raises(ValueError):
        T.jvp(lambda p: p["a"], ({"a": x},), ({"b": x},))  # structure mismatch


def test_jvp_constant_output_has_zero_tangent():
    out, t = T.jvp(lambda x: np.ones(2) * 3.0, (r(3),), (r(3),))
    np.testing.assert_array_equal(t, np.zeros(2))


def test_jvp_has_aux():
    out, t, aux = T.jvp(lambda x: (x * 2, x.sum()), (np.ones(2),), (np.ones(2),), has_aux=True)
    np.testing.assert_allclose(t, [2, 2])
    assert float(aux) == 2.0


def test_linearize():
    x = r(3)
    f = lambda x: tnp.sin(x) * x  # noqa: E731
    out, f_jvp = T.linearize(f, x)
    np.testing.assert_allclose(out, np.sin(x) * x)
    for _ in range(2):
        t = r(3)
        np.testing.assert_allclose(f_jvp(t), (np.cos(x) * x + np.sin(x)) * t)
        np.testing.assert_allclose(f_jvp(t), T.jvp(f, (x,), (t,))[1])


def test_linearize_multiple_args():
    x, y = r(3), r(3)
    out, f_jvp = T.linearize(lambda x, y: x * y, x, y)
    tx, ty = r(3), r(3)
    np.testing.assert_allclose(f_jvp(tx, ty), tx * y + x * ty)


# ---------------------------------------------------------------------------------------------
# jacobians and hessian
# ---------------------------------------------------------------------------------------------

def _f_vec(x):
    return tnp.stack([x[0] * x[1], tnp.sin(x[2]), x[0] ** 2 * x[2]])


def _jac_ref(x):
    return np.array([[x[1], x[0], 0], [0, 0, np.cos(x[2])], [2 * x[0] * x[2], 0, x[0] ** 2]])


def test_jacfwd_jacrev():
    x = r(3)
    np.testing.assert_allclose(T.jacfwd(_f_vec)(x), _jac_ref(x))
    np.testing.assert_allclose(T.jacrev(_f_vec)(x), _jac_ref(x))


def test_jacobian_shapes_matrix_in_out():
    x = r(2, 3)
    f = lambda x: tnp.tanh(x).T  # noqa: E731
    for jac in (T.jacfwd, T.jacrev):
        j = jac(f)(x)
        assert j.shape == (3, 2, 2, 3)
        ref = np.zeros((3, 2, 2, 3))
        for i in range(2):
            for k in range(3):
                ref[k, i, i, k] = 1 - np.tanh(x[i, k]) ** 2
        np.testing.assert_allclose(j, ref)


def test_jacobian_argnums_and_pytrees():
    f = lambda a, b: {"p": a * b[0], "q": tnp.sum(a)}  # noqa: E731
    a, b = r(2), [r(2)]
    for jac in (T.jacfwd, T.jacrev):
        j = jac(f, argnums=(0, 1))(a, b)
        np.testing.assert_allclose(j["p"][0], np.diag(b[0]))
        np.testing.assert_allclose(j["p"][1][0], np.diag(a))
        np.testing.assert_allclose(j["q"][0], np.ones(2))
        np.testing.assert_allclose(j["q"][1][0], np.zeros(2))


def test_jacfwd_of_jacrev_and_hessian():
    x = r(3)
    f = lambda x: tnp.sum(tnp.sin(x) * x[0]) + x[1] * x[2] ** 2  # noqa: E731

    def h_ref(x):
        h = np.diag(-np.sin(x) * x[0])
        h[0, :] += np.cos(x)
        h[:, 0] += np.cos(x)
        h[1, 2] += 2 * x[2]
        h[2, 1] += 2 * x[2]
        h[2, 2] += 2 * x[1]
        return h

    np.testing.assert_allclose(T.jacfwd(T.jacrev(f))(x), h_ref(x), atol=1e-12)
    np.testing.assert_allclose(T.jacrev(T.jacfwd(f))(x), h_ref(x), atol=1e-12)
    np.testing.assert_allclose(T.hessian(f)(x), h_ref(x), atol=1e-12)


def test_hessian_of_quadratic_form():
    A = r(4, 4)
    f = lambda x: x @ A @ x  # noqa: E731
    np.testing.assert_allclose(T.hessian(f)(r(4)), A + A.T, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# stop_gradient, Python control flow on concrete values
# ---------------------------------------------------------------------------------------------

def test_stop_gradient_in_composite():
    x = r(3)
    f = lambda x: tnp.sum(x * T.stop_gradient(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(T.grad(f)(x), x ** 2)
    _, t = T.jvp(lambda x: T.stop_gradient(x) * 2, (x,), (np.ones(3),))
    np.testing.assert_allclose(t, np.zeros(3))
    np.testing.assert_allclose(T.hessian(lambda x: tnp.sum(T.stop_gradient(x) * x ** 2))(x),
                               np.diag(2 * x), atol=1e-12)


def test_python_if_on_concrete_value_under_grad():
    def f(x):
        if x.sum() > 0:
            return tnp.sum(x ** 2)
        return tnp.sum(-x)

    np.testing.assert_allclose(T.grad(f)(np.array([1.0, 2.0])), [2.0, 4.0])
    np.testing.assert_allclose(T.grad(f)(np.array([-1.0, -2.0])), [-1.0, -1.0])

    def g(x):
        n = int(x[0])              # concrete under grad: allowed
        return x[1] * n + float(x[1])

    np.testing.assert_allclose(T.grad(g)(np.array([3.0, 2.0])), [0.0, 3.0])


def test_grad_through_python_loop_and_where():
    def f(x):
        for _ in range(3):
            x = tnp.where(x > 0, x * 2, x * 0.5)
        return tnp.sum(x)

    x = np.array([1.0, -1.0])
    np.testing.assert_allclose(T.grad(f)(x), [8.0, 0.125])


# ---------------------------------------------------------------------------------------------
# reverse mode of a small MLP against a hand-written backward pass
# ---------------------------------------------------------------------------------------------

def _mlp_loss(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = tnp.maximum(h, 0.0)
    logp = h - h.max(axis=1, keepdims=True)
    logp = logp - tnp.log(tnp.sum(tnp.exp(logp), axis=1, keepdims=True))
    return -tnp.mean(tnp.take_along_axis(logp, y[:, None], axis=1))


def _mlp_grad_ref(params, x, y):
    acts, h = [x], x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = np.maximum(h, 0)
        acts.append(h)
    z = acts[-1]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d = p.copy()
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    grads = []
    for i in reversed(range(len(params))):
        w, _ = params[i]
        grads.append((acts[i].T @ d, d.sum(0)))
        d = d @ w.T
        if i > 0:
            d = d * (acts[i] > 0)
    return grads[::-1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_grad_matches_handwritten(dtype):
    sizes = [6, 8, 5, 3]
    params = [(r(a, b).astype(dtype), r(b).astype(dtype) * 0.1)
              for a, b in zip(sizes[:-1], sizes[1:])]
    x = r(7, 6).astype(dtype)
    y = rng.integers(0, 3, 7)
    g = T.grad(_mlp_loss)(params, x, y)
    ref = _mlp_grad_ref(params, x, y)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for (gw, gb), (rw, rb) in zip(g, ref):
        assert gw.dtype == dtype and gb.dtype == dtype
        np.testing.assert_allclose(gw, rw, rtol=tol, atol=tol)
        np.testing.assert_allclose(gb, rb, rtol=tol, atol=tol)
    if dtype == np.float64:
        check_grads(_mlp_loss, (params, x, y), order=2)


def test_check_grads_detects_wrong_derivative():
    from transforms.lax.misc import stop_gradient

    def bad(x):   # value sin(x), derivative 0.5*cos(x)
        return 0.5 * tnp.sin(x) + 0.5 * stop_gradient(tnp.sin(x))

    with pytest.raises(AssertionError):
        check_grads(bad, (r(3),), order=1, modes=("fwd",))
    with pytest.raises(AssertionError):
        check_grads(bad, (r(3),), order=1, modes=("rev",))


def test_lax_select_grad_both_branches():
    x, y = r(4), r(4)
    gx, gy = T.grad(lambda x, y: tnp.sum(lax.select(x > y, x * 3, y * 5)), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.where(x > y, 3, 0))
    np.testing.assert_allclose(gy, np.where(x > y, 0, 5))


def test_derivatives_are_ordinary_writeable_arrays():
    g = T.grad(lambda x: tnp.sum(x))(np.ones((2, 3)))        # a broadcast internally
    assert isinstance(g, np.ndarray) and g.flags.writeable and g.flags.c_contiguous
    g -= 1.0                                                  # in-place updates work
    _, gi = T.vjp(lambda x, n: x * 2, np.ones(2), np.int32(3))[1](np.ones(2))
    assert gi.flags.writeable and gi.dtype == np.int32        # zero cotangent of an int
    _, t = T.jvp(lambda x: np.ones(3), (np.ones(2),), (np.ones(2),))
    assert t.flags.writeable


def test_dynamic_update_slice_traced_index_under_grad():
    def f(x, u, i):
        return tnp.sum(lax.dynamic_update_slice(x, u * u, (i,)) * np.arange(1.0, 7.0))

    x, u = r(6), r(2)
    for i in (0, 3, 5):                 # 5 clamps to 4
        gx, gu = T.grad(f, argnums=(0, 1))(x, u, np.int32(i))
        s = min(i, 4)
        w = np.arange(1.0, 7.0)
        ref_x = w.copy()
        ref_x[s:s + 2] = 0
        np.testing.assert_allclose(gx, ref_x)
        np.testing.assert_allclose(gu, 2 * u * w[s:s + 2])
    closed = T.make_jaxpr(f)(x, u, np.int32(1))
    assert "dynamic_update_slice" in str(closed)


def test_no_perturbation_confusion():
    # the inner derivative must not pick up the outer perturbation (nested closures)
    assert float(T.grad(lambda x: T.grad(lambda y: x * y)(1.0))(2.0)) == 1.0
    out, t = T.jvp(lambda x: x * T.jvp(lambda y: x * y, (1.0,), (1.0,))[1], (3.0,), (1.0,))
    assert (float(out), float(t)) == (9.0, 6.0)
    f = lambda x: T.grad(lambda y: tnp.sin(x * y))(x)  # noqa: E731  x cos(x^2)
    np.testing.assert_allclose(T.grad(f)(0.7), np.cos(0.49) - 2 * 0.49 * np.sin(0.49))
    # a jaxpr of the nested derivative closes over nothing
    closed = T.make_jaxpr(lambda x: T.grad(lambda y: x * y)(1.0))(2.0)
    assert not closed.consts
    np.testing.assert_allclose(closed(5.0)[0], 5.0)


def test_vjp_of_function_with_integer_output():
    x = r(4)
    out, vjp_fn = T.vjp(lambda x: (tnp.sum(x ** 2), tnp.argmax(x)), x)
    assert out[1].dtype == np.int64 and out[1] == np.argmax(x)
    (g,) = vjp_fn((1.0, np.zeros((), np.int64)))
    np.testing.assert_allclose(g, 2 * x)


def test_check_grads_detects_wrong_transpose_rule():
    # a primitive scale-by-3 with a correct JVP but a transpose that forgets the factor
    from transforms.core import Primitive
    p = Primitive("test_scale3")
    p.def_impl(lambda x: 3 * x)
    p.def_abstract_eval(lambda x: x)
    p.def_jvp(lambda primals, tangents: (p.bind(primals[0]), p.bind(tangents[0])))
    p.def_transpose(lambda ct, x: [ct])                      # wrong: should be 3 * ct
    x = r(3)
    check_grads(p.bind, (x,), order=2, modes=("fwd",))      # forward mode is right
    with pytest.raises(AssertionError, match="vjp"):
        check_grads(p.bind, (x,), order=1, modes=("rev",))
    p.def_transpose(lambda ct, x: [p.bind(ct)])              # fixed
    check_grads(p.bind, (x,), order=2)
