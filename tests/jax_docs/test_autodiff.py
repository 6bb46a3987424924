"""Autodiff cookbook programs: grad of grads, jacobians and hessians, HVPs, jvp/vjp,
linearize, stop_gradient tricks, per-example gradients, straight-through estimators."""
import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check, num_grad

X = np.linspace(-1.0, 1.3, 4)
rng = np.random.default_rng(0)
A = rng.normal(size=(3, 3))
V = rng.normal(size=3)


def test_grad_sin_is_cos():
    check(T.grad(tnp.sin), (0.7,), np.cos(0.7))


def test_grad_of_grad_of_grad_sin():
    d3 = T.grad(T.grad(T.grad(tnp.sin)))
    check(d3, (0.7,), -np.cos(0.7))


def test_elementwise_grad_via_vmap():
    check(T.vmap(T.grad(tnp.tanh)), (X,), 1 - np.tanh(X) ** 2)


def test_grad_of_sum_is_elementwise_derivative():
    f = T.grad(lambda x: tnp.sum(tnp.exp(x) * x))
    check(f, (X,), np.exp(X) * (X + 1))


def test_logistic_regression_gradient():
    inputs = rng.normal(size=(4, 3))
    targets = np.array([1.0, 0.0, 1.0, 1.0])
    W, b = rng.normal(size=3), 0.3

    def loss(W, b):
        p = 1 / (1 + tnp.exp(-(inputs @ W + b)))
        return -tnp.sum(tnp.log(p * targets + (1 - p) * (1 - targets)))

    p = 1 / (1 + np.exp(-(inputs @ W + b)))
    expected = (inputs.T @ (p - targets), np.sum(p - targets))
    check(T.grad(loss, argnums=(0, 1)), (W, b), expected)


def test_grad_with_respect_to_dict_params():
    def loss(p, x):
        return tnp.sum((p["w"] * x + p["b"]) ** 2)

    params = {"w": 2.0, "b": -0.5}
    r = 2.0 * X - 0.5
    check(T.grad(loss), (params, X), {"w": np.sum(2 * r * X), "b": np.sum(2 * r)})


def test_value_and_grad_returns_both():
    f = T.value_and_grad(lambda x: tnp.sum(x ** 3))
    check(f, (X,), (np.sum(X ** 3), 3 * X ** 2))


def test_grad_has_aux_passes_auxiliary_data():
    def loss(x):
        y = x ** 2
        return tnp.sum(y), {"y": y}

    check(T.grad(loss, has_aux=True), (X,), (2 * X, {"y": X ** 2}))


def test_jacfwd_equals_jacrev():
    def f(x):
        return tnp.stack([tnp.sin(x[0]) * x[1], x[0] * x[1] * x[2], tnp.exp(x[2])])

    x = np.array([0.3, -0.4, 0.5])
    J = np.array([[np.cos(x[0]) * x[1], np.sin(x[0]), 0.0],
                  [x[1] * x[2], x[0] * x[2], x[0] * x[1]],
                  [0.0, 0.0, np.exp(x[2])]])
    check(T.jacfwd(f), (x,), J)
    check(T.jacrev(f), (x,), J)


def test_jacobian_of_matrix_vector_product_is_matrix():
    check(T.jacrev(lambda v: A @ v), (V,), A)


def test_hessian_of_quadratic_form_is_A_plus_At():
    check(T.hessian(lambda x: x @ A @ x), (V,), A + A.T)


def test_hessian_as_jacfwd_of_jacrev():
    f = lambda x: tnp.sum(tnp.sin(x) * x[0])
    H1 = T.jacfwd(T.jacrev(f))(V)
    expected = np.diag(-np.sin(V) * V[0])
    expected[0, :] += np.cos(V)
    expected[:, 0] += np.cos(V)
    check(T.jacfwd(T.jacrev(f)), (V,), expected)
    np.testing.assert_allclose(H1, T.hessian(f)(V), rtol=1e-12)


