"""The ideas of JAX's "Pytrees" tutorial, ported: custom nodes by each registration route,
`None` as an empty node, `is_leaf` for trees whose leaves look like nodes, transposing a
tree of trees, comparing structures, and key paths. Built-in containers are compared with
`jax.tree_util` directly where JAX is importable."""
import dataclasses
import functools
from collections import namedtuple

import numpy as np
import pytest

import transforms as T
import transforms.numpy as tnp
from transforms import tree_util as tu

try:
    import jax
except ImportError:   # pragma: no cover
    jax = None

needs_jax = pytest.mark.skipif(jax is None, reason="JAX not importable")

Pair = namedtuple("Pair", ["first", "second"])
SAMPLES = [
    [1, (2, 3), {"b": 4, "a": [5, None]}],
    Pair(first={"x": 1.0}, second=(None, 2.0, [])),
    {"layer1": {"w": 1, "b": 2}, "layer0": {"w": 3, "b": None}},
    (None,),
    7,
]


@needs_jax
@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_builtin_containers_flatten_and_key_paths_as_jax(sample):
    ours = tu.tree_flatten_with_path(sample)[0]
    theirs = jax.tree_util.tree_flatten_with_path(sample)[0]
    assert [v for _, v in ours] == [v for _, v in theirs]
    assert [tu.keystr(p) for p, _ in ours] == [jax.tree_util.keystr(p) for p, _ in theirs]
    assert [tu.keystr(p, simple=True, separator="/") for p, _ in ours] == \
        [jax.tree_util.keystr(p, simple=True, separator="/") for p, _ in theirs]
    d, jd = tu.tree_structure(sample), jax.tree_util.tree_structure(sample)
    assert (d.num_leaves, d.num_nodes) == (jd.num_leaves, jd.num_nodes)
    if not isinstance(sample, Pair):     # (JAX prints a namedtuple as a CustomNode)
        assert str(d).replace("PyTreeSpec", "PyTreeDef") == str(jd)


def test_none_is_an_empty_node_not_a_leaf():
    assert tu.tree_leaves([None, 1, (None,)]) == [1]
    assert tu.tree_map(lambda v: v * 10, {"a": None, "b": 2}) == {"a": None, "b": 20}
    # a None in one tree must meet a None in the other
    with pytest.raises(ValueError, match=r"different types at key path\s+tree_map tree\[1\]"):
        tu.tree_map(lambda a, b: a + b, [1, None], [2, 3])
    # ... unless None is declared a leaf
    assert tu.tree_leaves([None, 1], is_leaf=lambda v: v is None) == [None, 1]


def test_shapes_are_tuples_so_is_leaf_keeps_them_whole():
    shapes = {"w": (2, 3), "b": (3,)}
    # without is_leaf the ints inside each shape tuple are the leaves
    assert tu.tree_leaves(shapes) == [3, 2, 3]
    made = tu.tree_map(np.zeros, shapes, is_leaf=lambda s: isinstance(s, tuple))
    assert made["w"].shape == (2, 3) and made["b"].shape == (3,)


def test_structure_comparisons():
    s = tu.tree_structure
    assert s([1, 2]) == s([np.ones(3), "x"])            # leaves' values do not matter
    assert s([1, 2]) != s((1, 2))                       # list vs tuple
    assert s({"a": 1, "b": 2}) == s({"b": 0, "a": 0})   # dict key order does not matter
    assert s({"a": 1}) != s({"b": 1})
    assert s([1, None]) != s([1, 2])                    # None is no leaf
    assert s(Pair(1, 2)) != s((1, 2))
    assert hash(s([1, (2, 3)])) == hash(s([4, (5, 6)]))
    d = s({"p": [1, 2], "q": 3})
    assert d.num_leaves == 3 and len(d.children()) == 2
    assert tu.tree_unflatten(d, ["a", "b", "c"]) == {"p": ["a", "b"], "q": "c"}


def test_tree_transpose_turns_a_list_of_records_into_a_record_of_lists():
    records = [{"loss": 1.0, "acc": 0.5}, {"loss": 0.5, "acc": 0.75}, {"loss": 0.25, "acc": 1.0}]
    out = tu.tree_transpose(tu.tree_structure([0] * 3), tu.tree_structure({"loss": 0, "acc": 0}),
                            records)
    assert out == {"acc": [0.5, 0.75, 1.0], "loss": [1.0, 0.5, 0.25]}
    # the inner structure can be inferred (None), as in jax.tree.transpose
    assert T.tree.transpose(T.tree.structure([0] * 3), None, records) == out


def test_map_with_path_selects_by_name():
    params = {"dense": {"kernel": np.ones(2), "bias": np.ones(2)},
              "norm": {"scale": np.ones(2), "bias": np.ones(2)}}

    def decay(path, v):
        return v * 0.9 if tu.keystr(path, simple=True, separator="/").endswith("kernel") else v

    out = tu.tree_map_with_path(decay, params)
    np.testing.assert_array_equal(out["dense"]["kernel"], [0.9, 0.9])
    np.testing.assert_array_equal(out["norm"]["bias"], [1.0, 1.0])
    keys = [k.key for k in tu.tree_flatten_with_path(params)[0][0][0]]
    assert keys == ["dense", "bias"]
    assert [type(k).__name__ for k in tu.tree_flatten_with_path(Pair([1], 2))[0][0][0]] == \
        ["GetAttrKey", "SequenceKey"]


# --- custom nodes ------------------------------------------------------------------------------

class _Polar:
    """A container registered with register_pytree_node: (radius, angle) children and an
    unit name kept as auxiliary (static) data."""

    def __init__(self, r, theta, unit="rad"):
        self.r, self.theta, self.unit = r, theta, unit


