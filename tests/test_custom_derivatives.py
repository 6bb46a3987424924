"""T.custom_jvp and T.custom_vjp (JAX semantics): the custom rule is what every derivative
uses, in every composition with jit and vmap; pytrees, nondiff_argnums and errors."""
import functools

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

rng = np.random.default_rng(0)
X = np.linspace(0.2, 1.4, 5)


# A function whose custom derivative is deliberately NOT its true derivative, so that every
# test can tell the custom rule from ordinary differentiation.
@T.custom_jvp
def f_jvp(x):
    return tnp.sin(x)


@f_jvp.defjvp
def _f_jvp_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    return f_jvp(x), 3.0 * tnp.cos(x) * t        # 3x the true derivative


@T.custom_vjp
def f_vjp(x):
    return tnp.sin(x)


def _f_fwd(x):
    return f_vjp(x), tnp.cos(x)


def _f_bwd(cos_x, ct):
    return (5.0 * cos_x * ct,)                      # 5x the true derivative


f_vjp.defvjp(_f_fwd, _f_bwd)


def test_custom_jvp_rule_is_used_everywhere():
    want = 3.0 * np.cos(X)
    np.testing.assert_allclose(f_jvp(X), np.sin(X))
    np.testing.assert_allclose(T.jvp(f_jvp, (X,), (np.ones_like(X),))[1], want)
    g = lambda x: tnp.sum(f_jvp(x))
    np.testing.assert_allclose(T.grad(g)(X), want)
    np.testing.assert_allclose(T.vmap(T.grad(lambda x: f_jvp(x)))(X), want)
    np.testing.assert_allclose(T.jacfwd(f_jvp)(X), np.diag(want))
    np.testing.assert_allclose(T.jacrev(f_jvp)(X), np.diag(want))
    # second order differentiates the rule itself: d/dx 3 cos x = -3 sin x
    np.testing.assert_allclose(T.grad(lambda x: T.grad(lambda y: f_jvp(y))(x))(0.7),
                               -3.0 * np.sin(0.7))
    np.testing.assert_allclose(T.jit(T.grad(g))(X), want)
    np.testing.assert_allclose(T.grad(T.jit(g))(X), want)
    np.testing.assert_allclose(T.jit(T.vmap(T.grad(lambda x: f_jvp(x))))(X), want)
    np.testing.assert_allclose(T.jit(f_jvp)(X), np.sin(X))


def test_custom_vjp_rule_is_used_everywhere():
    want = 5.0 * np.cos(X)
    np.testing.assert_allclose(f_vjp(X), np.sin(X))
    g = lambda x: tnp.sum(f_vjp(x))
    np.testing.assert_allclose(T.grad(g)(X), want)
    out, vjp = T.vjp(f_vjp, X)
    np.testing.assert_allclose(vjp(np.ones_like(X))[0], want)
    np.testing.assert_allclose(T.vmap(T.grad(lambda x: f_vjp(x)))(X), want)
    np.testing.assert_allclose(T.jacrev(f_vjp)(X), np.diag(want))
    np.testing.assert_allclose(T.vmap(f_vjp)(np.stack([X, -X])), np.sin(np.stack([X, -X])))
    np.testing.assert_allclose(T.jit(T.grad(g))(X), want)
    np.testing.assert_allclose(T.grad(T.jit(g))(X), want)
    np.testing.assert_allclose(T.jit(T.vmap(T.grad(lambda x: f_vjp(x))))(X), want)
    # forward mode through a custom_vjp function is an error, as in JAX
    with pytest.raises(TypeError, match="forward-mode"):
        T.jvp(f_vjp, (X,), (np.ones_like(X),))


def test_custom_vjp_inside_scan_and_cond():
    def loop(x):
        c, _ = lax.scan(lambda c, _: (f_vjp(c), None), x, None, length=2)
        return tnp.sum(c)
    # d/dx sin(sin x) with each factor 5x: 25 cos(sin x) cos x
    np.testing.assert_allclose(T.grad(loop)(X), 25 * np.cos(np.sin(X)) * np.cos(X), rtol=1e-12)
    br = lambda x: tnp.sum(lax.cond(x[0] > 0, f_jvp, tnp.sin, x))
    np.testing.assert_allclose(T.grad(br)(X), 3.0 * np.cos(X))


def test_pytrees_defjvps_and_nondiff_argnums():
    @T.custom_jvp
    def scaled(p, x):
        return {"y": p["a"] * x, "z": tnp.sum(x)}

    @scaled.defjvp
    def _(primals, tangents):
        (p, x), (tp, tx) = primals, tangents
        out = scaled(p, x)
        return out, {"y": tp["a"] * x + p["a"] * tx, "z": 2.0 * tnp.sum(tx)}
    p = {"a": 1.5}
    g = T.grad(lambda p, x: scaled(p, x)["z"] + tnp.sum(scaled(p, x)["y"]), argnums=(0, 1))(p, X)
    np.testing.assert_allclose(g[0]["a"], X.sum())
    np.testing.assert_allclose(g[1], 2.0 + 1.5)

    @T.custom_jvp
    def mul(x, y):
        return x * y
    mul.defjvps(lambda tx, out, x, y: 7.0 * tx * y, lambda ty, out, x, y: x * ty)
    np.testing.assert_allclose(T.grad(mul, argnums=(0, 1))(2.0, 3.0), (21.0, 2.0))

    @functools.partial(T.custom_vjp, nondiff_argnums=(0,))
    def clip_grad(limit, x):
        return x

    def fwd(limit, x):
        return x, None

    def bwd(limit, _, ct):
        return (tnp.clip(ct, -limit, limit),)
    clip_grad.defvjp(fwd, bwd)
    np.testing.assert_allclose(T.grad(lambda x: tnp.sum(clip_grad(0.5, x) * 3.0))(X),
                               np.full_like(X, 0.5))