def test_hvp_forward_over_reverse():
    f = lambda x: tnp.sum(tnp.sin(x)) * tnp.sum(x ** 2)

    def hvp(x, v):
        return T.jvp(T.grad(f), (x,), (v,))[1]

    s, q = np.sum(np.sin(V)), np.sum(V ** 2)
    H = (np.diag(-np.sin(V)) * q + 2 * np.outer(np.cos(V), V) + 2 * np.outer(V, np.cos(V))
         + 2 * s * np.eye(3))
    w = np.array([0.1, -1.0, 2.0])
    check(hvp, (V, w), H @ w)


def test_hvp_reverse_over_reverse_matches_forward_over_reverse():
    f = lambda x: tnp.sum(tnp.exp(x) * x[::-1])
    w = np.array([1.0, 2.0, -1.0])
    rr = lambda x, v: T.grad(lambda y: tnp.vdot(T.grad(f)(y), v))(x)
    fr = lambda x, v: T.jvp(T.grad(f), (x,), (v,))[1]
    check(rr, (V, w), fr(V, w))


def test_jvp_directional_derivative():
    f = lambda x: tnp.sum(tnp.sin(x) ** 2)
    check(lambda x, t: T.jvp(f, (x,), (t,)), (X, np.ones(4)),
          (np.sum(np.sin(X) ** 2), np.sum(2 * np.sin(X) * np.cos(X))))


def test_vjp_pulls_back_cotangent():
    def f(x):
        out, pullback = T.vjp(lambda y: A @ tnp.tanh(y), x)
        return out, pullback(np.array([1.0, 0.0, -1.0]))

    u = np.array([1.0, 0.0, -1.0])
    check(f, (V,), (A @ np.tanh(V), ((A.T @ u) * (1 - np.tanh(V) ** 2),)))


def test_jacobian_rows_via_vmap_of_vjp():
    def jac(x):
        y, pb = T.vjp(lambda z: tnp.sin(A @ z), x)
        return T.vmap(pb)(tnp.eye(3))[0]

    check(jac, (V,), np.cos(A @ V)[:, None] * A)


def test_linearize_reuses_linear_map():
    f = lambda x: tnp.sin(x) * tnp.cos(x)
    y, f_lin = T.linearize(f, X)
    np.testing.assert_allclose(y, np.sin(X) * np.cos(X))
    for t in (np.ones(4), X):
        np.testing.assert_allclose(f_lin(t), np.cos(2 * X) * t, rtol=1e-12)


def test_stop_gradient_blocks_flow():
    f = lambda x: x ** 2 + T.stop_gradient(x ** 3)
    check(T.grad(f), (1.5,), 3.0)


def test_stop_gradient_td_target():
    # TD(0) update: the target is treated as a constant.
    def td_loss(theta, s, r, s_next):
        v = lambda s: tnp.dot(theta, s)
        target = r + 0.9 * v(s_next)
        return -0.5 * (T.stop_gradient(target) - v(s)) ** 2

    theta, s, s2 = np.array([0.1, -0.2, 0.3]), np.array([1.0, 2.0, 0.0]), np.array([0.0, 1.0, 1.0])
    delta = 0.5 + 0.9 * theta @ s2 - theta @ s
    check(T.grad(td_loss), (theta, s, 0.5, s2), delta * s)


def test_straight_through_estimator_round():
    def ste_round(x):
        return x + T.stop_gradient(tnp.round(x) - x)

    f = lambda x: tnp.sum(ste_round(x) ** 2)
    x = np.array([0.2, 1.7, -2.4])
    check(T.value_and_grad(f), (x,), (np.sum(np.round(x) ** 2), 2 * np.round(x)))


