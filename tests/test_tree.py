"""transforms.tree: the pytree utilities (optree under the project's namespace)."""
import dataclasses
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree

TREE = {"b": [1, (2, 3)], "a": 4, "c": None, "d": {"x": 5}}


def test_leaves_and_order():
    # dict keys are sorted; None is an empty subtree, not a leaf
    assert tree.leaves(TREE) == [4, 1, 2, 3, 5]
    assert tree.leaves(None) == []
    assert tree.leaves([None, 1, (None,)]) == [1]
    assert tree.leaves(np.ones(3))[0].shape == (3,)


def test_flatten_unflatten_roundtrip():
    leaves, spec = tree.flatten(TREE)
    assert leaves == [4, 1, 2, 3, 5]
    back = tree.unflatten(spec, leaves)
    assert back == TREE
    doubled = tree.unflatten(spec, [2 * v for v in leaves])
    assert doubled == {"b": [2, (4, 6)], "a": 8, "c": None, "d": {"x": 10}}
    assert isinstance(doubled["b"][1], tuple)


def test_structure_hashable_and_comparable():
    s1 = tree.structure(TREE)
    s2 = tree.structure({"a": 0, "b": [0, (0, 0)], "c": None, "d": {"x": 0}})
    s3 = tree.structure({"a": 0, "b": [0, (0, 0)], "c": 0, "d": {"x": 0}})
    assert s1 == s2 and hash(s1) == hash(s2)
    assert s1 != s3
    assert len({s1, s2, s3}) == 2
    assert s1.num_leaves == 5


def test_map_and_multiple_trees():
    out = tree.map(lambda x: x * 10, TREE)
    assert out == {"b": [10, (20, 30)], "a": 40, "c": None, "d": {"x": 50}}
    s = tree.map(lambda x, y: x + y, {"a": 1, "b": [2]}, {"a": 10, "b": [20]})
    assert s == {"a": 11, "b": [22]}
    with pytest.raises(ValueError):
        tree.map(lambda x, y: x + y, {"a": 1}, {"b": 1})
    # is_leaf stops the recursion
    out = tree.map(lambda x: len(x), {"p": (1, 2), "q": (3,)}, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"p": 2, "q": 1}


def test_map_with_path_and_leaves_with_path():
    paths = [p for p, _ in tree.leaves_with_path(TREE)]
    D, S = tree.DictKey, tree.SequenceKey
    assert paths == [(D("a"),), (D("b"), S(0)), (D("b"), S(1), S(0)), (D("b"), S(1), S(1)),
                     (D("d"), D("x"))]
    out = tree.map_with_path(lambda p, x: tree.keystr(p, simple=True, separator="/") + f"={x}",
                             TREE)
    assert out["b"][1] == ("b/1/0=2", "b/1/1=3") and out["d"]["x"] == "d/x=5"
    assert tree.keystr(paths[2]) == "['b'][1][0]"
    assert tree.keystr(("params", 0)) == "['params'][0]"   # raw keys still format


def test_reduce_all_any():
    assert tree.reduce(lambda a, b: a + b, TREE) == 15
    assert tree.reduce(lambda a, b: a + b, TREE, 100) == 115
    assert tree.all({"a": True, "b": [True, 1]})
    assert not tree.all({"a": True, "b": [False]})
    assert tree.all({})
    assert tree.any([0, (0, 1)])
    assert not tree.any([0, (0, None)])


def test_namedtuple_ordereddict():
    P = namedtuple("P", ["x", "y"])
    t = P(1, OrderedDict([("z", 2), ("a", 3)]))
    leaves, spec = tree.flatten(t)
    assert leaves == [1, 2, 3]               # OrderedDict keeps insertion order
    back = tree.unflatten(spec, leaves)
    assert isinstance(back, P) and isinstance(back.y, OrderedDict)


class Point:
    def __init__(self, x, y, name="p"):
        self.x, self.y, self.name = x, y, name


tree.register_pytree_node(Point, lambda p: ((p.x, p.y), p.name),
                          lambda name, ch: Point(ch[0], ch[1], name))


def test_register_pytree_node():
    p = Point(1.0, np.array([2.0, 3.0]), "pt")
    leaves, spec = tree.flatten(p)
    assert len(leaves) == 2
    q = tree.unflatten(spec, [10.0, np.zeros(2)])
    assert isinstance(q, Point) and q.name == "pt" and q.x == 10.0
    # visible to the transforms
    g = T.grad(lambda p: p.x * tnp.sum(p.y ** 2))(Point(2.0, np.array([1.0, 3.0])))
    assert isinstance(g, Point)
    np.testing.assert_allclose(g.x, 10.0)
    np.testing.assert_allclose(g.y, [4.0, 12.0])
    # aux data is part of the structure
    assert tree.structure(Point(1, 2, "a")) != tree.structure(Point(1, 2, "b"))


@tree.register_dataclass
@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: np.ndarray


def test_register_dataclass():
    p = Params(np.ones((2, 2)), np.zeros(2))
    assert len(tree.leaves(p)) == 2
    out = tree.map(lambda x: x + 1, p)
    assert isinstance(out, Params)
    np.testing.assert_allclose(out.b, [1, 1])
    g = T.grad(lambda p: tnp.sum(p.w) + tnp.sum(p.b * 3))(p)
    assert isinstance(g, Params)
    np.testing.assert_allclose(g.b, [3, 3])


def test_register_dataclass_meta_fields():
    @dataclasses.dataclass
    class Layer:
        w: np.ndarray
        act: str

    tree.register_dataclass(Layer, data_fields=["w"], meta_fields=["act"])
    leaves, spec = tree.flatten(Layer(np.ones(2), "relu"))
    assert len(leaves) == 1
    back = tree.unflatten(spec, [np.zeros(2)])
    assert back.act == "relu"
    assert tree.structure(Layer(1, "relu")) != tree.structure(Layer(1, "tanh"))


def test_none_is_empty_subtree_in_transforms():
    g = T.grad(lambda p: tnp.sum(p["w"]) * 2)({"w": np.ones(2), "unused": None})
    assert g["unused"] is None
    np.testing.assert_allclose(g["w"], [2, 2])


def test_structure_of_leaf_and_empty_containers():
    assert tree.structure(1).num_leaves == 1
    assert tree.leaves([]) == [] and tree.leaves({}) == [] and tree.leaves(()) == []
    assert tree.structure([]) != tree.structure(())


def test_register_namedtuple_subclass_is_silent_and_overrides():
    """Registering a namedtuple subclass (as jax.example_libraries' OptimizerState does) takes
    effect without the tree backend's warning, as in JAX."""
    import collections
    import warnings

    Base = collections.namedtuple("Base", "a b")

    class Node(Base):
        __slots__ = ()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.tree_util.register_pytree_node(Node, lambda n: ((n.a,), n.b),
                                         lambda aux, ch: Node(ch[0], aux))
    assert T.tree_util.tree_leaves(Node(1, 2)) == [1]        # b is static data now
    back = T.tree_util.tree_map(lambda v: v * 10, Node(1, 2))
    assert back == Node(10, 2)
