"""Training programs: a tiny MLP with fnn.optim converging on a toy regression, linear
regression closed form vs gradient descent, optimiser first steps from first principles,
a training loop inside lax.scan, DP-SGD style clipped per-example gradients."""
import numpy as np
import pytest

import fnn
import transforms as T
import transforms.numpy as tnp
from fnn import optim
from transforms import lax, random, tree

from ._helpers import check, assert_tree_close

rng = np.random.default_rng(7)
XR = rng.uniform(-2, 2, size=(64, 1))
YR = np.sin(XR)


def mlp(params, x):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def mse(params, x, y):
    return tnp.mean((mlp(params, x) - y) ** 2)


def init_params(seed=0, hidden=16):
    r = np.random.default_rng(seed)
    return {"w1": r.normal(size=(1, hidden)), "b1": np.zeros(hidden),
            "w2": r.normal(size=(hidden, 1)) / np.sqrt(hidden), "b2": np.zeros(1)}


def test_mlp_adam_converges_on_sine_regression():
    opt = optim.adam(0.03)
    params = init_params()
    state = opt.init(params)

    @T.jit
    def step(params, state, x, y):
        loss, g = T.value_and_grad(mse)(params, x, y)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state, loss

    first = float(mse(params, XR, YR))
    for _ in range(300):
        params, state, loss = step(params, state, XR, YR)
    assert float(mse(params, XR, YR)) < 0.01 < first


def test_jitted_step_equals_eager_step():
    opt = optim.sgd(0.1, momentum=0.9)

    def step(params, state):
        g = T.grad(mse)(params, XR, YR)
        updates, state = opt.update(g, state, params)
        return optim.apply_updates(params, updates), state

    p = init_params(1)
    s = opt.init(p)
    eager = step(*step(p, s))
    jitted = T.jit(step)(*T.jit(step)(p, s))
    assert_tree_close(jitted, eager, rtol=1e-12)


def test_linear_regression_closed_form_vs_gradient_descent():
    X = np.c_[rng.normal(size=(40, 2)), np.ones(40)]
    w_true = np.array([1.5, -2.0, 0.5])
    y = X @ w_true + 0.1 * rng.normal(size=40)
    w_closed = np.linalg.solve(X.T @ X, X.T @ y)
    loss = lambda w: tnp.mean((X @ w - y) ** 2)

    def gd(w0):
        return lax.fori_loop(0, 500, lambda i, w: w - 0.2 * T.grad(loss)(w), w0)

    check(gd, (np.zeros(3),), w_closed, rtol=1e-8)


def test_sgd_first_step_is_minus_lr_times_grad():
    opt = optim.sgd(0.5, momentum=0.9)
    params = {"w": np.array([1.0, 2.0])}
    g = {"w": np.array([0.2, -0.4])}

    def first(params, g):
        updates, _ = opt.update(g, opt.init(params), params)
        return optim.apply_updates(params, updates)

    check(first, (params, g), {"w": np.array([0.9, 2.2])})


def test_adam_first_step_is_lr_times_sign():
    opt = optim.adam(0.1, eps=0.0)
    params = {"w": np.array([1.0, 2.0, 3.0])}
    g = {"w": np.array([5.0, -0.01, 2.0])}

    def first(params, g):
        updates, _ = opt.update(g, opt.init(params), params)
        return updates

    check(first, (params, g), {"w": -0.1 * np.sign(g["w"])}, rtol=1e-12)


def test_training_loop_inside_scan_equals_python_loop():
    opt = optim.sgd(0.05)
    x, y = XR[:8], YR[:8]

    def body(params, _):
        loss, g = T.value_and_grad(mse)(params, x, y)
        return optim.apply_updates(params, opt.update(g, opt.init(params))[0]), loss

    def train(params):
        return lax.scan(body, params, None, length=20)

    p, losses = init_params(2), []
    for _ in range(20):
        p, l = body(p, None)
        losses.append(l)
    check(train, (init_params(2),), (p, np.array(losses)), rtol=1e-10)


def test_dp_sgd_clipped_per_example_gradients():
    w = np.array([0.5, -0.3])
    xs, ys = rng.normal(size=(6, 2)) * 3, rng.normal(size=6)
    loss = lambda w, x, y: (tnp.dot(w, x) - y) ** 2

    def clipped_mean_grad(w, xs, ys, c=1.0):
        g = T.vmap(T.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
        norms = tnp.linalg.norm(g, axis=1, keepdims=True)
        return tnp.mean(g / tnp.maximum(1.0, norms / c), axis=0)

    gs = [2 * (w @ x - y) * x for x, y in zip(xs, ys)]
    expected = np.mean([g / max(1.0, np.linalg.norm(g)) for g in gs], axis=0)
    check(clipped_mean_grad, (w, xs, ys), expected, rtol=1e-10)


def test_fnn_sequential_classifier_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    labels = np.array([0, 1, 1, 0])
    model = fnn.Sequential([fnn.Dense(8), fnn.tanh, fnn.Dense(2)])
    params, state = model.init(random.key(0), x)
    opt = optim.adam(0.05)
    opt_state = opt.init(params)

    def loss(p):
        logits, _ = model.apply(p, state, x)
        return fnn.losses.cross_entropy(logits, labels)

    @T.jit
    def step(p, s):
        g = T.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s

    for _ in range(200):
        params, opt_state = step(params, opt_state)
    logits, _ = model.apply(params, state, x)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), labels)
