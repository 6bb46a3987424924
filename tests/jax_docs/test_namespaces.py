"""JAX's other top-level names: T.jacobian, T.linear_transpose, T.custom_gradient,
T.disable_jit, T.config, T.eval_shape, T.block_until_ready, T.Array, and transforms.tree_util
(key paths, keyed registration, Partial, tree_transpose)."""
import collections
import functools

import numpy as np
import pytest

from ._helpers import require_namespace

tree_util = require_namespace("transforms.tree_util")

import transforms as T
import transforms.numpy as tnp
from transforms import lax

from ._helpers import check, assert_tree_close

rng = np.random.default_rng(11)
A = rng.normal(size=(3, 3))
V = rng.normal(size=3)


def test_jacobian_is_jacrev():
    f = lambda x: tnp.sin(A @ x)
    check(T.jacobian(f), (V,), np.cos(A @ V)[:, None] * A, rtol=1e-12)


def test_linear_transpose_of_matvec_is_transposed_matvec():
    f_t = T.linear_transpose(lambda x: A @ x, V)
    y = np.array([1.0, -1.0, 2.0])
    check(lambda y: f_t(y), (y,), (A.T @ y,), rtol=1e-12)


def test_linear_transpose_of_cumsum_is_reverse_cumsum():
    f_t = T.linear_transpose(tnp.cumsum, np.zeros(4))
    y = np.array([1.0, 2.0, 3.0, 4.0])
    (out,) = f_t(y)
    np.testing.assert_allclose(out, np.cumsum(y[::-1])[::-1])


@T.custom_gradient
def clip_grad_norm(x):
    def grad_fn(g):
        return g / tnp.maximum(1.0, tnp.abs(g))
    return x, grad_fn


def test_custom_gradient_clips_gradient():
    f = lambda x: 5.0 * clip_grad_norm(x)
    check(T.grad(f), (2.0,), 1.0)
    check(lambda x: 0.5 * T.grad(lambda y: clip_grad_norm(y) * 0.5)(x), (2.0,), 0.25)


@T.custom_gradient
def log1pexp_cg(x):
    e = tnp.exp(x)
    return tnp.log1p(e), lambda g: g * (1 - 1 / (1 + e))


def test_custom_gradient_stable_log1pexp():
    check(T.grad(log1pexp_cg), (0.0,), 0.5)
    check(T.grad(log1pexp_cg), (50.0,), 1.0)


def test_disable_jit_runs_python_side_effects_each_call():
    calls = []

    @T.jit
    def f(x):
        calls.append(float(x))          # a concrete value only when jit is disabled
        return x * 2

    with T.disable_jit():
        assert f(3.0) == 6.0
        assert f(4.0) == 8.0
    assert calls == [3.0, 4.0]


def test_config_flags_read_and_update():
    assert T.config.jax_enable_x64 in (False, True)
    old = T.config.jax_disable_jit
    T.config.update("jax_disable_jit", True)
    try:
        assert T.config.jax_disable_jit is True
        seen = []
        T.jit(lambda x: seen.append(float(x)) or x)(1.5)
        assert seen == [1.5]
    finally:
        T.config.update("jax_disable_jit", old)
    with pytest.raises(AttributeError):
        T.config.update("jax_no_such_flag", 1)


def test_eval_shape_computes_shapes_without_flops():
    f = lambda x, w: tnp.tanh(x @ w).sum(axis=0)
    out = T.eval_shape(f, np.zeros((100, 7)), np.zeros((7, 5), dtype=np.float32))
    assert out.shape == (5,)
    assert out.dtype == np.float64
    s = T.eval_shape(f, T.ShapeDtypeStruct((8, 3), np.float32), T.ShapeDtypeStruct((3, 2), np.float32))
    assert s.shape == (2,) and s.dtype == np.float32


def test_block_until_ready_returns_its_argument():
    x = T.jit(lambda x: x + 1)(np.arange(3.0))
    y = T.block_until_ready({"a": x})
    np.testing.assert_array_equal(y["a"], [1.0, 2.0, 3.0])


def test_array_isinstance_check():
    assert isinstance(tnp.arange(3.0), T.Array)
    seen = []
    T.jit(lambda x: seen.append(isinstance(x, T.Array)) or x)(np.ones(2))
    assert seen == [True]


Point = collections.namedtuple("Point", ["x", "y"])


def test_tree_util_key_paths_are_jax_key_entries():
    t = {"a": [10, 20], "b": Point(1, 2)}
    paths = [p for p, _ in tree_util.tree_leaves_with_path(t)]
    assert paths[0] == (tree_util.DictKey("a"), tree_util.SequenceKey(0))
    assert paths[2] == (tree_util.DictKey("b"), tree_util.GetAttrKey("x"))
    assert [tree_util.keystr(p) for p in paths] == ["['a'][0]", "['a'][1]", "['b'].x", "['b'].y"]


def test_tree_util_map_with_path_named_weight_decay():
    params = {"dense": {"kernel": np.ones(2), "bias": np.ones(2)}}
    out = tree_util.tree_map_with_path(
        lambda path, x: x * 0.9 if path[-1].key == "kernel" else x, params)
    assert_tree_close(out, {"dense": {"kernel": np.full(2, 0.9), "bias": np.ones(2)}})


class Box:
    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi


tree_util.register_pytree_with_keys(
    Box,
    lambda b: (((tree_util.GetAttrKey("lo"), b.lo), (tree_util.GetAttrKey("hi"), b.hi)), None),
    lambda aux, ch: Box(*ch))


def test_register_pytree_with_keys_paths_and_grad():
    paths = [tree_util.keystr(p) for p, _ in tree_util.tree_flatten_with_path(Box(1.0, 2.0))[0]]
    assert paths == [".lo", ".hi"]
    g = T.grad(lambda b: b.hi ** 2 - b.lo)(Box(1.0, 3.0))
    assert isinstance(g, Box) and g.lo == -1.0 and g.hi == 6.0


@tree_util.register_pytree_node_class
class Affine:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def tree_flatten(self):
        return (self.w, self.b), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    def __call__(self, x):
        return self.w * x + self.b


def test_register_pytree_node_class_module_through_jit():
    f = T.jit(lambda m, x: m(x))
    np.testing.assert_allclose(f(Affine(2.0, 1.0), np.arange(3.0)), [1.0, 3.0, 5.0])
    g = T.grad(lambda m: m(3.0))(Affine(2.0, 1.0))
    assert (g.w, g.b) == (3.0, 1.0)


def test_partial_is_a_pytree_passable_to_jit():
    add = tree_util.Partial(lambda a, x: a + x, np.array([1.0, 2.0]))
    out = T.jit(lambda f, x: f(x))(add, 10.0)
    np.testing.assert_allclose(out, [11.0, 12.0])


def test_tree_transpose_list_of_pairs():
    t = [(1, 2), (3, 4), (5, 6)]
    out = tree_util.tree_transpose(tree_util.tree_structure([0, 0, 0]),
                                   tree_util.tree_structure((0, 0)), t)
    assert out == ([1, 3, 5], [2, 4, 6])


def test_tree_util_flatten_unflatten_and_all_leaves():
    leaves, td = tree_util.tree_flatten({"a": 1, "b": (2, 3)})
    assert leaves == [1, 2, 3]
    assert tree_util.tree_unflatten(td, [4, 5, 6]) == {"a": 4, "b": (5, 6)}
    assert tree_util.all_leaves([1, 2.0, np.ones(2)])
    assert td.num_leaves == 3
