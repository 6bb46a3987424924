"""T.checkpoint / T.remat: same values and derivatives as the plain function, the forward
pass recomputed in the backward pass, composition with scan, jit and vmap."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax
from transforms.ir import ClosedJaxpr, Jaxpr
from transforms.test_util import check_grads

rng = np.random.default_rng(0)


def count_prim(jaxpr, name):
    """Occurrences of primitive `name` in `jaxpr`, inner jaxprs included."""
    if isinstance(jaxpr, ClosedJaxpr):
        jaxpr = jaxpr.jaxpr
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.prim.name == name
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    n += count_prim(sub, name)
    return n


def mlp(params, x):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return tnp.sum(tnp.sin(h @ params["w2"]) ** 2)


PARAMS = {"w1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "w2": rng.normal(size=(4, 2))}
X = rng.normal(size=(5, 3))


def test_alias_and_values():
    assert T.remat is T.checkpoint
    np.testing.assert_allclose(T.checkpoint(mlp)(PARAMS, X), mlp(PARAMS, X), rtol=1e-12)
    want = T.grad(mlp)(PARAMS, X)
    got = T.grad(T.checkpoint(mlp))(PARAMS, X)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)
    check_grads(T.checkpoint(mlp), (PARAMS, X), order=2)


def test_backward_pass_recomputes_the_forward_pass():
    """Without remat the derivative of sin(sin(x)) reuses the forward sin; with remat the
    backward pass computes it again (JAX's behaviour: more sin equations, fewer residuals)."""
    f = lambda x: tnp.sum(tnp.sin(tnp.sin(x)))
    x = rng.normal(size=7)
    plain = T.make_jaxpr(T.grad(f))(x)
    remat = T.make_jaxpr(T.grad(T.checkpoint(f)))(x)
    assert count_prim(remat, "remat") >= 1
    assert count_prim(remat, "sin") > count_prim(plain, "sin")
    np.testing.assert_allclose(T.grad(T.checkpoint(f))(x), T.grad(f)(x), rtol=1e-12)


def rnn(w, xs):
    def body(h, x):
        h = tnp.tanh(h @ w + x)
        return h, tnp.sum(h ** 2)
    h, ys = lax.scan(body, tnp.zeros(w.shape[0]), xs)
    return tnp.sum(h) + tnp.sum(ys)


def test_checkpointed_scan_all_transforms():
    """The backward pass of a checkpointed scan carries primal and tangent values in one
    loop: it is split into a primal scan and a linear scan before transposing."""
    w = rng.normal(size=(3, 3)) * 0.5
    xs = rng.normal(size=(6, 3))
    want = T.grad(rnn)(w, xs)
    for f in (T.checkpoint(rnn), lambda w, xs: T.checkpoint(rnn)(w, xs) * 1.0):
        np.testing.assert_allclose(T.grad(f)(w, xs), want, rtol=1e-10)
    # the scan body checkpointed, as in a memory-saving RNN
    def rnn_inner(w, xs):
        body = T.checkpoint(lambda h, x: (tnp.tanh(h @ w + x), tnp.sum(tnp.tanh(h @ w + x) ** 2)))
        h, ys = lax.scan(body, tnp.zeros(3), xs)
        return tnp.sum(h) + tnp.sum(ys)
    np.testing.assert_allclose(T.grad(rnn_inner)(w, xs), want, rtol=1e-10)
    check_grads(T.checkpoint(rnn), (w, xs), order=2)
    np.testing.assert_allclose(T.jit(T.grad(T.checkpoint(rnn)))(w, xs), want, rtol=1e-10)
    np.testing.assert_allclose(T.grad(T.jit(T.checkpoint(rnn)))(w, xs), want, rtol=1e-10)
    xb = np.stack([xs, -xs])
    np.testing.assert_allclose(T.vmap(T.grad(T.checkpoint(rnn)), in_axes=(None, 0))(w, xb),
                               np.stack([want, T.grad(rnn)(w, -xs)]), rtol=1e-10)


def test_closure_over_traced_values():
    """A checkpointed function closing over the parameters being differentiated (the usual
    `checkpoint(lambda x: layer(params, x))`) or over a vmapped value."""
    w, xs = rng.normal(size=(3, 3)), rng.normal(size=(2, 3))
    f = lambda w: tnp.sum(tnp.tanh(xs @ w) ** 2)
    g = T.grad(lambda w: T.checkpoint(lambda x: tnp.sum(tnp.tanh(x @ w) ** 2))(xs))(w)
    np.testing.assert_allclose(g, T.grad(f)(w), rtol=1e-12)
    scale = np.array([1.0, 2.0])
    got = T.vmap(lambda s: T.grad(lambda w: T.checkpoint(lambda x: s * f(w))(xs))(w))(scale)
    np.testing.assert_allclose(got, scale[:, None, None] * T.grad(f)(w), rtol=1e-12)


def test_static_argnums_and_pytrees():
    def f(params, x, power):
        return tnp.sum(mlp(params, x) ** power)
    g = T.grad(T.checkpoint(f, static_argnums=(2,)))(PARAMS, X, 2)
    want = T.grad(f)(PARAMS, X, 2)
    for k in want:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-12)


@pytest.mark.parametrize("policy", [None])
def test_checkpoint_under_jvp_and_jit(policy):
    f = T.checkpoint(lambda x: tnp.sum(tnp.exp(tnp.sin(x)) * x), policy=policy)
    x, t = rng.normal(size=4), rng.normal(size=4)
    ref = lambda x: tnp.sum(tnp.exp(tnp.sin(x)) * x)
    np.testing.assert_allclose(T.jvp(f, (x,), (t,))[1], T.jvp(ref, (x,), (t,))[1], rtol=1e-12)
    np.testing.assert_allclose(T.jit(T.grad(f))(x), T.grad(ref)(x), rtol=1e-12)
    np.testing.assert_allclose(T.hessian(f)(x), T.hessian(ref)(x), rtol=1e-10)


def test_checkpoint_nested_in_checkpoint():
    # the inner remat equation is split inside the outer one's jaxpr (its primal outputs
    # known); before, it stayed whole and `cos(sin y) * t` looked non-linear to transpose
    f = T.checkpoint(lambda y: tnp.sin(T.checkpoint(tnp.sin)(y)))
    want = np.cos(np.sin(3.0)) * np.cos(3.0)                  # -0.9801510660933636
    np.testing.assert_allclose(T.grad(f)(3.0), want, rtol=1e-14)
    np.testing.assert_allclose(T.jit(T.grad(f))(3.0), want, rtol=1e-14)
    np.testing.assert_allclose(T.grad(T.grad(f))(3.0), -0.2775681569984029, rtol=1e-13)
    g = T.checkpoint(lambda y: tnp.sin(T.checkpoint(
        lambda z: tnp.sin(T.checkpoint(tnp.cos)(z) * z))(y)) * y)
    np.testing.assert_allclose(T.grad(g)(3.0), 3.947055053453655, rtol=1e-13)     # JAX
    np.testing.assert_allclose(T.grad(T.grad(g))(3.0), -3.0872921938222615, rtol=1e-12)
