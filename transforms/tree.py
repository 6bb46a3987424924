"""Pytrees: `optree` under this project's own registry namespace, with JAX's semantics.

`None` is an empty subtree (as in JAX). Tree structures (`PyTreeSpec`) are hashable, so they
serve as parts of cache keys. Custom nodes registered here are visible to every transform.

As in JAX:

- dict keys are visited in sorted order, and rebuilt trees (`unflatten`, `map`, ...) hold
  their dicts with sorted keys; a dict whose keys cannot be sorted against each other is a
  `ValueError` (`OrderedDict` keeps its insertion order);
- paths (`map_with_path`, `leaves_with_path`, `flatten_with_path`) are tuples of key objects:
  `DictKey(key)` for mappings, `SequenceKey(idx)` for lists/tuples, `GetAttrKey(name)` for
  namedtuple fields and `register_dataclass` fields, `FlattenedIndexKey(i)` for nodes registered
  with `register_pytree_node`, and whatever `register_pytree_with_keys` hands out; `keystr`
  formats them as JAX does (`['a'][0].name`).
"""
from __future__ import annotations

import builtins as _b
import collections
import functools

import optree

NAMESPACE = "transforms"

PyTreeDef = optree.PyTreeSpec
_MISSING = object()

__all__ = [
    "map", "leaves", "structure", "flatten", "unflatten", "map_with_path", "leaves_with_path",
    "flatten_with_path", "reduce", "reduce_associative", "all", "any", "transpose", "broadcast",
    "register_pytree_node", "register_dataclass", "register_pytree_node_class",
    "register_pytree_with_keys", "register_pytree_with_keys_class", "register_static", "keystr",
    "PyTreeDef", "NAMESPACE", "tree_map", "is_leaf_none", "SequenceKey", "DictKey", "GetAttrKey",
    "FlattenedIndexKey", "all_leaves", "build_tree", "treedef_is_leaf", "treedef_children",
    "treedef_tuple", "flatten_one_level", "is_tree_node", "Partial",
]

_ns = dict(namespace=NAMESPACE)
builtins_all, builtins_any = _b.all, _b.any


# --------------------------------------------------------------------------------------------
# Key types (JAX's `jax.tree_util` key path entries)

class _Key:
    """A path entry holding one value in the attribute named by `_field` (immutable,
    compared and hashed by type and value)."""
    __slots__ = ()
    _field = None

    def __init__(self, value):
        object.__setattr__(self, self._field, value)

    def _v(self):
        return getattr(self, self._field)

    def __eq__(self, other):
        return type(self) is type(other) and self._v() == other._v()

    def __hash__(self):
        return hash((type(self).__name__, self._v()))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self):
        return f"{type(self).__name__}({self._field}={self._v()!r})"


class SequenceKey(_Key):
    """Path entry of a list/tuple child: `.idx` is its position; prints as `[0]`."""
    __slots__ = ("idx",)
    __match_args__ = ("idx",)
    _field = "idx"

    def __str__(self):
        return f"[{self.idx!r}]"


class DictKey(_Key):
    """Path entry of a mapping child: `.key` is its key; prints as `['key']`."""
    __slots__ = ("key",)
    __match_args__ = ("key",)
    _field = "key"

    def __str__(self):
        return f"[{self.key!r}]"


class GetAttrKey(_Key):
    """Path entry of an attribute child (namedtuple field, dataclass field): `.name`."""
    __slots__ = ("name",)
    __match_args__ = ("name",)
    _field = "name"

    def __str__(self):
        return f".{self.name}"


class FlattenedIndexKey(_Key):
    """Path entry of the i-th child of a node registered without keys: `.key` is `i`."""
    __slots__ = ("key",)
    __match_args__ = ("key",)
    _field = "key"

    def __str__(self):
        return f"[<flat index {self.key}>]"


_KEY_TYPES = (SequenceKey, DictKey, GetAttrKey, FlattenedIndexKey)
KeyEntry = object
KeyPath = tuple


def _simple(k):
    if isinstance(k, SequenceKey):
        return str(k.idx)
    if isinstance(k, (DictKey, FlattenedIndexKey)):
        return str(k.key)
    if isinstance(k, GetAttrKey):
        return str(k.name)
    return str(k)


