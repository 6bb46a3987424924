"""The ideas of JAX's "Stateful computations" tutorial, ported: state mutated inside a jitted
method is baked in at trace time; threading state explicitly (state in, new state out) gives
the right answer; a linear regression keeps its parameters in a pytree passed through a
jitted update step, and converges to the least-squares solution."""
from typing import NamedTuple

import numpy as np

import transforms as T
import transforms.numpy as tnp
from transforms import random


class _HiddenCounter:
    """Keeps its count on the object: fine eagerly, wrong under jit."""

    def __init__(self):
        self.n = 0

    def count(self):
        self.n += 1
        return self.n


def test_hidden_state_is_read_once_at_trace_time():
    c = _HiddenCounter()
    assert [c.count() for _ in range(3)] == [1, 2, 3]
    c = _HiddenCounter()
    jcount = T.jit(lambda: c.count())
    assert [int(jcount()) for _ in range(3)] == [1, 1, 1]    # the trace's value, every call
    assert c.n == 1                                          # the body ran once, at tracing


def _count(n):
    """The explicit-state counter: (output, new state)."""
    new = n + 1
    return new, new


_COUNT = T.jit(_count)


def test_explicit_state_threads_through_jit():
    state, outs = np.int64(0), []
    for _ in range(3):
        out, state = _COUNT(state)
        outs.append(int(out))
    assert outs == [1, 2, 3] and int(state) == 3


class Params(NamedTuple):
    weight: object
    bias: object


def _init(key):
    kw, kb = random.split(key)
    return Params(random.normal(kw, (), dtype=np.float64), random.normal(kb, (), dtype=np.float64))


def _loss(params, x, y):
    pred = params.weight * x + params.bias
    return tnp.mean((pred - y) ** 2)


@T.jit
def _update(params, x, y, lr):
    grads = T.grad(_loss)(params, x, y)
    return T.tree.map(lambda p, g: p - lr * g, params, grads)


def test_linear_regression_state_in_state_out_converges_to_least_squares():
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    y = 3.0 * x - 1.0 + 0.1 * rng.normal(size=100)
    params = _init(random.key(123))
    assert isinstance(params, Params)
    first = float(_loss(params, x, y))
    for _ in range(300):
        params = _update(params, x, y, 0.1)
    assert isinstance(params, Params)
    slope, intercept = np.polyfit(x, y, 1)
    np.testing.assert_allclose([params.weight, params.bias], [slope, intercept], rtol=1e-6)
    assert float(_loss(params, x, y)) < first / 100
    assert _update._cache_size() == 1       # one trace for the whole loop
