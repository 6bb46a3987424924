"""transforms.tree_util: jax.tree_util's names, key paths and dict ordering (values as JAX's)."""
import collections
import dataclasses

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree, tree_util as tu

P = collections.namedtuple("P", ["x", "y"])


def test_key_objects_and_keystr():
    t = {"b": [1, P(2, 3)], "a": {"z": None, "q": 4}}
    pairs = tu.tree_leaves_with_path(t)
    assert [tu.keystr(p) for p, _ in pairs] == ["['a']['q']", "['b'][0]", "['b'][1].x",
                                               "['b'][1].y"]
    assert pairs[2][0] == (tu.DictKey("b"), tu.SequenceKey(1), tu.GetAttrKey("x"))
    assert [v for _, v in pairs] == [4, 1, 2, 3]
    assert tu.keystr(pairs[2][0], simple=True, separator="/") == "b/1/x"
    k = tu.SequenceKey(0)
    assert (k.idx, repr(k), str(k)) == (0, "SequenceKey(idx=0)", "[0]")
    assert hash(k) == hash(tu.SequenceKey(0)) and k != tu.FlattenedIndexKey(0)
    assert repr(tu.DictKey("a")) == "DictKey(key='a')" and tu.DictKey("a").key == "a"
    assert str(tu.GetAttrKey("n")) == ".n" and tu.GetAttrKey("n").name == "n"
    assert str(tu.FlattenedIndexKey(2)) == "[<flat index 2>]"
    match tu.DictKey("w"):
        case tu.DictKey(key=name):
            assert name == "w"


def test_paths_of_registered_nodes():
    class Pt:
        def __init__(self, x, y):
            self.x, self.y = x, y

    tu.register_pytree_node(Pt, lambda p: ((p.x, p.y), None), lambda a, c: Pt(*c))
    assert [p for p, _ in tu.tree_leaves_with_path(Pt(1, 2))] == [
        (tu.FlattenedIndexKey(0),), (tu.FlattenedIndexKey(1),)]

    @tu.register_dataclass
    @dataclasses.dataclass
    class D:
        w: int
        b: int

    assert tu.tree_leaves_with_path(D(1, 2)) == [((tu.GetAttrKey("w"),), 1),
                                                ((tu.GetAttrKey("b"),), 2)]

    class Box:
        def __init__(self, items):
            self.items = items

    tu.register_pytree_with_keys(
        Box, lambda b: ([(tu.DictKey(k), v) for k, v in b.items.items()], tuple(b.items)),
        lambda keys, ch: Box(dict(zip(keys, ch))))
    out = tu.tree_map_with_path(lambda p, v: tu.keystr(p) + str(v), Box({"u": 1, "v": 2}))
    assert out.items == {"u": "['u']1", "v": "['v']2"}


def test_dicts_sorted_and_unsortable_keys_raise():
    leaves, spec = tu.tree_flatten({"b": 1, "a": 2})
    assert leaves == [2, 1]
    assert list(tu.tree_unflatten(spec, leaves)) == ["a", "b"]
    assert list(tu.tree_map(lambda x: x, {"b": 1, "a": 2})) == ["a", "b"]
    assert list(T.grad(lambda d: d["b"] * d["a"])({"b": 1.0, "a": 2.0})) == ["a", "b"]
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    assert list(tu.tree_map(lambda x: x, od)) == ["b", "a"]
    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    out = tu.tree_map(lambda x: x, dd)
    assert list(out) == ["a", "b"] and out.default_factory is list
    for f in (tu.tree_leaves, tu.tree_structure, tu.tree_flatten,
              lambda t: tu.tree_map(lambda x: x, t)):
        with pytest.raises(ValueError, match="sort"):
            f({1: 1, "a": 2})


