"""jit composed with the other transforms: each must equal the eager reference.

grad(jit(f)) and friends go through the `pjit` primitive's rules (the transform applies to
the traced jaxpr, whose result is compiled again); jit(grad(f)) compiles the derivative."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

RNG = np.random.default_rng(1)


def f(x, y):
    return tnp.sum(tnp.tanh(x) * y + tnp.sin(x) ** 2 - tnp.exp(-x * x) * y)


@pytest.fixture(scope="module")
def xy():
    return (RNG.standard_normal((3, 4)).astype(np.float32),
            RNG.standard_normal((3, 4)).astype(np.float32))


def close(a, b, rtol=2e-5, atol=2e-6):
    for u, v in zip(T.tree.leaves(a), T.tree.leaves(b)):
        u, v = np.asarray(u), np.asarray(v)
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


jf = T.jit(f)


def test_grad_of_jit_and_jit_of_grad(xy):
    x, y = xy
    ref = T.grad(f, argnums=(0, 1))(x, y)
    close(T.grad(jf, argnums=(0, 1))(x, y), ref)
    close(T.jit(T.grad(f, argnums=(0, 1)))(x, y), ref)
    v, g = T.value_and_grad(jf)(x, y)
    close((v, g), T.value_and_grad(f)(x, y))
    # second order through jit: hessian-vector product
    hv = T.grad(lambda x: tnp.sum(T.grad(jf)(x, y) * y))(x)
    close(hv, T.grad(lambda x: tnp.sum(T.grad(f)(x, y) * y))(x), rtol=1e-4, atol=1e-5)


def test_vmap_of_jit_and_jit_of_vmap_grad(xy):
    x, y = xy
    ref = np.stack([f(a, b) for a, b in zip(x, y)])
    close(T.vmap(jf)(x, y), ref)
    close(T.vmap(jf, in_axes=(0, None))(x, y[0]), np.stack([f(a, y[0]) for a in x]))
    per_ex = T.jit(T.vmap(T.grad(f)))(x, y)
    close(per_ex, np.stack([T.grad(f)(a, b) for a, b in zip(x, y)]))


def test_jvp_vjp_of_jit_and_jit_in_jit(xy):
    x, y = xy
    tx = np.ones_like(x)
    close(T.jvp(jf, (x, y), (tx, np.zeros_like(y))), T.jvp(f, (x, y), (tx, np.zeros_like(y))),
          rtol=1e-4, atol=1e-5)
    o1, vf1 = T.vjp(jf, x, y)
    o2, vf2 = T.vjp(f, x, y)
    close(o1, o2)
    close(vf1(np.float32(1.5)), vf2(np.float32(1.5)))
    outer = T.jit(lambda x, y: jf(x, y) * 2 + jf(y, x))
    close(outer(x, y), f(x, y) * 2 + f(y, x))
    assert "pjit" not in outer.lower(x, y).as_text()          # inlined into one function


def test_closures_over_tracers_and_static_args_under_transforms(xy):
    x, y = xy

    def outer(x):
        return T.jit(lambda z: tnp.sum(z * x))(y)          # closes over a JVP tracer
    close(T.grad(outer)(x), T.grad(lambda x: tnp.sum(y * x))(x))

    g = T.jit(lambda x, n: tnp.sum(x ** n), static_argnums=1)
    close(T.grad(g)(x, 3), T.grad(lambda x: tnp.sum(x ** 3))(x))
    close(T.vmap(lambda r: g(r, 2))(x), np.sum(x ** 2, axis=1))


def test_training_step_jitted_equals_eager():
    """A small MLP step with Adam, jitted as a whole (grad + update in one function)."""
    k = np.random.default_rng(2)
    params = [{"w": (k.standard_normal((12, 16)) / 4).astype(np.float32),
               "b": np.zeros(16, np.float32)},
              {"w": (k.standard_normal((16, 5)) / 4).astype(np.float32),
               "b": np.zeros(5, np.float32)}]
    x = k.standard_normal((8, 12)).astype(np.float32)
    labels = k.integers(0, 5, 8)

    def loss(ps, x, labels):
        h = tnp.maximum(x @ ps[0]["w"] + ps[0]["b"], 0)
        logits = h @ ps[1]["w"] + ps[1]["b"]
        lse = tnp.log(tnp.sum(tnp.exp(logits - tnp.max(logits, axis=1, keepdims=True)),
                              axis=1)) + tnp.max(logits, axis=1)
        return tnp.mean(lse - tnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0])

    def step(ps, m, v, x, labels, t):
        value, g = T.value_and_grad(loss)(ps, x, labels)
        m = T.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = T.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        ps = T.tree.map(lambda p, m, v: p - 0.01 * (m / (1 - 0.9 ** t)) /
                        (tnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8), ps, m, v)
        return ps, m, v, value

    zeros = T.tree.map(np.zeros_like, params)
    jstep = T.jit(step)
    state_j = (params, zeros, zeros)
    state_e = (params, zeros, zeros)
    for t in range(1, 4):
        *state_j, lj = jstep(*state_j, x, labels, np.float32(t))
        *state_e, le = step(*state_e, x, labels, np.float32(t))
        np.testing.assert_allclose(lj, le, rtol=1e-5)
    close(state_j, state_e, rtol=1e-4, atol=1e-5)
    assert len(jstep.cache_misses) == 0


def test_control_flow_under_jit():
    def body(c, x):
        return c * 0.5 + x, c + x

    def g(xs, n):
        carry, ys = lax.scan(body, np.float32(0), xs)
        w = lax.fori_loop(0, 5, lambda i, a: a + lax.convert_element_type(i, np.float32), n)
        z = lax.cond(carry > 1, lambda a: a * 2, lambda a: a - 1, carry)
        return carry, ys, w, z
    xs = np.arange(6, dtype=np.float32)
    close(T.jit(g)(xs, np.float32(1)), g(xs, np.float32(1)))


@pytest.mark.parametrize("fun, want", [
    (tnp.sin, -0.5403023058681398),                # -cos(1)
    (lambda x: x ** 3, 6.0),
    (tnp.tanh, 0.6216266807712961),                 # JAX's value
    (lax.logistic, -0.03532558051623565),           # JAX's value
])
def test_third_derivative_through_nested_jits(fun, want):
    # the inner jit's outputs are duplicates (cos h computed twice): inlining the call in the
    # backend must resolve an output that common-subexpression elimination replaced
    g = T.grad(T.jit(T.grad(T.jit(T.grad(fun)))))(1.0)
    np.testing.assert_allclose(g, want, rtol=1e-13)