tu.register_pytree_node(_Polar, lambda p: ((p.r, p.theta), p.unit),
                        lambda unit, ch: _Polar(*ch, unit=unit))


@tu.register_pytree_node_class
class _Affine:
    """A container registered with register_pytree_node_class (tree_flatten/tree_unflatten)."""

    def __init__(self, w, b, name):
        self.w, self.b, self.name = w, b, name

    def tree_flatten(self):
        return (self.w, self.b), self.name

    @classmethod
    def tree_unflatten(cls, name, children):
        return cls(*children, name)

    def __call__(self, x):
        return self.w * x + self.b


class _Keyed:
    """A container registered with keys: its leaves' paths carry the field names."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std


tu.register_pytree_with_keys(
    _Keyed, lambda k: (((tu.GetAttrKey("mean"), k.mean), (tu.GetAttrKey("std"), k.std)), None),
    lambda _, ch: _Keyed(*ch))


@functools.partial(tu.register_dataclass, data_fields=["w"], meta_fields=["activation"])
@dataclasses.dataclass
class _Dense:
    w: object
    activation: str


@tu.register_dataclass
@dataclasses.dataclass
class _Layer:
    w: object
    width: int = dataclasses.field(metadata=dict(static=True))


def test_register_pytree_node_flattens_children_and_keeps_aux_data():
    p = _Polar(np.float64(2.0), np.float64(0.5), unit="deg")
    leaves, d = tu.tree_flatten(p)
    assert [float(v) for v in leaves] == [2.0, 0.5]
    q = tu.tree_unflatten(d, [3.0, 4.0])
    assert (q.r, q.theta, q.unit) == (3.0, 4.0, "deg")
    # aux data is part of the structure
    assert tu.tree_structure(p) != tu.tree_structure(_Polar(1.0, 1.0, unit="rad"))
    # no keys given: paths are flat indices
    assert [tu.keystr(k) for k, _ in tu.tree_flatten_with_path(p)[0]] == \
        ["[<flat index 0>]", "[<flat index 1>]"]


def test_custom_nodes_through_jit_grad_and_vmap():
    f = T.jit(lambda p: p.r * tnp.cos(p.theta))
    assert float(f(_Polar(2.0, 0.0))) == 2.0
    g = T.grad(lambda p: p.r * tnp.cos(p.theta))(_Polar(2.0, 0.0))
    assert isinstance(g, _Polar) and (float(g.r), float(g.theta)) == (1.0, 0.0)
    layer = _Affine(np.array([1.0, 2.0]), np.array([0.5, 0.5]), "aff")
    out = T.vmap(lambda m, x: m(x), in_axes=(None, 0))(layer, np.array([[1.0, 1.0], [2.0, 2.0]]))
    np.testing.assert_array_equal(out, [[1.5, 2.5], [2.5, 4.5]])
    stepped = T.jit(lambda m: tu.tree_map(lambda v: v - 0.5, m))(layer)
    assert stepped.name == "aff"
    np.testing.assert_array_equal(stepped.w, [0.5, 1.5])


def test_register_pytree_with_keys_gives_named_paths():
    k = _Keyed(np.zeros(2), np.ones(2))
    assert [tu.keystr(p) for p, _ in tu.tree_flatten_with_path(k)[0]] == [".mean", ".std"]
    out = tu.tree_map_with_path(lambda p, v: v + (1 if tu.keystr(p) == ".std" else 0), k)
    np.testing.assert_array_equal(out.std, [2.0, 2.0])


def test_register_dataclass_explicit_and_from_field_metadata():
    d = _Dense(np.ones(3), "relu")
    assert len(tu.tree_leaves(d)) == 1
    assert [tu.keystr(p) for p, _ in tu.tree_flatten_with_path(d)[0]] == [".w"]
    f = T.jit(lambda m, x: tnp.maximum(m.w * x, 0.0) if m.activation == "relu" else m.w * x)
    np.testing.assert_array_equal(f(d, -1.0), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(f(_Dense(np.ones(3), "linear"), -1.0), [-1.0, -1.0, -1.0])
    layer = _Layer(np.ones(2), 4)
    assert tu.tree_leaves(layer)[0] is layer.w
    out = T.jit(lambda m: tnp.zeros(m.width) + m.w.sum())(layer)   # width is static
    np.testing.assert_array_equal(out, [2.0] * 4)
    assert tu.tree_structure(layer) != tu.tree_structure(_Layer(np.ones(2), 5))


class _Options:
    """A hashable configuration registered with register_static: no leaves, part of the
    structure, so jit treats it as a compile-time constant."""

    def __init__(self, order):
        self.order = order

    def __hash__(self):
        return hash(self.order)

    def __eq__(self, other):
        return isinstance(other, _Options) and other.order == self.order


tu.register_static(_Options)


def test_register_static_makes_an_object_part_of_the_structure():
    assert tu.tree_leaves([_Options(2), 1.0]) == [1.0]
    calls = []

    @T.jit
    def poly(opts, x):
        calls.append(opts.order)
        return sum(x ** k for k in range(opts.order + 1))

    assert float(poly(_Options(2), 2.0)) == 7.0
    assert float(poly(_Options(2), 3.0)) == 13.0
    assert float(poly(_Options(3), 2.0)) == 15.0
    assert calls == [2, 3]


def test_partial_is_a_pytree_of_its_arguments():
    scale = tu.Partial(lambda a, x: a * x, np.float64(3.0))
    apply = T.jit(lambda f, x: f(x))
    assert float(apply(scale, 2.0)) == 6.0
    assert float(apply(tu.Partial(lambda a, x: a * x, np.float64(5.0)), 2.0)) == 10.0
    assert len(tu.tree_leaves(scale)) == 1