def test_transpose_broadcast_reduce_associative():
    outer, inner = tu.tree_structure([0, 0]), tu.tree_structure((0, 0, 0))
    t = [(1, 2, 3), (4, 5, 6)]
    assert tu.tree_transpose(outer, inner, t) == ([1, 4], [2, 5], [3, 6])
    assert tree.transpose(outer, None, t) == ([1, 4], [2, 5], [3, 6])
    assert tu.tree_transpose(tu.tree_structure({"a": 0, "b": 0}), None,
                             {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 4}}) == \
        {"x": {"a": 1, "b": 3}, "y": {"a": 2, "b": 4}}
    assert tree.broadcast([1, {"a": 2}], [[3, 4], {"a": (5, 6)}]) == [[1, 1], {"a": (2, 2)}]
    assert tree.broadcast({"a": 1, "b": None}, {"a": [1, 2], "b": None}) == \
        {"a": [1, 1], "b": None}
    assert tree.reduce_associative(lambda a, b: f"({a}+{b})", [1, 2, 3, 4, 5]) == \
        "((1+2)+(3+(4+5)))"
    assert tu.tree_reduce_associative(lambda a, b: a + b, [], identity=0) == 0
    with pytest.raises(TypeError):
        tree.reduce_associative(lambda a, b: a + b, [])
    assert tu.tree_reduce(lambda a, b: a + b, [1, (2, 3)]) == 6
    assert tu.tree_all([True, (1, None)]) and not tu.tree_all([True, 0])


def test_small_utilities():
    assert tu.all_leaves([1, 2]) and not tu.all_leaves([[1], 2]) and not tu.all_leaves([None])
    assert tu.all_leaves([(1,)], is_leaf=lambda x: isinstance(x, tuple))
    assert tu.treedef_is_leaf(tu.tree_structure(1))
    assert tu.treedef_is_leaf(tu.tree_structure(None))      # as JAX: no children
    assert not tu.treedef_is_leaf(tu.tree_structure([1]))
    assert tu.build_tree(tu.tree_structure([0, (0, 0)]), [1, (2, 3)]) == [1, (2, 3)]
    assert tu.build_tree(tu.tree_structure({"a": 0, "b": 0}), [5, 6]) == {"a": 5, "b": 6}
    assert tu.tree_structure((1, 2)) == tu.treedef_tuple([tu.tree_structure(1)] * 2)
    assert tu.treedef_children(tu.tree_structure([1, (2, 3)]))[1] == tu.tree_structure((0, 0))
    assert tu.flatten_one_level({"b": 1, "a": 2})[0] == [2, 1]


def test_partial_is_a_pytree_through_jit(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBAX_CACHE_DIR", str(tmp_path))
    p = tu.Partial(lambda a, b: a * b, np.array([1.0, 2.0]))
    assert len(tu.tree_leaves(p)) == 1
    out = T.jit(lambda f, x: f(x))(p, np.array([3.0, 4.0]))
    np.testing.assert_allclose(out, [3.0, 8.0])
    g = T.grad(lambda q: tnp.sum(q(2.0)))(p)
    assert isinstance(g, tu.Partial)
    np.testing.assert_allclose(g.args[0], [2.0, 2.0])


def test_checkpoint_keeps_its_own_key_handling(tmp_path):
    """fnn.checkpoint names leaves by raw keys and accepts keys of mixed types, which
    transforms.tree (as JAX) cannot sort: saving and restoring such a tree still works."""
    from fnn import checkpoint as ckpt
    P2 = collections.namedtuple("P2", ["x", "y"])
    t = {1: np.ones(1), "a": P2(np.ones(2), np.zeros(1)), None: np.zeros(1)}
    path = tmp_path / "t.safetensors"
    ckpt.save(path, t)
    from safetensors.numpy import load_file
    # named-tuple children by field name (format version 2, as keystr shows them)
    assert sorted(load_file(path)) == ["1", "None", "a/x", "a/y"]
    back = ckpt.restore(path, target=t)
    assert list(back) == [1, "a", None] and isinstance(back["a"], P2)
    np.testing.assert_array_equal(back["a"].x, [1.0, 1.0])