def test_per_example_gradients_equal_python_loop():
    w = np.array([0.5, -1.0, 2.0])
    xs, ys = rng.normal(size=(5, 3)), rng.normal(size=5)
    loss = lambda w, x, y: (tnp.dot(w, x) - y) ** 2
    expected = np.stack([2 * (w @ x - y) * x for x, y in zip(xs, ys)])
    check(T.vmap(T.grad(loss), in_axes=(None, 0, 0)), (w, xs, ys), expected)


def test_grad_of_norm_is_unit_vector():
    check(T.grad(lambda x: tnp.linalg.norm(x)), (V,), V / np.linalg.norm(V))


def test_grad_argnums_tuple_and_complex_pipeline():
    f = lambda a, b, c: tnp.sum(a * b ** 2 + tnp.sin(c))
    check(T.grad(f, argnums=(0, 2)), (X, 2 * X, X + 1), (4 * X ** 2, np.cos(X + 1)))


def test_gradient_checking_against_finite_differences():
    f = lambda x: tnp.sum(tnp.tanh(A @ x) ** 2)
    fn = lambda x: np.sum(np.tanh(A @ x) ** 2)
    check(T.grad(f), (V,), num_grad(fn, V), rtol=1e-6, atol=1e-8)


def test_jacrev_of_pytree_output_and_input():
    f = lambda p: {"s": p["a"] * p["b"], "t": tnp.sin(p["a"])}
    p = {"a": 0.4, "b": -1.2}
    expected = {"s": {"a": -1.2, "b": 0.4}, "t": {"a": np.cos(0.4), "b": 0.0}}
    check(T.jacrev(f), (p,), expected)
    check(T.jacfwd(f), (p,), expected)


def test_grad_through_abs_and_where():
    f = lambda x: tnp.sum(tnp.where(x > 0, x ** 2, -x))
    check(T.grad(f), (X,), np.where(X > 0, 2 * X, -1.0))


def test_safe_where_double_where_trick():
    # the gradient of sqrt at 0 is inf; the double-where trick keeps it finite.
    def safe_sqrt(x):
        safe = tnp.where(x > 0, x, 1.0)
        return tnp.where(x > 0, tnp.sqrt(safe), 0.0)

    x = np.array([0.0, 4.0])
    check(T.vmap(T.grad(safe_sqrt)), (x,), np.array([0.0, 0.25]))


def test_newton_step_with_hessian():
    # one Newton step on a quadratic lands on the minimiser exactly.
    Q = A @ A.T + 3 * np.eye(3)
    b = np.array([1.0, -2.0, 0.5])
    f = lambda x: 0.5 * x @ Q @ x - b @ x

    def newton(x):
        return x - tnp.linalg.solve(T.hessian(f)(x), T.grad(f)(x))

    check(newton, (np.zeros(3),), np.linalg.solve(Q, b), rtol=1e-10)


def test_linearize_inside_jit():
    def f(x, t):
        y, f_lin = T.linearize(lambda z: tnp.exp(z) * z, x)
        return y, f_lin(t)

    check(f, (X, np.ones(4)), (np.exp(X) * X, np.exp(X) * (X + 1)))


def test_vjp_with_has_aux():
    def f(x):
        y = tnp.sin(x)
        return y * 2, {"mean": tnp.mean(y)}

    def run(x):
        out, pb, aux = T.vjp(f, x, has_aux=True)
        return out, pb(np.ones(4))[0], aux

    check(run, (X,), (2 * np.sin(X), 2 * np.cos(X), {"mean": np.mean(np.sin(X))}))


def test_jvp_of_vmap_equals_vmap_of_jvp():
    f = lambda x: tnp.sin(x) * x
    t = np.full(4, 0.5)
    a = lambda x: T.jvp(T.vmap(f), (x,), (t,))[1]
    b = lambda x: T.vmap(lambda xi, ti: T.jvp(f, (xi,), (ti,))[1])(x, t)
    expected = (np.cos(X) * X + np.sin(X)) * 0.5
    check(a, (X,), expected)
    check(b, (X,), expected)