def keystr(keys, *, simple=False, separator="") -> str:
    """A key path as text, as JAX prints it: `['params'][0].w`.

    `simple=True` gives the bare keys (`params`, `0`, `w`) joined with `separator`. Raw keys
    that are not key objects (e.g. a tuple of strings and ints) are shown as `[repr(key)]`.
    """
    if simple:
        return separator.join(_simple(k) for k in keys)
    return separator.join(str(k) if isinstance(k, _KEY_TYPES) else f"[{k!r}]" for k in keys)


def raw_key(k):
    """The plain dict key / index / attribute name inside a key object (identity otherwise)."""
    if isinstance(k, SequenceKey):
        return k.idx
    if isinstance(k, (DictKey, FlattenedIndexKey)):
        return k.key
    if isinstance(k, GetAttrKey):
        return k.name
    return k


# how the i-th child of a registered custom type becomes a key (absent: FlattenedIndexKey(i))
_KEY_RULES: dict = {}
_WITH_KEYS = object()


def _to_key(e):
    t = type(e)
    if t is optree.MappingEntry:
        return DictKey(e.entry)
    if t is optree.SequenceEntry:
        return SequenceKey(e.entry)
    if t is optree.NamedTupleEntry or t is optree.StructSequenceEntry:
        return GetAttrKey(e.field)
    rule = _KEY_RULES.get(e.type)
    if rule is _WITH_KEYS:
        return e.entry
    if rule is not None:
        return rule(e.entry)
    if isinstance(e.entry, _KEY_TYPES):
        return e.entry
    if t is optree.DataclassEntry:
        return GetAttrKey(e.field)
    return FlattenedIndexKey(e.entry)


_PATHS: dict = {}
_CANON: dict = {}


def _paths(spec):
    try:
        return _PATHS[spec]
    except KeyError:
        pass
    except TypeError:  # unhashable aux data
        return [tuple(_to_key(e) for e in a) for a in spec.accessors()]
    paths = [tuple(_to_key(e) for e in a) for a in spec.accessors()]
    if len(_PATHS) > 4096:
        _PATHS.clear()
    _PATHS[spec] = paths
    return paths


def _canon_node(s):
    t = s.type
    if t is dict or t is collections.defaultdict:
        keys = s.entries()
        try:
            order = sorted(range(len(keys)), key=keys.__getitem__)
        except TypeError:
            raise ValueError(
                "Comparator raised exception while sorting pytree dictionary keys: the keys "
                f"{keys!r} cannot be sorted against each other (use an OrderedDict, or keys "
                "of one type)") from None
        ch = s.children()
        pairs = [(keys[i], ch[i]) for i in order]
        if t is dict:
            return optree.treespec_dict(pairs, **_ns)
        inst = optree.tree_unflatten(s.one_level(), list(range(len(keys))))
        return optree.treespec_defaultdict(inst.default_factory, pairs, **_ns)
    return s


def canonical(spec):
    """`spec` with every dict's keys in sorted order (what `unflatten` builds, as JAX).

    Raises `ValueError` if some dict's keys cannot be sorted against each other.
    """
    try:
        return _CANON[spec]
    except KeyError:
        pass
    except TypeError:
        return optree.treespec_transform(spec, _canon_node)
    c = optree.treespec_transform(spec, _canon_node)
    if len(_CANON) > 4096:
        _CANON.clear()
    _CANON[spec] = c
    return c


# --------------------------------------------------------------------------------------------
# Flatten / unflatten / map

def flatten(tree, is_leaf=None):
    """`(leaves, treedef)`; `None` counts as an empty subtree; dict keys in sorted order."""
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    return lvs, canonical(spec)


def unflatten(treedef, leaves):
    """Inverse of `flatten`: rebuild a tree of `treedef`'s structure from `leaves`.

    Dicts come back with their keys in sorted order, as in JAX.
    """
    return optree.tree_unflatten(canonical(treedef), leaves)


def leaves(tree, is_leaf=None):
    """The leaves of `tree`, left to right (dict keys sorted); `None` has none."""
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    canonical(spec)  # unsortable dict keys raise, as in JAX
    return lvs


