"""Pytree programs: nested dicts/tuples/namedtuples/dataclasses, custom nodes, tree.map with
several trees, flatten/unflatten, key paths, pytrees through grad/vmap/jit."""
import collections
import dataclasses

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree

from ._helpers import check, assert_tree_close

Point = collections.namedtuple("Point", ["x", "y"])


def test_leaves_of_nested_containers():
    t = [1, "a", {"k": (2, 3)}, None, Point(4, 5)]
    assert tree.leaves(t) == [1, "a", 2, 3, 4, 5]


def test_none_is_empty_subtree():
    assert tree.leaves({"a": None, "b": 1}) == [1]
    assert tree.map(lambda x: x + 1, {"a": None, "b": 1}) == {"a": None, "b": 2}


def test_tree_map_over_two_trees():
    a = {"w": np.ones(2), "b": (1.0, 2.0)}
    b = {"w": np.arange(2.0), "b": (10.0, 20.0)}
    out = tree.map(lambda x, y: x * y + 1, a, b)
    assert_tree_close(out, {"w": np.array([1.0, 2.0]), "b": (11.0, 41.0)})


def test_tree_map_mismatched_structures_raise():
    with pytest.raises((ValueError, TypeError)):
        tree.map(lambda x, y: x + y, {"a": 1}, {"b": 1})


def test_flatten_unflatten_roundtrip_with_replaced_leaves():
    t = {"layer": [np.zeros(2), np.ones(3)], "scale": 2.0}
    leaves, treedef = tree.flatten(t)
    new = tree.unflatten(treedef, [i * 10 for i in range(len(leaves))])
    assert new == {"layer": [0, 10], "scale": 20}


def test_dict_leaves_are_in_sorted_key_order():
    assert tree.leaves({"b": 2, "a": 1, "c": 3}) == [1, 2, 3]


def test_structure_equality_and_num_leaves():
    s1 = tree.structure({"a": (1, 2), "b": [3]})
    s2 = tree.structure({"a": (5, 6), "b": [7]})
    assert s1 == s2
    assert s1.num_leaves == 3
    assert s1 != tree.structure({"a": [1, 2], "b": [3]})


def test_namedtuple_through_grad():
    f = lambda p: p.x ** 2 * p.y
    check(T.grad(f), (Point(3.0, 2.0),), Point(12.0, 9.0))


@tree.register_dataclass
@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: np.ndarray


def test_registered_dataclass_through_jit_and_grad():
    f = lambda p, x: tnp.sum((x @ p.w + p.b) ** 2)
    p = Params(w=np.array([[1.0], [2.0]]), b=np.array([0.5]))
    x = np.array([[1.0, 1.0], [0.0, 1.0]])
    r = x @ p.w + p.b
    g = T.grad(f)(p, x)
    assert isinstance(g, Params)
    check(T.grad(f), (p, x), Params(w=2 * x.T @ r, b=2 * r.sum(0)))


@dataclasses.dataclass
class Scaled:
    value: np.ndarray
    name: str = "s"


tree.register_dataclass(Scaled, data_fields=["value"], meta_fields=["name"])


def test_dataclass_with_static_meta_field():
    s = Scaled(np.array([1.0, 2.0]), "temp")
    leaves, td = tree.flatten(s)
    assert len(leaves) == 1
    out = tree.unflatten(td, [leaves[0] * 3])
    assert out.name == "temp"
    np.testing.assert_allclose(out.value, [3.0, 6.0])


class Special:
    def __init__(self, x, y):
        self.x, self.y = x, y


tree.register_pytree_node(Special, lambda s: ((s.x, s.y), None), lambda aux, ch: Special(*ch))


def test_custom_class_registered_as_node():
    s = tree.map(lambda v: v * 2, Special(1.0, np.array([2.0, 3.0])))
    assert isinstance(s, Special)
    assert s.x == 2.0
    np.testing.assert_allclose(s.y, [4.0, 6.0])


def test_custom_node_through_vmap():
    f = T.vmap(lambda s: s.x * s.y)
    out = f(Special(np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    np.testing.assert_allclose(out, [3.0, 8.0])


def test_unregistered_class_is_a_leaf():
    class Opaque:
        pass

    o = Opaque()
    assert tree.leaves([o, 1]) == [o, 1]


def test_tree_reduce_sums_leaves():
    assert tree.reduce(lambda a, b: a + b, {"a": 1, "b": [2, 3]}) == 6
    assert tree.reduce(lambda a, b: a + b, [], 10) == 10


def test_tree_all():
    assert tree.all([True, {"a": True}])
    assert not tree.all([True, {"a": False}])


def test_key_paths_name_leaves():
    t = {"params": {"dense": {"w": 1, "b": 2}}, "steps": [3]}
    names = [tree.keystr(p) for p, _ in tree.leaves_with_path(t)]
    assert names == ["['params']['dense']['b']", "['params']['dense']['w']", "['steps'][0]"]


def test_map_with_path_weight_decay_only_on_w():
    params = {"dense": {"w": np.ones(2), "b": np.ones(2)}}
    decayed = tree.map_with_path(
        lambda path, x: x * 0.5 if tree.keystr(path).endswith("['w']") else x, params)
    assert_tree_close(decayed, {"dense": {"w": np.full(2, 0.5), "b": np.ones(2)}})


def test_is_leaf_stops_recursion():
    t = {"a": (1, 2), "b": (3, 4)}
    out = tree.map(lambda tup: sum(tup), t, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 3, "b": 7}


def test_transpose_list_of_trees_to_tree_of_lists():
    batch = [{"x": 1, "y": 2}, {"x": 3, "y": 4}]
    out = tree.map(lambda *xs: list(xs), *batch)
    assert out == {"x": [1, 3], "y": [2, 4]}


def test_jit_pytree_in_and_out_sgd_step():
    def step(params, grads):
        return tree.map(lambda p, g: p - 0.1 * g, params, grads)

    p = {"w": np.array([1.0, 2.0]), "b": (np.array(0.5),)}
    g = {"w": np.array([10.0, -10.0]), "b": (np.array(1.0),)}
    check(step, (p, g), {"w": np.array([0.0, 3.0]), "b": (np.array(0.4),)})
