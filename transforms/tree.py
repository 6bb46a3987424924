"""Pytrees: `optree` under this project's own registry namespace.

`None` is an empty subtree (as in JAX). Tree structures (`PyTreeSpec`) are hashable, so they
serve as parts of cache keys. Custom nodes registered here are visible to every transform.
"""
from __future__ import annotations

import functools

import optree

NAMESPACE = "transforms"

PyTreeDef = optree.PyTreeSpec
_MISSING = object()

__all__ = [
    "map", "leaves", "structure", "flatten", "unflatten", "map_with_path", "leaves_with_path",
    "flatten_with_path", "reduce", "all", "any", "register_pytree_node", "register_dataclass",
    "register_pytree_node_class", "keystr", "PyTreeDef", "NAMESPACE", "tree_map", "is_leaf_none",
]

_ns = dict(namespace=NAMESPACE)


def flatten(tree, is_leaf=None):
    """`(leaves, treedef)`; `None` counts as an empty subtree."""
    return optree.tree_flatten(tree, is_leaf=is_leaf, **_ns)


def unflatten(treedef, leaves):
    """Inverse of `flatten`: rebuild a tree of `treedef`'s structure from `leaves`."""
    return optree.tree_unflatten(treedef, leaves)


def leaves(tree, is_leaf=None):
    return optree.tree_leaves(tree, is_leaf=is_leaf, **_ns)


def structure(tree, is_leaf=None):
    return optree.tree_structure(tree, is_leaf=is_leaf, **_ns)


def map(f, tree, *rest, is_leaf=None):  # noqa: A001 - the JAX name
    """Apply `f` leafwise; `rest` trees must have `tree`'s structure (or it as a prefix)."""
    return optree.tree_map(f, tree, *rest, is_leaf=is_leaf, **_ns)


tree_map = map


def map_with_path(f, tree, *rest, is_leaf=None):
    """`f(path, leaf, *others)` where `path` is a tuple of keys (dict keys, sequence indices)."""
    return optree.tree_map_with_path(f, tree, *rest, is_leaf=is_leaf, **_ns)


def leaves_with_path(tree, is_leaf=None):
    """List of `(path, leaf)` pairs, `path` a tuple of keys."""
    paths, lvs, _ = optree.tree_flatten_with_path(tree, is_leaf=is_leaf, **_ns)
    return list(zip(paths, lvs))


def flatten_with_path(tree, is_leaf=None):
    paths, lvs, spec = optree.tree_flatten_with_path(tree, is_leaf=is_leaf, **_ns)
    return list(zip(paths, lvs)), spec


def reduce(f, tree, initializer=_MISSING, is_leaf=None):
    lvs = leaves(tree, is_leaf=is_leaf)
    if initializer is _MISSING:
        return functools.reduce(f, lvs)
    return functools.reduce(f, lvs, initializer)


def all(tree, is_leaf=None):  # noqa: A001
    return builtins_all(leaves(tree, is_leaf=is_leaf))


def any(tree, is_leaf=None):  # noqa: A001
    return builtins_any(leaves(tree, is_leaf=is_leaf))


def register_pytree_node(nodetype, flatten_func, unflatten_func):
    """Register a container type, JAX style.

    `flatten_func(node) -> (children, aux_data)`; `unflatten_func(aux_data, children) -> node`.
    """
    def _flatten(node):
        children, aux = flatten_func(node)
        return children, aux

    def _unflatten(aux, children):
        return unflatten_func(aux, children)

    optree.register_pytree_node(nodetype, _flatten, _unflatten, **_ns)
    return nodetype


def register_pytree_node_class(cls):
    """Class decorator: `cls.tree_flatten()` and `cls.tree_unflatten(aux, children)`."""
    register_pytree_node(cls, lambda node: node.tree_flatten(), cls.tree_unflatten)
    return cls


def register_dataclass(cls=None, *, data_fields=None, meta_fields=None):
    """Register a dataclass: `data_fields` are children, `meta_fields` static (default: all data)."""
    import dataclasses

    def wrap(cls):
        if not dataclasses.is_dataclass(cls):
            cls = dataclasses.dataclass(cls)
        fields = [f.name for f in dataclasses.fields(cls)]
        meta = list(meta_fields or [])
        data = list(data_fields) if data_fields is not None else [f for f in fields if f not in meta]

        def flat(node):
            return [getattr(node, n) for n in data], tuple(getattr(node, n) for n in meta)

        def unflat(aux, children):
            kw = dict(zip(data, children))
            kw.update(zip(meta, aux))
            return cls(**kw)

        register_pytree_node(cls, flat, unflat)
        return cls

    return wrap if cls is None else wrap(cls)


def keystr(path) -> str:
    """A path tuple as text, e.g. `['params']['dense_0']['w']`."""
    return "".join(f"[{k!r}]" for k in path)


def is_leaf_none(x):
    return x is None


import builtins as _b  # noqa: E402

builtins_all, builtins_any = _b.all, _b.any