def structure(tree, is_leaf=None):
    """The `PyTreeDef` of `tree` (hashable; equal for equal structures)."""
    return canonical(optree.tree_structure(tree, is_leaf=is_leaf, **_ns))


def _up_to(spec, tree, rest, is_leaf, what):
    """The leaves of each of `rest` cut at `spec` (the first tree's structure); a tree of
    another structure is a ValueError naming the key path where they differ (as JAX)."""
    try:
        return [spec.flatten_up_to(r) for r in rest]
    except ValueError:
        for r in rest:
            errs = optree.prefix_errors(tree, r, is_leaf=is_leaf, **_ns)
            if errs:
                raise errs[0](f"{what} tree") from None
        raise


def map(f, tree, *rest, is_leaf=None):  # noqa: A001 - the JAX name
    """Apply `f` leafwise; `rest` trees must have `tree`'s structure (or it as a prefix)."""
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    others = _up_to(spec, tree, rest, is_leaf, "tree_map") if rest else ()
    return optree.tree_unflatten(canonical(spec), [f(*xs) for xs in zip(lvs, *others)])


tree_map = map


def _no_path_leaf(is_leaf_takes_path):
    if is_leaf_takes_path:
        raise NotImplementedError("is_leaf_takes_path=True is not supported; use is_leaf(x)")


def flatten_with_path(tree, is_leaf=None, is_leaf_takes_path=False):
    """`([(path, leaf), ...], treedef)`: each path a tuple of key objects (`DictKey`, ...)."""
    _no_path_leaf(is_leaf_takes_path)
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    return list(zip(_paths(spec), lvs)), canonical(spec)


def leaves_with_path(tree, is_leaf=None, is_leaf_takes_path=False):
    """List of `(path, leaf)` pairs, `path` a tuple of key objects (`DictKey`, ...)."""
    _no_path_leaf(is_leaf_takes_path)
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    return list(zip(_paths(spec), lvs))


def map_with_path(f, tree, *rest, is_leaf=None, is_leaf_takes_path=False):
    """`f(path, leaf, *others)` leafwise, `path` a tuple of key objects; `keystr(path)` prints it."""
    _no_path_leaf(is_leaf_takes_path)
    lvs, spec = optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)
    others = _up_to(spec, tree, rest, is_leaf, "tree_map_with_path") if rest else ()
    outs = [f(p, *xs) for p, *xs in zip(_paths(spec), lvs, *others)]
    return optree.tree_unflatten(canonical(spec), outs)


# --------------------------------------------------------------------------------------------
# Reductions and restructuring

def reduce(function, tree, initializer=_MISSING, is_leaf=None):
    """`functools.reduce(function, leaves(tree)[, initializer])`."""
    lvs = leaves(tree, is_leaf=is_leaf)
    if initializer is _MISSING:
        return functools.reduce(function, lvs)
    return functools.reduce(function, lvs, initializer)


def reduce_associative(operation, tree, *, identity=_MISSING, is_leaf=None):
    """Reduce the leaves with an associative `operation` as a balanced binary tree.

    `((l0 op l1) op (l2 op (l3 op l4)))` for five leaves, as JAX; an empty tree needs `identity`.
    """
    lvs = leaves(tree, is_leaf=is_leaf)
    if not lvs:
        if identity is _MISSING:
            raise TypeError("Must specify identity for parallel reduction of empty sequence.")
        return identity

    def red(xs):
        if len(xs) == 1:
            return xs[0]
        mid = len(xs) // 2
        return operation(red(xs[:mid]), red(xs[mid:]))

    return red(lvs)


def all(tree, *, is_leaf=None):  # noqa: A001
    """True iff every leaf is truthy (an empty tree is True)."""
    return builtins_all(leaves(tree, is_leaf=is_leaf))


def any(tree, *, is_leaf=None):  # noqa: A001
    """True iff some leaf is truthy."""
    return builtins_any(leaves(tree, is_leaf=is_leaf))