def test_custom_vjp_bwd_may_return_none_for_an_input():
    @T.custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, ct: (r[1] * ct, None))
    gx, gy = T.grad(f, argnums=(0, 1))(2.0, 3.0)
    assert float(gx) == 3.0 and float(gy) == 0.0


def test_errors():
    @T.custom_jvp
    def nojvp(x):
        return x
    with pytest.raises(AttributeError, match="No JVP defined"):
        nojvp(1.0)

    @T.custom_vjp
    def novjp(x):
        return x
    with pytest.raises(AttributeError, match="No VJP defined"):
        novjp(1.0)

    @T.custom_jvp
    def bad(x):
        return x

    bad.defjvp(lambda p, t: (p[0], tnp.ones(3)))
    with pytest.raises(TypeError, match="shape"):
        T.jvp(bad, (1.0,), (1.0,))


def make_closures(a):
    """custom_jvp / custom_vjp functions of x closing over `a` (rules deliberately 3x / 5x)."""
    @T.custom_jvp
    def hj(x):
        return tnp.sin(x * a)

    hj.defjvp(lambda p, t: (hj(p[0]), 3.0 * tnp.cos(p[0] * a) * a * t[0]))

    @T.custom_vjp
    def hv(x):
        return tnp.sin(x * a)

    hv.defvjp(lambda x: (hv(x), x), lambda x, ct: (5.0 * tnp.cos(x * a) * a * ct,))
    return hj, hv


def test_closures_over_traced_values_as_jax():
    """As in JAX: custom functions and rules may close over tracers of enclosing vmap/jit
    (and over values not being differentiated); differentiating with respect to a
    closed-over value is a clear error."""
    as_ = np.array([0.5, 2.0])
    for k, scale in ((0, 3.0), (1, 5.0)):
        def value(a, x):
            return tnp.sum(make_closures(a)[k](x))

        def dx(a, x):
            return T.grad(lambda x: value(a, x))(x)
        want_v = np.array([np.sin(X * a).sum() for a in as_])
        want_d = np.stack([scale * np.cos(X * a) * a for a in as_])
        np.testing.assert_allclose(T.vmap(value, in_axes=(0, None))(as_, X), want_v, rtol=1e-12)
        np.testing.assert_allclose(T.vmap(dx, in_axes=(0, None))(as_, X), want_d, rtol=1e-12)
        np.testing.assert_allclose(T.jit(value)(2.0, X), want_v[1], rtol=1e-12)
        np.testing.assert_allclose(T.jit(dx)(2.0, X), want_d[1], rtol=1e-12)
        np.testing.assert_allclose(T.grad(T.jit(value), argnums=1)(2.0, X), want_d[1],
                                   rtol=1e-12)
        np.testing.assert_allclose(T.jit(T.vmap(dx, in_axes=(0, None)))(as_, X), want_d,
                                   rtol=1e-12)
        with pytest.raises(TypeError, match="closed-over value"):
            T.grad(value)(2.0, X)


def test_python_branches_on_concrete_inputs_and_trace_counts_as_jax():
    """Outside jit, custom functions and their rules see concrete values (a Python `if` on
    the input works, as in JAX), and run as often as in JAX (no extra abstract tracing)."""
    calls = []

    @T.custom_jvp
    def f(x):
        calls.append("f")
        return tnp.sin(x) if x > 0 else tnp.cos(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        x, = primals
        calls.append("jvp")
        return f(x), (2.0 if x > 0 else 3.0) * tangents[0]

    @T.custom_vjp
    def g(x):
        calls.append("g")
        return tnp.sin(x) if x > 0 else tnp.cos(x)

    def g_fwd(x):
        calls.append("fwd")
        return g(x), x

    def g_bwd(x, ct):
        calls.append("bwd")
        return ((2.0 if x > 0 else 3.0) * ct,)
    g.defvjp(g_fwd, g_bwd)

    def run(thunk):
        calls.clear()
        return thunk(), list(calls)
    # values and call sequences recorded from JAX
    out, seq = run(lambda: T.jvp(f, (1.0,), (1.0,)))
    np.testing.assert_allclose(out, (np.sin(1.0), 2.0))
    assert seq == ["jvp", "f"]
    assert run(lambda: T.grad(f)(-1.0)) == (3.0, ["jvp", "f"])
    assert run(lambda: T.grad(T.grad(f))(-1.0)) == (0.0, ["jvp", "jvp", "f"])
    assert run(lambda: T.grad(g)(-1.0)) == (3.0, ["fwd", "g", "bwd"])
    assert run(lambda: T.vjp(g, 1.0)[1](1.0)) == ((2.0,), ["fwd", "g", "bwd"])
    assert run(lambda: g(-1.0)) == (np.cos(-1.0), ["g"])
