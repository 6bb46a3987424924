"""Collectives over a named vmap axis: values, nesting, tuples of names, pytrees,
differentiation (against finite differences), staging, and the unbound-name error."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.interpreters.batching import batch_jaxpr
from transforms.lax.collectives import UnboundAxisNameError

rng = np.random.default_rng(0)
XS = rng.standard_normal((4, 3))


def vm(f, **kw):
    return T.vmap(f, axis_name="i", **kw)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("in_axis", [0, 1])
def test_reductions(in_axis):
    xs = XS if in_axis == 0 else XS.T
    for coll, ref in [(lax.psum, np.sum), (lax.pmean, np.mean), (lax.pmax, np.max),
                      (lax.pmin, np.min)]:
        out = vm(lambda x: coll(x, "i"), in_axes=in_axis)(xs)
        want = np.broadcast_to(ref(XS, axis=0), (4, 3))
        np.testing.assert_allclose(out, want, rtol=1e-12)
    out = vm(lambda x: x / lax.psum(x, "i"), in_axes=in_axis)(xs)
    np.testing.assert_allclose(out, XS / XS.sum(0), rtol=1e-12)


def test_unbatched_operand():
    y = np.arange(3.0)
    out = vm(lambda x, c: lax.psum(c, "i") + 0 * x, in_axes=(0, None))(XS, y)
    np.testing.assert_allclose(out, np.broadcast_to(4 * y, (4, 3)))
    out = vm(lambda x, c: (lax.pmean(c, "i"), lax.pmax(c, "i")), in_axes=(0, None),
             out_axes=None)(XS, y)
    np.testing.assert_allclose(out[0], y)
    np.testing.assert_allclose(out[1], y)
    out = vm(lambda x: lax.psum(1, "i"))(XS)
    np.testing.assert_array_equal(out, [4, 4, 4, 4])
    out = T.vmap(lambda: lax.axis_index("k"), axis_name="k", axis_size=5)()
    np.testing.assert_array_equal(out, np.arange(5))


def test_bool_psum_counts():
    out = vm(lambda x: (lax.psum(x > 0, "i"), lax.pmax(x > 0, "i")))(np.array([1.0, -1, 2]))
    np.testing.assert_array_equal(out[0], [2, 2, 2])
    np.testing.assert_array_equal(out[1], [True] * 3)


def test_integer_pmean():
    out = vm(lambda x: lax.pmean(x, "i"))(np.arange(4))
    np.testing.assert_allclose(out, [1.5] * 4)


def test_all_gather():
    out = vm(lambda x: lax.all_gather(x, "i"))(XS)
    np.testing.assert_allclose(out, np.broadcast_to(XS, (4, 4, 3)))
    out = vm(lambda x: lax.all_gather(x, "i", axis=1))(XS)
    np.testing.assert_allclose(out, np.broadcast_to(XS.T, (4, 3, 4)))
    out = vm(lambda x: lax.all_gather(x, "i", axis=-1), in_axes=1)(XS.T)
    np.testing.assert_allclose(out, np.broadcast_to(XS.T, (4, 3, 4)))
    out = vm(lambda x: lax.all_gather(x, "i", tiled=True))(XS)
    np.testing.assert_allclose(out, np.broadcast_to(XS.reshape(-1), (4, 12)))
    m = rng.standard_normal((4, 2, 3))
    out = vm(lambda x: lax.all_gather(x, "i", axis=1, tiled=True))(m)
    np.testing.assert_allclose(out[2], np.concatenate(list(m), axis=1))
    c = np.arange(3.0)
    out = vm(lambda x, c: lax.all_gather(c, "i"), in_axes=(0, None), out_axes=None)(XS, c)
    np.testing.assert_allclose(out, np.broadcast_to(c, (4, 3)))
    # each example can find itself in the gathered stack
    # (the gathered value is the same for every example, so it is unbatched: a NumPy array
    # here, indexed with a traced index through tnp)
    out = vm(lambda x: tnp.take(lax.all_gather(x, "i"), lax.axis_index("i"), axis=0) - x)(XS)
    np.testing.assert_allclose(out, 0)


def test_axis_index():
    out = vm(lambda x: lax.axis_index("i"))(XS)
    np.testing.assert_array_equal(out, np.arange(4))
    assert out.dtype == np.int32
    out = vm(lambda x: x * lax.axis_index("i"))(XS)
    np.testing.assert_allclose(out, XS * np.arange(4)[:, None])


def test_pytree_inputs():
    tree = {"a": XS, "b": (XS[:, 0], XS * 2)}
    out = vm(lambda t: lax.psum(t, "i"))(tree)
    np.testing.assert_allclose(out["a"][0], XS.sum(0))
    np.testing.assert_allclose(out["b"][0][1], XS[:, 0].sum())
    np.testing.assert_allclose(out["b"][1][3], 2 * XS.sum(0))
    out = vm(lambda t: lax.pmean(t, "i"))(tree)
    np.testing.assert_allclose(out["a"][0], XS.mean(0))


# ---------------------------------------------------------------------------------------------
# Nested names and tuples of names
# ---------------------------------------------------------------------------------------------

M = rng.standard_normal((2, 5, 3))     # outer 'i' of size 2, inner 'j' of size 5


def nested(f):
    return T.vmap(T.vmap(f, axis_name="j"), axis_name="i")


def test_nested_names():
    np.testing.assert_allclose(nested(lambda x: lax.psum(x, "i"))(M),
                               np.broadcast_to(M.sum(0), M.shape), rtol=1e-12)
    np.testing.assert_allclose(nested(lambda x: lax.psum(x, "j"))(M),
                               np.broadcast_to(M.sum(1, keepdims=True), M.shape), rtol=1e-12)
    np.testing.assert_allclose(nested(lambda x: lax.psum(x, ("i", "j")))(M),
                               np.broadcast_to(M.sum((0, 1)), M.shape), rtol=1e-12)
    np.testing.assert_allclose(nested(lambda x: lax.pmean(x, ("i", "j")))(M),
                               np.broadcast_to(M.mean((0, 1)), M.shape), rtol=1e-12)
    np.testing.assert_allclose(nested(lambda x: lax.pmax(x, "i"))(M),
                               np.broadcast_to(M.max(0), M.shape))
    idx = nested(lambda x: lax.axis_index("i") * 10 + lax.axis_index("j"))(M)
    np.testing.assert_array_equal(idx, np.arange(2)[:, None] * 10 + np.arange(5))
    idx = nested(lambda x: lax.axis_index(("i", "j")))(M)
    np.testing.assert_array_equal(idx, np.arange(10).reshape(2, 5))
    g = nested(lambda x: lax.all_gather(x, "i"))(M)
    assert g.shape == (2, 5, 2, 3)
    np.testing.assert_allclose(g[1, 3], M[:, 3])
    g = nested(lambda x: lax.all_gather(x, ("i", "j")))(M)
    assert g.shape == (2, 5, 10, 3)
    np.testing.assert_allclose(g[0, 0], M.reshape(10, 3))


def test_same_name_shadowed_by_inner():
    out = T.vmap(T.vmap(lambda x: lax.psum(x, "i"), axis_name="i"), axis_name="i")(M)
    np.testing.assert_allclose(out, np.broadcast_to(M.sum(1, keepdims=True), M.shape))


def test_inner_unnamed_vmap_maps_collective_through():
    out = T.vmap(T.vmap(lambda x: lax.psum(x, "i"), in_axes=1, out_axes=1),
                 axis_name="i")(M)
    np.testing.assert_allclose(out, np.broadcast_to(M.sum(0), M.shape), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------------------------

def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        g.flat[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


FUNS = {
    "psum": lambda x: lax.psum(x, "i") * x,
    "pmean": lambda x: tnp.sin(lax.pmean(x * x, "i")) * x,
    "pmax": lambda x: lax.pmax(x, "i") * x,
    "pmin": lambda x: lax.pmin(tnp.sin(x), "i") * x ** 2,
    "all_gather": lambda x: tnp.sum(lax.all_gather(x, "i") ** 2, axis=0) * x,
    "all_gather_tiled": lambda x: lax.all_gather(x, "i", tiled=True)[:3] * x,
    "axis_index": lambda x: x * (lax.axis_index("i") + 1.0),
    "nested_psum": lambda x: tnp.exp(lax.psum(x, "i") / 4) * x,
}


@pytest.mark.parametrize("name", list(FUNS))
def test_grad_of_vmap_with_collectives(name):
    f = FUNS[name]

    def total(xs):
        return tnp.sum(vm(f)(xs))

    g = T.grad(total)(XS)
    np.testing.assert_allclose(g, _fd_grad(lambda v: float(total(v)), XS), rtol=1e-6,
                               atol=1e-8)
    # forward mode agrees
    t = rng.standard_normal(XS.shape)
    _, tan = T.jvp(total, (XS,), (t,))
    np.testing.assert_allclose(tan, np.sum(g * t), rtol=1e-8)


@pytest.mark.parametrize("name", ["psum", "pmean", "all_gather", "axis_index", "pmax"])
def test_vmap_of_grad_is_grad_of_the_sum(name):
    # JAX semantics: the transpose of psum is psum, so vmap(grad(f)) with collectives gives
    # each example's share of the gradient of the sum over examples
    f = FUNS[name]
    g = vm(T.grad(lambda x: tnp.sum(f(x))))(XS)

    def total(xs):
        return tnp.sum(vm(f)(xs))
    np.testing.assert_allclose(g, _fd_grad(lambda v: float(total(v)), XS), rtol=1e-6,
                               atol=1e-8)


def test_psum_grad_scalar_example():
    # d/dx_k sum_i (sum_j x_j) * x_i = 2 * sum_j x_j
    xs = np.arange(4.0)
    got = T.grad(lambda v: tnp.sum(vm(lambda x: lax.psum(x, "i") * x)(v)))(xs)
    np.testing.assert_allclose(got, np.full(4, 2 * xs.sum()))
    got = vm(T.grad(lambda x: lax.psum(x, "i") * x))(xs)
    np.testing.assert_allclose(got, np.full(4, 2 * xs.sum()))


def test_jacobians_through_collectives():
    xs = np.linspace(-1, 1, 4)
    f = lambda v: vm(lambda x: tnp.tanh(lax.psum(x * x, "i")) * x)(v)  # noqa: E731
    J = np.stack([(f(xs + e) - f(xs - e)) / 2e-6 for e in np.eye(4) * 1e-6], -1)
    np.testing.assert_allclose(T.jacrev(f)(xs), J, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(T.jacfwd(f)(xs), J, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Staging and errors
# ---------------------------------------------------------------------------------------------

def test_make_jaxpr_of_vmap_with_psum():
    jaxpr = T.make_jaxpr(vm(lambda x: x / lax.psum(x, "i")))(XS)
    names = [e.prim.name for e in jaxpr.eqns]
    assert "reduce_sum" in names and "psum" not in names


def test_batch_jaxpr_binds_axis_name():
    # a jaxpr staged with a collective (as jit would) is batched with the axis name later
    closed = T.make_jaxpr(lambda x: (lax.psum(x, "i"), x * lax.axis_index("i")))(XS[0])
    assert "psum" in str(closed)
    new, dims = batch_jaxpr(closed, 4, [0], axis_name="i")
    s, w = new(XS)
    assert dims == [None, 0]
    np.testing.assert_allclose(s, XS.sum(0))
    np.testing.assert_allclose(w, XS * np.arange(4)[:, None])
    with pytest.raises(UnboundAxisNameError):
        closed(XS[0])


def test_unbound_axis_name():
    for fn in [lambda x: lax.psum(x, "i"), lambda x: lax.pmean(x, "i"),
               lambda x: lax.pmax(x, "i"), lambda x: lax.all_gather(x, "i"),
               lambda x: x * lax.axis_index("i")]:
        with pytest.raises(UnboundAxisNameError, match="unbound axis name: 'i'"):
            fn(XS)
        with pytest.raises(NameError):
            T.vmap(fn, axis_name="j")(XS)
        with pytest.raises(ValueError):
            T.vmap(fn)(XS)
        with pytest.raises(ValueError):
            T.grad(lambda x: tnp.sum(fn(x)))(XS)