def transpose(outer_treedef, inner_treedef, pytree_to_transpose):
    """Turn an outer tree of inner trees into an inner tree of outer trees.

    `inner_treedef=None` infers it from the first inner subtree (as JAX).
    """
    outer = canonical(outer_treedef)
    inners = outer.flatten_up_to(pytree_to_transpose)
    if inner_treedef is None:
        if not inners:
            raise ValueError("tree.transpose: cannot infer inner_treedef of an empty outer tree")
        inner_treedef = structure(inners[0])
    inner = canonical(inner_treedef)
    cols = [inner.flatten_up_to(t) for t in inners]
    n_in = inner.num_leaves
    if outer.num_leaves != len(cols) or builtins_any(len(c) != n_in for c in cols):
        raise TypeError("tree.transpose: tree structure mismatch")
    per_inner = [unflatten(outer, [c[j] for c in cols]) for j in range(n_in)]
    return unflatten(inner, per_inner)


def broadcast(prefix_tree, full_tree, is_leaf=None):
    """Repeat each leaf of `prefix_tree` over the matching subtree of `full_tree`."""
    spec = optree.tree_structure(prefix_tree, is_leaf=is_leaf, **_ns)
    pref = optree.tree_leaves(prefix_tree, is_leaf=is_leaf, **_ns)
    subs = spec.flatten_up_to(full_tree)
    out = [map(lambda _: p, s, is_leaf=is_leaf) for p, s in zip(pref, subs)]
    return optree.tree_unflatten(canonical(spec), out)


def all_leaves(iterable, is_leaf=None):
    """True iff every element of `iterable` is a leaf (a tree with just itself as leaf)."""
    if is_leaf is None:
        return builtins_all(optree.treespec_is_leaf(optree.tree_structure(x, **_ns))
                            and x is not None for x in iterable)
    lst = list(iterable)
    return lst == leaves(lst, is_leaf)


def treedef_is_leaf(treedef):
    """True iff `treedef` has no children: a leaf, `None` or an empty container (as JAX)."""
    return treedef.num_nodes == 1


def treedef_children(treedef):
    """The treedefs of the root node's children."""
    return list(canonical(treedef).children())


def treedef_tuple(treedefs):
    """The treedef of a tuple whose children have `treedefs`."""
    return optree.treespec_tuple(list(treedefs), **_ns)


def build_tree(treedef, xs):
    """Build a tree of `treedef`'s node types from nested iterables `xs` (children in order)."""
    treedef = canonical(treedef)
    if treedef.num_nodes == 1:
        return xs if treedef.num_leaves == 1 else optree.tree_unflatten(treedef, [])
    kids = [build_tree(c, x) for c, x in zip(treedef.children(), xs, strict=True)]
    return optree.tree_unflatten(treedef.one_level(), kids)


def flatten_one_level(tree):
    """`(children, aux_data)` of the root node; raises `ValueError` on a leaf."""
    if optree.treespec_is_leaf(optree.tree_structure(tree, **_ns)) and tree is not None:
        raise ValueError(f"can't tree-flatten type: {type(tree)}")
    one = optree.tree_flatten_one_level(tree, **_ns)
    return list(one.children), one.metadata


def is_tree_node(typ):
    """True iff `typ` is a registered container type (built-in or custom)."""
    return optree.register_pytree_node.get(typ, **_ns) is not None or typ is type(None)


# --------------------------------------------------------------------------------------------
# Registration

def register_pytree_node(nodetype, flatten_func, unflatten_func, flatten_with_keys_func=None):
    """Register a container type, JAX style.

    `flatten_func(node) -> (children, aux_data)`; `unflatten_func(aux_data, children) -> node`.
    Paths through such nodes are `FlattenedIndexKey(i)`, unless `flatten_with_keys_func(node)
    -> ([(key, child), ...], aux_data)` is given (see `register_pytree_with_keys`).
    """
    if flatten_with_keys_func is not None:
        return register_pytree_with_keys(nodetype, flatten_with_keys_func, unflatten_func,
                                         flatten_func)

    def _flatten(node):
        children, aux = flatten_func(node)
        return children, aux

    def _unflatten(aux, children):
        return unflatten_func(aux, children)

    _register_quietly(nodetype, _flatten, _unflatten)
    return nodetype


def _register_quietly(nodetype, flatten, unflatten):
    """Register with the tree backend, without its warning that a namedtuple (or
    PyStructSequence) subclass is a container already: overriding that is what registering
    such a class asks for, and JAX registers it silently."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*namedtuple", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*PyStructSequence", category=UserWarning)
        optree.register_pytree_node(nodetype, flatten, unflatten, **_ns)


def register_pytree_with_keys(nodetype, flatten_with_keys, unflatten_func, flatten_func=None):
    """Register a container whose children carry key objects for their paths.

    `flatten_with_keys(node) -> ([(key, child), ...], aux_data)`, each key e.g. `GetAttrKey`,
    `DictKey`; `unflatten_func(aux_data, children) -> node`. The keys are part of the tree
    structure (two nodes with different keys have different treedefs).
    """
    def _flatten(node):
        pairs, aux = flatten_with_keys(node)
        pairs = list(pairs)
        keys = tuple(k for k, _ in pairs)
        return [c for _, c in pairs], (aux, keys), keys

    def _unflatten(aux_keys, children):
        return unflatten_func(aux_keys[0], children)

    _register_quietly(nodetype, _flatten, _unflatten)
    _KEY_RULES[nodetype] = _WITH_KEYS
    return nodetype


def register_pytree_node_class(cls):
    """Class decorator: `cls.tree_flatten()` and `cls.tree_unflatten(aux, children)`."""
    register_pytree_node(cls, lambda node: node.tree_flatten(), cls.tree_unflatten)
    return cls


def register_pytree_with_keys_class(cls):
    """Class decorator: `cls.tree_flatten_with_keys()` and `cls.tree_unflatten(aux, children)`."""
    register_pytree_with_keys(cls, lambda node: node.tree_flatten_with_keys(), cls.tree_unflatten)
    return cls


def register_static(cls):
    """Register `cls` as a node with no children: its instances are part of the structure."""
    register_pytree_node(cls, lambda x: ((), x), lambda x, _: x)
    return cls


def register_dataclass(nodetype=None, data_fields=None, meta_fields=None, drop_fields=()):
    """Register a dataclass: `data_fields` are children, `meta_fields` static aux data.

    Without `data_fields`, every field not in `meta_fields`/`drop_fields` is data (and a field
    declared with `dataclasses.field(metadata={"static": True})` is meta). Usable as a decorator
    with or without arguments. Paths through it are `GetAttrKey(field)`.
    """
    import dataclasses

    def wrap(cls):
        if not dataclasses.is_dataclass(cls):
            cls = dataclasses.dataclass(cls)
        fields = dataclasses.fields(cls)
        meta = list(meta_fields) if meta_fields is not None else \
            [f.name for f in fields if f.metadata.get("static", False)]
        if data_fields is not None:
            data = list(data_fields)
        else:
            data = [f.name for f in fields if f.name not in meta and f.name not in drop_fields
                    and f.init]

        def flat(node):
            return [getattr(node, n) for n in data], tuple(getattr(node, n) for n in meta)

        def unflat(aux, children):
            kw = dict(zip(data, children))
            kw.update(zip(meta, aux))
            return cls(**kw)

        register_pytree_node(cls, flat, unflat)
        names = tuple(data)
        _KEY_RULES[cls] = lambda i: GetAttrKey(names[i])
        return cls

    return wrap if nodetype is None else wrap(nodetype)


class Partial(functools.partial):
    """`functools.partial` that is a pytree: the bound arguments are its children, the function
    is static. Pass a partially applied function through `jit`/`vmap` as an argument."""

    def __new__(cls, func, *args, **kw):
        if isinstance(func, functools.partial):
            base = func
            func = base.func
            args = base.args + args
            kw = {**base.keywords, **kw}
        return super().__new__(cls, func, *args, **kw)


register_pytree_node(
    Partial,
    lambda p: ((p.args, p.keywords), p.func),
    lambda func, ch: Partial(func, *ch[0], **ch[1]))


def is_leaf_none(x):
    """`is_leaf` predicate making `None` a leaf."""
    return x is None
